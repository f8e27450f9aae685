"""Enhancing structures that are NOT lesions: the false-positive sources of real breast DCE-MRI.

All off in the default configuration (so the default phantom is unchanged); switched on by
:class:`~breastlesionseg.phantom.config.PhantomConfig` fields and drawn from their own random stream:

* **vessel trees** (``vessel_trees`` per breast): a trunk entering from the chest wall or the axilla
  and heading towards the nipple, with two generations of branches (quadratic Bezier tubes, radius
  0.7 x per generation). Each tree is *arterial* (early peak, then washout — enhances like a
  malignant mass in the first post phase) or *venous* (slow rise, brightest in the last phase);
* **axillary lymph nodes** (``axillary_nodes`` per side): enhancing ovals 5-14 mm at the lateral,
  posterior edge of the breast region (inside or just outside it), plateau/washout kinetics;
* **skin folds** (``skin_folds`` per breast): curved enhancing skin tubes just under the medial or
  inferior skin surface (skin enhancement), where two skin surfaces touch.

Lesion labels never include them: the network must learn to leave them out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import Geometry
from .anatomy import FAT, GLAND, SKIN, AnatomyMaps, BreastShape, PatientAnatomy, Vessel, render_tube_fraction
from .grid import VoxelCoordinates, bbox_slices

#: radius range (mm) of a tree's trunk
TRUNK_RADIUS_MM = (1.2, 2.4)
#: diameter range (mm) of an axillary lymph node
NODE_DIAMETER_MM = (5.0, 14.0)


@dataclass
class DistractorMaps:
    """Partial-volume fractions (z, y, x) float32 of the distractors and their description.

    Attributes:
        arterial: fraction of arterial vessel.
        venous: fraction of venous vessel.
        node: fraction of lymph node (enhancing soft tissue).
        node_early_percent: early enhancement of the nodes in percent (one value per exam).
        node_late_change: relative late change of the nodes (first -> last post phase).
        description: JSON-ready summary (counts, radii, positions).
    """

    arterial: np.ndarray
    venous: np.ndarray
    node: np.ndarray
    node_early_percent: float
    node_late_change: float
    description: dict


def _breast_point(br: BreastShape, t: float, r: float, ang: float) -> np.ndarray:
    """LPS point at depth fraction ``t``, relative radius ``r`` and angle ``ang`` inside the mound."""
    rad = math.sqrt(max(float(br.profile(t)), 0.0)) * r
    u = rad * br.A * math.cos(ang) + br.sag_lat * br.D * t * t
    w = rad * br.C * math.sin(ang) + br.sag_si * br.D * t * t
    return np.array([br.base[0] + br.side * u, br.base[1] - t * br.D, br.base[2] + w])


def _tree(rng: np.random.Generator, br: BreastShape) -> list[Vessel]:
    """One branching vessel tree in breast ``br`` (trunk + 2 generations of branches)."""
    t0 = rng.uniform(-0.05, 0.1)
    start = _breast_point(br, t0, rng.uniform(0.5, 1.0), rng.uniform(0, 2 * math.pi))
    end = _breast_point(br, rng.uniform(0.6, 0.95), rng.uniform(0.0, 0.4), rng.uniform(0, 2 * math.pi))
    radius = float(rng.uniform(*TRUNK_RADIUS_MM))
    trunk = Vessel(tuple(start), tuple(0.5 * (start + end) + rng.normal(0, 10.0, 3)), tuple(end), radius, "tree")
    out = [trunk]
    parents = [trunk]
    for _generation in range(2):
        children = []
        for parent in parents:
            pts = parent.points(2.0)
            for _ in range(int(rng.integers(1, 4))):
                p0 = pts[int(rng.integers(len(pts) // 5, max(len(pts) - 1, len(pts) // 5 + 1)))]
                direction = rng.normal(0, 1, 3)
                direction /= max(np.linalg.norm(direction), 1e-9)
                length = rng.uniform(15.0, 40.0)
                p2 = p0 + direction * length
                p1 = 0.5 * (p0 + p2) + rng.normal(0, 4.0, 3)
                children.append(Vessel(tuple(p0), tuple(p1), tuple(p2), max(parent.radius_mm * 0.7, 0.6), "tree"))
        out += children
        parents = children
    return out


def _node_centre(rng: np.random.Generator, br: BreastShape) -> np.ndarray:
    """Centre of an axillary node: the lateral (upper-outer), posterior part of the breast near its edge."""
    return _breast_point(br, rng.uniform(-0.05, 0.25), rng.uniform(0.75, 1.0), rng.uniform(-0.2, 0.9))


def _render_ball(geometry: Geometry, coords: VoxelCoordinates, centre: np.ndarray, radii: np.ndarray,
                 out: np.ndarray) -> None:
    sl = bbox_slices(geometry, centre - radii - 2.0, centre + radii + 2.0)
    if sl is None:
        return
    q = ((coords.x[sl] - np.float32(centre[0])) / np.float32(radii[0])) ** 2 \
        + ((coords.y[sl] - np.float32(centre[1])) / np.float32(radii[1])) ** 2 \
        + ((coords.z[sl] - np.float32(centre[2])) / np.float32(radii[2])) ** 2
    h = float(min(geometry.spacing)) / float(min(radii))
    frac = np.clip((1.0 - np.sqrt(q)) / h + 0.5, 0.0, 1.0).astype(np.float32)
    np.maximum(out[sl], frac, out=out[sl])


def draw_distractors(
    rng: np.random.Generator,
    anatomy: PatientAnatomy,
    maps: AnatomyMaps,
    geometry: Geometry,
    coords: VoxelCoordinates,
    vessel_trees: int,
    arterial_fraction: float,
    axillary_nodes: int,
    skin_folds: int,
) -> DistractorMaps:
    """Draw and voxelise the distractors; skin folds are written into ``maps.tissue`` (as skin) in place."""
    shape = geometry.shape_zyx
    arterial = np.zeros(shape, np.float32)
    venous = np.zeros(shape, np.float32)
    node = np.zeros(shape, np.float32)
    desc: dict = {"vessel_trees": [], "axillary_nodes": [], "skin_folds": []}
    for br in anatomy.breasts:
        for _ in range(vessel_trees):
            kind = "arterial" if rng.random() < arterial_fraction else "venous"
            vessels = _tree(rng, br)
            for ves in vessels:
                render_tube_fraction(geometry, coords, ves.points(), ves.radius_mm, arterial if kind == "arterial" else venous)
            desc["vessel_trees"].append({"kind": kind, "side": br.side, "n_segments": len(vessels),
                                         "trunk_radius_mm": vessels[0].radius_mm})
        for _ in range(axillary_nodes):
            centre = _node_centre(rng, br)
            d = rng.uniform(*NODE_DIAMETER_MM)
            radii = np.array([d / 2, d / 2 * rng.uniform(0.5, 0.8), d / 2 * rng.uniform(0.7, 1.0)])
            _render_ball(geometry, coords, centre, radii, node)
            desc["axillary_nodes"].append({"center_lps_mm": centre.tolist(), "diameter_mm": float(d)})
        for _ in range(skin_folds):
            fold = np.zeros(shape, np.float32)
            ang = rng.uniform(0.75, 1.25) * math.pi if rng.random() < 0.6 else rng.uniform(1.3, 1.7) * math.pi
            t0, t1 = rng.uniform(0.1, 0.3), rng.uniform(0.6, 0.9)
            pts = [_breast_point(br, t, 0.93, ang + rng.normal(0, 0.1)) for t in (t0, 0.5 * (t0 + t1), t1)]
            render_tube_fraction(geometry, coords, Vessel(*(tuple(p) for p in pts), 1.2, "fold").points(),
                                 float(rng.uniform(0.9, 1.6)), fold)
            inside = (fold >= 0.5) & ((maps.tissue == FAT) | (maps.tissue == GLAND))
            maps.tissue[inside] = SKIN
            maps.vessel_fraction[inside] = 0.0
            desc["skin_folds"].append({"side": br.side, "n_voxels": int(np.count_nonzero(inside))})
    soft = (maps.tissue == FAT) | (maps.tissue == GLAND)
    arterial[~soft] = 0.0
    venous[~soft] = 0.0
    node[~(soft | (maps.tissue == SKIN))] = 0.0
    early = float(rng.uniform(60.0, 160.0))
    late = float(rng.uniform(-0.2, 0.05))
    return DistractorMaps(arterial, venous, node, early, late, desc)


def arterial_enhancement_percent(t_s: float, post_times_s: tuple[float, ...], peak_percent: float) -> float:
    """Arterial blood: highest in the first post phase, washing out to ~55 % of the peak."""
    if t_s <= 0:
        return 0.0
    return peak_percent * (0.55 + 0.45 * math.exp(-max(t_s - post_times_s[0], 0.0) / 120.0))


def venous_enhancement_percent(t_s: float, post_times_s: tuple[float, ...], peak_percent: float) -> float:
    """Venous blood: rising through the phases to ~85 % of the arterial peak at the last one."""
    if t_s <= 0:
        return 0.0
    return peak_percent * 0.85 * min(1.0, (t_s / post_times_s[-1]) ** 0.5)


__all__ = ["DistractorMaps", "arterial_enhancement_percent", "draw_distractors", "venous_enhancement_percent"]
