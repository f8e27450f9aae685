#!/usr/bin/env bash
# Train, cross-validate and ship the breast-ultrasound model (models/us-attunet-busbra) on BUS-BRA.
#
# Resumable: every epoch is checkpointed under $RUN/fold_<k>/ (the crop classifier's under
# $RUN/fold_<k>/crop_classifier/ and crop_classifier_1/); rerun this script to continue where it
# stopped (finished folds are skipped). Environment overrides: DATA (BUS-BRA folder), RUN (run folder),
# FOLDS (default "0 1 2 3 4"), THREADS (torch threads; 1 is fastest on a shared, oversubscribed machine),
# SHIP_FOLD (the fold whose model is shipped; default 0), DEVICE (auto|cpu|cuda|cuda:N; default auto: a CUDA GPU
# when there is one, else the CPU; a run may be resumed on another device).
#
# The fold-k model is trained on the dataset's training images of fold k, early-stopped on its validation
# images, and tested on its test images (BUS-BRA 5-fold-cv.csv, kFold == k + 1; patients never shared).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/busbra-ultrasound}
RUN=${RUN:-benchmarks/output/us-attunet-busbra}
FOLDS=${FOLDS:-"0 1 2 3 4"}
THREADS=${THREADS:-1}
SHIP_FOLD=${SHIP_FOLD:-0}
DEVICE=${DEVICE:-auto}
BLS=.venv/bin/breastlesionseg

# each fold: the segmentation network, then its lesion-crop malignancy classifiers (--crop-classifier; margins 1 and 2)
OMP_NUM_THREADS=$THREADS $BLS train-ultrasound --data "$DATA" --output "$RUN" --folds $FOLDS --resume \
    --threads "$THREADS" --device "$DEVICE" --input-size 128 --batch-size 16 --max-epochs 20 --patience 5 --learning-rate 2e-3 \
    --crop-classifier
# test-fold metrics of every finished fold, the cross-validation report, curves and ROC plots
OMP_NUM_THREADS=$THREADS $BLS evaluate-ultrasound --data "$DATA" --run "$RUN" --threads "$THREADS"
# the shipped model: the chosen fold's best weights + model card with the CV metrics
$BLS evaluate-ultrasound --data "$DATA" --run "$RUN" --ship models/us-attunet-busbra --ship-fold "$SHIP_FOLD" --force
