"""BreastLesionSegLib: the Slicer-side logic of the BreastLesionSeg module.

MRML nodes <-> the ``breastlesionseg`` core (volumes, DCE exam, segmentation results, metrics,
training dataset), the out-of-process runner and the input/parameter/dependency decisions. Every
function takes the scene or an explicit :class:`~BreastLesionSegLib.mrml_context.MRMLContext`, so the
same code runs in the Slicer application and in pytest with the ``slicer-core`` wheel. Submodules
are imported on demand (``from BreastLesionSegLib import scene_io``) so that importing the package
never pulls in torch or MONAI.
"""
from __future__ import annotations
