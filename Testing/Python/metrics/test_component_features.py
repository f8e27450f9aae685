"""Per-component features (size, probability, shape, breast edge, kinetics) against shapes with known values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Geometry
from breastlesionseg.metrics.component_features import (COMPONENT_FEATURE_NAMES, EDGE_DISTANCE_CAP_MM,
                                                        PLATEAU_BAND_PERCENT, SLOW_INITIAL_PERCENT,
                                                        component_geometry_features, component_kinetic_features,
                                                        kinetic_descriptor_features)

GEO = Geometry((41, 37, 23), (0.8, 0.9, 1.5), (-10.0, 5.0, 2.0))


def _mm_coords():
    k, j, i = np.meshgrid(*[np.arange(n) for n in GEO.shape_zyx], indexing="ij")
    return i * 0.8, j * 0.9, k * 1.5


def _ball_and_tube():
    x, y, z = _mm_coords()
    labels = np.zeros(GEO.shape_zyx, np.uint16)
    labels[(x - 10) ** 2 + (y - 12) ** 2 + (z - 16) ** 2 <= 5.0 ** 2] = 1  # ball, r 5 mm
    labels[(np.abs(y - 26) <= 0.9) & (np.abs(z - 16) <= 1.0) & (x > 3) & (x < 28)] = 2  # thin tube along x
    return labels


def test_shape_and_probability_features():
    labels = _ball_and_tube()
    prob = np.where(labels == 1, 0.9, np.where(labels == 2, 0.5, 0.0)).astype(np.float32)
    prob[labels == 1] = np.linspace(0.6, 1.0, int(np.count_nonzero(labels == 1)))
    feats = component_geometry_features(labels, prob, None, GEO)
    assert set(feats) == {1, 2}
    ball, tube = feats[1], feats[2]
    assert ball["log10_volume_mm3"] == pytest.approx(math.log10(np.count_nonzero(labels == 1) * GEO.voxel_volume_mm3))
    assert ball["probability_max"] == pytest.approx(1.0)
    assert ball["probability_mean"] == pytest.approx(0.8, abs=1e-3)
    assert ball["elongation"] < 1.3 and ball["linearity"] < 0.2
    assert tube["elongation"] > 5.0 and tube["linearity"] > 0.9
    assert ball["breast_edge_fraction"] == 0.0


def test_breast_edge_fraction_counts_voxels_near_the_outside():
    labels = _ball_and_tube()
    x, _, _ = _mm_coords()
    breast = (x >= 10.0).astype(np.uint8)  # the breast ends at x = 10 mm: half the ball lies outside ...
    feats = component_geometry_features(labels, labels.astype(np.float32), breast, GEO)
    ball = labels == 1
    # ... so ball voxels with x < 10 + 4 mm are within 4 mm of the outside
    expected = np.count_nonzero(ball & (x < 10.0 + 4.0 + 1e-6)) / np.count_nonzero(ball)
    assert feats[1]["breast_edge_fraction"] == pytest.approx(expected, abs=0.02)


def test_kinetic_features_are_the_known_percentages():
    labels = _ball_and_tube()
    pre = np.full(GEO.shape_zyx, 200.0, np.float32)
    post1 = pre * np.where(labels == 1, 2.5, 1.2)  # ball +150 %, tube +20 %
    post2 = post1 * np.where(labels == 1, 0.8, 1.1)  # ball washout -20 %, tube +10 %
    feats = component_kinetic_features(labels, [pre, post1, post2])
    assert feats[1]["early_enhancement_percent"] == pytest.approx(150.0, rel=1e-4)
    assert feats[1]["late_change_percent"] == pytest.approx(-20.0, rel=1e-4)
    assert feats[2]["early_enhancement_percent"] == pytest.approx(20.0, rel=1e-4)
    assert feats[2]["late_change_percent"] == pytest.approx(10.0, rel=1e-4)
    # BI-RADS curve-type distances: the ball is fast with washout 10 % beyond the plateau band, the tube slow
    # (30 % below 50 %) and on the edge of persistent
    assert feats[1]["initial_slow_percent"] == 0.0 and feats[1]["delayed_persistent_percent"] == 0.0
    assert feats[1]["delayed_washout_percent"] == pytest.approx(10.0, rel=1e-3)
    assert feats[2]["initial_slow_percent"] == pytest.approx(30.0, rel=1e-3)
    assert feats[2]["delayed_persistent_percent"] == pytest.approx(0.0, abs=1e-3)
    assert feats[2]["delayed_washout_percent"] == 0.0


def test_kinetic_descriptors_are_zero_inside_the_bi_rads_bands():
    assert kinetic_descriptor_features(SLOW_INITIAL_PERCENT, PLATEAU_BAND_PERCENT) == {
        "initial_slow_percent": 0.0, "delayed_persistent_percent": 0.0, "delayed_washout_percent": 0.0}
    assert kinetic_descriptor_features(20.0, 35.0) == {
        "initial_slow_percent": 30.0, "delayed_persistent_percent": 25.0, "delayed_washout_percent": 0.0}
    assert kinetic_descriptor_features(180.0, -40.0)["delayed_washout_percent"] == 30.0


def test_feature_names_and_bad_shapes():
    assert len(set(COMPONENT_FEATURE_NAMES)) == len(COMPONENT_FEATURE_NAMES) == 12
    labels = _ball_and_tube()
    with pytest.raises(InputError, match="same"):
        component_geometry_features(labels, np.zeros((3, 3, 3), np.float32), None, GEO)
    with pytest.raises(InputError, match="pre and at least one post"):
        component_kinetic_features(labels, [labels])


def test_kinetics_of_a_crop_read_the_full_phases_at_the_offset():
    labels = _ball_and_tube()
    pre = np.full(GEO.shape_zyx, 200.0, np.float32)
    post1 = pre * np.where(labels == 1, 2.5, 1.2)
    full = component_kinetic_features(labels, [pre, post1])
    crop = labels[3:, 2:, :]  # a crop starting at (3, 2, 0) of the full grid
    padded = np.zeros((crop.shape[0] + 4, *crop.shape[1:]), crop.dtype)
    padded[4:] = crop  # a padded crop starting at (-1, 2, 0): its first 4 slices lie outside the phases
    for arr, offset in ((crop, (3, 2, 0)), (padded, (-1, 2, 0))):
        part = component_kinetic_features(arr, [pre, post1], offset)
        for k in (1, 2):
            assert part[k]["early_enhancement_percent"] == pytest.approx(full[k]["early_enhancement_percent"])


def test_edge_distance_is_the_median_distance_to_the_outside_up_to_the_cap():
    labels = _ball_and_tube()
    x, _, _ = _mm_coords()
    ball = labels == 1
    near = (x >= 2.0).astype(np.uint8)  # outside: the columns x <= 1.6 mm (grid x = 0, 0.8, 1.6)
    feats = component_geometry_features(labels, labels.astype(np.float32), near, GEO)
    assert feats[1]["edge_distance_mm"] == pytest.approx(float(np.median(x[ball])) - 1.6, abs=1e-6)
    far = (x < 31.0).astype(np.uint8)  # outside from x = 31.2 mm: about 21 mm from the ball's centre
    assert component_geometry_features(labels, labels.astype(np.float32), far, GEO)[1]["edge_distance_mm"] == \
        EDGE_DISTANCE_CAP_MM
    assert component_geometry_features(labels, labels.astype(np.float32), None, GEO)[1]["edge_distance_mm"] == \
        EDGE_DISTANCE_CAP_MM
