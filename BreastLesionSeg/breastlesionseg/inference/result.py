"""The result of segmenting one exam."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..geometry import Geometry, Volume


@dataclass
class ModelInfo:
    """Identity of the model that produced a result.

    Attributes:
        model_id: the model card's id (e.g. ``mm3dunet-phantom-demo``).
        sha256: checksum of the weights file.
        is_demo: the model is a demonstration model (trained on synthetic phantoms only).
        path: model folder, when loaded from disk.
        arch: network architecture name.
        channels: input channel names.
        spacing_mm_xyz: spacing (x, y, z) in mm of the grid the network ran on (the card's inference spacing, else its
            training spacing).
        patch_size_zyx: sliding-window size (z, y, x) in voxels.
        limitations: the model card's known limitations (texts).
    """

    model_id: str
    sha256: str
    is_demo: bool
    path: str
    arch: str
    channels: list[str]
    spacing_mm_xyz: tuple[float, float, float]
    patch_size_zyx: tuple[int, int, int]
    limitations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {
            "id": self.model_id,
            "sha256": self.sha256,
            "demo": self.is_demo,
            "path": self.path,
            "arch": self.arch,
            "channels": list(self.channels),
            "spacing_mm_xyz": list(self.spacing_mm_xyz),
            "patch_size_zyx": list(self.patch_size_zyx),
            "limitations": list(self.limitations),
        }


@dataclass
class SegmentationResult:
    """Everything :meth:`SegmentationEngine.run` produces; all volumes lie on the pre-contrast grid.

    Attributes:
        breast_mask: 0 background, 1 patient's left breast, 2 patient's right breast (uint8).
        lesion_labels: 0 background, 1..N lesion instances by decreasing volume (uint16).
        lesion_volumes_mm3: volume of lesion 1..N in mm3 (non-increasing).
        probability: lesion probability in [0, 1] (float32), when asked for (``save_probability``).
        heatmap: Grad-CAM heat map in [0, 1] (float32), when asked for (``heatmap``).
        act_score: exam-level ACT "lesion present" probability, ``None`` without an ACT head.
        metrics: lesion and breast metrics (``breastlesionseg.metrics.lesion_metrics``).
        model: identity of the model.
        device: the device the network finally ran on (after any out-of-memory fallback).
        timings_s: seconds per pipeline step (keys in execution order) and ``total``.
        peak_memory_mb: peak resident memory of the process during the run (MiB), and on CUDA the
            peak allocated GPU memory under ``peak_gpu_memory_mb``.
        crop_geometry: the optimized-volume crop on the pre grid.
        model_geometry: the crop resampled to the model's spacing (where the network ran).
        n_windows: sliding windows per pass.
        config: the settings used (``InferenceConfig.to_dict()``).
        notes: human-readable notes (fallbacks, warnings) for the user.
        n_windows_skipped: windows not run because they hold no breast voxel (all passes).
        backend: which inference backend ran the network and why (``select_backend(...).summary()``).
        lesion_confidence: calibrated confidence (0..1) of lesion 1..N (``None`` each when the model
            card has no confidence model).
        candidate_labels: lower-confidence candidates 1..M (uint16, by decreasing confidence), or ``None``.
        candidates: one dict per candidate (``id``, ``confidence``, ``volume_mm3``, features).
    """

    breast_mask: Volume
    lesion_labels: Volume
    lesion_volumes_mm3: list[float]
    probability: Volume | None
    heatmap: Volume | None
    act_score: float | None
    metrics: dict[str, Any]
    model: ModelInfo
    device: str
    timings_s: dict[str, float]
    peak_memory_mb: float
    peak_gpu_memory_mb: float | None
    crop_geometry: Geometry
    model_geometry: Geometry
    n_windows: int
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    n_windows_skipped: int = 0
    backend: str = ""
    lesion_confidence: list[float | None] = field(default_factory=list)
    candidate_labels: Volume | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_lesions(self) -> int:
        """Number of lesion instances."""
        return len(self.lesion_volumes_mm3)

    def lesion_mask(self) -> np.ndarray:
        """All lesions as one boolean (z, y, x) mask."""
        return np.asarray(self.lesion_labels.array) > 0

    def summary(self) -> dict[str, Any]:
        """Run description for ``metrics.json`` (everything except the lesion metrics)."""
        return {
            "model": self.model.to_dict(),
            "device": self.device,
            "inference_backend": self.backend,
            "act_lesion_present_probability": self.act_score,
            "n_lesions": self.n_lesions,
            "lesion_volumes_mm3": [float(v) for v in self.lesion_volumes_mm3],
            "lesion_confidence": [None if c is None else float(c) for c in self.lesion_confidence],
            "candidates": [dict(c) for c in self.candidates],
            "timings_s": {k: round(float(v), 4) for k, v in self.timings_s.items()},
            "peak_memory_mb": round(float(self.peak_memory_mb), 1),
            "peak_gpu_memory_mb": None if self.peak_gpu_memory_mb is None else round(self.peak_gpu_memory_mb, 1),
            "pre_geometry": self.lesion_labels.geometry.to_dict(),
            "crop_geometry": self.crop_geometry.to_dict(),
            "model_geometry": self.model_geometry.to_dict(),
            "n_windows": self.n_windows,
            "n_windows_skipped": self.n_windows_skipped,
            "settings": self.config,
            "notes": list(self.notes),
        }
