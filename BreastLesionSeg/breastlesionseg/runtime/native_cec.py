"""MM-3DUNet with its large CEC units fused in C++ (AVX-512, float32), compiled on this machine on first use.

Why (issue 8, docs/performance.md): on CPU the CEC unit is memory-bound. In OpenVINO, MM-3DUNet t=12+ACT at
the paper's input spends 71% of its time at full resolution and 53% in one unit (8 -> 96 -> 8), mostly in
the depthwise convolution and the two instance norms, each a DRAM pass over a 96-channel volume.
``runtime/native/cec_fused.cpp`` computes a whole unit in two passes: the first norm's statistics come
analytically from the input's mean and covariance; pass A computes expand -> norm -> act -> depthwise
per tile in cache and writes the depthwise output once; pass B applies norm -> act -> project (+ residual).

:class:`NativeMM3DUNet` runs every CEC unit the kernel supports (channel counts instantiated in the C++
file; in-plane size ``H % 8 == 0`` and ``W % 32 == 0``) with it. 2x2x2 max pooling and the 3x3x3 stride-2
transposed convolutions have their own kernels, the 1x1x1 head is folded into the last unit's kernel
(:meth:`NativeCEC.fold_head`; else a matrix product), the ACT head's convolution runs as one
matrix product (:class:`~breastlesionseg.runtime.act_head_matmul.MatmulACTHead`); the rest (units the
kernel does not take) runs in the network's own PyTorch modules, all in contiguous NCDHW layout. It shares
the trained network's parameters. Intermediate tensors live in kept, huge-page buffers (:class:`_Workspace`):
no page faults per forward pass.

Availability: Linux, an AVX-512 CPU, a C++ compiler with OpenMP and ninja (``torch.utils.cpp_extension``
builds the kernel once into PyTorch's extension cache, ~1 min). Slicer users on Windows/macOS or without a
compiler do not get it (the Slicer extension does not install the C++ source); the pipeline then uses
OpenVINO. Tolerance: as the other fused path (2e-3 + 1e-3 x |eager|); the kernel alone matches eager to
~5e-6 (tested).
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Dict, Hashable, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..nn.cec_unit import CECUnit
from .act_head_matmul import MatmulACTHead
from .cpu_info import cpu_flags
from .unit_replaced import UnitReplacedMM3DUNet

log = logging.getLogger(__name__)

#: the kernel's source (compiled on first use)
NATIVE_SOURCE = Path(__file__).resolve().parent / "native" / "cec_fused.cpp"
#: smallest tile of the kernel: the in-plane size of a fused unit's input must be a multiple of (H, W)
#: (64-column tiles are used when W allows, else 32)
TILE_HW = (8, 32)
#: the backend is offered only when the full-resolution input is a multiple of this (padded): the measured
#: gains are at the paper's 32 x 256 x 256; the demo model's 16 x 32 x 32 windows stay in OpenVINO
FULL_RESOLUTION_TILE_HW = (8, 64)
#: extension name; bump when the C++ interface changes (PyTorch caches builds by name + source hash)
EXTENSION_NAME = "bls_native_cec_v9"


def native_unavailable_reason() -> str:
    """Why the kernel cannot be built here (``""`` when nothing obvious is missing)."""
    if not NATIVE_SOURCE.is_file():
        return f"the fused C++ CEC kernel's source is not installed ({NATIVE_SOURCE})"
    if not sys.platform.startswith("linux"):
        return f"the fused C++ CEC kernel is built on Linux only (this is {sys.platform})"
    if "avx512f" not in cpu_flags():
        return "the fused C++ CEC kernel needs an AVX-512 CPU"
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        return "the fused C++ CEC kernel needs a C++ compiler (c++ or $CXX) to be built on first use"
    from torch.utils.cpp_extension import is_ninja_available  # noqa: PLC0415

    if not is_ninja_available():
        return "the fused C++ CEC kernel needs ninja to be built (pip install ninja)"
    return ""


@lru_cache(maxsize=1)
def native_kernels():
    """The compiled kernel module (built on first call, then cached by PyTorch).

    Raises:
        RuntimeError: the kernel cannot be built here (the message says why).
    """
    why = native_unavailable_reason()
    if why:
        raise RuntimeError(why)
    from torch.utils.cpp_extension import load  # noqa: PLC0415

    log.info("building the fused C++ CEC kernel (once per machine; about a minute)")
    return load(EXTENSION_NAME, [str(NATIVE_SOURCE)],
                extra_cflags=["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp"],
                extra_ldflags=["-fopenmp"], verbose=False)


class _Workspace:
    """Float32 buffers kept between forward passes, 2 MB-aligned with huge pages requested.

    A fresh tensor for every intermediate costs more than some units themselves: glibc maps large blocks
    anew on every allocation (unless :func:`~breastlesionseg.runtime.allocator.tune_cpu_allocator` ran), so
    each pass pays a page fault per 4 KB on first touch: 0.57 -> 0.45 s for the forward pass at the paper's
    input with the allocator untuned, 0.51 -> 0.45 s (with streaming stores) in ``bench_networks.py``, which
    tunes it (ad hoc / earlier runs). Holds the units' shared scratch buffer and one slot per
    intermediate output: a unit's own slot, or the n-th slot of a kind (``"pool"``, ``"up"``) per forward
    pass (:meth:`begin` restarts the count). Each slot is written once per pass, so nothing aliases; what
    leaves the network (logits, ACT score) is never from here. Not thread-safe: the owning network holds a
    lock around its forward pass.
    """

    def __init__(self, kernels) -> None:
        self.kernels = kernels
        self._slots: Dict[Hashable, torch.Tensor] = {}
        self._counts: Dict[str, int] = {}

    def begin(self) -> None:
        """Start a forward pass: the next :meth:`take` of each kind gets that kind's first slot."""
        self._counts.clear()

    def scratch(self, numel: int) -> torch.Tensor:
        """The units' shared scratch buffer, at least ``numel`` floats (flat)."""
        return self._buffer("scratch", numel)

    def output(self, key: Hashable, shape: Tuple[int, ...]) -> torch.Tensor:
        """The slot ``key`` viewed as a contiguous float32 tensor of ``shape`` (contents undefined)."""
        numel = math.prod(shape)
        return self._buffer(key, numel)[:numel].view(shape)

    def take(self, kind: str, shape: Tuple[int, ...]) -> torch.Tensor:
        """The next slot of ``kind`` in this forward pass, as :meth:`output`."""
        index = self._counts.get(kind, 0)
        self._counts[kind] = index + 1
        return self.output((kind, index), shape)

    def release(self) -> None:
        """Free every buffer (they come back on the next forward pass)."""
        self._slots.clear()

    def _buffer(self, key: Hashable, numel: int) -> torch.Tensor:
        buf = self._slots.get(key)
        if buf is None or buf.numel() < numel:
            self._slots.pop(key, None)  # free the old one first
            buf = self._slots[key] = self.kernels.aligned_buffer(int(numel))
        return buf


class NativeCEC(nn.Module):
    """One CEC unit run by the fused kernel, sharing the parameters of an eager :class:`CECUnit`.

    Shapes: ``(N, C_in, D, H, W)`` contiguous float32 with ``H % 8 == 0``, ``W % 32 == 0`` -> ``(N, C_out, D, H, W)``.
    Use :meth:`fits` to check a shape; other shapes must go to the eager unit.

    Args:
        unit: the trained unit (instance norm + LeakyReLU, stride 1).
        kernels: the compiled module (:func:`native_kernels`).
        workspace: the network's buffers (the scratch buffer shared by every unit; the unit's output slot).
        keep_output: write the output into the unit's slot of ``workspace`` (overwritten by the next call, for
            units of a network whose outputs do not outlive its forward pass), else into a fresh tensor.
    """

    #: outputs of at least this many bytes per sample are written with streaming stores (they leave the
    #: cache anyway; saves the read for ownership): 32 MiB, the L3 cache of the machines measured
    #: (0.46 -> 0.445 s for the network at the paper input, ad hoc)
    stream_min_bytes: int = 32 << 20

    def __init__(self, unit: CECUnit, kernels, workspace: _Workspace, keep_output: bool = False) -> None:
        super().__init__()
        self.unit = unit
        self.kernels = kernels
        self.workspace = workspace
        self.keep_output = keep_output
        conv_e, norm1, act1 = unit.expand[0], unit.expand[1][0], unit.expand[1][1]
        sep = unit.separable
        norm2, act2 = sep.mid[0], sep.mid[1]
        if conv_e.bias is not None or sep.depthwise.bias is not None or sep.depthwise.stride != (1, 1, 1):
            raise InputError("the fused C++ CEC kernel needs bias-free expand/depthwise convolutions with stride 1")
        self.params = (
            conv_e.weight.detach().contiguous(), norm1.weight.detach().contiguous(), norm1.bias.detach().contiguous(),
            float(norm1.eps), float(act1.negative_slope), sep.depthwise.weight.detach().contiguous(),
            norm2.weight.detach().contiguous(), norm2.bias.detach().contiguous(), float(norm2.eps),
            float(act2.negative_slope), sep.pointwise.weight.detach().contiguous(),
            sep.pointwise.bias.detach().contiguous(),
        )
        self.supported = bool(kernels.supports(unit.in_channels, unit.hidden_channels, unit.out_channels,
                                               unit.use_residual))
        self.head: Optional[nn.Conv3d] = None

    @staticmethod
    def can_fold(unit: CECUnit, head: nn.Module) -> bool:
        """Whether :meth:`fold_head` takes ``head`` after ``unit``: a 1x1x1 convolution with at most 8 outputs after
        a unit with at most 8 output channels (the kernel keeps those in registers)."""
        return (isinstance(head, nn.Conv3d) and head.kernel_size == (1, 1, 1) and head.stride == (1, 1, 1)
                and head.groups == 1 and head.padding in ((0, 0, 0), "valid") and head.in_channels == unit.out_channels
                and unit.out_channels <= 8 and 1 <= head.out_channels <= 8)

    def fold_head(self, head: nn.Conv3d) -> None:
        """From now on return ``head(unit(x))``: the kernel applies the head in registers, so the unit's own
        output is never stored (the network's last unit; saves a write and a read of it at full resolution).

        Raises:
            InputError: ``head`` is not a head :meth:`can_fold` takes.
        """
        if not self.can_fold(self.unit, head):
            raise InputError(f"cannot fold {head!r} into a unit with {self.unit.out_channels} output channels: "
                             "needs a 1x1x1 convolution with at most 8 outputs after at most 8 channels")
        self.head = head

    def fits(self, x: torch.Tensor) -> bool:
        """Whether the kernel handles ``x`` (instantiated channels, tile-aligned in-plane size)."""
        return (self.supported and x.dtype == torch.float32 and x.device.type == "cpu"
                and x.shape[3] % TILE_HW[0] == 0 and x.shape[4] % TILE_HW[1] == 0)

    @torch.no_grad()
    def forward(self, x) -> torch.Tensor:
        """The unit on ``x``: the fused kernel when it fits, else the eager unit.

        ``x`` is a tensor, or a tuple of tensors on one grid standing for their concatenation along channels
        (the decoder's upsampled features and skip): the kernel reads them in place instead of a copy.
        """
        parts = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        if not all(self.fits(p) for p in parts) or (len(parts) > 1 and self.unit.use_residual):
            y = self.unit(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
            return y if self.head is None else self.head(y)
        parts = tuple(p.contiguous() for p in parts)
        n, _, d, h, w = parts[0].shape
        if self.head is None:
            shape = (n, self.unit.out_channels, d, h, w)
            out = self.workspace.output(self, shape) if self.keep_output else torch.empty(shape, dtype=torch.float32)
            head = (None, None)
        else:  # the network's output: a fresh tensor, never a kept buffer
            out = torch.empty((n, self.head.out_channels, d, h, w), dtype=torch.float32)
            head = (self.head.weight.detach(), None if self.head.bias is None else self.head.bias.detach())
        buf = self.workspace.scratch(self.unit.hidden_channels * d * h * w)
        self.kernels.cec_forward(list(parts), *self.params, buf, out, self.unit.use_residual, self.stream_min_bytes,
                                 *head)
        return out


class NativeMM3DUNet(UnitReplacedMM3DUNet):
    """Inference-only MM-3DUNet whose CEC units run in the fused C++ kernel where it applies.

    Same contract as :class:`~breastlesionseg.nn.MM3DUNet` (``forward`` / ``forward_with_aux``, odd sizes
    padded and cropped back by the base class); no autograd.

    Args:
        net: a trained MM3DUNet in eval mode (parameters shared, not copied).
        kernels: the compiled kernel module (default :func:`native_kernels`, built on first use).

    Raises:
        InputError: unsupported network config (see :func:`~breastlesionseg.runtime.unit_replaced.check_supported`).
        RuntimeError: the kernel cannot be built here.
    """

    def __init__(self, net: nn.Module, kernels=None) -> None:
        kernels = kernels if kernels is not None else native_kernels()
        workspace = _Workspace(kernels)
        super().__init__(net, lambda unit: NativeCEC(unit, kernels, workspace, keep_output=True))
        self.workspace = workspace
        self.kernels = kernels
        self._lock = threading.Lock()
        if net.act_head is not None:
            self.act_head = MatmulACTHead(net.act_head)
        last = self._last_unit()
        if last is not None and last.supported and NativeCEC.can_fold(last.unit, net.head):
            last.fold_head(net.head)

    def _last_unit(self) -> Optional[NativeCEC]:
        return self.dec[-1][-1] if len(self.dec) and len(self.dec[-1]) else None

    @property
    def head_folded(self) -> bool:
        """Whether the last decoder unit applies the 1x1x1 head (:meth:`NativeCEC.fold_head`)."""
        last = self._last_unit()
        return last is not None and last.head is not None

    def _forward_padded(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """One pass at a time: the intermediates live in the workspace's slots, reused by the next pass."""
        with self._lock:
            self.workspace.begin()
            return super()._forward_padded(x)

    def release_buffers(self) -> None:
        """Free the kept intermediates and scratch buffer (the next forward pass allocates them again)."""
        with self._lock:
            self.workspace.release()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """2 x 2 x 2 max pooling: the kernel's (one pass, ~8x faster than eager at full resolution) for even sizes."""
        if x.dtype == torch.float32 and all(s % 2 == 0 for s in x.shape[2:]):
            n, c, d, h, w = x.shape
            return self.kernels.maxpool2(x.contiguous(), self.workspace.take("pool", (n, c, d // 2, h // 2, w // 2)))
        return self.net.pool(x)

    def _up(self, up: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The decoder's stride-2 transposed convolution: the kernel's (3x3x3, W % 16 == 0; 0.084 -> 0.026 s at
        the full-resolution decoder of the paper input), else the module itself."""
        if (isinstance(up, nn.ConvTranspose3d) and up.kernel_size == (3, 3, 3) and up.stride == (2, 2, 2)
                and up.padding == (1, 1, 1) and up.output_padding == (1, 1, 1) and up.groups == 1
                and up.dilation == (1, 1, 1) and x.dtype == torch.float32 and x.shape[4] % 16 == 0):
            n, _, d, h, w = x.shape
            out = self.workspace.take("up", (n, up.out_channels, 2 * d, 2 * h, 2 * w))
            return self.kernels.conv_transpose3x3_s2(x.contiguous(), up.weight.detach(),
                                                     None if up.bias is None else up.bias.detach(), out)
        return up(x)

    def _concat(self, up: torch.Tensor, skip: torch.Tensor):
        """The pair itself: the level's first unit reads both in place (saves a copy of the concatenation,
        ~0.01 s at full resolution); a unit that cannot take it concatenates."""
        return (up, skip)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        """The 1 x 1 x 1 head: folded into the last unit where it can be (:attr:`head_folded`), else a matrix
        product per sample (0.005 s instead of 0.033 s at full resolution)."""
        if self.head_folded:  # already applied by the last unit (in the kernel, or after its eager fallback)
            return x
        head = self.net.head
        n, c = x.shape[:2]
        weight = head.weight.reshape(head.out_channels, c)
        bias = head.bias.reshape(-1, 1) if head.bias is not None else torch.zeros(head.out_channels, 1)
        out = torch.stack([torch.addmm(bias, weight, x[i].reshape(c, -1)) for i in range(n)])
        return out.reshape(n, head.out_channels, *x.shape[2:])

    def _units_by_level(self) -> List[Tuple[int, NativeCEC]]:
        levels = [(i, u) for i in range(len(self.enc)) for u in self.enc[i]] + [(len(self.enc), u) for u in self.bott]
        levels += [(len(self.dec) - 1 - i, u) for i in range(len(self.dec)) for u in self.dec[i]]
        return levels

    def fused_units(self, shape: Tuple[int, ...], level: Optional[int] = None) -> Tuple[int, int]:
        """``(units run by the kernel, all units)`` for an input of ``shape`` (N, C, D, H, W), after padding;
        only those of resolution ``level`` (0 = full resolution) when given."""
        m = self.size_multiple
        h, w = (-(-int(s) // m) * m for s in shape[3:5])
        fused = total = 0
        for lvl, u in self._units_by_level():
            if level is not None and lvl != level:
                continue
            total += 1
            fused += int(u.supported and (h >> lvl) % TILE_HW[0] == 0 and (w >> lvl) % TILE_HW[1] == 0)
        return fused, total
