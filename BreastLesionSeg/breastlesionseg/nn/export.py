"""Export a lesion network to TorchScript or ONNX for deployment and fast CPU runtimes.

Both exports keep the full contract: input ``(N, C, D, H, W)`` with any batch and spatial size
(dynamic axes; odd sizes are padded and cropped inside the graph), outputs
``seg_logits (N, L, D, H, W)`` and, for networks with an ACT head, ``act_logits (N, 2)``.

* TorchScript (``torch.jit.script``): the scripted module has ``forward`` and ``forward_with_aux``;
  outputs equal eager PyTorch to float32 round-off (tested: max abs difference <= 1e-5).
* ONNX (opset 18): input ``input``; outputs ``seg_logits`` (+ ``act_logits``). ONNX Runtime matches
  eager to ``atol = 1e-4`` on logits (tested; typically ~1e-5).

Why the TorchScript-based ONNX exporter (``dynamo=False``): the internal pad-to-multiple uses
``(m - size % m) % m`` on the input's shape; the ``torch.export`` (dynamo) exporter of torch 2.13
specialises that arithmetic to the example's size (it demands ``size = 8k - 7``), whereas the tracing
exporter records it as ONNX shape ops, so one graph serves every window size. Revisit when
``torch.export`` handles modular shape arithmetic.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError, ModelError
from ..io.atomic import atomic_path
from .base import SegmentationNetwork

log = logging.getLogger(__name__)

#: documented numerical tolerances of the exports against eager PyTorch (float32 logits)
TORCHSCRIPT_ATOL = 1e-5
ONNX_ATOL = 1e-4
ONNX_OPSET = 18


class _WithAux(nn.Module):
    """Export wrapper whose ``forward`` returns ``(seg_logits, act_logits)`` (or only seg_logits without ACT)."""

    def __init__(self, net: SegmentationNetwork) -> None:
        super().__init__()
        self.net = net
        self.has_act = getattr(net, "act_head", None) is not None

    def forward(self, x: torch.Tensor):  # noqa: D102 - see class docstring
        seg, act = self.net.forward_with_aux(x)
        if self.has_act:
            return seg, act
        return seg


def _check_module(module: nn.Module) -> SegmentationNetwork:
    if not isinstance(module, SegmentationNetwork):
        raise InputError(f"can only export breastlesionseg networks (MM3DUNet / UNet3D); got {type(module).__name__}")
    return module


def export_torchscript(module: nn.Module, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Script ``module`` (eval mode, CPU) and save it atomically to ``path`` (``.pt``).

    Load with ``torch.jit.load(path)``; call ``m(x)`` or ``m.forward_with_aux(x)``.

    Raises:
        InputError: not one of this package's networks, or ``path`` exists and ``overwrite`` is false.
    """
    net = _check_module(module)
    was_training = net.training
    net = net.eval()
    try:
        scripted = torch.jit.script(net.cpu())
    finally:
        net.train(was_training)
    with atomic_path(path, overwrite=overwrite) as tmp:
        scripted.save(str(tmp))
    log.info("exported TorchScript to %s", path)
    return Path(path)


def export_onnx(module: nn.Module, path: str | os.PathLike, example_shape: Sequence[int] | None = None,
                overwrite: bool = False, opset: int = ONNX_OPSET) -> Path:
    """Export ``module`` to ONNX with dynamic batch and spatial axes.

    Args:
        module: an MM3DUNet / UNet3D (exported in eval mode on CPU).
        path: output ``.onnx`` file (written atomically).
        example_shape: ``(N, C, D, H, W)`` of the tracing example; default ``(1, C, 2m+1, 2m+3, 2m+5)``
            with ``m = module.size_multiple``. Any shape works afterwards (dynamic axes).
        overwrite: replace an existing file.
        opset: ONNX opset version.

    Returns:
        ``path``. Input name ``input``; outputs ``seg_logits`` (+ ``act_logits`` with an ACT head).

    Raises:
        InputError: bad module/shape, or ``path`` exists and ``overwrite`` is false.
        ModelError: the exporter failed.
    """
    net = _check_module(module)
    m = net.size_multiple
    shape = tuple(int(s) for s in (example_shape or (1, net.in_channels, 2 * m + 1, 2 * m + 3, 2 * m + 5)))
    if len(shape) != 5 or any(s < 1 for s in shape) or shape[1] != net.in_channels:
        raise InputError(
            f"example_shape must be (N, C={net.in_channels}, D, H, W) with positive sizes; got {tuple(example_shape or ())}"
        )
    target = Path(path)
    if target.exists() and not overwrite:
        raise InputError(f"refusing to overwrite existing file '{target}' (use --force / overwrite=True)")
    was_training = net.training
    wrapper = _WithAux(net.eval().cpu()).eval()
    outputs = ["seg_logits", "act_logits"] if wrapper.has_act else ["seg_logits"]
    spatial = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    dynamic = {"input": spatial, "seg_logits": spatial}
    if wrapper.has_act:
        dynamic["act_logits"] = {0: "batch"}
    example = torch.randn(shape)
    try:
        with atomic_path(target, overwrite=overwrite) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer / deprecation chatter; correctness is tested against eager
            torch.onnx.export(
                wrapper, (example,), str(tmp), dynamo=False, input_names=["input"], output_names=outputs,
                dynamic_axes=dynamic, opset_version=opset,
            )
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; report them as a ModelError
        raise ModelError(f"ONNX export of {type(net).__name__} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        net.train(was_training)
    log.info("exported ONNX (opset %d) to %s", opset, target)
    return target


def onnx_session(path: str | os.PathLike):
    """An ``onnxruntime.InferenceSession`` on CPU for an exported model (needs the ``export`` extra)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # optional dependency
        raise ModelError("onnxruntime is not installed (pip install 'breastlesionseg[export]')") from exc
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_onnx(session, x: "torch.Tensor") -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run an exported model: ``x (N, C, D, H, W)`` -> ``(seg_logits, act_logits or None)`` as tensors."""
    outs = session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy().astype("float32")})
    seg = torch.from_numpy(outs[0])
    act = torch.from_numpy(outs[1]) if len(outs) > 1 else None
    return seg, act
