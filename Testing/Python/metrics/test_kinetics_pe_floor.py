"""Percent enhancement with a noise floor: a voxel whose pre-contrast signal is ~0 gets a PE on the breast
tissue's scale, not thousands of percent (issue 14 row 14)."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.metrics import lesion_metrics
from breastlesionseg.metrics.kinetics import KineticsConfig, lesion_kinetics, pre_reference_signal


def test_near_zero_pre_voxel_is_measured_against_the_floor():
    # voxel 0: ordinary tissue (pre 100 -> 250); voxel 1: pre ~0 (a vessel in fat-suppressed tissue) -> 300
    signals = np.array([[100.0, 0.4], [250.0, 300.0], [240.0, 310.0]])
    kin = lesion_kinetics(signals, KineticsConfig(), 1.0, pre_reference=80.0)
    assert kin["peak_pe_early_percent"] == pytest.approx(100 * (300.0 - 0.4) / 80.0)  # 374 %, not 74900 %
    assert kin["mean_pe_early_percent"] == pytest.approx((150.0 + 100 * 299.6 / 80.0) / 2)
    assert kin["excluded_low_pre_voxel_count"] == 0 and kin["pe_denominator_floor_signal"] == 80.0
    classic = lesion_kinetics(signals, KineticsConfig(pe_floor_fraction=0.0), 1.0, pre_reference=80.0)
    assert classic["peak_pe_early_percent"] == pytest.approx(100 * 299.6 / 0.4)
    half = lesion_kinetics(signals, KineticsConfig(pe_floor_fraction=0.5), 1.0, pre_reference=80.0)
    assert half["peak_pe_early_percent"] == pytest.approx(100 * 299.6 / 40.0)


def test_floor_never_lowers_a_normal_voxel_pe():
    signals = np.array([[200.0], [500.0]])
    assert lesion_kinetics(signals, KineticsConfig(), 1.0, pre_reference=80.0)["peak_pe_early_percent"] == \
        pytest.approx(150.0)


def test_bad_floor_fraction_is_named():
    from breastlesionseg.errors import InputError

    with pytest.raises(InputError, match="pe_floor_fraction"):
        KineticsConfig(pe_floor_fraction=-1.0)


def test_lesion_metrics_uses_the_breast_median_pre_signal():
    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    rng = np.random.default_rng(2)
    pre = rng.uniform(50.0, 150.0, geo.shape_zyx).astype(np.float32)
    breast = np.zeros(geo.shape_zyx, np.uint8)
    breast[:, :, :5] = 1
    pre[2, 3, 2] = 0.5  # the lesion's one voxel: pre ~0, inside the breast
    post = pre.copy()
    post[2, 3, 2] = 400.0
    labels = np.zeros(geo.shape_zyx, np.uint8)
    labels[2, 3, 2] = 1
    exam = DCEExam([Volume(pre, geo, name="pre"), Volume(post, geo, name="post1")])
    m = lesion_metrics(exam, labels, breast)
    reference = float(np.median(pre[breast > 0]))
    assert m["parameters"]["pre_reference_signal"] == pytest.approx(reference)
    assert pre_reference_signal(pre, breast > 0) == pytest.approx(reference)
    assert m["lesions"][0]["peak_pe_early_percent"] == pytest.approx(100 * (400.0 - 0.5) / reference, rel=1e-5)
    assert "max(S0, F)" in m["definitions"]["percent_enhancement"]
