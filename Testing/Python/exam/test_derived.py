"""Derived DCE maps against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.exam import DCEExam, percent_enhancement, signal_enhancement_ratio, subtraction
from breastlesionseg.geometry import Geometry, Volume

GEO = Geometry((3, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def _exam(*columns: list[float]) -> DCEExam:
    """Phases whose 3 voxels (x = 0, 1, 2) have the given values; the first list is pre-contrast."""
    return DCEExam([Volume(np.array(c, np.float32).reshape(1, 1, 3), GEO, name=f"p{i}")
                    for i, c in enumerate(columns)])


# voxel 0: washout (100 -> 250 -> 200), voxel 1: persistent (100 -> 150 -> 200), voxel 2: background (0.5 -> 3 -> 2)
EXAM = _exam([100.0, 100.0, 0.5], [250.0, 150.0, 3.0], [200.0, 200.0, 2.0])


def test_subtraction():
    np.testing.assert_allclose(subtraction(EXAM, 1).ravel(), [150.0, 50.0, 2.5])
    np.testing.assert_allclose(subtraction(EXAM, 2).ravel(), [100.0, 100.0, 1.5])
    np.testing.assert_allclose(subtraction(EXAM, -1).ravel(), subtraction(EXAM, 2).ravel())
    assert subtraction(EXAM).dtype == np.float32 and subtraction(EXAM).shape == (1, 1, 3)


def test_percent_enhancement_and_low_pre_voxels_are_zero():
    pe = percent_enhancement(EXAM, 1, min_pre=1.0).ravel()
    np.testing.assert_allclose(pe, [150.0, 50.0, 0.0])  # voxel 2: pre 0.5 < 1 -> 0, not 500 %
    np.testing.assert_allclose(percent_enhancement(EXAM, 2, min_pre=0.1).ravel(), [100.0, 100.0, 300.0])
    # default floor = 2 % of the pre 99th percentile (~100) = ~2 -> voxel 2 is background
    assert percent_enhancement(EXAM, 1).ravel()[2] == 0.0
    assert np.isfinite(percent_enhancement(_exam([0.0, 0.0, 10.0], [5.0, 0.0, 20.0]), min_pre=1e-3)).all()


def test_signal_enhancement_ratio():
    ser = signal_enhancement_ratio(EXAM, min_enhancement=10.0).ravel()
    np.testing.assert_allclose(ser, [1.5, 0.5, 0.0])  # 150/100, 50/100, not enhancing
    # late enhancement below the floor -> denominator floored -> large ratio, clipped
    geo1 = Geometry((1, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    ex = DCEExam([Volume(np.array(v, np.float32).reshape(1, 1, 1), geo1) for v in ([100.0], [300.0], [100.5])])
    assert signal_enhancement_ratio(ex, min_enhancement=10.0).item() == pytest.approx(10.0)  # 200/10 -> clip 10
    assert signal_enhancement_ratio(ex, min_enhancement=10.0, max_ser=4.0).item() == pytest.approx(4.0)


def test_bad_phase_numbers_are_named():
    with pytest.raises(InputError, match="k must be a post-contrast phase number 1..2.*got 3"):
        subtraction(EXAM, 3)
    with pytest.raises(InputError, match="got 0"):
        percent_enhancement(EXAM, 0)
    with pytest.raises(InputError, match="late"):
        signal_enhancement_ratio(EXAM, late=5)
    with pytest.raises(InputError, match="min_pre"):
        percent_enhancement(EXAM, 1, min_pre=-1.0)
