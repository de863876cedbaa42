#!/usr/bin/env bash
# Packs the benchmark suite for a lent GPU machine: Node, Dawn and one bundle per step in .gpu/
# (../shared/device/pack.sh; .gpu/ is ignored by git). bench/run.ts, bundled as .gpu/run.mjs, runs
# the sibling step bundles there as it runs the .ts steps here.
#
#   bash bench/gpu.sh
# then on the GPU machine (device tool: carry [".gpu"]):
#   bash .gpu/run.sh .gpu/run.mjs --full --out $OUT
# onnxruntime-node is not bundled (a native binding), so the ort-cpu rows say it is absent there;
# the weights and data the explain and kernel-shap steps read are the working tree's models/weights
# and data/, which travel with it.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
pack="${PACK:-$root/../shared/device/pack.sh}"
cd "$root"
bash "$pack" bench/run.ts bench/ops.ts bench/kernels.ts bench/cnn-step.ts bench/explain.ts bench/kernel-shap.ts bench/resnet18.ts
