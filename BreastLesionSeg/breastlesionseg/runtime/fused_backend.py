"""Backend running MM-3DUNet through :class:`~breastlesionseg.runtime.fused_cec.FastMM3DUNet` on CPU."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError
from .allocator import tune_cpu_allocator
from .backend import Backend, RunnableNetwork
from .fused_cec import FUSED_ATOL, FUSED_RTOL, FastMM3DUNet
from .unit_replaced import UnitReplacedMM3DUNet, check_supported


class UnitReplacedRunnable(RunnableNetwork):
    """The runnable of a backend that replaces MM-3DUNet's CEC units (``fused_cec``, ``native_cec``).

    Args:
        fast: the :class:`~breastlesionseg.runtime.unit_replaced.UnitReplacedMM3DUNet` to run.
        backend_name: the backend's name (reported by the engine).
    """

    backend_name = "fused_cec"

    def __init__(self, fast: UnitReplacedMM3DUNet, backend_name: str = "fused_cec") -> None:
        super().__init__(fast.in_channels, fast.out_channels)
        self.fast = fast
        self.backend_name = backend_name

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork`."""
        return self.fast.forward_with_aux(x)


class FusedCECBackend(Backend):
    """Channels-last matrices + analytically folded instance norm for MM-3DUNet (see fused_cec.py).

    Args:
        tune_allocator: also call :func:`~breastlesionseg.runtime.allocator.tune_cpu_allocator`
            (process-wide; large measured gain, see allocator.py).
    """

    name = "fused_cec"
    description = "MM-3DUNet CEC units as channels-last matmuls, folded InstanceNorm, heap-kept buffers (float32)"
    atol = FUSED_ATOL
    rtol = FUSED_RTOL
    devices = ("cpu",)

    def __init__(self, tune_allocator: bool = True) -> None:
        self.tune_allocator = bool(tune_allocator)

    def supports(self, module: nn.Module) -> Tuple[bool, str]:
        """MM3DUNet with instance norm + LeakyReLU only."""
        try:
            check_supported(module)
        except InputError as exc:
            return False, str(exc)
        return True, ""

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """A :class:`FastMM3DUNet` sharing ``module``'s parameters."""
        if self.tune_allocator:
            tune_cpu_allocator()
        return UnitReplacedRunnable(FastMM3DUNet(module.eval()))
