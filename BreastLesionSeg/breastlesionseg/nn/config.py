"""Typed, validated configurations of the lesion networks (MM-3DUNet and the classic 3D U-Net).

Every field is checked in ``__post_init__``; a bad value raises :class:`ValueError` naming the field
and the value (``InputError`` is a ``ValueError`` too, so callers may catch either).
The configurations are plain dataclasses so they serialise into the model card
(``dataclasses.asdict``) and back (:func:`config_from_dict`).

Defaults are the configurations that reproduce Table 1 of Wang et al. 2025 (MM-3D UNet) at the
paper's input (1 x 1 x 32 x 256 x 256); see ``docs/networks.md`` and ``scripts/search_table1.py``
for the search that chose them and the measured figures.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

from ..errors import InputError

#: normalisation layers a config may name
NORMS: tuple[str, ...] = ("instance", "batch", "group", "none")
#: activation functions a config may name
ACTIVATIONS: tuple[str, ...] = ("leakyrelu", "relu", "gelu", "silu")
#: padding modes for inputs whose size is not a multiple of ``2 ** (levels - 1)`` (constant = zeros)
PAD_MODES: tuple[str, ...] = ("replicate", "constant")


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"network config field '{name}' must be an integer; got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise InputError(f"network config field '{name}' must be >= {minimum}{upper}; got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"network config field '{name}' must be one of {list(choices)}; got {value!r}")


def _check_choice_int(name: str, value: Any, choices: tuple[int, ...]) -> None:
    if isinstance(value, bool) or value not in choices:
        raise InputError(f"network config field '{name}' must be one of {list(choices)}; got {value!r}")


def _check_common(cfg: "MM3DUNetConfig | UNet3DConfig") -> None:
    _check_int("in_channels", cfg.in_channels, 1, 64)
    _check_int("out_channels", cfg.out_channels, 1, 64)
    _check_int("base_width", cfg.base_width, 1, 1024)
    _check_int("levels", cfg.levels, 1, 7)
    _check_choice("norm", cfg.norm, NORMS)
    _check_choice("activation", cfg.activation, ACTIVATIONS)
    _check_choice("pad_mode", cfg.pad_mode, PAD_MODES)
    if isinstance(cfg.negative_slope, bool) or not isinstance(cfg.negative_slope, (int, float)) or not (
        0.0 <= float(cfg.negative_slope) < 1.0
    ):
        raise InputError(f"network config field 'negative_slope' must be a number in [0, 1); got {cfg.negative_slope!r}")
    if cfg.norm == "group":
        # make_norm uses the largest divisor of each layer's channels that is <= norm_groups
        _check_int("norm_groups", cfg.norm_groups, 1, 1024)
    if not isinstance(cfg.act, bool):
        raise InputError(f"network config field 'act' must be true or false; got {cfg.act!r}")
    if cfg.act:
        _check_int("act_channels", cfg.act_channels, 1, 4096)


@dataclass
class MM3DUNetConfig:
    """Configuration of :class:`~breastlesionseg.nn.mm3dunet.MM3DUNet` (Wang et al. 2025, Figure 1).

    Attributes:
        in_channels: input image channels (e.g. 3 for ``["pre", "post1", "sub1"]``).
        out_channels: label channels of the segmentation logits (1 = lesion).
        base_width: feature channels of the first encoder module; module ``i`` has
            ``base_width * 2**i`` channels.
        levels: encoder modules (resolution levels); ``levels - 1`` max poolings, so the spatial
            size is padded internally to a multiple of ``2 ** (levels - 1)``.
        units_per_level: CEC units per encoder/decoder module (paper: 2).
        expansion: channel expansion factor ``t`` of the encoder CEC units (paper: 6 or 12).
        decoder_expansion: expansion factor of the decoder CEC units (1 reproduces Table 1).
        up_kernel_size: kernel of the decoder's stride-2 transposed convolutions (3 reproduces Table 1; or 2).
        act: add the auxiliary classification (ACT) head at the end of the encoder.
        act_channels: output channels of the ACT head's 3x3x3 convolution.
        norm: normalisation after the expand and depthwise stages (paper: ``instance``).
        norm_groups: groups when ``norm == "group"`` (per layer, the largest divisor of its channels <= this).
        activation: non-linearity after the expand and depthwise stages (paper: ``leakyrelu``).
        negative_slope: LeakyReLU slope.
        pad_mode: how odd spatial sizes are padded before the network (cropped back after).
    """

    in_channels: int = 3
    out_channels: int = 1
    base_width: int = 8
    levels: int = 4
    units_per_level: int = 2
    expansion: int = 12
    decoder_expansion: int = 1
    up_kernel_size: int = 3
    act: bool = True
    act_channels: int = 8
    norm: str = "instance"
    norm_groups: int = 4
    activation: str = "leakyrelu"
    negative_slope: float = 0.01
    pad_mode: str = "replicate"

    def __post_init__(self) -> None:
        _check_common(self)
        _check_int("units_per_level", self.units_per_level, 1, 8)
        _check_int("expansion", self.expansion, 1, 64)
        _check_int("decoder_expansion", self.decoder_expansion, 1, 64)
        _check_choice_int("up_kernel_size", self.up_kernel_size, (2, 3))

    @property
    def arch(self) -> str:
        """Architecture name used in model cards and the CLI."""
        return "mm3dunet"

    def widths_list(self) -> list[int]:
        """Feature channels of each encoder module, shallow to deep."""
        return [self.base_width * 2**i for i in range(self.levels)]

    @property
    def size_multiple(self) -> int:
        """Spatial sizes are padded internally to a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.levels - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the model card's ``config``)."""
        return dataclasses.asdict(self)


@dataclass
class UNet3DConfig:
    """Configuration of :class:`~breastlesionseg.nn.unet3d.UNet3D`, the classic dense 3D U-Net baseline.

    Each resolution level has ``convs_per_level`` dense 3x3x3 convolutions, each followed by the
    normalisation and activation; ``levels - 1`` max poolings down and stride-2 transposed convolutions up.

    The defaults are a plain doubling U-Net (16, 32, 64, 128). :meth:`table1` (``TABLE1_UNET3D``)
    is the baseline row of Table 1 of Wang et al. 2025 (1.78 M parameters, 115.10 GFLOPs at 1 x 1 x 32 x 256 x 256):
    five levels of widths (13, 18, 36, 72, 144) with 2x2x2 transposed convolutions (1.80 M,
    117.65 GFLOPs, +1.1% / +2.2%). The paper does not give the baseline's layout; a plain doubling
    U-Net cannot match both numbers (4 levels: ~150 GFLOPs per M parameters, 5 levels: ~42; the
    paper: 65), so the search in ``scripts/search_table1.py`` lets the first level's width differ from
    the doubling tail (as MONAI's BasicUNet ``features`` do). See docs/networks.md.

    Attributes:
        in_channels: input image channels.
        out_channels: label channels of the segmentation logits.
        base_width: channels of the first level; level ``i`` has ``base_width * 2**i`` (when ``widths`` is None).
        levels: resolution levels (size padded internally to a multiple of ``2 ** (levels - 1)``).
        widths: explicit channels per level (overrides ``base_width``; its length must equal ``levels``).
        convs_per_level: dense 3x3x3 convolutions per level (classic: 2).
        channel_pattern: ``double`` — every convolution of level ``i`` outputs ``w_i`` channels and the
            transposed convolution maps ``w_(i+1) -> w_i``; ``cicek`` — the layout of Cicek et al. 2016:
            the first convolution of level ``i`` outputs ``w_i`` and the others ``2 w_i``, the transposed
            convolution keeps its channels and the decoder of level ``i`` outputs ``2 w_i``
            (base_width 32 gives the original 32, 64 | 64, 128 | 128, 256 | 256, 512).
        up_kernel_size: kernel of the stride-2 transposed convolutions (2 or 3).
        act: add an ACT head (not part of the paper's baseline; off by default).
        act_channels: output channels of the ACT head's 3x3x3 convolution.
        norm, norm_groups, activation, negative_slope, pad_mode: as in :class:`MM3DUNetConfig`.
    """

    in_channels: int = 3
    out_channels: int = 1
    base_width: int = 16
    levels: int = 4
    widths: Optional[Tuple[int, ...]] = None
    convs_per_level: int = 2
    channel_pattern: str = "double"
    up_kernel_size: int = 2
    act: bool = False
    act_channels: int = 8
    norm: str = "instance"
    norm_groups: int = 4
    activation: str = "leakyrelu"
    negative_slope: float = 0.01
    pad_mode: str = "replicate"

    def __post_init__(self) -> None:
        if self.widths is not None:
            if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__len__"):
                raise InputError(f"network config field 'widths' must be a list of integers or null; got {self.widths!r}")
            self.widths = tuple(self.widths)
            for i, w in enumerate(self.widths):
                _check_int(f"widths[{i}]", w, 1, 4096)
            if len(self.widths) != self.levels:
                raise InputError(
                    f"network config field 'widths' has {len(self.widths)} entries {list(self.widths)} but 'levels' is {self.levels}"
                )
        _check_common(self)
        _check_int("convs_per_level", self.convs_per_level, 1, 8)
        _check_choice("channel_pattern", self.channel_pattern, ("double", "cicek"))
        _check_choice_int("up_kernel_size", self.up_kernel_size, (2, 3))

    @property
    def arch(self) -> str:
        """Architecture name used in model cards and the CLI."""
        return "unet3d"

    @classmethod
    def table1(cls, **overrides: Any) -> "UNet3DConfig":
        """The Wang et al. 2025 Table 1 baseline (``TABLE1_UNET3D``) with ``overrides`` (e.g. ``in_channels=1``)."""
        return cls(**{**TABLE1_UNET3D, **overrides})

    def widths_list(self) -> list[int]:
        """Feature channels of each level, shallow to deep."""
        if self.widths is not None:
            return list(self.widths)
        return [self.base_width * 2**i for i in range(self.levels)]

    @property
    def size_multiple(self) -> int:
        """Spatial sizes are padded internally to a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.levels - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the model card's ``config``)."""
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths) if self.widths is not None else None
        return data


#: the dense baseline of Wang et al. 2025 Table 1 (1.80 M parameters, 117.65 GFLOPs at 1 x 1 x 32 x 256 x 256)
TABLE1_UNET3D: dict[str, Any] = {"levels": 5, "widths": (13, 18, 36, 72, 144), "up_kernel_size": 2}

NetworkConfig = Union[MM3DUNetConfig, UNet3DConfig]

#: architecture name -> config class
CONFIG_CLASSES: dict[str, type] = {"mm3dunet": MM3DUNetConfig, "unet3d": UNet3DConfig}


def config_from_dict(arch: str, data: dict[str, Any] | None = None) -> NetworkConfig:
    """Build and validate the config of ``arch`` from a dictionary (e.g. a model card's ``config``).

    Args:
        arch: ``"mm3dunet"`` or ``"unet3d"``.
        data: field values; missing fields take their defaults.

    Raises:
        InputError: unknown architecture, unknown field, or an invalid value (the message names it).
    """
    if arch not in CONFIG_CLASSES:
        raise InputError(f"unknown network architecture {arch!r}; expected one of {sorted(CONFIG_CLASSES)}")
    cls = CONFIG_CLASSES[arch]
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown field(s) {unknown} in the {arch} network config; known fields: {sorted(names)}")
    return cls(**data)
