"""Reference backend: eager PyTorch float32 in NCDHW memory."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .backend import Backend, RunnableNetwork, forward_with_aux


class _EagerNetwork(RunnableNetwork):
    def __init__(self, net: nn.Module, name: str, channels_last: bool) -> None:
        super().__init__(getattr(net, "in_channels", 0), getattr(net, "out_channels", 0))
        self.net = net
        self.backend_name = name
        self.channels_last = channels_last

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork`."""
        with torch.no_grad():
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            seg, act = forward_with_aux(self.net, x)
        return seg.contiguous(), act


class EagerBackend(Backend):
    """The network as it is (eval mode, no autograd): the reference every other backend is checked against."""

    name = "eager"
    description = "eager PyTorch float32, NCDHW memory (reference)"
    atol = 0.0
    rtol = 0.0
    devices = ("cpu", "cuda")

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Wrap ``module`` (shared, not copied)."""
        return _EagerNetwork(module.eval(), self.name, channels_last=False)
