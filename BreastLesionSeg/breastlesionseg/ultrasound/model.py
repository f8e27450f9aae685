"""Loading an ultrasound model: the network and its 2D model card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..imaging2d.model_card2d import ModelCard2D, load_model_2d

if TYPE_CHECKING:
    from .crop_classifier import CropClassifierEnsemble
    from .malignancy_model import MalignancyModel

#: the shipped BUS-BRA model (models/us-attunet-busbra)
DEFAULT_MODEL_ID = "us-attunet-busbra"


@dataclass
class UltrasoundModel:
    """A loaded ultrasound model.

    Attributes:
        network: the 2D multi-task network (eval mode, CPU, float32; batch norms folded into their
            convolutions: inference only).
        card: its model card (input size, thresholds, training data, metrics).
        crop_classifier: the card's lesion-crop malignancy classifiers (None when the card has none).
    """

    network: Any
    card: ModelCard2D
    crop_classifier: "CropClassifierEnsemble | None" = None

    def __post_init__(self) -> None:
        import torch

        from ..nn.batch_norm_folding import fold_batch_norms_2d

        # batch norms folded into their convolutions (one op less per layer, same outputs within 1e-4), then
        # channels-last convolutions: about 1.7x faster on CPU for these networks, same float32 results
        # (benchmarks/bench_ultrasound.py); predict_image feeds channels-last inputs
        self.network = fold_batch_norms_2d(self.network.eval(), self.card.input_size_px)
        self.network = self.network.to(memory_format=torch.channels_last)

    @property
    def model_id(self) -> str:
        """The card's model id."""
        return self.card.model_id

    def without(self, *, malignancy_model: bool = False, crop_classifier: bool = False) -> "UltrasoundModel":
        """The same network with the card's malignancy model and/or the crop classifier left out (to fit them
        from the network's own outputs, or to predict masks only)."""
        import dataclasses

        card = dataclasses.replace(self.card, **({"malignancy_model": {}} if malignancy_model else {}),
                                   **({"crop_classifier": {}} if crop_classifier else {}))
        return UltrasoundModel(self.network, card, None if crop_classifier else self.crop_classifier)

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
    model = UltrasoundModel(network, card, _crop_classifier(name_or_path, card))
    _ = model.malignancy_model  # validate it now, not at the first image
    return model


def _crop_classifier(name_or_path: str | Path, card: ModelCard2D) -> "CropClassifierEnsemble | None":
    """The card's crop classifiers, sha256-verified (and, for a shipped model id, checked against the package's list)."""
    if not card.crop_classifier:
        return None
    from ..nn.model_paths import resolve_model
    from ..nn.registry import check_shipped_weights
    from .crop_classifier import load_crop_classifiers, member_specs, validate_spec

    folder = resolve_model(name_or_path)
    validate_spec(card.crop_classifier, card.model_id)
    members = member_specs(card.crop_classifier)
    weights = [folder / member["weights_file"] for member in members]
    by_id = not Path(str(name_or_path)).expanduser().exists()
    # before anything is deserialised; load_crop_classifiers then checks each file against the card's sha256
    for index, (member, path) in enumerate(zip(members, weights)):
        check_shipped_weights(card.model_id, member["weights_sha256"], path, refuse=by_id,
                              key="crop_classifier_sha256", index=index)
    return load_crop_classifiers(weights, card.crop_classifier, card.model_id)
