#!/usr/bin/env bash
# One command for the GPU: every lab's full profile for a few hundred steps on the dataset-layout
# fixtures, steps/s + peak memory + first losses per lab into runs/gpu_check/gpu_check.json.
# Fails (non-zero) if a lab errors or a loss is NaN; without CUDA it prints a skip notice and exits 0.
#   scripts/gpu_check.sh [--steps 200] [--labs 02 05] [--out DIR]     (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m labkit gpu-check "$@"
