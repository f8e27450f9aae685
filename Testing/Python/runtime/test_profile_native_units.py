"""benchmarks/profile_native_units.py attributes the fused network's forward time to every layer."""
from __future__ import annotations

import logging
import time

import pytest

from breastlesionseg.runtime import native_cec


def test_the_clock_sums_repeated_calls_within_a_pass_and_restarts_per_pass(load_benchmark):
    prof = load_benchmark("profile_native_units")
    clock = prof.LayerClock()
    nap = clock.timed("pool", lambda s: time.sleep(s) or s)
    assert nap(0.01) == 0.01  # the wrapped function's result passes through
    nap(0.02)
    clock.end_pass()
    nap(0.01)
    clock.end_pass()
    assert 0.03 <= clock.passes[0]["pool"] < 0.03 + 0.05
    assert 0.01 <= clock.passes[1]["pool"] < 0.01 + 0.05


@pytest.mark.slow
@pytest.mark.skipif(bool(native_cec.native_unavailable_reason()), reason=native_cec.native_unavailable_reason() or "-")
def test_every_unit_and_hook_layer_is_timed(load_benchmark, caplog):
    prof = load_benchmark("profile_native_units")
    with caplog.at_level(logging.INFO, logger="profile_native_units"):
        assert prof.main(["--shape", "1", "1", "8", "16", "64", "--repeats", "1"]) == 0
    names = {line.split()[0] for line in caplog.messages[2:-1]}
    units = {f"enc.{lvl}.{i}" for lvl in range(3) for i in range(2)} | {"bott.0", "bott.1"}
    units |= {f"dec.{lvl}.{i}" for lvl in range(3) for i in range(2)}
    assert names == units | {"up0", "up1", "up2", "pool", "ACT", "head"}
