"""Fast inference backends for the lesion networks (CPU first), and automatic backend selection.

Public API::

    from breastlesionseg.runtime import (select_backend, BackendSelection, Backend, RunnableNetwork,
                                         BACKENDS, FastMM3DUNet, tune_cpu_allocator, peak_rss_bytes)

``select_backend(model, device, patch_shape)`` returns a :class:`BackendSelection` whose ``.network``
is a drop-in for the model (``forward`` / ``forward_with_aux``, inference only). See select.py and
benchmarks/README.md for the measured speeds and tolerances.
"""
from __future__ import annotations

from .allocator import allocator_tuned, tune_cpu_allocator
from .backend import Backend, RunnableNetwork
from .fused_cec import FUSED_ATOL, FUSED_RTOL, FastMM3DUNet
from .memory import peak_rss_bytes
from .select import BACKENDS, CPU_ORDER, BackendSelection, select_backend

__all__ = [
    "BACKENDS", "CPU_ORDER", "FUSED_ATOL", "FUSED_RTOL", "Backend", "BackendSelection", "FastMM3DUNet",
    "RunnableNetwork", "allocator_tuned", "peak_rss_bytes", "select_backend", "tune_cpu_allocator",
]
