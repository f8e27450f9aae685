"""Channel expansion convolution (CEC) unit with inverted residual (Wang et al. 2025, sections 2.3-2.4)."""
from __future__ import annotations

import torch
from torch import nn

from .depthwise_separable import DepthwiseSeparableConv3d
from .norm_act import NormAct


class CECUnit(nn.Module):
    """Expand -> depthwise -> project, with an inverted residual when shapes allow it.

    Stages (Figure 3 of Wang et al. 2025):

    1. 1x1x1 convolution ``C_in -> t * C_in``, then norm + activation (paper: InstanceNorm + LeakyReLU);
    2. 3x3x3 depthwise convolution on the ``t * C_in`` channels, then norm + activation;
    3. 1x1x1 projection ``t * C_in -> C_out``, linear (no activation, no norm).

    Stages 2-3 are a :class:`DepthwiseSeparableConv3d` with the norm + activation in between.
    The input is added to the output (inverted residual, Figure 4) only when ``C_in == C_out`` and
    ``stride == 1``; :attr:`use_residual` says which.

    Shapes: ``(N, C_in, D, H, W) -> (N, C_out, D/stride, H/stride, W/stride)``.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        expansion: t (>= 1); the expanded width is ``t * C_in``.
        stride: stride of the depthwise stage.
        norm, activation, negative_slope, norm_groups: see :class:`~breastlesionseg.nn.config.MM3DUNetConfig`.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: int = 6, stride: int = 1,
                 norm: str = "instance", activation: str = "leakyrelu", negative_slope: float = 0.01,
                 norm_groups: int = 4) -> None:
        super().__init__()
        if expansion < 1:
            raise ValueError(f"expansion must be >= 1; got {expansion}")
        hidden = in_channels * expansion
        with_bias = norm not in ("instance", "batch")  # per-channel norms absorb a bias
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden
        self.expand = nn.Sequential(
            nn.Conv3d(in_channels, hidden, 1, bias=with_bias),
            NormAct(hidden, norm, activation, negative_slope, norm_groups),
        )
        self.separable = DepthwiseSeparableConv3d(
            hidden, out_channels, kernel_size=3, stride=stride,
            mid=NormAct(hidden, norm, activation, negative_slope, norm_groups), bias=True, depthwise_bias=with_bias,
        )
        self.use_residual: bool = in_channels == out_channels and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, D, H, W) -> (N, C_out, D', H', W')."""
        y = self.separable(self.expand(x))
        if self.use_residual:
            y = y + x
        return y
