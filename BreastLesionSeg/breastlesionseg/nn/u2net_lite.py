"""U2NET-Lite: U^2-Net "small" (Qin et al., "U^2-Net: Going deeper with nested U-structure for salient
object detection", 2020), the 4.7 MB segmentation network of the U2NET-Lite breast-ultrasound paper.

Nested U-structure: every stage is a residual U-block (RSU-L, a small U-Net of depth L whose output is
added to its input projection); RSU-4F replaces pooling by dilation. Six side outputs are fused by a
1 x 1 convolution. Here the network also has the two image-level heads (lesion present, malignancy) on
the deepest stage, so it is a drop-in alternative to the attention U-Net.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config2d import U2NetLiteConfig
from .multitask_output import ImageLevelHeads, MultiTaskOutput


class ConvBNReLU(nn.Sequential):
    """3 x 3 (dilated) convolution with bias, batch norm, ReLU: ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _upsample_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block RSU-L (``depth`` = L), pooling between its encoder levels.

    Shapes: ``(N, C_in, H, W) -> (N, C_out, H, W)``.
    """

    def __init__(self, depth: int, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__()
        self.input = ConvBNReLU(in_channels, out_channels)
        self.encoder = nn.ModuleList([ConvBNReLU(out_channels, mid_channels)]
                                     + [ConvBNReLU(mid_channels, mid_channels) for _ in range(depth - 2)])
        self.bottom = ConvBNReLU(mid_channels, mid_channels, dilation=2)
        self.decoder = nn.ModuleList([ConvBNReLU(2 * mid_channels, mid_channels) for _ in range(depth - 2)]
                                     + [ConvBNReLU(2 * mid_channels, out_channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        residual = self.input(x)
        skips, y = [], residual
        for index, level in enumerate(self.encoder):
            if index > 0:
                y = F.max_pool2d(y, 2, ceil_mode=True)
            y = level(y)
            skips.append(y)
        y = self.bottom(y)
        for index, (level, skip) in enumerate(zip(self.decoder, reversed(skips))):
            if index > 0:
                y = _upsample_like(y, skip)
            y = level(torch.cat([y, skip], dim=1))
        return y + residual


class RSU4F(nn.Module):
    """RSU-4F: the residual U-block with dilations 1, 2, 4, 8 instead of pooling (same resolution throughout)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__()
        self.input = ConvBNReLU(in_channels, out_channels)
        self.encoder = nn.ModuleList([ConvBNReLU(out_channels, mid_channels, 1), ConvBNReLU(mid_channels, mid_channels, 2),
                                      ConvBNReLU(mid_channels, mid_channels, 4)])
        self.bottom = ConvBNReLU(mid_channels, mid_channels, 8)
        self.decoder = nn.ModuleList([ConvBNReLU(2 * mid_channels, mid_channels, 4), ConvBNReLU(2 * mid_channels, mid_channels, 2),
                                      ConvBNReLU(2 * mid_channels, out_channels, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        residual = self.input(x)
        skips, y = [], residual
        for level in self.encoder:
            y = level(y)
            skips.append(y)
        y = self.bottom(y)
        for level, skip in zip(self.decoder, reversed(skips)):
            y = level(torch.cat([y, skip], dim=1))
        return y + residual


class U2NetLite(nn.Module):
    """U^2-Net small with image-level heads: ``(N, C_in, H, W) -> MultiTaskOutput``.

    ``seg_logits`` is the fused map; :meth:`forward_with_sides` also returns the six side-output logits
    for deep supervision. With the default config (mid 16, out 64) the segmentation part has ~1.13 M
    parameters (4.5 MB as float32), the 4.7 MB of the U2NET-Lite paper.
    """

    def __init__(self, config: U2NetLiteConfig | None = None) -> None:
        super().__init__()
        self.config = config or U2NetLiteConfig()
        c_in, mid, out = self.config.in_channels, self.config.mid_channels, self.config.out_channels
        self.in_channels = c_in
        self.stages = nn.ModuleList([RSU(7, c_in, mid, out), RSU(6, out, mid, out), RSU(5, out, mid, out),
                                     RSU(4, out, mid, out), RSU4F(out, mid, out), RSU4F(out, mid, out)])
        self.decoder = nn.ModuleList([RSU4F(2 * out, mid, out), RSU(4, 2 * out, mid, out), RSU(5, 2 * out, mid, out),
                                      RSU(6, 2 * out, mid, out), RSU(7, 2 * out, mid, out)])
        self.sides = nn.ModuleList([nn.Conv2d(out, 1, 3, padding=1) for _ in range(6)])
        self.fuse = nn.Conv2d(6, 1, 1)
        self.heads = ImageLevelHeads(out, self.config.dropout)

    def forward_with_sides(self, x: torch.Tensor) -> tuple[MultiTaskOutput, list[torch.Tensor]]:
        """Output and the six side logits (each (N, 1, H, W), finest first)."""
        encoded, y = [], x
        for index, stage in enumerate(self.stages):
            if index > 0:
                y = F.max_pool2d(y, 2, ceil_mode=True)
            y = stage(y)
            encoded.append(y)
        lesion_logit, malignancy_logit = self.heads(y)
        decoded = [y]
        for stage, skip in zip(self.decoder, reversed(encoded[:-1])):
            y = stage(torch.cat([_upsample_like(y, skip), skip], dim=1))
            decoded.append(y)
        sides = [_upsample_like(side(feature), x) for side, feature in zip(self.sides, reversed(decoded))]
        fused = self.fuse(torch.cat(sides, dim=1))
        return MultiTaskOutput(fused, lesion_logit, malignancy_logit), sides

    def forward(self, x: torch.Tensor) -> MultiTaskOutput:
        """(N, C_in, H, W) -> MultiTaskOutput."""
        return self.forward_with_sides(x)[0]

    @property
    def gradcam_layer(self) -> nn.Module:
        """The deepest stage (feeds the image-level heads)."""
        return self.stages[-1]

    def segmentation_parameters(self) -> int:
        """Parameters without the image-level heads (what the paper's 4.7 MB counts)."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("heads."))
