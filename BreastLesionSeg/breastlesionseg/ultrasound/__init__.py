"""Breast ultrasound: lesion segmentation, lesion-present and malignancy probabilities, Grad-CAM heat maps.

Public API (torch is imported only when these are called):
    ``predict_image(image_or_path, model) -> UltrasoundResult`` (:mod:`.predict`),
    ``load_ultrasound_model(name_or_path)`` (:mod:`.model`),
    BUS-BRA reading and its patient-wise folds (:mod:`.busbra`), training (:mod:`.train`),
    cross-validation report (:mod:`.evaluate`).
"""
from __future__ import annotations

__all__ = ["predict_image", "load_ultrasound_model", "UltrasoundResult"]


def __getattr__(name: str):
    """Lazy access to the public API (keeps ``import breastlesionseg.ultrasound`` free of torch)."""
    if name in ("predict_image", "UltrasoundResult"):
        from . import predict

        return getattr(predict, name)
    if name == "load_ultrasound_model":
        from .model import load_ultrasound_model

        return load_ultrasound_model
    raise AttributeError(name)
