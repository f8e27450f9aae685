"""Lesion networks (MM-3DUNet, classic 3D U-Net), model cards and model folders, input channels, export.

Public API::

    from breastlesionseg.nn import (MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig, build_network,
                                    ModelConfig, ModelCard, save_model, load_model, list_models,
                                    build_channels, count_parameters, count_flops)

Every network: ``forward(x (N, C, D, H, W)) -> seg_logits (N, L, D, H, W)``;
``forward_with_aux(x) -> (seg_logits, act_logits (N, 2) or None)``; ``model.bottleneck`` is the
encoder's last module (hook it for Grad-CAM). Any D, H, W works (padded internally, cropped back).
"""
from __future__ import annotations

from .base import SegmentationNetwork
from .channels import build_channels, parse_channel_name, required_phases
from .config import TABLE1_UNET3D, MM3DUNetConfig, UNet3DConfig, config_from_dict
from .factory import ARCHITECTURES, ModelConfig, build_network, network_config_of
from .flops import count_flops, count_parameters
from .mm3dunet import MM3DUNet
from .model_card import CARD_FILE, RESEARCH_USE_TEXT, WEIGHTS_FILE, ModelCard
from .registry import (MODELS_ENV, list_models, load_model, model_search_path, resolve_model, save_model, sha256_file,
                       unwrap_network)
from .unet3d import UNet3D

__all__ = [
    "ARCHITECTURES", "CARD_FILE", "TABLE1_UNET3D", "MODELS_ENV", "RESEARCH_USE_TEXT", "WEIGHTS_FILE",
    "MM3DUNet", "MM3DUNetConfig", "ModelCard", "ModelConfig", "SegmentationNetwork", "UNet3D", "UNet3DConfig",
    "build_channels", "build_network", "config_from_dict", "count_flops", "count_parameters", "list_models",
    "load_model", "model_search_path", "network_config_of", "parse_channel_name", "required_phases",
    "resolve_model", "save_model", "sha256_file", "unwrap_network",
]
