"""Assemble a phantom breast DCE-MRI exam: anatomy + lesions + enhancement + artifacts.

Deterministic per seed: independent random streams (``SeedSequence([seed, stream])``) drive the
anatomy, the lesions, the bias field and the noise, so e.g. changing ``n_post`` or the grid does not
change the patient.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..exam.dce_exam import DCEExam
from ..geometry import Geometry, Volume
from ..labels import BREAST_LEFT, BREAST_RIGHT
from .anatomy import (
    AXILLARY_PLANE_OFFSET_MM, FAT, GLAND, TISSUE_NAMES, AnatomyMaps, PatientAnatomy, add_cysts, draw_anatomy,
    voxelize_anatomy,
)
from .artifacts import bias_field, psf_blur, rician_noise, rigid_shift
from .config import PhantomConfig
from .distractors import (DistractorMaps, arterial_enhancement_percent, draw_distractors,
                          venous_enhancement_percent)
from .grid import VoxelCoordinates, phantom_geometry
from .kinetics import (
    BLOOD_PEAK_RANGE_PERCENT, BLOOD_PRE, PRE_SIGNAL, tissue_enhancement_percent, vessel_enhancement_percent,
)
from .lesions import (VoxelLesion, draw_lesions, lesion_signal_relative, peak_enhancement_percent,
                      place_lesions)
from .structures import STRUCTURE_NAMES, structure_labels

log = logging.getLogger(__name__)

_STREAM_ANATOMY, _STREAM_LESIONS, _STREAM_BIAS, _STREAM_NOISE, _STREAM_CONTRAST, _STREAM_CYSTS = 1, 2, 3, 4, 5, 6
_STREAM_DISTRACTORS, _STREAM_MOTION = 7, 8  # only drawn from when those factors are switched on
#: per-seed scanner/patient variation of every tissue's pre-contrast signal (uniform factor range)
CONTRAST_JITTER = (0.9, 1.1)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))


@dataclass
class Phantom:
    """A generated phantom exam and its ground truth.

    Attributes:
        config: the configuration that generated it.
        exam: the DCE exam (phases ``'pre', 'post1', ...`` on one grid; uint16 or float32 voxels).
        breast_mask: ground-truth breast region, uint8 0 / 1 left / 2 right (DESIGN.md definition).
        lesion_labels: uint16 lesion instances 0..N, numbered by decreasing volume.
        lesions: one dict per lesion (index, kind, shape, volume_mm3, volume_ml, diameter_mm,
            kinetics, early/late/peak enhancement, rim_enhancement, centroid_lps_mm, side, n_voxels).
        tissue: uint8 tissue-class map (``anatomy.TISSUE_NAMES``), for analysis and debugging.
        structures: uint8 map of the enhancing non-lesion structures (``structures.STRUCTURE_NAMES``: breast
            vessels, vessel trees, lymph nodes), for analysing false lesions.
        anatomy: the drawn anatomy parameters (JSON-ready dict).
        generation_time_s: wall time of :func:`generate_phantom`.
    """

    config: PhantomConfig
    exam: DCEExam
    breast_mask: Volume
    lesion_labels: Volume
    lesions: list[dict]
    tissue: Volume | None = None
    structures: Volume | None = None
    anatomy: dict = field(default_factory=dict)
    generation_time_s: float = 0.0

    @property
    def breast_volumes_ml(self) -> dict[str, float]:
        """Ground-truth breast volumes in mL: ``{'left': .., 'right': ..}``."""
        vv = self.breast_mask.geometry.voxel_volume_mm3 / 1000.0
        arr = self.breast_mask.array
        return {"left": float(np.count_nonzero(arr == BREAST_LEFT) * vv),
                "right": float(np.count_nonzero(arr == BREAST_RIGHT) * vv)}

    def summary(self) -> dict:
        """JSON-ready description: config, grid, phases, breast volumes, lesion table."""
        return {
            "config": self.config.to_dict(),
            "geometry": self.exam.geometry.to_dict(),
            "phases": self.exam.names,
            "acquisition_times_s": list(self.exam.acquisition_times_s or []),
            "breast_volumes_ml": self.breast_volumes_ml,
            "breast_region_definition": {
                "labels": {"1": "left (patient's left, LPS x > 0)", "2": "right (LPS x <= 0)"},
                "midline_x_lps_mm": 0.0,
                "posterior_boundary": "anterior surface of the pectoral muscle / chest wall",
                "lateral_boundary": "coronal plane axillary_plane_offset_mm posterior to the anterior pectoral "
                                    "surface at the sternal midline (same axial plane)",
                "axillary_plane_offset_mm": AXILLARY_PLANE_OFFSET_MM,
            },
            "n_lesions": len(self.lesions),
            "lesions": self.lesions,
            "tissue_names": list(TISSUE_NAMES),
            "structure_names": list(STRUCTURE_NAMES),
            "anatomy": self.anatomy,
            "generation_time_s": self.generation_time_s,
        }


def _pre_lut(config: PhantomConfig) -> np.ndarray:
    """Pre-contrast signal per tissue class for this seed (documented table x per-seed jitter), float32."""
    col = 0 if config.fat_saturated else 1
    n_tissue = len(TISSUE_NAMES)
    jitter = _rng(config.seed, _STREAM_CONTRAST).uniform(*CONTRAST_JITTER, size=n_tissue + 1)  # first draw
    return np.array([PRE_SIGNAL[t][col] * jitter[t] for t in range(n_tissue)] + [BLOOD_PRE[col] * jitter[-1]],
                    dtype=np.float32)


def _blood_peak_percent(config: PhantomConfig) -> float:
    """Per-seed first-pass blood enhancement peak (percent), second draw of the contrast stream."""
    rng = _rng(config.seed, _STREAM_CONTRAST)
    rng.uniform(size=len(TISSUE_NAMES) + 1)
    return float(rng.uniform(*BLOOD_PEAK_RANGE_PERCENT))


def _signals(config: PhantomConfig, maps: AnatomyMaps, lut: np.ndarray) -> list[np.ndarray]:
    """Noise-free signal of each phase (float32, intensity scale 1), lesions not yet included."""
    blood_peak = _blood_peak_percent(config)
    n_tissue = len(TISSUE_NAMES)
    pre_lut = lut[:n_tissue]
    tissue = maps.tissue
    gland = tissue == GLAND
    f = maps.fgt_fraction[gland]
    fat_pre, gland_pre = pre_lut[FAT], pre_lut[GLAND]
    s0 = pre_lut[tissue]
    s0_gland_fat = np.float32(fat_pre) * (1.0 - f)
    s0_gland_fgt = np.float32(gland_pre) * f
    s0[gland] = s0_gland_fat + s0_gland_fgt
    v = maps.vessel_fraction
    vmask = v > 0
    vv = v[vmask]
    blood_pre = np.float32(lut[n_tissue])  # vessels
    out = []
    times = (0.0,) + config.post_times_s
    for t in times:
        e_lut = np.array([tissue_enhancement_percent(k, t, config.post_times_s, blood_peak,
                                                     config.muscle_enhancement_percent,
                                                     config.skin_enhancement_percent) / 100.0 if t > 0 else 0.0
                          for k in range(n_tissue)], dtype=np.float32)
        s = s0 * (1.0 + e_lut[tissue])
        if t > 0:
            bpe = np.float32(config.bpe_percent / 100.0) * e_lut[GLAND] * maps.bpe_factor[gland]
            fat_e = e_lut[FAT]
            s[gland] = s0_gland_fat * (1.0 + fat_e) + s0_gland_fgt * (1.0 + bpe)
            ve = np.float32(vessel_enhancement_percent(t, config.post_times_s, blood_peak) / 100.0)
        else:
            ve = np.float32(0.0)
        s[vmask] = (1.0 - vv) * s[vmask] + vv * blood_pre * (1.0 + ve)
        out.append(s)
    return out


def _mix(signal: np.ndarray, fraction: np.ndarray, value: float) -> None:
    """``signal = (1 - f) signal + f value`` where the partial-volume fraction ``f`` > 0 (in place)."""
    sel = fraction > 0
    f = fraction[sel]
    signal[sel] = (1.0 - f) * signal[sel] + f * np.float32(value)


def _add_distractors(config: PhantomConfig, signals: list[np.ndarray], dist: DistractorMaps, lut: np.ndarray) -> None:
    """Mix the vessel trees and lymph nodes into the noise-free phase signals (in place)."""
    blood_peak = _blood_peak_percent(config)
    blood_pre = float(lut[len(TISSUE_NAMES)])
    node_pre = 0.9 * float(lut[GLAND])
    times = (0.0,) + config.post_times_s
    t1, span = config.post_times_s[0], max(config.post_times_s[-1] - config.post_times_s[0], 1e-6)
    for t, s in zip(times, signals):
        _mix(s, dist.arterial, blood_pre * (1 + arterial_enhancement_percent(t, config.post_times_s, blood_peak) / 100))
        _mix(s, dist.venous, blood_pre * (1 + venous_enhancement_percent(t, config.post_times_s, blood_peak) / 100))
        node = node_pre if t <= 0 else node_pre * (1 + dist.node_early_percent / 100) * (
            1 + dist.node_late_change * (t - t1) / span)
        _mix(s, dist.node, node)


def _motion_shifts_mm(config: PhantomConfig) -> list[np.ndarray]:
    """One random LPS translation per phase (zero for pre), each at most ``motion_mm`` long."""
    shifts = [np.zeros(3)]
    if config.motion_mm <= 0:
        return shifts * (config.n_post + 1)
    rng = _rng(config.seed, _STREAM_MOTION)
    for _ in range(config.n_post):
        v = rng.normal(size=3)
        shifts.append(v / max(np.linalg.norm(v), 1e-9) * config.motion_mm * rng.uniform(0.3, 1.0))
    return shifts


def _checked_config(config: PhantomConfig | None) -> PhantomConfig:
    """``config``, or the default ``PhantomConfig()`` when None.

    Raises:
        InputError: ``config`` is not a :class:`PhantomConfig`.
    """
    config = config or PhantomConfig()
    if not isinstance(config, PhantomConfig):
        raise InputError(f"generate_phantom: config must be a PhantomConfig, got {type(config).__name__}")
    return config


@dataclass
class _Patient:
    """The drawn patient sampled on the grid: anatomy, its maps, cysts and optional distractors."""

    anatomy: PatientAnatomy
    maps: AnatomyMaps
    cysts: list[dict]
    distractors: DistractorMaps | None

    def description(self) -> dict:
        """JSON-ready anatomy parameters, cysts and (when drawn) the distractors (``Phantom.anatomy``)."""
        return {**self.anatomy.to_dict(), "cysts": self.cysts,
                **({"distractors": self.distractors.description} if self.distractors is not None else {})}


def _draw_patient(config: PhantomConfig, geometry: Geometry, coords: VoxelCoordinates) -> _Patient:
    """Draw the anatomy, sample it on the grid, add cysts and (when switched on) vessel trees, nodes, folds."""
    anatomy = draw_anatomy(_rng(config.seed, _STREAM_ANATOMY), config.fgt_density)
    maps = voxelize_anatomy(anatomy, geometry, coords)
    cysts = add_cysts(_rng(config.seed, _STREAM_CYSTS), anatomy, maps, coords, geometry)
    distractors = None
    if config.vessel_trees or config.axillary_nodes or config.skin_folds:
        distractors = draw_distractors(_rng(config.seed, _STREAM_DISTRACTORS), anatomy, maps, geometry, coords,
                                       config.vessel_trees, config.arterial_fraction, config.axillary_nodes,
                                       config.skin_folds)
    return _Patient(anatomy, maps, cysts, distractors)


def _draw_and_place_lesions(config: PhantomConfig, anatomy: PatientAnatomy, geometry: Geometry,
                            coords: VoxelCoordinates, maps: AnatomyMaps) -> tuple[np.ndarray, list[VoxelLesion]]:
    """Draw this seed's lesion count and lesions and voxelize them where lesions are allowed.

    A lesion can be dropped on a coarse/small grid: up to 5 top-up draws restore the minimum count
    (a warning is logged when it still does not fit).

    Returns:
        ``(labels, placed)``: uint16 (z, y, x) lesion instance labels and the placed (voxelized) lesions.
    """
    rng_les = _rng(config.seed, _STREAM_LESIONS)
    lo, hi = config.n_lesions
    count = int(rng_les.integers(lo, hi + 1))
    specs = draw_lesions(rng_les, anatomy, config, count)
    labels, vox = place_lesions(specs, geometry, coords, maps.lesion_allowed)
    for _ in range(5):
        if len(vox) >= lo:
            break
        extra = draw_lesions(rng_les, anatomy, config, lo - len(vox), existing=[v.spec for v in vox])
        labels, vox = place_lesions([v.spec for v in vox] + extra, geometry, coords, maps.lesion_allowed)
    if len(vox) < lo:
        log.warning("seed %d: only %d lesions fit on this grid (minimum %d requested)", config.seed, len(vox), lo)
    return labels, vox


def _noise_free_signals(config: PhantomConfig, patient: _Patient, vox: list[VoxelLesion]) -> list[np.ndarray]:
    """Noise-free float32 signal of every phase (intensity scale 1): tissues, distractors, then lesions."""
    lut = _pre_lut(config)
    signals = _signals(config, patient.maps, lut)
    if patient.distractors is not None:
        _add_distractors(config, signals, patient.distractors, lut)
    gland_pre = float(lut[GLAND])
    for vl in vox:
        rel = lesion_signal_relative(vl, config.post_times_s)
        s_pre = np.float32(vl.spec.pre_relative * gland_pre)
        for k, s in enumerate(signals):
            s.flat[vl.flat_index] = s_pre * rel[k]
    return signals


def _stored_voxels(img: np.ndarray, config: PhantomConfig, name: str) -> np.ndarray:
    """``img`` in the configured voxel type: rounded and clipped to uint16 (logging clipped voxels) or float32."""
    if config.dtype != "uint16":
        return img.astype(np.float32, copy=False)
    n_clip = int(np.count_nonzero(img > 65535))
    if n_clip:
        log.warning("phantom phase %s: %d voxels above 65535 clipped (lower intensity_scale %.3g)",
                    name, n_clip, config.intensity_scale)
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16)


def _acquire_exam(config: PhantomConfig, signals: list[np.ndarray], bias: np.ndarray, geometry: Geometry) -> DCEExam:
    """Image the noise-free signals: slice blur, per-phase motion, bias field, intensity scale, Rician noise.

    Args:
        config: the phantom configuration.
        signals: noise-free signal per phase (float32, (z, y, x)).
        bias: multiplicative bias field on the grid (float32, (z, y, x)).
        geometry: the image grid.

    Returns:
        The DCE exam (phase times 0 s and ``config.post_times_s``).
    """
    rng_noise = _rng(config.seed, _STREAM_NOISE)
    col = 0 if config.fat_saturated else 1
    sigma = config.noise_percent / 100.0 * PRE_SIGNAL[GLAND][col] * config.intensity_scale
    phases: list[Volume] = []
    for name, s, shift in zip(config.phase_names, signals, _motion_shifts_mm(config)):
        img = rigid_shift(psf_blur(s, geometry.spacing, fwhm_z_mm=config.slice_thickness_mm), shift, geometry)
        img *= bias
        img *= np.float32(config.intensity_scale)
        img = rician_noise(rng_noise, img, sigma)
        phases.append(Volume(_stored_voxels(img, config, name), geometry, name=name,
                             source=f"phantom seed {config.seed}"))
    return DCEExam(phases, acquisition_times_s=[0.0, *config.post_times_s],
                   notes=[f"synthetic phantom exam, seed {config.seed}"])


def _lesion_record(index: int, vl: VoxelLesion, config: PhantomConfig, voxel_volume_mm3: float,
                   flat_xyz: tuple[np.ndarray, np.ndarray, np.ndarray], breast_mask: np.ndarray) -> dict:
    """One row of the lesion table (see :class:`Phantom`): size (mm^3, mL, mm), kinetics, LPS centroid (mm), side."""
    spec = vl.spec
    v_mm3 = vl.n_voxels * voxel_volume_mm3
    cen = [float(a[vl.flat_index].mean()) for a in flat_xyz]
    sides = np.bincount(breast_mask.flat[vl.flat_index], minlength=3)
    return {
        "index": index,
        "kind": spec.kind,
        "shape": spec.shape,
        "n_voxels": vl.n_voxels,
        "volume_mm3": float(v_mm3),
        "volume_ml": float(v_mm3 / 1000.0),
        "diameter_mm": float((6.0 * v_mm3 / math.pi) ** (1.0 / 3.0)),
        "kinetics": spec.kinetics,
        "early_enhancement_percent": float(spec.early_percent),
        "late_change_percent": float(spec.late_change * 100.0),
        "peak_enhancement_percent": peak_enhancement_percent(spec, config.post_times_s),
        "rim_enhancement": bool(spec.rim),
        "centroid_lps_mm": cen,
        "side": "left" if spec.side > 0 else "right",
        "breast_label": int(np.argmax(sides[1:]) + 1),
    }


def _lesion_table(config: PhantomConfig, vox: list[VoxelLesion], geometry: Geometry,
                  breast_mask: np.ndarray) -> list[dict]:
    """The lesion table, one :func:`_lesion_record` per placed lesion, numbered from 1 in placement order."""
    if not vox:
        return []
    coords = VoxelCoordinates.of(geometry)
    flat_xyz = (coords.x.ravel(), coords.y.ravel(), coords.z.ravel())
    return [_lesion_record(n, vl, config, geometry.voxel_volume_mm3, flat_xyz, breast_mask)
            for n, vl in enumerate(vox, start=1)]


def generate_phantom(config: PhantomConfig | None = None) -> Phantom:
    """Generate one phantom exam with its ground truth (deterministic per ``config``).

    Args:
        config: the phantom configuration (default ``PhantomConfig()``: seed 0, 224 x 128 x 64 voxels).

    Returns:
        The :class:`Phantom`: phases ``(z, y, x)`` on the configured LPS grid, breast mask and lesion labels.

    Raises:
        InputError: ``config`` is not a :class:`PhantomConfig`.
    """
    config = _checked_config(config)
    t_start = time.perf_counter()
    geometry = phantom_geometry(config)
    coords = VoxelCoordinates.of(geometry)
    patient = _draw_patient(config, geometry, coords)
    t_anat = time.perf_counter()
    labels, vox = _draw_and_place_lesions(config, patient.anatomy, geometry, coords, patient.maps)
    t_les = time.perf_counter()

    signals = _noise_free_signals(config, patient, vox)
    bias = bias_field(_rng(config.seed, _STREAM_BIAS), coords, config.bias_strength)
    del coords  # free the coordinate arrays before imaging the phases
    exam = _acquire_exam(config, signals, bias, geometry)
    lesions = _lesion_table(config, vox, geometry, patient.maps.breast_mask)
    t_end = time.perf_counter()
    gen_s = t_end - t_start
    log.info("phantom seed %d: %s grid, %d lesions, generated in %.2f s (anatomy %.2f s, lesions %.2f s, "
             "signal %.2f s)", config.seed, "x".join(map(str, config.size)), len(lesions), gen_s,
             t_anat - t_start, t_les - t_anat, t_end - t_les)
    return Phantom(
        config=config,
        exam=exam,
        breast_mask=Volume(patient.maps.breast_mask, geometry, name="breast_mask"),
        lesion_labels=Volume(labels, geometry, name="lesions"),
        lesions=lesions,
        tissue=Volume(patient.maps.tissue, geometry, name="tissue"),
        structures=Volume(structure_labels(patient.maps, patient.distractors), geometry, name="structures"),
        anatomy=patient.description(),
        generation_time_s=gen_s,
    )
