"""Deterministic synthetic breast DCE-MRI exams (phantoms) with ground truth.

``generate_phantom(PhantomConfig(seed=..))`` -> :class:`Phantom` (``.exam``, ``.breast_mask``,
``.lesion_labels``, ``.lesions``); ``write_phantom`` / ``load_phantom`` store it as NIfTI + JSON.
See ``config.py`` (defaults), ``anatomy.py`` (patient model and the breast-region ground truth),
``lesions.py`` (lesion shapes), ``kinetics.py`` (intensities and enhancement curves) and
``artifacts.py`` (blur, bias field, Rician noise).
"""
from __future__ import annotations

from .config import DEFAULT_FOV_MM, DEFAULT_SIZE, LESION_DIAMETER_LIMITS_MM, PhantomConfig
from .generator import Phantom, generate_phantom
from .io import load_phantom, write_phantom
from .kinetics import KINETIC_TYPES, classify_curve

__all__ = [
    "DEFAULT_FOV_MM",
    "DEFAULT_SIZE",
    "KINETIC_TYPES",
    "LESION_DIAMETER_LIMITS_MM",
    "Phantom",
    "PhantomConfig",
    "classify_curve",
    "generate_phantom",
    "load_phantom",
    "write_phantom",
]
