"""Per-lesion confidence through the engine and the output folder: low-confidence components become
candidates (candidates.nii.gz, metrics.json), reported lesions stay in lesions.nii.gz, nothing is lost."""
from __future__ import annotations

import json

import numpy as np
import pytest

from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.inference.lesion_confidence import LesionConfidenceModel
from breastlesionseg.inference.outputs import write_outputs
from breastlesionseg.io import read_label_volume


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


@pytest.fixture()
def size_confidence_engine(handset_model, oblique_case):
    """The hand-set network with a confidence model that trusts large components only (log10 volume > 2.94)."""
    net, card = handset_model
    card.lesion_confidence = LesionConfidenceModel(["log10_volume_mm3"], [2.94], [1.0], [20.0], 0.0, 0.5,
                                                   "test").to_dict()
    cfg = InferenceConfig(device="cpu", crop_margin_mm=3.0, backend="eager", min_lesion_volume_mm3=10.0)
    return SegmentationEngine(cfg, model=net, card=card, breast_segmenter=lambda exam: oblique_case.breast)


def test_small_lesion_becomes_a_candidate_and_both_are_written(size_confidence_engine, oblique_case, tmp_path):
    case = oblique_case
    result = size_confidence_engine.run(case.exam)
    truth = np.asarray(case.lesions.array)
    assert result.n_lesions == 1 and len(result.candidates) == 1
    assert _dice(result.lesion_labels.array == 1, truth == 1) > 0.9
    assert _dice(result.candidate_labels.array == 1, truth == 2) > 0.9
    assert result.lesion_confidence[0] > 0.9 and result.candidates[0]["confidence"] < 0.1
    assert result.candidate_labels.geometry == case.exam.geometry
    files = write_outputs(result, case.exam, tmp_path / "out")
    cand = read_label_volume(files["candidates.nii.gz"])
    assert cand.geometry.same_grid(case.exam.geometry)
    assert np.array_equal(np.asarray(cand.array), np.asarray(result.candidate_labels.array))
    doc = json.loads(files["metrics.json"].read_text(encoding="utf-8"))
    assert doc["n_lesions"] == 1 and doc["lesion_confidence"][0] == pytest.approx(result.lesion_confidence[0])
    (entry,) = doc["candidates"]
    assert entry["id"] == 1 and entry["confidence"] < 0.1
    assert entry["volume_mm3"] == pytest.approx(np.count_nonzero(cand.array == 1) * case.exam.geometry.voxel_volume_mm3)


def test_without_a_confidence_model_no_candidate_file(handset_model, oblique_case, tmp_path):
    net, card = handset_model
    cfg = InferenceConfig(device="cpu", crop_margin_mm=3.0, backend="eager", min_lesion_volume_mm3=10.0)
    engine = SegmentationEngine(cfg, model=net, card=card, breast_segmenter=lambda exam: oblique_case.breast)
    result = engine.run(oblique_case.exam)
    assert result.n_lesions == 2 and result.candidate_labels is None and result.lesion_confidence == [None, None]
    files = write_outputs(result, oblique_case.exam, tmp_path / "out")
    assert "candidates.nii.gz" not in files
    assert json.loads(files["metrics.json"].read_text(encoding="utf-8"))["candidates"] == []
