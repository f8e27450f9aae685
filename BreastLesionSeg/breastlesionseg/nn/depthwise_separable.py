"""3D depthwise-separable convolution (Wang et al. 2025, section 2.2, Figure 2)."""
from __future__ import annotations

import torch
from torch import nn


class DepthwiseSeparableConv3d(nn.Module):
    """A k x k x k depthwise convolution followed by a 1 x 1 x 1 pointwise convolution.

    Parameters (without biases): ``C_in * k**3 + C_in * C_out`` (paper eq. 1) instead of
    ``C_in * k**3 * C_out`` for a dense convolution (eq. 3).

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, D', H', W')`` with ``D' = ceil(D / stride)`` ("same" padding).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: k of the depthwise stage (odd).
        stride: stride of the depthwise stage.
        mid: optional module applied between the depthwise and pointwise stages (the CEC unit
            puts its norm + activation here); identity when ``None``.
        bias: add a bias to the pointwise stage.
        depthwise_bias: add a bias to the depthwise stage; default: only when ``mid`` is ``None``
            (a following instance/batch norm makes it redundant).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 mid: nn.Module | None = None, bias: bool = True, depthwise_bias: bool | None = None) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd; got {kernel_size}")
        self.depthwise = nn.Conv3d(in_channels, in_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                                   groups=in_channels,
                                   bias=(mid is None) if depthwise_bias is None else depthwise_bias)
        self.mid = mid if mid is not None else nn.Identity()
        self.pointwise = nn.Conv3d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, D, H, W) -> (N, C_out, D', H', W')."""
        return self.pointwise(self.mid(self.depthwise(x)))
