"""Segment a DCE exam end to end: breast region, crop, model-spacing resampling, sliding-window
inference, lesion instances, metrics and output files.

Public API:
    InferenceConfig(model=..., device="auto", overlap=None, threshold=None, min_lesion_volume_mm3=None, ...)
    SegmentationEngine(config=None, *, model=None, card=None, breast_segmenter=None)
        .run(exam, progress=None, cancel=None) -> SegmentationResult
    write_outputs(result, exam, out_dir, overwrite=False, extra_metrics=None, title="") -> {name: Path}
    check_output_dir(out_dir, overwrite=False) -> Path
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - static names; at run time they are imported on first use
    from .config import DEFAULT_MODEL, InferenceConfig
    from .engine import SegmentationEngine, default_breast_segmenter, peak_rss_mb
    from .outputs import OUTPUT_FILES, check_output_dir, metrics_document, write_outputs
    from .result import ModelInfo, SegmentationResult

#: public name -> submodule; imported lazily (PEP 562) so ``inference.config`` does not load torch
_LAZY = {
    "DEFAULT_MODEL": "config", "InferenceConfig": "config",
    "SegmentationEngine": "engine", "default_breast_segmenter": "engine", "peak_rss_mb": "engine",
    "OUTPUT_FILES": "outputs", "check_output_dir": "outputs", "metrics_document": "outputs",
    "write_outputs": "outputs", "ModelInfo": "result", "SegmentationResult": "result",
}

__getattr__ = lazy_exports(__name__, _LAZY)[0]

__all__ = [
    "DEFAULT_MODEL",
    "InferenceConfig",
    "ModelInfo",
    "OUTPUT_FILES",
    "SegmentationEngine",
    "SegmentationResult",
    "check_output_dir",
    "default_breast_segmenter",
    "metrics_document",
    "peak_rss_mb",
    "write_outputs",
]
