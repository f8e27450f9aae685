"""A faster CPU forward pass of a trained MM-3DUNet: channels-last matrices, folded instance norms.

Why: on CPU the CEC unit (1x1x1 expand to ``t * C`` channels -> InstanceNorm -> LeakyReLU ->
3x3x3 depthwise -> InstanceNorm -> LeakyReLU -> 1x1x1 project) is memory-bound: every op is a
DRAM pass over the expanded ``t * C`` feature map, and eager PyTorch adds layout copies and slow
NCDHW depthwise kernels. :class:`FastMM3DUNet` runs the *same weights* with fewer passes:

* Every feature map stays in ``channels_last_3d`` memory, i.e. an ``(N, D*H*W, C)`` matrix; the
  1x1x1 convolutions are plain matrix products (``addmm``), the depthwise 3x3x3 convolution runs
  on oneDNN's channels-last kernel (about 2.5x faster than NCDHW), no layout copies.
* The first InstanceNorm is folded analytically into the expand matrix: for ``y = W x + b`` the
  per-channel mean is ``W mu_x + b`` and the variance ``diag(W Sigma_x W^T)`` with ``mu_x``,
  ``Sigma_x`` the mean and (population) covariance of the *small* input (C_in channels). The
  normalised expansion is then one ``addmm`` with scaled weights; no pass over the big tensor for
  statistics. This is exact algebra (only float32 round-off differs); the covariance is accumulated
  in float64 so the folded statistics are at least as accurate as the norm's own.
* The second InstanceNorm is a training-mode ``batch_norm`` on the channels-last depthwise output
  (with N = 1 it is exactly the instance norm), oneDNN's fast channels-last kernel; LeakyReLU in place.

Everything else (max pooling, transposed convolutions, concatenation, head, ACT head) reuses the
original modules on channels-last tensors. The trained :class:`~breastlesionseg.nn.MM3DUNet` is
not modified; :class:`FastMM3DUNet` shares its parameters (no copy) and keeps its output contract
(``forward`` / ``forward_with_aux``, odd sizes padded and cropped back by the same base class).

Tolerance (tested): logits match eager float32 PyTorch to ``FUSED_ATOL + FUSED_RTOL * |eager|``.
Supported: ``norm == "instance"`` with ``activation == "leakyrelu"`` (the paper's choice); other
configs raise :class:`~breastlesionseg.errors.InputError` (the backend then reports itself unsupported).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..nn.cec_unit import CECUnit
from .unit_replaced import UnitReplacedMM3DUNet, check_supported  # noqa: F401 - check_supported re-exported

#: documented tolerance of the fused path against eager float32 logits (absolute part). Measured: max
#: |fused - eager| 1.1e-3 on 1 x 1 x 32 x 256 x 256 logits of magnitude <= 2.5 (t=12 + ACT), ~1e-4 at
#: 32 x 128 x 128, ~1e-5 on small windows; eager itself is within ~4e-6 of float64. The difference comes
#: from the float32 statistics of oneDNN's channels-last batch norm (used for the second InstanceNorm);
#: exact float64 statistics brought it to 7e-7 but cost 3-5x the time on this machine (see docs/performance.md).
FUSED_ATOL = 2e-3
#: documented tolerance of the fused path against eager float32 logits (relative part)
FUSED_RTOL = 1e-3

_CL = torch.channels_last_3d
#: rows per block of the input's Gram matrix (float32 inside a block, float64 across blocks)
_GRAM_ROWS = 262144


def _as_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, C, D, H, W) channels-last tensor -> (N, D*H*W, C) view (copies only if not channels-last)."""
    n, c, d, h, w = x.shape
    x = x.contiguous(memory_format=_CL)
    return x.permute(0, 2, 3, 4, 1).reshape(n, d * h * w, c)


def _as_volume(m: torch.Tensor, shape: Tuple[int, int, int, int, int]) -> torch.Tensor:
    """(N, D*H*W, C) contiguous matrix -> (N, C, D, H, W) channels-last view (no copy)."""
    n, c, d, h, w = shape
    return m.view(n, d, h, w, c).permute(0, 4, 1, 2, 3)


def _mkldnn_linear_pointwise_available() -> bool:
    try:
        op = torch.ops.mkldnn._linear_pointwise  # oneDNN matmul with a fused post-op (used by inductor on CPU)
    except (AttributeError, RuntimeError):
        return False
    try:
        a = torch.ones(3, 2)
        out = op(a, torch.ones(4, 2), torch.zeros(4), "leaky_relu", [0.5], "")
        return tuple(out.shape) == (3, 4) and bool(torch.all(out == 2.0))
    except RuntimeError:
        return False


_HAS_LINEAR_POINTWISE = _mkldnn_linear_pointwise_available()


def _linear_leaky_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: float) -> torch.Tensor:
    """``leaky_relu(x @ weight.T + bias)`` for x (P, K), weight (M, K): one oneDNN pass when available."""
    if _HAS_LINEAR_POINTWISE and x.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "leaky_relu", [slope], "")
    y = torch.addmm(bias, x, weight.T)
    return F.leaky_relu_(y, slope)


class FusedCEC(nn.Module):
    """Channels-last CEC unit sharing the parameters of an eager :class:`CECUnit`.

    Shapes: ``(N, C_in, D, H, W)`` (any memory format) -> ``(N, C_out, D', H', W')`` channels-last.
    """

    def __init__(self, unit: CECUnit) -> None:
        super().__init__()
        conv_e = unit.expand[0]
        norm1, act1 = unit.expand[1][0], unit.expand[1][1]
        sep = unit.separable
        norm2, act2 = sep.mid[0], sep.mid[1]
        if not isinstance(norm1, nn.InstanceNorm3d) or not isinstance(norm2, nn.InstanceNorm3d):
            raise InputError("the fused CEC unit needs InstanceNorm3d after the expand and depthwise stages")
        if not isinstance(act1, nn.LeakyReLU) or not isinstance(act2, nn.LeakyReLU):
            raise InputError("the fused CEC unit needs LeakyReLU after the expand and depthwise stages")
        self.unit = unit
        self.cin = unit.in_channels
        self.hidden = unit.hidden_channels
        self.cout = unit.out_channels
        self.slope1 = float(act1.negative_slope)
        self.slope2 = float(act2.negative_slope)
        self.use_residual = unit.use_residual
        self.stride = sep.depthwise.stride

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, D, H, W) -> (N, C_out, D', H', W') channels-last."""
        unit = self.unit
        conv_e = unit.expand[0]
        norm1 = unit.expand[1][0]
        dw = unit.separable.depthwise
        norm2 = unit.separable.mid[0]
        pw = unit.separable.pointwise
        n, cin, d, h, w = x.shape
        xm = _as_matrix(x)  # (N, P, C_in)
        p = d * h * w
        we = conv_e.weight.reshape(self.hidden, cin)
        wp = pw.weight.reshape(self.cout, self.hidden)
        outs = []
        for i in range(n):
            xi = xm[i]
            # --- expand + InstanceNorm 1 folded: statistics of the small input only
            mu = xi.mean(0)
            cov = torch.zeros(cin, cin, dtype=torch.float64)
            for r0 in range(0, p, _GRAM_ROWS):  # (C_in, C_in) centred Gram matrix, float64 across blocks
                xc = xi[r0:r0 + _GRAM_ROWS] - mu
                cov += (xc.T @ xc).double()
            cov /= p  # population covariance
            we64 = we.double()
            mean_y = we64 @ mu.double()  # the expand bias (if any) cancels in the norm
            var_y = ((we64 @ cov) * we64).sum(1).clamp_min(0.0)
            scale = torch.rsqrt(var_y + norm1.eps)
            gamma1 = norm1.weight.double() if norm1.weight is not None else torch.ones_like(scale)
            beta1 = norm1.bias.double() if norm1.bias is not None else torch.zeros_like(scale)
            s1 = scale * gamma1
            w1 = (we64 * s1[:, None]).float()
            b1 = (beta1 - s1 * mean_y).float()
            y = _linear_leaky_relu(xi, w1, b1, self.slope1)  # (P, hidden) = LeakyReLU(IN1(expand(x)))
            del xc
            # --- depthwise 3x3x3 in channels-last
            yv = _as_volume(y, (1, self.hidden, d, h, w))
            z = F.conv3d(yv, dw.weight, dw.bias, dw.stride, dw.padding, dw.dilation, dw.groups)
            zd, zh, zw = z.shape[2:]
            del y, yv
            # --- InstanceNorm 2 = batch norm with batch statistics of this one sample, channels-last kernel
            z = F.batch_norm(z, None, None, norm2.weight, norm2.bias, True, 0.0, norm2.eps)
            zm = _as_matrix(z)[0]  # (P', hidden), a view when oneDNN kept channels-last
            F.leaky_relu_(zm, self.slope2)
            # --- project (+ residual)
            if self.use_residual:
                out = torch.addmm(xi, zm, wp.T)
                if pw.bias is not None:
                    out.add_(pw.bias)
            elif pw.bias is not None:
                out = torch.addmm(pw.bias, zm, wp.T)
            else:
                out = zm @ wp.T
            outs.append(out)
            del zm, z
        o = torch.stack(outs, 0) if n > 1 else outs[0].unsqueeze(0)
        return _as_volume(o.contiguous(), (n, self.cout, zd, zh, zw))


class FastMM3DUNet(UnitReplacedMM3DUNet):
    """Inference-only MM-3DUNet with fused channels-last CEC units, sharing a trained network's weights.

    Same contract as :class:`~breastlesionseg.nn.MM3DUNet`: ``forward(x (N, C, D, H, W)) -> seg logits
    (N, L, D, H, W)``, ``forward_with_aux(x) -> (seg, act (N, 2) or None)``; outputs are contiguous
    (NCDHW) float32. No autograd (use the eager network for training and Grad-CAM).

    Args:
        net: a trained MM3DUNet in eval mode (its parameters are shared, not copied).

    Raises:
        InputError: the network's config is not supported (see :func:`check_supported`).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__(net, FusedCEC)

    def _enter(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=_CL)

    def _up(self, up: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return up(x).contiguous(memory_format=_CL)
