"""Grad-CAM heat map of an image-level logit of a 2D multi-task network (MONAI ``GradCAM``).

The class activation map is taken on the network's ``gradcam_layer`` (the deepest features, which feed
the image-level heads) for the chosen head (``"malignancy"`` or ``"lesion"``), upsampled to the input,
ReLU'd and divided by its maximum: (S, S) in [0, 1], 1 = strongest evidence for that logit.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..errors import ModelError

HEADS: tuple[str, ...] = ("malignancy", "lesion")


class _HeadLogit(nn.Module):
    """Expose one image-level logit of a multi-task network as (N, 1) class scores, for MONAI's CAM classes."""

    def __init__(self, net: nn.Module, head: str) -> None:
        super().__init__()
        self.net, self.head = net, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        output = self.net(x)
        return getattr(output, f"{self.head}_logit")[:, None]


def _layer_name(net: nn.Module) -> str:
    layer = getattr(net, "gradcam_layer", None)
    for name, module in net.named_modules():
        if module is layer and name:
            return f"net.{name}"
    raise ModelError(f"{type(net).__name__} has no 'gradcam_layer' sub-module: no Grad-CAM heat map")


def gradcam_map(model: nn.Module, image: torch.Tensor, head: str = "malignancy") -> np.ndarray:
    """Grad-CAM of ``head`` for one network input.

    Args:
        model: 2D multi-task network with a ``gradcam_layer`` (deep-copied; the caller's model gets no hooks).
        image: (C, S, S) network input.
        head: ``"malignancy"`` or ``"lesion"``.
    Returns:
        (S, S) float32 heat map in [0, 1] (all zeros when nothing supports the logit).
    """
    from monai.visualize import GradCAM

    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}")
    net = copy.deepcopy(model).float().eval()
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    cam = GradCAM(_HeadLogit(net, head), target_layers=_layer_name(net), postprocessing=lambda m: m)
    with torch.enable_grad(), torch.inference_mode(False):
        heat = cam(image[None].float().contiguous().clone().requires_grad_(True), class_idx=0)
    heat_np = np.nan_to_num(np.maximum(heat[0, 0].detach().numpy(), 0.0)).astype(np.float32)
    peak = float(heat_np.max())
    return heat_np / peak if peak > 0 else heat_np
