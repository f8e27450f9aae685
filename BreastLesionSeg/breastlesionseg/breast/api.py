"""One entry point for the breast region, whatever the method: :func:`segment_breast_region`."""
from __future__ import annotations

import logging
import time
from typing import Sequence, Union

import numpy as np

from ..errors import InputError
from ..exam.dce_exam import DCEExam
from ..geometry import Volume
from .classical import segment_classical, validate_phases
from .config import BreastRegionConfig
from .result import BreastRegionResult, breast_volume_warnings, breast_volumes_ml

log = logging.getLogger(__name__)

ExamInput = Union[DCEExam, Volume, Sequence[Volume]]


def _phases_of(exam: ExamInput) -> list[Volume]:
    if isinstance(exam, DCEExam):
        return list(exam.phases)
    if isinstance(exam, Volume):
        return [exam]
    if isinstance(exam, (list, tuple)) and all(isinstance(p, Volume) for p in exam):
        return list(exam)
    raise InputError(
        f"segment_breast_region: expected a DCEExam, a Volume (pre-contrast) or a list of Volumes "
        f"[pre, post1, ...]; got {type(exam).__name__}"
    )


def segment_breast_region(exam: ExamInput, config: BreastRegionConfig | None = None) -> BreastRegionResult:
    """Segment the left and right breast region of an exam (definition: docs/breast_region.md).

    Args:
        exam: a :class:`DCEExam` (``[pre, post1, ...]`` on one grid), or just the pre-contrast
            :class:`Volume` (single-phase images work too), or a list of Volumes on one grid.
        config: method and parameters; default: the classical, training-free method.

    Returns:
        :class:`BreastRegionResult` with a uint8 0/1/2 mask on the pre-contrast grid (exact geometry),
        the breast volumes in mL, the method and timings.

    Raises:
        InputError: empty, 2D, constant or non-finite images, phases on different grids, bad config.
        ModelError: ``method="model"`` and the model cannot be loaded or is not a breast-region model.
    """
    config = config or BreastRegionConfig()
    if not isinstance(config, BreastRegionConfig):
        raise InputError(f"segment_breast_region: config must be a BreastRegionConfig, got {type(config).__name__}")
    phases = _phases_of(exam)
    validate_phases(phases)
    t0 = time.perf_counter()
    geometry = phases[0].geometry
    if config.method == "classical":
        mask_arr, diag = segment_classical(phases, config)
        timings = dict(diag.timings_s)
        details = {
            "working_spacing_mm": list(diag.working_spacing_mm),
            "has_air": diag.has_air,
            "chest_wall_found_fraction": diag.chest_wall_found_fraction,
            "midline_lps_x_mm": diag.midline_lps_x_mm,
            "single_breast": diag.single_breast,
            "fat_saturated": diag.fat_saturated,
            "sternal_surface_y_mm": diag.sternal_surface_y_mm,
        }
        method = "classical"
    else:
        from .learned import segment_learned

        mask_arr, info = segment_learned(phases, config)
        timings = dict(info.pop("timings_s", {}))
        details = info
        method = f"model:{info.get('model_id', config.model)}"
    mask = Volume(np.ascontiguousarray(mask_arr, dtype=np.uint8), geometry, name="breast_mask",
                  source=phases[0].source)
    timings["total_s"] = time.perf_counter() - t0
    volumes = breast_volumes_ml(mask)
    if volumes["total"] == 0:
        log.warning("no breast region found in '%s'", phases[0].name or phases[0].source)
    warnings = breast_volume_warnings(volumes, phases[0].source or phases[0].name)
    for text in warnings:
        log.warning("%s", text)
    return BreastRegionResult(mask=mask, volumes_ml=volumes, method=method, timings_s=timings, details=details,
                              warnings=warnings)
