"""load_exam: ordering, naming, resampling onto the pre grid, and every bad-input error."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.exam import DCEExam, load_exam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io import read_volume, write_volume

PRE_GEO = Geometry((15, 13, 9), (0.9, 0.9, 1.5), (-5.0, 3.0, 10.0))


def _pattern(geo: Geometry, scale: float) -> np.ndarray:
    """A smooth positive field ``scale * (50 + 0.3 x - 0.2 y + 0.5 z)`` over LPS mm, shape (z, y, x)."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in geo.shape_zyx], indexing="ij")
    p = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    return (scale * (50.0 + 0.3 * p[..., 0] - 0.2 * p[..., 1] + 0.5 * p[..., 2])).astype(np.float32)


@pytest.fixture
def phase_files(tmp_path):
    paths = []
    for t, scale in enumerate((1.0, 1.6, 1.4)):
        path = tmp_path / f"phase{t}.nii.gz"
        write_volume(Volume(_pattern(PRE_GEO, scale), PRE_GEO), path)
        paths.append(path)
    return paths


def test_load_exam_keeps_order_and_names(phase_files):
    progress = []
    exam = load_exam(phase_files, progress=lambda stage, f, msg: progress.append((stage, f, msg)))
    assert isinstance(exam, DCEExam)
    assert exam.names == ["pre", "post1", "post2"]
    assert [p.source for p in exam.phases] == [str(p) for p in phase_files]
    np.testing.assert_allclose(exam.post[0].array, 1.6 * exam.pre.array, rtol=1e-5)
    assert exam.geometry.same_grid(PRE_GEO, atol_mm=1e-5)  # NIfTI stores float32
    assert exam.notes == []  # nothing resampled or registered
    assert progress[-1][1] == 1.0 and all(0.0 <= f <= 1.0 for _, f, _ in progress)
    named = load_exam(phase_files, names=["t0", "t1", "t2"])
    assert named.names == ["t0", "t1", "t2"]
    with pytest.raises(InputError, match="names: 2 names"):
        load_exam(phase_files, names=["a", "b"])


def test_phase_on_another_grid_is_resampled_onto_pre_grid(tmp_path, phase_files):
    other = Geometry((23, 21, 13), (0.7, 0.75, 1.2), (-7.0, 1.0, 8.0))  # covers the pre grid, other spacing
    moved = tmp_path / "post_other.nrrd"
    write_volume(Volume(_pattern(other, 2.0), other), moved)
    exam = load_exam([phase_files[0], moved])
    assert exam.post[0].geometry == exam.pre.geometry and exam.pre.geometry.same_grid(PRE_GEO, atol_mm=1e-5)
    # linear interpolation of a linear field is exact
    np.testing.assert_allclose(exam.post[0].array, 2.0 * exam.pre.array, rtol=1e-4)
    assert len(exam.notes) == 1 and "post_other.nrrd" in exam.notes[0] and "resampled" in exam.notes[0]


def test_fewer_than_two_phases(phase_files):
    with pytest.raises(InputError, match=r"at least one post-contrast.*phase0\.nii\.gz"):
        load_exam(phase_files[0])
    with pytest.raises(InputError, match=r"at least one post-contrast.*phase0\.nii\.gz"):
        load_exam([phase_files[0]])
    with pytest.raises(InputError, match="no exam inputs"):
        load_exam([])


def test_missing_phase_file_is_named(tmp_path, phase_files):
    with pytest.raises(InputError, match=r"gone\.nii\.gz"):
        load_exam([phase_files[0], tmp_path / "gone.nii.gz"])


def test_non_overlapping_phase_names_both_files(tmp_path, phase_files):
    far = Geometry(PRE_GEO.size, PRE_GEO.spacing, (400.0, 3.0, 10.0))
    path = tmp_path / "elsewhere.nii.gz"
    write_volume(Volume(_pattern(far, 1.0), far), path)
    with pytest.raises(GeometryError, match=r"elsewhere\.nii\.gz.*phase0\.nii\.gz.*do not overlap"):
        load_exam([phase_files[0], path])


def _bad_files(tmp_path):
    rng = np.random.default_rng(3)
    two_d = tmp_path / "two_d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(rng.random((13, 15)).astype(np.float32)), str(two_d))
    four_d = tmp_path / "four_d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(rng.random((2, 9, 13, 15)).astype(np.float32), isVector=False),
                    str(four_d))
    const = tmp_path / "const.nii.gz"
    write_volume(Volume(np.full(PRE_GEO.shape_zyx, 3.0, np.float32), PRE_GEO), const)
    nan = tmp_path / "nan.nrrd"
    arr = _pattern(PRE_GEO, 1.0)
    arr[4, 5, 6] = np.nan
    write_volume(Volume(arr, PRE_GEO), nan)
    inf = tmp_path / "inf.mha"
    arr = _pattern(PRE_GEO, 1.0)
    arr[0, 0, 0] = -np.inf
    write_volume(Volume(arr, PRE_GEO), inf)
    empty = tmp_path / "empty.mha"
    empty.write_text("ObjectType = Image\nNDims = 3\nDimSize = 15 13 0\nElementSpacing = 1 1 1\n"
                     "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n")
    return {"2D image": two_d, "4D image": four_d, "constant": const, "NaN": nan, "Inf": inf, "zero voxels": empty}


@pytest.mark.parametrize("problem", ["2D image", "4D image", "constant", "NaN", "Inf", "zero voxels"])
def test_bad_phase_errors_name_the_file(tmp_path, phase_files, problem):
    bad = _bad_files(tmp_path)[problem]
    for inputs in ([phase_files[0], bad], [bad, phase_files[0]]):  # as post and as pre
        with pytest.raises(InputError) as info:
            load_exam(inputs)
        message = str(info.value)
        assert str(bad) in message and problem in message


def test_single_4d_file_gets_the_4d_advice(tmp_path):
    path = tmp_path / "dce4d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).random((4, 5, 7, 9)).astype(np.float32),
                                           isVector=False), str(path))
    with pytest.raises(InputError, match=r"dce4d\.nii\.gz.*4D image.*4 volumes"):
        load_exam(path)
    with pytest.raises(InputError, match=r"nothere\.nii.*does not exist"):
        load_exam(tmp_path / "nothere.nii")


def test_partially_overlapping_phase_is_resampled_with_a_warning_note(tmp_path, phase_files):
    # shifted by half the pre extent along x: covers ~half of the pre grid
    half = Geometry(PRE_GEO.size, PRE_GEO.spacing, (PRE_GEO.origin[0] + 0.5 * 15 * 0.9, 3.0, 10.0))
    path = tmp_path / "half.nii.gz"
    write_volume(Volume(_pattern(half, 1.0) + 1.0, half), path)
    exam = load_exam([phase_files[0], path])
    assert "covers 4" in exam.notes[0] or "covers 5" in exam.notes[0]
    assert "WARNING" in exam.notes[0]
    post = exam.post[0].array
    assert np.all(post[:, :, :6] == 0.0)  # x index < 7.5 lies outside the shifted phase
    np.testing.assert_allclose(post[:, :, 8:], exam.pre.array[:, :, 8:] + 1.0, rtol=1e-4)


def test_parallel_reading_keeps_order_and_raises_the_first_bad_file_in_order(tmp_path, phase_files):
    from breastlesionseg.exam.loader import read_phases_parallel

    bad = _bad_files(tmp_path)
    paths = [phase_files[2], phase_files[0], phase_files[1]] * 3  # more files than reader threads
    serial = [read_volume(p) for p in paths]
    parallel = read_phases_parallel(paths, max_workers=4)
    assert [v.source for v in parallel] == [str(p) for p in paths]
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a.array, b.array)
        assert a.geometry == b.geometry
    # two bad files: the error is the first one's in time order, whichever thread fails first
    with pytest.raises(InputError, match="NaN") as info:
        read_phases_parallel([phase_files[0], bad["NaN"], bad["2D image"]], max_workers=3)
    assert str(bad["NaN"]) in str(info.value)
