"""Where a phantom's false lesions come from: enhancing non-lesion structures and tissue classes.

The generator knows what every voxel is. :func:`structure_labels` keeps the enhancing structures that are
not lesions (breast vessels, arterial and venous vessel trees, axillary lymph nodes) as one uint8 map
(``Phantom.structures``); :func:`component_sources` names, for every component of a segmentation, the
structure or tissue most of its non-lesion voxels lie in (:data:`SOURCE_NAMES`), so a benchmark can say
*why* a false lesion was reported (e.g. 'lymph_node' or 'gland', i.e. background parenchymal enhancement).
"""
from __future__ import annotations

import numpy as np

from .anatomy import (BLOOD, BONE, CHEST_WALL, FAT, GLAND, LIVER, LUNG, MEDIASTINUM, MUSCLE, MYOCARDIUM, SKIN,
                      AnatomyMaps)
from .distractors import DistractorMaps

#: values of ``Phantom.structures`` (index = value; 0 = no enhancing non-lesion structure)
STRUCTURE_NAMES: tuple[str, ...] = ("none", "breast_vessel", "arterial_vessel", "venous_vessel", "lymph_node")
#: a voxel belongs to a structure when at least this partial-volume fraction of it is that structure
STRUCTURE_FRACTION = 0.5
#: tissue classes grouped into the sources a radiologist would name
_TISSUE_SOURCES: dict[str, tuple[int, ...]] = {
    "skin": (SKIN,),
    "chest_wall": (MUSCLE, CHEST_WALL, BONE, LUNG),
    "heart_great_vessels": (BLOOD, MYOCARDIUM, MEDIASTINUM, LIVER),
    "gland": (GLAND,),
    "fat": (FAT,),
}
#: every source :func:`component_sources` can name ('other': air, cysts)
SOURCE_NAMES: tuple[str, ...] = ("lesion", *STRUCTURE_NAMES[1:], *_TISSUE_SOURCES, "other")


def structure_labels(maps: AnatomyMaps, distractors: DistractorMaps | None) -> np.ndarray:
    """uint8 (z, y, x) map of the enhancing non-lesion structures (values index :data:`STRUCTURE_NAMES`).

    Where structures overlap, the one with the largest partial-volume fraction wins.
    """
    fractions = [maps.vessel_fraction]
    if distractors is not None:
        fractions += [distractors.arterial, distractors.venous, distractors.node]
    stack = np.stack([np.asarray(f, np.float32) for f in fractions])
    labels = (np.argmax(stack, axis=0) + 1).astype(np.uint8)
    labels[stack.max(axis=0) < STRUCTURE_FRACTION] = 0
    return labels


def _source_map(lesions: np.ndarray, structures: np.ndarray | None, tissue: np.ndarray) -> np.ndarray:
    """uint8 map of source indices (into :data:`SOURCE_NAMES`): lesion, then structure, then tissue."""
    source = np.full(tissue.shape, SOURCE_NAMES.index("other"), np.uint8)
    for name, classes in _TISSUE_SOURCES.items():
        source[np.isin(tissue, classes)] = SOURCE_NAMES.index(name)
    if structures is not None:
        for value, name in enumerate(STRUCTURE_NAMES[1:], start=1):
            source[structures == value] = SOURCE_NAMES.index(name)
    source[lesions > 0] = SOURCE_NAMES.index("lesion")
    return source


def component_sources(components: np.ndarray, lesions: np.ndarray, tissue: np.ndarray,
                      structures: np.ndarray | None = None) -> dict[int, str]:
    """The source of every component: where most of its voxels lie outside the true lesions.

    Args:
        components: (z, y, x) integer components 1..N of a segmentation.
        lesions: (z, y, x) true lesion labels on the same grid (0 = none).
        tissue: (z, y, x) tissue classes (``Phantom.tissue``).
        structures: (z, y, x) :func:`structure_labels` (``Phantom.structures``) or None.

    Returns:
        ``{component: source name}``; 'lesion' only for a component lying entirely in true lesions.
    """
    components = np.asarray(components)
    if components.shape != tissue.shape or lesions.shape != tissue.shape:
        raise ValueError(f"components {components.shape}, lesions {lesions.shape} and tissue {tissue.shape} "
                         f"must share one grid")
    n = int(components.max(initial=0))
    if n == 0:
        return {}
    source = _source_map(np.asarray(lesions), None if structures is None else np.asarray(structures),
                         np.asarray(tissue))
    inside = components > 0
    counts = np.bincount(components[inside].astype(np.int64) * len(SOURCE_NAMES) + source[inside],
                         minlength=(n + 1) * len(SOURCE_NAMES)).reshape(n + 1, len(SOURCE_NAMES))
    lesion = SOURCE_NAMES.index("lesion")
    out = {}
    for label in range(1, n + 1):
        row = counts[label]
        if not row.any():
            continue
        outside = row.copy()
        outside[lesion] = 0
        out[label] = SOURCE_NAMES[int(np.argmax(outside))] if outside.any() else "lesion"
    return out


__all__ = ["SOURCE_NAMES", "STRUCTURE_FRACTION", "STRUCTURE_NAMES", "component_sources", "structure_labels"]
