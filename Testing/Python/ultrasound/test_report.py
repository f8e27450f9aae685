"""Cross-validation summaries and report files from known per-image rows."""
from __future__ import annotations

import json
import math

import numpy as np

import pytest

from breastlesionseg.ultrasound.evaluate import TEST_RESULTS, cross_validation_report, summarize
from breastlesionseg.ultrasound.report import write_report


def _rows():
    lesions = [
        {"kind": "lesion", "image_id": f"bus_{i}", "device": dev, "birads": b, "malignant": m,
         "lesion_present_probability": lp, "malignancy_probability": mp,
         "dice": d, "iou": d / (2 - d), "precision": d, "recall": d, "hd95_px": 4.0}
        for i, (dev, b, m, lp, mp, d) in enumerate([
            ("A", 3, False, 0.9, 0.1, 0.8), ("A", 4, False, 0.8, 0.6, 0.6),
            ("B", 5, True, 0.7, 0.7, 0.9), ("B", 4, True, 0.4, 0.4, 0.5)])
    ]
    negatives = [{"kind": "lesion_free_crop", "image_id": "bus_0", "device": "A", "lesion_present_probability": 0.2,
                  "false_positive_area_px": 0},
                 {"kind": "lesion_free_crop", "image_id": "bus_1", "device": "B", "lesion_present_probability": 0.6,
                  "false_positive_area_px": 12}]
    return lesions + negatives


def test_summary_values():
    s = summarize(_rows())
    assert s["n_images"] == 4 and s["n_lesion_free_crops"] == 2
    assert s["dice"] == pytest.approx(0.7)
    assert s["malignancy_auc"] == pytest.approx(0.75)  # malignant 0.7, 0.4 vs benign 0.1, 0.6: 3 of 4 pairs
    assert (s["malignancy_sensitivity"], s["malignancy_specificity"]) == (0.5, 0.5)
    assert s["lesion_present_auc"] == pytest.approx(7 / 8)
    assert (s["lesion_present_sensitivity"], s["lesion_present_specificity"]) == (0.75, 0.5)
    assert s["lesion_free_crops_with_mask_fraction"] == 0.5


def test_report_files_and_breakdowns(tmp_path):
    fold = tmp_path / "fold_0"
    fold.mkdir()
    (fold / TEST_RESULTS).write_text(json.dumps(_rows()))
    (fold / "history.json").write_text(json.dumps([{"epoch": 1, "train_loss": 1.0, "val_dice": 0.5,
                                                    "val_malignancy_auc": 0.6, "val_lesion_auc": 0.9}]))
    report = cross_validation_report(tmp_path)
    assert report["folds_evaluated"] == [0]
    assert report["by_device"]["A"]["dice"] == pytest.approx(0.7)
    assert math.isnan(report["by_birads"]["3"]["malignancy_auc"])  # one class only
    out = write_report(report, tmp_path)
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "training_curves.png", "roc.png"}
    assert "fold 0" in (out / "report.md").read_text(encoding="utf-8")
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["by_birads"]["3"]["malignancy_auc"] is None


def test_classifier_auc_uses_the_images_with_a_found_lesion():
    rows = _rows()
    lesions = [r for r in rows if r["kind"] == "lesion"]
    for row, value in zip(lesions, (0.9, None, 0.2, 0.3)):  # benign, benign, malignant, malignant; no lesion found on the second
        row["classifier_malignancy_probability"] = value
    s = summarize(rows)
    known = [r for r in lesions if r["classifier_malignancy_probability"] is not None]
    assert s["n_classifier"] == len(known) == 3
    from breastlesionseg.imaging2d.metrics2d import roc_auc

    expected = roc_auc(np.array([r["classifier_malignancy_probability"] for r in known]),
                       np.array([int(r["malignant"]) for r in known]))
    assert s["classifier_malignancy_auc"] == pytest.approx(expected)
    assert "classifier_malignancy_auc" not in summarize(_rows())
