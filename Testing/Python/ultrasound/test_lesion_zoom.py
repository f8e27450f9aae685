"""The lesion-focused second pass of ultrasound models: box geometry, merging, and its effect on predict_image."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from breastlesionseg.errors import ModelError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.ultrasound.lesion_zoom import mean_logit_probability, merge_zoomed, zoom_box
from breastlesionseg.ultrasound.model import UltrasoundModel
from breastlesionseg.ultrasound.predict import predict_image


def test_zoom_box_grows_the_lesion_box_per_side_and_clips_to_the_image():
    mask = np.zeros((31, 47), dtype=bool)
    mask[10:16, 20:30] = True  # 6 rows x 10 columns
    assert zoom_box(mask, 1.0) == (4, 10, 22, 40)
    assert zoom_box(mask, 0.5) == (7, 15, 19, 35)
    assert zoom_box(mask, 0.0) == (10, 20, 16, 30)
    assert zoom_box(mask, 4.0) == (0, 0, 31, 47)
    assert zoom_box(np.zeros((5, 5), dtype=bool), 1.0) is None


def test_merge_averages_inside_the_box_only():
    first = np.full((9, 11), 0.2, dtype=np.float32)
    merged = merge_zoomed(first, (2, 3, 5, 8), np.full((3, 5), 0.8, dtype=np.float32))
    assert np.allclose(merged[2:5, 3:8], 0.5)
    outside = np.ones_like(merged, dtype=bool)
    outside[2:5, 3:8] = False
    assert np.allclose(merged[outside], 0.2) and np.allclose(first, 0.2)  # the input is not modified
    with pytest.raises(ValueError, match="does not match"):
        merge_zoomed(first, (2, 3, 5, 8), np.zeros((4, 5), dtype=np.float32))


def test_mean_logit_probability():
    assert mean_logit_probability([0.5, 0.5]) == pytest.approx(0.5)
    assert mean_logit_probability([0.9, 0.1]) == pytest.approx(0.5)
    assert mean_logit_probability([0.8, 0.8]) == pytest.approx(0.8)
    p, q = 0.7, 0.95
    expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + np.log(q / (1 - q))) / 2))
    assert mean_logit_probability([p, q]) == pytest.approx(expected)


def _model(margin: float, threshold: float = 0.5) -> UltrasoundModel:
    torch.manual_seed(5)
    config = {"widths": [4, 8, 12], "attention": "cbam"}
    network = build_network_2d("attention_unet2d", config).eval()
    with torch.no_grad():  # spread the fresh network's nearly flat map so that part of it passes 0.5
        network.seg_head.weight.mul_(300.0)
    card = ModelCard2D(model_id="tiny", modality="ultrasound", arch="attention_unet2d", config=config,
                       input_size_px=64, threshold=threshold, lesion_present_threshold=0.01,
                       lesion_zoom_margin=margin)
    return UltrasoundModel(network, card)


def test_second_pass_changes_the_map_only_inside_the_zoom_box():
    rng = np.random.default_rng(8)
    image = (rng.random((53, 77)) * 180 + np.linspace(0, 60, 77)[None]).astype(np.float32)
    flat_map = predict_image(image, _model(0.0), with_heat_map=False).lesion_probability_map
    threshold = float(np.quantile(flat_map, 0.97))  # a small first-pass "lesion", so the box is a part of the image
    one_pass = predict_image(image, _model(0.0, threshold), with_heat_map=False)
    two_pass = predict_image(image, _model(0.5, threshold), with_heat_map=False)
    box = zoom_box(one_pass.mask.astype(bool), 0.5)
    assert box is not None and box != (0, 0) + image.shape
    top, left, bottom, right = box
    outside = np.ones(image.shape, dtype=bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_allclose(two_pass.lesion_probability_map[outside], one_pass.lesion_probability_map[outside])
    assert not np.allclose(two_pass.lesion_probability_map[top:bottom, left:right],
                           one_pass.lesion_probability_map[top:bottom, left:right], atol=1e-3)
    assert two_pass.lesion_present_probability == pytest.approx(one_pass.lesion_present_probability, abs=1e-6)
    assert two_pass.malignancy_probability != pytest.approx(one_pass.malignancy_probability, abs=1e-6)


def test_card_refuses_a_negative_zoom_margin():
    card = _model(0.0).card
    with pytest.raises(ModelError, match="lesion_zoom_margin"):
        dataclasses.replace(card, lesion_zoom_margin=-1.0)
