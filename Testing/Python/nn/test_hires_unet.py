"""The lightweight high-resolution U-Net family (Tardy & Mateus): parameter progression, shapes, gradients."""
from __future__ import annotations

import json

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn.hires_level2d import HiResLevel2d
from breastlesionseg.nn.hires_unet import HiResUNet2D
from breastlesionseg.nn.hires_unet_config import (HIRES_UNET_VARIANTS, PAPER_PARAMETERS, SHIPPED_HIRES_VARIANT,
                                                  HiResUNetConfig)
from breastlesionseg.nn.hires_unet_summary import summarize_hires_unet


def _meta_parameters(variant: str) -> int:
    with torch.device("meta"):
        net = HiResUNet2D(HiResUNetConfig.variant(variant))
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("variant", ["deep7", "deep7-f16", "separable", "separable-residual"])
def test_parameter_count_within_5_percent_of_paper(variant):
    params = _meta_parameters(variant)
    assert abs(params / PAPER_PARAMETERS[variant] - 1.0) < 0.05, (variant, params)


def test_progression_is_monotone_as_in_the_paper():
    counts = [_meta_parameters(v) for v in ("deep7", "deep7-f16", "separable", "separable-residual")]
    assert counts[0] > 15 * counts[1]           # 64 -> 16 filters: ~16x fewer
    assert counts[1] > 7 * counts[2]            # separable: ~8x fewer
    assert 0 < counts[3] - counts[2] < 0.2 * counts[2]  # residual projections add a little


def _closed_form_separable_level(c_in: int, c_out: int, n: int) -> int:
    """9*Cin + Cin*Cout + Cout (+2*Cout norm) per unit, then Cout -> Cout units."""
    total, c = 0, c_in
    for _ in range(n):
        total += 9 * c + c * c_out + c_out + 2 * c_out
        c = c_out
    return total


def test_level_parameters_match_closed_form():
    level = HiResLevel2d(24, 40, 3, separable=True, residual=True, norm="batch")
    expected = _closed_form_separable_level(24, 40, 3) + 24 * 40 + 40  # + 1x1 projection with bias
    assert sum(p.numel() for p in level.parameters()) == expected
    dense = HiResLevel2d(8, 8, 2, separable=False, residual=True, norm="instance")
    assert isinstance(dense.projection, torch.nn.Identity)
    assert sum(p.numel() for p in dense.parameters()) == 2 * (9 * 8 * 8 + 8 + 2 * 8)


@pytest.mark.parametrize("size", [(37, 51), (1, 1), (65, 3)])
def test_output_has_input_size_for_odd_sizes(size):
    torch.manual_seed(0)
    net = HiResUNet2D(HiResUNetConfig(levels=4, base_width=4)).eval()
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, *size)
    assert torch.isfinite(y).all()


def test_padding_does_not_leak_into_the_crop_region_shape_and_gradients_flow():
    torch.manual_seed(1)
    net = HiResUNet2D(HiResUNetConfig(levels=3, base_width=4))
    x = torch.randn(2, 1, 13, 17, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_shipped_variant_is_the_default_config():
    assert HiResUNetConfig() == HiResUNetConfig.variant(SHIPPED_HIRES_VARIANT)
    assert SHIPPED_HIRES_VARIANT in HIRES_UNET_VARIANTS


def test_config_round_trip_and_bad_fields():
    cfg = HiResUNetConfig.variant("deep7-f16", norm="instance")
    assert HiResUNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(InputError, match="bogus"):
        HiResUNetConfig.from_dict({"bogus": 1})
    with pytest.raises(InputError, match="levels"):
        HiResUNetConfig(levels=1)
    with pytest.raises(InputError, match="norm"):
        HiResUNetConfig(norm="group")
    with pytest.raises(InputError, match="variant"):
        HiResUNetConfig.variant("deep9")


def test_wrong_channel_count_is_rejected():
    net = HiResUNet2D(HiResUNetConfig(levels=2, base_width=2))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 8, 8))


def test_summary_flops_scale_with_pixels():
    small = summarize_hires_unet("separable-residual", (512, 512))
    big = summarize_hires_unet("separable-residual", (1536, 1536))
    assert small["params"] == big["params"]
    assert big["flops"] == pytest.approx(9 * small["flops"], rel=1e-6)
    with pytest.raises(InputError):
        summarize_hires_unet("separable", (0, 5))
