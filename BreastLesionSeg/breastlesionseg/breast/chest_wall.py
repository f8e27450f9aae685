"""Anterior surface of the pectoralis muscle / chest wall, searched from the thorax side.

Works on an LPS-oriented grid (array axes ``(z, y, x)``; y runs anterior -> posterior), one value
per ``(z, x)`` column: ``y_cw(z, x)`` = first voxel index *inside* the muscle (the breast region is
``y < y_cw``).

Why from the thorax side: fibroglandular tissue can look like muscle (non-fat-saturated T1) and fat
can be darker than muscle (fat-saturated T1), so a search from the skin is easily fooled. The lungs
are dark on every T1 sequence and the heart enhances strongly, and between them and the breast lie
only the chest wall (ribs, intercostal muscle) and the pectoralis. So:

1. Anchors, at least ``min_anchor_depth_mm`` below the body surface: dark (air-like) components
   (lungs), the heart and other large strongly enhancing organs (liver). The heart is told from other
   strongly enhancing tissue by shape: its bulk is what survives an opening with a ball of radius
   ``heart_core_mm``, so a pectoralis that enhances as much as the heart (a layer, thinner than the
   ball) is not the heart. Other large enhancing components anchor only where they do not lie within
   ``max_depth_mm`` in front of a lung or the heart (there lie the chest wall and the pectoralis), nor more
   than ``max_depth_mm`` in front of every lung and heart voxel of their slice (there lies the breast: marked
   background enhancement of the gland, joined to an enhancing pectoralis).
2. Levels measured in the image itself: the subcutaneous fat just below the skin, and the muscle
   level = the histogram mode of the tissue 1-20 mm anterior of the anchors with fat-like voxels
   (retromammary fat, fatty rib marrow) left out; a smooth local muscle-level map (normalised
   convolution) absorbs the bias field. A voxel is muscle-like within ``muscle_tolerance`` (log) of
   the local level, but never beyond halfway to the fat level, and never when it enhances like the
   heart within ``heart_margin_mm`` of the heart's bulk; away from the heart, strong enhancement does
   not stop a voxel from being muscle; single-voxel gaps are closed.
3. In every column, within ``max_depth_mm`` anterior of the anchor, the most anterior run of at
   least ``min_band_mm`` muscle-like voxels (below the skin) is followed anteriorly to its end: the
   chest-wall surface.
4. Regularisation: a Tukey-weighted robust polynomial y(x) per slice (interpolates over columns
   without anchor: sternum, mediastinum, lateral chest wall; a slice whose detections span only a short
   stretch of the chest takes the nearest well-covered slice's curve), a grey opening along z (ribs stop
   the search early in narrow bands) and a median along z.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

log = logging.getLogger(__name__)


@dataclass
class ChestWallResult:
    """The chest-wall surface and how it was found.

    Attributes:
        y_cw: ``(z, x)`` float index of the first voxel inside the muscle; NaN where the column has
            no chest wall (no thorax behind it, e.g. a crop inside the breast).
        y_cw_raw: the per-column detections before regularisation (NaN where none).
        lung: ``(z, y, x)`` bool interior dark (lung) mask used as the anchor.
        fat_level: subcutaneous fat level (image units); ``muscle_level``: chest-wall level.
        fat_saturated: True when fat is darker than muscle.
        found_fraction: fraction of body columns with a raw detection.
    """

    y_cw: np.ndarray
    y_cw_raw: np.ndarray
    lung: np.ndarray = field(repr=False)
    fat_level: float = float("nan")
    muscle_level: float = float("nan")
    fat_saturated: bool = False
    found_fraction: float = 0.0


def _first_index(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    return np.argmax(a, axis=axis), a.any(axis=axis)


def _last_index(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    n = a.shape[axis]
    rev = np.flip(a, axis=axis)
    return n - 1 - np.argmax(rev, axis=axis), a.any(axis=axis)


def _robust_rows(raw: np.ndarray, degree: int = 4, min_points: int = 12, iterations: int = 6,
                 extrapolate: int = 0, z_half_window: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per row (z), a Tukey-biweight robust fit ``y = poly(x) + c (z - z0)`` through the finite values
    of the rows ``z0 - z_half_window .. z0 + z_half_window``.

    Returns:
        ``(curve, span)``: the ``(z, x)`` fitted curve between the outermost inlier columns of each row
        (extended by ``extrapolate`` columns on both sides, where it never lies anterior of (below) its value
        at the outermost inlier), NaN elsewhere; and the ``(z,)`` number of columns between the outermost
        inliers of each row (0 where the row has no fit).
    """
    nz, nx = raw.shape
    out = np.full(raw.shape, np.nan)
    span = np.zeros(nz, dtype=int)
    xs_all = np.arange(nx, dtype=float)
    scale_x = max(nx / 2.0, 1.0)
    zz, xx_all = np.nonzero(np.isfinite(raw))
    vals = raw[zz, xx_all]
    for z in range(nz):
        sel = np.abs(zz - z) <= z_half_window
        if sel.sum() < min_points:
            continue
        x = (xx_all[sel] - nx / 2.0) / scale_x
        dz = (zz[sel] - z).astype(float)
        y = vals[sel]
        deg = min(degree, max(1, int(sel.sum()) // 6))
        cols = [x**k for k in range(deg + 1)]
        if z_half_window > 0 and np.ptp(dz) > 0:
            cols.append(dz)
        design = np.stack(cols, axis=1)
        w = np.ones_like(y)
        coef = None
        for _ in range(iterations):
            sw = np.sqrt(w)
            coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
            res = y - design @ coef
            mad = float(np.median(np.abs(res - np.median(res)))) * 1.4826
            c = 4.685 * max(mad, 1.0)
            u = res / c
            w = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
            if w.sum() < deg + 2:
                break
        inl = (w > 0) & (dz == 0)
        if coef is None or inl.sum() < 2:
            continue
        xin = xx_all[sel][inl]
        first, last = int(xin.min()), int(xin.max())
        span[z] = last - first + 1
        lo, hi = max(0, first - extrapolate), min(nx - 1, last + extrapolate)
        xx = (xs_all[lo: hi + 1] - nx / 2.0) / scale_x
        out[z, lo: hi + 1] = sum(coef[k] * xx**k for k in range(deg + 1))
        # lateral of the outermost detections the thorax curves away (posteriorly): the extrapolated
        # polynomial may not come forward of its value at the last detection (a high-degree polynomial
        # swings anteriorly there when the detections cover only the middle of the chest)
        out[z, lo:first] = np.maximum(out[z, lo:first], out[z, first])
        out[z, last + 1: hi + 1] = np.maximum(out[z, last + 1: hi + 1], out[z, last])
    return out, span


def _fill_rows_along_z(values: np.ndarray) -> np.ndarray:
    """Rows (z) that are all NaN take the nearest row with data."""
    ok_rows = np.isfinite(values).any(axis=1)
    if ok_rows.all() or not ok_rows.any():
        return values
    idx = np.arange(values.shape[0])
    good = idx[ok_rows]
    src = good[np.argmin(np.abs(idx[:, None] - good[None, :]), axis=1)]
    return values[src]


def find_chest_wall(
    pre: np.ndarray,
    body: np.ndarray,
    air_like: np.ndarray,
    spacing_xyz: np.ndarray,
    *,
    enhancement: np.ndarray | None = None,
    max_muscle_enhancement: float = 0.6,
    heart_enhancement: float = 0.8,
    min_heart_ml: float = 60.0,
    heart_core_mm: float = 12.0,
    heart_margin_mm: float = 10.0,
    min_lung_ml: float = 20.0,
    min_anchor_depth_mm: float = 15.0,
    skin_mm: float = 3.0,
    min_band_mm: float = 4.0,
    max_depth_mm: float = 40.0,
    muscle_tolerance: float = 0.25,
    seed_tolerance: float = 0.75,
    fat_exclusion: float = 0.2,
    rib_mm: float = 15.0,
    smoothing_mm: float = 20.0,
    level_sigma_mm: float = 30.0,
    poly_degree: int = 4,
    extrapolate_mm: float = 50.0,
    fit_half_window_mm: float = 0.0,
    min_span_fraction: float = 0.5,
) -> ChestWallResult:
    """Find the anterior chest-wall surface on an LPS-oriented grid.

    Args:
        pre: ``(z, y, x)`` pre-contrast intensities (linear, >= 0).
        body: ``(z, y, x)`` bool filled body mask.
        air_like: ``(z, y, x)`` bool voxels below the body/air threshold (air and lungs).
        spacing_xyz: voxel size (x, y, z) in mm.
        enhancement: optional ``(z, y, x)`` relative enhancement ``max(post) / pre - 1``; voxels
            enhancing more than ``max_muscle_enhancement`` near the heart are never muscle.
        max_muscle_enhancement: see ``enhancement`` (0.6 = 60 %).
        heart_enhancement, min_heart_ml: connected regions enhancing more than this (0.8 = 80 %) and
            larger than ``min_heart_ml`` (organs; the heart: larger than that after the opening of
            ``heart_core_mm``) also anchor the search, like the lungs.
        heart_core_mm: radius (mm) of the ball of that opening: enhancing structures thinner than twice
            this (a strongly enhancing pectoralis, vessels) are not the heart; the heart is its bulk and
            the organ voxels within this distance of it.
        heart_margin_mm: voxels enhancing more than ``max_muscle_enhancement`` within this distance (mm)
            of the heart's bulk are the heart, never muscle.
        min_lung_ml: interior dark components smaller than this are ignored (noise, vessels).
        min_anchor_depth_mm: lungs / heart are searched at least this deep below the body surface.
        skin_mm: skin thickness; the subcutaneous fat level is sampled just below it.
        min_band_mm: the muscle is a run of muscle-like voxels at least this thick.
        max_depth_mm: the anterior muscle surface lies at most this far anterior of the lung.
        fat_exclusion: voxels within this |log| ratio of the subcutaneous fat level are not used to
            estimate the muscle level.
        muscle_tolerance: a voxel is muscle-like within this |log| ratio of the local muscle level.
        seed_tolerance: voxels 1-20 mm anterior of the anchors within this |log| ratio of the global
            muscle level (histogram mode) feed the local muscle-level map (0.75: a factor ~2.1).
        rib_mm: posterior excursions of the surface narrower than this along z (ribs) are removed.
        smoothing_mm: median filter size across z and x.
        level_sigma_mm: scale of the local muscle level map (bias-field tolerance).
        poly_degree: degree of the robust per-slice polynomial y(x) of the surface.
        extrapolate_mm: the fitted curve is extended this far lateral of the outermost detections
            (the lateral chest wall has no lung behind it).
        fit_half_window_mm: each slice's curve is fitted to the detections of the slices within
            this distance (mm) along z (with a linear term in z).
        min_span_fraction: a slice whose detections span less than this fraction of the median span of the
            slices takes the curve of the nearest slice that spans enough (0: every slice keeps its own).

    Returns:
        :class:`ChestWallResult`.
    """
    nz, ny, nx = pre.shape
    sx, sy, sz = (float(v) for v in spacing_xyz)
    yy = np.arange(ny)[None, :, None]
    y_entry, has_body = _first_index(body, axis=1)
    # anchors (lungs, heart) lie at least min_anchor_depth_mm below the body surface (dark or
    # enhancing rims just under the skin are not thorax)
    deep = (yy >= y_entry[:, None, :] + int(round(min_anchor_depth_mm / sy))) & has_body[:, None, :]
    lung, heart_distance_mm = _anchors(body, air_like & deep, body & deep, enhancement, spacing_xyz, min_lung_ml,
                                       heart_enhancement, min_heart_ml, heart_core_mm, max_depth_mm)
    y_lung, has_lung = _first_index(lung, axis=1)
    empty = np.full((nz, nx), np.nan)
    if not has_lung.any():
        log.info("no lung found behind the body surface: no chest wall in the field of view")
        return ChestWallResult(empty, empty.copy(), lung)
    d0 = max(1, int(round(skin_mm / sy)))
    heart_like = None
    if enhancement is not None:
        heart_like = (enhancement >= max_muscle_enhancement) & (heart_distance_mm <= heart_margin_mm)
    levels = _muscle_like(pre, body, air_like, spacing_xyz, y_entry, y_lung, has_lung, d0, heart_like,
                          muscle_tolerance, seed_tolerance, fat_exclusion, level_sigma_mm, skin_mm)
    if levels is None:
        return ChestWallResult(empty, empty.copy(), lung)
    mlike, fat, muscle = levels
    raw, found_fraction = _front_of_muscle(mlike, y_entry, has_body, y_lung, has_lung, d0, sy, min_band_mm,
                                           max_depth_mm)
    surf = _regularise(raw, sx, sz, poly_degree, extrapolate_mm, fit_half_window_mm, rib_mm, smoothing_mm,
                       min_span_fraction)
    return ChestWallResult(surf, raw, lung, fat, muscle, fat < muscle, found_fraction)


def _distance_to_mm(mask: np.ndarray, spacing_xyz: np.ndarray) -> np.ndarray:
    """``(z, y, x)`` Euclidean distance (mm) of every voxel to the nearest voxel of ``mask`` (0 on it; inf when
    ``mask`` is empty), by SimpleITK's Maurer distance map (exact, multi-threaded)."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing([float(v) for v in spacing_xyz])
    distance = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=True)
    return np.maximum(sitk.GetArrayViewFromImage(distance), 0.0)


def _open_ball(mask: np.ndarray, spacing_xyz: np.ndarray, radius_mm: float) -> np.ndarray:
    """Morphological opening of ``mask`` with a ball of ``radius_mm`` (Euclidean, in mm; two distance maps
    instead of a large structuring element): what remains is the union of the balls that fit inside."""
    core = _distance_to_mm(~mask, spacing_xyz) > radius_mm
    return _near(core, spacing_xyz, radius_mm)


def _large_components(mask: np.ndarray, voxel_ml: float, min_ml: float) -> np.ndarray:
    """The connected components of ``mask`` of at least ``min_ml`` millilitres."""
    lab, n = ndi.label(mask)
    if not n:
        return mask
    sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(float) * voxel_ml
    sizes[0] = 0.0
    return np.isin(lab, np.nonzero(sizes >= min_ml)[0])


def _shortly_in_front_of(mask: np.ndarray, depth: int) -> np.ndarray:
    """``(z, y, x)`` True where ``mask`` holds a voxel at most ``depth`` voxels further posterior (larger y)
    in the same column."""
    front = np.zeros_like(mask)
    for k in range(1, depth + 1):
        front[:, :-k, :] |= mask[:, k:, :]
    return front


def _near(mask: np.ndarray, spacing_xyz: np.ndarray, distance_mm: float) -> np.ndarray:
    """``mask`` grown by ``distance_mm`` (Euclidean, in mm)."""
    if not mask.any():
        return mask
    return _distance_to_mm(mask, spacing_xyz) <= distance_mm


def _anchors(body: np.ndarray, dark_deep: np.ndarray, body_deep: np.ndarray, enhancement: np.ndarray | None,
             spacing_xyz: np.ndarray, min_lung_ml: float, heart_enhancement: float, min_heart_ml: float,
             heart_core_mm: float, max_depth_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: lungs (dark components inside the body outline that do not touch the anterior air), the heart
    and other large enhancing organs not just in front of them; ``(anchor, heart distance)``: the bool
    ``(z, y, x)`` anchor (lungs, the whole heart and those organs) and each voxel's distance (mm) to the
    heart's bulk (inf without one)."""
    voxel_ml = float(np.prod(spacing_xyz)) / 1000.0
    lab, n = ndi.label(dark_deep)
    lung = np.zeros_like(body)
    if n:
        sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(float) * voxel_ml
        anterior_ids = np.unique(lab[:, 0, :])
        sizes[anterior_ids] = 0.0
        sizes[0] = 0.0
        keep = np.nonzero(sizes >= min_lung_ml)[0]
        if keep.size:
            lung = np.isin(lab, keep)
    if enhancement is None:
        return lung, np.full(body.shape, np.inf)
    enhancing, bulk = _enhancing_organs((enhancement > heart_enhancement) & body_deep, spacing_xyz, min_heart_ml,
                                        heart_core_mm)
    heart_distance_mm = _distance_to_mm(bulk, spacing_xyz)
    # the heart: its bulk and the enhancing organ voxels around it (its rim)
    heart = enhancing & (heart_distance_mm <= heart_core_mm)
    # other large enhancing organs (the liver under the right breast) anchor the search too, but not within
    # max_depth_mm in front of the lungs or the heart: that is the chest wall, whose muscle may enhance strongly;
    # nor further forward than that of every lung and heart voxel of the slice: that is the breast
    thorax = lung | heart
    depth = int(round(max_depth_mm / float(spacing_xyz[1])))
    others = enhancing & ~_shortly_in_front_of(thorax, depth) & ~_far_in_front_of_slice(thorax, depth)
    return thorax | others, heart_distance_mm


def _far_in_front_of_slice(mask: np.ndarray, depth: int) -> np.ndarray:
    """``(z, y, x)`` True more than ``depth`` voxels anterior (smaller y) of the most anterior voxel of ``mask`` in
    the same axial slice (False in slices without ``mask``).

    The chest wall lies at most ``max_depth_mm`` in front of the thorax (lungs, heart): strongly enhancing tissue
    further forward than that of every lung and heart voxel of its slice is in the breast (marked background
    enhancement of the gland, joined to an enhancing pectoralis), not an organ behind the chest wall.
    """
    has = mask.any(axis=(1, 2))
    front = np.where(has, np.argmax(mask.any(axis=2), axis=1), 0)
    yy = np.arange(mask.shape[1])[None, :, None]
    return np.broadcast_to(has[:, None, None] & (yy < (front - depth)[:, None, None]), mask.shape)


def _enhancing_organs(strong: np.ndarray, spacing_xyz: np.ndarray, min_ml: float,
                      core_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``(organs, heart bulk)`` of the strongly enhancing voxels ``strong`` deep in the body: organs are its
    components of at least ``min_ml`` after a one-voxel opening (drops speckle); the heart's bulk is what
    survives an opening with a ball of ``core_mm`` (at least ``min_ml``). The heart lies directly behind the
    chest wall where the lungs do not; the ball drops enhancing layers and tubes (a strongly enhancing
    pectoralis, vessels reaching into the chest wall), which would move the anchor into the breast."""
    voxel_ml = float(np.prod(spacing_xyz)) / 1000.0
    organs = _large_components(ndi.binary_opening(strong, structure=ndi.generate_binary_structure(3, 1)),
                               voxel_ml, min_ml)
    return organs, _large_components(_open_ball(strong, spacing_xyz, core_mm), voxel_ml, min_ml)


def _muscle_like(pre, body, air_like, spacing_xyz, y_entry, y_lung, has_lung, d0, heart_like,
                 muscle_tolerance, seed_tolerance, fat_exclusion, level_sigma_mm,
                 skin_mm) -> tuple[np.ndarray, float, float] | None:
    """Step 2: reference levels, subcutaneous fat (just below the skin) and chest wall + muscle (anterior of
    the lungs) as smooth local maps (normalised convolution, so a bias field cancels out), and the
    muscle-like voxels; ``(muscle_like (z, y, x) bool, fat level, muscle level)`` or ``None`` without bands."""
    sx, sy, sz = (float(v) for v in spacing_xyz)
    yy = np.arange(pre.shape[1])[None, :, None]
    d1 = max(d0 + 1, int(round((skin_mm + 4.0) / sy)))
    sub_band = (yy >= y_entry[:, None, :] + d0) & (yy < y_entry[:, None, :] + d1) & body & ~air_like
    c0 = max(1, int(round(1.0 / sy)))
    c1 = max(c0 + 1, int(round(20.0 / sy)))
    cw_band = (yy >= y_lung[:, None, :] - c1) & (yy < y_lung[:, None, :] - c0) & has_lung[:, None, :] & body & ~air_like
    if not sub_band.any() or not cw_band.any():
        return None
    # muscle level: the mode of the tissue just anterior of the lungs (the chest wall + pectoralis
    # layer is the largest homogeneous tissue there), then a smooth local map for bias tolerance
    fat = float(np.median(pre[sub_band]))
    cw_log = np.log(np.maximum(pre[cw_band], 1e-3))
    # fat-like voxels (retromammary fat, fatty rib marrow) are left out: the muscle is what remains
    not_fat = np.abs(cw_log - np.log(max(fat, 1e-3))) > fat_exclusion
    if np.count_nonzero(not_fat) >= 20:
        cw_log = cw_log[not_fat]
    hist, edges = np.histogram(cw_log, bins=64)
    hist = ndi.uniform_filter1d(hist.astype(float), 3)
    m0 = float(np.exp(0.5 * (edges[int(np.argmax(hist))] + edges[int(np.argmax(hist)) + 1])))
    logp = np.log(np.maximum(pre, 1e-3))
    # the seeds of the local map accept a wide band around the global mode (seed_tolerance, log): a
    # strong bias field (Duke: the muscle in front of the liver is ~1.8x the global mode) must still
    # contribute to its own local level
    seeds = cw_band & (np.abs(logp - np.log(m0)) < seed_tolerance)
    sigma = [level_sigma_mm / v for v in (sz, sy, sx)]
    den = ndi.gaussian_filter(seeds.astype(np.float32), sigma, mode="nearest")
    num = ndi.gaussian_filter(np.where(seeds, logp, 0.0).astype(np.float32), sigma, mode="nearest")
    log_m = np.where(den > 1e-4, num / np.maximum(den, 1e-12), np.log(m0))
    # towards the fat level the band ends halfway between muscle and fat (in log), so that a weak
    # fat/muscle contrast does not let the muscle run leak into the retromammary fat
    half_gap = 0.5 * abs(np.log(max(fat, 1e-3)) - np.log(m0))
    toward_fat = min(muscle_tolerance, max(half_gap, 0.05))
    if fat < m0:
        lower, upper = log_m - toward_fat, log_m + muscle_tolerance
    else:
        lower, upper = log_m - muscle_tolerance, log_m + toward_fat
    mlike = (logp > lower) & (logp < upper) & body & ~air_like
    # single-voxel gaps (noise) inside the muscle do not break it
    gap = np.zeros_like(mlike)
    gap[:, 1:-1, :] = mlike[:, :-2, :] & mlike[:, 2:, :]
    mlike |= gap & body & ~air_like
    if heart_like is not None:
        # the heart's rim (blood pool, myocardium) can have a muscle-like pre-contrast level, but it
        # enhances strongly; skeletal muscle away from the heart may enhance strongly too and stays muscle
        mlike &= ~heart_like
    return mlike, fat, m0


def _front_of_muscle(mlike, y_entry, has_body, y_lung, has_lung, d0, sy, min_band_mm,
                     max_depth_mm) -> tuple[np.ndarray, float]:
    """Step 3: walk anteriorly from the lung: the first run of muscle-like voxels at least min_band_mm
    thick; its anterior end is the chest-wall surface (within max_depth_mm of the lung).

    Returns:
        ``(raw surface y per (z, x), NaN where none; fraction of body columns where one was found)``.
    """
    nz, ny, nx = mlike.shape
    yy = np.arange(ny)[None, :, None]
    after_entry = (yy > y_entry[:, None, :]) & has_body[:, None, :]
    run = max(1, int(round(min_band_mm / sy)))
    cs = np.concatenate([np.zeros((nz, 1, nx), np.int32), np.cumsum(mlike, axis=1, dtype=np.int32)], axis=1)
    full = np.zeros_like(mlike)
    full[:, : ny - run + 1, :] = (cs[:, run:, :] - cs[:, : ny - run + 1, :]) == run  # run of `run` starts at y
    # run ends (posterior end, walking anteriorly from the lung = larger y first)
    depth = max(run + 1, int(round(max_depth_mm / sy)))
    in_window = (yy < y_lung[:, None, :]) & (yy >= y_lung[:, None, :] - depth) & has_lung[:, None, :] & after_entry
    # runs starting in the skin (partial volume with air can look like muscle) do not count
    below_skin = yy > y_entry[:, None, :] + d0
    starts = full & in_window & below_skin
    # the most anterior run in the window (ribs and the thin intercostal layer lie posterior of the
    # pectoralis; the run must not be cut by the window's anterior edge, i.e. it is not the heart)
    y_run, found = _first_index(starts, axis=1)
    not_m = ~mlike & (yy < y_run[:, None, :])
    y_gap, has_gap = _last_index(not_m, axis=1)
    y_front = np.where(has_gap, y_gap + 1, 0)
    found &= has_gap & (y_front > y_lung - depth) & (y_front > y_entry + d0)
    raw = np.where(found, y_front.astype(float), np.nan)
    found_fraction = float(found[has_body].mean()) if has_body.any() else 0.0
    return raw, found_fraction


def _drop_narrow_rows(surf: np.ndarray, span: np.ndarray, min_span_fraction: float) -> np.ndarray:
    """Rows (z) whose detections span fewer than ``min_span_fraction`` of the median span of the fitted rows
    lose their curve (NaN; :func:`_fill_rows_along_z` then takes the nearest row that spans enough).

    Such a row's polynomial is fitted to a short stretch of the chest (at the edge of the field of view of a
    compound-oblique exam, or where the lungs end) and, extrapolated laterally, may dive posteriorly into the
    thorax; a neighbouring slice's curve is the better estimate there.
    """
    fitted = span > 0
    if min_span_fraction <= 0 or not fitted.any():
        return surf
    narrow = fitted & (span < min_span_fraction * float(np.median(span[fitted])))
    if not narrow.any() or narrow.sum() == fitted.sum():
        return surf
    out = surf.copy()
    out[narrow] = np.nan
    return out


def _regularise(raw: np.ndarray, sx: float, sz: float, poly_degree: int, extrapolate_mm: float,
                fit_half_window_mm: float, rib_mm: float, smoothing_mm: float,
                min_span_fraction: float = 0.0) -> np.ndarray:
    """Step 4: a robust smooth curve per slice (Tukey-weighted polynomial in x), then ribs (narrow
    posterior excursions along z) removed by a grey opening and a median along z."""
    surf, span = _robust_rows(raw, degree=poly_degree, extrapolate=int(round(extrapolate_mm / sx)),
                              z_half_window=int(round(fit_half_window_mm / sz)))
    surf = _drop_narrow_rows(surf, span, min_span_fraction)
    if np.isfinite(surf).any():
        finite = np.isfinite(surf)
        filled = _fill_rows_along_z(np.where(finite, surf, np.nan))
        filled = np.where(np.isfinite(filled), filled, np.nanmax(filled))
        rib = max(1, int(round(rib_mm / sz)) | 1)
        filled = np.minimum(filled, ndi.grey_opening(filled, size=(rib, 1), mode="nearest"))
        size_z = max(1, int(round(smoothing_mm / sz)) | 1)
        filled = ndi.median_filter(filled, size=(size_z, 1), mode="nearest")
        cover = _fill_rows_along_z(np.where(finite, 1.0, np.nan))
        surf = np.where(np.isfinite(cover), filled, np.nan)
    return surf


def reference_slice(region: np.ndarray) -> int:
    """The axial slice at the centre of the breast region along z: the area-weighted median slice.

    Args:
        region: ``(z, y, x)`` bool breast region before the cleanup (tissue anterior of the chest wall).

    Returns:
        The slice index (0 when the region is empty).
    """
    area = region.sum(axis=(1, 2)).astype(float)
    if area.sum() <= 0:
        return 0
    cdf = np.cumsum(area) / area.sum()
    return int(np.searchsorted(cdf, 0.5))


def limit_inferior_descent(y_cw: np.ndarray, z_ref: int, spacing_xyz: np.ndarray,
                           max_descent_mm_per_mm: float) -> np.ndarray:
    """Below the reference slice, the surface may move posteriorly only slowly from slice to slice.

    In the slices below the breasts' centre (towards the inframammary fold and the upper abdomen) the
    lungs and the heart no longer lie behind the chest wall; the liver (enhancing, moderately bright,
    below the diaphragm) becomes the anchor, and its curved surface lets the search and the
    polynomial fit drift posteriorly into the chest wall. The breast does not extend posterior of the
    chest wall of the slices above it, so walking inferiorly from ``z_ref`` each column may lie at
    most ``max_descent_mm_per_mm`` mm posterior per mm of z of the (already limited) slice above;
    anterior moves are free. Slices above ``z_ref`` are unchanged.

    Args:
        y_cw: ``(z, x)`` chest-wall surface (float y index, NaN where none); z grows superiorly (LPS).
        z_ref: reference slice (e.g. :func:`reference_slice`).
        spacing_xyz: voxel size (x, y, z) in mm.
        max_descent_mm_per_mm: allowed posterior shift (mm) per mm towards inferior (>= 0).

    Returns:
        The limited ``(z, x)`` surface (a new array).
    """
    out = np.array(y_cw, dtype=float, copy=True)
    nz = out.shape[0]
    if nz < 2:
        return out
    step = max_descent_mm_per_mm * float(spacing_xyz[2]) / float(spacing_xyz[1])  # y voxels per slice
    for z in range(min(max(int(z_ref), 0), nz - 1) - 1, -1, -1):
        above = out[z + 1]
        ok = np.isfinite(above) & np.isfinite(out[z])
        out[z, ok] = np.minimum(out[z, ok], above[ok] + step)
    return out
