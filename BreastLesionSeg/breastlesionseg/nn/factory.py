"""Build a network from its architecture name and config (the model card's ``arch`` + ``config``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .base import SegmentationNetwork
from .config import CONFIG_CLASSES, MM3DUNetConfig, NetworkConfig, UNet3DConfig, config_from_dict
from .mm3dunet import MM3DUNet
from .unet3d import UNet3D

#: architecture name -> network class
ARCHITECTURES: dict[str, type] = {"mm3dunet": MM3DUNet, "unet3d": UNet3D}


@dataclass
class ModelConfig:
    """Architecture name + its validated network config; what a model card stores to rebuild the network.

    Attributes:
        arch: ``"mm3dunet"`` or ``"unet3d"``.
        network: the matching :class:`MM3DUNetConfig` / :class:`UNet3DConfig`.
    """

    arch: str
    network: NetworkConfig

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise InputError(f"unknown network architecture {self.arch!r}; expected one of {sorted(ARCHITECTURES)}")
        expected = CONFIG_CLASSES[self.arch]
        if not isinstance(self.network, expected):
            raise InputError(
                f"architecture {self.arch!r} needs a {expected.__name__}; got {type(self.network).__name__}"
            )

    @classmethod
    def from_dict(cls, arch: str, config: dict[str, Any] | None) -> "ModelConfig":
        """Validate ``config`` for ``arch`` (raises InputError naming a bad field)."""
        return cls(arch, config_from_dict(arch, config))

    def to_dict(self) -> dict[str, Any]:
        """``{"arch": ..., "config": {...}}``."""
        return {"arch": self.arch, "config": self.network.to_dict()}

    def build(self) -> SegmentationNetwork:
        """A freshly initialised network (train mode, CPU)."""
        return ARCHITECTURES[self.arch](self.network)


def build_network(arch: str, config: NetworkConfig | dict[str, Any] | None = None) -> SegmentationNetwork:
    """Build ``arch`` (``mm3dunet`` | ``unet3d``) from a config object or dictionary (defaults when ``None``).

    Raises:
        InputError: unknown architecture or invalid config field (named in the message).
    """
    if isinstance(config, (MM3DUNetConfig, UNet3DConfig)):
        return ModelConfig(arch, config).build()
    return ModelConfig.from_dict(arch, config).build()


def network_config_of(module: Any) -> ModelConfig:
    """The :class:`ModelConfig` of a network built by this package (``module.config``).

    Raises:
        InputError: ``module`` is not one of this package's networks.
    """
    cfg = getattr(module, "config", None)
    for arch, cls in CONFIG_CLASSES.items():
        if isinstance(cfg, cls) and isinstance(module, ARCHITECTURES[arch]):
            return ModelConfig(arch, cfg)
    raise InputError(
        f"module of type {type(module).__name__} is not a breastlesionseg network (MM3DUNet / UNet3D with a .config)"
    )
