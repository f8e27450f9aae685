"""Typed configuration of one segmentation run."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import InputError

#: the model used when none is named (shipped in ``models/``)
DEFAULT_MODEL = "mm3dunet-phantom-demo"

#: flips (spatial axes of a (z, y, x) array) used by ``tta=True`` when no explicit list is given:
#: left-right, and left-right + anterior-posterior
DEFAULT_TTA_FLIPS: tuple[tuple[int, ...], ...] = ((2,), (1,), (1, 2))


@dataclass
class InferenceConfig:
    """Settings of :class:`breastlesionseg.inference.SegmentationEngine`.

    Attributes:
        model: model name in ``models/`` or path to a model folder.
        device: ``"auto"`` (CUDA if present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        overlap: sliding-window overlap fraction in [0, 1); ``None`` = the model card's value.
        blend_mode: ``"gaussian"`` (default) or ``"constant"`` window blending.
        sigma_scale: Gaussian sigma as a fraction of the window size.
        threshold: probability threshold in (0, 1) for the lesion mask; ``None`` = the model card's value.
        min_lesion_volume_mm3: connected components smaller than this (mm3) are removed; ``None`` = the
            model card's value.
        breast_masking: restrict lesions to the breast region (and compute the crop from it).
        crop_margin_mm: safety margin of the optimized-volume crop around the breast region.
        skip_empty_windows: with ``breast_masking``, do not run the network on sliding windows that
            hold no breast voxel (their output would be masked away anyway).
        tta: test-time augmentation by flips (probabilities averaged).
        tta_flips: flips used when ``tta`` is on; each a tuple of spatial axes of the (z, y, x) input.
        window_zyx: sliding-window size (z, y, x) in voxels at the model's spacing; ``None`` = the model
            card's ``inference_window`` (or its training ``patch_size`` when that is unset).
        sw_batch_size: windows per forward pass (halved automatically on out-of-memory); ``None`` =
            automatic: :data:`breastlesionseg.inference.window_budget.AUTO_SW_BATCH_SIZE` for the device (1 on CPU,
            where larger batches did not help; 16 on CUDA, where one small window leaves the GPU idle),
            reduced to what fits the memory budget before the window itself is reduced.
        amp: mixed precision (float16 autocast) on CUDA; ignored on CPU.
        save_probability: keep the lesion probability map on the pre grid in the result.
        heatmap: compute a Grad-CAM heat map from the ACT head (one backward pass per window).
        pe_threshold_percent: percent-enhancement threshold of the functional tumour volume (FTV).
        num_threads: torch CPU threads, or ``None`` to leave torch's setting alone.
        backend: how the network runs: ``"auto"`` (:func:`breastlesionseg.runtime.select_backend`'s order
            for the device) or a name of :data:`breastlesionseg.runtime.BACKENDS`, tried first (eager is the fallback).
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    overlap: float | None = None
    blend_mode: str = "gaussian"
    sigma_scale: float = 0.125
    threshold: float | None = None
    min_lesion_volume_mm3: float | None = None
    breast_masking: bool = True
    crop_margin_mm: float = 16.0
    skip_empty_windows: bool = True
    tta: bool = False
    tta_flips: tuple[tuple[int, ...], ...] = field(default=DEFAULT_TTA_FLIPS)
    window_zyx: tuple[int, int, int] | None = None
    sw_batch_size: int | None = None
    amp: bool = True
    save_probability: bool = False
    heatmap: bool = False
    pe_threshold_percent: float = 70.0
    num_threads: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``InputError`` (a ``ValueError``) naming the field and its value."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"InferenceConfig.model must be a model name or folder path, got {self.model!r}")
        if self.overlap is not None and not (0.0 <= float(self.overlap) < 1.0):
            raise InputError(f"InferenceConfig.overlap must be in [0, 1), got {self.overlap}")
        if self.blend_mode not in ("gaussian", "constant"):
            raise InputError(f"InferenceConfig.blend_mode must be 'gaussian' or 'constant', got {self.blend_mode!r}")
        if not (0.0 < float(self.sigma_scale) <= 1.0):
            raise InputError(f"InferenceConfig.sigma_scale must be in (0, 1], got {self.sigma_scale}")
        if self.threshold is not None and not (0.0 < float(self.threshold) < 1.0):
            raise InputError(f"InferenceConfig.threshold must be in (0, 1), got {self.threshold}")
        if self.min_lesion_volume_mm3 is not None and (
            not math.isfinite(float(self.min_lesion_volume_mm3)) or self.min_lesion_volume_mm3 < 0
        ):
            raise InputError(
                f"InferenceConfig.min_lesion_volume_mm3 must be >= 0 mm3, got {self.min_lesion_volume_mm3}"
            )
        if not math.isfinite(float(self.crop_margin_mm)) or self.crop_margin_mm < 0:
            raise InputError(f"InferenceConfig.crop_margin_mm must be >= 0 mm, got {self.crop_margin_mm}")
        if self.window_zyx is not None and (
            len(tuple(self.window_zyx)) != 3 or any(int(w) < 1 for w in self.window_zyx)
        ):
            raise InputError(f"InferenceConfig.window_zyx must be 3 positive voxel counts (z, y, x), got {self.window_zyx}")
        if self.sw_batch_size is not None and int(self.sw_batch_size) < 1:
            raise InputError(f"InferenceConfig.sw_batch_size must be >= 1, got {self.sw_batch_size}")
        if not (0.0 < float(self.pe_threshold_percent) < 10000.0):
            raise InputError(
                f"InferenceConfig.pe_threshold_percent must be a positive percentage, got {self.pe_threshold_percent}"
            )
        if self.num_threads is not None and int(self.num_threads) < 1:
            raise InputError(f"InferenceConfig.num_threads must be >= 1 or None, got {self.num_threads}")
        from ..runtime.names import BACKEND_CHOICES

        if self.backend not in BACKEND_CHOICES:
            raise InputError(f"InferenceConfig.backend must be one of {list(BACKEND_CHOICES)}, got {self.backend!r}")
        flips = tuple(tuple(int(a) for a in f) for f in self.tta_flips)
        for f in flips:
            if not f or any(a not in (0, 1, 2) for a in f) or len(set(f)) != len(f):
                raise InputError(
                    f"InferenceConfig.tta_flips entries must be non-empty tuples of distinct axes 0, 1, 2 "
                    f"(z, y, x), got {self.tta_flips}"
                )
        self.tta_flips = flips

    def to_dict(self) -> dict:
        """JSON-friendly copy (goes into ``metrics.json``)."""
        out = asdict(self)
        out["tta_flips"] = [list(f) for f in self.tta_flips]
        return out
