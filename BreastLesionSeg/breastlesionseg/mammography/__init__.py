"""Mammography: lesion segmentation of 2D mammograms with the lightweight high-resolution U-Net.

Public API (imported lazily; torch loads only when a function runs)::

    from breastlesionseg.mammography import predict_image, segment_files
"""
from __future__ import annotations
