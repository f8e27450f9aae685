"""The backend interface: a way to run a trained lesion network, with a stated tolerance against eager.

A :class:`Backend` turns a trained network (``breastlesionseg.nn`` contract: ``forward_with_aux(x)
-> (seg_logits, act_logits | None)``) into a :class:`RunnableNetwork`, an inference-only module with the
same contract, which the sliding window uses in place of the network. A backend that cannot run here
raises :class:`~breastlesionseg.errors.BackendUnavailableError` (and only that); the selection then
falls back to the next one.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

import torch
from torch import nn

from .names import BACKEND_DESCRIPTIONS

if TYPE_CHECKING:  # pragma: no cover
    from ..nn.model_card import ModelCard


class RunnableNetwork(nn.Module):
    """An inference-only network produced by a backend.

    Contract: ``forward(x (N, C, D, H, W) float32) -> seg_logits (N, L, D, H, W)`` and
    ``forward_with_aux(x) -> (seg_logits, act_logits (N, 2) or None)``; outputs are float32 (eager under
    CUDA autocast: float16, cast by the caller), on the input's device. No autograd.

    Attributes:
        backend_name: name of the backend that built it.
        in_channels, out_channels: the wrapped network's channels.
        runs_on_torch_threads: ``False`` for a runtime with its own thread pool (OpenVINO); the sliding
            window then drops PyTorch to one thread so its idle OpenMP workers do not take the cores.
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
        name: key in :data:`~breastlesionseg.runtime.names.BACKENDS`.
        atol, rtol: tolerance of its logits against eager float32 (``|a - b| <= atol + rtol * |b|``),
            checked by the selection on the window before use.
        devices: device types it runs on (``"cpu"``, ``"cuda"``).
        num_threads: threads of a runtime with its own thread pool; ``None``: ``torch.get_num_threads()``.
    """

    name: str = "?"
    atol: float = 0.0
    rtol: float = 0.0
    devices: Tuple[str, ...] = ("cpu",)

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads

    @property
    def description(self) -> str:
        """One line for logs and reports (from :data:`~breastlesionseg.runtime.names.BACKEND_DESCRIPTIONS`)."""
        return BACKEND_DESCRIPTIONS.get(self.name, self.name)

    @abc.abstractmethod
    def prepare(self, module: nn.Module, window_shape: Sequence[int], model_dir: Path | None = None,
                card: "ModelCard | None" = None) -> RunnableNetwork:
        """Build a :class:`RunnableNetwork` for ``module`` (eval mode, not modified).

        Args:
            module: the trained network.
            window_shape: ``(N, C, D, H, W)`` of the sliding window it will mostly see.
            model_dir: the model folder (where an exported file lives), if the model came from one.
            card: the model card of ``model_dir``.

        Raises:
            BackendUnavailableError: the backend cannot run this network here (the reason says why).
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
