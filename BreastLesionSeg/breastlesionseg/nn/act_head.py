"""Auxiliary classification task (ACT) head: lesion absent / present (Wang et al. 2025, section 2.5, Figure 5)."""
from __future__ import annotations

import torch
from torch import nn

from .norm_act import make_activation


class ACTHead(nn.Module):
    """3x3x3 convolution -> activation -> global max pooling -> linear -> 2 logits.

    Attached to the last encoder module. ``logits[:, 1]`` is "lesion present", ``logits[:, 0]`` "absent";
    train with cross-entropy (Wang et al. 2025, section 2.7).

    Shapes: ``(N, C, D, H, W) -> (N, 2)``.

    Args:
        in_channels: C of the encoder's last feature map.
        hidden_channels: output channels of the 3x3x3 convolution.
        num_classes: logits (2: absent / present).
        activation, negative_slope: non-linearity after the convolution.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 8, num_classes: int = 2,
                 activation: str = "leakyrelu", negative_slope: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, hidden_channels, 3, padding=1)
        self.activation = make_activation(activation, negative_slope)
        self.pool = nn.AdaptiveMaxPool3d(1)
        self.linear = nn.Linear(hidden_channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) encoder features -> (N, 2) logits."""
        y = self.pool(self.activation(self.conv(features)))
        return self.linear(torch.flatten(y, 1))
