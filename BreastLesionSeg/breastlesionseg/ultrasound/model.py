"""Loading an ultrasound model: the network and its 2D model card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..imaging2d.model_card2d import ModelCard2D, load_model_2d

if TYPE_CHECKING:
    from .malignancy_model import MalignancyModel

#: the shipped BUS-BRA model (models/us-attunet-busbra)
DEFAULT_MODEL_ID = "us-attunet-busbra"


@dataclass
class UltrasoundModel:
    """A loaded ultrasound model.

    Attributes:
        network: the 2D multi-task network (eval mode, CPU, float32).
        card: its model card (input size, thresholds, training data, metrics).
    """

    network: Any
    card: ModelCard2D

    def __post_init__(self) -> None:
        import torch

        # channels-last convolutions: about 1.7x faster on CPU for these networks, same float32 results
        # (benchmarks/bench_ultrasound.py); predict_image feeds channels-last inputs
        self.network = self.network.to(memory_format=torch.channels_last)

    @property
    def model_id(self) -> str:
        """The card's model id."""
        return self.card.model_id

    @property
    def malignancy_model(self) -> "MalignancyModel | None":
        """The card's malignancy model (None: the network's probability alone); raises ModelError when invalid."""
        from .malignancy_model import MalignancyModel

        return MalignancyModel.from_dict(self.card.malignancy_model) if self.card.malignancy_model else None


def load_ultrasound_model(name_or_path: str | Path = DEFAULT_MODEL_ID) -> UltrasoundModel:
    """Load a 2D ultrasound model by id or folder (sha256-verified, ``weights_only`` loading).

    Raises:
        ModelError: not found, corrupt, or not an ultrasound model.
    """
    network, card = load_model_2d(name_or_path)
    if card.modality != "ultrasound":
        raise ModelError(f"model {card.model_id} is a {card.modality} model, not an ultrasound model")
    model = UltrasoundModel(network, card)
    _ = model.malignancy_model  # validate it now, not at the first image
    return model
