"""Validation: full-crop sliding-window Dice/IoU with breast restriction and skipped windows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from breastlesionseg.geometry import Geometry
from breastlesionseg.training.preprocess import PreparedCase
from breastlesionseg.training.validate import _MaskedPredictor, predict_logits, validate_cases


class Oracle(torch.nn.Module):
    """Logits = 20 x channel 0 (the test puts 2 * label - 1 there): a perfect segmenter."""

    def forward(self, x):  # noqa: D102
        return 20.0 * x[:, :1]


def _case(shape=(12, 30, 40)):
    label = np.zeros((1, *shape), np.uint8)
    label[0, 3:7, 5:12, 4:10] = 1  # 4*7*6 = 168 voxels, x in 4..9
    label[0, 4:6, 20:24, 30:34] = 1  # 2*4*4 = 32 voxels, x in 30..33
    breast = np.zeros(shape, np.uint8)
    breast[:, :, :32] = 1  # the second lesion is half outside the breast (x 32, 33 outside)
    image = np.stack([2.0 * label[0] - 1.0, np.zeros(shape)]).astype(np.float32)
    return PreparedCase("c", image, label, breast, Geometry(shape[::-1], (1, 1, 1), (0, 0, 0)), int(label.sum()))


def test_perfect_prediction_scores_one_and_breast_restriction_is_exact():
    case = _case()
    res = validate_cases(Oracle(), [case], (8, 16, 16), overlap=0.25, mask_to_breast=False)
    assert res.dice == pytest.approx(1.0) and res.iou == pytest.approx(1.0)
    res = validate_cases(Oracle(), [case], (8, 16, 16), overlap=0.25, mask_to_breast=True)
    tp = 168 + 16  # half of the second lesion is cut by the breast mask
    assert res.per_case[0]["predicted_voxels"] == tp
    assert res.dice == pytest.approx(2 * tp / (tp + 200))
    assert res.iou == pytest.approx(tp / 200)


def test_lesion_free_case_scores_one_only_without_false_positives():
    case = _case()
    empty = PreparedCase("e", case.image * 0 - 1.0, case.label * 0, case.breast, case.geometry, 0)
    assert validate_cases(Oracle(), [empty], (8, 16, 16)).dice == pytest.approx(1.0)
    fp = PreparedCase("f", case.image, case.label * 0, case.breast, case.geometry, 0)
    assert validate_cases(Oracle(), [fp], (8, 16, 16)).dice == pytest.approx(0.0)


def test_windows_without_breast_are_skipped_and_do_not_change_the_breast_voxels(monkeypatch):
    case = _case((8, 16, 64))
    breast = np.zeros(case.breast.shape, np.uint8)
    breast[:, :, :16] = 1
    seen = []
    original = _MaskedPredictor.__call__

    def spy(self, x):
        out = original(self, x)
        seen.append((self.run, self.skipped))
        return out

    monkeypatch.setattr(_MaskedPredictor, "__call__", spy)
    masked = predict_logits(Oracle(), case.image, (8, 16, 16), 0.0, torch.device("cpu"), breast=breast)
    full = predict_logits(Oracle(), case.image, (8, 16, 16), 0.0, torch.device("cpu"))
    run, skipped = seen[-1]
    assert run == 1 and skipped == 3  # 4 windows along x, only the first holds breast voxels
    inside = torch.as_tensor(breast > 0)[None, None]
    assert torch.allclose(masked[inside], full[inside])
    assert float(masked[~inside].max()) == pytest.approx(-20.0)
