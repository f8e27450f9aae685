"""``breastlesionseg inspect``: text and JSON descriptions, grid check, exit code 2 on bad input."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from breastlesionseg.cli.main import main
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io import write_dicom_series, write_volume

PRE = Geometry((15, 13, 9), (0.8, 0.8, 1.5), (-5.0, 3.0, 10.0))


def _phase(geo: Geometry, lo: float, hi: float, seed: int = 0) -> Volume:
    return Volume(np.random.default_rng(seed).uniform(lo, hi, geo.shape_zyx).astype(np.float32), geo)


@pytest.fixture
def phases(tmp_path):
    ramp = np.arange(np.prod(PRE.shape_zyx), dtype=np.int16).reshape(PRE.shape_zyx)
    pre = write_volume(Volume(ramp, PRE), tmp_path / "pre.nii.gz")
    enhanced = _phase(PRE, 10.0, 500.0)  # post-contrast: the pre signal plus enhancement
    same = write_volume(Volume(enhanced.array + ramp, PRE), tmp_path / "post1.nrrd")
    other_geo = Geometry((5, 5, 5), (1.5, 1.5, 2.0), (-3.0, 5.0, 12.0))  # entirely inside the pre extent
    other = write_volume(_phase(other_geo, 2000.0, 2400.0), tmp_path / "post2.mha")
    return [pre, same, other]


def test_inspect_text(phases, capsys):
    assert main(["inspect", *map(str, phases)]) == 0
    out = capsys.readouterr().out
    assert "phase 1/3 pre: " + str(phases[0]) in out
    assert "size 15 x 13 x 9 voxels, spacing 0.8 x 0.8 x 1.5 mm, orientation LPS" in out
    assert "16-bit signed integer, intensity 0 .. 1754" in out  # 15*13*9 - 1
    assert "phase 3/3 post2: " + str(phases[2]) in out
    assert "grid: same grid" in out
    assert "grid: resampled onto the pre-contrast grid (100% overlap)" in out
    assert "grid check: 1 phase(s) on another grid would be resampled" in out


def test_inspect_json(phases, capsys):
    assert main(["inspect", *map(str, phases), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and len(doc["phases"]) == 3
    pre, post1, post2 = doc["phases"]
    assert pre["size_xyz"] == [15, 13, 9] and pre["orientation"] == "LPS"
    np.testing.assert_allclose(pre["spacing_mm_xyz"], [0.8, 0.8, 1.5], atol=1e-6)
    assert pre["intensity_min"] == 0.0 and pre["intensity_max"] == 1754.0
    assert pre["pixel_type"] == "16-bit signed integer" and pre["grid"] == "reference"
    assert post1["grid"] == "same grid" and 10.0 <= post1["intensity_min"] < post1["intensity_max"] <= 500.0 + 1754
    assert doc["phase_order"]["plausible"] and doc["phase_order"]["least_enhanced"] == "pre"
    assert doc["memory_estimate_gib"] == pytest.approx(15 * 13 * 9 * (8 * 3 + 16) / 2**30, abs=0.01)
    assert post2["size_xyz"] == [5, 5, 5] and post2["grid"].startswith("resampled")
    assert post2["overlap_percent"] == 100.0 and 0 < post2["covers_pre_percent"] < 50  # a 7.5 mm cube inside


def test_inspect_dicom_study_lists_the_chosen_series(tmp_path, capsys):
    geo = Geometry((9, 7, 5), (0.9, 0.9, 2.0), (0.0, 0.0, 0.0))
    for number, desc, acq in [(4, "dyn post 1", 100.0), (3, "dyn pre", 10.0), (5, "dyn post 2", 200.0)]:
        rise = 20.0 * (number - 3)  # enhancement grows with time (series 3 is the pre-contrast phase)
        write_dicom_series(_phase(geo, 50.0 + rise, 60.0 + rise, seed=number), tmp_path / f"s{number}",
                           series_description=desc, series_number=number, study_uid="1.2.3",
                           acquisition_time_s=acq)
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "chose 3 dynamic phases" in doc["dicom_selection"] and "ordered by acquisition time" in doc["dicom_selection"]
    assert [p["dicom"]["description"] for p in doc["phases"]] == ["dyn pre", "dyn post 1", "dyn post 2"]
    assert main(["inspect", str(tmp_path)]) == 0
    assert "pre-contrast = #3 'dyn pre'" in capsys.readouterr().out


def test_inspect_exit_2_on_missing_file(tmp_path, phases, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(phases[0]), str(tmp_path / "missing.nii.gz")]) == 2
    assert "missing.nii.gz" in caplog.text and "not found" in caplog.text


def test_inspect_exit_2_on_constant_volume(tmp_path, phases, caplog):
    flat = write_volume(Volume(np.ones(PRE.shape_zyx, np.float32), PRE), tmp_path / "flat.nii.gz")
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(phases[0]), str(flat)]) == 2
    assert "flat.nii.gz" in caplog.text and "constant" in caplog.text


def test_inspect_exit_2_on_non_overlapping_phases(tmp_path, phases, capsys, caplog):
    far_geo = Geometry(PRE.size, PRE.spacing, (300.0, 3.0, 10.0))
    far = write_volume(_phase(far_geo, 1.0, 2.0), tmp_path / "far.nii.gz")
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(phases[0]), str(far), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["phases"][1]["grid"] == "NOT OVERLAPPING"
    assert "far.nii.gz" in caplog.text and "not overlap" in caplog.text


def test_inspect_single_phase_warns(phases, capsys):
    assert main(["inspect", str(phases[0])]) == 0
    assert "warning: only one phase" in capsys.readouterr().out


@pytest.mark.realdata
def test_inspect_real_duke_exam_json(duke_phase_paths, capsys):
    assert main(["inspect", *map(str, duke_phase_paths), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grid_check"] == "all 5 phases on the same grid"
    assert [p["size_xyz"] for p in doc["phases"]] == [[448, 448, 160]] * 5
    assert all(p["pixel_type"] == "16-bit unsigned integer" and p["orientation"] == "LPS" for p in doc["phases"])
    np.testing.assert_allclose(doc["phases"][0]["spacing_mm_xyz"], [0.759, 0.759, 1.1], atol=1e-3)
    assert doc["phases"][0]["intensity_max"] == 635.0 and doc["phases"][1]["intensity_max"] == 871.0


def test_inspect_single_dicom_series_folder(tmp_path, capsys):
    geo = Geometry((9, 7, 5), (0.9, 0.9, 2.0), (1.0, 2.0, 3.0))
    vol = Volume(np.random.default_rng(0).integers(0, 300, geo.shape_zyx).astype(np.int16), geo)
    write_dicom_series(vol, tmp_path / "series", series_description="ax dyn pre")
    assert main(["inspect", str(tmp_path / "series"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (phase,) = doc["phases"]
    assert phase["size_xyz"] == [9, 7, 5] and phase["dicom"]["description"] == "ax dyn pre"
    assert phase["intensity_min"] == float(vol.array.min()) and phase["intensity_max"] == float(vol.array.max())
    np.testing.assert_allclose(phase["origin_lps_mm"], [1.0, 2.0, 3.0], atol=1e-3)


def test_inspect_exit_2_on_reversed_phases(phases, capsys, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(phases[1]), str(phases[0]), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["phase_order"]["least_enhanced"] == "post1"
    assert "implausible phase order" in caplog.text


def test_inspect_exit_2_on_truncated_file(tmp_path, phases, caplog):
    raw = phases[0].read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(cut), str(phases[1])]) == 2
    assert "cut.nii.gz" in caplog.text and "truncated" in caplog.text
