"""File names of a ``breastlesionseg segment`` output folder: the CLI contract other tools read.

Kept free of heavy imports (no torch, no SimpleITK) so the Slicer module's logic can read an output
folder in Slicer's GUI process while the segmentation itself runs out of process.
"""
from __future__ import annotations

SEGMENTATION_FILE = "segmentation.seg.nrrd"
LESIONS_FILE = "lesions.nii.gz"
BREAST_MASK_FILE = "breast_mask.nii.gz"
METRICS_FILE = "metrics.json"
OVERVIEW_FILE = "overview.png"
PROBABILITY_FILE = "probability.nii.gz"
HEATMAP_FILE = "heatmap.nii.gz"
#: lower-confidence lesion candidates 1..M (uint16), written when the model has a confidence model
CANDIDATES_FILE = "candidates.nii.gz"
#: every file ``segment`` may create
OUTPUT_FILES = (SEGMENTATION_FILE, LESIONS_FILE, BREAST_MASK_FILE, METRICS_FILE, OVERVIEW_FILE, PROBABILITY_FILE,
                HEATMAP_FILE, CANDIDATES_FILE)
