"""Typed, validated configurations of the lesion networks (MM-3DUNet and the classic 3D U-Net).

Every field is checked in ``__post_init__``; a bad value raises :class:`ValueError` naming the field
and the value (``InputError`` is a ``ValueError`` too, so callers may catch either).
The configurations are plain dataclasses so they serialise into the model card
(``dataclasses.asdict``) and back (:func:`config_from_dict`).

Defaults are the configurations that reproduce Table 1 of seed 000 (Wang et al. 2025) at the
paper's input (1 x 1 x 32 x 256 x 256); see ``docs/networks.md`` and ``scripts/search_table1.py``
for the search that chose them and the measured figures.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from ..errors import InputError

#: normalisation layers a config may name
NORMS: tuple[str, ...] = ("instance", "batch", "group", "none")
#: activation functions a config may name
ACTIVATIONS: tuple[str, ...] = ("leakyrelu", "relu", "gelu", "silu")
#: padding modes for inputs whose size is not a multiple of ``2 ** (levels - 1)``
PAD_MODES: tuple[str, ...] = ("replicate", "constant", "reflect")


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"network config field '{name}' must be an integer; got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise InputError(f"network config field '{name}' must be >= {minimum}{upper}; got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
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
        _check_int("norm_groups", cfg.norm_groups, 1)
        if cfg.base_width % cfg.norm_groups != 0:
            raise InputError(
                f"network config field 'norm_groups' ({cfg.norm_groups}) must divide 'base_width' ({cfg.base_width})"
            )
    if not isinstance(cfg.act, bool):
        raise InputError(f"network config field 'act' must be true or false; got {cfg.act!r}")
    if cfg.act:
        _check_int("act_channels", cfg.act_channels, 1, 4096)


@dataclass
class MM3DUNetConfig:
    """Configuration of :class:`~breastlesionseg.nn.mm3dunet.MM3DUNet` (seed 000, Figure 1).

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
        act: add the auxiliary classification (ACT) head at the end of the encoder.
        act_channels: output channels of the ACT head's 3x3x3 convolution.
        norm: normalisation after the expand and depthwise stages (paper: ``instance``).
        norm_groups: groups when ``norm == "group"``.
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

    @property
    def arch(self) -> str:
        """Architecture name used in model cards and the CLI."""
        return "mm3dunet"

    def widths(self) -> list[int]:
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
    """Configuration of :class:`~breastlesionseg.nn.unet3d.UNet3D`, the classic 3D U-Net baseline.

    Each resolution level has ``convs_per_level`` dense 3x3x3 convolutions, each followed by the
    normalisation and activation; ``levels - 1`` max poolings down and transposed convolutions up.

    Attributes:
        in_channels: input image channels.
        out_channels: label channels of the segmentation logits.
        base_width: channels of the first level; level ``i`` has ``base_width * 2**i``.
        levels: resolution levels (size padded internally to a multiple of ``2 ** (levels - 1)``).
        convs_per_level: dense 3x3x3 convolutions per level (classic: 2).
        act: add an ACT head (not part of the paper's baseline; off by default).
        act_channels: output channels of the ACT head's 3x3x3 convolution.
        norm, norm_groups, activation, negative_slope, pad_mode: as in :class:`MM3DUNetConfig`.
    """

    in_channels: int = 3
    out_channels: int = 1
    base_width: int = 16
    levels: int = 4
    convs_per_level: int = 2
    act: bool = False
    act_channels: int = 8
    norm: str = "instance"
    norm_groups: int = 4
    activation: str = "leakyrelu"
    negative_slope: float = 0.01
    pad_mode: str = "replicate"

    def __post_init__(self) -> None:
        _check_common(self)
        _check_int("convs_per_level", self.convs_per_level, 1, 8)

    @property
    def arch(self) -> str:
        """Architecture name used in model cards and the CLI."""
        return "unet3d"

    def widths(self) -> list[int]:
        """Feature channels of each level, shallow to deep."""
        return [self.base_width * 2**i for i in range(self.levels)]

    @property
    def size_multiple(self) -> int:
        """Spatial sizes are padded internally to a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.levels - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the model card's ``config``)."""
        return dataclasses.asdict(self)


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
