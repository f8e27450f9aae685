#!/usr/bin/env bash
# Train the mammography demo model (lightweight high-resolution U-Net, shipped separable-residual variant)
# on the 98 CDD-CESM images with patient-wise cross-validation, then package one fold's model as
# models/hires-unet-cddcesm-demo (model card with the CV Dice, data citation and the weights' sha256).
#
# Usage: scripts/train_mammography_model.sh [RUN_DIR]   (resumable: re-run the same command after an interruption)
# Data:  ../shared/data/cdd-cesm-mammography (override with BLS_CDDCESM_DIR). Runs niced on 1 thread (2 threads on a shared, oversubscribed machine spin at OpenMP barriers).
# DEVICE: auto (default: a CUDA GPU when there is one), cpu or cuda; a run may be resumed on another device.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
DATA="${BLS_CDDCESM_DIR:-$REPO/../shared/data/cdd-cesm-mammography}"
RUN_DIR="${1:-$REPO/work_tmp/hires-unet-cddcesm-demo_cv}"
DEVICE="${DEVICE:-auto}"
RESUME=""
if [ -d "$RUN_DIR/fold_0" ]; then RESUME="--resume"; fi
nice -n 10 "$PY" -m breastlesionseg.mammography.train --data "$DATA" --output "$RUN_DIR" $RESUME --threads 1 --device "$DEVICE"
nice -n 10 "$PY" -m breastlesionseg.mammography.package_model --run "$RUN_DIR" --fold 0 \
    --model-dir "$REPO/models/hires-unet-cddcesm-demo" --force
