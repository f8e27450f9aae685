"""Per-component features of a candidate lesion map, for the per-lesion confidence score.

Every connected component of the thresholded probability map gets the same fixed set of numbers
(:data:`COMPONENT_FEATURE_NAMES`), all physical (mm, percent) so they mean the same on any grid:

* ``log10_volume_mm3`` — size;
* ``probability_mean`` / ``probability_max`` — the network's own certainty over the component;
* ``elongation`` — sqrt(largest / smallest principal variance) of the voxel positions in mm
  (a voxel's own extent, spacing^2 / 12, is added so single-slice components stay finite);
  vessels are long and thin, masses round;
* ``linearity`` — (l1 - l2) / l1 of the principal variances (1 = a line, 0 = a disc or a ball);
* ``breast_edge_fraction`` — fraction of the component's voxels within :data:`EDGE_DISTANCE_MM`
  of the outside of the breast region (skin, chest wall, axillary limit);
* ``edge_distance_mm`` — median distance of the component's voxels to the outside of the breast region,
  at most :data:`EDGE_DISTANCE_CAP_MM` (axillary lymph nodes lie at the lateral, posterior edge);
* ``early_enhancement_percent`` — median of 100 (post1 - pre) / pre over the component;
* ``late_change_percent`` — median of 100 (post_last - post1) / post1 (washout < 0 < persistent);
* ``initial_slow_percent``, ``delayed_persistent_percent``, ``delayed_washout_percent`` — how far the two
  kinetic medians lie beyond the ACR BI-RADS MRI lexicon cut-offs (2nd ed. 2013): early enhancement below
  :data:`SLOW_INITIAL_PERCENT` (slow initial phase), late change above +:data:`PLATEAU_BAND_PERCENT`
  (persistent) or below -:data:`PLATEAU_BAND_PERCENT` (washout); 0 inside the band. A logistic model
  cannot bend a single kinetic number into these curve types itself; background parenchymal enhancement
  (slow, persistent) and masses (fast, plateau or washout) differ in them.

Features are computed per component inside its bounding box (plus a margin), never on the whole
image, so the cost grows with the number of components, not with the exam.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..geometry import Geometry
from .kinetics import PLATEAU_BAND_PERCENT

#: the features of one component, in the order the confidence model uses them
COMPONENT_FEATURE_NAMES: tuple[str, ...] = (
    "log10_volume_mm3",
    "probability_mean",
    "probability_max",
    "elongation",
    "linearity",
    "breast_edge_fraction",
    "edge_distance_mm",
    "early_enhancement_percent",
    "late_change_percent",
    "initial_slow_percent",
    "delayed_persistent_percent",
    "delayed_washout_percent",
)
#: a voxel this close (mm) to the outside of the breast region counts as touching its edge
EDGE_DISTANCE_MM = 4.0
#: distances to the breast region's edge are measured up to this (mm); deeper components get this value
EDGE_DISTANCE_CAP_MM = 20.0
#: early enhancement (percent) below which the initial phase is slow (BI-RADS: slow < 50 % <= medium)
SLOW_INITIAL_PERCENT = 50.0
#: denominator floor of the percent-enhancement ratios (signal units; avoids division by ~0 in air)
_MIN_SIGNAL = 1.0


def _principal_variances(index_zyx: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Eigenvalues (descending, mm2) of the covariance of the voxel centres, plus each voxel's own extent."""
    ijk = index_zyx[:, ::-1].astype(float)
    lps = geometry.index_to_lps(ijk)
    cov = np.cov(lps, rowvar=False) if lps.shape[0] > 1 else np.zeros((3, 3))
    d = geometry.direction_matrix
    cov = cov + d @ np.diag(np.asarray(geometry.spacing) ** 2 / 12.0) @ d.T
    return np.sort(np.linalg.eigvalsh(cov))[::-1]


def _edge_features(component: np.ndarray, breast: np.ndarray | None, spacing_zyx: np.ndarray) -> dict[str, float]:
    """``breast_edge_fraction`` and ``edge_distance_mm`` of ``component`` (a box reaching at least
    :data:`EDGE_DISTANCE_CAP_MM` beyond it; ``breast`` on the same box, or None: no edge in reach)."""
    if breast is None or np.all(breast > 0):
        return {"breast_edge_fraction": 0.0, "edge_distance_mm": EDGE_DISTANCE_CAP_MM}
    dist = ndimage.distance_transform_edt(breast > 0, sampling=spacing_zyx)[component]
    return {"breast_edge_fraction": float(np.mean(dist <= EDGE_DISTANCE_MM)),
            "edge_distance_mm": float(min(np.median(dist), EDGE_DISTANCE_CAP_MM))}


def _box(sl: tuple[slice, ...], margin: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(sl, margin, shape))


def component_geometry_features(
    labels: np.ndarray,
    probability: np.ndarray,
    breast: np.ndarray | None,
    geometry: Geometry,
) -> dict[int, dict[str, float]]:
    """Size, probability, shape and breast-edge features of every component of ``labels``.

    Args:
        labels: (z, y, x) integer components 1..N on ``geometry`` (0 background).
        probability: (z, y, x) lesion probability in [0, 1] on the same grid.
        breast: (z, y, x) breast region (non-zero inside) on the same grid, or ``None`` (edge fraction 0).
        geometry: the grid (for physical distances).

    Returns:
        ``{label: {feature name: value}}`` for the features other than the kinetic ones.
    """
    if labels.shape != probability.shape or (breast is not None and breast.shape != labels.shape):
        raise InputError(f"component features: labels {labels.shape}, probability {probability.shape} and breast "
                         f"{None if breast is None else breast.shape} must have the same (z, y, x) shape")
    spacing_zyx = np.asarray(geometry.spacing[::-1], dtype=float)
    margin = [int(math.ceil(EDGE_DISTANCE_CAP_MM / s)) + 1 for s in spacing_zyx]
    out: dict[int, dict[str, float]] = {}
    for label, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        box = _box(sl, margin, labels.shape)
        comp = labels[box] == label
        idx = np.argwhere(comp) + np.array([b.start for b in box])
        prob = probability[box][comp]
        ev = _principal_variances(idx, geometry)
        out[label] = {
            "log10_volume_mm3": math.log10(max(comp.sum() * geometry.voxel_volume_mm3, 1e-3)),
            "probability_mean": float(prob.mean()),
            "probability_max": float(prob.max()),
            "elongation": float(math.sqrt(ev[0] / max(ev[2], 1e-9))),
            "linearity": float((ev[0] - ev[1]) / max(ev[0], 1e-9)),
            **_edge_features(comp, None if breast is None else breast[box], spacing_zyx),
        }
    return out


def kinetic_descriptor_features(early_enhancement_percent: float, late_change_percent: float) -> dict[str, float]:
    """The BI-RADS curve-type distances (percent, >= 0) of a component's early enhancement and late change."""
    return {"initial_slow_percent": max(0.0, SLOW_INITIAL_PERCENT - early_enhancement_percent),
            "delayed_persistent_percent": max(0.0, late_change_percent - PLATEAU_BAND_PERCENT),
            "delayed_washout_percent": max(0.0, -PLATEAU_BAND_PERCENT - late_change_percent)}


def with_kinetic_descriptors(row: dict) -> dict:
    """``row`` (a component's feature dict) with its kinetic descriptors added when it carries only the two
    kinetic medians (e.g. component rows saved by an earlier benchmark run); its own values win."""
    return {**kinetic_descriptor_features(float(row["early_enhancement_percent"]),
                                          float(row["late_change_percent"])), **row}


def component_kinetic_features(labels: np.ndarray, phases: Sequence[np.ndarray],
                               offset_zyx: Sequence[int] = (0, 0, 0)) -> dict[int, dict[str, float]]:
    """Early enhancement and late change (percent, medians) of every component of ``labels``.

    Args:
        labels: (z, y, x) integer components 1..N (e.g. on a crop of the phases' grid).
        phases: ``[pre, post1, ..., postK]`` arrays (K >= 1; late change 0 when K = 1); voxel
            ``labels[i]`` lies at ``phases[k][i + offset_zyx]``.
        offset_zyx: index of ``labels[0, 0, 0]`` in the phases (a crop's start; may be negative when
            the crop was padded: voxels outside the phases are ignored).

    Returns:
        ``{label: {"early_enhancement_percent": .., "late_change_percent": .., **kinetic descriptors}}``
        (:func:`kinetic_descriptor_features`).
    """
    if len(phases) < 2:
        raise InputError(f"component kinetics need a pre and at least one post-contrast phase, got {len(phases)}")
    shape = np.asarray(phases[0].shape)
    off = np.asarray([int(o) for o in offset_zyx])
    out: dict[int, dict[str, float]] = {}
    for label, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        lo = np.maximum([s.start for s in sl], -off)
        hi = np.minimum([s.stop for s in sl], shape - off)
        if np.any(hi <= lo):
            continue
        own = tuple(slice(a, b) for a, b in zip(lo, hi))
        full = tuple(slice(a + o, b + o) for a, b, o in zip(lo, hi, off))
        comp = labels[own] == label
        if not comp.any():
            continue
        pre = np.asarray(phases[0][full], dtype=np.float32)[comp]
        post1 = np.asarray(phases[1][full], dtype=np.float32)[comp]
        last = np.asarray(phases[-1][full], dtype=np.float32)[comp]
        early = 100.0 * (post1 - pre) / np.maximum(pre, _MIN_SIGNAL)
        late = 100.0 * (last - post1) / np.maximum(post1, _MIN_SIGNAL)
        early_percent = float(np.median(early))
        late_percent = float(np.median(late)) if len(phases) > 2 else 0.0
        out[label] = {"early_enhancement_percent": early_percent, "late_change_percent": late_percent,
                      **kinetic_descriptor_features(early_percent, late_percent)}
    return out


__all__ = ["COMPONENT_FEATURE_NAMES", "EDGE_DISTANCE_CAP_MM", "EDGE_DISTANCE_MM", "PLATEAU_BAND_PERCENT",
           "SLOW_INITIAL_PERCENT", "component_geometry_features", "component_kinetic_features",
           "kinetic_descriptor_features", "with_kinetic_descriptors"]
