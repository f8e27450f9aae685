"""2D networks: parameter counts against closed forms and the U2NET-Lite paper, output shapes, configs."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn.attention_unet2d import AttentionUNet2D
from breastlesionseg.nn.cbam2d import CBAM2d, cbam_parameters
from breastlesionseg.nn.config2d import AttentionUNet2DConfig, config2d_from_dict
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.nn.nonlocal2d import NonLocal2d, nonlocal_parameters
from breastlesionseg.nn.separable_conv2d import DoubleSeparableConv, separable_block_parameters
from breastlesionseg.nn.summary2d import summarize_2d


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("c_in,c_out", [(3, 5), (16, 32), (48, 16)])
def test_separable_block_parameters(c_in, c_out):
    assert _count(DoubleSeparableConv(c_in, c_out)) == separable_block_parameters(c_in, c_out)


@pytest.mark.parametrize("channels", [4, 16, 64])
def test_attention_block_parameters(channels):
    assert _count(CBAM2d(channels)) == cbam_parameters(channels)
    assert _count(NonLocal2d(channels)) == nonlocal_parameters(channels)


def test_nonlocal_starts_as_identity_and_cbam_keeps_shape():
    x = torch.randn(2, 8, 5, 7)
    torch.testing.assert_close(NonLocal2d(8).eval()(x), x)
    assert CBAM2d(8)(x).shape == x.shape


def _attention_unet_parameters(widths, in_channels=1, attention="cbam"):
    stem = in_channels * 9 * widths[0] + 2 * widths[0] + widths[0] * 9 + widths[0] ** 2 + 2 * widths[0]
    encoder = sum(separable_block_parameters(a, b) for a, b in zip(widths[:-1], widths[1:]))
    decoder, low = 0, widths[-1]
    for skip in reversed(widths[:-1]):
        decoder += separable_block_parameters(low + skip, skip) + (cbam_parameters(skip) if attention == "cbam" else 0)
        low = skip
    heads = 2 * (2 * widths[-1] + 1)
    return stem + encoder + decoder + (widths[0] + 1) + heads


@pytest.mark.parametrize("widths,attention", [((16, 32, 64, 128, 256), "cbam"), ((8, 16, 24), "none")])
def test_attention_unet_parameters_match_the_formula(widths, attention):
    net = AttentionUNet2D(AttentionUNet2DConfig(widths=widths, attention=attention))
    assert _count(net) == _attention_unet_parameters(widths, attention=attention)


def test_u2net_lite_matches_the_papers_size():
    net = build_network_2d("u2net_lite")
    # U^2-Net small: 1.13 M parameters = 4.5 MB float32 (the U2NET-Lite paper: 4.7 MB file)
    assert 1.10e6 < net.segmentation_parameters() < 1.16e6
    summary = summarize_2d("u2net_lite", {}, 128)
    assert summary["paper_size_mb"] == 4.7 and abs(summary["segmentation_size_mb"] - 4.7) < 0.3


@pytest.mark.parametrize("arch", ["attention_unet2d", "u2net_lite"])
def test_multitask_outputs(arch):
    net = build_network_2d(arch, {"in_channels": 1}).eval()
    out = net(torch.randn(2, 1, 64, 96))
    assert out.seg_logits.shape == (2, 1, 64, 96)
    assert out.lesion_logit.shape == (2,) and out.malignancy_logit.shape == (2,)


def test_config_validation_names_the_field():
    with pytest.raises(InputError, match="attention"):
        config2d_from_dict("attention_unet2d", {"attention": "transformer"})
    with pytest.raises(InputError, match="depth"):
        config2d_from_dict("attention_unet2d", {"depth": 3})
    with pytest.raises(InputError, match="unknown 2D architecture"):
        config2d_from_dict("resnet", {})
