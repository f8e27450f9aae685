"""Typed configuration of ultrasound training (one place; stored in the model card)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..imaging2d.training_loop import TrainLoopConfig
from ..nn.config2d import AttentionUNet2DConfig, ResNeXtClassifier2DConfig

#: ultrasound models average the mask and malignancy probabilities with the mirrored image's (chosen on
#: validation images: Dice 0.856 -> 0.863 and 0.851 -> 0.857 on folds 0 / 1; malignancy AUC +0.000 to +0.014
#: on folds 0, 2, 3, 4); written into every ultrasound model card
TEST_TIME_FLIP = True
#: ultrasound models run a second, lesion-focused pass on the first pass's lesion box grown by this fraction
#: per side (ultrasound.lesion_zoom; chosen on validation images of folds 0 and 1 among 0.25/0.5/1/1.5/2:
#: validation Dice 0.863 -> 0.870 and 0.857 -> 0.867); written into every ultrasound model card
LESION_ZOOM_MARGIN = 1.0
#: a model's crop classifiers (an ensemble; their logits are averaged), one per margin: each sees the lesion box grown
#: by its margin of the box's height / width per side, letterboxed to CROP_CLASSIFIER_SIZE_PX (margins 0.5 / 1 / 2
#: compared on validation images of folds 0 and 1; margins 1 and 2 together beat either alone on validation
#: images of folds 0-3, see docs/ultrasound.md)
CROP_CLASSIFIER_MARGINS: tuple[float, ...] = (1.0, 2.0)
CROP_CLASSIFIER_SIZE_PX = 64
#: average each classifier's logit with its mirror image's at inference: not for the ensemble (validation AUC of
#: folds 0-3 0.902 without, 0.900 with, at twice the classifier's cost); written into every card's members
CROP_CLASSIFIER_MIRROR = False
#: segmentation losses of the BUSI attention U-Net paper (compared there) and their sum (default here)
SEG_LOSSES: tuple[str, ...] = ("dice+bce", "dice", "bce")


@dataclass
class UltrasoundTrainConfig:
    """Everything that defines an ultrasound training run.

    Attributes:
        arch: 2D architecture name (see ``nn.config2d.CONFIG2D_CLASSES``).
        network: the network config dictionary for ``arch``.
        input_size_px: side of the square (letterboxed) network input.
        batch_size: images per optimisation step.
        negative_fraction: share of lesion-free crops (negatives) in an epoch.
        seg_loss: ``"dice+bce"``, ``"dice"`` or ``"bce"``.
        lesion_loss_weight, malignancy_loss_weight: weights of the two image-level BCE losses.
        loop: optimisation settings.
        holdout_device: leave-one-scanner-out experiment: images of the scanner whose name contains this
            text (case-insensitive) are left out of training and validation and form the test set
            (``""``: the fold's own test images).
    """

    arch: str = "attention_unet2d"
    network: dict[str, Any] = field(default_factory=lambda: AttentionUNet2DConfig().to_dict())
    input_size_px: int = 128
    batch_size: int = 16
    negative_fraction: float = 0.2
    seg_loss: str = "dice+bce"
    lesion_loss_weight: float = 0.5
    malignancy_loss_weight: float = 0.5
    loop: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    holdout_device: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.loop, dict):
            self.loop = TrainLoopConfig(**self.loop)
        if self.seg_loss not in SEG_LOSSES:
            raise InputError(f"seg_loss must be one of {SEG_LOSSES}; got {self.seg_loss!r}")
        if self.input_size_px < 32 or self.input_size_px % 32:
            raise InputError(f"input_size_px must be a multiple of 32 (>= 32); got {self.input_size_px}")
        if not 0.0 <= self.negative_fraction < 0.9:
            raise InputError(f"negative_fraction must be in [0, 0.9); got {self.negative_fraction}")
        if self.batch_size < 2:
            raise InputError(f"batch_size must be >= 2 (batch norm); got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "UltrasoundTrainConfig":
        """Inverse of :meth:`to_dict` (raises InputError on an unknown field)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown ultrasound training field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def _crop_classifier_loop() -> TrainLoopConfig:
    return TrainLoopConfig(max_epochs=40, patience_epochs=15, learning_rate=2e-3, weight_decay=1e-3, bf16=False)


@dataclass
class CropClassifierTrainConfig:
    """Everything that defines the training of a fold's lesion-crop malignancy classifier.

    Attributes:
        network: :class:`~breastlesionseg.nn.config2d.ResNeXtClassifier2DConfig` fields.
        margin: lesion-box growth per side of the crop (fraction of the box's height / width); one of
            :data:`CROP_CLASSIFIER_MARGINS` for the ensemble's members.
        size_px: side of the square input.
        batch_size: crops per optimisation step.
        loop: optimisation settings (float32: bfloat16 autocast was not measured for the grouped convolutions).
    """

    network: dict[str, Any] = field(default_factory=lambda: ResNeXtClassifier2DConfig().to_dict())
    margin: float = CROP_CLASSIFIER_MARGINS[0]
    size_px: int = CROP_CLASSIFIER_SIZE_PX
    batch_size: int = 32
    loop: TrainLoopConfig = field(default_factory=_crop_classifier_loop)

    def __post_init__(self) -> None:
        if isinstance(self.loop, dict):
            self.loop = TrainLoopConfig(**self.loop)
        self.network = ResNeXtClassifier2DConfig.from_dict(self.network).to_dict()
        if not 0.0 <= self.margin <= 5.0:
            raise InputError(f"crop classifier margin must be in [0, 5]; got {self.margin}")
        if not 16 <= self.size_px <= 512:
            raise InputError(f"crop classifier size_px must be in [16, 512]; got {self.size_px}")
        if self.batch_size < 2:
            raise InputError(f"batch_size must be >= 2 (batch norm); got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)
