"""Typed, validated configuration of a synthetic (phantom) breast DCE-MRI exam.

The phantom patient lives in fixed physical LPS coordinates (mm) centred on ``fov_center_lps_mm``;
the image grid (size, spacing, direction) only decides how that patient is sampled. So two
configurations with the same seed and the same field of view but different spacing or an oblique
direction show the same patient (same breasts, same lesions).

Defaults (chosen for speed and realism, about 1.8 M voxels, < 3 s on one CPU core):
    size (224, 128, 64) voxels at spacing (1.5, 1.5, 2.0) mm = FOV 336 (LR) x 192 (AP) x 128 (SI) mm,
    axial slices along z, identity direction (LPS), 4 post-contrast phases 90 s apart like the
    Duke exam, fat-saturated T1 contrast, 0..3 lesions of 5-30 mm equivalent diameter.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import InputError

#: physical field of view (x LR, y AP, z SI) in mm of the default grid; a config that sets ``size``
#: but not ``spacing`` keeps this field of view.
DEFAULT_FOV_MM: tuple[float, float, float] = (336.0, 192.0, 128.0)
DEFAULT_SIZE: tuple[int, int, int] = (224, 128, 64)

#: hard limits of a lesion's equivalent (sphere) diameter in mm
LESION_DIAMETER_LIMITS_MM: tuple[float, float] = (3.0, 30.0)

_AXES = {"x": 0, "y": 1, "z": 2}


def _triple(name: str, value, kind: type) -> tuple:
    try:
        vals = tuple(kind(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"PhantomConfig.{name} must be 3 {kind.__name__} values, got {value!r}") from exc
    if len(vals) != 3:
        raise InputError(f"PhantomConfig.{name} must have 3 values (x, y, z), got {value!r}")
    return vals


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation by ``degrees`` about the LPS ``axis`` (``"x"``, ``"y"`` or ``"z"``)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    ax = _AXES[axis]
    i, j = [k for k in range(3) if k != ax]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


@dataclass
class PhantomConfig:
    """Everything that defines one phantom exam; same config -> identical arrays.

    Attributes:
        seed: random seed of the patient (anatomy, lesions, noise). Non-negative int.
        size: grid size in voxels along (x, y, z).
        spacing: voxel size in mm along (x, y, z); ``None`` = keep the default field of view
            (``DEFAULT_FOV_MM / size``).
        oblique_deg: rotation of the grid's direction about ``oblique_axis`` in degrees (0 = LPS identity).
        oblique_axis: ``"x"``, ``"y"`` or ``"z"`` (LPS axis the grid is rotated about).
        oblique2_deg: a second rotation in degrees about ``oblique2_axis``, applied after the first
            (compound-oblique grids; 0 = none).
        oblique2_axis: ``"x"``, ``"y"`` or ``"z"``, the axis of the second rotation.
        fov_center_lps_mm: LPS position of the grid centre in mm (the patient is fixed around (0, 0, 0)).
        n_post: number of post-contrast phases (2-6).
        phase_interval_s: time between successive phases in s (post k is acquired at ``k * interval``).
        phase_times_s: explicit acquisition times of the post phases in s (overrides the interval);
            strictly increasing, length ``n_post``.
        n_lesions: inclusive (min, max) number of lesions; the count is drawn uniformly per seed.
        lesion_diameter_mm: (min, max) target equivalent diameter of a lesion in mm, within 3-30 mm.
        non_mass_fraction: probability that a lesion is non-mass enhancement (0-1).
        fat_saturated: fat-suppressed T1 (dark fat, like the Duke exam) or not (bright fat).
        intensity_scale: multiplies all signal values (default 1: fibroglandular tissue ~420,
            fat ~180, lesions up to ~1000 in post phases, like a uint16 scanner image).
        noise_percent: Rician noise sigma as a percentage of the fibroglandular pre-contrast signal.
        bias_strength: amplitude of the smooth multiplicative bias field (0.2 = about +-20 %).
        bpe_percent: mean background parenchymal enhancement of fibroglandular tissue at the last
            phase, in percent (typical: 10 minimal .. 50 marked); patchy around that mean.
        fgt_density: fibroglandular density 0 (almost entirely fat) .. 1 (extremely dense);
            ``None`` = drawn per seed.
        dtype: output voxel type of the phases, ``"uint16"`` (like a scanner) or ``"float32"``.
        vessel_trees: branching enhancing vessel trees per breast (``distractors.py``; 0 = none).
        arterial_fraction: probability that a vessel tree is arterial (early peak, washout) rather
            than venous (slow rise).
        axillary_nodes: enhancing lymph nodes per side at the lateral edge of the breast region.
        skin_folds: enhancing skin folds per breast under the medial/inferior skin.
        muscle_enhancement_percent: pectoral / chest-wall enhancement at the last phase, percent.
        skin_enhancement_percent: skin enhancement at the last phase, percent.
        motion_mm: largest rigid translation (mm) of a post-contrast phase relative to the pre phase
            (each post phase moves by its own random vector; labels stay on the pre phase).
        slice_thickness_mm: acquired slice thickness along the grid's z axis (point-spread FWHM in
            mm along it; ``None`` = the default 1.2 mm isotropic blur).
    """

    seed: int = 0
    size: tuple[int, int, int] = DEFAULT_SIZE
    spacing: tuple[float, float, float] | None = None
    oblique_deg: float = 0.0
    oblique_axis: str = "z"
    oblique2_deg: float = 0.0
    oblique2_axis: str = "x"
    fov_center_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    n_post: int = 4
    phase_interval_s: float = 90.0
    phase_times_s: tuple[float, ...] | None = None
    n_lesions: tuple[int, int] = (0, 3)
    lesion_diameter_mm: tuple[float, float] = (5.0, 30.0)
    non_mass_fraction: float = 0.25
    fat_saturated: bool = True
    intensity_scale: float = 1.0
    noise_percent: float = 3.0
    bias_strength: float = 0.2
    bpe_percent: float = 20.0
    fgt_density: float | None = None
    dtype: str = "uint16"
    vessel_trees: int = 0
    arterial_fraction: float = 0.5
    axillary_nodes: int = 0
    skin_folds: int = 0
    muscle_enhancement_percent: float = 25.0
    skin_enhancement_percent: float = 30.0
    motion_mm: float = 0.0
    slice_thickness_mm: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"PhantomConfig.seed must be a non-negative int, got {self.seed!r}")
        self.seed = int(self.seed)
        self.size = _triple("size", self.size, int)
        if any(s < 8 for s in self.size) or any(s > 2048 for s in self.size):
            raise InputError(f"PhantomConfig.size must be 8..2048 voxels per axis, got {self.size}")
        if self.spacing is not None:
            self.spacing = _triple("spacing", self.spacing, float)
        if any(not math.isfinite(s) or s < 0.05 or s > 50 for s in self.spacing_mm):
            raise InputError(f"PhantomConfig.spacing must be 0.05..50 mm per axis, got {self.spacing_mm} "
                             f"(size {self.size})")
        self.fov_center_lps_mm = _triple("fov_center_lps_mm", self.fov_center_lps_mm, float)
        if not math.isfinite(float(self.oblique_deg)) or abs(float(self.oblique_deg)) > 45:
            raise InputError(f"PhantomConfig.oblique_deg must be within -45..45 degrees, got {self.oblique_deg!r}")
        self.oblique_deg = float(self.oblique_deg)
        if self.oblique_axis not in _AXES:
            raise InputError(f"PhantomConfig.oblique_axis must be 'x', 'y' or 'z', got {self.oblique_axis!r}")
        if not math.isfinite(float(self.oblique2_deg)) or abs(float(self.oblique2_deg)) > 45:
            raise InputError(f"PhantomConfig.oblique2_deg must be within -45..45 degrees, got {self.oblique2_deg!r}")
        self.oblique2_deg = float(self.oblique2_deg)
        if self.oblique2_axis not in _AXES:
            raise InputError(f"PhantomConfig.oblique2_axis must be 'x', 'y' or 'z', got {self.oblique2_axis!r}")
        if isinstance(self.n_post, bool) or int(self.n_post) != self.n_post or not 2 <= int(self.n_post) <= 6:
            raise InputError(f"PhantomConfig.n_post must be an int in 2..6, got {self.n_post!r}")
        self.n_post = int(self.n_post)
        if not self.phase_interval_s > 0:
            raise InputError(f"PhantomConfig.phase_interval_s must be > 0 s, got {self.phase_interval_s!r}")
        if self.phase_times_s is not None:
            times = tuple(float(t) for t in self.phase_times_s)
            if len(times) != self.n_post or times[0] <= 0 or any(b <= a for a, b in zip(times, times[1:])):
                raise InputError(
                    f"PhantomConfig.phase_times_s must be {self.n_post} strictly increasing positive times (s), "
                    f"got {self.phase_times_s!r}"
                )
            self.phase_times_s = times
        lo, hi = (int(v) for v in self.n_lesions)
        if lo < 0 or hi < lo or hi > 10:
            raise InputError(f"PhantomConfig.n_lesions must be (min, max) with 0 <= min <= max <= 10, got {self.n_lesions!r}")
        self.n_lesions = (lo, hi)
        dlo, dhi = (float(v) for v in self.lesion_diameter_mm)
        lim = LESION_DIAMETER_LIMITS_MM
        if not (lim[0] <= dlo <= dhi <= lim[1]):
            raise InputError(
                f"PhantomConfig.lesion_diameter_mm must be (min, max) within {lim[0]:g}-{lim[1]:g} mm, "
                f"got {self.lesion_diameter_mm!r}"
            )
        self.lesion_diameter_mm = (dlo, dhi)
        if not 0.0 <= self.non_mass_fraction <= 1.0:
            raise InputError(f"PhantomConfig.non_mass_fraction must be in 0..1, got {self.non_mass_fraction!r}")
        if not (math.isfinite(self.intensity_scale) and 0.05 <= self.intensity_scale <= 50):
            raise InputError(f"PhantomConfig.intensity_scale must be in 0.05..50, got {self.intensity_scale!r}")
        if not 0.0 <= self.noise_percent <= 30.0:
            raise InputError(f"PhantomConfig.noise_percent must be in 0..30, got {self.noise_percent!r}")
        if not 0.0 <= self.bias_strength <= 0.6:
            raise InputError(f"PhantomConfig.bias_strength must be in 0..0.6, got {self.bias_strength!r}")
        if not 0.0 <= self.bpe_percent <= 60.0:
            raise InputError(
                f"PhantomConfig.bpe_percent must be in 0..60 (lesions must stay above BPE), got {self.bpe_percent!r}"
            )
        if self.fgt_density is not None and not 0.0 <= self.fgt_density <= 1.0:
            raise InputError(f"PhantomConfig.fgt_density must be in 0..1 or None, got {self.fgt_density!r}")
        if self.dtype not in ("uint16", "float32"):
            raise InputError(f"PhantomConfig.dtype must be 'uint16' or 'float32', got {self.dtype!r}")
        self.fat_saturated = bool(self.fat_saturated)
        self._validate_distractors()

    def _validate_distractors(self) -> None:
        """Check the non-lesion enhancing structures, motion and slice thickness (see the attributes)."""
        for name, hi in (("vessel_trees", 6), ("axillary_nodes", 4), ("skin_folds", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or not 0 <= int(value) <= hi:
                raise InputError(f"PhantomConfig.{name} must be an int in 0..{hi}, got {value!r}")
            setattr(self, name, int(value))
        for name, lo, hi in (("arterial_fraction", 0.0, 1.0), ("muscle_enhancement_percent", 0.0, 150.0),
                             ("skin_enhancement_percent", 0.0, 150.0), ("motion_mm", 0.0, 10.0)):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and lo <= value <= hi):
                raise InputError(f"PhantomConfig.{name} must be in {lo:g}..{hi:g}, got {getattr(self, name)!r}")
            setattr(self, name, value)
        if self.slice_thickness_mm is not None:
            t = float(self.slice_thickness_mm)
            if not (math.isfinite(t) and 0.5 <= t <= 10.0):
                raise InputError(f"PhantomConfig.slice_thickness_mm must be 0.5..10 mm or None, got {self.slice_thickness_mm!r}")
            self.slice_thickness_mm = t

    # -- derived --------------------------------------------------------------------------------
    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Effective voxel spacing in mm (x, y, z)."""
        if self.spacing is not None:
            return self.spacing
        return tuple(f / s for f, s in zip(DEFAULT_FOV_MM, self.size))  # type: ignore[return-value]

    @property
    def direction_matrix(self) -> np.ndarray:
        """3x3 LPS direction matrix (columns = index axes): ``R(oblique_axis, oblique_deg) @ R(oblique2_axis, oblique2_deg)``."""
        return _rotation(self.oblique_axis, self.oblique_deg) @ _rotation(self.oblique2_axis, self.oblique2_deg)

    @property
    def post_times_s(self) -> tuple[float, ...]:
        """Acquisition time of each post-contrast phase after injection, in s."""
        if self.phase_times_s is not None:
            return self.phase_times_s
        return tuple(self.phase_interval_s * (k + 1) for k in range(self.n_post))

    @property
    def phase_names(self) -> list[str]:
        """``['pre', 'post1', ..., 'postK']``."""
        return ["pre"] + [f"post{k + 1}" for k in range(self.n_post)]

    def to_dict(self) -> dict:
        """JSON-ready dict (inverse: :meth:`from_dict`)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "PhantomConfig":
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"PhantomConfig: unknown keys {unknown}")
        kwargs = {}
        for k, v in data.items():
            kwargs[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kwargs)


__all__ = ["PhantomConfig", "DEFAULT_FOV_MM", "DEFAULT_SIZE", "LESION_DIAMETER_LIMITS_MM"]
