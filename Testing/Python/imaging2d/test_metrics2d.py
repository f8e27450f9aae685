"""2D metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from breastlesionseg.imaging2d.metrics2d import dice_score, roc_auc, roc_curve, segmentation_metrics, sensitivity_specificity


def test_overlap_metrics_of_two_squares():
    truth = np.zeros((30, 40), dtype=bool)
    truth[5:15, 5:15] = True  # 100 px
    prediction = np.zeros_like(truth)
    prediction[5:15, 10:20] = True  # 100 px, 50 shared
    m = segmentation_metrics(prediction, truth)
    assert m["dice"] == pytest.approx(0.5)
    assert m["iou"] == pytest.approx(50 / 150)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["hd95_px"] == pytest.approx(5.0, abs=0.01)
    assert dice_score(prediction, truth) == pytest.approx(0.5)


def test_empty_prediction_and_both_empty():
    truth = np.zeros((9, 11), dtype=bool)
    truth[2:4, 2:4] = True
    m = segmentation_metrics(np.zeros_like(truth), truth)
    assert m["dice"] == 0.0 and m["recall"] == 0.0 and math.isnan(m["hd95_px"])
    assert segmentation_metrics(np.zeros_like(truth), np.zeros_like(truth))["dice"] == 1.0


def test_auc_sensitivity_specificity_and_roc():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(scores, labels) == pytest.approx(0.75)
    assert sensitivity_specificity(scores, labels, 0.5) == (0.5, 1.0)
    fpr, tpr = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)
    assert math.isnan(roc_auc(scores, np.ones(4)))
