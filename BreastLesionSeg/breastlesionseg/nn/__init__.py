"""Lesion networks (MM-3DUNet, classic 3D U-Net), model cards and model folders, input channels, export.

Public API::

    from breastlesionseg.nn import (MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig, build_network,
                                    ModelConfig, ModelCard, save_model, load_model, list_models,
                                    build_channels, count_parameters, count_flops)

Every network: ``forward(x (N, C, D, H, W)) -> seg_logits (N, L, D, H, W)``;
``forward_with_aux(x) -> (seg_logits, act_logits (N, 2) or None)``; ``model.bottleneck`` is the
encoder's last module (hook it for Grad-CAM). Any D, H, W works (padded internally, cropped back).

Names are imported on first use: reading a model card or a 2D network config does not load torch.
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "SegmentationNetwork": "base",
    "build_channels": "channels",
    "parse_channel_name": "channels",
    "required_phases": "channels",
    "TABLE1_UNET3D": "config",
    "MM3DUNetConfig": "config",
    "UNet3DConfig": "config",
    "config_from_dict": "config",
    "ARCHITECTURES": "factory",
    "ModelConfig": "factory",
    "build_network": "factory",
    "network_config_of": "factory",
    "count_flops": "flops",
    "count_parameters": "flops",
    "MM3DUNet": "mm3dunet",
    "CARD_FILE": "model_card",
    "RESEARCH_USE_TEXT": "model_card",
    "WEIGHTS_FILE": "model_card",
    "ModelCard": "model_card",
    "MODELS_ENV": "registry",
    "list_models": "registry",
    "load_model": "registry",
    "model_search_path": "registry",
    "resolve_model": "registry",
    "save_model": "registry",
    "sha256_file": "registry",
    "unwrap_network": "registry",
    "UNet3D": "unet3d",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
