"""The lesion-crop malignancy classifier: its input geometry, safe loading, and its place in predict_image and
in the malignancy model."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from breastlesionseg.errors import ModelError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D, save_model_2d
from breastlesionseg.nn.config2d import ResNeXtClassifier2DConfig
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.nn.model_paths import sha256_file
from breastlesionseg.nn.resnext_classifier2d import ResNeXtClassifier2D
from breastlesionseg.ultrasound.crop_classifier import (CLASSIFIER_WEIGHTS_FILE, classifier_input, load_crop_classifier,
                                                        load_crop_classifiers, mirrored_mean_logits, validate_spec)
from breastlesionseg.ultrasound.lesion_descriptors import DESCRIPTOR_NAMES
from breastlesionseg.ultrasound.malignancy_model import MalignancyModel, fit_malignancy_model, logit
from breastlesionseg.ultrasound.model import load_ultrasound_model
from breastlesionseg.ultrasound.predict import predict_image

D = len(DESCRIPTOR_NAMES)


def test_input_is_the_grown_box_letterboxed_with_its_mask():
    image = np.zeros((71, 93), np.float32)
    mask = np.zeros((71, 93), bool)
    mask[30:40, 40:60] = True  # 10 x 20 px lesion
    image[mask] = 1.0
    x = classifier_input(image, mask, margin=1.0, size_px=48)
    assert x.shape == (2, 48, 48)
    # box grown by its own height / width on each side: 30 x 60 px, lesion = the central ninth of it;
    # letterboxed to 24 x 48 px: the lesion is 8 x 16 px there
    assert int(x[1].sum()) == 8 * 16
    rows, cols = np.nonzero(x[1].numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 27, 16, 31)
    np.testing.assert_array_equal(x[0].numpy() > 0.5, x[1].numpy() > 0.5)
    assert classifier_input(image, np.zeros_like(mask), 1.0, 48) is None


def test_box_is_clipped_at_the_image_border():
    mask = np.zeros((40, 40), bool)
    mask[0:10, 30:40] = True
    x = classifier_input(np.random.default_rng(0).random((40, 40)).astype(np.float32), mask, 1.0, 32)
    # box rows 0..20, columns 20..40 (clipped): 20 x 20 px, lesion in its top-right quarter
    assert int(x[1].sum()) == 16 * 16 and bool(x[1, 0, 31]) and not bool(x[1, 31, 0])


def test_mirrored_mean_is_the_mean_of_both_views():
    torch.manual_seed(1)
    net = ResNeXtClassifier2D().eval()
    x = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        expected = (net(x) + net(torch.flip(x, dims=[-1]))) / 2
        np.testing.assert_allclose(mirrored_mean_logits(net, x).numpy(), expected.numpy(), atol=1e-5)


def _save_classifier(folder, seed=2):
    torch.manual_seed(seed)
    net = ResNeXtClassifier2D(ResNeXtClassifier2DConfig())
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / CLASSIFIER_WEIGHTS_FILE)
    spec = {"config": net.config.to_dict(), "margin": 1.0, "size_px": 32, "weights_file": CLASSIFIER_WEIGHTS_FILE,
            "weights_sha256": sha256_file(folder / CLASSIFIER_WEIGHTS_FILE)}
    return net.eval(), spec


def test_loading_checks_the_sha256_and_the_field(tmp_path):
    net, spec = _save_classifier(tmp_path)
    loaded = load_crop_classifier(tmp_path / CLASSIFIER_WEIGHTS_FILE, spec, "m")
    x = torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        assert float(loaded.network(x)) == pytest.approx(float(net(x)), abs=1e-5)
    with pytest.raises(ModelError, match="sha256"):
        load_crop_classifier(tmp_path / CLASSIFIER_WEIGHTS_FILE, {**spec, "weights_sha256": "0" * 64}, "m")
    with pytest.raises(ModelError, match="missing"):
        load_crop_classifier(tmp_path / "none.pt", spec, "m")
    for bad, message in (({"margin": -1}, "margin"), ({"size_px": 8}, "size_px"),
                         ({"weights_file": "../x.pt"}, "file name"), ({"config": {"groups": 0}}, "config")):
        with pytest.raises(ModelError, match=message):
            validate_spec({**spec, **bad}, "m")
    with pytest.raises(ModelError, match="lacks"):
        validate_spec({k: v for k, v in spec.items() if k != "margin"}, "m")
    with pytest.raises(ModelError, match="mirror"):
        validate_spec({**spec, "mirror": "no"}, "m")


def test_logit_with_and_without_the_mirror_image(tmp_path):
    net, spec = _save_classifier(tmp_path)
    unit = np.random.default_rng(3).random((53, 61)).astype(np.float32)
    mask = np.zeros((53, 61), bool)
    mask[20:31, 25:40] = True
    x = classifier_input(unit, mask, 1.0, 32)[None]
    with torch.no_grad():
        plain, mirrored = float(net(x)[0]), float(net(torch.flip(x, dims=[-1]))[0])
    weights = tmp_path / CLASSIFIER_WEIGHTS_FILE
    legacy = load_crop_classifier(weights, spec, "m")  # no "mirror" in the entry: averaged with the mirror image
    assert legacy.mirror and legacy.logit(unit, mask) == pytest.approx((plain + mirrored) / 2, abs=1e-5)
    single = load_crop_classifier(weights, {**spec, "mirror": False}, "m")
    assert single.logit(unit, mask) == pytest.approx(plain, abs=1e-5)
    assert abs(plain - mirrored) > 1e-4  # the mirror image does change the logit
    assert single.logit(unit, np.zeros_like(mask)) is None


def test_an_ensemble_averages_its_members_logits(tmp_path):
    _, first = _save_classifier(tmp_path / "a", seed=2)
    _, second = _save_classifier(tmp_path / "b", seed=3)
    second = {**second, "margin": 2.0, "weights_file": "crop_classifier_1.pt", "mirror": False}
    weights = [tmp_path / "a" / CLASSIFIER_WEIGHTS_FILE, tmp_path / "b" / CLASSIFIER_WEIGHTS_FILE]
    ensemble = load_crop_classifiers(weights, {"members": [first, second]}, "m")
    unit = np.random.default_rng(4).random((47, 59)).astype(np.float32)
    mask = np.zeros((47, 59), bool)
    mask[18:29, 20:33] = True
    alone = [load_crop_classifier(w, spec, "m").logit(unit, mask) for w, spec in zip(weights, (first, second))]
    assert ensemble.logit(unit, mask) == pytest.approx(np.mean(alone), abs=1e-6)
    assert abs(alone[0] - alone[1]) > 1e-4
    assert ensemble.logit(unit, np.zeros_like(mask)) is None
    with pytest.raises(ModelError, match="2 crop classifiers in the card, 1 weights files"):
        load_crop_classifiers(weights[:1], {"members": [first, second]}, "m")
    for bad, message in (({"members": []}, "members"), ({"members": [first], "margin": 1.0}, "members"),
                         ({"members": [first, {**second, "weights_file": first["weights_file"]}]}, "own weights files"),
                         ({"members": [first, {**second, "margin": 9}]}, "margin")):
        with pytest.raises(ModelError, match=message):
            validate_spec(bad, "m")


def _synthetic(n, rng):
    labels = (rng.random(n) < 0.4).astype(int)
    descriptors = rng.normal(size=(n, D))
    network = 1 / (1 + np.exp(-(rng.normal(size=n) + 0.6 * (2 * labels - 1))))
    classifier = rng.normal(size=n) + 1.2 * (2 * labels - 1)
    return descriptors, network, labels, classifier


def test_stage_two_weighs_an_informative_classifier():
    rng = np.random.default_rng(5)
    train_d, _, train_y, _ = _synthetic(1000, rng)
    val_d, val_p, val_y, val_c = _synthetic(400, rng)
    model = fit_malignancy_model(train_d, train_y, val_p, val_d, val_y, "x", val_classifier_logit=val_c)
    assert model.classifier_weight > model.network_weight > 0
    descriptors = dict(zip(DESCRIPTOR_NAMES, val_d[0]))
    z = (model.network_weight * logit(val_p[0]) + model.classifier_weight * val_c[0]
         + ((val_d[0] - np.array(model.mean)) / np.array(model.scale)) @ np.array(model.weights) + model.intercept)
    assert model.probability(float(val_p[0]), descriptors, float(val_c[0])) == pytest.approx(1 / (1 + math.exp(-z)))
    with pytest.raises(ModelError, match="crop-classifier logit"):
        model.probability(float(val_p[0]), descriptors)
    assert MalignancyModel.from_dict(model.to_dict()) == model
    without = fit_malignancy_model(train_d, train_y, val_p, val_d, val_y, "x")
    assert without.classifier_weight == 0.0 and "classifier_weight" in without.to_dict()


def _model_folder(tmp_path, malignancy_model, seg_bias=20.0):
    """A tiny network with constant outputs (lesion everywhere for seg_bias 20, nowhere for -20) and a classifier."""
    torch.manual_seed(0)
    net = build_network_2d("attention_unet2d", {"widths": [4, 8, 8]})
    with torch.no_grad():
        for layer, bias in ((net.seg_head, seg_bias), (net.heads.lesion, 2.0), (net.heads.malignancy, -1.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    folder = tmp_path / "us-with-classifier"
    _, spec = _save_classifier(folder)
    card = ModelCard2D(model_id=folder.name, modality="ultrasound", arch="attention_unet2d", config=net.config.to_dict(),
                       input_size_px=32, lesion_present_threshold=0.5, malignancy_model=malignancy_model,
                       crop_classifier=spec)
    return save_model_2d(net.state_dict(), card, folder)


def _lesion_image():
    image = np.full((45, 67), 40.0, np.float32)
    image[15:30, 20:45] = 220.0
    return image


def test_predict_reports_and_weighs_the_classifier(tmp_path):
    from breastlesionseg.imaging2d.intensity import scale_to_unit

    rng = np.random.default_rng(6)
    train_d, _, train_y, _ = _synthetic(300, rng)
    val_d, val_p, val_y, val_c = _synthetic(300, rng)
    fitted = fit_malignancy_model(train_d, train_y, val_p, val_d, val_y, "x", val_classifier_logit=val_c)
    model = load_ultrasound_model(_model_folder(tmp_path, fitted.to_dict()))
    image = _lesion_image()
    result = predict_image(image, model, with_heat_map=False)
    assert result.lesion_found and result.area_px == image.size  # the constant network's lesion is the whole image
    x = classifier_input(scale_to_unit(image), result.mask, 1.0, 32)
    with torch.no_grad():
        logit_used = float(mirrored_mean_logits(model.crop_classifier.members[0].network, x[None])[0])
    assert result.classifier_malignancy_probability == pytest.approx(1 / (1 + math.exp(-logit_used)), abs=1e-6)
    assert result.network_malignancy_probability == pytest.approx(1 / (1 + math.exp(1.0)), abs=1e-6)
    assert result.malignancy_probability == pytest.approx(
        fitted.probability(result.network_malignancy_probability, result.lesion_descriptors, logit_used), abs=1e-6)
    assert result.malignancy_probability != pytest.approx(
        dataclasses.replace(fitted, classifier_weight=0.0).probability(result.network_malignancy_probability,
                                                                         result.lesion_descriptors), abs=1e-3)
    assert result.to_json_dict()["classifier_malignancy_probability"] == pytest.approx(
        result.classifier_malignancy_probability, abs=1e-6)


def test_no_lesion_no_classifier_output(tmp_path):
    model = load_ultrasound_model(_model_folder(tmp_path, {}, seg_bias=-20.0))
    result = predict_image(_lesion_image(), model, with_heat_map=False)
    assert not result.lesion_found and result.classifier_malignancy_probability is None
    assert result.to_json_dict()["classifier_malignancy_probability"] is None


def test_a_changed_classifier_file_is_refused(tmp_path):
    folder = _model_folder(tmp_path, {})
    weights = folder / CLASSIFIER_WEIGHTS_FILE
    state = torch.load(weights, weights_only=True)
    state["head.3.bias"] += 1.0
    torch.save(state, weights)
    with pytest.raises(ModelError, match="sha256"):
        load_ultrasound_model(folder)
