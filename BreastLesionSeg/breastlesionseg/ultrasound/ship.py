"""Ship a trained fold as a model folder (weights + 2D model card with data, split, metrics, sha256)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import DatasetError
from ..imaging2d.model_card2d import save_model_2d
from ..imaging2d.writer import json_ready
from ..imaging2d.training_loop import BEST_WEIGHTS, HISTORY_FILE
from .busbra import CITATION, fold_split, read_busbra
from .evaluate import fold_card
from .train import CONFIG_FILE

TRAINING_COMMAND = "scripts/train_ultrasound_model.sh"


def ship_fold(data_root: str | Path, run_dir: str | Path, fold: int, target: str | Path, report: dict[str, Any],
              overwrite: bool = False) -> Path:
    """Copy ``fold``'s best weights into ``target`` with a model card; returns the folder.

    The card records exactly which images trained (train), early-stopped (validation) and tested the
    weights, the fold's own test metrics and the cross-validation summary of all evaluated folds.
    """
    fold_dir = Path(run_dir) / f"fold_{fold}"
    target = Path(target)
    card = fold_card(fold_dir, target.name)
    config = json.loads((fold_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("holdout_device"):
        raise DatasetError(f"'{fold_dir}' is a leave-one-scanner-out experiment (held out: "
                           f"{config['holdout_device']!r}); ship a fold trained on BUS-BRA's own split")
    split = fold_split(read_busbra(data_root), fold)
    history = json.loads((fold_dir / HISTORY_FILE).read_text(encoding="utf-8"))
    best = max(history, key=lambda h: h["val_score"])
    card.training_data = (
        f"BUS-BRA breast ultrasound (1,875 images of 1,064 patients, four scanners, biopsy-proven), images downscaled "
        f"to a 256-px longer side; this model: fold {fold} of the dataset's patient-wise 5-fold split "
        f"(5-fold-cv.csv): trained on {len(split['train'])} images, early-stopped on {len(split['val'])} validation "
        f"images, tested on the {len(split['test'])} images of kFold == {fold + 1} (never seen in training). "
        "Lesion-free crops of the training images served as negatives. Trained from scratch (no ImageNet or other "
        "pretrained weights).")
    card.dataset_citation = CITATION
    card.split = {"scheme": "BUS-BRA 5-fold-cv.csv (patient-wise)", "fold": fold, "test_kFold": fold + 1,
                  "n_train": len(split["train"]), "n_validation": len(split["val"]), "n_test": len(split["test"]),
                  "best_epoch": best["epoch"], "epochs_run": len(history)}
    card.cv_metrics = json_ready({"this_fold_test": report.get("per_fold", {}).get(fold, {}),
                       "folds_evaluated": report.get("folds_evaluated", []),
                       "mean_of_folds": report.get("mean_of_folds", {}), "pooled": report.get("pooled", {})})
    card.training_command = TRAINING_COMMAND
    state = torch.load(fold_dir / BEST_WEIGHTS, map_location="cpu", weights_only=True)
    return save_model_2d(state, card, target, overwrite=overwrite)
