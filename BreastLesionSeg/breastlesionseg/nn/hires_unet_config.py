"""Typed config and named variants of the lightweight high-resolution 2D U-Net (Tardy & Mateus).

The paper ("Lightweight U-Net for High-Resolution Breast Imaging") gives only parameter counts, not the
layout. The layout below is an assumption chosen so that one family reproduces every count the paper
states (each within 5 %; ``Testing/Python/nn/test_hires_unet.py`` checks them):

========================  ======  =====  ==========  ========  ==============  ===========
variant                   levels  width  convolution residual  parameters      paper
========================  ======  =====  ==========  ========  ==============  ===========
``standard4``             4       64     dense       no        9.25 M          ~10 M
``deep7``                 7       64     dense       no        598.4 M         600 M
``deep7-f16``             7       16     dense       no        37.4 M          37 M
``separable``             7       16     separable   no        4.64 M          4.6 M
``separable-residual``    7       16     separable   yes       5.35 M          5.3 M (shipped)
========================  ======  =====  ==========  ========  ==============  ===========

Layout assumptions (all variants):

* ``levels`` resolution levels = ``levels - 1`` 2 x 2 max-poolings; level ``k`` has ``width * 2**k``
  channels (the last level is the bottleneck: 4096 channels for ``deep7``).
* Encoder and decoder levels: three 3 x 3 convolutions each (convolution + bias, batch norm, ReLU);
  the bottleneck: two. (Ronneberger's two convolutions per level give 498 M / 31 M / 3.9 M instead.)
* Separable variants: every 3 x 3 convolution is a depthwise 3 x 3 (no bias) + pointwise 1 x 1 (bias).
* Up-sampling: 2 x 2 transposed convolution, stride 2, halving the channels (separable variants:
  depthwise 2 x 2 transposed + pointwise 1 x 1), then concatenation with the skip connection.
* Short residual connection per level (``residual``): encoder levels and the bottleneck add a 1 x 1
  convolution (bias) of the level input to the level output; decoder levels add the up-sampled tensor
  (same channels: identity, no parameters).
* Head: 1 x 1 convolution to ``out_channels`` lesion logits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

#: normalisation layers the network can use (MONAI ``Norm`` names, lower case)
HIRES_NORMS: tuple[str, ...] = ("batch", "instance")

#: variant name -> config fields that differ from :class:`HiResUNetConfig`'s defaults (the one list)
HIRES_UNET_VARIANTS: dict[str, dict[str, Any]] = {
    "standard4": {"levels": 4, "base_width": 64, "separable": False, "residual": False},
    "deep7": {"levels": 7, "base_width": 64, "separable": False, "residual": False},
    "deep7-f16": {"levels": 7, "base_width": 16, "separable": False, "residual": False},
    "separable": {"levels": 7, "base_width": 16, "separable": True, "residual": False},
    "separable-residual": {"levels": 7, "base_width": 16, "separable": True, "residual": True},
}
#: the variant the product ships and trains (the paper's final network)
SHIPPED_HIRES_VARIANT = "separable-residual"
#: parameter counts stated by Tardy & Mateus per variant (``standard4``: "about 10 M" for the original U-Net)
PAPER_PARAMETERS: dict[str, float] = {
    "standard4": 10e6, "deep7": 600e6, "deep7-f16": 37e6, "separable": 4.6e6, "separable-residual": 5.3e6,
}


@dataclass
class HiResUNetConfig:
    """Layout of :class:`~breastlesionseg.nn.hires_unet.HiResUNet2D` (defaults: the shipped variant).

    Attributes:
        in_channels: image channels (1 = grayscale mammogram).
        out_channels: lesion logit channels.
        levels: resolution levels including the bottleneck (``levels - 1`` poolings).
        base_width: channels of the first level, doubling per level.
        convs_per_level: 3 x 3 convolutions per encoder/decoder level.
        bottleneck_convs: 3 x 3 convolutions at the bottleneck.
        separable: depthwise-separable instead of dense convolutions.
        residual: short residual connection per level.
        norm: ``batch`` or ``instance``.
    """

    in_channels: int = 1
    out_channels: int = 1
    levels: int = 7
    base_width: int = 16
    convs_per_level: int = 3
    bottleneck_convs: int = 2
    separable: bool = True
    residual: bool = True
    norm: str = "batch"

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "base_width", "convs_per_level", "bottleneck_convs"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"HiResUNetConfig.{name} must be >= 1; got {getattr(self, name)}")
        if int(self.levels) < 2:
            raise InputError(f"HiResUNetConfig.levels must be >= 2; got {self.levels}")
        if self.norm not in HIRES_NORMS:
            raise InputError(f"HiResUNetConfig.norm must be one of {HIRES_NORMS}; got {self.norm!r}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels per level, bottleneck last: ``base_width * 2**k``."""
        return tuple(self.base_width * 2**k for k in range(self.levels))

    @property
    def downsampling_factor(self) -> int:
        """Input height/width are padded internally to a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.levels - 1)

    @classmethod
    def variant(cls, name: str, **overrides: Any) -> "HiResUNetConfig":
        """The config of a named variant (see :data:`HIRES_UNET_VARIANTS`), with optional field overrides.

        Raises:
            InputError: unknown variant name.
        """
        if name not in HIRES_UNET_VARIANTS:
            raise InputError(f"unknown hires-unet variant {name!r}; expected one of {sorted(HIRES_UNET_VARIANTS)}")
        return cls(**{**HIRES_UNET_VARIANTS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "HiResUNetConfig":
        """Validate a dictionary (a model card's ``config``); raises InputError naming an unknown field."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown hires_unet2d config field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)
