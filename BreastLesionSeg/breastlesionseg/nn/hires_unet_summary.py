"""Parameters and FLOPs of a lightweight high-resolution U-Net variant (``model-summary hires-unet``).

FLOPs: 2 per multiply-add of convolutions (dense, depthwise, transposed), counted by
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no compute, no memory), the same
convention as :func:`breastlesionseg.nn.flops.count_flops`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import InputError
from .flops import count_parameters
from .hires_unet import HiResUNet2D
from .hires_unet_config import PAPER_PARAMETERS, HiResUNetConfig

#: the paper's training image size (H, W) in pixels
PAPER_IMAGE_SIZE_PX = (1536, 1536)


def summarize_hires_unet(variant: str, image_size_px: tuple[int, int] = PAPER_IMAGE_SIZE_PX) -> dict[str, Any]:
    """Parameters, FLOPs and config of ``variant`` at one ``image_size_px`` (H, W) grayscale image.

    Returns:
        ``{"arch": "hires-unet", "variant", "params", "paper_params", "params_vs_paper", "flops", "gflops",
        "config", "input_shape"}``; ``params_vs_paper`` is the relative difference to the paper's figure.

    Raises:
        InputError: unknown variant or a non-positive image size.
    """
    if len(image_size_px) != 2 or any(int(s) < 1 for s in image_size_px):
        raise InputError(f"image size must be two positive integers H,W in px; got {image_size_px}")
    config = HiResUNetConfig.variant(variant)
    with torch.device("meta"):
        net = HiResUNet2D(config)
        x = torch.empty((1, config.in_channels, *image_size_px))
    net.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    params = count_parameters(net)
    flops = int(counter.get_total_flops())
    paper = PAPER_PARAMETERS[variant]
    return {
        "arch": "hires-unet",
        "variant": variant,
        "params": params,
        "paper_params": paper,
        "params_vs_paper": round(params / paper - 1.0, 4),
        "flops": flops,
        "gflops": round(flops / 1e9, 3),
        "config": config.to_dict(),
        "input_shape": list(x.shape),
    }
