"""2D lesion metrics (MONAI): Dice, IoU, precision, recall, HD95 in pixels; ROC AUC, sensitivity, specificity."""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch


def _as_batch(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(mask, dtype=bool), dtype=torch.float32)[None, None]


def segmentation_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Overlap and boundary metrics of one (H, W) predicted mask against the (H, W) reference.

    Returns:
        ``dice``, ``iou``, ``precision``, ``recall`` (0..1; 1.0 when both masks are empty) and ``hd95_px``
        (95th-percentile symmetric Hausdorff distance in pixels; NaN when either mask is empty).
    """
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou, compute_confusion_matrix_metric, get_confusion_matrix

    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} differ in shape")
    pred, ref = _as_batch(prediction), _as_batch(truth)
    empty_pred, empty_ref = not prediction.any(), not truth.any()
    if empty_pred and empty_ref:
        return {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0, "hd95_px": 0.0}
    dice = float(compute_dice(pred, ref, include_background=True, ignore_empty=False).nan_to_num(0.0))
    iou = float(compute_iou(pred, ref, include_background=True, ignore_empty=False).nan_to_num(0.0))
    confusion = get_confusion_matrix(pred, ref, include_background=True)
    precision = float(compute_confusion_matrix_metric("precision", confusion).nan_to_num(0.0))
    recall = float(compute_confusion_matrix_metric("sensitivity", confusion).nan_to_num(0.0))
    hd95 = math.nan
    if not (empty_pred or empty_ref):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hd95 = float(compute_hausdorff_distance(pred, ref, include_background=True, percentile=95))
    return {"dice": dice, "iou": iou, "precision": precision, "recall": recall, "hd95_px": hd95}


def dice_score(prediction: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> float:
    """Dice of two masks of one image (1.0 when both are empty); cheap, for validation during training."""
    pred = torch.as_tensor(prediction).bool()
    ref = torch.as_tensor(truth).bool()
    denominator = int(pred.sum()) + int(ref.sum())
    return 1.0 if denominator == 0 else 2.0 * int((pred & ref).sum()) / denominator


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (MONAI); NaN when only one class is present."""
    from monai.metrics import compute_roc_auc

    labels = np.asarray(labels).astype(int)
    if labels.min(initial=0) == labels.max(initial=0) or len(np.unique(labels)) < 2:
        return math.nan
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, dtype=np.float64)), torch.as_tensor(labels)))


def sensitivity_specificity(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    """(sensitivity, specificity) of ``scores >= threshold`` against 0/1 ``labels`` (NaN for an absent class)."""
    scores, labels = np.asarray(scores), np.asarray(labels).astype(bool)
    called = scores >= threshold
    sensitivity = float(called[labels].mean()) if labels.any() else math.nan
    specificity = float((~called[~labels]).mean()) if (~labels).any() else math.nan
    return sensitivity, specificity


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, from (0, 0) to (1, 1)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    tp = np.concatenate([[0], np.cumsum(labels[order])])
    fp = np.concatenate([[0], np.cumsum(~labels[order])])
    return fp / max(int((~labels).sum()), 1), tp / max(int(labels.sum()), 1)
