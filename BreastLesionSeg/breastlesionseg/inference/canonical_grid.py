"""Run the network in the orientation it was trained in: an axis-aligned (identity LPS direction) model grid.

The lesion models are trained on axial, LPS-aligned grids. An exam acquired on an oblique grid (a
rotation about one or two axes, or a permuted/flipped axis order) would otherwise reach the network
with its anatomy rotated inside every window. Here the model grid is *canonical*:

* direction: identity (index axes along L, P, S — the orientation of the training data);
* spacing: the model card's target spacing (x, y, z) in mm;
* extent: the axis-aligned bounding box of the crop's physical extent (voxel boxes, not centres),
  centred on the crop's centre, so every crop voxel lies inside it.

For a crop that is already LPS-aligned this is exactly the grid :func:`preprocess.model_grid` builds,
so axial exams give bit-identical results. For an oblique crop the phases are resampled (linear)
from the **full** exam, so the corners of the bounding box hold real neighbouring tissue instead
of an artificial zero border; the breast mask is resampled with nearest neighbour. The network's
probability is mapped back onto the input's own (oblique) crop grid in physical space by
:func:`postprocess.postprocess_probability`, so the outputs stay on the input grid exactly.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..exam import DCEExam
from ..exam.resample import resample_to_grid
from ..geometry import Geometry, Volume
from .preprocess import CroppedExam, resample_to_model

log = logging.getLogger(__name__)

#: direction matrices closer than this (max abs element difference) to identity count as canonical
CANONICAL_DIRECTION_ATOL = 1e-6
#: identity LPS direction, row-major
IDENTITY_DIRECTION: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def is_canonical(geometry: Geometry, atol: float = CANONICAL_DIRECTION_ATOL) -> bool:
    """True when ``geometry``'s direction is the identity (LPS-aligned, axial, no flips) within ``atol``."""
    return bool(np.allclose(geometry.direction_matrix, np.eye(3), atol=atol))


def canonical_model_grid(crop_geometry: Geometry, spacing_mm_xyz: Sequence[float]) -> Geometry:
    """Identity-direction grid at ``spacing_mm_xyz`` covering the physical extent of ``crop_geometry``.

    Args:
        crop_geometry: grid of the cropped pre-contrast image (any direction).
        spacing_mm_xyz: model spacing (x, y, z) in mm.

    Returns:
        A grid with identity direction, the given spacing, ``size_a = ceil(extent_a / spacing_a)``
        (``round`` for an already canonical crop, as :func:`preprocess.model_grid`) where
        ``extent_a = sum_c |D[a, c]| * size_c * spacing_c`` is the LPS bounding-box length of the
        crop's voxel box along axis ``a``, and the same centre as the crop.

    Raises:
        InputError: a spacing that is not 3 positive values.
    """
    new_spacing = np.asarray([float(s) for s in spacing_mm_xyz])
    if new_spacing.shape != (3,) or np.any(~np.isfinite(new_spacing)) or np.any(new_spacing <= 0):
        raise InputError(f"model spacing must be 3 positive mm values (x, y, z), got {spacing_mm_xyz}")
    size = np.asarray(crop_geometry.size, dtype=float)
    edge_mm = size * np.asarray(crop_geometry.spacing)
    extent_mm = np.abs(crop_geometry.direction_matrix) @ edge_mm
    if is_canonical(crop_geometry):  # exactly preprocess.model_grid's size
        new_size = np.maximum(1, np.round(extent_mm / new_spacing)).astype(int)
    else:  # whole voxels covering the rotated box
        new_size = np.maximum(1, np.ceil(extent_mm / new_spacing - 1e-6)).astype(int)
    centre = crop_geometry.index_to_lps((size - 1.0) / 2.0)
    origin = centre - (new_size - 1.0) / 2.0 * new_spacing
    return Geometry(tuple(int(s) for s in new_size), tuple(float(s) for s in new_spacing),
                    tuple(float(v) for v in origin), IDENTITY_DIRECTION)


def resample_to_canonical_model(
    exam: DCEExam,
    breast_mask: Volume,
    cropped: CroppedExam,
    spacing_mm_xyz: Sequence[float],
) -> tuple[DCEExam, np.ndarray, Geometry]:
    """The model input on the canonical model grid (drop-in for :func:`preprocess.resample_to_model`).

    Args:
        exam: the whole exam on its pre grid (the source of oblique resampling).
        breast_mask: 0/1/2 breast region on the exam's pre grid.
        cropped: the optimized-volume crop of the needed phases (:func:`preprocess.crop_exam`).
        spacing_mm_xyz: model spacing (x, y, z) in mm.

    Returns:
        ``(exam on the model grid, breast mask (z, y, x) uint8 on it, model grid)``; the model grid
        has identity direction. Canonical crops go through :func:`preprocess.resample_to_model`
        unchanged.
    """
    if is_canonical(cropped.geometry):
        return resample_to_model(cropped, spacing_mm_xyz)
    target = canonical_model_grid(cropped.geometry, spacing_mm_xyz)
    n_phases = len(cropped.phases)
    phases = []
    for phase in exam.phases[:n_phases]:
        source = phase if phase.array.dtype == np.float32 else phase.with_array(
            np.asarray(phase.array, dtype=np.float32))
        phases.append(resample_to_grid(source, target, "linear", 0.0))
    breast = resample_to_grid(breast_mask, target, "nearest", 0).array
    log.info("oblique exam (%s): the network runs on an LPS-aligned %s grid at %s mm, results are mapped back "
             "onto the input grid", exam.geometry.orientation_code(), "x".join(map(str, target.size)),
             "x".join(f"{s:g}" for s in target.spacing))
    return DCEExam(phases), np.asarray(breast, dtype=np.uint8), target


__all__ = ["CANONICAL_DIRECTION_ATOL", "canonical_model_grid", "is_canonical", "resample_to_canonical_model"]
