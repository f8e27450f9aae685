"""Volume, diameters, centroid and side against analytic values on anisotropic and oblique grids."""
from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.geometry import Geometry
from breastlesionseg.metrics.lesion_shape import (
    axial_slice_axis,
    lesion_shape_metrics,
    max_pairwise_distance_mm,
    midline_x_lps,
)


def _box(geometry: Geometry, lo_zyx, hi_zyx, value: int = 1, labels=None) -> np.ndarray:
    labels = np.zeros(geometry.shape_zyx, np.int32) if labels is None else labels
    labels[lo_zyx[0]:hi_zyx[0], lo_zyx[1]:hi_zyx[1], lo_zyx[2]:hi_zyx[2]] = value
    return labels


@pytest.mark.parametrize("grid", ["axial_grid", "oblique_grid"])
def test_box_volume_diameters_centroid(grid, request):
    g: Geometry = request.getfixturevalue(grid)
    labels = _box(g, (2, 3, 4), (9, 12, 15))  # n_z=7, n_y=9, n_x=11
    m = lesion_shape_metrics(labels, g)[1]
    sx, sy, sz = g.spacing
    assert m["voxel_count"] == 7 * 9 * 11
    assert m["volume_mm3"] == pytest.approx((11 * sx) * (9 * sy) * (7 * sz), rel=1e-9)
    assert m["volume_ml"] == pytest.approx(m["volume_mm3"] / 1000.0)
    # farthest surface voxel centres = opposite corners: space diagonal between corner centres
    diag_centres = math.sqrt((10 * sx) ** 2 + (8 * sy) ** 2 + (6 * sz) ** 2)
    assert m["longest_3d_diameter_mm"] == pytest.approx(diag_centres, rel=1e-9)
    diag_box = math.sqrt((11 * sx) ** 2 + (9 * sy) ** 2 + (7 * sz) ** 2)
    assert abs(m["longest_3d_diameter_mm"] - diag_box) <= math.sqrt(sx**2 + sy**2 + sz**2)
    # axial-most slices are k slices for these grids: in-plane diagonal
    assert axial_slice_axis(g) == 2
    assert m["longest_axial_diameter_mm"] == pytest.approx(math.sqrt((10 * sx) ** 2 + (8 * sy) ** 2), rel=1e-9)
    # centroid = physical position of the box's centre index; RAS flips x and y
    centre_lps = g.index_to_lps(np.array([4 + 5.0, 3 + 4.0, 2 + 3.0]))
    np.testing.assert_allclose(m["centroid_lps_mm"], centre_lps, atol=1e-6)
    np.testing.assert_allclose(m["centroid_ras_mm"], centre_lps * [-1, -1, 1], atol=1e-6)


def test_longest_diameter_matches_itk_feret(oblique_grid, sphere):
    labels = sphere(oblique_grid, (9.3, 8.6, 7.2), 4.5).astype(np.int32)
    image = oblique_grid.apply_to(sitk.GetImageFromArray(labels.astype(np.uint8)))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(image)
    m = lesion_shape_metrics(labels, oblique_grid)[1]
    assert m["longest_3d_diameter_mm"] == pytest.approx(stats.GetFeretDiameter(1), rel=1e-9)


def test_sphere_volume_and_diameter_vs_analytic(oblique_grid, sphere):
    r = 4.5
    labels = sphere(oblique_grid, (10.2, 9.1, 7.3), r).astype(np.int32)
    m = lesion_shape_metrics(labels, oblique_grid)[1]
    assert m["volume_mm3"] == pytest.approx(4.0 / 3.0 * math.pi * r**3, rel=0.06)
    voxel_diag = math.sqrt(sum(s * s for s in oblique_grid.spacing))
    assert 2 * r - voxel_diag <= m["longest_3d_diameter_mm"] <= 2 * r
    assert 2 * r - voxel_diag <= m["longest_axial_diameter_mm"] <= 2 * r
    np.testing.assert_allclose(
        m["centroid_lps_mm"], oblique_grid.index_to_lps(np.array([10.2, 9.1, 7.3])), atol=0.35
    )


def test_axial_diameter_uses_slices_closest_to_axial():
    # i axis points superior: the axial-most planes are i = const; k is the patient's L-R axis
    direction = (0, 1, 0, 0, 0, 1, 1, 0, 0)  # columns: i -> S, j -> L, k -> P
    g = Geometry((15, 13, 11), (2.0, 0.5, 0.7), (0.0, 0.0, 0.0), direction)
    assert axial_slice_axis(g) == 0
    labels = _box(g, (1, 2, 3), (8, 11, 6))  # n_k=7, n_j=9, n_i=3
    m = lesion_shape_metrics(labels, g)[1]
    assert m["longest_axial_diameter_mm"] == pytest.approx(math.hypot(8 * 0.5, 6 * 0.7), rel=1e-9)
    assert m["longest_3d_diameter_mm"] == pytest.approx(math.sqrt((2 * 2.0) ** 2 + (8 * 0.5) ** 2 + (6 * 0.7) ** 2))


def test_single_voxel_and_flat_lesions():
    g = Geometry((9, 9, 5), (0.5, 0.5, 2.0), (0, 0, 0))
    labels = np.zeros(g.shape_zyx, np.int32)
    labels[2, 4, 4] = 1  # one voxel
    labels[3, 1:8, 1:8] = 2  # one slice, 49 voxels (a coplanar point set)
    labels[0, 0, 0:9] = 3  # a line of 9 voxels (collinear)
    m = lesion_shape_metrics(labels, g)
    assert m[1]["longest_3d_diameter_mm"] == 0.0 and m[1]["volume_mm3"] == pytest.approx(0.5)
    assert m[2]["longest_3d_diameter_mm"] == pytest.approx(math.hypot(3.0, 3.0))
    assert m[2]["longest_axial_diameter_mm"] == pytest.approx(math.hypot(3.0, 3.0))
    assert m[3]["longest_3d_diameter_mm"] == pytest.approx(4.0)


def test_max_pairwise_distance_large_degenerate_sets():
    rng = np.random.default_rng(1)
    plane = np.c_[rng.uniform(-5, 5, (400, 2)), np.zeros(400)]
    full = np.max(np.linalg.norm(plane[:, None] - plane[None], axis=-1))  # brute force, all pairs
    assert max_pairwise_distance_mm(plane) == pytest.approx(full, rel=1e-12)
    line = np.outer(np.linspace(0, 1, 200), [1.0, 2.0, 2.0])  # collinear, length 3
    assert max_pairwise_distance_mm(line) == pytest.approx(3.0)


def test_side_from_midline_and_breast_mask(axial_grid):
    g = axial_grid
    labels = np.zeros(g.shape_zyx, np.int32)
    labels[5:7, 5:7, 18:20] = 1  # high i -> large LPS x -> patient's left
    labels[5:7, 5:7, 2:4] = 2  # low i -> patient's right
    m = lesion_shape_metrics(labels, g)
    assert (m[1]["side"], m[2]["side"]) == ("left", "right")
    assert m[1]["side_source"] == "midline_grid_centre"
    assert m[1]["centroid_lps_mm"][0] > 0 > m[1]["centroid_ras_mm"][0]
    # a breast mask overrides the midline rule (labels 1 = left, 2 = right)
    breast = np.zeros(g.shape_zyx, np.uint8)
    breast[labels == 1] = 2
    breast[labels == 2] = 1
    m = lesion_shape_metrics(labels, g, breast)
    assert (m[1]["side"], m[2]["side"]) == ("right", "left")
    assert m[1]["side_source"] == "breast_mask"


def test_midline_from_breast_mask(axial_grid):
    g = axial_grid
    breast = np.zeros(g.shape_zyx, np.uint8)
    breast[:, :, 0:4] = 2  # right breast at low x
    breast[:, :, 6:10] = 1  # left breast
    x, source = midline_x_lps(g, breast)
    assert source == "breast_mask"
    assert x == pytest.approx(10.0 + 0.7 * 0.5 * (1.5 + 7.5))
    labels = np.zeros(g.shape_zyx, np.int32)
    labels[3, 3, 12] = 1  # outside the mask, x index 12 > midline index 4.5 -> patient's left
    labels[3, 3, 4] = 2  # outside the mask, x index 4 < 4.5 -> patient's right
    m = lesion_shape_metrics(labels, g, breast)
    assert (m[1]["side"], m[1]["side_source"]) == ("left", "midline_breast_mask")
    assert (m[2]["side"], m[2]["side_source"]) == ("right", "midline_breast_mask")
