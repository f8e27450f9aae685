"""The logistic malignancy model: fitting on known data, the collapsed two-stage formula, card and predict use."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from breastlesionseg.errors import ModelError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.inference.lesion_confidence import fit_logistic
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.ultrasound.lesion_descriptors import DESCRIPTOR_NAMES
from breastlesionseg.ultrasound.malignancy_model import MalignancyModel, fit_malignancy_model, logit
from breastlesionseg.ultrasound.model import UltrasoundModel, load_ultrasound_model
from breastlesionseg.ultrasound.predict import predict_image

D = len(DESCRIPTOR_NAMES)


def test_fit_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2))
    truth_w, truth_b = np.array([1.5, -0.8]), 0.3
    y = rng.random(20000) < 1 / (1 + np.exp(-(x @ truth_w + truth_b)))
    w, b = fit_logistic(x, y.astype(float), l2=0.0)
    np.testing.assert_allclose(w, truth_w, atol=0.06)
    assert b == pytest.approx(truth_b, abs=0.06)
    shrunk, _ = fit_logistic(x, y.astype(float), l2=5000.0)
    assert np.all(np.abs(shrunk) < np.abs(w))


def _synthetic(n, rng):
    """Descriptor 3 (depth/width) and the network logit both carry the label; the rest is noise."""
    labels = (rng.random(n) < 0.35).astype(int)
    descriptors = rng.normal(size=(n, D))
    descriptors[:, 3] += 1.2 * labels
    network = 1 / (1 + np.exp(-(rng.normal(size=n) + 0.8 * (2 * labels - 1))))
    return descriptors, network, labels


def test_two_stage_fit_collapses_into_one_linear_model_and_uses_both_sources():
    rng = np.random.default_rng(1)
    train_d, _, train_y = _synthetic(1200, rng)
    val_d, val_p, val_y = _synthetic(300, rng)
    model = fit_malignancy_model(train_d, train_y, val_p, val_d, val_y, fitted_on="synthetic")
    assert model.network_weight > 0.3 and model.weights[3] == max(model.weights, key=abs)
    # the stored formula is the logistic function of the collapsed linear score
    descriptors = dict(zip(DESCRIPTOR_NAMES, val_d[0]))
    z = (model.network_weight * logit(val_p[0])
         + ((val_d[0] - np.array(model.mean)) / np.array(model.scale)) @ np.array(model.weights) + model.intercept)
    assert model.probability(float(val_p[0]), descriptors) == pytest.approx(1 / (1 + np.exp(-z)))
    # better than either source alone on new images
    from breastlesionseg.imaging2d.metrics2d import roc_auc

    test_d, test_p, test_y = _synthetic(2000, rng)
    combined = [model.probability(float(p), dict(zip(DESCRIPTOR_NAMES, d))) for p, d in zip(test_p, test_d)]
    assert roc_auc(np.array(combined), test_y) > max(roc_auc(test_p, test_y), roc_auc(test_d[:, 3], test_y)) + 0.01
    assert MalignancyModel.from_dict(model.to_dict()) == model


def test_too_few_images_of_a_class_and_invalid_models_are_refused():
    rng = np.random.default_rng(2)
    d, p, y = _synthetic(300, rng)
    y_few = np.zeros_like(y)
    y_few[:5] = 1
    with pytest.raises(ModelError, match="at least 10"):
        fit_malignancy_model(d, y_few, p, d, y, fitted_on="x")
    good = fit_malignancy_model(d, y, p, d, y, fitted_on="x").to_dict()
    with pytest.raises(ModelError, match="unknown descriptor"):
        MalignancyModel.from_dict({**good, "descriptor_names": ["colour", *good["descriptor_names"][1:]]})
    with pytest.raises(ModelError, match="one entry each"):
        MalignancyModel.from_dict({**good, "weights": good["weights"][:-1]})
    with pytest.raises(ModelError, match="finite"):
        MalignancyModel.from_dict({**good, "intercept": float("nan")})
    with pytest.raises(ModelError, match="unexpected keyword"):
        MalignancyModel.from_dict({**good, "extra": 1})


def _tiny_model(malignancy_model: dict) -> UltrasoundModel:
    torch.manual_seed(5)
    config = {"widths": [4, 8, 12], "attention": "cbam"}
    network = build_network_2d("attention_unet2d", config).eval()
    with torch.no_grad():
        network.seg_head.weight.mul_(300.0)
    card = ModelCard2D(model_id="tiny", modality="ultrasound", arch="attention_unet2d", config=config,
                       input_size_px=64, lesion_present_threshold=0.01, malignancy_model=malignancy_model)
    return UltrasoundModel(network, card)


def test_predict_applies_the_cards_malignancy_model_to_the_found_lesion():
    rng = np.random.default_rng(3)
    d, p, y = _synthetic(300, rng)
    fitted = fit_malignancy_model(d, y, p, d, y, fitted_on="x")
    image = (np.random.default_rng(4).random((53, 71)) * 200).astype(np.float32)
    plain = predict_image(image, _tiny_model({}), with_heat_map=False)
    combined = predict_image(image, _tiny_model(fitted.to_dict()), with_heat_map=False)
    assert plain.lesion_found and set(plain.lesion_descriptors) == set(DESCRIPTOR_NAMES)
    assert plain.malignancy_probability == plain.network_malignancy_probability
    assert combined.network_malignancy_probability == pytest.approx(plain.malignancy_probability, abs=1e-7)
    assert combined.malignancy_probability == pytest.approx(
        fitted.probability(plain.malignancy_probability, plain.lesion_descriptors))
    fields = combined.to_json_dict()
    assert fields["network_malignancy_probability"] == pytest.approx(plain.malignancy_probability, abs=1e-6)
    assert fields["model_limitations"] == []
    limited = _tiny_model({})
    limited.card.limitations = ["a scanner left out of training: Dice 0.70"]
    assert predict_image(image, limited, with_heat_map=False).to_json_dict()["model_limitations"] == [
        "a scanner left out of training: Dice 0.70"]
    assert set(fields["lesion_descriptors"]) == set(DESCRIPTOR_NAMES)


def test_a_card_with_an_invalid_malignancy_model_is_refused_at_load(tmp_path):
    from breastlesionseg.imaging2d.model_card2d import save_model_2d

    model = _tiny_model({"descriptor_names": ["colour"], "mean": [0], "scale": [1], "weights": [1],
                         "network_weight": 1, "intercept": 0})
    card = dataclasses.replace(model.card, model_id="tiny-bad")
    # a loaded model's network has its batch norms folded: save the trainable network's weights
    network = build_network_2d(card.arch, card.config)
    folder = save_model_2d(network.state_dict(), card, tmp_path / "tiny-bad")
    with pytest.raises(ModelError, match="unknown descriptor"):
        load_ultrasound_model(folder)
