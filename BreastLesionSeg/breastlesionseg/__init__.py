"""BreastLesionSeg core: breast DCE-MRI I/O, breast-region masking, MM-3DUNet lesion
segmentation, lesion metrics, training and CLI.

This package never imports ``slicer``, ``qt`` or ``vtk``; it works on numpy arrays plus
geometry (LPS, as in ITK/SimpleITK) and is usable with a plain ``pip install``.
"""
from __future__ import annotations

__version__ = "0.1.0"
