"""Ship a trained fold as a model folder (weights + 2D model card with data, split, metrics, sha256)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import DatasetError
from ..imaging2d.model_card2d import save_model_2d
from ..imaging2d.writer import json_ready
from ..io.atomic import write_atomic
from ..imaging2d.training_loop import BEST_WEIGHTS, HISTORY_FILE
from .busbra import CITATION, FOLDS_CSV, fold_split, read_busbra
from .evaluate import fold_card, fold_classifier_weights
from .train import fold_config

TRAINING_COMMAND = "scripts/train_ultrasound_model.sh"


def _training_data_text(data_root: Path, fold: int, split: dict[str, list], dataset_folds: bool,
                        config: dict[str, Any]) -> str:
    """What the shipped weights were trained on, in words (BUS-BRA's folds, or a site's own folder)."""
    sizes = (f"trained on {len(split['train'])} images, early-stopped on {len(split['val'])} validation images, "
             f"tested on {len(split['test'])} images of other patients (never seen in training)")
    if dataset_folds:
        data = (f"BUS-BRA breast ultrasound (1,875 images of 1,064 patients, four scanners, biopsy-proven), images "
                f"downscaled to a 256-px longer side; this model: fold {fold} of the dataset's patient-wise 5-fold "
                f"split (5-fold-cv.csv, test kFold == {fold + 1}): {sizes}.")
    else:
        data = (f"Ultrasound images of the folder '{data_root.name}' (bus_data.csv; patient-wise folds derived from "
                f"the Case column); this model: fold {fold}: {sizes}.")
    origin = (f" Fine-tuned from the model '{config.get('init_from_model_id') or config['init_from']}' (weights "
              f"sha256 {config.get('init_from_sha256', '?')})." if config.get("init_from") else
              " Trained from scratch (no ImageNet or other pretrained weights).")
    return data + " Lesion-free crops of the training images served as negatives." + origin


def ship_fold(data_root: str | Path, run_dir: str | Path, fold: int, target: str | Path, report: dict[str, Any],
              overwrite: bool = False) -> Path:
    """Copy ``fold``'s best weights into ``target`` with a model card; returns the folder.

    The card records exactly which images trained (train), early-stopped (validation) and tested the
    weights, the fold's own test metrics and the cross-validation summary of all evaluated folds.
    """
    fold_dir = Path(run_dir) / f"fold_{fold}"
    target = Path(target)
    card = fold_card(fold_dir, target.name)
    config = fold_config(fold_dir)
    if config.get("holdout_device"):
        raise DatasetError(f"'{fold_dir}' is a leave-one-scanner-out experiment (held out: "
                           f"{config['holdout_device']!r}); ship a fold trained on BUS-BRA's own split")
    split = fold_split(read_busbra(data_root), fold)
    history = json.loads((fold_dir / HISTORY_FILE).read_text(encoding="utf-8"))
    best = max(history, key=lambda h: h["val_score"])
    dataset_folds = (Path(data_root) / FOLDS_CSV).is_file()
    card.training_data = _training_data_text(Path(data_root), fold, split, dataset_folds, config)
    card.trained_from_scratch = not config.get("init_from")
    card.dataset_citation = CITATION if dataset_folds else ""
    scheme = "BUS-BRA 5-fold-cv.csv (patient-wise)" if dataset_folds else "derived from the Case column (patient-wise)"
    card.split = {"scheme": scheme, "fold": fold, "test_kFold": fold + 1,
                  "n_train": len(split["train"]), "n_validation": len(split["val"]), "n_test": len(split["test"]),
                  "best_epoch": best["epoch"], "epochs_run": len(history)}
    card.cv_metrics = json_ready({"this_fold_test": report.get("per_fold", {}).get(fold, {}),
                       "folds_evaluated": report.get("folds_evaluated", []),
                       "mean_of_folds": report.get("mean_of_folds", {}), "pooled": report.get("pooled", {})})
    card.training_command = TRAINING_COMMAND
    # the classifiers' files go in before the card that names them
    members = card.crop_classifier["members"] if card.crop_classifier else []
    for member, weights in zip(members, fold_classifier_weights(fold_dir)):
        data = weights.read_bytes()
        write_atomic(target / member["weights_file"], lambda tmp, data=data: tmp.write_bytes(data), overwrite=overwrite)
    state = torch.load(fold_dir / BEST_WEIGHTS, map_location="cpu", weights_only=True)
    return save_model_2d(state, card, target, overwrite=overwrite)
