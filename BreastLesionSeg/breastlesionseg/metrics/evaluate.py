"""Evaluation of a predicted lesion segmentation against a reference: voxel, surface and lesion-wise metrics."""
from __future__ import annotations

import logging
import time

import numpy as np

from ..errors import InputError
from ..geometry import Volume
from ._inputs import check_same_grid, describe, instance_labels, label_array
from .detection import lesion_detection
from .overlap import overlap_metrics
from .surface import surface_distances

log = logging.getLogger(__name__)


def evaluate_segmentation(
    prediction: Volume,
    reference: Volume,
    min_lesion_volume_mm3: float = 0.0,
    min_iou: float = 0.0,
    fully_connected: bool = True,
    surface_distances_mm: bool = True,
) -> dict:
    """Compare a predicted lesion map with a reference lesion map on the same grid.

    Voxel-wise metrics treat any non-zero voxel as lesion (:mod:`.overlap`); surface distances are in mm
    (:mod:`.surface`); lesion-wise detection uses the instance labels, or connected components of a binary
    map (:mod:`.detection`, rule and volume bins documented there).

    Args:
        prediction: predicted lesion map (binary or instance labels), a :class:`Volume`.
        reference: reference lesion map on the same grid.
        min_lesion_volume_mm3: lesions smaller than this are ignored in the lesion-wise detection
            (the voxel-wise and surface metrics use every voxel).
        min_iou: IoU a predicted/reference lesion pair needs to match (0 = any overlap).
        fully_connected: 26-connectivity (True) or 6-connectivity for the components of binary maps.
        surface_distances_mm: compute HD95 / ASD (the slowest part for large masks such as whole breasts:
            ~5-10 s on a 448 x 448 x 160 grid on 2 CPU cores); False leaves them None.

    Returns:
        JSON-ready dict: ``{"dice", "iou", "precision", "recall", "hd95_mm", "asd_mm", ... voxel counts,
        "detection": {...}, "grid": {...}, "prediction": name, "reference": name, "timings_s": {...}}``;
        undefined values are None.

    Raises:
        GeometryError: the two maps are not on the same grid (the message names both).
        InputError: non-integer or negative labels, bad parameters.
    """
    check_same_grid(prediction, reference, "prediction", "reference")
    if not np.isfinite(min_lesion_volume_mm3) or min_lesion_volume_mm3 < 0:
        raise InputError(f"min_lesion_volume_mm3 must be >= 0, got {min_lesion_volume_mm3}")
    if not 0.0 <= min_iou <= 1.0:
        raise InputError(f"min_iou must be in [0, 1], got {min_iou}")
    geometry = reference.geometry
    pred = label_array(prediction, geometry, describe(prediction, "prediction"))
    ref = label_array(reference, geometry, describe(reference, "reference"))
    timings = {}
    t0 = time.perf_counter()
    result = overlap_metrics(pred, ref)
    timings["overlap_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if surface_distances_mm:
        result.update(surface_distances(pred, ref, geometry))
    else:
        result.update({"hd95_mm": None, "asd_mm": None, "surface_distance_note": "not computed"})
    timings["surface_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result["detection"] = lesion_detection(
        instance_labels(pred, fully_connected),
        instance_labels(ref, fully_connected),
        geometry.voxel_volume_mm3,
        min_lesion_volume_mm3=min_lesion_volume_mm3,
        min_iou=min_iou,
    )
    timings["detection_s"] = time.perf_counter() - t0
    vox = geometry.voxel_volume_mm3
    result["prediction_volume_mm3"] = result["prediction_voxels"] * vox
    result["reference_volume_mm3"] = result["reference_voxels"] * vox
    result["prediction"] = prediction.source or prediction.name
    result["reference"] = reference.source or reference.name
    result["grid"] = geometry.to_dict()
    result["timings_s"] = timings
    return result
