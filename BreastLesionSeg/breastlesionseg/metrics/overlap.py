"""Voxel-wise overlap of two binary masks: Dice, IoU (Jaccard), precision, recall.

Counts ``TP = |P & R|``, ``FP = |P & ~R|``, ``FN = |~P & R|`` over all voxels (P = prediction, R = reference):

- Dice = 2 TP / (2 TP + FP + FN), IoU = TP / (TP + FP + FN): both 1.0 when both masks are empty
  (perfect agreement, the MONAI ``DiceMetric(ignore_empty=False)`` convention);
- precision = TP / (TP + FP): ``None`` when the prediction is empty (0/0);
- recall (sensitivity) = TP / (TP + FN): ``None`` when the reference is empty (0/0).

Same values as ``monai.metrics.DiceMetric`` / ``MeanIoU`` / ``ConfusionMatrixMetric`` (checked in tests);
plain counting is used here because it needs no one-hot tensors of the whole volume.
"""
from __future__ import annotations

import numpy as np


def overlap_metrics(prediction: np.ndarray, reference: np.ndarray) -> dict:
    """Dice, IoU, precision and recall of two binary masks of the same shape.

    Args:
        prediction: ``(z, y, x)`` mask; any non-zero voxel is foreground.
        reference: ``(z, y, x)`` mask of the same shape.

    Returns:
        ``{"dice", "iou", "precision", "recall", "true_positive_voxels", "false_positive_voxels",
        "false_negative_voxels", "prediction_voxels", "reference_voxels"}`` (undefined ratios are None).
    """
    p = np.asarray(prediction) != 0
    r = np.asarray(reference) != 0
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} != reference shape {r.shape}")
    tp = int(np.count_nonzero(p & r))
    n_p = int(np.count_nonzero(p))
    n_r = int(np.count_nonzero(r))
    fp, fn = n_p - tp, n_r - tp
    union = tp + fp + fn
    return {
        "dice": 1.0 if union == 0 else 2.0 * tp / (2.0 * tp + fp + fn),
        "iou": 1.0 if union == 0 else tp / union,
        "precision": tp / n_p if n_p else None,
        "recall": tp / n_r if n_r else None,
        "true_positive_voxels": tp,
        "false_positive_voxels": fp,
        "false_negative_voxels": fn,
        "prediction_voxels": n_p,
        "reference_voxels": n_r,
    }
