"""DICOM series round trips (SimpleITK-written, oblique), study scanning and dynamic-series ordering."""
from __future__ import annotations

import os

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.exam import load_exam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io import (
    read_volume,
    scan_dicom_study,
    select_dynamic_series,
    write_dicom_series,
    write_volume,
)


def _oblique(deg_z: float = 25.0, deg_x: float = -10.0) -> tuple[float, ...]:
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple((rz @ rx).ravel())


GEO = Geometry((11, 9, 7), (0.75, 0.8, 1.6), (-40.5, 12.25, -7.0), _oblique())


def _volume(scale: float = 1.0, seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume((scale * rng.uniform(10.0, 900.0, GEO.shape_zyx)).astype(np.float32), GEO)


def _assert_geometry_close(geo: Geometry, ref: Geometry) -> None:
    assert geo.size == ref.size
    np.testing.assert_allclose(geo.spacing, ref.spacing, atol=1e-3)
    np.testing.assert_allclose(geo.origin, ref.origin, atol=1e-3)
    np.testing.assert_allclose(geo.direction, ref.direction, atol=1e-4)


def test_float_series_round_trip_with_rescale(tmp_path):
    vol = _volume()
    write_dicom_series(vol, tmp_path / "s", series_description="ax dyn pre", series_number=3)
    assert len(os.listdir(tmp_path / "s")) == GEO.size[2]
    back = read_volume(tmp_path / "s")
    _assert_geometry_close(back.geometry, GEO)
    step = (900.0 - 10.0) / 65000.0  # quantisation step of the stored uint16 with rescale slope
    np.testing.assert_allclose(back.array, vol.array, atol=step)
    assert back.metadata["dicom"]["description"] == "ax dyn pre"
    assert back.metadata["dicom"]["series_number"] == 3
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_dicom_series(vol, tmp_path / "s", series_description="again")


def test_integer_series_round_trip_is_exact(tmp_path):
    arr = np.random.default_rng(1).integers(0, 4000, GEO.shape_zyx).astype(np.int16)
    write_dicom_series(Volume(arr, GEO), tmp_path / "i", series_description="t1")
    back = read_volume(tmp_path / "i", dtype=None)
    np.testing.assert_array_equal(back.array, arr)
    _assert_geometry_close(back.geometry, GEO)


def test_nifti_nrrd_dicom_chain_keeps_geometry(tmp_path):
    vol = _volume()
    a = read_volume(write_volume(vol, tmp_path / "a.nii.gz"))
    write_dicom_series(a, tmp_path / "dcm", series_description="x")
    b = read_volume(tmp_path / "dcm")
    c = read_volume(write_volume(b, tmp_path / "c.nrrd"))
    _assert_geometry_close(c.geometry, GEO)
    np.testing.assert_allclose(c.geometry.corners_lps(), GEO.corners_lps(), atol=1e-3)
    np.testing.assert_allclose(c.array, vol.array, atol=0.02)


def _write_study(root, order_by: str = "acquisition"):
    """Pre + 2 post dynamic series (series numbers deliberately out of time order) + distractors."""
    study = "1.2.3.4.5.6.7"
    phases = [("ax dyn pre", 9, 36000.0, 0.0, 1.0), ("ax dyn 1st pass", 7, 36090.0, 90000.0, 1.5),
              ("ax dyn 2nd pass", 8, 36180.0, 180000.0, 1.3)]
    for desc, number, acq, trig, scale in phases:
        write_dicom_series(
            _volume(scale), root / f"series{number}", series_description=desc, series_number=number,
            study_uid=study, acquisition_time_s=acq if order_by in ("acquisition", "trigger") else 36000.0,
            trigger_time_ms=trig if order_by == "trigger" else None,
        )
    # a subtraction with the dynamic geometry and a T2 with another geometry must be skipped
    write_dicom_series(_volume(0.5, seed=5), root / "series20", series_description="ax dyn SUB 1st", series_number=20,
                       study_uid=study, acquisition_time_s=36300.0)
    t2_geo = Geometry((13, 13, 5), (1.0, 1.0, 3.0), GEO.origin, GEO.direction)
    write_dicom_series(Volume(np.random.default_rng(2).uniform(1, 100, t2_geo.shape_zyx).astype(np.float32), t2_geo),
                       root / "series2", series_description="ax t2 tse", series_number=2, study_uid=study,
                       acquisition_time_s=35000.0)
    return phases


@pytest.mark.parametrize("order_by, expected_rule", [("acquisition", "acquisition time"),
                                                     ("trigger", "trigger time"),
                                                     ("none", "series number")])
def test_study_dynamic_series_are_picked_and_ordered(tmp_path, order_by, expected_rule):
    _write_study(tmp_path, order_by)
    series = scan_dicom_study(tmp_path)
    assert len(series) == 5 and all(s.n_files in (5, 7) for s in series)
    chosen, explanation = select_dynamic_series(series)
    descriptions = [s.description for s in chosen]
    if order_by == "none":
        # no usable times: series number order (7, 8, 9), then the series described as 'pre' first
        assert descriptions == ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass"]
        assert "described as pre-contrast first" in explanation
    else:
        assert descriptions == ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass"]
    assert f"ordered by {expected_rule}" in explanation
    assert "pre-contrast = #9 'ax dyn pre'" in explanation
    assert "'ax dyn SUB 1st'" in explanation and "'ax t2 tse'" in explanation  # skipped series are explained


def test_load_exam_from_study_folder(tmp_path):
    _write_study(tmp_path, "trigger")
    exam = load_exam(tmp_path)
    assert exam.names == ["pre", "post1", "post2"]
    np.testing.assert_allclose(exam.acquisition_times_s, [0.0, 90.0, 180.0])
    ref = _volume(1.0).array
    np.testing.assert_allclose(exam.pre.array, ref, atol=0.02)
    np.testing.assert_allclose(exam.post[0].array, 1.5 * ref, atol=0.03)
    np.testing.assert_allclose(exam.post[1].array, 1.3 * ref, atol=0.03)
    _assert_geometry_close(exam.geometry, GEO)
    assert any("ordered by trigger time" in n for n in exam.notes)
    # read_volume refuses a folder with several series and lists them
    with pytest.raises(InputError, match=r"holds 5 DICOM series.*'ax dyn pre'"):
        read_volume(tmp_path)


def test_single_series_with_temporal_positions_is_split(tmp_path):
    uid, study = "1.2.3.99", "1.2.3.98"
    scales = [1.0, 1.8, 1.5, 1.2]
    for t, scale in enumerate(scales):  # same series UID, 4 time points, files in sub-folders
        write_dicom_series(_volume(scale), tmp_path / f"t{t}", series_description="dyn_eTHRIVE", series_number=401,
                           series_uid=uid, study_uid=study, temporal_position=t + 1,
                           trigger_time_ms=60000.0 * t, acquisition_time_s=40000.0 + 60 * t)
    series = scan_dicom_study(tmp_path)
    assert [s.temporal_position for s in series] == [1, 2, 3, 4]
    assert all(s.series_uid == uid and s.n_files == GEO.size[2] for s in series)
    exam = load_exam(tmp_path)
    assert len(exam.phases) == 4
    for phase, scale in zip(exam.phases, scales):
        np.testing.assert_allclose(phase.array, scale * _volume().array, atol=0.03)
    np.testing.assert_allclose(exam.acquisition_times_s, [0.0, 60.0, 120.0, 180.0])


def test_missing_slice_is_reported(tmp_path):
    write_dicom_series(_volume(), tmp_path / "s", series_description="ax dyn pre")
    os.remove(tmp_path / "s" / "IM00004.dcm")
    with pytest.raises(InputError, match=r"'ax dyn pre'.*missing or duplicate slices"):
        read_volume(tmp_path / "s")


def test_folder_without_dynamic_series_or_dicom(tmp_path):
    write_dicom_series(_volume(), tmp_path / "only", series_description="ax dyn pre", study_uid="1.2")
    with pytest.raises(InputError, match="no dynamic series found"):
        load_exam(tmp_path)
    (tmp_path / "notdicom").mkdir()
    (tmp_path / "notdicom" / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notdicom.*no readable DICOM"):
        read_volume(tmp_path / "notdicom")
    with pytest.raises(InputError, match=r"nowhere.*does not exist"):
        scan_dicom_study(tmp_path / "nowhere")


def test_left_handed_volume_reads_back_as_the_same_physical_image(tmp_path):
    from breastlesionseg.exam import resample_to_grid

    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 10.0), (1, 0, 0, 0, 1, 0, 0, 0, -1))
    arr = np.random.default_rng(0).integers(0, 300, geo.shape_zyx).astype(np.int16)
    write_dicom_series(Volume(arr, geo), tmp_path / "s", series_description="flipped")
    back = read_volume(tmp_path / "s", dtype=None)
    assert back.geometry.direction[8] == pytest.approx(1.0) and back.geometry.origin[2] == pytest.approx(2.0)
    np.testing.assert_array_equal(back.array, arr[::-1])
    np.testing.assert_array_equal(resample_to_grid(back, geo, "nearest").array, arr)


def test_non_finite_volume_is_not_written_as_dicom(tmp_path):
    vol = _volume()
    vol.array[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN/Inf"):
        write_dicom_series(vol, tmp_path / "s", series_description="x")
    assert not (tmp_path / "s").exists()
