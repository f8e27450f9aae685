"""The ACT head's convolution as a matrix product (runtime/act_head_matmul.py) against the head itself."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn.act_head import ACTHead
from breastlesionseg.runtime.act_head_matmul import MatmulACTHead


@pytest.mark.parametrize("shape,bias", [((2, 6, 3, 5, 7), True), ((1, 4, 1, 2, 9), False)])  # odd sizes, depth 1
def test_matches_the_head_with_its_convolution(shape, bias):
    torch.manual_seed(0)
    head = ACTHead(shape[1], hidden_channels=5).eval()
    if not bias:
        head.conv.bias = None
    x = torch.randn(*shape) * 2.0 + 0.3
    with torch.no_grad():
        ref = head(x)
    got = MatmulACTHead(head)(x)
    assert got.shape == ref.shape == (shape[0], 2)
    assert float((got - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))
    # a wrong tap order or shift changes the logits: a single-voxel impulse checks each tap's position
    impulse = torch.zeros(1, shape[1], 3, 3, 3)
    impulse[0, 0, 0, 1, 2] = 1.0
    with torch.no_grad():
        assert torch.allclose(MatmulACTHead(head)(impulse), head(impulse), atol=1e-6)


def test_other_convolutions_are_refused():
    head = ACTHead(4)
    head.conv = torch.nn.Conv3d(4, 8, 3, padding=2, dilation=2)
    with pytest.raises(InputError, match="dilation"):
        MatmulACTHead(head)
