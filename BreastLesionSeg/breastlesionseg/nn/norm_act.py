"""Normalisation and activation layers named by a network config (one place for the choices)."""
from __future__ import annotations

from torch import nn

from ..errors import InputError


def make_norm(kind: str, channels: int, groups: int = 4) -> nn.Module:
    """The normalisation layer ``kind`` for ``channels`` feature maps of shape (N, C, D, H, W).

    Instance norm is affine (learned scale and shift per channel), as in MONAI's blocks.

    Args:
        kind: ``instance``, ``batch``, ``group`` or ``none`` (identity).
        channels: feature channels C.
        groups: groups for ``group`` norm (clamped so that it divides ``channels``).
    """
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        g = min(groups, channels)
        while channels % g:
            g -= 1
        return nn.GroupNorm(g, channels)
    if kind == "none":
        return nn.Identity()
    raise InputError(f"unknown normalisation {kind!r}; expected instance, batch, group or none")


def make_activation(kind: str, negative_slope: float = 0.01) -> nn.Module:
    """The activation ``kind`` (``leakyrelu`` uses ``negative_slope``)."""
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "gelu":
        return nn.GELU()
    if kind == "silu":
        return nn.SiLU(inplace=True)
    raise InputError(f"unknown activation {kind!r}; expected leakyrelu, relu, gelu or silu")


class NormAct(nn.Sequential):
    """Normalisation followed by activation: (N, C, D, H, W) -> same shape.

    The paper pairs every non-linear stage of the CEC unit with "Leaky ReLU and Instance Norm";
    we apply the norm first (the usual conv -> norm -> act order of MONAI and nnU-Net).
    """

    def __init__(self, channels: int, norm: str = "instance", activation: str = "leakyrelu",
                 negative_slope: float = 0.01, groups: int = 4) -> None:
        super().__init__(make_norm(norm, channels, groups), make_activation(activation, negative_slope))
