"""Grad-CAM heat map of an image-level logit of a 2D multi-task network (MONAI ``GradCAM``).

The class activation map is taken on the network's ``gradcam_layer`` (the deepest features, which feed
the image-level heads) for the chosen head (``"malignancy"`` or ``"lesion"``), upsampled to the input,
ReLU'd and divided by its maximum: (S, S) in [0, 1], 1 = strongest evidence for that logit.
"""
from __future__ import annotations

import copy
import warnings
import weakref
from typing import Any, Callable

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
        model: 2D multi-task network with a ``gradcam_layer`` (a hooked copy is made once per model and
            weights version and reused; the caller's model gets no hooks).
        image: (C, S, S) network input.
        head: ``"malignancy"`` or ``"lesion"``.
    Returns:
        (S, S) float32 heat map in [0, 1] (all zeros when nothing supports the logit).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}")
    cam, through_input = _cam_of(model, head)
    with torch.enable_grad(), torch.inference_mode(False), warnings.catch_warnings():
        # expected: the hooked layer's inputs need no gradient (the backward pass stops at that layer)
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        heat = cam(image[None].float().contiguous().clone().requires_grad_(through_input), class_idx=0)
    return _normalised(heat)


def forward_with_gradcam(model: nn.Module, batch: torch.Tensor, head: str = "malignancy") -> tuple[Any, np.ndarray]:
    """One forward pass of a batch without autograd, plus the Grad-CAM of its first image from the heads alone.

    The image-level logits are ``model.heads(features)`` of the ``gradcam_layer`` output, so the gradient
    Grad-CAM needs (logit with respect to those features) runs through the small heads only: the pass
    keeps the features (a temporary forward hook on the caller's network, removed on return) and MONAI's
    ``GradCAM`` runs on a copy of the heads. Same map as :func:`gradcam_map`, without its second forward pass.

    Args:
        model: 2D multi-task network with ``gradcam_layer`` and ``heads`` (``nn.multitask_output.ImageLevelHeads``).
        batch: (N, C, S, S) network inputs; the heat map is that of ``batch[0]``.
        head: ``"malignancy"`` or ``"lesion"``.
    Returns:
        (the network's output for the whole batch; (S, S) float32 heat map of ``batch[0]`` in [0, 1]).
    """
    from monai.visualize.class_activation_maps import default_upsampler

    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}")
    features: list[torch.Tensor] = []
    hook = _gradcam_layer(model).register_forward_hook(lambda _module, _inputs, output: features.append(output))
    try:
        with torch.no_grad():
            output = model(batch)
    finally:
        hook.remove()
    with torch.enable_grad(), torch.inference_mode(False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        heat = _heads_cam_of(model, head)(features[0][:1].detach().float().clone().requires_grad_(True), class_idx=0)
    return output, _normalised(default_upsampler(tuple(batch.shape[2:]))(heat.detach()))


def _normalised(heat: torch.Tensor) -> np.ndarray:
    """(S, S) float32 map of a (1, 1, S, S) CAM: negatives and NaN to 0, divided by its maximum (when > 0)."""
    heat_np = np.nan_to_num(np.maximum(heat[0, 0].detach().numpy(), 0.0)).astype(np.float32)
    peak = float(heat_np.max())
    return heat_np / peak if peak > 0 else heat_np


class _HeadOnFeatures(nn.Module):
    """One image-level logit of a network's ``heads`` as a function of its ``gradcam_layer`` output: (N, 1)."""

    def __init__(self, heads: nn.Module, head: str) -> None:
        super().__init__()
        self.features = nn.Identity()  # the layer MONAI hooks: its output is the gradcam_layer output
        self.heads, self.index = heads, {"lesion": 0, "malignancy": 1}[head]

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.heads(self.features(features))[self.index][:, None]


def _gradcam_layer(model: nn.Module) -> nn.Module:
    layer = getattr(model, "gradcam_layer", None)
    if layer is None or not isinstance(getattr(model, "heads", None), nn.Module):
        raise ModelError(f"{type(model).__name__} has no 'gradcam_layer' and 'heads': no Grad-CAM heat map")
    return layer


def _per_weights(cache: "weakref.WeakKeyDictionary", model: nn.Module, build: Callable[[nn.Module], Any]) -> Any:
    """``build(model)``, kept in ``cache`` for ``model`` until any of its parameters changes in place."""
    version = tuple(p._version for p in model.parameters())
    cached = cache.get(model)
    if cached is None or cached[0] != version:
        cached = (version, build(model))
        cache[model] = cached
    return cached[1]


#: model -> (weights version, {head: MONAI GradCAM on a copy of the model's heads})
_HEAD_CAMS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], dict]]" = weakref.WeakKeyDictionary()


def _heads_cam_of(model: nn.Module, head: str):
    """MONAI ``GradCAM`` of ``head`` on a float32 copy of ``model.heads`` (rebuilt when the weights change)."""
    from monai.visualize import GradCAM

    def build(net: nn.Module) -> dict:
        heads = copy.deepcopy(net.heads).float().eval().requires_grad_(False)
        return {h: GradCAM(_HeadOnFeatures(heads, h), target_layers="features", postprocessing=lambda m: m) for h in HEADS}

    return _per_weights(_HEAD_CAMS, model, build)[head]


#: model -> (weights version, ({head: MONAI GradCAM on a hooked copy}, gradients through the input?))
_CAMS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], tuple[dict, bool]]]" = weakref.WeakKeyDictionary()


def _cam_of(model: nn.Module, head: str):
    """The MONAI ``GradCAM`` of ``head`` on a hooked float32 copy of ``model`` (rebuilt when its weights change).

    Only the CAM layer's parameters require gradients, so the backward pass runs from the logit back to
    that layer, not through the encoder. Copying the network costs about as much as one forward pass,
    hence the cache (keyed by the model, invalidated by any in-place change of its parameters).
    """
    from monai.visualize import GradCAM

    def build(original: nn.Module) -> tuple[dict, bool]:
        net = copy.deepcopy(original).float().eval()
        layer = _layer_name(net)
        net.requires_grad_(False)
        net.gradcam_layer.requires_grad_(True)
        through_input = not any(p.requires_grad for p in net.parameters())
        return {h: GradCAM(_HeadLogit(net, h), target_layers=layer, postprocessing=lambda m: m) for h in HEADS}, through_input

    cams, through_input = _per_weights(_CAMS, model, build)
    return cams[head], through_input
