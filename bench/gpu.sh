#!/usr/bin/env bash
# Packs the benchmark suite for a lent GPU machine: Node, Dawn and the Vulkan loader
# (../shared/device/pack.sh) and one bundle per step in .gpu/ (ignored by git). bench/run.ts,
# bundled as .gpu/run.mjs, runs the sibling step bundles there as it runs the .ts steps here.
#
#   bash bench/gpu.sh
# then on the GPU machine (device tool: carry [".gpu"]):
#   bash .gpu/run.sh .gpu/run.mjs --full --out $OUT
#   bash .gpu/run.sh .gpu/matmul-gpu.mjs --out $OUT   (the GPU matmul kernels, not part of the suite)
#   bash bench/gpu-targets.sh                          (one call: torch reference, both kernel benches, suite steps)
# onnxruntime-node is not bundled (a native binding), so the ort-cpu rows say it is absent there;
# the weights and data the explain and kernel-shap steps read are the working tree's models/weights
# and data/, which travel with it.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
pack="${PACK:-$root/../shared/device/pack.sh}"
cd "$root"
bash "$pack" bench/run.ts
# The steps are bundled here, minified: each holds TF.js (5 MB a bundle unminified, 2.6 MB
# minified), and the working tree plus .gpu must stay under the device's 64 MiB.
for step in ops kernels cnn-step explain kernel-shap resnet18 overhead matmul-gpu conv2d-gpu; do
  node_modules/.bin/esbuild "bench/$step.ts" --bundle --minify --keep-names --platform=node --format=esm --target=node20 \
    --external:webgpu --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile=".gpu/$step.mjs" --log-level=warning
  echo "packed bench/$step.ts -> .gpu/$step.mjs"
done
# PyTorch's reference figures travel with the kit (bench/gpu-targets.sh runs them there).
[ -f "$root/../shared/device/torch_reference.py" ] && cp "$root/../shared/device/torch_reference.py" .gpu/
# A local run of .gpu/run.sh leaves Dawn decompressed (21 MiB) beside its .xz: the device
# decompresses its own, and the carry limit is 64 MiB for the kit and the tree together.
rm -f .gpu/node_modules/webgpu/dist/linux-x64/dawn.node
kit=$(du -sm .gpu | cut -f1)
tree=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) / 1048576 ))
echo ".gpu: ${kit} MiB; tracked files: ${tree} MiB (the device takes 64 MiB in all, untracked files included)"
