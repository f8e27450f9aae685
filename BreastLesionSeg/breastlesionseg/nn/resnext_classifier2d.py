"""Small ResNeXt-style 2D classifier (SE-ResNeXt bottlenecks, 32 groups) giving one logit per image.

Built from MONAI's ``SEResNeXtBottleneck`` (Xie et al., "Aggregated Residual Transformations for Deep Neural
Networks", 2017; Hu et al., "Squeeze-and-Excitation Networks", 2018), the block of the 32x4d classifier in
the U2NET-Lite breast-ultrasound paper, at a size trainable from scratch on a CPU
(:class:`~breastlesionseg.nn.config2d.ResNeXtClassifier2DConfig`).
"""
from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from monai.networks.blocks.squeeze_and_excitation import SEResNeXtBottleneck
from torch import nn

from .config2d import ResNeXtClassifier2DConfig


def _block(config: ResNeXtClassifier2DConfig, in_channels: int, planes: int, stride: int) -> nn.Module:
    """One SE-ResNeXt bottleneck with a projection shortcut (output channels ``4 * planes``)."""
    shortcut = Convolution(2, in_channels, planes * 4, strides=stride, kernel_size=1, act=None, norm="batch", bias=False)
    return SEResNeXtBottleneck(2, in_channels, planes, groups=config.groups, reduction=config.reduction,
                               stride=stride, downsample=shortcut, base_width=config.base_width)


class ResNeXtClassifier2D(nn.Module):
    """Stem (3 x 3, stride 2) -> SE-ResNeXt bottlenecks -> global average pool -> dropout -> linear.

    Shapes: ``(N, in_channels, H, W) -> (N,)`` logits (any H, W >= 8).
    """

    def __init__(self, config: ResNeXtClassifier2DConfig | None = None) -> None:
        super().__init__()
        self.config = config or ResNeXtClassifier2DConfig()
        self.in_channels = self.config.in_channels
        self.stem = Convolution(2, self.config.in_channels, self.config.stem_channels, strides=2, kernel_size=3,
                                act="relu", norm="batch", bias=False)
        blocks, channels = [], self.config.stem_channels
        for planes, stride in zip(self.config.planes, self.config.strides):
            blocks.append(_block(self.config, channels, planes, stride))
            channels = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(self.config.dropout),
                                  nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,) of an (N, C, H, W) batch."""
        return self.head(self.blocks(self.stem(x)))[:, 0]
