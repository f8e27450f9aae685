"""Backend running MM-3DUNet through :class:`~breastlesionseg.runtime.native_cec.NativeMM3DUNet` (fused C++ CEC units)."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn

from .allocator import tune_cpu_allocator
from .backend import RunnableNetwork
from .fused_backend import FusedCECBackend, UnitReplacedRunnable
from .native_cec import FULL_RESOLUTION_TILE_HW, TILE_HW, NativeMM3DUNet, native_kernels, native_unavailable_reason


class NativeCECBackend(FusedCECBackend):
    """MM-3DUNet with its CEC units fused in C++ (AVX-512), built on this machine on first use.

    Shares :class:`FusedCECBackend`'s network check (MM-3DUNet with instance norm + LeakyReLU) and
    allocator option.

    Only worth it for windows whose full-resolution units the kernel can take with its wide tiles (padded
    ``H % 8 == 0`` and ``W % 64 == 0``): at the paper's 32 x 256 x 256 input it runs MM-3DUNet
    t=12+ACT 2.7x faster than OpenVINO (docs/performance.md). :meth:`prepare` refuses other windows
    before building anything, so the automatic order falls through to OpenVINO for the demo model's
    16 x 32 x 32 window. It also checks the compiled kernel against eager on a small tile-aligned input
    (the selection's odd validation input would not reach the kernel).
    """

    name = "native_cec"
    description = "MM-3DUNet CEC units fused in C++ (AVX-512, expand+norm+depthwise+norm+project in two passes), float32"
    # atol / rtol / devices: FusedCECBackend's (measured max |diff| vs eager 5e-6 at the paper's input)

    def availability(self) -> Tuple[bool, str]:
        """Linux, AVX-512, a C++ compiler and ninja (the build itself happens in :meth:`prepare`)."""
        why = native_unavailable_reason()
        return (not why), why

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Build the kernel (cached), wrap ``module`` and check the kernel against eager.

        Raises:
            ValueError: the window's full-resolution units would not reach the kernel, or the check failed.
            RuntimeError: the kernel could not be built.
        """
        shape = tuple(int(s) for s in example_shape)
        m = int(getattr(module, "size_multiple", 8))
        h, w = (-(-s // m) * m for s in shape[-2:])
        if h % FULL_RESOLUTION_TILE_HW[0] or w % FULL_RESOLUTION_TILE_HW[1]:
            raise ValueError(f"window {shape[-3:]} (padded in-plane {h} x {w}) is not a multiple of the fused kernel's "
                             f"{FULL_RESOLUTION_TILE_HW[0]} x {FULL_RESOLUTION_TILE_HW[1]} full-resolution tile, "
                             "where fusing pays off; left to the other backends")
        fast = NativeMM3DUNet(module.eval(), native_kernels())
        fused, total = fast.fused_units(shape, level=0)
        if fused < total:  # the full-resolution units dominate; left to eager they make it slower than OpenVINO
            raise ValueError(f"only {fused} of the {total} full-resolution CEC units of this network have a fused "
                             "kernel (channel counts not instantiated in cec_fused.cpp)")
        if self.tune_allocator:
            tune_cpu_allocator()
        self._self_check(module, fast, m)
        return UnitReplacedRunnable(fast, self.name)

    def _self_check(self, module: nn.Module, fast: NativeMM3DUNet, multiple: int) -> None:
        # the smallest input whose full-resolution units reach the kernel
        x = torch.randn(1, int(module.in_channels), multiple, max(TILE_HW[0], multiple), max(2 * TILE_HW[1], multiple),
                        generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            ref, _ = module.forward_with_aux(x)
            got, _ = fast.forward_with_aux(x)
        diff = (got - ref).abs()
        if not bool(torch.all(diff <= self.atol + self.rtol * ref.abs())):
            raise ValueError(f"the fused C++ kernel differs from eager by up to {float(diff.max()):.3g} on its self-check")
