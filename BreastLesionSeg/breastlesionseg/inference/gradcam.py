"""Grad-CAM heat map of the ACT ("lesion present") decision, for explanation (the ultrasound attention U-Net and U2NET-Lite papers).

The class activation map is computed with :class:`monai.visualize.GradCAM` on the network's
encoder bottleneck (``module.bottleneck``), for class 1 of the ACT head, window by window; the raw
(ReLU'd, un-normalised) maps are blended with the same Gaussian sliding window as the
segmentation and normalised once for the whole exam, so windows stay comparable. The result is a
(z, y, x) map in [0, 1] on the model grid (1 = the strongest evidence for "lesion present").
"""
from __future__ import annotations

import copy
import logging
from typing import Callable, Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.visualize import GradCAM
from torch import nn

from ..errors import CancelledError, ModelError
from ..progress import CancelToken
from .sliding_window import count_windows

log = logging.getLogger(__name__)


class _ActLogits(nn.Module):
    """Expose a segmentation network's ACT logits (N, 2) as its output, for MONAI's CAM classes."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        _, act = self.net.forward_with_aux(x)
        if act is None:
            raise ModelError("this model has no ACT head, so no Grad-CAM heat map can be computed")
        return act


def supports_gradcam(model: nn.Module) -> bool:
    """True when ``model`` has an ACT head and an encoder ``bottleneck`` module to hook."""
    return hasattr(model, "forward_with_aux") and isinstance(getattr(model, "bottleneck", None), nn.Module) and bool(
        getattr(getattr(model, "config", None), "act", True)
    )


def gradcam_heatmap(
    model: nn.Module,
    channels: np.ndarray,
    roi_size_zyx: Sequence[int],
    *,
    overlap: float = 0.25,
    sigma_scale: float = 0.125,
    device: torch.device | str = "cpu",
    breast_mask: np.ndarray | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Grad-CAM of the ACT head on the encoder bottleneck over the whole model-grid input.

    Args:
        model: network with ``forward_with_aux`` returning ACT logits and a ``bottleneck`` module
            (it is deep-copied; the caller's model gets no hooks).
        channels: model input (C, z, y, x) float32.
        roi_size_zyx: window size (z, y, x).
        overlap: window overlap in [0, 1).
        sigma_scale: Gaussian blending sigma relative to the window.
        device: where to run.
        breast_mask: optional (z, y, x) mask; the map is normalised by its maximum inside the mask
            and set to 0 outside.
        progress: ``f(fraction, message)``.
        cancel: ``is_set()`` token checked before every window.

    Returns:
        Heat map (z, y, x) float32 in [0, 1] on the model grid.

    Raises:
        ModelError: the model has no ACT head or no ``bottleneck``.
        CancelledError: cancelled.
    """
    if not supports_gradcam(model):
        raise ModelError("the model has no ACT head with an encoder 'bottleneck' module: no Grad-CAM heat map")
    device = torch.device(device)
    net = copy.deepcopy(model).to(device).eval()
    for p in net.parameters():
        p.requires_grad_(True)
    cam = GradCAM(_ActLogits(net), target_layers="net.bottleneck", postprocessing=lambda m: m)
    roi = [int(r) for r in roi_size_zyx]
    total = count_windows(channels.shape[1:], roi, overlap)
    done = [0]

    def predictor(patch: torch.Tensor) -> torch.Tensor:
        if cancel is not None and cancel.is_set():
            raise CancelledError("segmentation cancelled by the user")
        with torch.enable_grad():
            out = cam(patch.detach(), class_idx=1)
        done[0] += patch.shape[0]
        if progress is not None:
            progress(min(1.0, done[0] / total), f"heat map window {done[0]}/{total}")
        return out.detach().float()

    x = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))[None].to(device)
    with torch.inference_mode(False):
        heat = sliding_window_inference(x, roi, 1, predictor, overlap=overlap, mode="gaussian",
                                        sigma_scale=sigma_scale)
    heat_np = heat[0, 0].detach().cpu().numpy().astype(np.float32)
    heat_np = np.nan_to_num(np.maximum(heat_np, 0.0))
    region = heat_np if breast_mask is None else heat_np[np.asarray(breast_mask) > 0]
    peak = float(region.max()) if region.size else 0.0
    if peak > 0:
        heat_np = np.clip(heat_np / peak, 0.0, 1.0)
    if breast_mask is not None:
        heat_np[np.asarray(breast_mask) == 0] = 0.0
    return heat_np.astype(np.float32, copy=False)
