"""Backend running the model folder's verified ONNX export in OpenVINO (CPU plugin, float32).

OpenVINO's CPU plugin runs MM-3DUNet's depthwise 3D convolutions and instance norms on blocked-layout JIT
kernels and fuses activations into the convolutions: one 16 x 32 x 32 window of the demo model takes
5.2 ms against 21.1 ms in eager PyTorch on the 2-core benchmark machine (docs/performance.md).

The ONNX file is exported and verified against eager PyTorch once, into the model folder
(:mod:`.model_file`); here it is only read and compiled. A compiled model is specialised to one static
input shape (the plugin then picks its kernels and memory plan once); the sliding window feeds the same
window shape every time, so the network keeps a small cache of compiled shapes.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import BackendUnavailableError
from .backend import Backend, RunnableNetwork, network_has_act

log = logging.getLogger(__name__)

#: compiled input shapes kept per network (sliding window: one window shape, plus a ragged last batch)
MAX_COMPILED_SHAPES = 4
#: tolerance against eager float32 logits. OpenVINO's MVN accumulates its statistics differently from
#: PyTorch's instance norm; measured max |diff| 6e-6 at 1 x 3 x 16 x 32 x 32 and 5.6e-4 to 8.4e-4 at
#: 1 x 1 x 32 x 256 x 256 (logits up to ~2.5).
OPENVINO_ATOL = 2e-3
OPENVINO_RTOL = 1e-3


def import_openvino():
    """The ``openvino`` module; :class:`BackendUnavailableError` when it is not installed."""
    try:
        import openvino  # noqa: PLC0415 - optional dependency (the 'fast' extra)
    except ImportError as exc:
        raise BackendUnavailableError(f"openvino is not installed (pip install 'breastlesionseg[fast]'): {exc}") from exc
    return openvino


class OpenVinoNetwork(RunnableNetwork):
    """A network read from an ONNX file and compiled per static input shape (LRU cache)."""

    backend_name = "openvino"
    runs_on_torch_threads = False  # its own thread pool

    def __init__(self, core, model, config: dict, in_channels: int, out_channels: int, has_act: bool) -> None:
        super().__init__(in_channels, out_channels)
        self.core = core
        self.model = model  # the dynamic-shape ov.Model read from the ONNX file
        self.config = dict(config)
        self.has_act = has_act
        self._compiled: "OrderedDict[Tuple[int, ...], tuple]" = OrderedDict()

    def request(self, shape: Tuple[int, ...]):
        """``(compiled model, infer request)`` for a static input ``shape`` (compiled on first use)."""
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
        compiled, request = self.request(tuple(int(s) for s in arr.shape))
        request.infer({0: arr})
        # copy: the request's output buffers are reused by the next call
        seg = torch.from_numpy(request.get_output_tensor(0).data.copy()).to(x.device)
        act = None
        if self.has_act and len(compiled.outputs) > 1:
            act = torch.from_numpy(request.get_output_tensor(1).data.copy()).to(x.device)
        return seg, act


def compile_onnx(path: Path, in_channels: int, out_channels: int, has_act: bool, num_threads: int | None = None,
                 window_shape: Sequence[int] | None = None) -> OpenVinoNetwork:
    """Read an ONNX file into OpenVINO and compile it for ``window_shape`` (N, C, D, H, W) when given.

    Raises:
        BackendUnavailableError: openvino missing, or the file cannot be read or compiled.
    """
    ov = import_openvino()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(num_threads or torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": "f32",  # never bf16/fp16 behind the user's back
    }
    try:
        core = ov.Core()
        network = OpenVinoNetwork(core, core.read_model(os.fspath(path)), config, in_channels, out_channels, has_act)
        if window_shape is not None:
            network.request(tuple(int(s) for s in window_shape))  # compile now, not inside the first window
    except RuntimeError as exc:  # OpenVINO reports unreadable files and compile failures as RuntimeError
        raise BackendUnavailableError(f"OpenVINO cannot read or compile '{path}': {exc}") from exc
    return network


class OpenVinoBackend(Backend):
    """The model folder's verified ONNX export, compiled by OpenVINO for the CPU, float32."""

    name = "openvino"
    atol = OPENVINO_ATOL
    rtol = OPENVINO_RTOL
    devices = ("cpu",)

    def prepare(self, module: nn.Module, window_shape: Sequence[int], model_dir: Path | None = None,
                card=None) -> RunnableNetwork:
        """Compile ``model_dir``'s ONNX export (sha256 checked against ``card``) for ``window_shape``."""
        from .model_file import verified_onnx_path  # noqa: PLC0415

        import_openvino()  # the cheaper refusal first
        path = verified_onnx_path(model_dir, card)
        return compile_onnx(path, module.in_channels, module.out_channels, network_has_act(module),
                            self.num_threads, window_shape)
