"""Domain randomisation of the phantom generator: named families of configuration ranges.

A :class:`PhantomFamily` holds a range for every factor the generator can vary (acquisition:
spacing, slice thickness, compound-oblique orientation, noise, bias field, fat suppression,
intensity scale, phase timing, motion; anatomy: background parenchymal enhancement, vessel trees,
axillary nodes, skin folds, chest-wall and skin enhancement; lesions: count and non-mass share).
:func:`draw_config` turns (family, seed) into one :class:`PhantomConfig`, deterministically.

Families (``FAMILIES``, defined once here):

* ``training`` — what the randomised training set and the *validation* phantoms (calibration of
  thresholds and of the per-lesion confidence) are drawn from;
* ``heldout-*`` — out-of-distribution checks: each pushes some factors **outside** the training
  ranges (coarser/thicker slices, stronger obliques, no fat suppression with more noise, marked
  enhancement with dense vessel trees). They are never used for training or calibration; they are
  only evaluated (``benchmarks/bench_generalisation.py``).

``default`` reproduces ``PhantomConfig(seed=seed)`` exactly (the classic phantom of the tests/demo).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .config import DEFAULT_FOV_MM, PhantomConfig

#: random stream of the configuration draw (separate from the generator's own streams)
_STREAM_FAMILY = 99


@dataclass(frozen=True)
class PhantomFamily:
    """Ranges (inclusive ``(min, max)``, uniform unless noted) of one family of phantom configurations.

    Attributes:
        name: family id.
        spacing_xy_mm: in-plane voxel size (mm).
        spacing_z_mm: slice spacing (mm).
        slice_thickness_factor: slice thickness / slice spacing.
        oblique_deg: absolute rotation (degrees) about each of two random axes (sign random).
        noise_percent: Rician noise sigma, percent of the fibroglandular signal.
        bias_strength: multiplicative bias-field amplitude.
        bpe_percent: background parenchymal enhancement (minimal ~5 .. marked ~50).
        fat_saturated_probability: probability of a fat-suppressed series.
        intensity_scale: scanner intensity scale (drawn log-uniformly).
        n_post: number of post-contrast phases (ints).
        phase_interval_s: time between phases (s).
        motion_mm: largest translation of a post phase (mm).
        vessel_trees: branching vessel trees per breast (ints).
        axillary_nodes: axillary lymph nodes per side (ints).
        skin_folds: skin folds per breast (ints).
        muscle_enhancement_percent: chest-wall enhancement at the last phase.
        skin_enhancement_percent: skin enhancement at the last phase.
        n_lesions: lesions per exam (ints; 0 allows lesion-free exams).
        non_mass_fraction: share of non-mass lesions.
        heldout: True for out-of-distribution families (never trained or calibrated on).
    """

    name: str
    spacing_xy_mm: tuple[float, float] = (1.5, 1.5)
    spacing_z_mm: tuple[float, float] = (2.0, 2.0)
    slice_thickness_factor: tuple[float, float] = (0.0, 0.0)
    oblique_deg: tuple[float, float] = (0.0, 0.0)
    noise_percent: tuple[float, float] = (3.0, 3.0)
    bias_strength: tuple[float, float] = (0.2, 0.2)
    bpe_percent: tuple[float, float] = (20.0, 20.0)
    fat_saturated_probability: float = 1.0
    intensity_scale: tuple[float, float] = (1.0, 1.0)
    n_post: tuple[int, int] = (4, 4)
    phase_interval_s: tuple[float, float] = (90.0, 90.0)
    motion_mm: tuple[float, float] = (0.0, 0.0)
    vessel_trees: tuple[int, int] = (0, 0)
    axillary_nodes: tuple[int, int] = (0, 0)
    skin_folds: tuple[int, int] = (0, 0)
    muscle_enhancement_percent: tuple[float, float] = (25.0, 25.0)
    skin_enhancement_percent: tuple[float, float] = (30.0, 30.0)
    n_lesions: tuple[int, int] = (0, 3)
    non_mass_fraction: tuple[float, float] = (0.25, 0.25)
    heldout: bool = False


TRAINING = PhantomFamily(
    name="training", spacing_xy_mm=(1.1, 1.9), spacing_z_mm=(1.5, 3.0), slice_thickness_factor=(1.0, 1.5),
    oblique_deg=(0.0, 12.0), noise_percent=(1.5, 6.0), bias_strength=(0.05, 0.35), bpe_percent=(5.0, 45.0),
    fat_saturated_probability=0.8, intensity_scale=(0.4, 3.0), n_post=(3, 5), phase_interval_s=(60.0, 120.0),
    motion_mm=(0.0, 2.0), vessel_trees=(1, 4), axillary_nodes=(0, 2), skin_folds=(0, 2),
    muscle_enhancement_percent=(10.0, 70.0), skin_enhancement_percent=(15.0, 60.0), n_lesions=(0, 3),
    non_mass_fraction=(0.1, 0.35),
)

#: the training family without fat suppression (its other ranges and draws per seed unchanged): the shipped model
#: missed small lesions in non-fat-suppressed training-family exams that it found with fat suppression, and
#: ``training`` draws only 20 % of them
TRAINING_NON_FAT_SAT = replace(TRAINING, name="training-nonfatsat", fat_saturated_probability=0.0)

#: every family by name; ``heldout-*`` ranges lie (partly) outside ``training``'s
FAMILIES: dict[str, PhantomFamily] = {
    "default": PhantomFamily(name="default"),
    "training": TRAINING,
    "training-nonfatsat": TRAINING_NON_FAT_SAT,
    "heldout-coarse-thick": PhantomFamily(
        name="heldout-coarse-thick", spacing_xy_mm=(2.0, 2.3), spacing_z_mm=(3.3, 4.0),
        slice_thickness_factor=(1.5, 2.0), oblique_deg=(0.0, 8.0), noise_percent=(2.0, 5.0),
        bias_strength=(0.1, 0.3), bpe_percent=(10.0, 35.0), vessel_trees=(1, 3), axillary_nodes=(0, 2),
        skin_folds=(0, 1), muscle_enhancement_percent=(15.0, 50.0), n_lesions=(0, 3), heldout=True),
    "heldout-oblique": PhantomFamily(
        name="heldout-oblique", spacing_xy_mm=(1.3, 1.7), spacing_z_mm=(1.8, 2.5), slice_thickness_factor=(1.0, 1.3),
        oblique_deg=(17.0, 24.0), noise_percent=(2.0, 5.0), bias_strength=(0.1, 0.3), bpe_percent=(10.0, 35.0),
        vessel_trees=(1, 3), axillary_nodes=(0, 2), skin_folds=(0, 1), n_lesions=(0, 3), heldout=True),
    "heldout-nonfatsat-noisy": PhantomFamily(
        name="heldout-nonfatsat-noisy", spacing_xy_mm=(1.2, 1.7), spacing_z_mm=(1.6, 2.6),
        slice_thickness_factor=(1.0, 1.3), noise_percent=(6.5, 9.0), bias_strength=(0.35, 0.5),
        bpe_percent=(10.0, 35.0), fat_saturated_probability=0.0, intensity_scale=(3.5, 6.0), vessel_trees=(1, 3),
        axillary_nodes=(0, 2), n_lesions=(0, 3), heldout=True),
    "heldout-marked-vessels": PhantomFamily(
        name="heldout-marked-vessels", spacing_xy_mm=(1.2, 1.7), spacing_z_mm=(1.6, 2.6),
        slice_thickness_factor=(1.0, 1.3), noise_percent=(2.0, 5.0), bpe_percent=(48.0, 60.0),
        vessel_trees=(5, 6), axillary_nodes=(3, 4), skin_folds=(2, 3), muscle_enhancement_percent=(80.0, 120.0),
        skin_enhancement_percent=(65.0, 100.0), n_lesions=(0, 3), heldout=True),
}


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _i(rng: np.random.Generator, r: tuple[int, int]) -> int:
    return int(rng.integers(r[0], r[1] + 1))


def draw_config(family: PhantomFamily | str, seed: int) -> PhantomConfig:
    """One phantom configuration of ``family`` for ``seed`` (deterministic; same patient seed).

    The field of view stays the default one (``DEFAULT_FOV_MM``); the grid size follows the drawn spacing.

    Raises:
        InputError: an unknown family name.
    """
    if isinstance(family, str):
        if family not in FAMILIES:
            raise InputError(f"unknown phantom family {family!r}; choose one of {sorted(FAMILIES)}")
        family = FAMILIES[family]
    if family.name == "default":
        return PhantomConfig(seed=seed)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), _STREAM_FAMILY])))
    sxy, sz = _u(rng, family.spacing_xy_mm), _u(rng, family.spacing_z_mm)
    spacing = (sxy, sxy, sz)
    size = tuple(max(8, int(round(f / s))) for f, s in zip(DEFAULT_FOV_MM, spacing))
    axes = rng.choice(["x", "y", "z"], size=2, replace=False)
    signs = rng.choice([-1.0, 1.0], size=2)
    thickness_factor = _u(rng, family.slice_thickness_factor)
    lo, hi = family.intensity_scale
    return PhantomConfig(
        seed=seed, size=size, spacing=spacing,
        oblique_deg=float(signs[0] * _u(rng, family.oblique_deg)), oblique_axis=str(axes[0]),
        oblique2_deg=float(signs[1] * _u(rng, family.oblique_deg)), oblique2_axis=str(axes[1]),
        n_post=_i(rng, family.n_post), phase_interval_s=_u(rng, family.phase_interval_s),
        n_lesions=family.n_lesions, non_mass_fraction=_u(rng, family.non_mass_fraction),
        fat_saturated=bool(rng.random() < family.fat_saturated_probability),
        intensity_scale=float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
        noise_percent=_u(rng, family.noise_percent), bias_strength=_u(rng, family.bias_strength),
        bpe_percent=_u(rng, family.bpe_percent), vessel_trees=_i(rng, family.vessel_trees),
        axillary_nodes=_i(rng, family.axillary_nodes), skin_folds=_i(rng, family.skin_folds),
        muscle_enhancement_percent=_u(rng, family.muscle_enhancement_percent),
        skin_enhancement_percent=_u(rng, family.skin_enhancement_percent),
        motion_mm=_u(rng, family.motion_mm),
        slice_thickness_mm=sz * thickness_factor if thickness_factor > 0 else None,
    )


__all__ = ["FAMILIES", "PhantomFamily", "TRAINING", "draw_config"]
