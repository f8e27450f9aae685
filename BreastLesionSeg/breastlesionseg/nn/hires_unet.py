"""Lightweight high-resolution 2D U-Net for mammography (Tardy & Mateus), and its parameter progression.

One class builds every variant of the paper's progression (deep standard U-Net -> fewer filters ->
separable convolutions -> short residual connections); :mod:`.hires_unet_config` states the layout
assumptions and names the variants. ``breastlesionseg model-summary hires-unet --variant NAME`` prints them.

Contract: ``forward(x (N, C, H, W)) -> lesion logits (N, L, H, W)`` for any H, W >= 1: the input is
zero-padded at the bottom/right to a multiple of ``2 ** (levels - 1)`` and the logits are cropped back.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from .hires_level2d import HiResLevel2d
from .hires_unet_config import HiResUNetConfig


def up_conv2d(in_channels: int, out_channels: int, separable: bool) -> nn.Module:
    """2 x 2 transposed convolution, stride 2 (bias); separable: depthwise 2 x 2 transposed + pointwise 1 x 1.

    Shapes: ``(N, C_in, H, W) -> (N, C_out, 2H, 2W)``.
    """
    if not separable:
        return Convolution(2, in_channels, out_channels, strides=2, kernel_size=2, is_transposed=True,
                           conv_only=True, padding=0, output_padding=0)
    return nn.Sequential(
        Convolution(2, in_channels, in_channels, strides=2, kernel_size=2, is_transposed=True, groups=in_channels,
                    bias=False, conv_only=True, padding=0, output_padding=0),
        Convolution(2, in_channels, out_channels, kernel_size=1, conv_only=True),
    )


class HiResUNet2D(nn.Module):
    """The U-Net family of Tardy & Mateus (layout in :mod:`.hires_unet_config`).

    Attributes:
        config: the :class:`HiResUNetConfig` it was built from.
        in_channels: C.
        out_channels: L.
        size_multiple: ``2 ** (levels - 1)``.
        bottleneck: the deepest level module (hook it for Grad-CAM).
    """

    def __init__(self, config: HiResUNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or HiResUNetConfig()
        self.config = cfg
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.size_multiple = cfg.downsampling_factor
        w = cfg.widths
        level = dict(separable=cfg.separable, residual=cfg.residual, norm=cfg.norm)
        inputs = (cfg.in_channels,) + w[:-2]
        self.encoders = nn.ModuleList(HiResLevel2d(a, b, cfg.convs_per_level, **level) for a, b in zip(inputs, w[:-1]))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = HiResLevel2d(w[-2], w[-1], cfg.bottleneck_convs, **level)
        self.ups = nn.ModuleList(up_conv2d(w[k + 1], w[k], cfg.separable) for k in reversed(range(len(w) - 1)))
        self.decoders = nn.ModuleList(
            HiResLevel2d(2 * w[k], w[k], cfg.convs_per_level, shortcut_channels=w[k], **level)
            for k in reversed(range(len(w) - 1))
        )
        self.head = Convolution(2, w[0], cfg.out_channels, kernel_size=1, conv_only=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float image -> (N, L, H, W) lesion logits (probability = sigmoid)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"HiResUNet2D expects (N, {self.in_channels}, H, W); got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-height) % m, (-width) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        skips: List[torch.Tensor] = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            upsampled = up(x)
            x = decoder(torch.cat([upsampled, skip], dim=1), upsampled)
        return self.head(x)[..., :height, :width]
