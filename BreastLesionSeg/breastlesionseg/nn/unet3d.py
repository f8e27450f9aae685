"""Classic dense 3D U-Net (Cicek et al. 2016), the baseline of Wang et al.'s (MM-3D UNet) Table 1.

Each level: ``convs_per_level`` x (3x3x3 convolution -> norm -> activation); ``levels - 1`` max
poolings; decoder with 2x2x2 stride-2 transposed convolutions, concatenated skips and the same
convolution blocks; final 1x1x1 convolution to the label channels. Same config style and output
contract as :class:`~breastlesionseg.nn.mm3dunet.MM3DUNet` (an ACT head is available but off by default).
"""
from __future__ import annotations

from typing import List, Optional

from torch import nn

from .act_head import ACTHead
from .base import SegmentationNetwork
from .config import UNet3DConfig
from .mm3dunet import DecoderLevel
from .norm_act import NormAct


class ConvBlock(nn.Sequential):
    """3x3x3 dense convolution -> norm -> activation: (N, C_in, D, H, W) -> (N, C_out, D, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, cfg: UNet3DConfig) -> None:
        super().__init__(
            nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=cfg.norm not in ("instance", "batch")),
            NormAct(out_channels, cfg.norm, cfg.activation, cfg.negative_slope, cfg.norm_groups),
        )


class UNet3D(SegmentationNetwork):
    """Classic 3D U-Net with dense 3x3x3 convolutions.

    Args:
        config: the architecture (defaults: :class:`UNet3DConfig`).

    Attributes:
        encoders, bottleneck, decoder, head, act_head: as in :class:`~breastlesionseg.nn.mm3dunet.MM3DUNet`.
    """

    def __init__(self, config: UNet3DConfig | None = None) -> None:
        cfg = config if config is not None else UNet3DConfig()
        if not isinstance(cfg, UNet3DConfig):
            raise TypeError(f"config must be a UNet3DConfig; got {type(cfg).__name__}")
        super().__init__(cfg.in_channels, cfg.out_channels, cfg.size_multiple, cfg.pad_mode)
        self.config = cfg
        widths = cfg.widths_list()

        cicek = cfg.channel_pattern == "cicek"
        # channels out of each encoder level (= skip channels) and of each decoder level
        outs = [2 * w for w in widths] if cicek else list(widths)

        def module(cin: int, first: int, cout: int) -> nn.Sequential:
            return nn.Sequential(ConvBlock(cin, first, cfg), *[
                ConvBlock(first if k == 0 else cout, cout, cfg) for k in range(cfg.convs_per_level - 1)
            ])

        ins = [cfg.in_channels] + outs[:-1]
        self.encoders = nn.ModuleList([module(ins[i], widths[i], outs[i]) for i in range(cfg.levels - 1)])
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = module(ins[-1], widths[-1], outs[-1])
        levels = []
        below = outs[-1]
        for i in reversed(range(cfg.levels - 1)):
            up = below if cicek else outs[i]
            levels.append(DecoderLevel(module(up + outs[i], outs[i], outs[i]), below, up, cfg.up_kernel_size))
            below = outs[i]
        self.decoder = nn.ModuleList(levels)
        self.head = nn.Conv3d(outs[0], cfg.out_channels, 1)
        self.act_head: Optional[ACTHead] = (
            ACTHead(outs[-1], cfg.act_channels, 2, cfg.activation, cfg.negative_slope) if cfg.act else None
        )
