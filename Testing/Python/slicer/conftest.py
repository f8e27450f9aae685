"""Fixtures for the Slicer logic tests: a real MRML scene from the slicer-core wheel."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel (real MRML)")


def pytest_collection_modifyitems(items):  # noqa: D103
    for item in items:
        if "Testing/Python/slicer/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slicer)


@pytest.fixture
def ctx():
    """A fresh scene with the module logics (Segmentations converter rules registered once)."""
    from BreastLesionSegLib.mrml_context import create_standalone_context

    return create_standalone_context()


def oblique_direction(deg: float = 25.0) -> tuple[float, ...]:
    """An oblique LPS direction (rotation about an axis not aligned with x, y or z)."""
    axis = np.array([0.3, -0.2, 0.93])
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)
    return tuple(rot.ravel())


@pytest.fixture
def small_geometry():
    """Odd-sized oblique grid (x, y, z) = (23, 19, 11)."""
    from breastlesionseg.geometry import Geometry

    return Geometry((23, 19, 11), (0.8, 0.9, 2.0), (-40.0, 25.0, -12.5), oblique_direction())


@pytest.fixture
def synthetic_results(small_geometry):
    """(pre, post1, post2 volumes, breast mask 0/1/2, lesion labels 0..2) on ``small_geometry``.

    Left breast (label 1) is the +x (LPS) half; lesion 1 is a 4x5x6 box (120 voxels) in the left
    breast, lesion 2 a 3x3x2 box (18 voxels) in the right breast; lesions enhance 100 -> 300 -> 250.
    """
    from breastlesionseg.geometry import Volume

    g = small_geometry
    z, y, x = g.shape_zyx
    rng = np.random.default_rng(0)
    breast = np.zeros((z, y, x), np.uint8)
    breast[1:10, 2:17, 12:22] = 1
    breast[1:10, 2:17, 1:11] = 2
    lesions = np.zeros((z, y, x), np.uint8)
    lesions[3:9, 5:10, 14:18] = 1
    lesions[4:6, 8:11, 4:7] = 2
    base = rng.normal(50.0, 1.0, (z, y, x)).astype(np.float32) + 50.0 * (breast > 0)
    pre = base.copy()
    post1 = base.copy()
    post2 = base.copy()
    post1[lesions > 0] += 200.0
    post2[lesions > 0] += 150.0
    vols = [Volume(a, g, name=n) for a, n in ((pre, "ax dyn pre"), (post1, "ax dyn 1st pass"), (post2, "ax dyn 2nd pass"))]
    return vols, Volume(breast, g, name="breast_mask"), Volume(lesions, g, name="lesions")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised MM-3DUNet model folder (real card + weights) for plumbing tests."""
    import torch

    from breastlesionseg.nn.factory import build_network
    from breastlesionseg.nn.model_card import ModelCard
    from breastlesionseg.nn.registry import save_model

    torch.manual_seed(0)
    card = ModelCard(model_id="slicer-test-tiny", arch="mm3dunet",
                     config={"in_channels": 3, "out_channels": 1, "base_width": 4, "levels": 2, "expansion": 2,
                             "act_channels": 4},
                     input_channels=["pre", "post1", "sub1"], normalization="zscore", target_spacing_mm=(6.0, 6.0, 8.0),
                     patch_size=(16, 16, 16), overlap=0.25, threshold=0.5, demo=True,
                     training_data="nothing (random weights, for tests)")
    folder = tmp_path_factory.mktemp("models") / "slicer-test-tiny"
    save_model(build_network("mm3dunet", card.config), card, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_phantom():
    """A small phantom exam (56 x 32 x 16 voxels of 6 x 6 x 8 mm), pre + 2 post phases."""
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    return generate_phantom(PhantomConfig(seed=0, size=(56, 32, 16), n_post=2, n_lesions=(1, 1),
                                          lesion_diameter_mm=(20.0, 30.0)))


@pytest.fixture
def panel_values():
    """Plain values with the fields of the panel's parameter-node wrapper (``BreastLesionSegLib.parameter_node``;
    ``slicer.parameterNodeWrapper`` itself is not in the slicer-core wheel): what ``PanelActions`` reads and writes."""
    from dataclasses import dataclass, field
    from typing import Any

    from BreastLesionSegLib.settings import SegmentationSettings

    @dataclass
    class ResultReferences:
        segmentation: Any = None
        table: Any = None
        chart: Any = None
        probability: Any = None
        heatmap: Any = None

    @dataclass
    class PanelValues(SegmentationSettings):
        pre_volume: Any = None
        post_volumes: list = field(default_factory=list)
        sequence: Any = None
        image_2d: Any = None
        result: ResultReferences = field(default_factory=ResultReferences)

    return PanelValues


@pytest.fixture
def poll_until_finished():
    """What the widget's timer does: poll ``actions`` every 0.1 s until the run finished (bounded by
    ``max_polls``); asserts it finished without error and returns the last poll's outcome."""
    import time

    def poll(actions, values, max_polls: int = 6000):
        out = None
        for _ in range(max_polls):
            out = actions.poll(values)
            if out.finished:
                break
            time.sleep(0.1)
        assert out.finished and not out.error, out.error
        return out

    return poll
