"""Folding eval-mode batch norms into the convolutions that feed them (inference only).

In eval mode a batch norm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution with
rescaled weights and a bias (PyTorch's :func:`torch.nn.utils.fusion.fuse_conv_bn_eval` does the arithmetic).
The pairs are found by running one example through the network and noting which batch norm receives a
convolution's output tensor, so every network of the package (MONAI blocks, separable convolutions, plain
``nn.Sequential``) is handled without knowing its module layout. The folded copy is accepted only when
its outputs on the example match the original's; otherwise the original is kept.

A folded network has no batch norm left: it is for inference, never for training.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import ModelError

log = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: a folded network's outputs may differ from the original's by at most this (relative to their magnitude)
RELATIVE_TOLERANCE = 1e-4


def fold_batch_norms(network: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of ``network`` with every batch norm that directly follows a convolution folded into it.

    Args:
        network: a network in eval mode (its batch norms use their running statistics).
        example: one input batch the network accepts, e.g. ``(1, C, H, W)``; only used to see which
            convolution feeds which batch norm and to check the folded copy.

    Returns:
        ``(network, number of folded batch norms)``: the folded copy, or ``network`` itself (and 0) when
        nothing could be folded or the copy's outputs differ from the original's by more than
        :data:`RELATIVE_TOLERANCE`.

    Raises:
        ModelError: ``network`` is in training mode (its batch norms are not fixed affine maps yet).
    """
    if network.training:
        raise ModelError("fold_batch_norms: the network is in training mode; batch norms can be folded only in eval mode")
    pairs, original_output = _conv_norm_pairs(network, example)
    if not pairs:
        return network, 0
    folded = copy.deepcopy(network)
    modules = dict(folded.named_modules())
    for conv_name, norm_name in pairs:
        _replace(folded, conv_name, fuse_conv_bn_eval(modules[conv_name], modules[norm_name]))
        _replace(folded, norm_name, nn.Identity())
    with torch.no_grad():
        expected, actual = _tensors(original_output), _tensors(folded(example))
    error = max(float((a.float() - e.float()).abs().max()) for a, e in zip(actual, expected))
    scale = max(float(e.float().abs().max()) for e in expected)
    if len(actual) != len(expected) or error > RELATIVE_TOLERANCE * max(scale, 1.0):
        log.warning("batch norms not folded: the folded network's outputs differ by %.3g (scale %.3g)", error, scale)
        return network, 0
    return folded, len(pairs)


def _conv_norm_pairs(network: nn.Module, example: torch.Tensor) -> tuple[list[tuple[str, str]], Any]:
    """``([(convolution name, batch-norm name)], the network's output)``: the pairs where the batch norm's input is
    the convolution's output tensor, from one pass of ``example``."""
    outputs: dict[int, tuple[str, torch.Tensor]] = {}
    pairs: list[tuple[str, str]] = []

    def conv_hook(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            outputs[id(output)] = (name, output)  # the reference keeps the id unique during the pass
        return hook

    def norm_hook(name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            source = outputs.get(id(inputs[0]))
            if source is not None and module.track_running_stats and module.running_mean is not None:
                pairs.append((source[0], name))
        return hook

    handles = []
    for name, module in network.named_modules():
        if isinstance(module, _CONVS):
            handles.append(module.register_forward_hook(conv_hook(name)))
        elif isinstance(module, _NORMS):
            handles.append(module.register_forward_pre_hook(norm_hook(name)))
    try:
        with torch.no_grad():
            output = network(example)
    finally:
        for handle in handles:
            handle.remove()
    # a convolution feeding two batch norms (or a module called twice) cannot be folded
    convs = [c for c, _ in pairs]
    norms = [n for _, n in pairs]
    return [(c, n) for c, n in dict.fromkeys(pairs) if convs.count(c) == 1 and norms.count(n) == 1], output


def fold_batch_norms_2d(network: nn.Module, size_px: int) -> nn.Module:
    """:func:`fold_batch_norms` of a 2D network (with an ``in_channels`` attribute), checked on a seeded random
    ``(2, in_channels, size_px, size_px)`` example; the folded copy, or ``network`` when nothing was folded."""
    example = torch.rand(2, network.in_channels, size_px, size_px, generator=torch.Generator().manual_seed(0))
    return fold_batch_norms(network, example)[0]


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, module)


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a network output (a tensor, a dataclass, a tuple/list or a dict of them)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if dataclasses.is_dataclass(output):
        output = [getattr(output, f.name) for f in dataclasses.fields(output)]
    elif isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    return []
