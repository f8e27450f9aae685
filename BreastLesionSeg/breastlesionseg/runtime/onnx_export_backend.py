"""Shared base of the backends that run the network's ONNX export in another inference runtime."""
from __future__ import annotations

import importlib
from typing import Tuple

from torch import nn

from .backend import Backend


class OnnxExportBackend(Backend):
    """A backend that exports the network with :func:`~breastlesionseg.nn.export.export_onnx` and runs it elsewhere.

    Subclasses set :attr:`runtime_module` (the Python package of the runtime) and implement ``prepare``.

    Args:
        num_threads: intra-op threads of the runtime; default ``torch.get_num_threads()`` (same as PyTorch).
    """

    runtime_module: str = "?"

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads

    def availability(self) -> Tuple[bool, str]:
        """Needs the runtime's package, and ``onnx`` for the exporter."""
        try:
            importlib.import_module(self.runtime_module)
            importlib.import_module("onnx")
        except ImportError as exc:
            return False, f"{self.name} backend unavailable: {exc}"
        return True, ""

    def supports(self, module: nn.Module) -> Tuple[bool, str]:
        """Any breastlesionseg network (the exporter handles exactly those)."""
        from ..nn.base import SegmentationNetwork  # noqa: PLC0415

        if not isinstance(module, SegmentationNetwork):
            return False, f"{self.name} backend exports breastlesionseg networks only; got {type(module).__name__}"
        return True, ""
