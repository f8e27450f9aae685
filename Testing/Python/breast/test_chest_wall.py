"""Chest wall (breast/chest_wall.py): the heart is told from a strongly enhancing pectoralis by shape (bulk vs
layer), the lateral extrapolation of the surface never swings forward, and a slice with detections along a short
stretch of the chest only takes its neighbour's curve."""
from __future__ import annotations

import numpy as np

from breastlesionseg.breast.chest_wall import (_anchors, _enhancing_organs, _far_in_front_of_slice, _open_ball,
                                               _regularise, _robust_rows, _shortly_in_front_of)

SPACING_XYZ = np.array([2.0, 2.0, 2.5])


def _scene(shape=(31, 57, 49)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strong, heart, layer): a 25 mm-radius ball (heart) and, 10 mm in front of it, an 8 mm thick
    layer (a pectoralis enhancing as much as the heart), both 'strongly enhancing'."""
    zz, yy, xx = np.indices(shape)
    z_mm, y_mm, x_mm = zz * SPACING_XYZ[2], yy * SPACING_XYZ[1], xx * SPACING_XYZ[0]
    heart = (z_mm - 37.5) ** 2 + (y_mm - 70.0) ** 2 + (x_mm - 48.0) ** 2 <= 25.0 ** 2
    layer = (y_mm >= 26.0) & (y_mm < 34.0)
    return heart | layer, heart, layer


def test_ball_opening_keeps_the_bulk_and_drops_a_layer():
    strong, heart, layer = _scene()
    bulk = _open_ball(strong, SPACING_XYZ, 12.0)
    assert not (bulk & layer).any()
    # the opening of a 25 mm ball with a 12 mm ball is the ball itself, up to voxel discretisation
    assert np.count_nonzero(bulk & heart) / np.count_nonzero(heart) > 0.9
    assert not (bulk & ~heart).any()


def test_enhancing_organs_separate_heart_bulk_from_a_large_layer():
    strong, heart, layer = _scene()
    organs, bulk = _enhancing_organs(strong, SPACING_XYZ, min_ml=20.0, core_mm=12.0)
    # the layer is large (> 20 mL) so it is an organ, but it has no bulk
    assert np.count_nonzero(organs & layer) / np.count_nonzero(layer) > 0.9
    assert not (bulk & layer).any() and (bulk & heart).any()


def test_shortly_in_front_of_marks_only_the_voxels_within_depth_in_front():
    mask = np.zeros((1, 10, 2), bool)
    mask[0, 6, 0] = True
    front = _shortly_in_front_of(mask, 3)
    np.testing.assert_array_equal(np.nonzero(front[0, :, 0])[0], [3, 4, 5])
    assert not front[0, :, 1].any()


def test_far_in_front_of_slice_marks_only_slices_with_the_mask():
    mask = np.zeros((2, 10, 3), bool)
    mask[0, 6, 0] = True
    mask[0, 8, 2] = True
    far = _far_in_front_of_slice(mask, 3)
    # slice 0: the most anterior voxel is at y = 6, so y < 3 in every column; slice 1 has no mask voxel
    np.testing.assert_array_equal(np.nonzero(far[0, :, 1])[0], [0, 1, 2])
    assert far[0, :3].all() and not far[0, 3:].any()
    assert not far[1].any()


def test_background_enhancement_far_in_front_of_the_heart_is_no_anchor():
    """Marked background enhancement of the gland, beside (not in front of) the heart but far anterior of it,
    must not anchor the chest-wall search; the heart and an enhancing organ in slices below it (liver) do."""
    shape = (31, 57, 49)
    zz, yy, xx = np.indices(shape)
    z_mm, y_mm, x_mm = zz * SPACING_XYZ[2], yy * SPACING_XYZ[1], xx * SPACING_XYZ[0]
    heart = (z_mm - 50.0) ** 2 + (y_mm - 85.0) ** 2 + (x_mm - 48.0) ** 2 <= 20.0 ** 2
    liver = (z_mm - 12.5) ** 2 + (y_mm - 85.0) ** 2 + (x_mm - 48.0) ** 2 <= 12.0 ** 2
    # an enhancing layer (8 mm thick: no bulk for the 6 mm ball), in columns with no heart behind it
    gland = (z_mm >= 35.0) & (z_mm <= 65.0) & (y_mm >= 6.0) & (y_mm < 14.0) & (x_mm <= 24.0)
    assert not (gland & (heart | liver)).any()
    enhancement = np.where(heart | liver | gland, 1.5, 0.1)
    body = np.ones(shape, bool)
    anchor, _ = _anchors(body, np.zeros(shape, bool), body, enhancement, SPACING_XYZ, min_lung_ml=20.0,
                         heart_enhancement=0.8, min_heart_ml=5.0, heart_core_mm=6.0, max_depth_mm=40.0)
    assert anchor[heart].mean() > 0.95 and anchor[liver].mean() > 0.95
    # only its distance in front of the heart in its slices excludes it
    assert not anchor[gland].any()


def test_extrapolated_surface_never_comes_forward_of_the_outermost_detection():
    """Detections only in the middle of the chest on a curve bending anteriorly (smaller y) towards its ends:
    inside the detections the fit follows them; lateral of them the surface stays at the end values."""
    nx = 161
    x = np.arange(nx, dtype=float)
    raw = np.full((3, nx), np.nan)
    middle = slice(60, 101)
    raw[:, middle] = 80.0 - 0.01 * (x[middle] - 80.0) ** 2
    out, _ = _robust_rows(raw, degree=2, extrapolate=30)
    np.testing.assert_allclose(out[:, middle], raw[:, middle], atol=1e-6)
    np.testing.assert_allclose(out[:, 30:60], 76.0)  # the polynomial would reach 80 - 0.01 * 50**2 = 55
    np.testing.assert_allclose(out[:, 101:131], 76.0)
    assert np.isnan(out[:, :30]).all() and np.isnan(out[:, 131:]).all()


def test_slice_detected_along_a_short_stretch_takes_the_neighbouring_curve():
    """Slices 0-9 see the chest wall flat at y = 50 over 80 columns; the edge slice 10 (field-of-view edge of an
    oblique exam) sees it only over 15 columns, on a curve bending posteriorly: extrapolated, its own fit would
    run deep into the thorax (y up to ~110). With ``min_span_fraction`` it takes slice 9's curve instead."""
    nx = 101
    x = np.arange(nx, dtype=float)
    raw = np.full((11, nx), np.nan)
    raw[:10, 10:91] = 50.0
    short = slice(40, 55)
    raw[10, short] = 50.0 + 0.05 * (x[short] - 40.0) ** 2
    args = dict(sx=2.0, sz=2.0, poly_degree=2, extrapolate_mm=60.0, fit_half_window_mm=0.0, rib_mm=2.0,
                smoothing_mm=2.0)
    own = _regularise(raw, **args, min_span_fraction=0.0)
    assert np.nanmax(own[10]) > 100.0
    out = _regularise(raw, **args, min_span_fraction=0.5)
    np.testing.assert_allclose(out[10], out[9], equal_nan=True)
    np.testing.assert_allclose(out[:10, 10:91], 50.0, atol=1e-6)
