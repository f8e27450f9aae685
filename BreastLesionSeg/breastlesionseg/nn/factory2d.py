"""Build a 2D multi-task network from its architecture name and config (a 2D model card's ``arch`` + ``config``)."""
from __future__ import annotations

from typing import Any

from torch import nn

from .config2d import CONFIG2D_CLASSES, config2d_from_dict


def architectures_2d() -> dict[str, type]:
    """2D architecture name -> network class (imported here so the config module stays torch-free)."""
    from .attention_unet2d import AttentionUNet2D
    from .hires_unet import HiResUNet2D
    from .u2net_lite import U2NetLite

    return {"attention_unet2d": AttentionUNet2D, "u2net_lite": U2NetLite, "hires_unet2d": HiResUNet2D}


def build_network_2d(arch: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised 2D network; raises InputError for an unknown arch or config field."""
    return architectures_2d()[arch](config2d_from_dict(arch, config))


__all__ = ["CONFIG2D_CLASSES", "architectures_2d", "build_network_2d"]
