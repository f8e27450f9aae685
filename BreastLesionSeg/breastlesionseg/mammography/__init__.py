"""Mammography: lesion segmentation of 2D mammograms with the lightweight high-resolution U-Net (Tardy & Mateus).

Modules (import them directly; this package imports nothing heavy)::

    predict:        load_mammography_model(), predict_image() -> MammographyResult (mask at the input's size)
    cddcesm:        CDD-CESM cases and patient-wise folds
    training_data:  letterboxed, intensity-scaled network inputs (shared by training and inference)
    train:          cross-validated, resumable training (python -m breastlesionseg.mammography.train)
    package_model:  a fold's weights as a model folder with its 2D model card
    model_summary:  ``breastlesionseg model-summary hires-unet``
"""
from __future__ import annotations
