"""BI-RADS-like lesion descriptors on drawn lesions with known shape, orientation and echo pattern."""
from __future__ import annotations

import math

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.ultrasound.lesion_descriptors import DESCRIPTOR_NAMES, describe_lesion, largest_component

SHAPE = (121, 157)


def _ellipse(center, radii) -> np.ndarray:
    rows, cols = np.mgrid[:SHAPE[0], :SHAPE[1]]
    return ((rows - center[0]) / radii[0]) ** 2 + ((cols - center[1]) / radii[1]) ** 2 <= 1.0


def _star(center, radius, points=7, depth=0.45) -> np.ndarray:
    rows, cols = np.mgrid[:SHAPE[0], :SHAPE[1]]
    angle = np.arctan2(rows - center[0], cols - center[1])
    return np.hypot(rows - center[0], cols - center[1]) <= radius * (1 - depth * (0.5 + 0.5 * np.cos(points * angle)))


@pytest.fixture
def bright_background():
    return np.full(SHAPE, 0.6, dtype=np.float32)


def test_a_disc_is_round_solid_and_as_deep_as_wide(bright_background):
    disc = _ellipse((60, 78), (20, 20))
    d = describe_lesion(bright_background, disc)
    assert list(d) == list(DESCRIPTOR_NAMES)
    assert d["roundness"] == pytest.approx(1.0, abs=0.1)
    assert d["solidity"] == pytest.approx(1.0, abs=0.05)
    assert d["log_depth_width_ratio"] == pytest.approx(0.0, abs=0.01)
    assert d["elongation"] == pytest.approx(1.0, abs=0.02)
    assert d["radial_roughness"] < 0.05
    assert d["log_area_fraction"] == pytest.approx(math.log(disc.sum() / disc.size))


def test_taller_than_wide_and_irregular_outlines(bright_background):
    tall = describe_lesion(bright_background, _ellipse((60, 78), (30, 12)))
    wide = describe_lesion(bright_background, _ellipse((60, 78), (12, 30)))
    assert tall["log_depth_width_ratio"] == pytest.approx(math.log(61 / 25), abs=0.05)
    assert wide["log_depth_width_ratio"] == pytest.approx(-math.log(61 / 25), abs=0.05)
    assert tall["elongation"] == pytest.approx(2.5, rel=0.05)
    star = describe_lesion(bright_background, _star((60, 78), 30))
    assert star["solidity"] < 0.85 and star["roundness"] < 0.8 and star["radial_roughness"] > 0.1


def test_hypoechoic_lesion_with_posterior_shadow():
    image = np.full(SHAPE, 0.6, dtype=np.float32)
    lesion = _ellipse((40, 78), (15, 15))
    image[lesion] = 0.1
    plain = describe_lesion(image, lesion)
    assert plain["echo_contrast"] == pytest.approx(0.1 - 0.6, abs=1e-6)
    assert plain["posterior_contrast"] == pytest.approx(0.0, abs=1e-6)
    image[56:80, 63:94] = 0.2  # shadow below the lesion (rows 56.., the lesion's columns 63-93)
    d = describe_lesion(image, lesion)
    assert d["posterior_contrast"] == pytest.approx(0.2 - 0.6, abs=1e-6)
    assert d["internal_heterogeneity"] == pytest.approx(0.0, abs=1e-6)
    assert d["margin_sharpness"] > 0.05
    enhanced = np.full(SHAPE, 0.4, dtype=np.float32)
    enhanced[56:80, 63:94] = 0.8
    assert describe_lesion(enhanced, lesion)["posterior_contrast"] > 0.3


def test_the_largest_component_is_described(bright_background):
    mask = _ellipse((40, 50), (15, 15)) | _ellipse((100, 140), (4, 4))
    assert largest_component(mask).sum() == _ellipse((40, 50), (15, 15)).sum()
    assert describe_lesion(bright_background, mask) == describe_lesion(bright_background, _ellipse((40, 50), (15, 15)))


def test_single_row_lesion_and_bad_input(bright_background):
    line = np.zeros(SHAPE, dtype=bool)
    line[30, 10:40] = True
    d = describe_lesion(bright_background, line)
    assert d["solidity"] == pytest.approx(1.0) and d["log_depth_width_ratio"] == pytest.approx(math.log(1 / 30))
    with pytest.raises(InputError, match="empty"):
        describe_lesion(bright_background, np.zeros(SHAPE, dtype=bool))
    with pytest.raises(InputError, match="same"):
        describe_lesion(bright_background, np.ones((5, 5), dtype=bool))
