"""Pick the fastest backend that is available, supports the network and matches eager on a test input.

Usage (inference engine)::

    from breastlesionseg.runtime import select_backend
    selection = select_backend(model, device, patch_shape_zyx)     # model: trained network, eval mode
    runnable = selection.network      # drop-in for model: forward / forward_with_aux, no autograd
    log.info("inference backend: %s", selection.summary())

Order (fastest first, measured by ``benchmarks/bench_networks.py`` on the 2-core EPYC; see
docs/performance.md): on CPU ``native_cec`` (MM-3DUNet only, windows its C++ kernel can tile, where a compiler is
present), ``openvino``, ``onnxruntime``, ``fused_cec`` (MM-3DUNet only), ``eager``; on CUDA
``eager`` (GPU timings not measured yet). With ``measure=True`` the validated candidates are timed on
the window instead and the fastest wins (costs a few forward passes). Reduced-precision backends
(``bf16``) are used only when named in ``preference``. Every candidate is checked against eager
float32 on a small odd-sized input; one that is missing, unsupported, fails to build or is outside its
tolerance is skipped with the reason recorded in :attr:`BackendSelection.rejected`; ``eager`` is the
final fallback.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError
from .backend import Backend, RunnableNetwork, forward_with_aux
from .bf16 import Bf16AutocastBackend
from .channels_last import ChannelsLastBackend
from .eager import EagerBackend
from .fused_backend import FusedCECBackend
from .native_backend import NativeCECBackend
from .onnxruntime_backend import OnnxRuntimeBackend
from .openvino_backend import OpenVinoBackend

log = logging.getLogger(__name__)

#: backend name -> factory
BACKENDS: Dict[str, Callable[[], Backend]] = {
    "eager": EagerBackend,
    "channels_last": ChannelsLastBackend,
    "fused_cec": FusedCECBackend,
    "native_cec": NativeCECBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "openvino": OpenVinoBackend,
    "bf16": Bf16AutocastBackend,
}
#: automatic order on CPU, fastest first (from the benchmark)
#: (``native_cec`` refuses windows whose full-resolution units it cannot take before building anything,
#: so the demo model's small windows fall through to OpenVINO)
CPU_ORDER: Tuple[str, ...] = ("native_cec", "openvino", "onnxruntime", "fused_cec", "eager")
#: automatic order on CUDA
CUDA_ORDER: Tuple[str, ...] = ("eager",)


@dataclass
class BackendSelection:
    """Result of :func:`select_backend`.

    Attributes:
        backend: the chosen :class:`Backend`.
        network: its :class:`RunnableNetwork` for the module (use it instead of the module).
        validation_max_abs: max |logit - eager logit| on the validation input.
        rejected: ``[(backend name, reason)]`` for candidates tried before it, in order.
        timings_s: median forward seconds per candidate when ``measure=True``.
    """

    backend: Backend
    network: RunnableNetwork
    validation_max_abs: float
    rejected: List[Tuple[str, str]] = field(default_factory=list)
    timings_s: Dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The chosen backend's name."""
        return self.backend.name

    def summary(self) -> str:
        """One line for logs and ``metrics.json``: which backend, why the others were skipped."""
        text = f"{self.backend.name} ({self.backend.description}; max |diff| vs eager {self.validation_max_abs:.2e})"
        if self.rejected:
            text += "; skipped: " + "; ".join(f"{n}: {r}" for n, r in self.rejected)
        if self.timings_s:
            text += "; measured: " + ", ".join(f"{n} {t:.3f} s" for n, t in self.timings_s.items())
        return text

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {"backend": self.backend.name, "description": self.backend.description,
                "validation_max_abs": self.validation_max_abs, "atol": self.backend.atol, "rtol": self.backend.rtol,
                "rejected": [list(r) for r in self.rejected], "timings_s": dict(self.timings_s)}


def validation_shape(module: nn.Module) -> Tuple[int, int, int, int, int]:
    """Small odd-sized input ``(1, C, 2m+1, 2m+3, m+5)`` (m = ``module.size_multiple``, default 8)."""
    m = int(getattr(module, "size_multiple", 8))
    c = int(getattr(module, "in_channels", 1))
    return (1, c, 2 * m + 1, 2 * m + 3, m + 5)


def compare_outputs(backend: Backend, runnable: nn.Module, module: nn.Module,
                    x: torch.Tensor) -> Tuple[bool, float, str]:
    """Run ``runnable`` and eager ``module`` on ``x``; ``(within tolerance, max |diff|, message)``."""
    with torch.no_grad():
        ref_seg, ref_act = forward_with_aux(module, x)
        seg, act = forward_with_aux(runnable, x)
    pairs = [("seg_logits", seg, ref_seg)]
    if ref_act is not None:
        if act is None:
            return False, math.inf, "ACT logits missing"
        pairs.append(("act_logits", act, ref_act))
    worst = 0.0
    for label, got, ref in pairs:
        if tuple(got.shape) != tuple(ref.shape):
            return False, math.inf, f"{label} shape {tuple(got.shape)} != eager {tuple(ref.shape)}"
        diff = (got.float() - ref.float()).abs()
        worst = max(worst, float(diff.max()))
        if not bool(torch.all(diff <= backend.atol + backend.rtol * ref.float().abs())):
            return False, worst, (f"{label} differ from eager by up to {worst:.3g} "
                                  f"(tolerance {backend.atol:g} + {backend.rtol:g} * |eager|)")
    return True, worst, ""


def _median_forward_s(runnable: nn.Module, shape: Sequence[int], repeats: int) -> float:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        forward_with_aux(runnable, x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward_with_aux(runnable, x)
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def _candidates(device_type: str, preference: str | Sequence[str]) -> List[str]:
    auto = list(CUDA_ORDER if device_type == "cuda" else CPU_ORDER)
    if isinstance(preference, str):
        preference = [preference]
    names: List[str] = []
    for p in preference:
        if p == "auto":
            names.extend(auto)
        elif p in BACKENDS:
            names.append(p)
        else:
            raise InputError(f"unknown backend preference {p!r}; expected 'auto' or one of {sorted(BACKENDS)}")
    names.extend(auto)  # a named backend that fails falls back to the automatic order
    names.append("eager")
    seen: List[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def select_backend(module: nn.Module, device: str | torch.device = "cpu",
                   patch_shape: Sequence[int] | None = None, preference: str | Sequence[str] = "auto",
                   measure: bool = False, repeats: int = 2, num_threads: int | None = None) -> BackendSelection:
    """Choose how to run ``module`` for sliding-window inference and build it.

    Args:
        module: trained network (eval mode is set); ``forward_with_aux`` contract of ``breastlesionseg.nn``.
        device: where inference runs (``"cpu"``, ``"cuda"``, ``torch.device``); only backends listing
            that device type are considered.
        patch_shape: window ``(D, H, W)`` or full input ``(N, C, D, H, W)``; used to prepare the
            backends and, with ``measure=True``, to time them. Default: the validation shape.
        preference: ``"auto"``, a backend name (``"openvino"``, ``"fused_cec"``, ``"onnxruntime"``, ``"channels_last"``,
            ``"eager"``, ``"bf16"``) or a list of them, tried first; then the automatic order.
        measure: time every validated candidate on ``patch_shape`` and keep the fastest (else the first
            validated one in order wins).
        repeats: timed forward passes per candidate when measuring (median).
        num_threads: threads for backends with their own thread pool (default: ``torch.get_num_threads()``
            when each is prepared). Pass it when preparing in a background thread, where the caller's
            thread setting may not be in force yet.

    Returns:
        :class:`BackendSelection` (``.network`` is the drop-in runnable, ``.summary()`` says which and why).

    Raises:
        InputError: unknown preference name, or a bad ``patch_shape``.
    """
    dev = torch.device(device)
    module = module.eval()
    vshape = validation_shape(module)
    if patch_shape is None:
        shape = vshape
    else:
        ps = tuple(int(s) for s in patch_shape)
        if len(ps) == 3:
            ps = (1, vshape[1]) + ps
        if len(ps) != 5 or any(s < 1 for s in ps):
            raise InputError(f"patch_shape must be (D, H, W) or (N, C, D, H, W) positive integers; got {tuple(patch_shape)}")
        shape = ps
    x_val = torch.randn(*vshape, generator=torch.Generator().manual_seed(1234)).to(dev)
    rejected: List[Tuple[str, str]] = []
    accepted: List[Tuple[Backend, RunnableNetwork, float]] = []
    named = [preference] if isinstance(preference, str) else list(preference)
    for name in _candidates(dev.type, preference):
        backend = BACKENDS[name]()
        if num_threads is not None:
            backend.num_threads = int(num_threads)
        if dev.type not in backend.devices:
            rejected.append((name, f"does not run on {dev.type}"))
            continue
        if not backend.exact and name not in named:
            continue
        ok, why = backend.availability()
        if ok:
            ok, why = backend.supports(module)
        if not ok:
            rejected.append((name, why))
            continue
        try:
            runnable = backend.prepare(module, shape)
            ok, worst, why = compare_outputs(backend, runnable, module, x_val)
        except (RuntimeError, ValueError, TypeError, ImportError, OSError) as exc:
            rejected.append((name, f"failed to build or run: {type(exc).__name__}: {exc}"))
            continue
        if not ok:
            rejected.append((name, why))
            continue
        accepted.append((backend, runnable, worst))
        if not measure:
            break
    if not accepted:  # eager always validates against itself; reaching here means eager itself failed
        raise InputError("no inference backend could run this network: " + "; ".join(f"{n}: {r}" for n, r in rejected))
    timings: Dict[str, float] = {}
    if measure and len(accepted) > 1:
        for backend, runnable, _ in accepted:
            timings[backend.name] = _median_forward_s(runnable, shape, repeats)
        accepted.sort(key=lambda a: timings[a[0].name])
    backend, runnable, worst = accepted[0]
    selection = BackendSelection(backend, runnable, worst, rejected, timings)
    for name, why in rejected:
        log.info("inference backend %s skipped: %s", name, why)
    log.info("inference backend: %s", selection.summary())
    return selection
