"""One level of the lightweight high-resolution U-Net: n (separable) 3 x 3 convolutions + a short residual.

Built from MONAI's :class:`monai.networks.blocks.Convolution` (convolution, norm, ReLU). The ultrasound
network's ``SeparableConvBNReLU6`` is not reused: it fixes ReLU6 and bias-free pointwise convolutions,
whereas this family keeps one activation (ReLU) and one bias convention for its dense and separable variants.
"""
from __future__ import annotations

from typing import Optional

import torch
from monai.networks.blocks import Convolution
from torch import nn


def conv_unit2d(in_channels: int, out_channels: int, separable: bool, norm: str) -> nn.Module:
    """A 3 x 3 convolution (bias) + norm + ReLU; separable: depthwise 3 x 3 (no bias) then pointwise 1 x 1.

    Parameters: dense ``9 * C_in * C_out + C_out``; separable ``9 * C_in + C_in * C_out + C_out``;
    plus ``2 * C_out`` for the norm's scale and shift (``batch`` or affine ``instance``).

    Shapes: ``(N, C_in, H, W) -> (N, C_out, H, W)``.
    """
    norm_layer = ("INSTANCE", {"affine": True}) if norm == "instance" else norm  # same parameters as batch norm
    relu = ("RELU", {"inplace": True})
    if not separable:
        return Convolution(2, in_channels, out_channels, kernel_size=3, act=relu, norm=norm_layer, adn_ordering="NA")
    depthwise = Convolution(2, in_channels, in_channels, kernel_size=3, groups=in_channels, bias=False,
                            conv_only=True)
    pointwise = Convolution(2, in_channels, out_channels, kernel_size=1, act=relu, norm=norm_layer, adn_ordering="NA")
    return nn.Sequential(depthwise, pointwise)


class HiResLevel2d(nn.Module):
    """``n_convs`` convolution units and an optional short residual connection.

    The residual adds the level's shortcut input (the level input by default; the decoder passes its
    up-sampled tensor) to the output, through a 1 x 1 convolution (bias) when the channel counts differ.

    Shapes: ``x (N, C_in, H, W)``, ``shortcut (N, C_s, H, W)`` -> ``(N, C_out, H, W)``.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        n_convs: number of 3 x 3 convolution units.
        separable: depthwise-separable convolutions.
        residual: add the short residual connection.
        norm: ``batch`` or ``instance``.
        shortcut_channels: C_s of the shortcut input (default: C_in).
    """

    def __init__(self, in_channels: int, out_channels: int, n_convs: int, separable: bool, residual: bool,
                 norm: str, shortcut_channels: Optional[int] = None) -> None:
        super().__init__()
        channels = [in_channels] + [out_channels] * n_convs
        self.convs = nn.Sequential(*(conv_unit2d(a, b, separable, norm) for a, b in zip(channels, channels[1:])))
        shortcut_channels = in_channels if shortcut_channels is None else shortcut_channels
        self.residual = residual
        self.projection: nn.Module = nn.Identity()
        if residual and shortcut_channels != out_channels:
            self.projection = Convolution(2, shortcut_channels, out_channels, kernel_size=1, conv_only=True)

    def forward(self, x: torch.Tensor, shortcut: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, C_in, H, W) [+ shortcut (N, C_s, H, W)] -> (N, C_out, H, W)."""
        out = self.convs(x)
        if self.residual:
            out = out + self.projection(x if shortcut is None else shortcut)
        return out
