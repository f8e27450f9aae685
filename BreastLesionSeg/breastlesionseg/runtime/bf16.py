"""Reduced-precision CPU backend: eager PyTorch under bfloat16 autocast (opt-in, not exact)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .backend import Backend, RunnableNetwork, forward_with_aux

#: documented tolerance of bf16 autocast logits against eager float32 (bf16 keeps 8 mantissa bits)
BF16_ATOL = 0.1
BF16_RTOL = 0.05


class _Bf16Network(RunnableNetwork):
    backend_name = "bf16"

    def __init__(self, net: nn.Module) -> None:
        super().__init__(getattr(net, "in_channels", 0), getattr(net, "out_channels", 0))
        self.net = net

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork`; outputs are cast back to float32."""
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            seg, act = forward_with_aux(self.net, x)
        return seg.float().contiguous(), (act.float() if act is not None else None)


class Bf16AutocastBackend(Backend):
    """``torch.autocast("cpu", bfloat16)`` around the eager network.

    Not auto-selected (``exact = False``): logits differ from float32 by up to ``BF16_ATOL +
    BF16_RTOL * |logit|``; use it only by name after checking the segmentation metrics.
    """

    name = "bf16"
    description = "eager PyTorch under CPU bfloat16 autocast (reduced precision, opt-in)"
    atol = BF16_ATOL
    rtol = BF16_RTOL
    exact = False
    devices = ("cpu",)

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Wrap ``module`` (shared, not copied)."""
        return _Bf16Network(module.eval())
