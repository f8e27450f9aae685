"""``breastlesionseg evaluate``: JSON output against known masks, text report, exit 2 on mismatched grids."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.cli.main import main


def _write(path, array, spacing=(0.7, 0.8, 1.5), origin=(1.0, -2.0, 3.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture
def files(tmp_path):
    ref = np.zeros((9, 11, 13), np.uint8)
    ref[2:5, 2:6, 2:7] = 1  # 60 voxels
    ref[6:8, 7:10, 9:12] = 1  # 18 voxels, 15.1 mm3
    pred = ref.copy()
    pred[2:5, 2:6, 2:4] = 0  # 24 voxels fewer
    pred[0, 0, 0:2] = 1  # 2-voxel false positive
    return _write(tmp_path / "pred.nii.gz", pred), _write(tmp_path / "ref.nii.gz", ref), tmp_path


def test_json(files, capsys):
    pred, ref, _ = files
    assert main(["evaluate", "--prediction", pred, "--reference", ref, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    # TP 54, FP 2, FN 24
    assert r["dice"] == pytest.approx(108 / (108 + 2 + 24))
    assert r["precision"] == pytest.approx(54 / 56)
    assert r["recall"] == pytest.approx(54 / 78)
    assert r["detection"]["counts"] == {"tp": 2, "fp": 1, "fn": 0}
    assert r["detection"]["counts_by_volume_mm3"]["lt10"]["fp"] == 1
    assert r["detection"]["counts_by_volume_mm3"]["10to20"]["tp"] == 1
    assert r["hd95_mm"] > 0
    assert main(["evaluate", "--prediction", pred, "--reference", ref, "--json", "--min-lesion-mm3", "2"]) == 0
    r2 = json.loads(capsys.readouterr().out)
    assert r2["detection"]["counts"]["fp"] == 0  # the 1.68 mm3 false positive is ignored


def test_text_report(files, capsys):
    pred, ref, _ = files
    assert main(["evaluate", "--prediction", pred, "--reference", ref]) == 0
    out = capsys.readouterr().out
    assert "Dice 0.8060" in out and "false positive" in out and "10-20 mm3" in out


def test_mismatched_grids_exit_2(files, capsys, caplog):
    pred, ref, tmp = files
    other = _write(tmp / "other.nii.gz", np.zeros((9, 11, 12), np.uint8))
    assert main(["evaluate", "--prediction", other, "--reference", ref, "--json"]) == 2
    assert "other.nii.gz" in caplog.text and "ref.nii.gz" in caplog.text and "not on the same grid" in caplog.text
    assert capsys.readouterr().out == ""
    assert main(["evaluate", "--prediction", str(tmp / "missing.nii.gz"), "--reference", ref]) == 2
