"""The backend interface: a way to run a trained lesion network fast, with a stated tolerance.

A :class:`Backend` turns a trained network (``breastlesionseg.nn`` contract: ``forward_with_aux(x)
-> (seg_logits, act_logits | None)``) into a :class:`RunnableNetwork`: an inference-only module
with the same contract, so the inference engine can use it where it used the network
(``forward_seg_act`` calls ``forward_with_aux``). Each backend states how far its logits may be
from eager float32 PyTorch (``atol + rtol * |eager|``); :func:`~breastlesionseg.runtime.select.select_backend`
checks that on a small odd-sized input before using it.
"""
from __future__ import annotations

import abc
from typing import Optional, Sequence, Tuple

import torch
from torch import nn


class RunnableNetwork(nn.Module):
    """An inference-only network produced by a backend.

    Contract: ``forward(x (N, C, D, H, W) float32) -> seg_logits (N, L, D, H, W)`` and
    ``forward_with_aux(x) -> (seg_logits, act_logits (N, 2) or None)``; outputs are float32,
    contiguous, on the input's device. No autograd.

    Attributes:
        backend_name: name of the backend that built it.
        in_channels, out_channels: the wrapped network's channels.
        runs_on_torch_threads: ``True`` when the forward pass runs on PyTorch's intra-op thread pool;
            ``False`` for backends with their own thread pool (OpenVINO, ONNX Runtime). The sliding
            window then drops PyTorch to one thread: PyTorch's OpenMP workers spin for a while after
            each small blending op and take the cores from the runtime's threads (measured on the Duke
            exam, 2 cores, one session: OpenVINO 8.4 ms per window with 2 PyTorch threads, 4.9 ms with 1; not
            reproduced in a later, slower machine state, see docs/performance.md).
    """

    backend_name: str = "?"
    runs_on_torch_threads: bool = True

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)

    def forward_with_aux(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) -> (N, L, D, H, W) segmentation logits."""
        seg, _ = self.forward_with_aux(x)
        return seg


class Backend(abc.ABC):
    """A way to run a network; subclasses set the class attributes and implement :meth:`prepare`.

    Attributes:
        name: short identifier (``eager``, ``channels_last``, ``fused_cec``, ``onnxruntime``, ``bf16``).
        description: one line for logs and reports.
        atol, rtol: tolerance of its logits against eager float32 (``|a - b| <= atol + rtol * |b|``).
        exact: ``True`` when it computes the same float32 arithmetic up to round-off (auto-selectable);
            reduced-precision backends are ``False`` and are used only when asked for by name.
        devices: device types it runs on (``"cpu"``, ``"cuda"``).
        num_threads: threads of a runtime with its own thread pool (OpenVINO, ONNX Runtime); ``None``
            means ``torch.get_num_threads()`` at preparation time.
    """

    name: str = "?"
    description: str = ""
    atol: float = 1e-5
    rtol: float = 1e-5
    exact: bool = True
    devices: Tuple[str, ...] = ("cpu",)
    num_threads: Optional[int] = None

    def availability(self) -> Tuple[bool, str]:
        """``(True, "")`` when the backend's dependencies are importable, else ``(False, why)``."""
        return True, ""

    def supports(self, module: nn.Module) -> Tuple[bool, str]:
        """``(True, "")`` when this backend can run ``module``, else ``(False, why)``."""
        return True, ""

    @abc.abstractmethod
    def prepare(self, module: nn.Module, example_shape: Sequence[int]) -> RunnableNetwork:
        """Build a :class:`RunnableNetwork` for ``module`` (eval mode), tuned for inputs like ``example_shape``.

        Args:
            module: a trained network in eval mode (not modified).
            example_shape: ``(N, C, D, H, W)`` of the inputs it will mostly see (the window).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def network_has_act(module: nn.Module) -> bool:
    """Whether ``module`` has an ACT head (``act_head`` not ``None``)."""
    return getattr(module, "act_head", None) is not None


def forward_with_aux(module: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``module.forward_with_aux(x)`` when it has one, else ``(module(x), None)``."""
    if hasattr(module, "forward_with_aux"):
        return module.forward_with_aux(x)
    return module(x), None
