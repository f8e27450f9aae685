"""Common behaviour of the segmentation networks: input checks, padding odd sizes, the output contract.

Contract (docs/DESIGN.md): ``forward(x) -> seg_logits`` of shape ``(N, L, D, H, W)`` (logits; the
probabilities are ``sigmoid(seg_logits)``) and ``forward_with_aux(x) -> (seg_logits, act_logits)``
with ``act_logits`` of shape ``(N, 2)`` or ``None`` when the network has no ACT head.

Any spatial size works: the input is padded (config ``pad_mode``, split evenly before/after) to the
next multiple of ``size_multiple = 2 ** (levels - 1)`` and the logits are cropped back, so an
odd-sized window gives logits of exactly the input size. The only limit: at least one of D, H, W must
exceed ``size_multiple`` (else the bottleneck is a single voxel, where instance norm is undefined);
sizes that are already multiples of ``size_multiple`` avoid padding work.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationNetwork(nn.Module):
    """Base class of the U-shaped networks: subclasses build the layers, this class runs them.

    Subclasses set ``encoders`` (one module per level), ``pool``, ``bottleneck``, ``decoder`` (one
    ``level(x, skip)`` module per level, deepest first), ``head`` (1x1x1 conv to the labels) and
    ``act_head`` (or ``None``); :meth:`_forward_padded` is the shared U-Net skeleton.

    Attributes:
        in_channels: expected input channels C.
        out_channels: label channels L of the logits.
        size_multiple: spatial sizes the layers need (inputs are padded to it internally).
        pad_mode: padding mode for the internal padding (``replicate`` or ``constant`` (zeros)).
        bottleneck: the encoder's last feature module (deepest resolution); hook it for Grad-CAM.
    """

    def __init__(self, in_channels: int, out_channels: int, size_multiple: int, pad_mode: str) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = size_multiple
        self.pad_mode = pad_mode

    def _forward_padded(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """U-Net pass on an input already padded to ``size_multiple``: (seg_logits, act_logits | None)."""
        skips: List[torch.Tensor] = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        act: Optional[torch.Tensor] = None
        if self.act_head is not None:
            act = self.act_head(x)
        n = len(skips)
        for i, level in enumerate(self.decoder):
            x = level(x, skips[n - 1 - i])
        return self.head(x), act

    def _padding(self, x: torch.Tensor) -> List[int]:
        """F.pad amounts ``[w0, w1, h0, h1, d0, d1]`` that bring D, H, W to multiples of size_multiple."""
        m = self.size_multiple
        pads: List[int] = []
        for dim in (4, 3, 2):
            total = (m - x.shape[dim] % m) % m
            pads.append(total // 2)
            pads.append(total - total // 2)
        return pads

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Segmentation logits and ACT logits.

        Args:
            x: ``(N, C, D, H, W)`` float tensor, C = ``in_channels``; any D, H, W >= 1.

        Returns:
            ``(seg_logits (N, L, D, H, W), act_logits (N, 2) or None)``.

        Raises:
            ValueError: ``x`` is not 5-D, has the wrong number of channels, or is too small (see module docstring).
        """
        if x.dim() != 5:
            raise ValueError("network input must be 5-D (N, C, D, H, W); got " + str(x.dim()) + "-D")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                "network input has " + str(x.shape[1]) + " channels; this network expects " + str(self.in_channels)
            )
        d, h, w = x.shape[2], x.shape[3], x.shape[4]
        # Pad and crop unconditionally (zero amounts are no-ops): a shape-dependent branch would be
        # frozen by torch.export / ONNX export at the example's size.
        pads = self._padding(x)
        if d + pads[4] + pads[5] <= self.size_multiple and h + pads[2] + pads[3] <= self.size_multiple and (
            w + pads[0] + pads[1] <= self.size_multiple
        ):
            raise ValueError(
                "network input " + str(list(x.shape)) + " is too small: at least one of D, H, W must exceed "
                + str(self.size_multiple) + " (2 ** (levels - 1)) so the bottleneck has more than one voxel"
            )
        if self.pad_mode == "constant":
            x = F.pad(x, pads, mode="constant", value=0.0)
        else:
            x = F.pad(x, pads, mode=self.pad_mode)
        seg, act = self._forward_padded(x)
        seg = seg[:, :, pads[4]:pads[4] + d, pads[2]:pads[2] + h, pads[0]:pads[0] + w]
        return seg, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, D, H, W) -> (N, L, D, H, W)`` segmentation logits."""
        seg, _ = self.forward_with_aux(x)
        return seg
