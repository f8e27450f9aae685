"""Reading the real Duke 5-phase exam (../shared/data; skipped when absent)."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from breastlesionseg.exam import load_exam, percent_enhancement

log = logging.getLogger(__name__)


@pytest.mark.realdata
def test_duke_exam_loads_on_one_grid(duke_phase_paths):
    assert len(duke_phase_paths) == 5
    t0 = time.perf_counter()
    exam = load_exam(duke_phase_paths)
    elapsed_s = time.perf_counter() - t0
    log.info("Duke exam (5 x 448x448x160) loaded in %.2f s (timed in benchmarks/bench_segment.py)", elapsed_s)
    geo = exam.geometry
    assert len(exam.phases) == 5 and exam.names == ["pre", "post1", "post2", "post3", "post4"]
    assert geo.size == (448, 448, 160)
    np.testing.assert_allclose(geo.spacing, (0.759, 0.759, 1.1), atol=1e-3)
    assert geo.orientation_code() == "LPS"
    assert exam.notes == []  # identical grids: nothing resampled
    assert all(p.array.dtype == np.float32 and p.array.shape == (160, 448, 448) for p in exam.phases)
    assert all(p.metadata["pixel_type"] == "16-bit unsigned integer" for p in exam.phases)
    # the stored uint16 range of the pre phase (0..635) survives the float conversion exactly
    assert exam.pre.array.min() == 0.0 and exam.pre.array.max() == 635.0
    # contrast arrives: the strongly enhancing mass/heart give high first-post enhancement somewhere,
    # and the mean post1 signal is above the pre signal
    assert exam.post[0].array.mean() > exam.pre.array.mean()
    assert np.percentile(percent_enhancement(exam, 1)[::2, ::2, ::2], 99.9) > 100.0


@pytest.mark.realdata
def test_registration_recovers_known_motion_on_real_anatomy(duke_phase_paths):
    """Move the real pre-contrast phase by a known rigid motion, change its contrast, and register it back."""
    import SimpleITK as sitk

    from breastlesionseg.exam import register_rigid, resample_to_grid
    from breastlesionseg.io import read_volume

    pre = read_volume(duke_phase_paths[0])
    truth = sitk.Euler3DTransform()
    truth.SetCenter(tuple(pre.geometry.corners_lps().mean(axis=0)))
    truth.SetRotation(np.deg2rad(1.0), np.deg2rad(-0.5), np.deg2rad(1.5))
    truth.SetTranslation((2.5, -3.0, 1.5))
    # moving(y) = pre(T^-1 y): resampling pre through T^-1 (fixed->moving convention of register_rigid)
    moved = resample_to_grid(pre, pre.geometry, "linear", transform=truth.GetInverse())
    moving = moved.with_array(1.3 * moved.array + 20.0, name="moved")
    t0 = time.perf_counter()
    _, found, metrics = register_rigid(moving, pre)
    log.warning("Duke rigid registration: %.1f s, metrics %s", time.perf_counter() - t0, metrics)
    pts = pre.geometry.corners_lps()
    err = [np.linalg.norm(np.subtract(found.TransformPoint(tuple(p)), truth.TransformPoint(tuple(p)))) for p in pts]
    assert max(err) < 0.5, f"corner errors {np.round(err, 3)} mm"
