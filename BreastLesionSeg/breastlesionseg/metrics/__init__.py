"""Lesion metrics (volume, diameters, centroid, side, kinetics, FTV) and segmentation evaluation.

Public API:
    lesion_metrics(exam, lesion_labels, breast_mask=None, pe_threshold_percent=70.0, early_phase=1,
                   late_phase=-1, ftv_ser_min=None, min_pre_signal=0.0) -> dict (JSON-ready)
    breast_volumes(breast_mask, geometry=None) -> dict
    evaluate_segmentation(prediction, reference, min_lesion_volume_mm3=0, min_iou=0.0) -> dict
    lesion_rows(metrics) / format_lesion_table(metrics): flat rows / text table of lesion_metrics results
"""
from __future__ import annotations

from .detection import lesion_detection, volume_bin
from .evaluate import evaluate_segmentation
from .kinetics import KineticsConfig, classify_curve, lesion_kinetics
from .lesion_shape import lesion_shape_metrics, max_pairwise_distance_mm
from .lesion_table import breast_volumes, format_lesion_table, lesion_metrics, lesion_rows
from .overlap import overlap_metrics
from .surface import surface_distances

__all__ = [
    "KineticsConfig",
    "breast_volumes",
    "classify_curve",
    "evaluate_segmentation",
    "format_lesion_table",
    "lesion_detection",
    "lesion_kinetics",
    "lesion_metrics",
    "lesion_rows",
    "lesion_shape_metrics",
    "max_pairwise_distance_mm",
    "overlap_metrics",
    "surface_distances",
    "volume_bin",
]
