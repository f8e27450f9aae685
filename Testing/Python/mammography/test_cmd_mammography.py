"""``breastlesionseg mammography``: the CLI contract (same output layout as ``breastlesionseg ultrasound``)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from breastlesionseg.cli.main import main

from .conftest import synthetic_mammogram, write_dicom_mg


def _inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    image, _ = synthetic_mammogram(45, 33, seed=1)
    Image.fromarray(image).save(folder / "left_cc.png")
    write_dicom_mg(folder / "right_mlo.dcm", image.astype(np.uint16) * 16, (0.1, 0.1))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def test_outputs_per_image_and_failure_exit_code(tiny_model_dir, tmp_path):
    folder, out = _inputs(tmp_path), tmp_path / "out"
    code = main(["mammography", str(folder), "--output", str(out), "--model", str(tiny_model_dir), "--threads", "1"])
    assert code == 2  # one unreadable file
    for stem in ("left_cc", "right_mlo"):
        mask = np.asarray(Image.open(out / stem / "lesion_mask.png"))
        assert mask.shape == (45, 33) and set(np.unique(mask)) <= {0, 255}
        result = json.loads((out / stem / "result.json").read_text(encoding="utf-8"))
        assert result["lesion_area_px"] == int((mask == 255).sum())
        assert result["model_id"] == "mg-tiny-test" and result["research_use_only"] is True
    assert json.loads((out / "right_mlo" / "result.json").read_text(encoding="utf-8"))["pixel_spacing_mm"] == [0.1, 0.1]
    assert not (out / "broken").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing partial left
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader((out / "results.csv").open(encoding="utf-8"))}
    assert rows["broken.jpg"]["status"] == "error" and "broken.jpg" in rows["broken.jpg"]["error"]
    assert rows["left_cc.png"]["status"] == "ok" and rows["right_mlo.dcm"]["status"] == "ok"


def test_existing_results_are_not_overwritten_without_force(tiny_model_dir, tmp_path):
    folder, out = _inputs(tmp_path), tmp_path / "out"
    (folder / "broken.jpg").unlink()
    args = ["mammography", str(folder), "--output", str(out), "--model", str(tiny_model_dir), "--threads", "1"]
    assert main(args) == 0
    before = (out / "results.csv").read_text(encoding="utf-8")
    assert main(args) == 2
    assert (out / "results.csv").read_text(encoding="utf-8") == before
    assert main(args + ["--force"]) == 0


@pytest.mark.parametrize("args", [["nothing_here.png"], []])
def test_missing_inputs_exit_2(tiny_model_dir, tmp_path, args):
    folder = tmp_path / "empty"
    folder.mkdir()
    inputs = [str(tmp_path / a) for a in args] or [str(folder)]
    assert main(["mammography", *inputs, "--output", str(tmp_path / "o"), "--model", str(tiny_model_dir)]) == 2


def test_unknown_model_exits_3(tmp_path):
    image, _ = synthetic_mammogram(20, 20, seed=2)
    Image.fromarray(image).save(tmp_path / "a.png")
    assert main(["mammography", str(tmp_path / "a.png"), "--output", str(tmp_path / "o"), "--model", "no-such-model"]) == 3
