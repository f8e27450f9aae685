"""register_rigid recovers a known rigid motion between phases with different contrast."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.exam import RigidRegistrationConfig, register_rigid
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.errors import InputError

GEO = Geometry((45, 41, 27), (1.5, 1.5, 2.0), (-33.0, -30.0, -26.0))
BLOBS = [  # centre LPS mm, sigma mm, amplitude: asymmetric so rotations are observable
    ((-10.0, -8.0, -6.0), 7.0, 300.0),
    ((12.0, -4.0, 5.0), 5.0, 200.0),
    ((2.0, 14.0, -3.0), 9.0, 150.0),
    ((-5.0, 6.0, 12.0), 4.0, 250.0),
    ((15.0, 12.0, -12.0), 6.0, 180.0),
]


def _field(points: np.ndarray) -> np.ndarray:
    out = np.full(points.shape[:-1], 20.0)
    for centre, sigma, amp in BLOBS:
        d2 = np.sum((points - np.asarray(centre)) ** 2, axis=-1)
        out += amp * np.exp(-d2 / (2 * sigma**2))
    return out


def _grid_points(geo: Geometry) -> np.ndarray:
    k, j, i = np.meshgrid(*[np.arange(n) for n in geo.shape_zyx], indexing="ij")
    return geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))


def _true_transform() -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter((0.0, 0.0, 0.0))
    t.SetRotation(np.deg2rad(2.0), np.deg2rad(-1.5), np.deg2rad(4.0))
    t.SetTranslation((3.0, -2.0, 2.5))
    return t


def _phases(geo: Geometry = GEO) -> tuple[Volume, Volume]:
    fixed = Volume(_field(_grid_points(geo)).astype(np.float32), geo, name="pre", source="pre")
    truth = _true_transform()
    m = np.asarray(truth.GetMatrix()).reshape(3, 3)
    c, t = np.asarray(truth.GetCenter()), np.asarray(truth.GetTranslation())
    y = _grid_points(geo)
    back = (y - c - t) @ m + c  # T^-1(y) = R^T (y - c - t) + c (row vectors)
    # moving(y) = enhanced f(T^-1 y): contrast change between phases (MI copes with it)
    moving_arr = (1.4 * _field(back) + 35.0).astype(np.float32)
    return Volume(moving_arr, geo, name="post1", source="post1"), fixed


FINE = Geometry((91, 83, 49), (0.75, 0.75, 1.1), (-33.0, -30.0, -26.0))  # exercises the 2 mm working grid


@pytest.mark.parametrize("geo", [GEO, FINE], ids=["1.5mm", "0.75mm"])
def test_register_rigid_recovers_known_motion_within_half_a_millimetre(geo):
    moving, fixed = _phases(geo)
    aligned, transform, metrics = register_rigid(moving, fixed)
    truth = _true_transform()
    # the found transform maps fixed points where the true one does (mean over the volume)
    pts = _grid_points(geo)[::4, ::4, ::4].reshape(-1, 3)
    err = [np.linalg.norm(np.subtract(transform.TransformPoint(tuple(p)), truth.TransformPoint(tuple(p))))
           for p in pts]
    assert np.mean(err) < 0.5, f"mean error {np.mean(err):.3f} mm, metrics {metrics}"
    assert metrics["accepted"] and metrics["metric_final"] < metrics["metric_initial"]
    assert metrics["displacement_mm"] > 2.0  # the motion was real (true shift ~4.6 mm)
    # aligned post matches the (enhanced) pre pattern far better than the unregistered one
    expected = 1.4 * fixed.array + 35.0
    inner = (slice(5, -5), slice(8, -8), slice(8, -8))
    before = np.abs(moving.array - expected)[inner].mean()
    after = np.abs(aligned.array - expected)[inner].mean()
    assert aligned.geometry == fixed.geometry
    assert after < 0.25 * before, (before, after)


def test_identical_phases_give_no_motion():
    _, fixed = _phases()
    same = fixed.with_array(fixed.array * 2.0 + 10.0, name="post1")
    _, transform, metrics = register_rigid(same, fixed, RigidRegistrationConfig(shrink_factors=(2, 1),
                                                                                smoothing_sigmas_mm=(1.0, 0.0)))
    assert np.linalg.norm(metrics["translation_mm"]) < 0.3
    assert np.all(np.abs(metrics["rotation_deg"]) < 0.5)


def test_config_validation_names_the_argument():
    with pytest.raises(InputError, match="sampling_fraction"):
        RigidRegistrationConfig(sampling_fraction=0.0)
    with pytest.raises(InputError, match="shrink_factors"):
        RigidRegistrationConfig(shrink_factors=(4, 2), smoothing_sigmas_mm=(1.0,))


def test_load_exam_with_registration_aligns_the_post_phase(tmp_path):
    from breastlesionseg.exam import load_exam
    from breastlesionseg.io import write_volume

    moving, fixed = _phases()
    paths = [write_volume(fixed, tmp_path / "pre.nii.gz"), write_volume(moving, tmp_path / "post.nii.gz")]
    plain = load_exam(paths)
    exam = load_exam(paths, register=True)
    expected = 1.4 * fixed.array + 35.0
    inner = (slice(4, -4), slice(4, -4), slice(4, -4))
    assert np.abs(exam.post[0].array - expected)[inner].mean() < 0.25 * np.abs(plain.post[0].array - expected)[inner].mean()
    assert len(exam.notes) == 1 and "rigidly registered" in exam.notes[0] and "REJECTED" not in exam.notes[0]
    assert exam.post[0].source == str(paths[1])
