"""Attention U-Net 2D with depthwise-separable convolutions, ReLU6 and CBAM / non-local attention.

The architecture of the BUSI breast-ultrasound paper (modified U-Net with depthwise-separable
convolutions, ReLU6, CBAM in the decoder or non-local attention; trained with BCE and Dice losses,
explained with Grad-CAM), trained from scratch here (no ImageNet encoder), plus two image-level heads
on the bottleneck so that one forward pass gives the mask, the lesion-present and the malignancy logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cbam2d import CBAM2d
from .config2d import AttentionUNet2DConfig
from .multitask_output import ImageLevelHeads, MultiTaskOutput
from .nonlocal2d import NonLocal2d
from .separable_conv2d import DoubleSeparableConv, SeparableConvBNReLU6


class DenseStem2d(nn.Sequential):
    """First level: a dense 3 x 3 convolution (a depthwise one on 1 channel sees too little), BN, ReLU6, then
    one separable convolution. ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.ReLU6(inplace=True), SeparableConvBNReLU6(out_channels, out_channels))


class DecoderLevel2d(nn.Module):
    """Nearest-neighbour 2x upsampling (its backward pass is far cheaper on CPU than bilinear), concatenation with the skip, two separable convolutions, optional CBAM.

    Shapes: ``(N, C_low, h, w), (N, C_skip, 2h, 2w) -> (N, C_out, 2h, 2w)``.
    """

    def __init__(self, low_channels: int, skip_channels: int, out_channels: int, use_cbam: bool, reduction: int) -> None:
        super().__init__()
        self.conv = DoubleSeparableConv(low_channels + skip_channels, out_channels)
        self.attention = CBAM2d(out_channels, reduction) if use_cbam else nn.Identity()

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``low`` to ``skip``'s size, fuse, refine."""
        up = F.interpolate(low, size=skip.shape[-2:], mode="nearest")
        return self.attention(self.conv(torch.cat([up, skip], dim=1)))


class AttentionUNet2D(nn.Module):
    """Multi-task attention U-Net: ``(N, C_in, H, W) -> MultiTaskOutput``.

    H and W must be multiples of ``config.downsampling_factor`` (16 for the default 5 levels).
    ``bottleneck`` (output (N, widths[-1], H/16, W/16)) is the layer Grad-CAM reads for the heat map.
    """

    def __init__(self, config: AttentionUNet2DConfig | None = None) -> None:
        super().__init__()
        self.config = config or AttentionUNet2DConfig()
        widths = self.config.widths
        self.in_channels = self.config.in_channels
        self.encoder = nn.ModuleList([DenseStem2d(self.config.in_channels, widths[0])])
        for low, high in zip(widths[:-2], widths[1:-1]):
            self.encoder.append(DoubleSeparableConv(low, high))
        bottleneck: list[nn.Module] = [DoubleSeparableConv(widths[-2], widths[-1])]
        if self.config.attention in ("nonlocal", "both"):
            bottleneck.append(NonLocal2d(widths[-1]))
        self.bottleneck = nn.Sequential(*bottleneck)
        use_cbam = self.config.attention in ("cbam", "both")
        self.decoder = nn.ModuleList()
        low = widths[-1]
        for skip in reversed(widths[:-1]):
            self.decoder.append(DecoderLevel2d(low, skip, skip, use_cbam, self.config.cbam_reduction))
            low = skip
        self.seg_head = nn.Conv2d(widths[0], 1, 1)
        self.heads = ImageLevelHeads(widths[-1], self.config.dropout)

    def forward(self, x: torch.Tensor) -> MultiTaskOutput:
        """(N, C_in, H, W) -> MultiTaskOutput(seg_logits (N, 1, H, W), lesion_logit (N,), malignancy_logit (N,))."""
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        deep = self.bottleneck(x)
        lesion_logit, malignancy_logit = self.heads(deep)
        y = deep
        for level, skip in zip(self.decoder, reversed(skips)):
            y = level(y, skip)
        return MultiTaskOutput(self.seg_head(y), lesion_logit, malignancy_logit)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The module whose output Grad-CAM weighs (the bottleneck, which feeds the image-level heads)."""
        return self.bottleneck
