#!/usr/bin/env bash
# GPU throughput check for the MoE trainer (~110M params, bf16): a few minutes, offline, prints tok/s and MFU.
# Usage: bash benchmarks/gpu_train.sh [extra args for benchmarks/gpu_train.py]
# Needs a python with a CUDA torch (PYTHON=... to choose); writes only to a temporary folder (and $OUT if set).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" || {
  echo "error: $PY has no CUDA torch; set PYTHON=/path/to/python with torch installed" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
LOG="${OUT:-/tmp}/gpu_train.log"
# 1) grouped-GEMM experts (torch._grouped_mm, sm90+), eager; 2) the per-expert loop if the kernel is refused.
if ! "$PY" benchmarks/gpu_train.py --steps "${STEPS:-300}" "$@" 2>&1 | tee "$LOG"; then
  echo "grouped GEMM run failed; retrying with TRAINER_GROUPED_MM=0" | tee -a "$LOG"
  TRAINER_GROUPED_MM=0 "$PY" benchmarks/gpu_train.py --steps "${STEPS:-300}" "$@" 2>&1 | tee -a "$LOG"
fi
# 3) the same with torch.compile, if time allows (COMPILE=1).
if [ "${COMPILE:-0}" = "1" ]; then
  "$PY" benchmarks/gpu_train.py --steps "${STEPS:-300}" --set train.compile=true "$@" 2>&1 | tee -a "$LOG"
fi
