"""Reference backend: the network as it is, eager PyTorch (float16 autocast on CUDA is applied by the sliding window)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .backend import Backend, RunnableNetwork, forward_with_aux


class _EagerNetwork(RunnableNetwork):
    backend_name = "eager"

    def __init__(self, net: nn.Module) -> None:
        super().__init__(getattr(net, "in_channels", 0), getattr(net, "out_channels", 0))
        self.net = net

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork`."""
        with torch.no_grad():
            return forward_with_aux(self.net, x)


class EagerBackend(Backend):
    """The network in eval mode without autograd: the reference every other backend is checked against."""

    name = "eager"
    devices = ("cpu", "cuda")

    def prepare(self, module: nn.Module, window_shape: Sequence[int], model_dir: Path | None = None,
                card=None) -> RunnableNetwork:
        """Wrap ``module`` (shared, not copied)."""
        return _EagerNetwork(module.eval())
