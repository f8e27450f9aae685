"""Percent enhancement, SER, curve type and FTV against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.metrics.kinetics import KineticsConfig, classify_curve, lesion_kinetics

# 4 voxels x 3 phases (pre, early, late); voxel 3 has pre = 0 (no defined PE)
SIGNALS = np.array(
    [
        [100.0, 50.0, 200.0, 0.0],
        [180.0, 100.0, 220.0, 10.0],
        [200.0, 90.0, 230.0, 20.0],
    ]
)


def test_hand_computed_values():
    k = lesion_kinetics(SIGNALS, KineticsConfig(), voxel_volume_mm3=0.5, phase_names=["pre", "e", "l"],
                        times_s=[0.0, 90.0, 450.0])
    # PE early: 80, 100, 10 (voxel 3 excluded)
    assert k["excluded_low_pre_voxel_count"] == 1
    assert k["mean_pe_early_percent"] == pytest.approx((80 + 100 + 10) / 3)
    assert k["peak_pe_early_percent"] == pytest.approx(100.0)
    # enhancing (PE >= 70): voxels 0 and 1; SER = 80/100 and 50/40
    assert k["enhancing_voxel_count"] == 2
    assert k["ser_mean"] == pytest.approx((0.8 + 1.25) / 2)
    # mean curve 87.5, 127.5, 135 -> SER 40/47.5, late change +5.88 % -> plateau
    assert k["ser_of_mean_curve"] == pytest.approx(40 / 47.5)
    assert k["late_change_percent"] == pytest.approx(100 * 7.5 / 127.5)
    assert k["kinetic_curve_type"] == "plateau"
    # voxel curve types among enhancing voxels: +11.1 % persistent, -10 % plateau (band is inclusive)
    assert k["curve_type_fractions"] == {"persistent": 0.5, "plateau": 0.5, "washout": 0.0}
    assert k["ftv_voxel_count"] == 2
    assert k["ftv_mm3"] == pytest.approx(1.0) and k["ftv_ml"] == pytest.approx(0.001)
    curve = k["time_intensity_curve"]
    assert [c["mean_signal"] for c in curve] == pytest.approx([87.5, 127.5, 135.0])
    assert curve[1]["mean_percent_enhancement_percent"] == pytest.approx((80 + 100 + 10) / 3)
    assert curve[2]["mean_percent_enhancement_percent"] == pytest.approx((100 + 80 + 15) / 3)
    assert [c["phase_name"] for c in curve] == ["pre", "e", "l"] and curve[2]["time_s"] == 450.0


def test_ftv_threshold_and_ser_cutoff():
    assert lesion_kinetics(SIGNALS, KineticsConfig(pe_threshold_percent=90), 1.0)["ftv_voxel_count"] == 1
    assert lesion_kinetics(SIGNALS, KineticsConfig(pe_threshold_percent=5), 1.0)["ftv_voxel_count"] == 3
    # Hylton variant: SER >= 1 keeps only voxel 1 (SER 1.25)
    assert lesion_kinetics(SIGNALS, KineticsConfig(ftv_ser_min=1.0), 1.0)["ftv_voxel_count"] == 1


@pytest.mark.parametrize(
    "late, expected",
    [(240.0, "persistent"), (210.0, "plateau"), (220.0, "plateau"), (180.0, "plateau"), (170.0, "washout")],
)
def test_curve_types(late, expected):
    # early 200 from pre 100: change to late relative to 200; +10 % (220) and -10 % (180) are plateau
    signals = np.array([[100.0] * 5, [200.0] * 5, [late] * 5])
    k = lesion_kinetics(signals, KineticsConfig(), 1.0)
    assert k["kinetic_curve_type"] == expected
    assert k["curve_type_fractions"][expected] == 1.0


def test_washout_ser_and_infinite_voxel_ser():
    # late below pre for one voxel: its SER is infinite (left out of the mean), FTV still counts it
    signals = np.array([[100.0, 100.0], [300.0, 200.0], [90.0, 150.0]])
    k = lesion_kinetics(signals, KineticsConfig(), 1.0)
    assert k["ser_mean"] == pytest.approx(2.0)
    assert k["ftv_voxel_count"] == 2
    assert k["kinetic_curve_type"] == "washout"
    assert classify_curve(None) is None


def test_phase_selection_and_errors():
    signals = np.array([[100.0], [150.0], [200.0], [160.0]])
    k = lesion_kinetics(signals, KineticsConfig(early_phase=2, late_phase=3), 1.0)
    assert (k["early_phase_index"], k["late_phase_index"]) == (2, 3)
    assert k["mean_pe_early_percent"] == pytest.approx(100.0)
    assert k["kinetic_curve_type"] == "washout"
    with pytest.raises(InputError, match="early_phase=0"):
        lesion_kinetics(signals, KineticsConfig(early_phase=0), 1.0)
    with pytest.raises(InputError, match="late_phase=1 comes before"):
        lesion_kinetics(signals, KineticsConfig(early_phase=2, late_phase=1), 1.0)
    with pytest.raises(InputError, match="late_phase=7"):
        lesion_kinetics(signals, KineticsConfig(late_phase=7), 1.0)
    # a two-phase exam has no delayed phase: no curve type, no SER
    k2 = lesion_kinetics(signals[:2], KineticsConfig(), 1.0)
    assert k2["kinetic_curve_type"] is None and k2["ser_of_mean_curve"] is None
    with pytest.raises(InputError, match="ftv_ser_min"):
        lesion_kinetics(signals[:2], KineticsConfig(ftv_ser_min=1.0), 1.0)
