"""Backend running the network's ONNX export in OpenVINO (CPU plugin, float32).

OpenVINO's CPU plugin runs the depthwise 3D convolutions and instance norms (``MVN``) of MM-3DUNet on
blocked-layout JIT kernels (``brgconv_avx512_dw``, ``jit_avx512`` MVN on the measured Zen 4 machine)
and fuses activations into the convolutions; on the 2-core benchmark machine it runs MM-3DUNet
t=12+ACT at 1 x 1 x 32 x 256 x 256 1.7x faster than ONNX Runtime (1.44 s vs 2.40 s, docs/performance.md).

A compiled model is specialised to one static input shape (static shapes let the plugin choose its
kernels and memory plan once); the sliding window feeds the same window shape every time, so the
network keeps a small cache of compiled shapes and compiles a new one on first use of a shape.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .backend import RunnableNetwork, network_has_act
from .onnx_export_backend import OnnxExportBackend

log = logging.getLogger(__name__)

#: compiled input shapes kept per network (sliding window: one window shape, plus a ragged last batch)
MAX_COMPILED_SHAPES = 4
#: tolerance against eager float32 logits. OpenVINO's MVN accumulates its statistics differently from
#: PyTorch's instance norm; measured max |diff| 6e-6 at 1 x 3 x 16 x 32 x 32 and 5.6e-4 to 8.4e-4 at
#: 1 x 1 x 32 x 256 x 256 (logits up to ~2.5; ONNX Runtime on the same input: 1.1e-4).
OPENVINO_ATOL = 2e-3
OPENVINO_RTOL = 1e-3


def _import_openvino():
    import openvino  # noqa: PLC0415 - optional dependency

    return openvino


class _OpenVinoNetwork(RunnableNetwork):
    backend_name = "openvino"
    runs_on_torch_threads = False  # its own thread pool

    def __init__(self, core, model, config: dict, in_channels: int, out_channels: int, has_act: bool) -> None:
        super().__init__(in_channels, out_channels)
        self.core = core
        self.model = model  # the dynamic-shape ov.Model read from the ONNX export
        self.config = dict(config)
        self.has_act = has_act
        self._compiled: "OrderedDict[Tuple[int, ...], tuple]" = OrderedDict()

    def _request(self, shape: Tuple[int, ...]):
        """The infer request for a static input ``shape`` (compiled on first use, LRU-cached)."""
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self.model.clone()
        model.reshape({model.inputs[0].get_any_name(): list(shape)})
        compiled = self.core.compile_model(model, "CPU", self.config)
        entry = (compiled, compiled.create_infer_request())
        self._compiled[shape] = entry
        while len(self._compiled) > MAX_COMPILED_SHAPES:
            self._compiled.popitem(last=False)
        log.debug("openvino: compiled the network for input shape %s", shape)
        return entry

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """See :class:`RunnableNetwork` (runs on CPU; outputs return to ``x.device``)."""
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        compiled, request = self._request(tuple(int(s) for s in arr.shape))
        request.infer({0: arr})
        # copy: the request's output buffers are reused by the next call
        seg = torch.from_numpy(request.get_output_tensor(0).data.copy()).to(x.device)
        act = None
        if self.has_act and len(compiled.outputs) > 1:
            act = torch.from_numpy(request.get_output_tensor(1).data.copy()).to(x.device)
        return seg, act


class OpenVinoBackend(OnnxExportBackend):
    """ONNX export (``breastlesionseg.nn.export``) compiled by OpenVINO for the CPU, float32.

    Args:
        num_threads: inference threads; default ``torch.get_num_threads()`` (same as PyTorch).
    """

    name = "openvino"
    description = "OpenVINO CPU plugin, static window shape, float32 (f32 inference precision)"
    atol = OPENVINO_ATOL
    rtol = OPENVINO_RTOL
    devices = ("cpu",)
    runtime_module = "openvino"

    def config(self) -> dict:
        """The CPU plugin properties used for every compiled shape."""
        return {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(self.num_threads or torch.get_num_threads()),
            "INFERENCE_PRECISION_HINT": "f32",  # never bf16/fp16 behind the user's back
        }

    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Export ``module`` to ONNX, read it into OpenVINO and compile it for ``example_shape``."""
        ov = _import_openvino()
        from ..nn.export import export_onnx  # noqa: PLC0415

        core = ov.Core()
        with tempfile.TemporaryDirectory(prefix="bls-ov-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx(module.eval(), path)  # small traced example; spatial axes are dynamic
            model = core.read_model(os.fspath(path))  # fully loaded: the file may go
        network = _OpenVinoNetwork(core, model, self.config(), module.in_channels, module.out_channels,
                                   network_has_act(module))
        shape = tuple(int(s) for s in example_shape)
        if len(shape) == 5:
            network._request(shape)  # compile the window shape now, not inside the first window
        return network
