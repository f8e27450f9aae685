"""Per-lesion confidence: the logistic fit, the card entry, and the lesion / candidate split (nothing lost)."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError, ModelError
from breastlesionseg.inference.lesion_confidence import (LesionConfidenceModel, fit_confidence_model, fit_logistic,
                                                         split_by_confidence)
from breastlesionseg.metrics.component_features import COMPONENT_FEATURE_NAMES


def test_fit_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6001, 2))
    p = 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    y = (rng.random(6001) < p).astype(float)
    coef, intercept = fit_logistic(x, y, l2=0.0)
    assert coef == pytest.approx([2.0, -1.0], abs=0.15)
    assert intercept == pytest.approx(0.5, abs=0.12)


def test_fit_needs_both_classes():
    with pytest.raises(InputError, match="both"):
        fit_logistic(np.zeros((5, 1)), np.ones(5))


def _features(prob_mean: float, elongation: float) -> dict[str, float]:
    f = {name: 0.0 for name in COMPONENT_FEATURE_NAMES}
    f.update(probability_mean=prob_mean, elongation=elongation)
    return f


def test_fitted_model_ranks_lesions_above_vessels_and_round_trips():
    rng = np.random.default_rng(3)
    lesions = [_features(rng.uniform(0.7, 1.0), rng.uniform(1.0, 2.0)) for _ in range(41)]
    vessels = [_features(rng.uniform(0.5, 0.9), rng.uniform(3.0, 9.0)) for _ in range(37)]
    model = fit_confidence_model(lesions + vessels, [True] * 41 + [False] * 37, 0.5, "test set")
    conf = model.confidence(lesions + vessels)
    assert conf[:41].min() > 0.5 > conf[41:].max()
    again = LesionConfidenceModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again.confidence(vessels), conf[41:])


def test_malformed_card_entry_names_the_field():
    good = LesionConfidenceModel(["elongation"], [0.0], [1.0], [-1.0], 0.0, 0.5).to_dict()
    with pytest.raises(ModelError, match="scale"):
        LesionConfidenceModel.from_dict({**good, "scale": [0.0]})
    with pytest.raises(ModelError, match="unknown"):
        LesionConfidenceModel.from_dict({**good, "feature_names": ["colour"]})
    with pytest.raises(ModelError, match="report_threshold"):
        LesionConfidenceModel.from_dict({**good, "report_threshold": 1.5})


def test_split_keeps_every_component_and_renumbers():
    labels = np.zeros((7, 9, 11), np.uint16)
    labels[1:3, 1:3, 1:4] = 1  # 12 voxels, round
    labels[4:6, 5:8, 5:7] = 2  # 12 voxels, elongated -> candidate
    labels[5, 1:3, 8:10] = 3  # 4 voxels, round
    feats = {1: _features(0.9, 1.0), 2: _features(0.9, 8.0), 3: _features(0.9, 1.2)}
    model = LesionConfidenceModel(["elongation"], [0.0], [1.0], [-2.0], 6.0, 0.5)  # elongation > 3 -> < 0.5
    scored = split_by_confidence(labels, [12.0, 12.0, 4.0], feats, model)
    assert scored.lesion_volumes_mm3 == [12.0, 4.0]
    assert np.array_equal(scored.lesion_labels == 1, labels == 1)
    assert np.array_equal(scored.lesion_labels == 2, labels == 3)
    assert np.array_equal(scored.candidate_labels == 1, labels == 2)
    assert [c["id"] for c in scored.candidates] == [1]
    assert scored.candidates[0]["confidence"] == pytest.approx(1 / (1 + np.exp(-(6.0 - 16.0))))
    assert scored.candidates[0]["volume_mm3"] == 12.0 and scored.candidates[0]["elongation"] == 8.0
    # nothing thrown away
    assert np.array_equal((scored.lesion_labels > 0) | (scored.candidate_labels > 0), labels > 0)
    assert all(c >= 0.5 for c in scored.lesion_confidence)


def test_without_a_model_every_component_is_a_lesion():
    labels = np.zeros((5, 5, 5), np.uint16)
    labels[1:3, 1:3, 1:3] = 1
    scored = split_by_confidence(labels, [8.0], {}, None)
    assert np.array_equal(scored.lesion_labels, labels)
    assert scored.candidate_labels is None and scored.candidates == [] and scored.lesion_confidence == [None]


def test_report_threshold_keeps_the_asked_fraction_of_true_components_of_20_mm3():
    from breastlesionseg.inference.lesion_confidence import choose_report_threshold, confidence_fit_metrics

    model = LesionConfidenceModel(["elongation"], [0.0], [1.0], [-1.0], 3.0, 0.5)  # conf = sigmoid(3 - elongation)
    rows = [{**_features(0.9, e), "volume_mm3": v, "is_lesion": t}
            for e, v, t in ((1.0, 500.0, True), (3.2, 40.0, True), (6.0, 90.0, False), (8.0, 10.0, True))]
    # the 40 mm3 true component has confidence sigmoid(-0.2) = 0.450; the 10 mm3 one does not count
    assert choose_report_threshold(model, rows, keep_fraction=1.0) == pytest.approx(0.45)
    # keeping half of the two, the 500 mm3 one (sigmoid(2) = 0.88) alone sets it, capped at 0.5
    assert choose_report_threshold(model, rows, keep_fraction=0.5) == pytest.approx(0.5)
    with pytest.raises(InputError, match="keep_fraction"):
        choose_report_threshold(model, rows, keep_fraction=0.0)
    model.report_threshold = 0.45
    fm = confidence_fit_metrics(model, rows, n_exams=2)
    assert fm["n_true"] == 3 and fm["false_per_exam_all"] == 0.5 and fm["false_per_exam_reported"] == 0.0
    assert fm["auc"] == pytest.approx(2 / 3)
