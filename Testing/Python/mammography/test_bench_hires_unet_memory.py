"""benchmarks/bench_hires_unet_memory.py: the analytic estimate and the capped measurement contract."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GIB = float(1 << 30)


@pytest.fixture(scope="module")
def bench():
    path = REPO / "benchmarks" / "bench_hires_unet_memory.py"
    spec = importlib.util.spec_from_file_location("bench_hires_unet_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimate_counts_adam_state_and_scales_with_pixels(bench):
    small = bench.estimate_training_bytes("separable-residual", 256)
    big = bench.estimate_training_bytes("separable-residual", 512)
    assert small["state_bytes"] == 16 * small["params"] == 16 * 5_350_026
    assert 3.5 < big["saved_activation_bytes"] / small["saved_activation_bytes"] < 4.2  # ~ pixels
    assert big["total_bytes"] == big["state_bytes"] + big["saved_activation_bytes"]


def test_deep_standard_unet_state_alone_exceeds_8_gib(bench):
    """The docs' claim: 598 M parameters x 16 bytes > 8 GiB before any activation."""
    assert bench.estimate_training_bytes("deep7", 128)["state_bytes"] > 8 * GIB


def _args(cap_gib: float) -> argparse.Namespace:
    return argparse.Namespace(cap_gib=cap_gib, budget_gib=8.0, steps=0, threads=1, nice=0, timeout_s=300.0)


def test_configuration_above_the_cap_is_not_run(bench):
    row = bench.bench_one("separable-residual", 128, _args(cap_gib=0.01))
    assert row["measured"] is False and "cap" in row["why_not_measured"]
    assert "peak_train_gib" not in row


def test_measured_row_in_a_capped_subprocess(bench):
    row = bench.bench_one("separable-residual", 128, _args(cap_gib=2.0))  # batch 1: >= 128 px for batch norm
    assert row["measured"] is True, row
    assert row["estimate_gib"] * 0.5 < row["peak_train_gib"] < 2.0
    assert row["time_per_image_s"] > 0 and row["fits_budget"] is True
    assert "| separable-residual | 5.35 M | 128 |" in bench.markdown_table([row], 8.0)
