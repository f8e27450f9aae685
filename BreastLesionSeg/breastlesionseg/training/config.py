"""Typed configuration of a training run (``breastlesionseg train``).

Defaults follow Wang et al. 2025 (MM-3D UNet): Dice loss for the segmentation and
cross-entropy for the auxiliary classification (ACT) head, Adam with weight decay 1e-4, initial
learning rate 1e-4 with cosine annealing over the epochs, augmentation by +-15 deg axial rotation,
left-right flip (p = 0.5) and +-20 % intensity scaling, z-score normalisation, patches of 16 or 32
slices. ``loss="hybrid"`` is Narimani et al.'s Dice/Focal/CE mix (0.1/0.45/0.45). Training runs on the
optimized-volume crop (breast box + 16 mm, Narimani et al.) resampled to ``target_spacing_mm``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..nn.channels import NORMALIZATIONS

#: how the lesion voxel of a positive patch is drawn (see :mod:`.sampling`)
POSITIVE_SAMPLING_MODES = ("instance", "voxel")

LOSSES: tuple[str, ...] = ("dice_ce", "hybrid")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
PROGRESS_MODES: tuple[str, ...] = ("bar", "json", "none")
ARCHS: tuple[str, ...] = ("mm3dunet", "unet3d")
#: precisions of the in-memory training cache (``TrainConfig.cache_dtype``)
CACHE_DTYPES: tuple[str, ...] = ("float32", "float16")


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive_float(name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"TrainConfig.{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"TrainConfig.{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        data_dir: dataset folder (``dataset.json`` + ``cases/``).
        output_dir: output model folder (``weights.pt``, ``model_card.json``, ``checkpoints/``, reports).
        epochs: training epochs (cosine annealing period).
        patch_size: training patch (D, H, W) voxels on the model grid; each a multiple of the
            network's size multiple (16 for 4 levels). Wang et al. 2025 uses 16 or 32 slices.
        batch_size: patches per optimizer step (per process under DDP).
        patches_per_case: patches drawn from each training case per epoch.
        pos_fraction: fraction of patches centred on a lesion voxel (lesion-balanced sampling).
        positive_sampling: how the lesion voxel of a positive patch is drawn: ``instance`` (every
            lesion of a case equally likely, so small lesions are seen as often as large ones) or
            ``voxel`` (every lesion voxel equally likely).
        lr: initial learning rate (Wang et al. 2025: 1e-4).
        min_lr: learning rate at the end of the cosine schedule.
        weight_decay: Adam weight decay (Wang et al. 2025: 1e-4).
        loss: ``dice_ce`` (Wang et al. 2025) or ``hybrid`` (Narimani et al. Dice/Focal/CE).
        hybrid_weights: (dice, focal, ce) weights of the hybrid loss (Narimani et al.: 0.1, 0.45, 0.45).
        focal_gamma: focusing parameter of the focal loss.
        act_weight: weight of the ACT cross-entropy added to the segmentation loss.
        folds: k of k-fold cross-validation (1 = a single split with ``val_fraction`` held out).
        fold: which fold (0-based) is validated.
        val_fraction: validation share when ``folds == 1`` (at least one case when there are >= 2).
        resume: continue from ``output_dir/checkpoints/last.pt``.
        init_from: fine-tune from a model (id in the model search path, or folder).
        force: replace an existing finished model in ``output_dir``.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: mixed precision (CUDA only; ignored on CPU).
        seed: random seed (splits, sampling, augmentation, initialisation).
        arch: ``mm3dunet`` or ``unet3d``.
        expansion: MM-3DUNet channel expansion factor t (Wang et al. 2025: 12).
        base_width: channels of the first network level.
        levels: network resolution levels.
        act: train with the auxiliary classification head.
        channels: input channel names (``pre``, ``postK``, ``subK``).
        normalization: ``zscore``, ``robust`` (median / MAD) (inside the breast mask) or ``none``; see nn/channels.
        target_spacing_mm: model grid spacing (x, y, z) in mm.
        crop_margin_mm: safe margin of the optimized-volume crop around the breast region.
        rotate_deg: +- axial rotation range of the augmentation (degrees).
        flip_prob: left-right flip probability.
        intensity_scale: +- relative intensity scaling (0.2 = +-20 %).
        acquisition_augment_prob: probability of each acquisition augmentation (noise, slice blur, low
            resolution, gamma, bias field; ``training.transforms``); 0 = none.
        subtraction_only_prob: probability that a training patch keeps only its subtraction channels (``subK``;
            the others set to 0), so the network learns to find lesions from the subtraction alone; 0 = never.
            Needs at least one subtraction and one other channel.
        zoom_out_prob: probability that a training patch is shrunk (lesions look smaller;
            ``training.transforms.ZOOM_OUT_RANGE``); 0 = never.
        val_overlap: sliding-window overlap for validation.
        val_every: validate every this many epochs (and always after the last epoch).
        threshold: probability threshold of the lesion mask.
        mask_to_breast: restrict predicted lesions to the breast region in validation (as inference does).
        cache_dtype: precision of the in-memory training cache of preprocessed images: ``float32`` or
            ``float16`` (half the memory; patches are cast back to float32 before augmentation, and the
            rounding, ~1e-3 of a z-score value, is far below image noise).
        num_threads: torch CPU threads (None = leave torch's default).
        progress: ``bar`` (stderr), ``json`` (JSON lines on stdout) or ``none``.
        max_time_s: stop after the epoch during which this wall time is exceeded (None = no limit).
        model_id: id written into the model card (default: the output folder name).
        demo: mark the model card as a demonstration model.
        training_data: description of the training data for the card (default: from the manifest).
        training_command: the command line, recorded in the card.
    """

    data_dir: Path
    output_dir: Path
    epochs: int = 50
    patch_size: tuple[int, int, int] = (32, 64, 64)
    batch_size: int = 2
    patches_per_case: int = 4
    pos_fraction: float = 0.5
    positive_sampling: str = "instance"
    lr: float = 1e-4
    min_lr: float = 0.0
    weight_decay: float = 1e-4
    loss: str = "dice_ce"
    hybrid_weights: tuple[float, float, float] = (0.1, 0.45, 0.45)
    focal_gamma: float = 2.0
    act_weight: float = 0.1
    folds: int = 1
    fold: int = 0
    val_fraction: float = 0.2
    resume: bool = False
    init_from: str | None = None
    force: bool = False
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    arch: str = "mm3dunet"
    expansion: int = 12
    base_width: int = 8
    levels: int = 4
    act: bool = True
    channels: tuple[str, ...] = ("pre", "post1", "sub1")
    normalization: str = "zscore"
    target_spacing_mm: tuple[float, float, float] = (1.5, 1.5, 1.5)
    crop_margin_mm: float = 16.0
    rotate_deg: float = 15.0
    flip_prob: float = 0.5
    intensity_scale: float = 0.2
    acquisition_augment_prob: float = 0.0
    subtraction_only_prob: float = 0.0
    zoom_out_prob: float = 0.0
    val_overlap: float = 0.25
    val_every: int = 1
    threshold: float = 0.5
    mask_to_breast: bool = True
    cache_dtype: str = "float32"
    num_threads: int | None = None
    progress: str = "bar"
    max_time_s: float | None = None
    model_id: str = ""
    demo: bool = False
    training_data: str = ""
    training_command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.output_dir = Path(self.output_dir)
        _positive_int("epochs", self.epochs)
        try:
            self.patch_size = tuple(int(p) for p in self.patch_size)  # type: ignore[assignment]
        except (TypeError, ValueError) as exc:
            raise InputError(f"TrainConfig.patch_size must be 3 integers (D, H, W), got {self.patch_size!r}") from exc
        if len(self.patch_size) != 3 or any(p < 1 for p in self.patch_size):
            raise InputError(f"TrainConfig.patch_size must be 3 positive integers (D, H, W), got {self.patch_size!r}")
        multiple = 2 ** (self.levels - 1) if isinstance(self.levels, int) else 1
        if any(p % multiple for p in self.patch_size):
            raise InputError(f"TrainConfig.patch_size {self.patch_size} must be multiples of {multiple} "
                             f"(2**(levels-1) with levels={self.levels})")
        _positive_int("batch_size", self.batch_size)
        _positive_int("patches_per_case", self.patches_per_case)
        if not 0.0 <= float(self.pos_fraction) <= 1.0:
            raise InputError(f"TrainConfig.pos_fraction must be in [0, 1], got {self.pos_fraction!r}")
        if self.positive_sampling not in POSITIVE_SAMPLING_MODES:
            raise InputError(f"TrainConfig.positive_sampling must be one of {POSITIVE_SAMPLING_MODES}, "
                             f"got {self.positive_sampling!r}")
        _positive_float("lr", self.lr)
        _positive_float("min_lr", self.min_lr, allow_zero=True)
        _positive_float("weight_decay", self.weight_decay, allow_zero=True)
        if self.loss not in LOSSES:
            raise InputError(f"TrainConfig.loss must be one of {list(LOSSES)}, got {self.loss!r}")
        self.hybrid_weights = tuple(float(w) for w in self.hybrid_weights)  # type: ignore[assignment]
        if len(self.hybrid_weights) != 3 or any(w < 0 for w in self.hybrid_weights) or sum(self.hybrid_weights) <= 0:
            raise InputError(f"TrainConfig.hybrid_weights must be 3 non-negative (dice, focal, ce) weights, "
                             f"got {self.hybrid_weights!r}")
        _positive_float("focal_gamma", self.focal_gamma, allow_zero=True)
        _positive_float("act_weight", self.act_weight, allow_zero=True)
        _positive_int("folds", self.folds)
        if isinstance(self.fold, bool) or not isinstance(self.fold, int) or not 0 <= self.fold < self.folds:
            raise InputError(f"TrainConfig.fold must be in 0..{self.folds - 1} (folds={self.folds}), got {self.fold!r}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise InputError(f"TrainConfig.val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.device not in DEVICES:
            raise InputError(f"TrainConfig.device must be one of {list(DEVICES)}, got {self.device!r}")
        _positive_int("seed", self.seed, minimum=0)
        if self.arch not in ARCHS:
            raise InputError(f"TrainConfig.arch must be one of {list(ARCHS)}, got {self.arch!r}")
        _positive_int("expansion", self.expansion)
        _positive_int("base_width", self.base_width)
        _positive_int("levels", self.levels)
        if self.normalization not in NORMALIZATIONS:
            raise InputError(f"TrainConfig.normalization must be one of {list(NORMALIZATIONS)}, "
                             f"got {self.normalization!r}")
        self.channels = tuple(self.channels)
        if not self.channels:
            raise InputError("TrainConfig.channels is empty; give input channels such as pre post1 sub1")
        self.target_spacing_mm = tuple(float(s) for s in self.target_spacing_mm)  # type: ignore[assignment]
        if len(self.target_spacing_mm) != 3 or any(not (0 < s < 20) for s in self.target_spacing_mm):
            raise InputError(f"TrainConfig.target_spacing_mm must be 3 values in (0, 20) mm (x, y, z), "
                             f"got {self.target_spacing_mm!r}")
        _positive_float("crop_margin_mm", self.crop_margin_mm, allow_zero=True)
        _positive_float("rotate_deg", self.rotate_deg, allow_zero=True)
        if not 0.0 <= float(self.flip_prob) <= 1.0:
            raise InputError(f"TrainConfig.flip_prob must be in [0, 1], got {self.flip_prob!r}")
        if not 0.0 <= float(self.intensity_scale) < 1.0:
            raise InputError(f"TrainConfig.intensity_scale must be in [0, 1), got {self.intensity_scale!r}")
        if not 0.0 <= float(self.acquisition_augment_prob) <= 1.0:
            raise InputError(f"TrainConfig.acquisition_augment_prob must be in [0, 1], "
                             f"got {self.acquisition_augment_prob!r}")
        self._check_subtraction_only()
        if not 0.0 <= float(self.zoom_out_prob) <= 1.0:
            raise InputError(f"TrainConfig.zoom_out_prob must be in [0, 1], got {self.zoom_out_prob!r}")
        if not 0.0 <= float(self.val_overlap) < 1.0:
            raise InputError(f"TrainConfig.val_overlap must be in [0, 1), got {self.val_overlap!r}")
        _positive_int("val_every", self.val_every)
        if not 0.0 < float(self.threshold) < 1.0:
            raise InputError(f"TrainConfig.threshold must be in (0, 1), got {self.threshold!r}")
        if self.cache_dtype not in CACHE_DTYPES:
            raise InputError(f"TrainConfig.cache_dtype must be one of {list(CACHE_DTYPES)}, got {self.cache_dtype!r}")
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)
        if self.progress not in PROGRESS_MODES:
            raise InputError(f"TrainConfig.progress must be one of {list(PROGRESS_MODES)}, got {self.progress!r}")
        if self.max_time_s is not None:
            _positive_float("max_time_s", self.max_time_s)
        if not self.model_id:
            self.model_id = self.output_dir.name or "trained-model"

    def _check_subtraction_only(self) -> None:
        """``subtraction_only_prob`` in [0, 1], and when > 0 channels with a subtraction and something to blank."""
        if not 0.0 <= float(self.subtraction_only_prob) <= 1.0:
            raise InputError(f"TrainConfig.subtraction_only_prob must be in [0, 1], got {self.subtraction_only_prob!r}")
        if self.subtraction_only_prob > 0 and (not self.subtraction_channels() or not self.blanked_channels()):
            raise InputError(f"TrainConfig.subtraction_only_prob {self.subtraction_only_prob:g} needs input channels "
                             f"with a subtraction (subK) and at least one other channel; got {list(self.channels)}")

    def subtraction_channels(self) -> list[int]:
        """Indices of the subtraction channels (``subK``) in ``channels``."""
        from ..nn.channels import parse_channel_name

        return [i for i, name in enumerate(self.channels) if parse_channel_name(name)[0] == "sub"]

    def blanked_channels(self) -> list[int]:
        """Indices of the channels a subtraction-only patch sets to 0 (``pre``, ``postK``)."""
        subtractions = self.subtraction_channels()
        return [i for i in range(len(self.channels)) if i not in subtractions]

    def network_config(self) -> dict[str, Any]:
        """Fields of the network config (``breastlesionseg.nn`` ``MM3DUNetConfig`` / ``UNet3DConfig``)."""
        cfg: dict[str, Any] = {"in_channels": len(self.channels), "out_channels": 1, "base_width": self.base_width,
                               "levels": self.levels, "act": self.act}
        if self.arch == "mm3dunet":
            cfg["expansion"] = self.expansion
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        data = dataclasses.asdict(self)
        data["data_dir"] = str(self.data_dir)
        data["output_dir"] = str(self.output_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict` (unknown keys raise :class:`InputError`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown TrainConfig field(s) {unknown}")
        return cls(**data)
