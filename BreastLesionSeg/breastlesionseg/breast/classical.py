"""Classical (training-free) breast-region segmentation of a breast DCE-MRI exam.

Definition (docs/DESIGN.md, shared with the phantom ground truth): the breast region is the
breast tissue of each breast - skin, subcutaneous fat and fibroglandular tissue - bounded
posteriorly by the anterior surface of the pectoralis muscle / chest wall (muscle, ribs, heart
and lungs are outside) and laterally at the anterior axillary line, taken as the coronal plane
``posterior_limit_mm`` (45 mm) posterior of the chest-wall surface at the sternal midline in each
axial slice (axilla and arms outside); air is outside; left and right are split at the sternal
midline (label 1 = patient's left = +x in LPS, label 2 = patient's right).

Algorithm (on a reduced grid of about ``working_spacing_mm``; details in docs/breast_region.md):

1. Block-average each phase (``sitk.BinShrink``) to the working spacing, then bring it to LPS index
   axes (x: right->left, y: anterior->posterior, z: inferior->superior): an exact permutation/flip
   (``sitk.DICOMOrient``) for axis-aligned grids, linear resampling onto an LPS-aligned grid for
   oblique ones.
2. Body/air boundary: Otsu threshold of log(1 + mean of the phases) (a multiplicative bias field
   becomes a small additive offset), largest 3D component, holes filled per axial slice. Without
   air in the field of view (a crop inside the breast) the whole field of view is tissue.
3. Chest wall (``chest_wall.py``): searched from the lungs and the heart (dark / strongly enhancing
   anchors deep in the body) towards the skin, as the anterior end of the pectoralis muscle layer,
   then regularised by a robust per-slice polynomial, a grey opening along z (ribs) and a median;
   below the breasts' centre slice (liver, not lungs/heart, behind the chest wall) the surface may
   move posteriorly only ``inferior_descent_mm_per_mm`` per mm towards inferior.
4. Sternal midline: the minimum of the breast-thickness profile between the two breast humps
   (``sides.py``; falls back to the scanner's x = 0 plane when only one breast is visible).
5. Lateral boundary: the coronal plane ``posterior_limit_mm`` behind the sternal chest wall.
6. Label by side, drop small islands, fill holes per slice, and map back to the pre-contrast grid
   exactly (block upsampling + inverse permutation/flip, or nearest-neighbour resampling in
   physical space for oblique grids).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError
from ..geometry import Geometry, Volume
from ..labels import BACKGROUND, BREAST_LEFT, BREAST_RIGHT
from .chest_wall import find_chest_wall, limit_inferior_descent, reference_slice
from .config import BreastRegionConfig
from .sides import midline_from_profile, scanner_midline_index

log = logging.getLogger(__name__)

#: lower/upper Otsu class mean ratio below which the darker class is taken to be air (noise floor)
_AIR_CONTRAST_RATIO = 0.3
#: minimum fraction of the field of view that must be air for a body/air boundary to exist
_MIN_AIR_FRACTION = 0.02


@dataclass
class ClassicalDiagnostics:
    """Intermediate results of the classical segmenter (for debugging, figures and tests).

    Attributes:
        working_spacing_mm: spacing (x, y, z) of the reduced LPS-oriented grid.
        has_air: whether a body/air boundary was found.
        chest_wall_found_fraction: fraction of body columns in which a chest wall was detected.
        midline_lps_x_mm: LPS x (mm) of the sternal midline plane (reduced grid centre).
        single_breast: True when only one breast was found in the field of view.
        body_threshold: body/air threshold on log(1 + intensity).
        timings_s: seconds per step.
        arrays: reduced-grid intermediate arrays (``body``, ``dark``, ``chest_wall_y``) on the
            LPS-oriented working grid, kept for figures and debugging.
    """

    working_spacing_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    has_air: bool = True
    chest_wall_found_fraction: float = 0.0
    midline_lps_x_mm: float | None = None
    single_breast: bool = False
    fat_saturated: bool | None = None
    sternal_surface_y_mm: float | None = None
    body_threshold: float | None = None
    reference_slice: int | None = None
    timings_s: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict, repr=False)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu threshold of a 1-D sample (between-class variance maximum of a histogram)."""
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist).astype(float)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between[:-1]))]) if bins > 1 else lo


def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    out = np.empty_like(mask)
    for z in range(mask.shape[0]):
        out[z] = ndi.binary_fill_holes(mask[z])
    return out


def block_mean_image(array: np.ndarray, geometry: Geometry, factors: Sequence[int]) -> sitk.Image:
    """Block average of ``array`` (z, y, x) by ``factors`` (x, y, z): ``sitk.BinShrink``'s grid and values, float32.

    The output has ``floor(size / factor)`` voxels per axis, spacing ``spacing * factor`` and its origin at
    the centre of the first block (as ITK's BinShrink). When PyTorch is already loaded in the process (the
    ``segment`` pipeline), its multithreaded ``avg_pool3d`` computes the means straight from the array;
    otherwise SimpleITK does, after copying the array into an image (that copy was 0.45 of the 0.6 s for
    the five Duke phases). Both give the same float32 values (max difference 0 on the Duke exam); tested.

    Args:
        array: the image, shape ``geometry.shape_zyx``; bool and float16 are averaged as float32.
        geometry: its grid.
        factors: block size per axis (x, y, z), each >= 1.

    Returns:
        The float32 block-mean image with its geometry (same direction).
    """
    arr = np.asarray(array)
    if arr.dtype == np.bool_ or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    factors = [int(f) for f in factors]
    torch = sys.modules.get("torch")  # never imported just for this: the breast package works without it
    if torch is None or arr.dtype not in (np.float32, np.float64, np.int16, np.uint16, np.int32, np.uint8):
        img = geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(arr)))
        small = sitk.BinShrink(img, factors) if any(f > 1 for f in factors) else img
        return sitk.Cast(small, sitk.sitkFloat32)
    # integer images are averaged in float32 here; BinShrink rounds them to the pixel type (a difference far
    # below the contrasts the classical method uses)
    values = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
    pooled = torch.nn.functional.avg_pool3d(values, kernel_size=factors[::-1], stride=factors[::-1])[0, 0]
    small = sitk.GetImageFromArray(pooled.numpy())
    spacing = np.asarray(geometry.spacing, dtype=float)
    small.SetSpacing(tuple(float(v) for v in spacing * factors))
    small.SetDirection(tuple(float(v) for v in geometry.direction_matrix.ravel()))
    first_centre = geometry.direction_matrix @ ((np.asarray(factors, dtype=float) - 1.0) / 2.0 * spacing)
    small.SetOrigin(tuple(float(v) for v in np.asarray(geometry.origin, dtype=float) + first_centre))
    return small


def segment_classical(phases: list[Volume], config: BreastRegionConfig) -> tuple[np.ndarray, ClassicalDiagnostics]:
    """Segment the breast region without training data.

    Args:
        phases: ``[pre, post1, ...]`` (at least the pre-contrast) on one grid.
        config: method parameters (see :class:`BreastRegionConfig`).

    Returns:
        ``(mask, diagnostics)``: ``mask`` is uint8 ``(z, y, x)`` on the pre-contrast grid with
        0 background, 1 left breast, 2 right breast.
    """
    diag = ClassicalDiagnostics()
    t0 = time.perf_counter()
    work = _working_grid(phases, config, diag)
    diag.timings_s["resample_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    body, thr = _body_mask(work, diag)
    diag.timings_s["body_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    region, cw_map = _below_chest_wall(work, body, thr, config, diag)
    diag.timings_s["chest_wall_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    region, x_mid = _midline_and_lateral_limit(work, region, cw_map, config, diag)
    diag.timings_s["midline_s"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    labels = _label_sides(region, x_mid, work.sp, config, diag)
    diag.timings_s["labels_s"] = time.perf_counter() - t4
    t5 = time.perf_counter()
    mask = _map_back(labels, work)
    diag.timings_s["map_back_s"] = time.perf_counter() - t5
    diag.timings_s["total_s"] = time.perf_counter() - t0
    return mask, diag


@dataclass
class _WorkingGrid:
    """The exam on the reduced, LPS-oriented working grid (step 1 of :func:`segment_classical`).

    Attributes:
        geom: the pre-contrast grid; factors: block-averaging factors (x, y, z); oblique: whether it is oblique;
        pre_s: the reduced pre-contrast image; P: log(1 + pre) (z, y, x); B: log(1 + body intensity);
        enhancement: relative enhancement of the brightest post phase or ``None``; valid: voxels inside the
        field of view; sp: working spacing (x, y, z) mm.
    """

    geom: Geometry
    factors: list[int]
    oblique: bool
    pre_s: sitk.Image
    P: np.ndarray
    B: np.ndarray
    enhancement: np.ndarray | None
    valid: np.ndarray
    sp: np.ndarray


def _working_grid(phases: list[Volume], config: BreastRegionConfig, diag: ClassicalDiagnostics) -> _WorkingGrid:
    """Step 1: reduce resolution by block averaging on the native axes, then bring the small images to LPS
    index axes so y runs anterior -> posterior: an exact axis permutation/flip (DICOMOrient) for
    axis-aligned grids, a linear resampling onto an LPS-aligned grid for oblique ones."""
    geom = phases[0].geometry
    spacing = np.asarray(geom.spacing)
    factors = [max(1, min(int(round(config.working_spacing_mm / s)), n)) for s, n in zip(spacing, geom.size)]
    dmat = geom.direction_matrix
    oblique = bool(np.abs(np.abs(dmat).max(axis=0) - 1.0).max() > 1e-4)
    aligned_ref: sitk.Image | None = None
    if oblique:
        corners = geom.corners_lps()
        step = float(np.median(spacing * np.asarray(factors)))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        size = [int(np.floor((h - l) / step)) + 1 for l, h in zip(lo, hi)]
        aligned_ref = Geometry(tuple(size), (step, step, step), tuple(lo)).reference_image(sitk.sitkFloat32)

    def shrink(volume: Volume) -> sitk.Image:
        small = block_mean_image(volume.array, geom, factors)
        if aligned_ref is not None:
            return sitk.Resample(small, aligned_ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        return sitk.DICOMOrient(small, "LPS")

    small = [shrink(phases[0])]
    if config.body_intensity != "pre":
        small += [shrink(p) for p in phases[1:]]
    pre_s = small[0]
    stack = [sitk.GetArrayFromImage(s) for s in small]
    if len(stack) == 1:
        body_lin = stack[0]
    elif config.body_intensity == "max":
        body_lin = np.maximum.reduce(stack)
    else:
        body_lin = np.mean(stack, axis=0)
    P = np.log1p(np.maximum(stack[0], 0.0))
    enhancement = None
    if len(stack) > 1:
        # relative enhancement of the brightest post-contrast phase (heart vs skeletal muscle)
        # (the denominator is floored at half the median signal so that noise at the air boundary,
        # where the pre-contrast signal is near zero, does not look like enhancement)
        floor = 0.5 * float(np.median(stack[0][stack[0] > np.expm1(_otsu(P.ravel()))]))
        enhancement = (np.maximum.reduce(stack[1:]) - stack[0]) / np.maximum(stack[0], max(floor, 1e-3))
    B = np.log1p(np.maximum(body_lin, 0.0))
    if aligned_ref is not None:
        ones = geom.apply_to(sitk.GetImageFromArray(np.ones(geom.shape_zyx, np.uint8)))
        valid = sitk.GetArrayFromImage(
            sitk.Resample(ones, aligned_ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)) > 0
    else:
        valid = np.ones(stack[0].shape, dtype=bool)
    sp = np.asarray(pre_s.GetSpacing())  # (x, y, z) mm of the reduced, oriented grid
    diag.working_spacing_mm = tuple(float(v) for v in sp)
    return _WorkingGrid(geom, factors, oblique, pre_s, P, B, enhancement, valid, sp)


def _body_mask(work: _WorkingGrid, diag: ClassicalDiagnostics) -> tuple[np.ndarray, float]:
    """Step 2: body / air (Otsu on log intensity, largest component, holes filled); ``(body, threshold)``."""
    B, valid = work.B, work.valid
    Bv = B[valid]
    thr = _otsu(Bv)
    lin = np.expm1(Bv)
    low, high = lin[Bv <= thr], lin[Bv > thr]
    air_fraction = low.size / max(Bv.size, 1)
    ratio = float(low.mean() / max(high.mean(), 1e-6)) if low.size and high.size else 1.0
    diag.has_air = bool(air_fraction >= _MIN_AIR_FRACTION and ratio < _AIR_CONTRAST_RATIO)
    if diag.has_air:
        diag.body_threshold = thr
        body = (B > thr) & valid
        body = ndi.binary_opening(body, structure=ndi.generate_binary_structure(3, 1))
        body = _largest_component(body)
        body = _fill_holes_per_slice(body)
    else:
        log.info("no body/air boundary in the field of view (air fraction %.3f, contrast ratio %.2f): "
                 "treating it as a crop inside the breast", air_fraction, ratio)
        body = valid.copy()
    return body, thr


def _below_chest_wall(work: _WorkingGrid, body: np.ndarray, thr: float, config: BreastRegionConfig,
                      diag: ClassicalDiagnostics) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: the chest wall, searched from the lungs towards the skin (chest_wall.py); ``(region, y_cw map)``."""
    P, B, valid, sp = work.P, work.B, work.valid, work.sp
    nz, ny, nx = P.shape
    yy = np.arange(ny)[None, :, None]
    region = body.copy()
    cw_map = np.full((nz, nx), np.nan)
    if diag.has_air:
        cw = find_chest_wall(
            np.expm1(P), body, (B <= thr) & valid, sp, enhancement=work.enhancement,
            skin_mm=config.skin_mm, rib_mm=config.rib_width_mm, smoothing_mm=config.chest_wall_smoothing_mm,
            max_depth_mm=config.chest_wall_max_depth_mm,
        )
        cw_map = cw.y_cw
        if np.isfinite(cw_map).any():
            # below the breasts' centre the liver, not the lungs / heart, lies behind the chest wall:
            # the surface may not drift posteriorly there faster than the configured slope
            limit0 = np.where(np.isfinite(cw_map), cw_map, np.inf)
            diag.reference_slice = reference_slice(region & (yy < limit0[:, None, :]))
            cw_map = limit_inferior_descent(cw_map, diag.reference_slice, sp, config.inferior_descent_mm_per_mm)
        diag.chest_wall_found_fraction = cw.found_fraction
        diag.fat_saturated = cw.fat_saturated
        diag.arrays["chest_wall_y_raw"] = cw.y_cw_raw
        diag.arrays["lung"] = cw.lung
        limit = np.where(np.isfinite(cw_map), cw_map, np.inf)
        region &= yy < limit[:, None, :]
        if not np.isfinite(cw_map).any():
            log.info("no chest wall found: the whole tissue in the field of view is kept")
    diag.arrays["body"] = body
    diag.arrays["pre"] = np.expm1(P)
    diag.arrays["chest_wall_y"] = cw_map
    return region, cw_map


def _midline_and_lateral_limit(work: _WorkingGrid, region: np.ndarray, cw_map: np.ndarray,
                               config: BreastRegionConfig, diag: ClassicalDiagnostics) -> tuple[np.ndarray, float]:
    """Steps 4-5: the sternal midline from the breast-thickness profile along x, and the lateral boundary at
    the anterior axillary line: a coronal plane posterior_limit_mm posterior of the chest-wall surface at the
    sternal midline, per axial slice (lateral chest wall, axilla, arms are outside); ``(region, x_mid)``."""
    sp = work.sp
    nx, ny = region.shape[2], region.shape[1]
    yy = np.arange(ny)[None, :, None]
    g_small = Geometry.from_sitk(work.pre_s)
    x_mid = midline_from_profile(region.sum(axis=(0, 1)), max(1, int(round(10.0 / sp[0]))))
    if x_mid is None:
        diag.single_breast = True
        x_mid = scanner_midline_index(g_small)
    diag.midline_lps_x_mm = float(g_small.index_to_lps(np.array([x_mid, 0.0, 0.0]))[0])
    if diag.has_air and np.isfinite(cw_map).any():
        xm = int(np.clip(round(x_mid), 0, nx - 1))
        y_sternum = cw_map[:, xm].astype(float)
        if not np.isfinite(y_sternum).all():
            fallback = float(np.nanmedian(y_sternum)) if np.isfinite(y_sternum).any() else float(np.nanmin(cw_map))
            y_sternum = np.where(np.isfinite(y_sternum), y_sternum, fallback)
        y_post = y_sternum + config.posterior_limit_mm / sp[1]
        region &= yy <= y_post[:, None, None]
        diag.sternal_surface_y_mm = float(np.median(y_sternum)) * sp[1]
    return region, x_mid


def _label_sides(region: np.ndarray, x_mid: float, sp: np.ndarray, config: BreastRegionConfig,
                 diag: ClassicalDiagnostics) -> np.ndarray:
    """Step 6: clean up (thin tissue, small pieces, holes) and label by side on the working grid."""
    nx = region.shape[2]
    if config.min_breast_thickness_mm > 0 and diag.has_air:
        thick = region.sum(axis=1) * sp[1] >= config.min_breast_thickness_mm
        region &= thick[:, None, :]
    xx = np.arange(nx)[None, None, :]
    # +x in LPS is patient's left; in the LPS-oriented grid the x index grows towards +x
    left = region & (xx > x_mid)
    right = region & (xx <= x_mid)
    labels = np.zeros(region.shape, dtype=np.uint8)
    for side, value in ((left, BREAST_LEFT), (right, BREAST_RIGHT)):
        if not side.any():
            continue
        lab, n = ndi.label(side)
        if n > 1:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            side = np.isin(lab, np.nonzero(sizes >= 0.05 * sizes.max())[0])
        if config.fill_holes:
            side = _fill_holes_per_slice(side)
        labels[side & (labels == BACKGROUND)] = value
    diag.arrays["labels"] = labels
    return labels


def _map_back(labels: np.ndarray, work: _WorkingGrid) -> np.ndarray:
    """Step 7: back to the pre-contrast grid: inverse orientation on the reduced grid, then block upsampling
    (axis-aligned grids), or nearest-neighbour resampling in physical space (oblique grids)."""
    geom, factors = work.geom, work.factors
    lab_o = sitk.GetImageFromArray(labels)
    lab_o.CopyInformation(work.pre_s)
    if work.oblique:
        back = sitk.Resample(lab_o, geom.reference_image(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                             sitk.sitkUInt8)
    else:
        lab_n = sitk.DICOMOrient(lab_o, geom.orientation_code())
        small_geom = Geometry.from_sitk(lab_n)
        full = _upsample_blocks(sitk.GetArrayFromImage(lab_n), factors, geom.size)
        back = geom.apply_to(sitk.GetImageFromArray(full))
        expected_origin = geom.index_to_lps(np.zeros(3) + (np.asarray(factors) - 1) / 2.0)
        if not (np.allclose(small_geom.origin, expected_origin, atol=1e-3)
                and np.allclose(small_geom.direction, geom.direction, atol=1e-6)):
            # not a pure block correspondence (should not happen): resample in physical space
            back = sitk.Resample(lab_n, geom.reference_image(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                 sitk.sitkUInt8)
    return sitk.GetArrayFromImage(back).astype(np.uint8)


def _upsample_blocks(labels: np.ndarray, factors_xyz: list[int], size_xyz: tuple[int, ...]) -> np.ndarray:
    """Undo ``sitk.BinShrink``: repeat each reduced voxel over its block; edge remainder copies the last block."""
    fz, fy, fx = factors_xyz[2], factors_xyz[1], factors_xyz[0]
    out = labels
    for axis, f in ((0, fz), (1, fy), (2, fx)):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    target = (size_xyz[2], size_xyz[1], size_xyz[0])
    pad = [(0, max(0, t - s)) for t, s in zip(target, out.shape)]
    if any(p[1] for p in pad):
        out = np.pad(out, pad, mode="edge")
    return np.ascontiguousarray(out[: target[0], : target[1], : target[2]])


def validate_phases(phases: list[Volume]) -> None:
    """Raise :class:`InputError` when the phases cannot be segmented (empty, 2D, NaN, constant, grid)."""
    if not phases:
        raise InputError("breast-region segmentation needs at least the pre-contrast image; got no image")
    ref = phases[0]
    for p in phases:
        name = p.name or p.source or "image"
        arr = np.asarray(p.array)
        if arr.size == 0:
            raise InputError(f"image '{name}' is empty (shape {arr.shape})")
        if arr.ndim != 3 or min(arr.shape) < 3:
            raise InputError(
                f"image '{name}' is not a 3D volume: shape (z, y, x) = {arr.shape}; breast-region segmentation "
                "needs at least 3 voxels along every axis"
            )
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise InputError(f"image '{name}' has non-real voxel type {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"image '{name}' contains NaN or infinite voxels")
        if float(arr.max()) <= float(arr.min()):
            raise InputError(f"image '{name}' is constant (all voxels = {arr.flat[0]}); nothing to segment")
        if not p.geometry.same_grid(ref.geometry):
            raise InputError(f"image '{name}' is not on the pre-contrast grid of '{ref.name or ref.source}'")
