"""benchmarks/probe_small_lesion_detection.py: its options, input smoothing and summary (no network runs here)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest


@pytest.fixture(scope="module")
def probe(load_repo_script):
    load_repo_script("benchmarks/bench_generalisation.py")
    return load_repo_script("benchmarks/probe_small_lesion_detection.py")


def test_parse_denoise(probe):
    assert probe.parse_denoise("none") == ("none", 0.0)
    assert probe.parse_denoise("gaussian:0.8") == ("gaussian", 0.8)
    assert probe.parse_denoise("diffusion:5") == ("diffusion", 5.0)
    for bad in ("median:3", "gaussian", "diffusion:x", "gaussian:-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="--denoise"):
            probe.parse_denoise(bad)


@pytest.mark.parametrize("kind, value", [("gaussian", 1.5), ("diffusion", 5)])
def test_smoothing_lowers_noise_and_keeps_the_mean(probe, kind, value):
    rng = np.random.default_rng(0)
    noisy = (100 + 10 * rng.standard_normal((9, 21, 23))).astype(np.float32)
    smooth = probe.denoise_array(noisy, (1.0, 1.0, 2.0), kind, value)
    assert smooth.shape == noisy.shape and smooth.dtype == np.float32
    assert smooth.std() < 0.7 * noisy.std()
    assert smooth.mean() == pytest.approx(noisy.mean(), rel=0.01)
    assert np.array_equal(probe.denoise_array(noisy, (1.0, 1.0, 2.0), "none", 0.0), noisy)


def test_summary_counts_lesions_small_lesions_and_false_components(probe):
    records = [{"family": "f", "seed": 0, "false_components": 2,
                "lesions": [{"volume_mm3": 900.0, "found": True}, {"volume_mm3": 80.0, "found": False}]},
               {"family": "f", "seed": 1, "false_components": 0,
                "lesions": [{"volume_mm3": 120.0, "found": True}]}]
    s = probe.summary(records)["f"]
    assert (s["lesions"], s["found"], s["small"], s["small_found"]) == (3, 2, 2, 1)
    assert s["false_components_per_exam"] == 1.0
