"""Typed configs of the 2D multi-task networks (ultrasound, mammography): one dataclass per architecture.

A model card stores ``arch`` + ``config`` (``to_dict()``); :func:`config2d_from_dict` validates it back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .hires_unet_config import HiResUNetConfig

#: attention variants of the attention U-Net (CBAM in every decoder level, non-local at the bottleneck)
ATTENTION_CHOICES: tuple[str, ...] = ("cbam", "nonlocal", "both", "none")


@dataclass
class AttentionUNet2DConfig:
    """Attention U-Net with depthwise-separable convolutions and ReLU6 (Alom-style U-Net of the BUSI paper).

    Attributes:
        in_channels: image channels (1 = grayscale).
        widths: channels per resolution level, the last one is the bottleneck (4 poolings for 5 levels).
        attention: ``"cbam"`` (decoder levels), ``"nonlocal"`` (bottleneck), ``"both"`` or ``"none"``.
        cbam_reduction: channel-attention MLP reduction.
        dropout: dropout before the two classification heads (0.3 in the paper).
    """

    in_channels: int = 1
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    attention: str = "cbam"
    cbam_reduction: int = 8
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if self.in_channels < 1:
            raise InputError(f"in_channels must be >= 1; got {self.in_channels}")
        if len(self.widths) < 2 or any(w < 2 for w in self.widths):
            raise InputError(f"widths must hold >= 2 levels of >= 2 channels; got {self.widths}")
        if self.attention not in ATTENTION_CHOICES:
            raise InputError(f"attention must be one of {ATTENTION_CHOICES}; got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1); got {self.dropout}")

    @property
    def downsampling_factor(self) -> int:
        """Input height/width must be a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        out = dataclasses.asdict(self)
        out["widths"] = list(self.widths)
        return out


@dataclass
class U2NetLiteConfig:
    """U2NET-Lite (U^2-Net "small", Qin et al. 2020; the 4.7 MB network of the U2NET-Lite ultrasound paper).

    Six encoder stages of residual U-blocks (RSU-7, 6, 5, 4, 4F, 4F), five decoder stages, six side outputs
    fused by a 1 x 1 convolution.

    Attributes:
        in_channels: image channels.
        mid_channels: channels inside every RSU block (16 in U^2-Net-small).
        out_channels: channels between RSU blocks (64 in U^2-Net-small).
        dropout: dropout before the classification heads.
    """

    in_channels: int = 1
    mid_channels: int = 16
    out_channels: int = 64
    dropout: float = 0.3

    def __post_init__(self) -> None:
        for name in ("in_channels", "mid_channels", "out_channels"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1); got {self.dropout}")

    @property
    def downsampling_factor(self) -> int:
        """Input height/width must be a multiple of this (5 poolings)."""
        return 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)


@dataclass
class ResNeXtClassifier2DConfig:
    """Small ResNeXt-style (32 groups, SE) image classifier of a lesion crop: one logit per image.

    The classifier of the U2NET-Lite ultrasound paper is a ResNeXt-50 32x4d; this one keeps its block
    (MONAI's ``SEResNeXtBottleneck``: grouped 3 x 3 convolution between two 1 x 1 ones, squeeze-and-excitation)
    at a size that trains from scratch on ~1,200 crops on a CPU.

    Attributes:
        in_channels: input channels (2 for ultrasound: the crop and its predicted lesion mask).
        stem_channels: channels of the stride-2 3 x 3 stem convolution.
        planes: bottleneck planes per block (output channels = 4 x planes; grouped width =
            ``floor(planes * base_width / 64) * groups``).
        strides: stride of each block.
        groups: cardinality of the grouped convolutions.
        base_width: ResNeXt base width (4 in "32x4d").
        reduction: squeeze-and-excitation reduction.
        dropout: dropout before the linear head.
    """

    in_channels: int = 2
    stem_channels: int = 32
    planes: tuple[int, ...] = (16, 32, 64, 64)
    strides: tuple[int, ...] = (1, 2, 2, 1)
    groups: int = 32
    base_width: int = 4
    reduction: int = 16
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.planes = tuple(int(p) for p in self.planes)
        self.strides = tuple(int(s) for s in self.strides)
        for name in ("in_channels", "stem_channels", "groups", "base_width", "reduction"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.planes or len(self.planes) != len(self.strides):
            raise InputError(f"planes and strides must be non-empty and of equal length; got {self.planes}, {self.strides}")
        if any(p * self.base_width // 64 < 1 for p in self.planes) or any(s not in (1, 2) for s in self.strides):
            raise InputError(f"every planes value must be >= {64 // self.base_width} (base_width {self.base_width}) and "
                             f"every stride 1 or 2; got planes {self.planes}, strides {self.strides}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1); got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        out = dataclasses.asdict(self)
        out["planes"], out["strides"] = list(self.planes), list(self.strides)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "ResNeXtClassifier2DConfig":
        """Validate a config dictionary (raises InputError naming an unknown field)."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"unknown crop-classifier config field(s) {unknown}")
        return cls(**values)


#: 2D architecture name -> config class (the one list of 2D architectures)
CONFIG2D_CLASSES: dict[str, type] = {"attention_unet2d": AttentionUNet2DConfig, "u2net_lite": U2NetLiteConfig,
                                     "hires_unet2d": HiResUNetConfig}


def config2d_from_dict(arch: str, values: dict[str, Any] | None) -> AttentionUNet2DConfig | U2NetLiteConfig:
    """Validate a config dictionary for ``arch``.

    Raises:
        InputError: unknown architecture or field (named in the message).
    """
    if arch not in CONFIG2D_CLASSES:
        raise InputError(f"unknown 2D architecture {arch!r}; expected one of {sorted(CONFIG2D_CLASSES)}")
    cls = CONFIG2D_CLASSES[arch]
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {arch} config field(s) {unknown}; known: {sorted(known)}")
    return cls(**values)
