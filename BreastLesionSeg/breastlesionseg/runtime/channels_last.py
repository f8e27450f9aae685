"""Eager PyTorch with the network and its inputs in channels_last_3d memory."""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from .backend import Backend, RunnableNetwork
from .eager import _EagerNetwork


class ChannelsLastBackend(Backend):
    """Eager PyTorch on a copy of the network in ``channels_last_3d`` memory.

    Measured on the 2-core EPYC: depthwise 3x3x3 alone is ~2.5x faster channels-last, but the
    whole eager MM-3DUNet is not faster (instance norm and layout copies lose the gain; see
    benchmarks/README.md). Kept as a measured option for GPUs and other CPUs.
    """

    name = "channels_last"
    description = "eager PyTorch float32, channels_last_3d memory"
    atol = 1e-4
    rtol = 1e-4
    devices = ("cpu", "cuda")

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """A channels-last copy of ``module`` (the original keeps its memory format)."""
        net = copy.deepcopy(module).eval().to(memory_format=torch.channels_last_3d)
        return _EagerNetwork(net, self.name, channels_last=True)
