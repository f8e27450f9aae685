"""Backend running the network's ONNX export in ONNX Runtime (CPU execution provider, all graph optimisations)."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..nn.export import ONNX_ATOL
from .backend import RunnableNetwork, network_has_act
from .onnx_export_backend import OnnxExportBackend

log = logging.getLogger(__name__)


def _import_ort():
    import onnxruntime  # noqa: PLC0415 - optional dependency

    return onnxruntime


class _OrtNetwork(RunnableNetwork):
    backend_name = "onnxruntime"
    runs_on_torch_threads = False  # its own thread pool

    def __init__(self, session, in_channels: int, out_channels: int, has_act: bool) -> None:
        super().__init__(in_channels, out_channels)
        self.session = session
        self.has_act = has_act
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork` (runs on CPU; outputs return to ``x.device``)."""
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outs = self.session.run(self.output_names, {self.input_name: arr})
        seg = torch.from_numpy(outs[0]).to(x.device)
        act = torch.from_numpy(outs[1]).to(x.device) if self.has_act and len(outs) > 1 else None
        return seg, act


class OnnxRuntimeBackend(OnnxExportBackend):
    """ONNX export (``breastlesionseg.nn.export``, dynamic spatial axes) run by ONNX Runtime on CPU.

    Args:
        num_threads: intra-op threads; default ``torch.get_num_threads()`` (same as PyTorch).
    """

    name = "onnxruntime"
    description = "ONNX Runtime CPU execution provider, ORT_ENABLE_ALL graph optimisations (float32)"
    atol = ONNX_ATOL
    rtol = 1e-4
    devices = ("cpu",)
    runtime_module = "onnxruntime"

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Export ``module`` to a temporary ONNX file and open an inference session on it."""
        ort = _import_ort()
        from ..nn.export import export_onnx  # noqa: PLC0415

        with tempfile.TemporaryDirectory(prefix="bls-ort-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx(module.eval(), path)  # small traced example; spatial axes are dynamic
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = int(self.num_threads or torch.get_num_threads())
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            session = ort.InferenceSession(os.fspath(path), sess_options=opts, providers=["CPUExecutionProvider"])
        return _OrtNetwork(session, module.in_channels, module.out_channels, network_has_act(module))
