"""Prone axial breast anatomy of the phantom patient, defined analytically in LPS millimetres.

Patient frame (LPS, the patient is prone, axial slices along z): +x = patient's left, +y = posterior,
+z = superior; the breasts hang anteriorly (-y) from the chest wall. The patient is centred on
x = 0 (sternal midline) and does not depend on the image grid: :func:`draw_anatomy` draws the
parameters from the seed, :func:`voxelize_anatomy` samples them on any grid.

Structures (outside to inside):
    * thorax: an elliptic cylinder (semi-axes ``a`` LR, ``b`` AP, centre y = ``yc(z)``) with layers
      skin, subcutaneous fat, pectoral muscle (thickest behind the breasts), chest wall (intercostal
      muscle, ribs, sternum), then the thoracic interior: lungs, anterior mediastinum, heart (blood
      pool + myocardium) in the inferior slices, liver at the bottom right, great vessels (aorta,
      pulmonary trunk, superior vena cava) rising from the heart, internal mammary vessels;
    * two breasts: teardrop/conical mounds on the chest wall (elliptic base ``A`` x ``C``, deeper
      superior extent, depth ``D``, profile ``(1 - t^p)(1 - taper t)^2`` with lateral/caudal sag,
      narrowing smoothly into the chest behind the base), a nipple, skin, subcutaneous fat,
      retromammary fat, fibroglandular tissue (a textured fraction map: blobs + thin strands, denser
      centrally) and enhancing vessels (thin curved tubes).

Ground-truth breast region (``docs/DESIGN.md``), exactly: every body voxel (skin, fat, fibroglandular
tissue, breast vessels) that is
    * anterior to the anterior surface of the pectoral muscle / chest wall (the thorax ellipse offset
      by skin + subcutaneous fat), and
    * anterior to the "anterior axillary line" coronal plane ``y = y_sternum(z) + 45 mm``
      (:data:`AXILLARY_PLANE_OFFSET_MM`), where ``y_sternum(z)`` is the anterior pectoral/chest-wall
      surface at the sternal midline in that axial plane; tissue further posterior (lateral chest
      wall, axilla) is outside,
split at the sternal midline x = 0: label 1 (patient's left, x > 0), label 2 (patient's right,
x <= 0). Muscle, ribs, heart, lungs and air are outside. The same rule (a coronal plane 45 mm
posterior to the sternal chest-wall surface) is the classical segmenter's default
(``BreastRegionConfig.posterior_limit_mm``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import spatial

from ..geometry import Geometry
from ..labels import BREAST_LEFT, BREAST_RIGHT
from .grid import VoxelCoordinates, bbox_slices
from .textures import PhysicalNoiseField

# Tissue classes of the phantom's tissue map (uint8).
AIR, SKIN, FAT, GLAND, MUSCLE, CHEST_WALL, BONE, LUNG, BLOOD, MYOCARDIUM, MEDIASTINUM, LIVER, CYST = range(13)
NIPPLE_RADIUS_MM = 5.0
NIPPLE_LENGTH_MM = 6.0

#: the breast region's lateral/posterior limit: a coronal plane this far posterior (mm) to the anterior
#: pectoral surface at the sternal midline (same z)
AXILLARY_PLANE_OFFSET_MM = 45.0

TISSUE_NAMES = (
    "air", "skin", "fat", "gland", "muscle", "chest_wall", "bone", "lung", "blood", "myocardium", "mediastinum",
    "liver", "cyst",
)


@dataclass
class BreastShape:
    """One breast mound (all lengths in mm).

    Attributes:
        side: +1 left (patient's left, +x), -1 right.
        base: LPS point of the mound's base centre (slightly inside the thorax surface).
        A, C: base semi-axes: lateral (x) and inferior (z); the superior semi-axis is ``C * sup_factor``
            (the upper breast slopes gently into the chest wall, the inframammary fold is tighter).
        D: depth from the base to the nipple (anterior, -y).
        p: profile exponent, taper: cone taper; the cross-section scale at depth fraction t is
            ``sqrt(profile(t))`` with ``profile(t) = (1 - t^p) (1 - taper t)^2`` (teardrop / cone).
        sag_lat, sag_si: lateral / superior sag of the axis at the nipple, as a fraction of D (x t^2).
        sc_fat_mm: subcutaneous fat thickness under the skin; retro_fat_mm: retromammary fat thickness.
    """

    side: int
    base: tuple[float, float, float]
    A: float
    C: float
    D: float
    p: float
    sag_lat: float
    sag_si: float
    sc_fat_mm: float
    retro_fat_mm: float
    taper: float = 0.0
    sup_factor: float = 1.0

    def profile(self, t):
        """Squared cross-section scale at depth fraction ``t`` (0 base .. 1 nipple), array or float.

        Behind the base (t < 0) the mound narrows smoothly into the chest wall (``1 - (t / 0.6)^2``),
        so its lateral edge curves into the thorax instead of standing as a wall.
        """
        tc = np.clip(t, 0.0, 1.0)
        front = (1.0 - tc ** np.float32(self.p)) * (1.0 - np.float32(self.taper) * tc) ** 2
        back = 1.0 - (np.minimum(t, 0.0) / np.float32(0.6)) ** 2
        return front * np.maximum(back, 0.0)

    def local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LPS -> (u lateral outward, v anterior depth from base, w superior), mm, axis-sag removed."""
        v = np.float32(self.base[1]) - y
        t = np.clip(v / np.float32(self.D), 0.0, 1.0)
        t2 = t * t
        u = (x - np.float32(self.base[0])) * np.float32(self.side) - np.float32(self.sag_lat * self.D) * t2
        w = (z - np.float32(self.base[2])) - np.float32(self.sag_si * self.D) * t2
        return u, v, w

    def implicit(self, u: np.ndarray, v: np.ndarray, w: np.ndarray, shrink_mm: float = 0.0) -> np.ndarray:
        """<= 0 inside the mound shrunk by ``shrink_mm`` (approximate offset surface)."""
        a = np.float32(max(self.A - shrink_mm, 1.0))
        c = np.where(w > 0, np.float32(max(self.C * self.sup_factor - shrink_mm, 1.0)),
                     np.float32(max(self.C - shrink_mm, 1.0)))
        d = np.float32(max(self.D - shrink_mm, 1.0))
        t = v / d
        prof = self.profile(t)
        out = (u / a) ** 2 + (w / c) ** 2 - prof
        out[(t < -0.6) | (t > 1.0)] = 1.0
        return out

    def sample_interior_point(self, rng: np.random.Generator) -> np.ndarray:
        """A random LPS point inside the mound's glandular cone (depth fraction 0.12-0.8)."""
        t = rng.uniform(0.12, 0.8)
        rad = math.sqrt(max(float(self.profile(t)), 0.0))
        r = 0.7 * math.sqrt(rng.uniform(0.0, 1.0)) * rad
        ang = rng.uniform(0, 2 * math.pi)
        u = r * self.A * math.cos(ang) + self.sag_lat * self.D * t * t
        w = r * self.C * math.sin(ang) + self.sag_si * self.D * t * t
        v = t * self.D
        return np.array([self.base[0] + self.side * u, self.base[1] - v, self.base[2] + w])


@dataclass
class Vessel:
    """A tube along a quadratic Bezier curve (LPS mm) with a radius in mm."""

    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    p2: tuple[float, float, float]
    radius_mm: float
    kind: str  # "breast" (inside the breast) or "thoracic"

    def points(self, step_mm: float = 0.5) -> np.ndarray:
        """Curve samples, shape (n, 3)."""
        p0, p1, p2 = (np.asarray(p, dtype=float) for p in (self.p0, self.p1, self.p2))
        length = np.linalg.norm(p1 - p0) + np.linalg.norm(p2 - p1)
        n = max(int(length / step_mm) + 2, 3)
        t = np.linspace(0.0, 1.0, n)[:, None]
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


@dataclass
class PatientAnatomy:
    """Random anatomy parameters of one phantom patient (mm, LPS); see the module docstring."""

    thorax_a: float
    thorax_b: float
    front_y: float
    chest_slope: float
    skin_mm: float
    sc_fat_mm: float
    muscle_mm: float
    chest_wall_mm: float
    rib_period_mm: float
    rib_phase_mm: float
    heart_center: tuple[float, float, float]
    heart_radii: tuple[float, float, float]
    liver_center: tuple[float, float, float]
    liver_radii: tuple[float, float, float]
    myocardium_mm: float
    breasts: list[BreastShape]
    vessels: list[Vessel]
    fgt_density: float
    fgt_field: PhysicalNoiseField = field(repr=False)
    bpe_field: PhysicalNoiseField = field(repr=False)
    strand_field: PhysicalNoiseField = field(repr=False)

    def thorax_yc(self, z: np.ndarray | float) -> np.ndarray | float:
        """y of the thorax ellipse centre at height z."""
        return self.front_y + self.thorax_b + self.chest_slope * z

    def inside_thorax(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, offset_mm: float | np.ndarray) -> np.ndarray:
        """Inside the thorax ellipse shrunk by ``offset_mm`` (negative grows it; scalar or per-point array)."""
        a = np.float32(self.thorax_a) - np.asarray(offset_mm, dtype=np.float32)
        b = np.float32(self.thorax_b) - np.asarray(offset_mm, dtype=np.float32)
        yc = np.float32(self.front_y + self.thorax_b) + np.float32(self.chest_slope) * z
        return (x / a) ** 2 + ((y - yc) / b) ** 2 <= 1.0

    def muscle_thickness_mm(self, x: np.ndarray) -> np.ndarray:
        """Pectoral muscle thickness at LPS x: thickest behind the breasts (|x| ~ 75 mm), thinner medially/laterally."""
        return np.float32(self.muscle_mm) * (np.float32(0.55) + np.float32(0.65) * np.exp(
            -((np.abs(x) - np.float32(75.0)) / np.float32(45.0)) ** 2))

    def axillary_plane_y(self, z: np.ndarray | float) -> np.ndarray | float:
        """LPS y of the breast region's posterior (anterior-axillary-line) coronal plane at height z."""
        return (np.float32(self.front_y + self.muscle_surface_offset_mm + AXILLARY_PLANE_OFFSET_MM)
                + np.float32(self.chest_slope) * z)

    @property
    def muscle_surface_offset_mm(self) -> float:
        """Depth of the pectoral muscle's anterior surface below the thorax skin surface."""
        return self.skin_mm + self.sc_fat_mm

    def to_dict(self) -> dict:
        """JSON-ready parameter summary (no random fields)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("fgt_field", "bpe_field", "strand_field", "breasts", "vessels")}
        out["breasts"] = [asdict(b) for b in self.breasts]
        out["vessels"] = [asdict(v) for v in self.vessels]
        return out


def draw_anatomy(rng: np.random.Generator, fgt_density: float | None = None) -> PatientAnatomy:
    """Draw one patient's anatomy (grid independent)."""
    a = rng.uniform(140.0, 155.0)
    b = rng.uniform(105.0, 125.0)
    front_y = rng.uniform(6.0, 14.0)
    slope = rng.uniform(-0.06, 0.06)
    skin = rng.uniform(1.6, 2.4)
    sc_fat = rng.uniform(5.0, 10.0)
    muscle = rng.uniform(9.0, 15.0)
    chest_wall = rng.uniform(9.0, 12.0)
    drawn_density = float(rng.uniform(0.15, 0.85))  # always drawn so a fixed density keeps the rest of the patient
    density = drawn_density if fgt_density is None else float(fgt_density)

    size_factor = rng.uniform(0.82, 1.12)
    breasts = []
    for side in (BREAST_LEFT, BREAST_RIGHT):
        sgn = 1 if side == BREAST_LEFT else -1
        f = size_factor * rng.uniform(0.93, 1.07)
        xb = sgn * rng.uniform(72.0, 88.0)
        zb = rng.uniform(-10.0, 0.0)
        A = float(np.clip(rng.uniform(50.0, 60.0) * f, 42.0, 66.0))
        C = float(np.clip(rng.uniform(34.0, 41.0) * f, 29.0, 42.0))
        D = float(np.clip(rng.uniform(68.0, 100.0) * f, 55.0, 105.0))
        # base 6 mm inside the thorax surface at x = xb so the mound merges with the chest
        yc = front_y + b
        y_surf = yc - b * math.sqrt(max(1.0 - (xb / a) ** 2, 0.0))
        br = BreastShape(
            side=sgn,
            base=(float(xb), float(y_surf + 6.0), float(zb)),
            A=A, C=C, D=D,
            p=float(rng.uniform(1.8, 3.2)),
            taper=float(rng.uniform(0.15, 0.4)),
            sup_factor=float(rng.uniform(1.15, 1.35)),
            sag_lat=float(rng.uniform(0.0, 0.2)),
            sag_si=float(rng.uniform(-0.18, 0.05)),
            sc_fat_mm=float(rng.uniform(4.0, 10.0)),
            retro_fat_mm=float(rng.uniform(3.0, 7.0)),
        )
        breasts.append(br)

    heart_r = (rng.uniform(52.0, 62.0), rng.uniform(44.0, 52.0), rng.uniform(45.0, 55.0))
    interior_front = front_y + skin + sc_fat + muscle + chest_wall
    heart_c = (rng.uniform(15.0, 32.0), interior_front + 0.75 * heart_r[1] + rng.uniform(0.0, 8.0),
               rng.uniform(-78.0, -58.0))

    vessels: list[Vessel] = []
    for sgn in (1, -1):  # internal mammary vessels: parasternal, just inside the chest wall, along z
        xv = sgn * rng.uniform(26.0, 34.0)
        yv = front_y + b - b * math.sqrt(1 - (xv / a) ** 2) + skin + sc_fat + muscle + chest_wall + 3.0
        vessels.append(Vessel((xv, yv, -200.0), (xv, yv + rng.uniform(-3, 3), 0.0), (xv, yv, 200.0),
                              float(rng.uniform(1.6, 2.2)), "thoracic"))
    # great vessels rising from the heart through the mediastinum: ascending aorta, pulmonary trunk, SVC
    top = np.array([heart_c[0], heart_c[1], heart_c[2] + 0.55 * heart_r[2]])
    for dx, dy, radius, z_end in ((-8.0, -6.0, rng.uniform(12.0, 15.0), 200.0),
                                  (14.0, -12.0, rng.uniform(10.0, 13.0), rng.uniform(10.0, 40.0)),
                                  (-30.0, 6.0, rng.uniform(8.0, 10.0), 200.0)):
        p0 = top + np.array([dx, dy, -10.0])
        p2 = np.array([p0[0] + rng.uniform(-6, 6), p0[1] + rng.uniform(0, 25), z_end])
        vessels.append(Vessel(tuple(p0), tuple(0.5 * (p0 + p2) + rng.normal(0, 4, 3)), tuple(p2), float(radius),
                              "thoracic"))
    for br in breasts:
        for _ in range(int(rng.integers(2, 4))):
            t0, t2 = rng.uniform(0.05, 0.15), rng.uniform(0.75, 0.92)
            ang0, ang2 = rng.uniform(0, 2 * math.pi, size=2)
            r0, r2 = rng.uniform(0.35, 0.75), rng.uniform(0.0, 0.5)

            def pt(t: float, r: float, ang: float, br: BreastShape = br) -> np.ndarray:
                rad = math.sqrt(max(float(br.profile(t)), 0.0)) * r
                u = rad * br.A * math.cos(ang) + br.sag_lat * br.D * t * t
                w = rad * br.C * math.sin(ang) + br.sag_si * br.D * t * t
                return np.array([br.base[0] + br.side * u, br.base[1] - t * br.D, br.base[2] + w])

            q0, q2 = pt(t0, r0, ang0), pt(t2, r2, ang2)
            q1 = 0.5 * (q0 + q2) + rng.normal(0.0, 8.0, size=3)
            vessels.append(Vessel(tuple(q0), tuple(q1), tuple(q2), float(rng.uniform(0.8, 1.6)), "breast"))

    # texture lattices cover every possible breast (outside they are clamped)
    box_min, box_max = (-165.0, -115.0, -80.0), (165.0, 55.0, 80.0)
    fgt_field = PhysicalNoiseField(rng, box_min, box_max, 2.5, (7.0, 2.5), (0.75, 0.45))
    bpe_field = PhysicalNoiseField(rng, box_min, box_max, 5.0, (10.0,))
    strand_field = PhysicalNoiseField(rng, box_min, box_max, 2.5, (4.0,))
    liver_r = (rng.uniform(85.0, 100.0), rng.uniform(70.0, 85.0), rng.uniform(50.0, 60.0))
    liver_c = (-rng.uniform(35.0, 55.0), interior_front + liver_r[1] * 0.9, rng.uniform(-110.0, -95.0))
    return PatientAnatomy(
        thorax_a=a, thorax_b=b, front_y=front_y, chest_slope=slope, skin_mm=skin, sc_fat_mm=sc_fat,
        muscle_mm=muscle, chest_wall_mm=chest_wall, rib_period_mm=float(rng.uniform(24.0, 30.0)),
        rib_phase_mm=float(rng.uniform(0.0, 30.0)), heart_center=tuple(float(v) for v in heart_c),
        heart_radii=tuple(float(v) for v in heart_r), myocardium_mm=float(rng.uniform(8.0, 12.0)),
        liver_center=tuple(float(v) for v in liver_c), liver_radii=tuple(float(v) for v in liver_r),
        breasts=breasts, vessels=vessels, fgt_density=density, fgt_field=fgt_field, bpe_field=bpe_field,
        strand_field=strand_field,
    )


@dataclass
class AnatomyMaps:
    """The anatomy sampled on a grid; arrays of shape (z, y, x).

    Attributes:
        tissue: uint8 tissue class (``AIR`` .. ``CYST``, names in ``TISSUE_NAMES``).
        fgt_fraction: float32 0..1 fibroglandular fraction of ``GLAND`` voxels (0 elsewhere).
        bpe_factor: float32 patchiness factor of background parenchymal enhancement (~0.3-2, mean ~1).
        vessel_fraction: float32 0..1 partial-volume fraction of enhancing vessel.
        breast_mask: uint8 ground-truth breast region (0, 1 left, 2 right).
        lesion_allowed: bool, where lesions may lie (breast region, not skin, not outer 2 mm of fat).
    """

    tissue: np.ndarray
    fgt_fraction: np.ndarray
    bpe_factor: np.ndarray
    vessel_fraction: np.ndarray
    breast_mask: np.ndarray
    lesion_allowed: np.ndarray


def render_tube_fraction(
    geometry: Geometry, coords: VoxelCoordinates, points: np.ndarray, radius_mm: float, out: np.ndarray
) -> None:
    """Add a tube (union of balls of ``radius_mm`` around ``points`` (n, 3) LPS) into ``out`` as a
    partial-volume fraction (max-combined). Only voxels in the tube's bounding box are visited."""
    lo = points.min(axis=0) - radius_mm - 2.0
    hi = points.max(axis=0) + radius_mm + 2.0
    sl = bbox_slices(geometry, lo, hi)
    if sl is None:
        return
    pts = np.stack([coords.x[sl].ravel(), coords.y[sl].ravel(), coords.z[sl].ravel()], axis=1)
    tree = spatial.cKDTree(points)
    h = float(min(geometry.spacing))
    dist, _ = tree.query(pts, k=1, distance_upper_bound=radius_mm + h)
    frac = np.clip((radius_mm + 0.5 * h - dist) / h, 0.0, 1.0).astype(np.float32)
    frac[~np.isfinite(dist)] = 0.0
    block = out[sl]
    np.maximum(block, frac.reshape(block.shape), out=block)


@dataclass
class _ThoraxLayers:
    """Nested thorax regions on a grid (bool arrays of shape (z, y, x)), outermost first.

    Attributes:
        body: inside the skin surface (the thorax; :func:`_add_breast_mounds` adds the breasts).
        below_skin: inside the skin (subcutaneous fat and deeper; the breasts' too once added).
        below_muscle_surface: the pectoral muscle and deeper.
        chest_wall: the chest wall (intercostal muscle, ribs, sternum) and deeper.
        interior: the thoracic interior (lungs, mediastinum, heart, liver).
        deep_off: float32 depth (mm) of the chest wall's anterior surface below the thorax skin surface.
    """

    body: np.ndarray
    below_skin: np.ndarray
    below_muscle_surface: np.ndarray
    chest_wall: np.ndarray
    interior: np.ndarray
    deep_off: np.ndarray


def _thorax_layers(an: PatientAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> _ThoraxLayers:
    """Sample the thorax's concentric layers (skin, fat, muscle, chest wall, interior) at LPS ``x, y, z`` (mm)."""
    m_off = an.muscle_surface_offset_mm
    thorax = an.inside_thorax(x, y, z, 0.0)
    thorax_core = an.inside_thorax(x, y, z, an.skin_mm)
    below_muscle_surface = an.inside_thorax(x, y, z, m_off)  # pectoral muscle and deeper
    deep_off = m_off + an.muscle_thickness_mm(x)
    chest_wall = an.inside_thorax(x, y, z, deep_off)
    interior = an.inside_thorax(x, y, z, deep_off + np.float32(an.chest_wall_mm))
    return _ThoraxLayers(thorax, thorax_core, below_muscle_surface, chest_wall, interior, deep_off)


def _breast_bbox_mm(br: BreastShape) -> tuple[np.ndarray, np.ndarray]:
    """LPS (lo, hi) corners (mm) of a box holding the mound, its nipple and its tail into the chest."""
    sag_lat, sag_si = abs(br.sag_lat) * br.D, abs(br.sag_si) * br.D
    lo = np.array([br.base[0] - br.A - sag_lat - 5.0, br.base[1] - br.D - NIPPLE_LENGTH_MM - 3.0,
                   br.base[2] - br.C - sag_si - 5.0])
    hi = np.array([br.base[0] + br.A + sag_lat + 5.0, br.base[1] + 0.6 * br.D + 2.0,
                   br.base[2] + br.C * br.sup_factor + sag_si + 5.0])
    return lo, hi


def _add_breast_mounds(an: PatientAnatomy, geometry: Geometry, coords: VoxelCoordinates,
                       body: np.ndarray, below_skin: np.ndarray) -> np.ndarray:
    """Add both breast mounds (and nipples) to ``body`` / ``below_skin`` in place.

    Each mound is evaluated only inside its bounding box.

    Returns:
        bool (z, y, x) map of the glandular region: inside the mound shrunk by skin + subcutaneous fat
        and anterior to the retromammary fat.
    """
    x, y, z = coords.x, coords.y, coords.z
    m_off = an.muscle_surface_offset_mm
    gland = np.zeros(x.shape, dtype=bool)
    for br in an.breasts:
        sl = bbox_slices(geometry, *_breast_bbox_mm(br))
        if sl is None:
            continue
        xs, ys, zs = x[sl], y[sl], z[sl]
        u, v, w = br.local(xs, ys, zs)
        # nipple: a short rounded skin cylinder on the mound's tip, along its (sagged) axis
        beyond = np.clip(v - np.float32(br.D), 0.0, None) / np.float32(NIPPLE_LENGTH_MM)
        nipple = (v >= br.D - 4.0) & ((u * u + w * w) / np.float32(NIPPLE_RADIUS_MM**2) + beyond * beyond <= 1.0)
        body[sl] |= (br.implicit(u, v, w, 0.0) <= 0) | nipple
        below_skin[sl] |= br.implicit(u, v, w, an.skin_mm) <= 0
        gl = br.implicit(u, v, w, an.skin_mm + br.sc_fat_mm) <= 0
        gl &= ~an.inside_thorax(xs, ys, zs, m_off - br.retro_fat_mm)
        gland[sl] |= gl
    return gland


def _paint_body_wall(tissue: np.ndarray, layers: _ThoraxLayers, gland: np.ndarray) -> None:
    """Paint skin, fat, gland, pectoral muscle and chest wall into ``tissue`` (outside in, in place)."""
    tissue[layers.body] = SKIN
    tissue[layers.body & layers.below_skin] = FAT
    tissue[gland] = GLAND
    tissue[layers.below_muscle_surface] = MUSCLE
    tissue[layers.chest_wall] = CHEST_WALL


def _paint_ribs_and_sternum(tissue: np.ndarray, an: PatientAnatomy, layers: _ThoraxLayers,
                            x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """Paint ``BONE``: rib bands along z in the chest-wall layer and the sternum at the midline (in place)."""
    rib = np.mod(z - np.float32(an.rib_phase_mm), np.float32(an.rib_period_mm)) < np.float32(0.42 * an.rib_period_mm)
    sternum = np.abs(x) < 18.0
    bone = layers.chest_wall & ~layers.interior & (rib | sternum)
    bone &= ~an.inside_thorax(x, y, z, layers.deep_off + np.float32(0.8 * an.chest_wall_mm)) | sternum
    tissue[bone] = BONE


def _ellipsoid_q(x: np.ndarray, y: np.ndarray, z: np.ndarray, centre: tuple[float, float, float],
                 radii: tuple[float, float, float]) -> np.ndarray:
    """Normalised ellipsoid radius squared (<= 1 inside) of LPS points (mm), float32 like the coordinates."""
    return ((x - np.float32(centre[0])) / np.float32(radii[0])) ** 2 \
        + ((y - np.float32(centre[1])) / np.float32(radii[1])) ** 2 \
        + ((z - np.float32(centre[2])) / np.float32(radii[2])) ** 2


def _paint_thoracic_organs(tissue: np.ndarray, an: PatientAnatomy, interior: np.ndarray,
                           x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """Paint the thoracic interior (in place): lungs, anterior mediastinum, liver, heart (myocardium + blood)."""
    m_off = an.muscle_surface_offset_mm
    tissue[interior] = LUNG
    y_int = np.float32(an.front_y + m_off + 0.6 * an.muscle_mm + an.chest_wall_mm)
    tissue[interior & (((x - 8.0) / 34.0) ** 2 + ((y - y_int) / 75.0) ** 2 <= 1.0)] = MEDIASTINUM
    tissue[interior & (_ellipsoid_q(x, y, z, an.liver_center, an.liver_radii) <= 1.0)] = LIVER
    hc, hr = an.heart_center, an.heart_radii
    heart = interior & (_ellipsoid_q(x, y, z, hc, hr) <= 1.0)
    tissue[heart] = MYOCARDIUM
    scale_in = [(r - an.myocardium_mm) / r for r in hr]
    blood_radii = (hr[0] * scale_in[0], hr[1] * scale_in[1], hr[2] * scale_in[2])
    tissue[heart & (_ellipsoid_q(x, y, z, hc, blood_radii) <= 1.0)] = BLOOD


def _breast_region_mask(an: PatientAnatomy, layers: _ThoraxLayers, x: np.ndarray, y: np.ndarray,
                        z: np.ndarray) -> np.ndarray:
    """The ground-truth breast region (module docstring): uint8 0 / ``BREAST_LEFT`` / ``BREAST_RIGHT``.

    Body anterior to the pectoral surface and to the axillary plane, split at the sternal midline x = 0.
    """
    anterior = layers.body & ~layers.below_muscle_surface
    breast_mask = np.zeros(x.shape, dtype=np.uint8)
    anterior &= y <= an.axillary_plane_y(z)
    left = anterior & (x > 0)
    right = anterior & (x <= 0)
    breast_mask[left] = BREAST_LEFT
    breast_mask[right] = BREAST_RIGHT
    return breast_mask


def _gland_centrality(an: PatientAnatomy, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray,
                      dtype: np.dtype) -> np.ndarray:
    """Logit offset favouring gland near each breast's axis, ``0.8 - 1.6 q``, at LPS points (mm).

    ``q`` is the radial distance from the (sagged) axis normalised by the mound's cross-section there.
    The result has ``dtype`` (that of the texture values it is added to).
    """
    central = np.zeros(xs.shape, dtype=dtype)
    for br in an.breasts:
        sel = (xs * br.side) > 0
        u, v, w = br.local(xs[sel], ys[sel], zs[sel])
        t = np.clip(v / np.float32(br.D), 0.0, 1.0)
        rad = np.sqrt(np.clip(br.profile(t), 0.05, None))
        q = np.sqrt((u / np.float32(br.A)) ** 2 + (w / np.float32(br.C)) ** 2) / rad
        central[sel] = 0.8 - 1.6 * q
    return central


def _fibroglandular_fraction(an: PatientAnatomy, gland_idx: tuple[np.ndarray, ...], x: np.ndarray,
                             y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """float32 (z, y, x) fibroglandular fraction 0..1 at the ``GLAND`` voxels ``gland_idx`` (0 elsewhere).

    Textured field plus thin strands, offset by the patient's density, denser centrally, soft edges.
    """
    fgt = np.zeros(x.shape, dtype=np.float32)
    if not gland_idx[0].size:
        return fgt
    xs, ys, zs = x[gland_idx], y[gland_idx], z[gland_idx]
    val = an.fgt_field.sample(xs, ys, zs)
    # thin strands/sheets (ducts, Cooper's ligaments) where a second field crosses zero
    strands = np.clip(1.0 - 3.0 * np.abs(an.strand_field.sample(xs, ys, zs)), 0.0, None)
    val = val + np.float32(1.1) * strands
    bias = np.float32(2.4 * (an.fgt_density - 0.5) - 0.35)
    # radial distance from each breast's axis, normalised: more gland centrally
    central = _gland_centrality(an, xs, ys, zs, val.dtype)
    fgt[gland_idx] = 1.0 / (1.0 + np.exp(-2.2 * (val + bias + central)))
    return fgt


def _bpe_factor(an: PatientAnatomy, gland_idx: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray,
                z: np.ndarray) -> np.ndarray:
    """float32 (z, y, x) patchiness of background parenchymal enhancement at gland voxels (0.3..2, 0 elsewhere)."""
    bpe = np.zeros(x.shape, dtype=np.float32)
    if gland_idx[0].size:
        bpe[gland_idx] = np.clip(1.0 + 0.45 * an.bpe_field.sample(x[gland_idx], y[gland_idx], z[gland_idx]), 0.3, 2.0)
    return bpe


def _vessel_fraction(an: PatientAnatomy, geometry: Geometry, coords: VoxelCoordinates,
                     tissue: np.ndarray) -> np.ndarray:
    """float32 (z, y, x) partial-volume fraction of the enhancing vessels, kept inside soft tissue.

    Breast vessels stay inside the breast (not in skin), thoracic ones inside the thorax interior.
    """
    vessel = np.zeros(coords.x.shape, dtype=np.float32)
    for ves in an.vessels:
        render_tube_fraction(geometry, coords, ves.points(), ves.radius_mm, vessel)
    vessel[~((tissue == FAT) | (tissue == GLAND) | (tissue == CHEST_WALL) | (tissue == MEDIASTINUM)
             | (tissue == LUNG))] = 0.0
    return vessel


def voxelize_anatomy(anatomy: PatientAnatomy, geometry: Geometry, coords: VoxelCoordinates) -> AnatomyMaps:
    """Sample ``anatomy`` on ``geometry``.

    Args:
        anatomy: the patient (from :func:`draw_anatomy`).
        geometry: the image grid.
        coords: LPS coordinates (mm) of ``geometry``'s voxel centres (precomputed).

    Returns:
        The :class:`AnatomyMaps` (tissue classes, gland fraction, BPE factor, vessels, breast region,
        where lesions may lie), arrays of shape (z, y, x).
    """
    x, y, z = coords.x, coords.y, coords.z
    layers = _thorax_layers(anatomy, x, y, z)
    gland = _add_breast_mounds(anatomy, geometry, coords, layers.body, layers.below_skin)

    tissue = np.zeros(x.shape, dtype=np.uint8)
    _paint_body_wall(tissue, layers, gland)
    _paint_ribs_and_sternum(tissue, anatomy, layers, x, y, z)
    _paint_thoracic_organs(tissue, anatomy, layers.interior, x, y, z)
    breast_mask = _breast_region_mask(anatomy, layers, x, y, z)

    gland_idx = np.nonzero(tissue == GLAND)
    fgt = _fibroglandular_fraction(anatomy, gland_idx, x, y, z)
    bpe = _bpe_factor(anatomy, gland_idx, x, y, z)
    vessel = _vessel_fraction(anatomy, geometry, coords, tissue)
    lesion_allowed = (breast_mask > 0) & ((tissue == FAT) | (tissue == GLAND))
    return AnatomyMaps(tissue, fgt, bpe, vessel, breast_mask, lesion_allowed)


def add_cysts(rng: np.random.Generator, anatomy: PatientAnatomy, maps: AnatomyMaps, coords: VoxelCoordinates,
              geometry: Geometry) -> list[dict]:
    """Add 0-2 benign simple cysts per breast (round, 4-12 mm, non-enhancing) to ``maps.tissue`` in place.

    Cysts replace fat/gland voxels inside the breast region; they are not lesions (label 0). Returns
    their LPS centres and diameters (mm).
    """
    cysts = []
    for br in anatomy.breasts:
        for _ in range(int(rng.integers(0, 3))):
            centre = br.sample_interior_point(rng)
            d = float(rng.uniform(4.0, 12.0))
            r = d / 2.0
            sl = bbox_slices(geometry, centre - r - 1.0, centre + r + 1.0)
            if sl is None:
                continue
            inside = (coords.x[sl] - np.float32(centre[0])) ** 2 + (coords.y[sl] - np.float32(centre[1])) ** 2 \
                + (coords.z[sl] - np.float32(centre[2])) ** 2 <= np.float32(r * r)
            block = maps.tissue[sl]
            inside &= ((block == FAT) | (block == GLAND)) & (maps.breast_mask[sl] > 0)
            block[inside] = CYST
            maps.vessel_fraction[sl][inside] = 0.0
            cysts.append({"center_lps_mm": [float(v) for v in centre], "diameter_mm": d})
    return cysts
