"""The one exam check: phase order from the signal, header-only memory budget, coverage of other grids."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import InputError
from breastlesionseg.exam import ExamChecks, load_exam, validate_exam
from breastlesionseg.exam.validation import (MEMORY_BUDGET_ENV, check_phase_order_signal, coverage_fraction,
                                             estimate_exam_memory_bytes, preflight_phase_files)
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io import write_volume
from breastlesionseg.phantom import PhantomConfig, generate_phantom


@pytest.fixture(scope="module")
def phantom_phases():
    """pre, post1..post3 of a small oblique-free phantom (odd sizes)."""
    return generate_phantom(PhantomConfig(seed=5, size=(45, 39, 21), n_post=3)).exam.phases


def _write_phases(folder, phases, order):
    paths = []
    for k, i in enumerate(order):
        paths.append(write_volume(phases[i], folder / f"phase{k}.nii.gz"))
    return paths


def test_time_order_is_plausible(phantom_phases):
    check = check_phase_order_signal([p.array for p in phantom_phases])
    assert check.plausible and check.least_enhanced == 0 and check.relative_range > 0.5
    assert validate_exam(phantom_phases) == []


def test_reversed_phases_are_refused_naming_the_order(tmp_path, phantom_phases):
    paths = _write_phases(tmp_path, phantom_phases, [3, 2, 1, 0])
    with pytest.raises(InputError, match=r"implausible phase order pre -> post1 -> post2 -> post3.*'post3' is the "
                                         r"least enhanced"):
        load_exam(paths)


def test_accepted_reversed_order_is_a_recorded_warning(tmp_path, phantom_phases):
    paths = _write_phases(tmp_path, phantom_phases, [3, 2, 1, 0])
    exam = load_exam(paths, checks=ExamChecks(accept_phase_order=True))
    assert len(exam.warnings) == 1 and exam.warnings[0].startswith("WARNING: implausible phase order")


@pytest.mark.parametrize("order", [[2, 1, 0, 3], [1, 0, 2, 3]])
def test_a_post_phase_given_first_is_refused(phantom_phases, order):
    phases = [phantom_phases[i] for i in order]
    with pytest.raises(InputError, match="implausible phase order"):
        validate_exam(phases)


def test_noise_without_enhancement_is_not_judged():
    rng = np.random.default_rng(3)
    geo = Geometry(size=(27, 25, 23), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    phases = [Volume(rng.normal(100.0, 10.0, geo.shape_zyx).astype(np.float32), geo, name=f"p{k}") for k in range(3)]
    check = check_phase_order_signal([p.array for p in phases])
    assert not check.measurable and check.plausible
    assert validate_exam(phases) == []


def test_memory_estimate_matches_the_measured_peak():
    # issue 14: 1024 x 1024 x 400 with 2 phases peaked at 12.7 GB resident
    assert estimate_exam_memory_bytes((1024, 1024, 400), 2) == pytest.approx(12.7e9, rel=0.1)


def _nifti_claiming(path, size_xyz):
    """A tiny NIfTI whose header is patched to claim ``size_xyz`` voxels (its data is then 'truncated')."""
    image = sitk.GetImageFromArray(np.arange(3 * 5 * 7, dtype=np.int16).reshape(3, 5, 7))
    sitk.WriteImage(image, str(path))
    raw = bytearray(path.read_bytes())
    raw[42:48] = struct.pack("<3h", *size_xyz)
    path.write_bytes(bytes(raw))
    return path


def test_oversized_exam_is_refused_from_the_headers_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "16")
    paths = [_nifti_claiming(tmp_path / f"p{k}.nii", (1024, 1024, 400)) for k in range(5)]
    # the files hold 210 bytes: reading any voxel would say "truncated"; the budget check comes first
    with pytest.raises(InputError, match=r"5 phases of 1024 x 1024 x 400 voxels need about 2\d\.\d GiB.*16\.0 GiB"):
        load_exam(paths)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "64")
    assert preflight_phase_files(paths) == estimate_exam_memory_bytes((1024, 1024, 400), 5)
    with pytest.raises(InputError, match="truncated"):
        load_exam(paths)


def test_bad_budget_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "lots")
    with pytest.raises(InputError, match=MEMORY_BUDGET_ENV):
        preflight_phase_files([_nifti_claiming(tmp_path / "p.nii", (3, 5, 7))])


@pytest.mark.parametrize(("other", "expected"), [
    (Geometry(size=(41, 31, 21), spacing=(1.0, 1.0, 2.0), origin=(0.45, 0.45, 0.9)), 1.0),  # < half a voxel off
    (Geometry(size=(21, 41, 31), spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
              direction=(0, 1, 0, 0, 0, 1, 1, 0, 0)), 1.0),  # other axis order, same field of view
    (Geometry(size=(20, 31, 21), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)), 20 / 41),
])
def test_coverage_is_the_share_of_pre_voxels_the_resampler_fills(other, expected):
    pre = Geometry(size=(41, 31, 21), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    assert coverage_fraction(pre, other) == pytest.approx(expected, abs=0.01)


def test_fully_covering_phase_on_another_grid_is_reported_as_full(tmp_path, phantom_phases):
    pre, post = phantom_phases[0], phantom_phases[1]
    geo = pre.geometry
    shifted = Geometry(size=geo.size, spacing=geo.spacing, origin=tuple(o + 0.45 * s for o, s in zip(geo.origin, geo.spacing)),
                       direction=geo.direction)
    paths = [write_volume(pre, tmp_path / "pre.nii.gz"),
             write_volume(Volume(post.array, shifted, name="post1"), tmp_path / "post1.nii.gz")]
    exam = load_exam(paths)
    note = next(n for n in exam.notes if "resampled" in n)
    assert "covers 100% of it" in note and "WARNING" not in note


def test_assemble_exam_applies_the_same_rules_to_volumes_in_memory(phantom_phases):
    """The Slicer logic's path: volumes from the scene, no files."""
    from breastlesionseg.exam import assemble_exam

    pre, post1 = phantom_phases[0], phantom_phases[1]
    geo = pre.geometry
    other = Geometry(size=geo.size, spacing=geo.spacing, origin=tuple(o + 0.3 * s for o, s in zip(geo.origin, geo.spacing)),
                     direction=geo.direction)
    exam = assemble_exam([Volume(pre.array, geo), Volume(post1.array, other)])
    assert exam.names == ["pre", "post1"] and exam.post[0].geometry == geo and exam.warnings == []
    assert any("covers 100% of it" in n for n in exam.notes)
    with pytest.raises(InputError, match="implausible phase order"):
        assemble_exam([Volume(post1.array, geo), Volume(pre.array, geo)])
    accepted = assemble_exam([Volume(post1.array, geo), Volume(pre.array, geo)],
                             checks=ExamChecks(accept_phase_order=True))
    assert accepted.warnings and accepted.warnings[0].startswith("WARNING")


def test_dicom_series_folders_are_sized_from_their_headers(tmp_path, monkeypatch, phantom_phases):
    from breastlesionseg.exam.validation import read_header_size
    from breastlesionseg.io import write_dicom_series

    folders = []
    for k, phase in enumerate(phantom_phases[:2]):
        folder = tmp_path / f"series{k}"
        write_dicom_series(phase, folder, series_description=f"phase {k}", series_number=k + 1)
        folders.append(folder)
    assert read_header_size(folders[0]) == phantom_phases[0].geometry.size == (45, 39, 21)
    assert read_header_size(tmp_path / "empty") is None
    assert preflight_phase_files(folders) == estimate_exam_memory_bytes((45, 39, 21), 2)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "0.0001")  # ~100 KiB: two 45 x 39 x 21 phases need more
    with pytest.raises(InputError, match=r"2 phases of 45 x 39 x 21 voxels"):
        load_exam(folders)
