"""Lesion-wise detection: true positives, false positives and false negatives, overall and by lesion volume.

Lesions are instances of the label maps (see :func:`._inputs.instance_labels`: a binary map is split
into connected components). Lesions smaller than ``min_lesion_volume_mm3`` are ignored on both sides.

Matching rule: a predicted lesion and a reference lesion match when they share at least one voxel and
their IoU (intersection over union of the two lesions) is >= ``min_iou`` (default 0: any overlap, the
usual rule for small breast lesions; use e.g. 0.1 for a stricter rule).

- TP: a reference lesion matched by at least one predicted lesion (counted once per reference lesion);
- FN: a reference lesion matched by none;
- FP: a predicted lesion that matches no reference lesion.

Volume bins (Narimani et al., Table 5): ``lt10`` V < 10 mm3, ``10to20`` 10 <= V <= 20 mm3,
``gt20`` V > 20 mm3; TP and FN are binned by the reference lesion's volume, FP by the predicted lesion's.
"""
from __future__ import annotations

import numpy as np

VOLUME_BINS_MM3 = (("lt10", 0.0, 10.0), ("10to20", 10.0, 20.0), ("gt20", 20.0, np.inf))


def volume_bin(volume_mm3: float) -> str:
    """Name of the volume bin of a lesion (see the module docstring)."""
    if volume_mm3 < 10.0:
        return "lt10"
    if volume_mm3 <= 20.0:
        return "10to20"
    return "gt20"


def _volumes(labels: np.ndarray, voxel_mm3: float) -> dict[int, float]:
    counts = np.bincount(labels[labels != 0].astype(np.int64, copy=False))
    return {int(v): float(c) * voxel_mm3 for v, c in enumerate(counts) if c}


def _pair_counts(pred: np.ndarray, ref: np.ndarray) -> list[tuple[int, int, int]]:
    """``(pred_label, ref_label, shared voxels)`` for every overlapping pair of lesions."""
    both = (pred != 0) & (ref != 0)
    p = pred[both].astype(np.int64, copy=False)
    r = ref[both].astype(np.int64, copy=False)
    if p.size == 0:
        return []
    base = int(r.max()) + 1
    keys = p * base + r
    if (int(p.max()) + 1) * base <= 4_000_000:  # few labels: linear-time histogram
        hist = np.bincount(keys)
        keys = np.nonzero(hist)[0]
        counts = hist[keys]
    else:  # many labels: one 1-D sort
        keys, counts = np.unique(keys, return_counts=True)
    return [(int(k // base), int(k % base), int(c)) for k, c in zip(keys, counts)]


def lesion_detection(
    prediction_instances: np.ndarray,
    reference_instances: np.ndarray,
    voxel_volume_mm3: float,
    min_lesion_volume_mm3: float = 0.0,
    min_iou: float = 0.0,
) -> dict:
    """Match predicted to reference lesions and count TP / FP / FN.

    Args:
        prediction_instances: ``(z, y, x)`` int instance map of the prediction (0 background).
        reference_instances: ``(z, y, x)`` int instance map of the reference, same shape.
        voxel_volume_mm3: volume of one voxel.
        min_lesion_volume_mm3: lesions below this volume are ignored on both sides.
        min_iou: IoU a pair needs (on top of sharing a voxel) to match.

    Returns:
        JSON-ready dict: ``{"rule", "counts": {"tp", "fp", "fn"}, "counts_by_volume_mm3": {bin: {...}},
        "sensitivity", "reference_lesions": [...], "predicted_lesions": [...]}``.
    """
    if prediction_instances.shape != reference_instances.shape:
        raise ValueError(f"shapes differ: {prediction_instances.shape} vs {reference_instances.shape}")
    if min_lesion_volume_mm3 < 0 or not np.isfinite(min_lesion_volume_mm3):
        raise ValueError(f"min_lesion_volume_mm3 must be >= 0, got {min_lesion_volume_mm3}")
    vol_p = {k: v for k, v in _volumes(prediction_instances, voxel_volume_mm3).items() if v >= min_lesion_volume_mm3}
    vol_r = {k: v for k, v in _volumes(reference_instances, voxel_volume_mm3).items() if v >= min_lesion_volume_mm3}

    matches: dict[tuple[int, int], dict] = {}
    for lp, lr, n in _pair_counts(prediction_instances, reference_instances):
        if lp not in vol_p or lr not in vol_r:
            continue
        inter_mm3 = n * voxel_volume_mm3
        iou = inter_mm3 / (vol_p[lp] + vol_r[lr] - inter_mm3)
        if iou >= min_iou:
            matches[(lp, lr)] = {"iou": iou, "dice": 2 * inter_mm3 / (vol_p[lp] + vol_r[lr])}

    counts_by_bin = {name: {"tp": 0, "fp": 0, "fn": 0} for name, _, _ in VOLUME_BINS_MM3}
    ref_out = []
    for lr, v in sorted(vol_r.items()):
        m = {lp: d for (lp, r), d in matches.items() if r == lr}
        detected = bool(m)
        b = volume_bin(v)
        counts_by_bin[b]["tp" if detected else "fn"] += 1
        best = max(m.items(), key=lambda kv: kv[1]["iou"]) if m else None
        ref_out.append(
            {
                "reference_label": lr,
                "volume_mm3": v,
                "volume_bin": b,
                "detected": detected,
                "matched_prediction_labels": sorted(m),
                "best_iou": best[1]["iou"] if best else 0.0,
                "best_dice": best[1]["dice"] if best else 0.0,
            }
        )
    pred_out = []
    for lp, v in sorted(vol_p.items()):
        m = sorted(r for (p, r) in matches if p == lp)
        b = volume_bin(v)
        if not m:
            counts_by_bin[b]["fp"] += 1
        pred_out.append(
            {
                "prediction_label": lp,
                "volume_mm3": v,
                "volume_bin": b,
                "true_positive": bool(m),
                "matched_reference_labels": m,
            }
        )
    tp = sum(c["tp"] for c in counts_by_bin.values())
    fn = sum(c["fn"] for c in counts_by_bin.values())
    fp = sum(c["fp"] for c in counts_by_bin.values())
    return {
        "rule": f"match = shared voxel and IoU >= {min_iou:g}; lesions < {min_lesion_volume_mm3:g} mm3 ignored",
        "min_iou": float(min_iou),
        "min_lesion_volume_mm3": float(min_lesion_volume_mm3),
        "counts": {"tp": tp, "fp": fp, "fn": fn},
        "counts_by_volume_mm3": counts_by_bin,
        "volume_bins_mm3": {name: [lo, None if np.isinf(hi) else hi] for name, lo, hi in VOLUME_BINS_MM3},
        "sensitivity": tp / (tp + fn) if (tp + fn) else None,
        "reference_lesions": ref_out,
        "predicted_lesions": pred_out,
    }


__all__ = ["VOLUME_BINS_MM3", "lesion_detection", "volume_bin"]
