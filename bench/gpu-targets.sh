#!/usr/bin/env bash
# One prepared device call for issue 11's GPU targets (a lent machine gives ~15 minutes in all):
# PyTorch's reference figures, the GPU matmul and conv kernels against the other kernels and
# TF.js, and the suite's kernel, small-CNN, explainer and KernelSHAP steps, each under a time
# limit so that one slow step cannot take the whole call. Outputs land in $OUT.
#
#   here:     bash bench/gpu.sh                 (packs .gpu/, with a copy of torch_reference.py)
#   device:   carry [".gpu"], timeout_s 590, command: bash bench/gpu-targets.sh
# Targets to read off (issue 11): matmul 4096^3 >= 35 TFLOP/s (>= 68% of PyTorch's fp32 figure);
# conv forward >= 10x TF.js and >= 50% of cuDNN; backprop-input/filter >= 10x TF.js; small-CNN
# evaluations/s at batch 1024 >= PyTorch's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-targets}
mkdir -p "$OUT"
step() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  echo "== $name (limit ${secs}s)"
  local t0=$SECONDS
  timeout "$secs" "$@" > "$OUT/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - t0)) s; last lines:"
  tail -n 4 "$OUT/$name.log" | sed 's/^/   /'
}
if [ -f .gpu/torch_reference.py ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  step torch 80 python3 .gpu/torch_reference.py
else
  echo "== torch: skipped (no .gpu/torch_reference.py or no CUDA torch here)"
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1 || true
step matmul-gpu 100 bash .gpu/run.sh .gpu/matmul-gpu.mjs --out "$OUT"
step conv2d-gpu 130 bash .gpu/run.sh .gpu/conv2d-gpu.mjs --out "$OUT"
step suite 250 bash .gpu/run.sh .gpu/run.mjs --only kernels,cnn-step,explain,kernel-shap --out "$OUT"
# Few files come back from the device: one archive of everything, plus the summary on stdout.
tar -czf /tmp/gpu-targets.tgz -C "$OUT" . && rm -rf "${OUT:?}"/* && mv /tmp/gpu-targets.tgz "$OUT/"
ls -la "$OUT"
