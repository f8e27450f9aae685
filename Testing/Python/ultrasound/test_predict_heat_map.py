"""The heat map comes from the first forward pass: same map as a separate Grad-CAM, same outputs as without it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from breastlesionseg.imaging2d.gradcam2d import gradcam_map
from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.ultrasound.model import UltrasoundModel
from breastlesionseg.ultrasound.predict import predict_image
from breastlesionseg.imaging2d.intensity import scale_to_unit
from breastlesionseg.ultrasound.preprocess import network_input as letterboxed_input


@pytest.mark.parametrize("flip", [False, True])
def test_heat_map_from_the_first_pass_matches_a_separate_gradcam(flip):
    torch.manual_seed(3)
    config = {"widths": [4, 8, 12], "attention": "cbam"}
    network = build_network_2d("attention_unet2d", config).eval()
    card = ModelCard2D(model_id="tiny", modality="ultrasound", arch="attention_unet2d", config=config,
                       input_size_px=64, lesion_present_threshold=0.01, test_time_flip=flip, lesion_zoom_margin=0.5)
    model = UltrasoundModel(network, card)
    image = (np.random.default_rng(2).random((45, 61)) * 255).astype(np.float32)
    with_heat = predict_image(image, model, with_heat_map=True)
    without = predict_image(image, model, with_heat_map=False)
    np.testing.assert_allclose(with_heat.lesion_probability_map, without.lesion_probability_map, atol=1e-5)
    assert with_heat.malignancy_probability == pytest.approx(without.malignancy_probability, abs=1e-6)
    assert with_heat.lesion_present_probability == pytest.approx(without.lesion_present_probability, abs=1e-6)
    network_input, letterbox = letterboxed_input(scale_to_unit(image), card.input_size_px)
    expected = np.clip(letterbox.invert(gradcam_map(network, network_input)), 0, 1)
    np.testing.assert_allclose(with_heat.heat_map, expected, atol=1e-5)
    assert with_heat.heat_map.max() > 0 and not without.heat_map.any()
    assert not any(m._forward_hooks or m._backward_hooks for m in network.modules())  # caller's network unhooked
