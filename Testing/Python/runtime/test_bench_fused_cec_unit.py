"""benchmarks/bench_fused_cec_unit.py stays aligned with the network's CECUnit (layout of the kernel's weights)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_fused_cec_unit", REPO / "benchmarks" / "bench_fused_cec_unit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_kernel_arguments_come_from_the_networks_cec_unit():
    bench = _bench()
    unit = bench.build_unit()
    w1, g1, b1, wd, g2, b2, w2, bias2, eps = bench.fused_arguments(unit)
    assert tuple(w1.shape) == (96, 8, 1, 1, 1) and tuple(wd.shape) == (96, 1, 3, 3, 3)
    assert tuple(w2.shape) == (8, 96, 1, 1, 1) and tuple(bias2.shape) == (8,)
    assert all(tuple(t.shape) == (96,) for t in (g1, b1, g2, b2)) and eps == pytest.approx(1e-5)
    assert unit.use_residual  # the kernel adds the input back
    # the benchmark's FLOP count is the unit's multiply-adds per voxel
    assert bench.MACS_PER_VOXEL == 8 * 96 + 27 * 96 + 96 * 8
    source = (REPO / "benchmarks" / "fused_cec_unit" / "fused_cec_unit.cpp").read_text()
    assert 'm.def("cec_recompute"' in source and 'm.def("cec_store"' in source


def test_layout_mismatch_is_refused():
    bench = _bench()
    unit = bench.build_unit()
    unit.separable.pointwise.bias = None
    with pytest.raises(ValueError, match="layout"):
        bench.fused_arguments(unit)
