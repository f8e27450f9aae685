"""Lesion-present threshold from a fold's validation images (real BUS-BRA images, tiny constant model)."""
from __future__ import annotations

import json
import math

import pytest

from breastlesionseg.imaging2d.model_card2d import load_model_2d
from breastlesionseg.ultrasound.calibrate import THRESHOLD_FILE, calibrate_lesion_threshold

pytestmark = pytest.mark.realdata


def test_constant_model_threshold_is_its_probability(busbra_dir, lesion_model, tmp_path):
    network, card = load_model_2d(lesion_model)  # lesion-present probability sigmoid(2) everywhere
    result = calibrate_lesion_threshold(busbra_dir, tmp_path, network, card.input_size_px, fold=0)
    expected = 1 / (1 + math.exp(-2.0))
    assert result["threshold"] == pytest.approx(expected, abs=1e-3)
    assert result["n_val_images"] == 299 and result["n_val_lesion_free_crops"] == 299
    assert result["val_sensitivity"] == 1.0 and result["val_specificity"] == 0.0  # it cannot tell them apart
    assert json.loads((tmp_path / THRESHOLD_FILE).read_text(encoding="utf-8"))["threshold"] == result["threshold"]
