"""``breastlesionseg model-summary hires-unet [--variant V] --json``: the paper's parameter progression."""
from __future__ import annotations

import json

import pytest

from breastlesionseg.cli.main import main
from breastlesionseg.nn.hires_unet_config import PAPER_PARAMETERS


@pytest.mark.parametrize("variant", ["deep7", "deep7-f16", "separable", "separable-residual"])
def test_variant_params_within_5_percent(variant, capsys):
    assert main(["model-summary", "hires-unet", "--variant", variant, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == variant
    assert abs(out["params"] / PAPER_PARAMETERS[variant] - 1) < 0.05
    assert out["input_shape"] == [1, 1, 1536, 1536]


def test_default_is_the_shipped_variant(capsys):
    assert main(["model-summary", "hires-unet", "--json", "--image-size", "512,384"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "separable-residual"
    assert out["config"]["separable"] is True and out["config"]["residual"] is True
    assert out["input_shape"] == [1, 1, 512, 384]


@pytest.mark.parametrize("args", [["--variant", "deep9"], ["--image-size", "12"], ["--image-size", "a,b"]])
def test_bad_arguments_exit_2(args, capsys):
    assert main(["model-summary", "hires-unet", *args]) == 2
