"""scripts/calibrate_inference.py: which validation phantoms it may calibrate on (no engine runs here)."""
from __future__ import annotations

import pytest

from breastlesionseg.phantom import PhantomConfig
from breastlesionseg.phantom.randomisation import draw_config


@pytest.fixture(scope="module")
def script(load_repo_script):
    return load_repo_script("scripts/calibrate_inference.py")


def test_the_default_family_is_the_classic_phantom_and_training_is_not():
    # the script draws every validation phantom with draw_config(--family, seed); its default stays the classic one
    assert draw_config("default", 2003) == PhantomConfig(seed=2003)
    drawn = draw_config("training", 2003)
    assert drawn != PhantomConfig(seed=2003)


@pytest.mark.parametrize("args, message", [
    (["--family", "heldout-oblique", "--seeds", "2000"], "held-out families are never calibrated on"),
    (["--family", "no-such-family", "--seeds", "2000"], "not a calibration family"),
    (["--seeds", "5,2000"], "held-out evaluation seeds"),
])
def test_held_out_phantoms_are_refused_before_any_model_is_read(script, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        script.main(["no-such-model", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def _setting(threshold, missed, fp, dice):
    return {"threshold": threshold, "missed_over_20mm3": missed, "fp_per_exam": fp, "dice_mean_with_lesion": dice,
            "seconds_per_exam": 1.0}


def test_selection_rules_rank_missed_lesions_first_then_fp_or_dice(script):
    settings = [_setting(0.3, 1, 0.5, 0.90), _setting(0.4, 0, 2.5, 0.70), _setting(0.6, 0, 1.7, 0.66)]
    def pick(rule):
        return min(settings, key=lambda s: script.selection_key(s, rule))["threshold"]
    assert pick("fewest-fp") == 0.6  # fewer raw false components beat Dice
    assert pick("best-dice") == 0.4  # the confidence split handles those; Dice decides
    assert script.SELECTION_RULES[0] == "fewest-fp"
    with pytest.raises(ValueError, match="unknown selection rule"):
        script.selection_key(settings[0], "fastest")


def test_spacing_scale_goes_into_the_card_as_inference_spacing(script, random_model_dir, tmp_path):
    import json
    import shutil

    from breastlesionseg.nn.model_card import ModelCard

    assert script.scaled_spacing((1.5, 1.5, 2.0), 1.0) is None
    assert script.scaled_spacing((1.5, 1.5, 2.0), 0.75) == (1.125, 1.125, 1.5)
    folder = tmp_path / "model"
    shutil.copytree(random_model_dir, folder)
    best = {"window": [16, 24, 32], "spacing_scale": 0.5, "threshold": 0.4, "min_volume_mm3": 20.0}
    script._update_card(folder, best, [2000, 2001], "training")
    card = ModelCard.from_dict(json.loads((folder / "model_card.json").read_text(encoding="utf-8")))
    assert card.inference_spacing_mm == (1.0, 1.0, 1.5) and card.target_spacing_mm == (2.0, 2.0, 3.0)
    assert card.threshold == 0.4 and card.extra["inference_calibration"]["spacing_scale"] == 0.5
    script._update_card(folder, {**best, "spacing_scale": 1.0}, [2000], "training")
    card = ModelCard.from_dict(json.loads((folder / "model_card.json").read_text(encoding="utf-8")))
    assert card.inference_spacing_mm is None and card.run_spacing_mm() == (2.0, 2.0, 3.0)
    with pytest.raises(SystemExit):
        script.main([str(folder), "--seeds", "2000", "--spacing-scales", "0.1"])


def test_a_missed_lesion_over_20_mm3_is_counted(script):
    """The 'no missed lesion' rule reads the detection's gt20 bin (it once read a bin name that does not exist)."""
    import numpy as np

    from breastlesionseg.geometry import Geometry, Volume
    from breastlesionseg.metrics import evaluate_segmentation

    geometry = Geometry((13, 11, 9), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    truth = np.zeros((9, 11, 13), np.uint16)
    truth[1:4, 1:4, 1:4] = 1  # 27 mm3: missed
    truth[5:8, 6:9, 8:11] = 2  # 27 mm3: found
    truth[7, 1, 1:6] = 3  # 5 mm3: missed, below 20 mm3
    prediction = np.zeros_like(truth)
    prediction[6, 7, 9] = 1
    prediction[1, 8, 1:4] = 2  # false positive
    ev = evaluate_segmentation(Volume(prediction, geometry), Volume(truth, geometry), surface_distances_mm=False)
    assert script.detection_counts(ev["detection"]) == {"fp": 1, "fn": 2, "fn_over_20mm3": 1}
