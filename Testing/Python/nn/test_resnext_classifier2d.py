"""The ResNeXt-style crop classifier: shapes, the 32x4d grouped width, parameter count, config validation."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn.config2d import ResNeXtClassifier2DConfig
from breastlesionseg.nn.resnext_classifier2d import ResNeXtClassifier2D


def test_one_logit_per_image_for_odd_sizes():
    torch.manual_seed(0)
    net = ResNeXtClassifier2D().eval()
    with torch.no_grad():
        out = net(torch.rand(3, 2, 61, 47))
    assert out.shape == (3,) and torch.isfinite(out).all()


def test_widest_block_is_32_groups_of_4_channels_and_parameter_count():
    net = ResNeXtClassifier2D(ResNeXtClassifier2DConfig())
    grouped = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert {m.groups for m in grouped} == {32}
    # planes 16, 32, 64, 64 with base width 4: grouped widths 32, 64, 128, 128 (4 channels per group at the widest)
    assert [m.in_channels for m in grouped] == [32, 64, 128, 128]
    assert max(m.in_channels // m.groups for m in grouped) == 4
    assert sum(p.numel() for p in net.parameters()) == 274_061
    assert net.head[-1].in_features == 4 * 64


@pytest.mark.parametrize("field, value, message", [
    ("planes", (16, 32), "equal length"), ("strides", (1, 3, 2, 1), "stride 1 or 2"),
    ("planes", (8, 32, 64, 64), "planes value must be >= 16"), ("dropout", 1.0, "dropout"), ("groups", 0, "groups"),
])
def test_config_validation_names_the_problem(field, value, message):
    with pytest.raises(InputError, match=message):
        ResNeXtClassifier2DConfig(**{field: value})
    with pytest.raises(InputError, match="unknown crop-classifier config field"):
        ResNeXtClassifier2DConfig.from_dict({"width": 3})
    assert ResNeXtClassifier2DConfig.from_dict(ResNeXtClassifier2DConfig().to_dict()) == ResNeXtClassifier2DConfig()


def test_model_summary_cli(capsys):
    import json

    from breastlesionseg.cli.main import main

    assert main(["model-summary", "resnext_classifier2d", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["params"] == 274_061 and result["input_shape"] == [1, 2, 64, 64]
    assert result["paper_params"] == 25_000_000 and result["params"] < result["paper_params"] / 50
    # convolution FLOPs grow with the input area (4x the pixels), the pooled linear head's do not
    assert main(["model-summary", "resnext_classifier2d", "--input-size", "128", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flops"] / result["flops"] == pytest.approx(4.0, rel=0.005)
