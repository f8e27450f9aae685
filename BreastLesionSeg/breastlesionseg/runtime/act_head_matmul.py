"""The ACT head with its 3x3x3 convolution as one matrix product and 27 shifted sums (inference only).

Why: PyTorch's CPU ``Conv3d`` in NCDHW layout unfolds its input (im2col, 27 x C_in rows): on the
bottleneck of MM-3DUNet at the paper's input (64 x 4 x 32 x 32 -> 8 channels) it takes 8.4 ms, 2% of
the fused network's forward pass, at ~13 GFLOP/s. Here all 27 taps are one ``(27 C_out) x C_in``
matrix product over the voxels (the large dimension, where matrix products are fast) followed by 27
shifted additions of the small ``C_out``-channel results: 2.5 ms (both ad hoc, 2-core EPYC). Same
arithmetic as the convolution up to float32 summation order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..nn.act_head import ACTHead


class MatmulACTHead(nn.Module):
    """An :class:`~breastlesionseg.nn.act_head.ACTHead` whose convolution runs as a matrix product.

    Shares the head's parameters (no copy of its activation, pooling or linear layer).
    Shapes: ``(N, C, D, H, W) -> (N, 2)``, as the head.

    Args:
        head: the trained head; its convolution must be 3x3x3, stride 1, padding 1, no dilation or groups.

    Raises:
        InputError: the head's convolution is not of that form.
    """

    def __init__(self, head: ACTHead) -> None:
        super().__init__()
        conv = head.conv
        if (conv.kernel_size != (3, 3, 3) or conv.stride != (1, 1, 1) or conv.padding != (1, 1, 1)
                or conv.dilation != (1, 1, 1) or conv.groups != 1 or conv.padding_mode != "zeros"):
            raise InputError(
                "MatmulACTHead needs a 3x3x3 convolution with stride 1, zero padding 1, no dilation or groups; "
                f"got kernel {conv.kernel_size}, stride {conv.stride}, padding {conv.padding}, "
                f"dilation {conv.dilation}, groups {conv.groups}, padding mode {conv.padding_mode!r}"
            )
        self.head = head
        self.out_channels = conv.out_channels

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) encoder features -> (N, 2) logits."""
        head, co = self.head, self.out_channels
        n, c, d, h, w = features.shape
        # taps[(kz, ky, kx) * co + o, c] = weight[o, c, kz, ky, kx]
        taps = head.conv.weight.permute(2, 3, 4, 0, 1).reshape(27 * co, c)
        per_tap = torch.matmul(taps, features.reshape(n, c, d * h * w)).reshape(n, 27, co, d, h, w)
        padded = F.pad(per_tap, (1, 1, 1, 1, 1, 1))
        out = torch.zeros((n, co, d, h, w), dtype=features.dtype) if head.conv.bias is None else \
            head.conv.bias.reshape(1, co, 1, 1, 1).expand(n, co, d, h, w).clone()
        k = 0
        for kz in range(3):  # output voxel v takes tap (kz, ky, kx) of input voxel v + (kz, ky, kx) - 1
            for ky in range(3):
                for kx in range(3):
                    out += padded[:, k, :, kz:kz + d, ky:ky + h, kx:kx + w]
                    k += 1
        y = head.pool(head.activation(out))
        return head.linear(torch.flatten(y, 1))
