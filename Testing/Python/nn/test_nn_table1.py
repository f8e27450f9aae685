"""Wang et al. 2025 Table 1: parameters and FLOPs at 1 x 1 x 32 x 256 x 256 within 5% (meta device, no compute)."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.nn import TABLE1_UNET3D, build_network, count_flops, count_parameters

#: (arch, config overrides, params, GFLOPs) from Table 1 of Wang et al. 2025
TABLE1 = [
    ("unet3d", TABLE1_UNET3D, 1.78e6, 115.10e9),
    ("mm3dunet", {"expansion": 6, "act": False}, 0.21e6, 27.05e9),
    ("mm3dunet", {"expansion": 12, "act": False}, 0.33e6, 41.79e9),
    ("mm3dunet", {"expansion": 12, "act": True}, 0.34e6, 42.40e9),
]
PAPER_INPUT = (1, 1, 32, 256, 256)


@pytest.mark.parametrize("arch,overrides,params,flops", TABLE1)
def test_table1_within_5_percent(arch, overrides, params, flops):
    with torch.device("meta"):
        net = build_network(arch, dict(in_channels=1, **overrides))
    n_params = count_parameters(net)
    n_flops = count_flops(net, PAPER_INPUT)
    assert abs(n_params / params - 1) <= 0.05, (arch, overrides, n_params)
    assert abs(n_flops / flops - 1) <= 0.05, (arch, overrides, n_flops)


def test_flop_counter_counts_two_per_multiply_add():
    net = torch.nn.Conv3d(2, 3, 3, padding=1, bias=False)
    assert count_flops(net, (1, 2, 4, 5, 6), with_aux=False) == 2 * (2 * 27) * 3 * (4 * 5 * 6)


def test_act_head_costs_little_and_depthwise_saves_most():
    with torch.device("meta"):
        with_act = build_network("mm3dunet", dict(in_channels=1, expansion=12, act=True))
        without = build_network("mm3dunet", dict(in_channels=1, expansion=12, act=False))
        dense = build_network("unet3d", dict(in_channels=1, **TABLE1_UNET3D))
    extra = count_parameters(with_act) - count_parameters(without)
    assert 5_000 < extra < 20_000  # paper: +0.01 M
    # section 3.4: t=12 + ACT vs 3DUNet = 63.16% and 80.90% fewer (0.34/1.78 params, 42.40/115.10 FLOPs;
    # the text swaps the two names): keep both ratios within 5% of the paper's
    flop_ratio = count_flops(with_act, PAPER_INPUT) / count_flops(dense, PAPER_INPUT)
    param_ratio = count_parameters(with_act) / count_parameters(dense)
    assert abs(flop_ratio / (42.40 / 115.10) - 1) < 0.05
    assert abs(param_ratio / (0.34 / 1.78) - 1) < 0.05
