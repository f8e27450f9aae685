"""Test-time flip of ultrasound models: the lesion map becomes mirror-equivariant; image-level outputs unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.ultrasound.model import UltrasoundModel
from breastlesionseg.ultrasound.predict import predict_image


def _model(flip: bool) -> UltrasoundModel:
    torch.manual_seed(11)
    config = {"widths": [4, 8, 12], "attention": "cbam"}
    network = build_network_2d("attention_unet2d", config).eval()
    with torch.no_grad():  # a fresh network's map is nearly flat: spread it so that asymmetry is measurable
        network.seg_head.weight.mul_(300.0)
    card = ModelCard2D(model_id="tiny", modality="ultrasound", arch="attention_unet2d", config=config,
                       input_size_px=64, lesion_present_threshold=0.01, test_time_flip=flip)
    return UltrasoundModel(network, card)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(4)
    return (rng.random((41, 57)) * 200 + np.linspace(0, 50, 57)[None]).astype(np.float32)


def test_flip_makes_the_lesion_map_mirror_equivariant(image):
    flipped = image[:, ::-1].copy()
    with_flip = _model(True)
    a = predict_image(image, with_flip, with_heat_map=False)
    b = predict_image(flipped, with_flip, with_heat_map=False)
    np.testing.assert_allclose(b.lesion_probability_map, a.lesion_probability_map[:, ::-1], atol=1e-6)
    plain = _model(False)
    c = predict_image(image, plain, with_heat_map=False)
    d = predict_image(flipped, plain, with_heat_map=False)
    assert not np.allclose(d.lesion_probability_map, c.lesion_probability_map[:, ::-1], atol=1e-4)
    # the averaged map is the mean of the plain map and the mirrored plain map of the mirrored image
    np.testing.assert_allclose(a.lesion_probability_map, (c.lesion_probability_map + d.lesion_probability_map[:, ::-1]) / 2,
                               atol=1e-6)
    # malignancy: the mean over the image and its mirror; lesion present: the image's own (calibrated threshold)
    assert a.malignancy_probability == pytest.approx((c.malignancy_probability + d.malignancy_probability) / 2, abs=1e-6)
    assert a.malignancy_probability == pytest.approx(b.malignancy_probability, abs=1e-6)
    assert a.lesion_present_probability == pytest.approx(c.lesion_present_probability, abs=1e-6)
