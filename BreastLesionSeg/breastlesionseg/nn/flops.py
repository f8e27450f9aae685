"""Parameter and FLOP counts (Wang et al. 2025, Table 1 convention: one multiply-add = 2 FLOPs).

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on the ``meta`` device, so
counting the paper's 1 x 1 x 32 x 256 x 256 input costs no compute and no memory. The counter
registers convolutions (dense, depthwise, transposed), linear layers and matrix products, at
2 FLOPs per multiply-add; it does **not** count normalisation, activations, pooling, padding,
bias additions or residual additions (all O(elements) and < 2% of the total here). Every network is
counted the same way, so comparisons are consistent.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import InputError


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


def count_flops(module: nn.Module, input_shape: Sequence[int], with_aux: bool = True) -> int:
    """FLOPs (2 per multiply-add) of one forward pass at ``input_shape`` = (N, C, D, H, W).

    The module is copied to the ``meta`` device; the original is left untouched.

    Args:
        module: a network with ``forward`` / ``forward_with_aux``.
        input_shape: full input shape including batch and channels.
        with_aux: count ``forward_with_aux`` (includes the ACT head) instead of ``forward``.

    Raises:
        InputError: ``input_shape`` is not 5 positive integers.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 5 or any(s < 1 for s in shape):
        raise InputError(f"input_shape must be 5 positive integers (N, C, D, H, W); got {tuple(input_shape)}")
    meta = copy.deepcopy(module).to("meta")
    x = torch.empty(shape, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        if with_aux and hasattr(meta, "forward_with_aux"):
            meta.forward_with_aux(x)
        else:
            meta(x)
    return int(counter.get_total_flops())
