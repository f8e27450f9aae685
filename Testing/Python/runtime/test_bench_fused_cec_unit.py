"""benchmarks/bench_fused_cec_unit.py times the network's own CEC unit with the kernel the native_cec backend ships."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.runtime import native_cec

def test_the_benchmarked_unit_is_the_papers_first_level_unit(load_benchmark):
    bench = load_benchmark("bench_fused_cec_unit")
    unit = bench.build_unit()
    assert (unit.in_channels, unit.hidden_channels, unit.out_channels, unit.use_residual) == (8, 96, 8, True)
    # the benchmark's FLOP count is the unit's multiply-adds per voxel
    assert bench.MACS_PER_VOXEL == 8 * 96 + 27 * 96 + 96 * 8


@pytest.mark.slow
@pytest.mark.skipif(bool(native_cec.native_unavailable_reason()), reason=native_cec.native_unavailable_reason() or "-")
def test_the_benchmark_runs_the_shipped_kernel_exactly(load_benchmark):
    bench = load_benchmark("bench_fused_cec_unit")
    unit = bench.build_unit()
    fused, why = bench.build_fused(unit)
    assert fused is not None, why
    x = torch.randn(1, 8, 3, 8, 64)
    with torch.no_grad():
        assert float((fused(x) - unit(x)).abs().max()) < 1e-4
