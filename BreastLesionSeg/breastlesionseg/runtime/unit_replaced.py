"""An inference-only MM-3DUNet whose CEC units are replaced by faster implementations (shared base).

:class:`~breastlesionseg.runtime.fused_cec.FastMM3DUNet` (channels-last PyTorch) and
:class:`~breastlesionseg.runtime.native_cec.NativeMM3DUNet` (fused C++) walk the U-Net the same way and
differ only in the unit implementation and a few layer hooks (input layout, pooling, upsampling, head).
They share the trained network's parameters and keep its output contract (``forward`` /
``forward_with_aux``, odd sizes padded and cropped back by :class:`~breastlesionseg.nn.base.SegmentationNetwork`).
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..nn.base import SegmentationNetwork
from ..nn.cec_unit import CECUnit
from ..nn.mm3dunet import MM3DUNet


def check_supported(module: nn.Module) -> MM3DUNet:
    """Return ``module`` as an MM3DUNet the fused paths can run, or raise InputError saying why not."""
    if not isinstance(module, MM3DUNet):
        raise InputError(f"the fused CEC backend runs MM3DUNet networks only; got {type(module).__name__}")
    cfg = module.config
    if cfg.norm != "instance" or cfg.activation != "leakyrelu":
        raise InputError(
            "the fused CEC backend needs norm='instance' and activation='leakyrelu' (the paper's CEC unit); "
            f"this network has norm={cfg.norm!r}, activation={cfg.activation!r}"
        )
    return module


class _Call(nn.Module):
    """A layer that calls a function (one of the owning network's hooks)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _DecoderLevel(nn.Module):
    """``level(x, skip)`` of :meth:`SegmentationNetwork._forward_padded`: upsample, join the skip, run the units."""

    def __init__(self, up: nn.Module, units: nn.ModuleList, up_fn: Callable, concat_fn: Callable) -> None:
        super().__init__()
        self.up = up
        self.units = units
        self.up_fn = up_fn
        self.concat_fn = concat_fn

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.concat_fn(self.up_fn(self.up, x), skip)
        for unit in self.units:
            x = unit(x)
        return x


class UnitReplacedMM3DUNet(SegmentationNetwork):
    """MM-3DUNet with every CEC unit wrapped by ``make_unit`` (inference only, no autograd).

    The U-Net pass is :meth:`SegmentationNetwork._forward_padded`; this class only fills its layers
    (``encoders``, ``pool``, ``bottleneck``, ``decoder``, ``head``) with the replaced units and the hooks below.

    Args:
        net: a trained MM3DUNet in eval mode (parameters shared, not copied).
        make_unit: ``f(unit) -> module`` with the unit's ``(N, C_in, D, H, W) -> (N, C_out, D, H, W)`` contract.

    Attributes:
        enc, bott, dec: the replaced units per encoder level, of the bottleneck and per decoder level.

    Raises:
        InputError: unsupported network config (see :func:`check_supported`).
    """

    def __init__(self, net: nn.Module, make_unit: Callable[[CECUnit], nn.Module]) -> None:
        net = check_supported(net)
        super().__init__(net.in_channels, net.out_channels, net.size_multiple, net.pad_mode)
        self.net = net
        self.config = net.config
        self.enc = nn.ModuleList([nn.ModuleList([make_unit(u) for u in e]) for e in net.encoders])
        self.bott = nn.ModuleList([make_unit(u) for u in net.bottleneck])
        self.dec = nn.ModuleList([nn.ModuleList([make_unit(u) for u in lvl.units]) for lvl in net.decoder])
        # the layers SegmentationNetwork._forward_padded runs
        self.encoders = nn.ModuleList([nn.Sequential(*units) for units in self.enc])
        self.pool = _Call(self._pool)
        self.bottleneck = nn.Sequential(*self.bott)
        self.act_head = net.act_head
        self.decoder = nn.ModuleList([_DecoderLevel(lvl.up, units, self._up, self._concat)
                                      for lvl, units in zip(net.decoder, self.dec)])
        self.head = _Call(self._head)

    # hooks (overridden by the implementations)
    def _enter(self, x: torch.Tensor) -> torch.Tensor:
        """The padded input in the layout the units want."""
        return x.contiguous()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.pool(x)

    def _up(self, up: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return up(x)

    def _concat(self, up: torch.Tensor, skip: torch.Tensor):
        """The decoder's input: the upsampled features and the skip along channels (what the level's first
        unit receives; an implementation may hand over the pair without copying)."""
        return torch.cat([up, skip], dim=1)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.head(x).contiguous()

    @torch.no_grad()
    def _forward_padded(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return super()._forward_padded(self._enter(x))

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :meth:`~breastlesionseg.nn.base.SegmentationNetwork.forward_with_aux`; always without autograd."""
        with torch.no_grad():
            seg, act = super().forward_with_aux(x)
        return seg.contiguous(), act
