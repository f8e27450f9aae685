"""The ``breastlesionseg ultrasound`` contract: one folder per input with a mask of the input's exact size,
result.json fields in range, heat map and overlay, results.csv; unreadable files named, nothing partial."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from breastlesionseg.cli.main import main
from breastlesionseg.imaging2d.writer import HEATMAP_FILE, MASK_FILE, OVERLAY_FILE, RESULT_FILE, RESULTS_CSV

from breastlesionseg.imaging2d.synthetic_dicom import write_ultrasound_dicom


def _inputs(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (45, 71), dtype=np.uint8)).save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 255, (83, 37, 3), dtype=np.uint8)).save(folder / "colour.jpg")
    write_ultrasound_dicom(folder / "calibrated.dcm", rng.integers(0, 255, (33, 40), dtype=np.uint8))
    return folder


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_outputs_per_image(tmp_path, lesion_model):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["ultrasound", str(inputs), "--output", str(out), "--model", str(lesion_model), "--threads", "1"]) == 0
    sizes = {"gray": (71, 45), "colour": (37, 83), "calibrated": (40, 33)}
    for stem, size in sizes.items():
        folder = out / stem
        mask = Image.open(folder / MASK_FILE)
        assert mask.mode == "L" and mask.size == size
        assert set(np.unique(np.asarray(mask))) <= {0, 255}
        assert Image.open(folder / HEATMAP_FILE).size == size and Image.open(folder / OVERLAY_FILE).size == size
        result = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        assert result["lesion_present_probability"] == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-4)
        assert result["malignancy_probability"] == pytest.approx(1 / (1 + math.exp(1.0)), abs=1e-4)
        assert result["lesion_area_px"] == size[0] * size[1] == int((np.asarray(mask) > 0).sum())
        assert result["model_id"] == "us-all-lesion"
    calibrated = json.loads((out / "calibrated" / RESULT_FILE).read_text(encoding="utf-8"))
    assert calibrated["lesion_area_mm2"] == pytest.approx(40 * 33 * 0.2 * 0.125)
    assert json.loads((out / "gray" / RESULT_FILE).read_text(encoding="utf-8"))["lesion_area_mm2"] is None
    rows = _csv_rows(out / RESULTS_CSV)
    assert sorted(r["input"].rsplit("/", 1)[-1] for r in rows) == ["calibrated.dcm", "colour.jpg", "gray.png"]
    assert all(r["status"] == "ok" for r in rows)


def test_no_lesion_gives_an_empty_mask(tmp_path, no_lesion_model):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["ultrasound", str(inputs / "gray.png"), "--output", str(out), "--model", str(no_lesion_model)]) == 0
    assert not np.asarray(Image.open(out / "gray" / MASK_FILE)).any()
    result = json.loads((out / "gray" / RESULT_FILE).read_text(encoding="utf-8"))
    assert result["lesion_present_probability"] == pytest.approx(0.05, abs=1e-3)
    assert result["lesion_found"] is False and result["lesion_area_px"] == 0


def test_unreadable_file_is_named_others_processed_nothing_partial(tmp_path, lesion_model, caplog):
    inputs = _inputs(tmp_path / "in")
    (inputs / "broken.png").write_bytes(b"\x89PNG but not really")
    out = tmp_path / "out"
    code = main(["ultrasound", str(inputs), "--output", str(out), "--model", str(lesion_model)])
    assert code != 0
    assert "broken.png" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["calibrated", "colour", "gray", RESULTS_CSV]
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in _csv_rows(out / RESULTS_CSV)}
    assert rows["broken.png"]["status"] == "error" and "broken.png" in rows["broken.png"]["error"]
    assert rows["gray.png"]["status"] == "ok"


def test_existing_results_are_not_overwritten_without_force(tmp_path, lesion_model):
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = ["ultrasound", str(inputs / "gray.png"), "--output", str(out), "--model", str(lesion_model)]
    assert main(args) == 0
    before = (out / RESULTS_CSV).read_text(encoding="utf-8")
    assert main(args) != 0
    assert (out / RESULTS_CSV).read_text(encoding="utf-8") == before
    assert main(args + ["--force"]) == 0


def test_same_stem_gets_distinct_folders(tmp_path, lesion_model):
    inputs = _inputs(tmp_path / "in")
    Image.open(inputs / "gray.png").save(inputs / "calibrated.png")
    out = tmp_path / "out"
    assert main(["ultrasound", str(inputs / "calibrated.dcm"), str(inputs / "calibrated.png"), "--output", str(out),
                 "--model", str(lesion_model)]) == 0
    assert (out / "calibrated").is_dir() and (out / "calibrated_png").is_dir()
