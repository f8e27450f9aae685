"""BI-RADS-like descriptors of a segmented ultrasound lesion: shape, orientation, margin and echo pattern.

The BI-RADS ultrasound lexicon rates a mass by its shape (oval/round vs irregular), orientation (parallel
vs "taller than wide"), margin (circumscribed vs indistinct, angular, spiculated), echo pattern and
posterior features (shadowing). Each descriptor below is a number computed from the image and the
lesion mask only, so it does not depend on the scanner's pixel size (all are ratios or unit-free):

===========================  =========================================================================
``log_area_fraction``         log of the lesion's share of the image area
``roundness``                 SimpleITK roundness (1 for a disc; lower for irregular outlines)
``solidity``                  lesion area / area of its convex hull (1 for convex shapes)
``log_depth_width_ratio``     log(bounding-box height / width); > 0 means "taller than wide"
``elongation``                SimpleITK elongation (major / minor principal axis)
``radial_roughness``          std / mean of the boundary's distance to the centroid
``echo_contrast``             mean intensity inside minus in a surrounding ring (negative: hypoechoic)
``posterior_contrast``        mean intensity below the lesion minus beside it at the same depth
                              (negative: posterior shadowing, positive: enhancement)
``internal_heterogeneity``    intensity standard deviation inside the lesion
``margin_sharpness``          mean gradient magnitude on the boundary
``margin_variation``          std / mean of the gradient magnitude on the boundary (uneven margin)
===========================  =========================================================================

Intensities are the per-image 0.5-99.5 percentile scaling of :mod:`imaging2d.intensity`.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

#: descriptor names, in the order of :func:`describe_lesion`'s vector
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "log_area_fraction", "roundness", "solidity", "log_depth_width_ratio", "elongation", "radial_roughness",
    "echo_contrast", "posterior_contrast", "internal_heterogeneity", "margin_sharpness", "margin_variation",
)
#: ring around the lesion for ``echo_contrast``, as a fraction of the lesion's equivalent diameter (>= 2 px)
RING_FRACTION = 0.2
#: smoothing of the gradient for the margin descriptors, px
GRADIENT_SIGMA_PX = 1.0
#: reach of that gradient filter (scipy's default truncation at 4 sigma), px
GRADIENT_REACH_PX = int(4 * GRADIENT_SIGMA_PX + 0.5) + 1


def largest_component(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected component of ``mask`` (empty stays empty)."""
    from scipy.ndimage import label

    labels, count = label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return labels > 0
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


def _shape(lesion: np.ndarray, boundary: np.ndarray, image_size_px: int) -> dict[str, float]:
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.SetNumberOfThreads(1)  # a few hundred pixels: threads cost more than they save
    stats.Execute(sitk.GetImageFromArray(lesion.astype(np.uint8)))
    area = float(lesion.sum())
    rows, cols = np.nonzero(boundary)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    return {"log_area_fraction": math.log(area / image_size_px), "roundness": stats.GetRoundness(1),
            "solidity": area / _convex_hull_area_px(rows, cols),
            "log_depth_width_ratio": math.log(height / width), "elongation": stats.GetElongation(1)}


def _convex_hull_area_px(rows: np.ndarray, cols: np.ndarray) -> float:
    """Area of the convex hull of the squares of the given (boundary) pixels (>= the lesion's pixel count)."""
    from scipy.spatial import ConvexHull, QhullError

    corners = np.concatenate([np.stack([rows + dr, cols + dc], axis=1) for dr in (-0.5, 0.5) for dc in (-0.5, 0.5)])
    try:
        return float(ConvexHull(corners).volume)
    except QhullError:  # a single row or column of pixels: the hull is the pixels' rectangle
        return float((np.ptp(rows) + 1) * (np.ptp(cols) + 1))


def _boundary(lesion: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return lesion & ~binary_erosion(lesion)


def _margin(unit: np.ndarray, lesion: np.ndarray, boundary: np.ndarray) -> dict[str, float]:
    from scipy.ndimage import gaussian_gradient_magnitude

    rows, cols = np.nonzero(boundary)
    radii = np.hypot(rows - rows.mean(), cols - cols.mean()) if len(rows) > 1 else np.zeros(1)
    gradient = gaussian_gradient_magnitude(unit, GRADIENT_SIGMA_PX)[boundary]
    mean_gradient = float(gradient.mean())
    return {"radial_roughness": float(radii.std() / radii.mean()) if radii.mean() > 0 else 0.0,
            "margin_sharpness": mean_gradient,
            "margin_variation": float(gradient.std() / mean_gradient) if mean_gradient > 0 else 0.0}


def _ring_px(lesion: np.ndarray) -> int:
    return max(2, round(RING_FRACTION * 2.0 * math.sqrt(lesion.sum() / math.pi)))


def _window(lesion: np.ndarray, margin_px: int) -> tuple[slice, slice]:
    """The lesion's bounding box grown by ``margin_px`` and clipped to the image."""
    rows, cols = np.nonzero(lesion)
    return (slice(max(0, rows.min() - margin_px), rows.max() + 1 + margin_px),
            slice(max(0, cols.min() - margin_px), cols.max() + 1 + margin_px))


def _posterior_contrast(unit: np.ndarray, lesion: np.ndarray) -> float:
    rows, cols = np.nonzero(lesion)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    height, width = bottom - top, right - left
    below = unit[bottom:bottom + max(1, height // 2), left:right]
    side_rows = slice(bottom, bottom + max(1, height // 2))
    beside = np.concatenate([unit[side_rows, max(0, left - width):left].ravel(), unit[side_rows, right:right + width].ravel()])
    return float(below.mean() - beside.mean()) if below.size and beside.size else 0.0


def _echo(unit: np.ndarray, lesion: np.ndarray, ring_px: int) -> dict[str, float]:
    """Echo descriptors in a window around the lesion that holds its whole ring (``ring_px`` wide)."""
    from scipy.ndimage import binary_dilation

    inside = unit[lesion]
    ring = binary_dilation(lesion, iterations=ring_px) & ~lesion
    return {"echo_contrast": float(inside.mean() - unit[ring].mean()) if ring.any() else 0.0,
            "internal_heterogeneity": float(inside.std())}


def describe_lesion(unit_pixels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The descriptors of :data:`DESCRIPTOR_NAMES` for the largest component of ``mask``.

    Args:
        unit_pixels: (H, W) float image scaled to 0..1 (``imaging2d.intensity.scale_to_unit``).
        mask: (H, W) lesion mask (bool or 0/1), same size, not empty.
    Returns:
        ``{name: value}`` in the order of :data:`DESCRIPTOR_NAMES`.
    Raises:
        InputError: shapes differ or the mask is empty.
    """
    unit = np.asarray(unit_pixels, dtype=np.float32)
    mask = np.asarray(mask).astype(bool)
    if unit.ndim != 2 or unit.shape != mask.shape:
        raise InputError(f"describe_lesion: image {unit.shape} and mask {mask.shape} must be the same (H, W)")
    if not mask.any():
        raise InputError("describe_lesion: the lesion mask is empty")
    lesion = largest_component(mask)
    ring_px = _ring_px(lesion)
    # every local descriptor in a window around the lesion (same values as on the whole image: the window
    # holds the ring and the gradient filter's reach, or ends where the image ends)
    window = _window(lesion, max(ring_px, GRADIENT_REACH_PX) + 1)
    unit_w, lesion_w = unit[window], lesion[window]
    boundary_w = _boundary(lesion_w)
    values = {**_shape(lesion_w, boundary_w, unit.size), **_margin(unit_w, lesion_w, boundary_w),
              **_echo(unit_w, lesion_w, ring_px), "posterior_contrast": _posterior_contrast(unit, lesion)}
    return {name: float(values[name]) for name in DESCRIPTOR_NAMES}
