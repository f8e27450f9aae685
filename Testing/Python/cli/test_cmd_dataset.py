"""``breastlesionseg dataset add|check`` through the CLI entry point (exit codes, messages, --force)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.cli.main import main


def _write(arr: np.ndarray, path: Path, origin=(0.0, 0.0, 0.0)) -> str:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.2, 1.2, 2.5))
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture
def case_files(tmp_path):
    rng = np.random.default_rng(7)
    shape = (7, 15, 13)
    pre = rng.normal(100, 5, shape).astype(np.float32)
    post = pre + 50
    lesion = np.zeros(shape, np.uint8)
    lesion[2:5, 5:9, 4:8] = 1
    breast = np.ones(shape, np.uint8)
    return {
        "pre": _write(pre, tmp_path / "pre.nii.gz"),
        "post": _write(post, tmp_path / "post.nii.gz"),
        "post_bad": _write(post, tmp_path / "post_bad.nii.gz", origin=(0.0, 3.0, 0.0)),
        "lesions": _write(lesion, tmp_path / "les.nii.gz"),
        "breast": _write(breast, tmp_path / "breast.nii.gz"),
        "n_lesion_voxels": int(lesion.sum()),
    }


def test_dataset_add_check_and_force(tmp_path, case_files, capsys, caplog):
    ds = str(tmp_path / "ds")
    args = ["dataset", "add", ds, "--case-id", "p1", "--phases", case_files["pre"], case_files["post"],
            "--lesions", case_files["lesions"], "--breast-mask", case_files["breast"], "--corrected-by", "Dr C"]
    assert main(args + ["--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["lesion_volume_mm3"] == pytest.approx(case_files["n_lesion_voxels"] * 1.2 * 1.2 * 2.5)
    assert rec["corrected_by"] == "Dr C" and rec["phase_names"] == ["pre", "post1"]
    assert main(args) == 2  # duplicate id without --force
    assert "already in dataset" in caplog.text
    assert main(args + ["--force"]) == 0
    capsys.readouterr()
    assert main(["dataset", "check", ds, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["n_cases"] == 1
    (tmp_path / "ds/cases/p1/post1.nii.gz").unlink()
    assert main(["dataset", "check", ds]) == 1
    out = capsys.readouterr().out
    assert "p1: PROBLEM" in out and "post1 file" in out


def test_dataset_add_mismatched_grid_exit_2(tmp_path, case_files, caplog):
    rc = main(["dataset", "add", str(tmp_path / "ds"), "--case-id", "p2", "--phases", case_files["pre"],
               case_files["post_bad"], "--lesions", case_files["lesions"], "--breast-mask", case_files["breast"]])
    assert rc == 2
    assert "post_bad.nii.gz" in caplog.text and "not on the grid" in caplog.text
    assert not (tmp_path / "ds" / "dataset.json").exists()
