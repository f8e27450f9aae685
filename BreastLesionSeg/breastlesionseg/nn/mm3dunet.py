"""MM-3DUNet (Multi-task Mobile 3D U-Net), Wang et al. 2025 (MM-3D UNet), section 2.1 and Figure 1.

Layout for ``levels = 4``, ``base_width = 8`` (widths 8, 16, 32, 64), ``units_per_level = 2``::

    x (C_in)                                                                   -> head 1x1x1 -> seg logits (L)
     enc0: CEC(C_in->8, t), CEC(8->8, t)  ------------------- skip ------------ dec0: up(16->8), cat, CEC(16->8, t_d), CEC(8->8, t_d)
      maxpool
      enc1: CEC(8->16, t), CEC(16->16, t)  ---------- skip --------- dec1: up(32->16), cat, CEC(32->16, t_d), CEC(16->16, t_d)
       maxpool
       enc2: CEC(16->32, t), CEC(32->32, t) -- skip -- dec2: up(64->32), cat, CEC(64->32, t_d), CEC(32->32, t_d)
        maxpool
        bottleneck: CEC(32->64, t), CEC(64->64, t) -> [ACT head: conv3x3x3 -> global max pool -> linear -> 2]

"up" is a stride-2 transposed convolution with a 3x3x3 kernel (``up_kernel_size``; 2 is available).
The four encoder modules double the channels and (after max pooling) halve the size; the decoder
mirrors them. ``expansion`` (t) applies to the
encoder, ``decoder_expansion`` (t_d) to the decoder: ``t_d = 1`` (decoder units with no expansion)
is what reproduces Table 1's parameter and FLOP counts with ``base_width = 8`` (see docs/networks.md).

The ACT head sits on the bottleneck output (end of the encoder); it costs almost nothing
(~14 k parameters, ~0.1 GFLOPs at 32 x 256 x 256).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

from .act_head import ACTHead
from .base import SegmentationNetwork
from .cec_unit import CECUnit
from .config import MM3DUNetConfig


class DecoderLevel(nn.Module):
    """Transposed-convolution upsampling, concatenation with the skip, then CEC units.

    Shapes: ``x (N, C_in, D, H, W)``, ``skip (N, C_skip, 2D, 2H, 2W) -> (N, C_out, 2D, 2H, 2W)``.

    Args:
        units: the refinement units applied to the concatenation (``C_up + C_skip`` channels in).
        in_channels: C_in of ``x``.
        out_channels: C_up, channels after the transposed convolution.
        up_kernel_size: 3 (``padding=1, output_padding=1``) or 2 (the minimal 2x2x2 stride-2 kernel).
        up_bias: give the transposed convolution a bias (pointless when ``units`` start with a 1x1x1
            convolution + instance norm, which removes any per-channel constant).
    """

    def __init__(self, units: nn.Module, in_channels: int, out_channels: int, up_kernel_size: int = 3,
                 up_bias: bool = True) -> None:
        super().__init__()
        if up_kernel_size not in (2, 3):
            raise ValueError(f"up_kernel_size must be 2 or 3; got {up_kernel_size}")
        pad = 1 if up_kernel_size == 3 else 0
        # kernel 3: padding 1 + output_padding 1 doubles the size exactly, like kernel 2 / stride 2
        self.up = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=up_kernel_size, stride=2,
                                     padding=pad, output_padding=pad, bias=up_bias)
        self.units = units

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x``, concatenate ``skip`` along channels, refine."""
        return self.units(torch.cat([self.up(x), skip], dim=1))


class MM3DUNet(SegmentationNetwork):
    """MM-3DUNet: CEC-unit encoder/decoder with skip connections and an optional ACT head.

    Args:
        config: the architecture (defaults: :class:`MM3DUNetConfig`, t = 12 with ACT, 3 input channels).

    Attributes:
        config: the validated config.
        encoders: encoder modules above the bottleneck (shallow to deep), each ``nn.Sequential`` of CEC units.
        bottleneck: the last encoder module (deepest, ``base_width * 2**(levels-1)`` channels); the ACT head
            reads its output, and it is the layer to hook for Grad-CAM.
        decoder: decoder levels, deep to shallow.
        head: final 1x1x1 convolution to ``out_channels`` logits.
        act_head: :class:`ACTHead` or ``None``.
    """

    def __init__(self, config: MM3DUNetConfig | None = None) -> None:
        cfg = config if config is not None else MM3DUNetConfig()
        if not isinstance(cfg, MM3DUNetConfig):
            raise TypeError(f"config must be an MM3DUNetConfig; got {type(cfg).__name__}")
        super().__init__(cfg.in_channels, cfg.out_channels, cfg.size_multiple, cfg.pad_mode)
        self.config = cfg
        widths = cfg.widths_list()

        def unit(cin: int, cout: int, t: int) -> CECUnit:
            return CECUnit(cin, cout, t, 1, cfg.norm, cfg.activation, cfg.negative_slope, cfg.norm_groups)

        def module(cin: int, cout: int, t: int) -> nn.Sequential:
            return nn.Sequential(unit(cin, cout, t), *[unit(cout, cout, t) for _ in range(cfg.units_per_level - 1)])

        ins = [cfg.in_channels] + widths[:-1]
        self.encoders = nn.ModuleList([module(ins[i], widths[i], cfg.expansion) for i in range(cfg.levels - 1)])
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = module(ins[-1], widths[-1], cfg.expansion)
        self.decoder = nn.ModuleList([
            DecoderLevel(module(2 * widths[i], widths[i], cfg.decoder_expansion), widths[i + 1], widths[i],
                         cfg.up_kernel_size, up_bias=cfg.norm not in ("instance", "batch"))
            for i in reversed(range(cfg.levels - 1))
        ])
        self.head = nn.Conv3d(widths[0], cfg.out_channels, 1)
        self.act_head: Optional[ACTHead] = (
            ACTHead(widths[-1], cfg.act_channels, 2, cfg.activation, cfg.negative_slope) if cfg.act else None
        )
