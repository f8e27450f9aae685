"""fit_window: the largest window within a memory budget (graceful degradation)."""
from __future__ import annotations

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.inference.window_budget import BYTES_PER_VOXEL, fit_window, memory_budget_bytes


def test_patch_that_fits_is_kept():
    assert fit_window((32, 96, 96), budget_bytes=32 * 96 * 96 * 1000, bytes_per_voxel=1000) == (32, 96, 96)


def test_window_shrinks_in_plane_first_then_depth():
    # budget for 32 x 64 x 64 voxels: y and x shrink alternately by 8 to 64 x 64, depth untouched
    assert fit_window((32, 96, 96), budget_bytes=32 * 64 * 64 * 100, bytes_per_voxel=100) == (32, 64, 64)
    # in-plane floor 16 reached, then depth shrinks
    win = fit_window((32, 96, 96), budget_bytes=24 * 16 * 16 * 10, bytes_per_voxel=10, multiple=8, min_size=16)
    assert win == (24, 16, 16)
    z, y, x = fit_window((40, 160, 128), budget_bytes=2**30, bytes_per_voxel=1500.0)
    assert z * y * x * 1500.0 <= 2**30 and z == 40 and y % 8 == 0 and x % 8 == 0
    # the result is the largest of the sequence: one step bigger would not fit
    assert (z * (y + 8) * x * 1500.0 > 2**30) or (z * y * (x + 8) * 1500.0 > 2**30)


def test_impossible_budget_and_bad_arguments():
    with pytest.raises(InputError, match="no window fits"):
        fit_window((32, 96, 96), budget_bytes=1000, bytes_per_voxel=100)
    with pytest.raises(InputError, match="patch_size_zyx"):
        fit_window((32, 96), budget_bytes=1000)
    with pytest.raises(InputError, match="budget_bytes"):
        fit_window((32, 96, 96), budget_bytes=0)
    with pytest.raises(InputError, match="fraction"):
        memory_budget_bytes(fraction=1.5)


def test_budget_is_capped_and_positive():
    b = memory_budget_bytes(fraction=0.5, cap_bytes=2**30)
    assert 0 < b <= 2**29
    from breastlesionseg.runtime import BACKENDS

    assert set(BYTES_PER_VOXEL) == set(BACKENDS)  # every backend has its measured figure


def test_window_for_memory_keeps_the_model_window_when_it_fits_and_says_why_when_not():
    from breastlesionseg.inference.window_budget import window_for_memory

    window = (32, 96, 96)  # 294 912 voxels
    kept, note = window_for_memory(window, "cpu", "openvino", budget_bytes=4 * 2**30)
    assert kept == window and note is None
    # 100 MiB at 765 B/voxel (openvino) holds ~137 k voxels: in-plane shrinks first
    small, note = window_for_memory(window, "cpu", "openvino", budget_bytes=100 * 2**20)
    assert small[0] == 32 and small[1] < 96 and small[2] < 96
    assert small[0] * small[1] * small[2] * BYTES_PER_VOXEL["openvino"] <= 100 * 2**20
    assert "reduced from (32, 96, 96)" in note and "openvino" in note and "cpu" in note
    # a batch of 4 windows needs 4x the memory; an unknown backend is charged the largest figure
    batched, _ = window_for_memory(window, "cpu", "openvino", batch=4, budget_bytes=100 * 2**20)
    assert batched[1] * batched[2] < small[1] * small[2]
    unknown, _ = window_for_memory(window, "cpu", "tensorrt", budget_bytes=100 * 2**20)
    assert unknown[1] * unknown[2] <= small[1] * small[2]
    with pytest.raises(InputError, match="no window fits"):
        window_for_memory(window, "cpu", "eager", budget_bytes=1024)


def test_batch_for_memory_halves_the_automatic_batch_until_it_fits():
    from breastlesionseg.inference.window_budget import BYTES_PER_VOXEL, batch_for_memory

    window = (16, 32, 32)  # 16384 voxels
    per_window = 16384 * BYTES_PER_VOXEL["openvino"]
    assert batch_for_memory(window, "cpu", "openvino", 16, budget_bytes=int(16 * per_window)) == 16
    assert batch_for_memory(window, "cpu", "openvino", 16, budget_bytes=int(15 * per_window)) == 8
    assert batch_for_memory(window, "cpu", "openvino", 16, budget_bytes=int(3 * per_window)) == 2
    assert batch_for_memory(window, "cpu", "openvino", 16, budget_bytes=1) == 1  # never below 1
    # an unknown backend is charged the largest measured figure
    assert batch_for_memory(window, "cpu", "?", 16, budget_bytes=int(16 * per_window)) < 16
    with pytest.raises(InputError, match="max_batch"):
        batch_for_memory(window, "cpu", "openvino", 0, budget_bytes=10**9)
