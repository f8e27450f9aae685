"""``breastlesionseg breast-mask``: mask written on the pre grid (exact geometry), JSON report, no overwrite."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.cli.main import main
from breastlesionseg.phantom import PhantomConfig, generate_phantom


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("bm")
    ph = generate_phantom(PhantomConfig(seed=11, n_post=2))
    paths = []
    for p in ph.exam.phases[:2]:
        path = out / f"{p.name}.nii.gz"
        sitk.WriteImage(p.to_sitk(), str(path))
        paths.append(str(path))
    return ph, paths, out


def test_json_report_and_mask_geometry(phantom_files, capsys):
    ph, paths, out = phantom_files
    target = out / "mask.nii.gz"
    assert main(["breast-mask", *paths, "--output", str(target), "--json", "--margin-mm", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    img = sitk.ReadImage(str(target))
    assert img.GetSize() == ph.exam.geometry.size
    np.testing.assert_allclose(img.GetOrigin(), ph.exam.geometry.origin, atol=1e-4)
    np.testing.assert_allclose(img.GetSpacing(), ph.exam.geometry.spacing, atol=1e-6)
    mask = sitk.GetArrayFromImage(img)
    gt = ph.breast_mask.array
    dice = 2 * np.count_nonzero((mask > 0) & (gt > 0)) / (np.count_nonzero(mask) + np.count_nonzero(gt))
    assert dice > 0.93
    vox_ml = ph.exam.geometry.voxel_volume_mm3 / 1000.0
    assert report["volumes_ml"]["left"] == pytest.approx(np.count_nonzero(mask == 1) * vox_ml)
    crop = report["crop"]
    assert crop["margin_mm"] == 10.0 and all(s % 16 == 0 for s in crop["shape_zyx"])
    assert 0.0 < crop["fraction_kept"] < 1.0
    nz = np.nonzero(mask)
    for a in range(3):  # the crop contains the whole mask
        assert crop["start_zyx"][a] <= nz[a].min() and crop["stop_zyx"][a] > nz[a].max()


def test_refuses_overwrite_without_force_and_text_output(phantom_files, capsys):
    _, paths, out = phantom_files
    target = out / "exists.nii.gz"
    target.write_bytes(b"user data")
    assert main(["breast-mask", paths[0], "--output", str(target)]) == 2
    assert target.read_bytes() == b"user data"
    assert main(["breast-mask", paths[0], "--output", str(target), "--force"]) == 0
    text = capsys.readouterr().out
    assert "volumes: left" in text and "fraction of the image kept" in text
    assert sitk.ReadImage(str(target)).GetSize()


def test_bad_input_exit_code(tmp_path):
    assert main(["breast-mask", str(tmp_path / "missing.nii.gz"), "--output", str(tmp_path / "m.nii.gz")]) == 2
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((1, 20, 20), np.float32)), str(flat))
    assert main(["breast-mask", str(flat), "--output", str(tmp_path / "m.nii.gz")]) == 2
    assert not (tmp_path / "m.nii.gz").exists()
