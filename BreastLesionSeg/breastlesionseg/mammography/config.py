"""Training configuration of the mammography lesion model (one typed place; stored in the model card)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..imaging2d.training_loop import TrainLoopConfig
from ..nn.hires_unet_config import HiResUNetConfig

#: the network architecture name stored in model cards
MAMMOGRAPHY_ARCH = "hires_unet2d"
#: the shipped demo model (models/<id>/)
DEFAULT_MAMMOGRAPHY_MODEL = "hires-unet-cddcesm-demo"


@dataclass
class MammographyTrainConfig:
    """Cross-validated training of the lightweight high-resolution U-Net on 2D mammograms.

    Attributes:
        input_size_px: side of the square network input (images are letterboxed into it).
        n_folds: patient-wise cross-validation folds.
        batch_size: images per optimisation step.
        threshold: probability threshold of the lesion mask.
        network: the network layout (default: the shipped separable-residual variant).
        loop: optimisation settings (epochs, patience, learning rate, seed).
    """

    input_size_px: int = 128
    n_folds: int = 3
    batch_size: int = 4
    threshold: float = 0.5
    network: HiResUNetConfig = field(default_factory=HiResUNetConfig)
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(
        max_epochs=24, patience_epochs=5, learning_rate=2e-3, bf16=False))

    def __post_init__(self) -> None:
        if self.input_size_px < 16:
            raise InputError(f"input_size_px must be >= 16; got {self.input_size_px}")
        if self.n_folds < 2:
            raise InputError(f"n_folds must be >= 2; got {self.n_folds}")
        if self.batch_size < 2:
            raise InputError(f"batch_size must be >= 2 (batch norm); got {self.batch_size}")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"threshold must be in (0, 1); got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"input_size_px": self.input_size_px, "n_folds": self.n_folds, "batch_size": self.batch_size,
                "threshold": self.threshold, "network": self.network.to_dict(),
                "loop": dataclasses.asdict(self.loop)}
