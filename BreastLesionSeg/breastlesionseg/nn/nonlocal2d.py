"""Non-local (self-attention) block, 2D, embedded-Gaussian form (Wang et al., "Non-local Neural Networks", 2018)."""
from __future__ import annotations

import torch
from torch import nn


class NonLocal2d(nn.Module):
    """Every pixel attends to every other pixel; residual output ``x + W(softmax(theta^T phi) g)``.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``; memory grows as ``(H * W)**2``, so it is used at the
    bottleneck only.

    Parameters: three ``C -> C/2`` 1 x 1 projections with bias, one ``C/2 -> C`` output projection
    without bias, batch norm on the output (``2 * C``).

    Args:
        channels: C (even).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 2)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.norm.weight)  # starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        n, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # (N, HW, C/2)
        key = self.phi(x).flatten(2)  # (N, C/2, HW)
        value = self.g(x).flatten(2).transpose(1, 2)  # (N, HW, C/2)
        attention = torch.softmax(query @ key, dim=-1)
        mixed = (attention @ value).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.norm(self.out(mixed))


def nonlocal_parameters(channels: int) -> int:
    """Closed-form parameter count of :class:`NonLocal2d`."""
    inner = max(1, channels // 2)
    return 3 * (channels * inner + inner) + inner * channels + 2 * channels
