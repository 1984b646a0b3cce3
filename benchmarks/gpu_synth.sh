#!/usr/bin/env bash
# On a lent GPU machine: build the tiny model (CPU, ~1 min), then run the transformers (and, if installed, vLLM)
# generation check and throughput on the GPU. Prints JSON lines; exit status non-zero on a mismatch.
#   bash benchmarks/gpu_synth.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out/gpu_synth}
.venv/bin/python -m tests.synth.tiny_model "$out/tiny" --steps 12 >/dev/null
timeout 540 .venv/bin/python benchmarks/gpu_synth.py "$out/tiny/hf" --requests 64 --max-tokens 128
