"""The shipped BUS-BRA model on fixed images of its own test fold (never seen in training), against the
values measured when it was shipped (Dice vs the expert mask, probabilities), with a small tolerance."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.imaging2d.image_io import read_image_2d
from breastlesionseg.imaging2d.lesion_crops import crop, lesion_bbox, lesion_free_regions
from breastlesionseg.imaging2d.metrics2d import dice_score
from breastlesionseg.ultrasound import load_ultrasound_model, predict_image
from breastlesionseg.ultrasound.busbra import read_busbra
from breastlesionseg.ultrasound.malignancy_model import logit
from breastlesionseg.ultrasound.training_data import NEGATIVE_MIN_SIDE_PX

pytestmark = pytest.mark.realdata

#: image -> (Dice, lesion-present probability, malignancy probability, lesion-present probability of the
#: largest lesion-free crop), measured on models/us-attunet-busbra (fold 0, test-time flip, second look at the
#: lesion, two crop classifiers, malignancy model with the lesion descriptors) at shipping time
MEASURED = {
    "0007-l": (0.7073, 0.9994, 0.6557, 0.4143),  # benign (fibroadenoma)
    "0009-l": (0.9347, 1.0000, 0.6560, 0.2856),  # malignant
    "0009-r": (0.9407, 1.0000, 0.9091, 0.9904),  # malignant, other view
}
#: the network's own malignancy probability of the same images (before the descriptors are weighed in)
NETWORK_MALIGNANCY = {"0007-l": 0.4800, "0009-l": 0.7709, "0009-r": 0.8676}
#: the lesion-crop classifiers' own malignancy probability of the same images (their mean logit)
CLASSIFIER_MALIGNANCY = {"0007-l": 0.7811, "0009-l": 0.6486, "0009-r": 0.9189}
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def model():
    return load_ultrasound_model("us-attunet-busbra")


def test_the_images_are_in_the_models_test_fold(busbra_dir, model):
    test_fold = {r.image_id: r.test_fold for r in read_busbra(busbra_dir)}
    assert model.card.split["fold"] == 0
    assert all(test_fold[f"bus_{key}"] == 0 for key in MEASURED)


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_dice_and_probabilities(busbra_dir, model, key):
    dice, present, malignancy, negative_present = MEASURED[key]
    image = read_image_2d(busbra_dir / "Images" / f"bus_{key}.png")
    truth = read_image_2d(busbra_dir / "Masks" / f"mask_{key}.png").pixels > 0
    result = predict_image(image, model)
    assert result.mask.shape == truth.shape and result.mask.dtype == np.uint8
    assert dice_score(result.mask > 0, truth) == pytest.approx(dice, abs=TOLERANCE)
    assert result.lesion_present_probability == pytest.approx(present, abs=TOLERANCE)
    assert result.malignancy_probability == pytest.approx(malignancy, abs=TOLERANCE)
    assert result.network_malignancy_probability == pytest.approx(NETWORK_MALIGNANCY[key], abs=TOLERANCE)
    assert result.classifier_malignancy_probability == pytest.approx(CLASSIFIER_MALIGNANCY[key], abs=TOLERANCE)
    assert model.malignancy_model is not None and model.card.lesion_zoom_margin == 1.0
    assert model.crop_classifier is not None and model.malignancy_model.classifier_weight > 0
    assert [(m.margin, m.mirror) for m in model.crop_classifier.members] == [(1.0, False), (2.0, False)]
    classifier_logit = float(logit(result.classifier_malignancy_probability))
    assert result.malignancy_probability == pytest.approx(model.malignancy_model.probability(
        result.network_malignancy_probability, result.lesion_descriptors, classifier_logit), abs=1e-5)
    assert result.heat_map.shape == truth.shape and 0 <= result.heat_map.min() and result.heat_map.max() <= 1
    assert result.area_px == int(result.mask.sum()) and result.area_mm2 is None  # PNG: no pixel size
    region = lesion_free_regions(truth.shape, lesion_bbox(truth), min_side_px=NEGATIVE_MIN_SIDE_PX)[0]
    negative = predict_image(crop(image.pixels, region), model, with_heat_map=False)
    assert negative.lesion_present_probability == pytest.approx(negative_present, abs=TOLERANCE)
    if negative_present < model.card.lesion_present_threshold:
        assert negative.area_px == 0 and not negative.mask.any()  # "no lesion": empty mask


def test_malignant_scores_above_benign(model, busbra_dir):
    scores = {key: predict_image(busbra_dir / "Images" / f"bus_{key}.png", model, with_heat_map=False).malignancy_probability
              for key in MEASURED}
    assert min(scores["0009-l"], scores["0009-r"]) > scores["0007-l"]
