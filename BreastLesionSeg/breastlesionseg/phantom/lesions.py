"""Phantom lesions: mass-like (round, lobulated, irregular, spiculated) and non-mass enhancement.

Each lesion is an analytic solid in LPS millimetres, drawn from the seed independently of the grid:

* mass: star-shaped around its centre, ``|p - c| <= R * g(n)`` for the unit direction ``n`` in the
  lesion's rotated frame; ``g`` is an ellipsoid (axis ratios 0.7-1) modulated by lobes
  ``1 + sum_i a_i max(0, n . d_i)^k_i`` (round: none; lobulated: 3-5 broad lobes; irregular: 8-14
  narrower ones; spiculated: 8-16 thin spikes). ``R`` is solved so that the analytic volume
  ``4 pi R^3 mean(g^3) / 3`` equals the target volume of the sampled equivalent diameter;
* non-mass enhancement (NME): a connected chain of clumps (balls of 2.2-4.5 mm) along a ductal
  path heading towards the nipple (segmental / clumped), grown until its Monte-Carlo volume reaches
  the target.

Placement: inside one breast's glandular cone, the whole solid at least 2 mm inside the skin's inner
surface and anterior to the pectoral muscle, and at least 3 mm away from every other lesion
(bounding spheres). On the grid the label is the voxelised solid intersected with the allowed breast
tissue, reduced to its largest 6-connected component; equivalent diameters are checked against the
3-30 mm limits, and lesions are numbered 1..N by decreasing voxel volume.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..geometry import Geometry
from .anatomy import BreastShape, PatientAnatomy
from .config import LESION_DIAMETER_LIMITS_MM, PhantomConfig
from .grid import VoxelCoordinates, bbox_slices
from .kinetics import KINETIC_TYPES, LATE_CHANGE_RANGE, lesion_curve_relative
from .textures import PhysicalNoiseField, fibonacci_sphere, random_rotation

log = logging.getLogger(__name__)

MASS_SHAPES = ("round", "lobulated", "irregular", "spiculated")
_DIRS = fibonacci_sphere(4000)
_CHECK_DIRS = fibonacci_sphere(96)


@dataclass
class LesionSpec:
    """One lesion's physical definition (mm, LPS) and its enhancement parameters."""

    kind: str  # "mass" | "non-mass"
    shape: str  # mass: MASS_SHAPES; non-mass: "segmental" | "clumped"
    side: int  # +1 left, -1 right
    center: np.ndarray
    target_diameter_mm: float
    kinetics: str
    early_percent: float
    late_change: float
    rim: bool
    pre_relative: float
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    axes: np.ndarray = field(default_factory=lambda: np.ones(3))
    lobe_dirs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    lobe_amp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lobe_pow: np.ndarray = field(default_factory=lambda: np.zeros(0))
    radius_mm: float = 0.0  # mass: R
    balls: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # NME: (x, y, z, r)
    texture: PhysicalNoiseField | None = field(default=None, repr=False)

    # -- geometry -------------------------------------------------------------------------------
    def _g(self, n_local: np.ndarray) -> np.ndarray:
        """Radial shape function of unit directions (m, 3) in the lesion frame."""
        g = 1.0 / np.sqrt(np.sum((n_local / self.axes[None, :]) ** 2, axis=1))
        if self.lobe_dirs.shape[0]:
            dots = np.clip(n_local @ self.lobe_dirs.T, 0.0, None)
            g = g * (1.0 + np.sum(self.lobe_amp[None, :] * dots ** self.lobe_pow[None, :], axis=1))
        return g

    def bounding_radius_mm(self) -> float:
        """Radius of a sphere around ``center`` containing the whole lesion."""
        if self.kind == "mass":
            return float(self.radius_mm * self._g(_DIRS).max() * 1.02)
        d = np.linalg.norm(self.balls[:, :3] - self.center[None, :], axis=1) + self.balls[:, 3]
        return float(d.max())

    def surface_points(self) -> np.ndarray:
        """Points on (or just outside) the lesion surface, (m, 3) LPS, for placement checks."""
        if self.kind == "mass":
            r = self.radius_mm * self._g(_CHECK_DIRS @ self.rotation) * 1.02
            # _CHECK_DIRS are world directions; their local coordinates are R^T n
            return self.center[None, :] + _CHECK_DIRS * r[:, None]
        pts = [b[None, :3] + _CHECK_DIRS[::4] * b[3] for b in self.balls]
        return np.concatenate(pts, axis=0)

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inside bool, normalised radius rho 0 centre .. 1 surface) for LPS points (flat arrays)."""
        p = np.stack([x, y, z], axis=1).astype(np.float64) - self.center[None, :]
        if self.kind == "mass":
            dist = np.linalg.norm(p, axis=1)
            n = p / np.maximum(dist, 1e-9)[:, None]
            r = self.radius_mm * self._g(n @ self.rotation)
            rho = dist / r
            return rho <= 1.0, rho
        best = np.full(p.shape[0], np.inf)
        for b in self.balls:
            d = np.linalg.norm(p - (b[:3] - self.center)[None, :], axis=1) / b[3]
            np.minimum(best, d, out=best)
        return best <= 1.0, best

    def analytic_volume_mm3(self, rng_points: int = 20000) -> float:
        """Volume of the solid in mm3 (exact integral for masses; Monte Carlo for NME)."""
        if self.kind == "mass":
            return float(4.0 / 3.0 * math.pi * self.radius_mm**3 * np.mean(self._g(_DIRS) ** 3))
        return _union_volume(self.balls, rng_points)


class _BallUnion:
    """Incremental volume of a union of balls on a fixed 1 mm lattice centred on a point (grid independent)."""

    HALF_MM = 60

    def __init__(self, center: np.ndarray) -> None:
        self.center = np.asarray(center, dtype=float)
        n = 2 * self.HALF_MM + 1
        self.occ = np.zeros((n, n, n), dtype=bool)
        self.count = 0

    @property
    def volume_mm3(self) -> float:
        """Union volume in mm3 (1 mm3 per occupied lattice point)."""
        return float(self.count)

    def add(self, ball: np.ndarray) -> bool:
        """Stamp a ball (x, y, z, r); False (nothing added) when it would leave the lattice."""
        c = ball[:3] - self.center + self.HALF_MM
        r = float(ball[3])
        lo = np.floor(c - r).astype(int)
        hi = np.ceil(c + r).astype(int) + 1
        if np.any(lo < 0) or np.any(hi > self.occ.shape[0]):
            return False
        gx, gy, gz = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        sphere = (gx - c[0]) ** 2 + (gy - c[1]) ** 2 + (gz - c[2]) ** 2 <= r * r
        block = self.occ[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        self.count += int(np.count_nonzero(sphere & ~block))
        block |= sphere
        return True


def _union_volume(balls: np.ndarray, n_points: int = 20000) -> float:
    """Monte-Carlo volume (mm3) of a union of balls (x, y, z, r), deterministic quasi-random points."""
    lo = (balls[:, :3] - balls[:, 3:]).min(axis=0)
    hi = (balls[:, :3] + balls[:, 3:]).max(axis=0)
    rng = np.random.default_rng(12345)
    pts = lo + rng.random((n_points, 3)) * (hi - lo)
    inside = np.zeros(n_points, dtype=bool)
    for b in balls:
        inside |= np.sum((pts - b[:3]) ** 2, axis=1) <= b[3] ** 2
    return float(inside.mean() * np.prod(hi - lo))


def _sample_diameter(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _draw_kinetics(rng: np.random.Generator, kind: str) -> tuple[str, float, float]:
    probs = (0.3, 0.3, 0.4) if kind == "mass" else (0.5, 0.3, 0.2)
    kin = KINETIC_TYPES[int(rng.choice(3, p=probs))]
    early = rng.uniform(90.0, 200.0) if kind == "mass" else rng.uniform(70.0, 140.0)
    late = rng.uniform(*LATE_CHANGE_RANGE[kin])
    return kin, float(early), float(late)


def draw_lesion(rng: np.random.Generator, breast: BreastShape, config: PhantomConfig) -> LesionSpec:
    """Draw one lesion (shape, size, kinetics) centred at a random point of ``breast``'s glandular cone."""
    dlo, dhi = config.lesion_diameter_mm
    nme_possible = dhi >= 8.0
    kind = "non-mass" if (nme_possible and rng.random() < config.non_mass_fraction) else "mass"
    kin, early, late = _draw_kinetics(rng, kind)
    center = breast.sample_interior_point(rng)
    if kind == "mass":
        d = _sample_diameter(rng, dlo, dhi)
        shape = MASS_SHAPES[int(rng.choice(4, p=(0.25, 0.3, 0.25, 0.2)))]
        axes = np.array([1.0, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)])
        n_lobes, amp, pw = {
            "round": (0, (0, 0), (1, 1)),
            "lobulated": (int(rng.integers(3, 6)), (0.15, 0.35), (3.0, 8.0)),
            "irregular": (int(rng.integers(8, 15)), (0.10, 0.30), (6.0, 20.0)),
            "spiculated": (int(rng.integers(8, 17)), (0.5, 1.1), (80.0, 250.0)),
        }[shape]
        lobe_dirs = fibonacci_sphere(max(n_lobes, 1))[:n_lobes] if n_lobes else np.zeros((0, 3))
        if n_lobes:
            lobe_dirs = lobe_dirs @ random_rotation(rng).T
        spec = LesionSpec(
            kind, shape, breast.side, center, d, kin, early, late,
            rim=bool(rng.random() < 0.25) and d >= 8.0,
            pre_relative=float(rng.uniform(0.85, 1.0)),
            rotation=random_rotation(rng), axes=axes, lobe_dirs=lobe_dirs,
            lobe_amp=rng.uniform(*amp, size=n_lobes), lobe_pow=rng.uniform(*pw, size=n_lobes),
        )
        target_v = math.pi / 6.0 * d**3
        spec.radius_mm = float((3.0 * target_v / (4.0 * math.pi * np.mean(spec._g(_DIRS) ** 3))) ** (1.0 / 3.0))
    else:
        d = _sample_diameter(rng, max(dlo, 8.0), dhi)
        shape = "segmental" if rng.random() < 0.5 else "clumped"
        target_v = math.pi / 6.0 * d**3
        # ductal direction: towards the nipple (-y) with a random deviation
        direction = np.array([0.0, -1.0, 0.0]) + rng.normal(0.0, 0.5, size=3)
        direction /= np.linalg.norm(direction)
        occupancy = _BallUnion(center)
        balls = [np.array([*center, rng.uniform(2.5, 4.5)])]
        occupancy.add(balls[0])
        pos = center.astype(float).copy()
        branch_pos: list[np.ndarray] = []
        for _ in range(600):
            if occupancy.volume_mm3 >= target_v:
                break
            if shape == "clumped" and branch_pos and rng.random() < 0.3:
                pos = branch_pos[int(rng.integers(len(branch_pos)))].copy()  # clumps branch off
            r = rng.uniform(2.2, 4.5)
            step = 0.8 * min(r, balls[-1][3]) + rng.uniform(0.0, 0.6)
            direction = direction + rng.normal(0.0, 0.35, size=3)
            direction /= np.linalg.norm(direction)
            new_pos = pos + step * direction
            ball = np.array([*new_pos, r])
            if not occupancy.add(ball):
                continue  # would leave the lattice: try another direction
            pos = new_pos
            balls.append(ball)
            branch_pos.append(pos.copy())
        spec = LesionSpec(kind, shape, breast.side, center, d, kin, early, late, rim=False,
                          pre_relative=float(rng.uniform(0.9, 1.0)), balls=np.array(balls))
        spec.center = np.mean(spec.balls[:, :3], axis=0)
    return spec


def _placement_ok(spec: LesionSpec, anatomy: PatientAnatomy, breast: BreastShape, others: list[LesionSpec]) -> bool:
    """Analytic check: the whole solid lies inside ``breast`` away from skin, muscle, midline and other lesions."""
    pts = spec.surface_points()
    x, y, z = (pts[:, i].astype(np.float32) for i in range(3))
    u, v, w = breast.local(x, y, z)
    if np.any(breast.implicit(u, v, w, anatomy.skin_mm + 2.0) > 0):
        return False
    if np.any(anatomy.inside_thorax(x, y, z, anatomy.muscle_surface_offset_mm - 2.0)):
        return False
    sx = x * breast.side
    if np.any(sx < 3.0) or np.any(y > anatomy.axillary_plane_y(z) - 3.0):
        return False
    rb = spec.bounding_radius_mm()
    for o in others:
        if np.linalg.norm(o.center - spec.center) < rb + o.bounding_radius_mm() + 3.0:
            return False
    return True


def draw_lesions(rng: np.random.Generator, anatomy: PatientAnatomy, config: PhantomConfig, count: int,
                 max_tries: int = 400, existing: list[LesionSpec] | None = None) -> list[LesionSpec]:
    """Draw ``count`` lesions placed in either breast, apart from each other and from ``existing``
    (grid independent)."""
    specs: list[LesionSpec] = []
    others = list(existing or [])
    tries = 0
    while len(specs) < count and tries < max_tries:
        tries += 1
        breast = anatomy.breasts[int(rng.integers(2))]
        spec = draw_lesion(rng, breast, config)
        if _placement_ok(spec, anatomy, breast, others + specs):
            box = spec.bounding_radius_mm() + 3.0
            spec.texture = PhysicalNoiseField(rng, tuple(spec.center - box), tuple(spec.center + box), 1.0,
                                              (1.5, 4.0), (0.6, 0.8))
            specs.append(spec)
    if len(specs) < count:
        log.warning("placed only %d of %d lesions after %d tries", len(specs), count, tries)
    return specs


@dataclass
class VoxelLesion:
    """A lesion on the grid: its spec plus voxel indices (flat) and per-voxel enhancement maps."""

    spec: LesionSpec
    flat_index: np.ndarray  # indices into the flattened (z, y, x) grid
    heterogeneity: np.ndarray  # h per voxel (see kinetics)

    @property
    def n_voxels(self) -> int:
        """Number of voxels."""
        return int(self.flat_index.size)


def voxelize_lesion(spec: LesionSpec, geometry: Geometry, coords: VoxelCoordinates, allowed: np.ndarray,
                    taken: np.ndarray) -> VoxelLesion | None:
    """Voxelise one lesion (inside ``allowed`` and not ``taken``), largest 6-connected component."""
    rb = spec.bounding_radius_mm() + 1.0
    sl = bbox_slices(geometry, spec.center - rb, spec.center + rb)
    if sl is None:
        return None
    xs, ys, zs = coords.x[sl], coords.y[sl], coords.z[sl]
    inside, rho = spec.contains(xs.ravel(), ys.ravel(), zs.ravel())
    inside = inside.reshape(xs.shape) & allowed[sl] & ~taken[sl]
    if not inside.any():
        return None
    lab, n = ndimage.label(inside)
    if n > 1:
        counts = np.bincount(lab.ravel())[1:]
        inside = lab == (int(np.argmax(counts)) + 1)
    local = np.nonzero(inside)
    full = tuple(local[a] + sl[a].start for a in range(3))
    flat = np.ravel_multi_index(full, allowed.shape)
    rho_in = rho.reshape(xs.shape)[local]
    tex = spec.texture.sample(xs[local], ys[local], zs[local]) if spec.texture is not None else 0.0
    if spec.kind == "mass":
        h = np.clip(0.88 + 0.16 * tex, 0.55, 1.15)
        if spec.rim:
            h = h * (0.45 + 0.55 * np.clip(rho_in, 0.0, 1.0) ** 2)
    else:
        h = np.clip(0.8 + 0.25 * tex, 0.45, 1.15)
    return VoxelLesion(spec, flat, h.astype(np.float32))


def place_lesions(specs: list[LesionSpec], geometry: Geometry, coords: VoxelCoordinates,
                  allowed: np.ndarray) -> tuple[np.ndarray, list[VoxelLesion]]:
    """Voxelise lesions into a uint16 instance map numbered by decreasing volume (ties: draw order).

    Lesions whose voxelised equivalent diameter falls outside 3-30 mm are dropped (logged).
    """
    taken = np.zeros(allowed.shape, dtype=bool)
    vox: list[VoxelLesion] = []
    vv = geometry.voxel_volume_mm3
    lo, hi = LESION_DIAMETER_LIMITS_MM
    for spec in specs:
        vl = voxelize_lesion(spec, geometry, coords, allowed, taken)
        if vl is None:
            log.info("lesion at %s mm has no voxel on this grid (outside it or below the voxel size); dropped",
                     np.round(spec.center, 1).tolist())
            continue
        d = (6.0 * vl.n_voxels * vv / math.pi) ** (1.0 / 3.0)
        if not lo <= d <= hi:
            log.info("lesion at %s mm: voxelised diameter %.1f mm outside %g-%g mm; dropped",
                        np.round(spec.center, 1).tolist(), d, lo, hi)
            continue
        taken.flat[vl.flat_index] = True
        vox.append(vl)
    order = sorted(range(len(vox)), key=lambda i: (-vox[i].n_voxels, i))
    vox = [vox[i] for i in order]
    labels = np.zeros(allowed.shape, dtype=np.uint16)
    for n, vl in enumerate(vox, start=1):
        labels.flat[vl.flat_index] = n
    return labels, vox


def lesion_signal_relative(vl: VoxelLesion, post_times_s: tuple[float, ...]) -> np.ndarray:
    """Per-voxel signal relative to the lesion's pre signal, shape (1 + n_post, n_voxels)."""
    spec = vl.spec
    t = np.asarray(post_times_s, dtype=float)
    span = max(t[-1] - t[0], 1e-6)
    late = 1.0 + spec.late_change * (t - t[0]) / span  # (K,)
    s1 = 1.0 + vl.heterogeneity[None, :] * (spec.early_percent / 100.0)  # (1, n)
    post = s1 * late[:, None]
    return np.concatenate([np.ones((1, vl.n_voxels), dtype=np.float32), post.astype(np.float32)], axis=0)


def peak_enhancement_percent(spec: LesionSpec, post_times_s: tuple[float, ...]) -> float:
    """Peak percent enhancement of the full-strength curve (h = 1)."""
    curve = lesion_curve_relative(spec.early_percent, spec.late_change, post_times_s)
    return float(max(spec.early_percent, (curve.max() - 1.0) * 100.0))
