"""Label values shared by the breast mask, the lesion maps and the Slicer segments.

Breast side follows the patient: "left" is the patient's left, i.e. +x in LPS (-x in RAS).
"""
from __future__ import annotations

BACKGROUND = 0
BREAST_LEFT = 1
BREAST_RIGHT = 2

BREAST_LABEL_NAMES = {BREAST_LEFT: "Breast left", BREAST_RIGHT: "Breast right"}

#: Segment names used in ``segmentation.seg.nrrd`` and in Slicer. Lesions are "Lesion 1".."Lesion N",
#: numbered by decreasing volume.
LESION_SEGMENT_PREFIX = "Lesion"


def lesion_segment_name(index: int) -> str:
    """Return the segment name of lesion ``index`` (1-based)."""
    if index < 1:
        raise ValueError(f"lesion index must be >= 1, got {index}")
    return f"{LESION_SEGMENT_PREFIX} {index}"
