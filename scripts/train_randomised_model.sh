#!/usr/bin/env bash
# Fine-tune the demo lesion network on DOMAIN-RANDOMISED phantoms, resumably, on CPU or GPU.
#
#   scripts/train_randomised_model.sh [WORK_DIR]     (default WORK_DIR: benchmarks/output/demo_model_randomised)
#
# The shipped model (version 5) is this script run twice on the version-2 base of scripts/train_demo_model.sh:
#
#   THREADS=2 EPOCHS=12 SEEDS=3000-3255 scripts/train_randomised_model.sh benchmarks/output/demo_model_v11   # version 4
#   THREADS=2 INIT=benchmarks/output/demo_model_v11/model DEST=models/mm3dunet-phantom-demo \
#     INIT_NOTE="demo model version 4 (...)" scripts/train_randomised_model.sh benchmarks/output/demo_model_v12
#
# (models/mm3dunet-phantom-demo/README.md has the exact commands; version 4's weights are also in git history.)
#
# 1. builds a training set of phantoms of the 'training' family of breastlesionseg.phantom.randomisation
#    (seeds SEEDS, default 3000-3511, >= 1 lesion each; vessel trees, axillary nodes, skin folds, chest-wall enhancement,
#    motion, slice thickness, spacing, obliques, noise, bias, fat suppression, intensity scale all drawn
#    per seed). Never the held-out seeds 0-19, never the validation seeds 2000-2099, never a held-out
#    family, never a real exam;
# 2. fine-tunes the base network (INIT) on it (--init-from; same architecture and channels) with
#    `breastlesionseg train`; rerunning the script continues from WORK_DIR/model/checkpoints/last.pt, or after a
#    finished training with the steps below;
# 3. chooses threshold / minimum lesion volume on validation phantoms (scripts/calibrate_inference.py; default the
#    training family, seeds 2000-2049, rule best-dice: no missed lesion, then Dice, since the confidence model splits
#    the components afterwards),
#    fits the per-lesion confidence model on validation phantoms 2000-2099 of the training family and
#    benchmarks the result (benchmarks/bench_generalisation.py, the seeds of docs/generalisation.md), so it can be
#    compared with the shipped one;
# 4. with DEST set: copies the model there, stores the confidence model fitted in step 3 in its card, records the
#    network's held-out phantom evaluation (seeds 0-19) and exports + verifies model.onnx. After shipping,
#    update breastlesionseg/nn/shipped_models.py with the printed checksums (docs/model_trust.md).
#
# Recipe: a gentle fine-tune (learning rate 5e-4 -> 5e-5, EPOCHS epochs) that keeps 15 % of the phantoms for
# validation, so the best epoch is chosen on ~80 exams rather than 5.
#
# Environment: THREADS (torch CPU threads, default 1), DEVICE (auto|cpu|cuda), MAX_TIME_S (training budget,
# default 5400), EPOCHS (default 8), NICE (default 10), INIT (network to fine-tune, default
# benchmarks/output/demo_model/model: the version-2 base made by scripts/train_demo_model.sh, sha256
# d478ad34712b...), INIT_NOTE (how the model card names INIT; default: the 80-phantom base), DEST (default none),
# CALIB_FAMILY / CALIB_SEEDS / CALIB_SELECT (threshold calibration phantoms and rule; default training / 2000-2049 /
# best-dice; version 4 was calibrated on the classic phantom, default / 2000-2019 / fewest-fp),
# ACQ_AUGMENT (probability of each acquisition augmentation of training.transforms: noise, slice blur, low
# resolution, gamma, bias field; default 0 = none, as for the shipped model),
# DEFAULT_SEEDS (e.g. 1000-1031: also put these classic-phantom seeds of the demo model's own training set
# into the mix, so the fine-tune keeps what it knew; default 1000-1047),
# NONFATSAT_SEEDS (e.g. 3512-3767: also add these seeds of family 'training-nonfatsat', the training family without
# fat suppression; default none),
# SMALL_NONFATSAT_SEEDS (e.g. 3768-3895: also add these seeds of family 'training-nonfatsat' with small lesions,
# diameter SMALL_DIAMETER_MM, default 5,12; default none),
# CACHE_DTYPE (`train --cache-dtype`: float32, as for the shipped model, or float16 for half the memory),
# SUBTRACTION_ONLY (probability that a training patch keeps only its subtraction channel, `train --subtraction-only`;
# default 0 = never, as for the shipped model),
# NORMALIZATION (channel normalisation, `train --normalization`: zscore, as for the shipped model, or robust),
# SPACING (training grid spacing x,y,z in mm, `train --spacing`; default 1.5,1.5,2.0, as for the shipped model),
# PATCH (training patch and calibrated inference window D,H,W in voxels, `train --patch`; default 16,32,32, as for
# the shipped model; on a finer SPACING a larger PATCH keeps the same field of view in mm),
# ZOOM_OUT (probability that a training patch is shrunk so its lesions look smaller, `train --zoom-out`; default 0 =
# never, as for the shipped model).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BLS=${BLS:-.venv/bin/breastlesionseg}
WORK=${1:-benchmarks/output/demo_model_randomised}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-auto}
MAX_TIME_S=${MAX_TIME_S:-5400}
EPOCHS=${EPOCHS:-8}
NICE=${NICE:-10}
INIT=${INIT:-benchmarks/output/demo_model/model}
INIT_NOTE=${INIT_NOTE:-the 80-phantom base demo model (default phantoms, seeds 1000-1079)}
DEST=${DEST:-}
ACQ_AUGMENT=${ACQ_AUGMENT:-0}
SUBTRACTION_ONLY=${SUBTRACTION_ONLY:-0}
NORMALIZATION=${NORMALIZATION:-zscore}
ZOOM_OUT=${ZOOM_OUT:-0}
SPACING=${SPACING:-1.5,1.5,2.0}
PATCH=${PATCH:-16,32,32}
CACHE_DTYPE=${CACHE_DTYPE:-float32}
CALIB_FAMILY=${CALIB_FAMILY:-training}
CALIB_SEEDS=${CALIB_SEEDS:-2000-2049}
CALIB_SELECT=${CALIB_SELECT:-best-dice}
# a finished training (an interrupted one leaves checkpoints only, no model card): rerunning continues with the
# steps after it (`train --resume` would refuse: nothing is left to train, and the calibrated card is kept)
TRAINED=""
if [ -f "$WORK/model/model_card.json" ]; then TRAINED=1; fi
if [ -z "$TRAINED" ] && [ ! -f "$INIT/model_card.json" ] && [ ! -f "$WORK/model/checkpoints/last.pt" ]; then
  echo "INIT=$INIT is not a model folder: train the base first (scripts/train_demo_model.sh) or set INIT" >&2
  exit 2
fi
SEEDS=${SEEDS:-3000-3511}   # training phantoms (512)
DEFAULT_SEEDS=${DEFAULT_SEEDS:-1000-1047}
N_CASES=$(( ${SEEDS#*-} - ${SEEDS%-*} + 1 ))
MIX=""
mkdir -p "$WORK"
export OMP_NUM_THREADS="$THREADS"

# existing cases are kept, so an interrupted build continues where it stopped
# add_cases SEEDS FAMILY_ARGS...: build these seeds into the dataset; prints how many seeds that is
add_cases() {
  local seeds=$1; shift
  nice -n "$NICE" "$PY" scripts/make_phantom_dataset.py --out "$WORK/dataset" --seeds "$seeds" \
    --min-lesions 1 --max-lesions 3 "$@" >&2 || return 1
  echo $(( ${seeds#*-} - ${seeds%-*} + 1 ))
}
add_cases "$SEEDS" --family training > /dev/null
NONFATSAT_SEEDS=${NONFATSAT_SEEDS:-}
if [ -n "$NONFATSAT_SEEDS" ]; then
  N_NONFATSAT=$(add_cases "$NONFATSAT_SEEDS" --family training-nonfatsat)
  MIX=" and $N_NONFATSAT of family 'training-nonfatsat' (the same ranges without fat suppression, seeds $NONFATSAT_SEEDS)"
fi
SMALL_NONFATSAT_SEEDS=${SMALL_NONFATSAT_SEEDS:-}
SMALL_DIAMETER_MM=${SMALL_DIAMETER_MM:-5,12}
if [ -n "$SMALL_NONFATSAT_SEEDS" ]; then
  N_SMALL=$(add_cases "$SMALL_NONFATSAT_SEEDS" --family training-nonfatsat --lesion-diameter-mm "$SMALL_DIAMETER_MM")
  MIX="$MIX and $N_SMALL of family 'training-nonfatsat' with lesion diameters $SMALL_DIAMETER_MM mm (seeds $SMALL_NONFATSAT_SEEDS)"
fi
if [ -n "$DEFAULT_SEEDS" ]; then
  N_DEFAULT=$(add_cases "$DEFAULT_SEEDS")
  MIX="$MIX and $N_DEFAULT classic phantoms (seeds $DEFAULT_SEEDS) of the demo model's own training set"
fi

RESUME=""
if [ -f "$WORK/model/checkpoints/last.pt" ]; then RESUME="--resume"; fi
AMP=""
if [ "$DEVICE" != "cpu" ] && "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  AMP="--amp"
fi

if [ -n "$TRAINED" ]; then
  echo "$WORK/model is already trained: skipping the training, continuing with calibration and benchmark"
else
  nice -n "$NICE" "$BLS" train --data "$WORK/dataset" --output "$WORK/model" $RESUME \
    --init-from "$INIT" --model-id mm3dunet-phantom-demo --demo \
    --training-data "$N_CASES domain-randomised synthetic breast DCE-MRI phantom exams (breastlesionseg.phantom family 'training', seeds $SEEDS, 1-3 lesions each, ground-truth labels)$MIX, fine-tuned from $INIT_NOTE; no real patient data" \
    --arch mm3dunet --expansion 12 --act --base-width 4 --levels 4 \
    --channels pre post1 sub1 --normalization "$NORMALIZATION" --cache-dtype "$CACHE_DTYPE" --spacing "$SPACING" --patch "$PATCH" \
    --epochs "$EPOCHS" --batch-size 4 --patches-per-case 4 --pos-fraction 0.5 --positive-sampling instance \
    --acquisition-augment "$ACQ_AUGMENT" --subtraction-only "$SUBTRACTION_ONLY" --zoom-out "$ZOOM_OUT" --lr 5e-4 --min-lr 5e-5 --loss hybrid --act-weight 0.1 --val-fraction 0.15 --val-every 2 --seed 0 \
    --device "$DEVICE" $AMP --threads "$THREADS" --max-time-s "$MAX_TIME_S" --progress none
fi

# threshold / minimum lesion volume chosen on validation phantoms (never held-out ones), into the card
if [ ! -f "$WORK/calibration.json" ]; then
  nice -n "$NICE" "$PY" scripts/calibrate_inference.py "$WORK/model" --family "$CALIB_FAMILY" --seeds "$CALIB_SEEDS" \
    --select "$CALIB_SELECT" --windows "$PATCH" \
    --thresholds 0.25 0.3 0.35 0.4 0.45 0.5 --min-volumes 10 20 30 --threads "$THREADS" \
    --json "$WORK/calibration.json" --update-card
fi

# per-lesion confidence fitted on validation phantoms + the generalisation benchmark of the new weights
nice -n "$NICE" "$PY" benchmarks/bench_generalisation.py --model "$WORK/model" --fit-confidence --resume \
  --family-seeds 0-11 --lesion-free-seeds 100-102 --oblique-seeds 0-11 --fat-suppression-seeds 2100-2119 \
  --threads "$THREADS" --out "$WORK/generalisation"

[ -z "$DEST" ] && exit 0
# ship: the model, its confidence model (from the benchmark's validation rows), its held-out evaluation, model.onnx
MODEL_ID=mm3dunet-phantom-demo
mkdir -p "$DEST"
cp "$WORK/model/weights.pt" "$WORK/model/model_card.json" "$WORK/model/training_curves.png" \
  "$WORK/model/training_report.md" "$DEST/"
cp "$WORK/calibration.json" "$DEST/calibration_validation_phantoms.json"
nice -n "$NICE" "$PY" scripts/calibrate_lesion_confidence.py "$DEST" --seeds 2000-2099 \
  --rows "$WORK/generalisation/$MODEL_ID/cases.jsonl" --update-card
nice -n "$NICE" "$PY" -m breastlesionseg.training.heldout "$DEST" --seeds 0-19 --threads "$THREADS" \
  --update-card --json "$WORK/heldout_phantoms.json" > /dev/null
nice -n "$NICE" "$BLS" export "$DEST" --format onnx --into-model-dir --force
"$PY" - "$DEST" <<'PYEOF'
import json, sys
card = json.load(open(f"{sys.argv[1]}/model_card.json"))
print("update breastlesionseg/nn/shipped_models.py:", {"weights_sha256": card["weights_sha256"],
                                                       "onnx_sha256": card["onnx_export"]["sha256"]})
PYEOF
