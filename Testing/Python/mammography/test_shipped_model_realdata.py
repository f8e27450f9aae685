"""The shipped demo model on real CDD-CESM images it did not train on (held-out fold of its cross-validation)."""
from __future__ import annotations

import pytest

from breastlesionseg.imaging2d.metrics2d import dice_score
from breastlesionseg.mammography.cddcesm import read_cddcesm
from breastlesionseg.mammography.config import DEFAULT_MAMMOGRAPHY_MODEL
from breastlesionseg.mammography.predict import load_mammography_model, predict_image
from breastlesionseg.mammography.training_data import read_reference_mask

#: held-out images checked (chosen among the shipped fold's held-out images: one DM, one CM view)
CHECKED_IMAGES = ("P105_R_CM_MLO", "P168_L_DM_MLO")
#: the two checked images' mean held-out Dice must stay above this (0.71 and 0.60 measured at release)
CHECKED_MEAN_DICE_FLOOR = 0.5


@pytest.fixture(scope="module")
def shipped():
    return load_mammography_model(DEFAULT_MAMMOGRAPHY_MODEL)


@pytest.mark.realdata
@pytest.mark.parametrize("name", CHECKED_IMAGES)
def test_dice_reproduces_the_cross_validation_measurement(shipped, cddcesm_dir, name):
    card = shipped.card
    measured = card.cv_metrics["this_model_held_out_dice_per_image"]
    assert name in measured, f"{name} is not held out by the shipped model's fold"
    case = next(c for c in read_cddcesm(cddcesm_dir) if c.name == name)
    result = predict_image(case.image_path, shipped)
    reference = read_reference_mask(case)
    assert result.mask.shape == reference.shape == (512, 512)
    assert dice_score(result.mask.astype(bool), reference) == pytest.approx(measured[name], abs=0.02)


@pytest.mark.realdata
def test_the_model_segments_lesions_on_held_out_images(shipped):
    measured = shipped.card.cv_metrics["this_model_held_out_dice_per_image"]
    assert sum(measured[n] for n in CHECKED_IMAGES) / len(CHECKED_IMAGES) > CHECKED_MEAN_DICE_FLOOR
    assert shipped.card.cv_metrics["cv_n_images"] == 98

