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
