"""How the lesion network runs: eager PyTorch (the reference) or OpenVINO on CPU, chosen per device.

Public API::

    from breastlesionseg.runtime import BACKENDS, select_backend, BackendSelection
    selection = select_backend(model, device, window_zyx, model_dir=folder, card=card)
    selection.network            # drop-in for the model: forward / forward_with_aux, no autograd

``BACKENDS`` (from :mod:`.names`) imports without torch; the rest is imported on first use.
The OpenVINO backend runs the ONNX file exported and verified once into the model folder
(:mod:`.model_file`, ``breastlesionseg export MODEL --format onnx --into-model-dir``); without it, or
when its sha256 does not match the model card, inference falls back to eager PyTorch.
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports
from typing import TYPE_CHECKING

from .names import AUTO_ORDER, BACKEND_CHOICES, BACKEND_DESCRIPTIONS, BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from .backend import Backend, RunnableNetwork
    from .memory import peak_rss_bytes
    from .select import BackendSelection, select_backend

_LAZY = {"Backend": "backend", "RunnableNetwork": "backend", "peak_rss_bytes": "memory",
         "BackendSelection": "select", "select_backend": "select"}

__all__ = ["AUTO_ORDER", "BACKENDS", "BACKEND_CHOICES", "BACKEND_DESCRIPTIONS", *sorted(_LAZY)]

__getattr__ = lazy_exports(__name__, _LAZY)[0]
