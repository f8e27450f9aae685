"""Building blocks: depthwise-separable conv (paper eq. 1), CEC unit and its inverted residual, ACT head."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.nn.act_head import ACTHead
from breastlesionseg.nn.cec_unit import CECUnit
from breastlesionseg.nn.depthwise_separable import DepthwiseSeparableConv3d


def test_depthwise_separable_parameter_count_matches_paper_eq1():
    c_in, c_out, k = 6, 10, 3
    conv = DepthwiseSeparableConv3d(c_in, c_out, k, bias=False, depthwise_bias=False)
    assert sum(p.numel() for p in conv.parameters()) == c_in * k**3 + c_in * c_out  # eq. (1)
    assert conv.depthwise.groups == c_in
    y = conv(torch.randn(2, c_in, 5, 7, 9))
    assert y.shape == (2, c_out, 5, 7, 9)


def test_depthwise_separable_equals_depthwise_then_pointwise():
    torch.manual_seed(0)
    conv = DepthwiseSeparableConv3d(3, 4, 3, bias=False, depthwise_bias=False)
    x = torch.randn(1, 3, 5, 6, 7)
    dw = torch.nn.functional.conv3d(x, conv.depthwise.weight, padding=1, groups=3)
    expected = torch.nn.functional.conv3d(dw, conv.pointwise.weight)
    torch.testing.assert_close(conv(x), expected)


def test_cec_unit_structure_and_shapes():
    unit = CECUnit(4, 8, expansion=6)
    assert unit.hidden_channels == 24
    assert unit.expand[0].in_channels == 4 and unit.expand[0].out_channels == 24
    assert unit.separable.depthwise.groups == 24 and unit.separable.depthwise.kernel_size == (3, 3, 3)
    assert unit.separable.pointwise.out_channels == 8
    # expand and depthwise stages: InstanceNorm + LeakyReLU; projection linear (the last module is the conv)
    assert isinstance(unit.expand[1][0], torch.nn.InstanceNorm3d) and isinstance(unit.expand[1][1], torch.nn.LeakyReLU)
    assert isinstance(unit.separable.mid[0], torch.nn.InstanceNorm3d)
    assert isinstance(unit.separable.mid[1], torch.nn.LeakyReLU)
    assert unit(torch.randn(1, 4, 5, 6, 7)).shape == (1, 8, 5, 6, 7)


@pytest.mark.parametrize("c_in,c_out,stride,residual", [(8, 8, 1, True), (4, 8, 1, False), (8, 8, 2, False)])
def test_inverted_residual_only_when_channels_match(c_in, c_out, stride, residual):
    torch.manual_seed(0)
    unit = CECUnit(c_in, c_out, expansion=2, stride=stride)
    assert unit.use_residual is residual
    x = torch.randn(1, c_in, 6, 6, 6)
    y = unit(x)
    without = unit.separable(unit.expand(x))
    if residual:
        torch.testing.assert_close(y, without + x)
    else:
        torch.testing.assert_close(y, without)


def test_act_head_shape_and_global_max_pooling():
    torch.manual_seed(0)
    head = ACTHead(16, hidden_channels=8)
    feats = torch.randn(3, 16, 2, 4, 5)
    logits = head(feats)
    assert logits.shape == (3, 2)
    # global max pooling: the logits depend on the maximum, not on the position of a feature
    rolled = torch.roll(feats, shifts=(1, 2), dims=(3, 4))
    z = head.activation(head.conv(feats)).amax(dim=(2, 3, 4))
    torch.testing.assert_close(logits, head.linear(z))
    assert not torch.allclose(head(rolled), torch.zeros(3, 2))
