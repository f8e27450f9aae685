"""2D depthwise-separable convolution block with batch norm and ReLU6 (attention U-Net for breast ultrasound)."""
from __future__ import annotations

import torch
from torch import nn


class SeparableConvBNReLU6(nn.Module):
    """3 x 3 depthwise convolution, 1 x 1 pointwise convolution, batch norm, ReLU6.

    Parameters: ``C_in * 9`` (depthwise, no bias) + ``C_in * C_out`` (pointwise, no bias)
    + ``2 * C_out`` (batch norm), instead of ``9 * C_in * C_out`` for a dense 3 x 3 convolution.

    Shapes: ``(N, C_in, H, W) -> (N, C_out, H, W)``.

    Args:
        in_channels: C_in.
        out_channels: C_out.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        return self.act(self.norm(self.pointwise(self.depthwise(x))))


class DoubleSeparableConv(nn.Sequential):
    """Two :class:`SeparableConvBNReLU6` in a row (one U-Net level): ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(SeparableConvBNReLU6(in_channels, out_channels), SeparableConvBNReLU6(out_channels, out_channels))


def separable_block_parameters(in_channels: int, out_channels: int) -> int:
    """Closed-form parameter count of :class:`DoubleSeparableConv` (for tests and model-summary)."""
    first = in_channels * 9 + in_channels * out_channels + 2 * out_channels
    second = out_channels * 9 + out_channels * out_channels + 2 * out_channels
    return first + second
