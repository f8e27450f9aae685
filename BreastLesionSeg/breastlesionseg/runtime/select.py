"""Choose how the network runs on a device: the first backend of the automatic order that can run and
matches eager PyTorch on the window, eager PyTorch last.

Usage (inference engine)::

    selection = select_backend(model, device, window_zyx, model_dir=folder, card=card)
    runnable = selection.network      # drop-in for model: forward / forward_with_aux, no autograd
    log.info("%s", selection.summary())   # one line: which backend, and why the others were skipped

A backend that cannot run here raises :class:`~breastlesionseg.errors.BackendUnavailableError` (runtime
not installed, no verified export in the model folder, not this device); a prepared backend whose logits
on one seeded window differ from eager beyond its tolerance is skipped too. The reasons go into
:attr:`BackendSelection.skipped` and the summary line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Type

import torch
from torch import nn

from ..errors import BackendUnavailableError, InputError, ModelError
from .backend import Backend, RunnableNetwork, forward_with_aux
from .eager import EagerBackend
from .names import AUTO_ORDER, BACKEND_CHOICES, BACKENDS
from .openvino_backend import OpenVinoBackend

#: backend name -> class (the names are defined in :mod:`.names`)
BACKEND_CLASSES: Dict[str, Type[Backend]] = {"eager": EagerBackend, "openvino": OpenVinoBackend}
assert tuple(BACKEND_CLASSES) == BACKENDS, "runtime.names.BACKENDS and BACKEND_CLASSES disagree"


@dataclass
class BackendSelection:
    """Result of :func:`select_backend`.

    Attributes:
        backend: the chosen :class:`Backend`.
        network: its :class:`RunnableNetwork` (use it instead of the module).
        validation_max_abs: max |logit - eager logit| on the validation window (0 for eager).
        skipped: ``[(backend name, reason)]`` for the candidates tried before it, in order.
    """

    backend: Backend
    network: RunnableNetwork
    validation_max_abs: float
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The chosen backend's name."""
        return self.backend.name

    def summary(self) -> str:
        """One line for the log and ``metrics.json``: which backend, and why the others were skipped."""
        text = f"{self.backend.name} ({self.backend.description}"
        text += f"; max |diff| vs eager {self.validation_max_abs:.2e})" if self.backend.name != "eager" else ")"
        if self.skipped:
            text += "; skipped " + "; ".join(f"{n}: {r}" for n, r in self.skipped)
        return text

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {"backend": self.backend.name, "description": self.backend.description,
                "validation_max_abs": self.validation_max_abs, "atol": self.backend.atol, "rtol": self.backend.rtol,
                "skipped": [list(r) for r in self.skipped]}


def candidates(device_type: str, preference: str) -> List[str]:
    """Backends to try, in order: the named one (or the automatic order), then eager.

    Raises:
        InputError: ``preference`` is not ``auto`` or a backend name.
    """
    if preference not in BACKEND_CHOICES:
        raise InputError(f"unknown inference backend {preference!r}; expected one of {list(BACKEND_CHOICES)}")
    names = list(AUTO_ORDER.get(device_type, ("eager",))) if preference == "auto" else [preference]
    return names + ([] if "eager" in names else ["eager"])


def compare_outputs(backend: Backend, runnable: nn.Module, module: nn.Module, x: torch.Tensor) -> Tuple[float, str]:
    """Run ``runnable`` and eager ``module`` on ``x``: ``(max |diff|, "" or why it is outside the tolerance)``."""
    with torch.no_grad():
        pairs = list(zip(("seg_logits", "act_logits"), forward_with_aux(runnable, x), forward_with_aux(module, x)))
    worst = 0.0
    for label, got, ref in pairs:
        if ref is None:
            continue
        if got is None or tuple(got.shape) != tuple(ref.shape):
            return math.inf, f"{label} shape {None if got is None else tuple(got.shape)} != eager {tuple(ref.shape)}"
        diff = (got.float() - ref.float()).abs()
        worst = max(worst, float(diff.max()))
        if not bool(torch.all(diff <= backend.atol + backend.rtol * ref.float().abs())):
            return worst, (f"{label} differ from eager by up to {worst:.3g} "
                           f"(tolerance {backend.atol:g} + {backend.rtol:g} * |eager|)")
    return worst, ""


def _window_shape(module: nn.Module, window_zyx: Sequence[int] | None) -> Tuple[int, ...]:
    c = int(getattr(module, "in_channels", 1))
    if window_zyx is None:
        m = int(getattr(module, "size_multiple", 8))
        return (1, c, 2 * m + 1, 2 * m + 3, m + 5)
    window = tuple(int(s) for s in window_zyx)
    if len(window) != 3 or any(s < 1 for s in window):
        raise InputError(f"window_zyx must be 3 positive voxel counts (D, H, W); got {tuple(window_zyx)}")
    return (1, c) + window


def _try(backend: Backend, module: nn.Module, dev: torch.device, shape: Tuple[int, ...],
         model_dir: Path | None, card) -> Tuple[RunnableNetwork, float]:
    """Prepare ``backend`` and check it against eager on one seeded window; BackendUnavailableError if not."""
    if dev.type not in backend.devices:
        raise BackendUnavailableError(f"does not run on {dev.type}")
    runnable = backend.prepare(module, shape, model_dir=model_dir, card=card)
    if backend.name == "eager":
        return runnable, 0.0
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1234)).to(dev)
    worst, why = compare_outputs(backend, runnable, module, x)
    if why:
        raise BackendUnavailableError(why)
    return runnable, worst


def select_backend(module: nn.Module, device: str | torch.device = "cpu", window_zyx: Sequence[int] | None = None,
                   preference: str = "auto", model_dir: str | Path | None = None, card=None,
                   num_threads: int | None = None) -> BackendSelection:
    """Choose how to run ``module`` for sliding-window inference, build it and check it against eager.

    Args:
        module: trained network (set to eval mode), already on ``device``.
        device: where inference runs.
        window_zyx: the sliding window (D, H, W); the backend is compiled and checked on it.
        preference: ``"auto"`` or a backend name of :data:`~.names.BACKENDS`; eager is the fallback.
        model_dir, card: the model folder and card the network came from (the OpenVINO backend's export).
        num_threads: threads of a runtime with its own thread pool (default ``torch.get_num_threads()``);
            pass it when preparing in a background thread.

    Returns:
        :class:`BackendSelection`; the caller logs :meth:`BackendSelection.summary` (one line).

    Raises:
        InputError: unknown ``preference`` or bad ``window_zyx``.
        ModelError: not even eager PyTorch can run on this device.
    """
    dev = torch.device(device)
    module = module.eval()
    shape = _window_shape(module, window_zyx)
    folder = Path(model_dir) if model_dir is not None else None
    skipped: List[Tuple[str, str]] = []
    for name in candidates(dev.type, preference):
        backend = BACKEND_CLASSES[name](num_threads)
        try:
            runnable, worst = _try(backend, module, dev, shape, folder, card)
        except BackendUnavailableError as exc:
            skipped.append((name, str(exc)))
            continue
        return BackendSelection(backend, runnable, worst, skipped)
    raise ModelError("no inference backend could run this network: " + "; ".join(f"{n}: {r}" for n, r in skipped))
