"""scripts/calibrate_inference.py: which validation phantoms it may calibrate on (no engine runs here)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from breastlesionseg.phantom import PhantomConfig
from breastlesionseg.phantom.randomisation import draw_config

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "calibrate_inference.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("calibrate_inference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
