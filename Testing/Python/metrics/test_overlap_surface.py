"""Dice / IoU / precision / recall and HD95 / ASD against MONAI and an independent KD-tree computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import (
    DiceMetric,
    MeanIoU,
    compute_average_surface_distance,
    compute_confusion_matrix_metric,
    compute_hausdorff_distance,
    get_confusion_matrix,
)
from scipy import ndimage
from scipy.spatial import cKDTree

from breastlesionseg.geometry import Geometry
from breastlesionseg.metrics import overlap_metrics, surface_distances


def _blob(shape, seed: int, sigma: float = 2.0, q: float = 0.8) -> np.ndarray:
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)
    return noise > np.quantile(noise, q)


def _t(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask[None, None].astype(np.float32))


def _surface_lps(mask: np.ndarray, g: Geometry) -> np.ndarray:
    surface = mask & ~ndimage.binary_erosion(mask)
    return g.index_to_lps(np.argwhere(surface)[:, ::-1].astype(float))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlap_matches_monai(seed):
    shape = (13, 17, 19)
    p, r = _blob(shape, seed), _blob(shape, seed + 100)
    m = overlap_metrics(p, r)
    dice = DiceMetric(include_background=True, reduction="none")(_t(p), _t(r)).item()
    iou = MeanIoU(include_background=True, reduction="none")(_t(p), _t(r)).item()
    cm = get_confusion_matrix(_t(p), _t(r), include_background=True)
    precision = compute_confusion_matrix_metric("precision", cm).item()
    recall = compute_confusion_matrix_metric("sensitivity", cm).item()
    assert m["dice"] == pytest.approx(dice, rel=1e-6)
    assert m["iou"] == pytest.approx(iou, rel=1e-6)
    assert m["precision"] == pytest.approx(precision, rel=1e-6)
    assert m["recall"] == pytest.approx(recall, rel=1e-6)
    tp = np.count_nonzero(p & r)
    assert m["dice"] == pytest.approx(2 * tp / (p.sum() + r.sum()))


def test_overlap_known_masks_and_empty_rules():
    r = np.zeros((5, 5, 5), bool)
    r[1:3, 1:3, 1:3] = True  # 8 voxels
    p = np.zeros_like(r)
    p[1:3, 1:3, 1:4] = True  # 12 voxels, 8 shared
    m = overlap_metrics(p, r)
    assert (m["dice"], m["iou"], m["precision"], m["recall"]) == pytest.approx((16 / 20, 8 / 12, 8 / 12, 1.0))
    empty = np.zeros_like(r)
    both = overlap_metrics(empty, empty)
    assert (both["dice"], both["iou"], both["precision"], both["recall"]) == (1.0, 1.0, None, None)
    miss = overlap_metrics(empty, r)
    assert (miss["dice"], miss["iou"], miss["precision"], miss["recall"]) == (0.0, 0.0, None, 0.0)


@pytest.mark.parametrize("seed", [3, 4])
def test_surface_distances_match_monai_and_kdtree_on_oblique_grid(seed, oblique_grid):
    g = oblique_grid
    p, r = _blob(g.shape_zyx, seed), _blob(g.shape_zyx, seed + 7)
    s = surface_distances(p, r, g)
    spacing_zyx = list(g.spacing[::-1])
    hd95 = compute_hausdorff_distance(_t(p), _t(r), include_background=True, percentile=95, spacing=spacing_zyx)
    asd = compute_average_surface_distance(_t(p), _t(r), include_background=True, symmetric=True, spacing=spacing_zyx)
    assert s["hd95_mm"] == pytest.approx(hd95.item(), rel=1e-5)
    assert s["asd_mm"] == pytest.approx(asd.item(), rel=1e-5)
    # independent: surface voxel centres in physical LPS space (rotation applied), nearest-neighbour distances
    sp, sr = _surface_lps(p, g), _surface_lps(r, g)
    d_pr = cKDTree(sr).query(sp)[0]
    d_rp = cKDTree(sp).query(sr)[0]
    assert s["hd95_mm"] == pytest.approx(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)), rel=1e-5)
    assert s["asd_mm"] == pytest.approx(np.concatenate([d_pr, d_rp]).mean(), rel=1e-5)


def test_surface_distance_of_shifted_box_and_empty_rules():
    g = Geometry((15, 13, 11), (0.5, 0.8, 2.0), (0, 0, 0))
    r = np.zeros(g.shape_zyx, bool)
    r[3:7, 3:9, 3:9] = True
    p = np.roll(r, 2, axis=0)  # shifted 2 slices = 4 mm along z
    s = surface_distances(p, r, g)
    assert 0 < s["asd_mm"] < s["hd95_mm"] <= 4.0 + 1e-6
    assert surface_distances(r, r, g) == {"hd95_mm": 0.0, "asd_mm": 0.0, "surface_distance_note": None}
    empty = np.zeros_like(r)
    assert surface_distances(empty, empty, g)["hd95_mm"] == 0.0
    one = surface_distances(empty, r, g)
    assert one["hd95_mm"] is None and one["asd_mm"] is None and "prediction empty" in one["surface_distance_note"]
