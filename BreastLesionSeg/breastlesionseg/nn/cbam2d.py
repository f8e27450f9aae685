"""Convolutional Block Attention Module, 2D (Woo et al., "CBAM: Convolutional Block Attention Module", 2018)."""
from __future__ import annotations

import torch
from torch import nn


class ChannelAttention2d(nn.Module):
    """Channel attention: a shared 2-layer MLP over global average- and max-pooled features, sigmoid gate.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)`` (input scaled per channel).

    Args:
        channels: C.
        reduction: hidden width is ``max(1, C // reduction)``.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the channels of ``x`` (N, C, H, W)."""
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        peak = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + peak)


class SpatialAttention2d(nn.Module):
    """Spatial attention: a 7 x 7 convolution over the channel-wise mean and max maps, sigmoid gate.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)`` (input scaled per pixel).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the pixels of ``x`` (N, C, H, W)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM2d(nn.Module):
    """Channel attention followed by spatial attention: ``(N, C, H, W) -> (N, C, H, W)``.

    Parameters: ``2 * C * max(1, C // reduction)`` (MLP) + 98 (7 x 7 x 2 spatial convolution).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.channel = ChannelAttention2d(channels, reduction)
        self.spatial = SpatialAttention2d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine ``x`` (N, C, H, W)."""
        return self.spatial(self.channel(x))


def cbam_parameters(channels: int, reduction: int = 8) -> int:
    """Closed-form parameter count of :class:`CBAM2d`."""
    return 2 * channels * max(1, channels // reduction) + 2 * 7 * 7
