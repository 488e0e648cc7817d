#!/bin/bash
# Render 100,000 normal nut_bolt images on a Slurm cluster: one job-array task per shard, all
# writing into one shared folder, then one finalising step. Submit with
#
#   sbatch docs/slurm_array.sh            # the array (64 tasks)
#   sbatch --dependency=afterany:<ARRAY_JOB_ID> --wrap "mkdata merge /shared/data/nut_bolt"
#
# Each task resumes what a killed or preempted task left (rerun the array: finished images are
# skipped), and `mkdata status /shared/data/nut_bolt` shows progress and an ETA at any time.
#SBATCH --job-name=mkdata-nut_bolt
#SBATCH --array=0-63
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --requeue
set -euo pipefail
OUT=/shared/data           # a filesystem every node mounts at the same path
mkdata miad --scenario nut_bolt --normal-only --train 100000 --preset paper \
    --out "$OUT" --shard "${SLURM_ARRAY_TASK_ID}/64" --quiet
# on GPU partitions add: --device cuda   (and #SBATCH --gres=gpu:1)
