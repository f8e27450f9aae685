"""Lesion-present threshold chosen on a fold's validation images (never its test images).

The threshold is the highest one that still calls "lesion present" on at least ``min_sensitivity`` of
the validation images; lesion-free crops of the same validation images give its specificity. Stored as
``fold_<k>/lesion_threshold.json`` and copied into the shipped model card.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..imaging2d.metrics2d import sensitivity_specificity
from ..io.atomic import write_text_atomic
from .train import predict_samples, run_split
from .training_data import evaluation_samples, load_images

THRESHOLD_FILE = "lesion_threshold.json"
MIN_SENSITIVITY = 0.98


def calibrate_lesion_threshold(data_root: str | Path, fold_dir: Path, network: torch.nn.Module, input_size_px: int,
                               fold: int, min_sensitivity: float = MIN_SENSITIVITY) -> dict:
    """Choose and store the threshold; returns ``{"threshold", "val_sensitivity", "val_specificity", ...}``."""
    images = load_images(run_split(data_root, fold_dir, fold)["val"])
    positives, negatives = evaluation_samples(images, input_size_px)
    with torch.inference_mode():
        _, present, _ = predict_samples(network, positives)
        _, absent, _ = predict_samples(network, negatives)
    threshold = float(np.quantile(present, 1.0 - min_sensitivity, method="lower"))
    threshold = min(max(threshold, 0.05), 0.95)
    scores = np.concatenate([present, absent])
    labels = np.concatenate([np.ones(len(present)), np.zeros(len(absent))])
    sensitivity, specificity = sensitivity_specificity(scores, labels, threshold)
    result = {"threshold": threshold, "min_sensitivity": min_sensitivity, "val_sensitivity": sensitivity,
              "val_specificity": specificity, "n_val_images": len(present), "n_val_lesion_free_crops": len(absent)}
    write_text_atomic(fold_dir / THRESHOLD_FILE, json.dumps(result, indent=1), overwrite=True)
    return result
