"""Enhancing non-lesion structures of a phantom and the sources of false components."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.phantom import PhantomConfig, generate_phantom
from breastlesionseg.phantom.anatomy import FAT, GLAND, SKIN
from breastlesionseg.phantom.structures import SOURCE_NAMES, STRUCTURE_NAMES, component_sources

FINE = dict(size=(149, 85, 41), spacing=(2.25, 2.25, 3.05), dtype="float32", noise_percent=0.0)


@pytest.fixture(scope="module")
def busy():
    return generate_phantom(PhantomConfig(seed=11, vessel_trees=3, arterial_fraction=1.0, axillary_nodes=2, **FINE))


def test_structures_mark_arterial_trees_and_nodes_but_no_venous_tree(busy):
    structures = np.asarray(busy.structures.array)
    assert structures.shape == busy.exam.geometry.shape_zyx and structures.dtype == np.uint8
    counts = {name: int(np.count_nonzero(structures == i)) for i, name in enumerate(STRUCTURE_NAMES)}
    assert counts["arterial_vessel"] > 0 and counts["lymph_node"] > 0
    assert counts["venous_vessel"] == 0  # arterial_fraction 1: every tree is arterial
    # arterial trees enhance early: their voxels rise more than the fat around them
    sub = np.asarray(busy.exam.phases[1].array, np.float32) - np.asarray(busy.exam.phases[0].array, np.float32)
    tissue = np.asarray(busy.tissue.array)
    arterial = structures == STRUCTURE_NAMES.index("arterial_vessel")
    plain_fat = (tissue == FAT) & (structures == 0)
    assert float(np.median(sub[arterial])) > float(np.median(sub[plain_fat])) + 20.0
    plain = generate_phantom(PhantomConfig(seed=11, **FINE))
    assert set(np.unique(plain.structures.array)) <= {0, STRUCTURE_NAMES.index("breast_vessel")}


def test_component_sources_name_the_structure_or_tissue_outside_the_lesions():
    shape = (5, 12, 14)
    tissue = np.full(shape, FAT, np.uint8)
    tissue[:, :6] = GLAND
    tissue[:, 11] = SKIN
    lesions = np.zeros(shape, np.uint16)
    lesions[1:4, 1:4, 1:4] = 1
    structures = np.zeros(shape, np.uint8)
    structures[1:4, 7:10, 9:12] = STRUCTURE_NAMES.index("lymph_node")
    components = np.zeros(shape, np.uint16)
    components[1:4, 1:4, 1:4] = 1  # the lesion itself
    components[1:4, 7:10, 8:12] = 2  # a node (27 voxels) and 9 fat voxels beside it
    components[2, 2:4, 6:8] = 3  # background enhancement in the gland
    components[2, 11, 3:6] = 4  # skin
    sources = component_sources(components, lesions, tissue, structures)
    assert sources == {1: "lesion", 2: "lymph_node", 3: "gland", 4: "skin"}
    assert set(sources.values()) <= set(SOURCE_NAMES)
    assert component_sources(np.zeros(shape, np.uint16), lesions, tissue) == {}
    with pytest.raises(ValueError, match="must share one grid"):
        component_sources(components[:, :5], lesions, tissue)
