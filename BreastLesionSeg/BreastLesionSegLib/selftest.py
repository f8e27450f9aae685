"""The module self-test: the real pipeline on a phantom exam with the shipped model.

Run by the Slicer self-test (``BreastLesionSegTest`` in ``BreastLesionSeg.py``, registered with
``slicer_add_python_unittest``) and by pytest with slicer-core (``test_slicer_selftest.py``): a phantom
exam is generated, loaded as volume nodes named like scanner series, auto-assigned, segmented out of
process with ``breastlesionseg segment``, imported, and the segments and table are checked against
the phantom's ground truth.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from breastlesionseg.errors import BreastLesionSegError

from . import scene_io, segmentation_nodes, tables
from .logic import SceneLogic
from .models import read_model_info
from .settings import INPUT_VOLUMES, SegmentationSettings

log = logging.getLogger(__name__)

SERIES_NAMES = ("ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass", "ax dyn 3rd pass", "ax dyn 4th pass",
                "ax dyn 5th pass", "ax dyn 6th pass")


class SelfTestError(BreastLesionSegError):
    """A self-test check failed."""


@dataclass
class SelfTestConfig:
    """Parameters of the self-test.

    Attributes:
        seed: phantom seed (one with lesions well inside the demo model's range).
        size: phantom grid (x, y, z); the default field of view is kept.
        model: model id, or a model folder (searched first).
        device: "auto", "cpu" or "cuda".
        min_lesion_dice: lower bound of the Dice of all lesions vs the phantom truth.
        min_breast_dice: lower bound of the Dice of the breast region vs the truth.
        timeout_s: time limit of the segmentation run.
        threads: CPU threads of the child process.
    """

    seed: int = 3
    size: tuple[int, int, int] = (224, 128, 64)
    model: str = "mm3dunet-phantom-demo"
    device: str = "auto"
    min_lesion_dice: float = 0.5
    min_breast_dice: float = 0.8
    timeout_s: float = 600.0
    threads: int | None = 2


@dataclass
class SelfTestReport:
    """What the self-test found (all checks passed when it is returned)."""

    n_true_lesions: int
    n_found_lesions: int
    lesion_dice: float
    breast_dice: float
    segment_names: list[str]
    table_rows: int
    segment_s: float
    notes: list[str] = field(default_factory=list)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    denom = int(a.sum()) + int(b.sum())
    return 1.0 if denom == 0 else 2.0 * int(np.logical_and(a, b).sum()) / denom


def run_self_test(ctx: Any, work_dir: str | Path, config: SelfTestConfig | None = None,
                  python: str | None = None) -> SelfTestReport:
    """Generate a phantom, segment it through the module logic, check segments and table.

    Raises:
        SelfTestError: a check failed (the message says which and by how much).
    """
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    config = config or SelfTestConfig()
    phantom = generate_phantom(PhantomConfig(seed=config.seed, size=config.size, n_lesions=(1, 2),
                                             lesion_diameter_mm=(12.0, 25.0)))
    nodes = [scene_io.node_from_volume(ctx.scene, vol, SERIES_NAMES[k]) for k, vol in enumerate(phantom.exam.phases)]
    logic = SceneLogic(ctx, work_dir=work_dir, python=python, threads=config.threads)
    assignment = logic.propose_inputs()
    if assignment.pre != nodes[0].GetID() or assignment.posts != [n.GetID() for n in nodes[1:]]:
        raise SelfTestError(f"input auto-assignment failed: {assignment}")
    model_folder = Path(config.model)
    is_folder = (model_folder / "model_card.json").is_file()  # a model folder: searched first, selected by its id
    settings = SegmentationSettings(model=read_model_info(model_folder).model_id if is_folder else config.model,
                                    device=config.device, user_model_folders=[str(model_folder)] if is_folder else [])
    logic.sync_model_defaults(settings)  # the card's threshold and minimum volume, as the panel does
    pre, posts = logic.assigned_nodes(assignment)
    selection = logic.select_phases(INPUT_VOLUMES, pre, posts)
    t0 = time.monotonic()
    result = logic.run_segmentation(selection, settings, timeout_s=config.timeout_s)
    segment_s = time.monotonic() - t0
    names = segmentation_nodes.segment_names(result.segmentation, segmentation_nodes.segment_ids(result.segmentation))
    if names[:2] != ["Breast left", "Breast right"]:
        raise SelfTestError(f"expected 'Breast left', 'Breast right' first; segments are {names}")
    labels = segmentation_nodes.labels_from_segmentation(ctx, result.segmentation, pre)
    n_found = len(labels.lesion_segment_ids)
    lesion_names = [f"Lesion {k}" for k in range(1, n_found + 1)]
    if names[2:] != lesion_names:
        raise SelfTestError(f"expected lesion segments {lesion_names}; segments are {names}")
    lesion_dice = _dice(labels.lesion_labels.array > 0, phantom.lesion_labels.array > 0)
    breast_dice = _dice(labels.breast_mask.array > 0, phantom.breast_mask.array > 0)
    rows = tables.table_to_dicts(result.table)
    if n_found and [r["Segment"] for r in rows] != lesion_names + ["Total"]:
        raise SelfTestError(f"table rows {[r['Segment'] for r in rows]} do not match the lesion segments")
    vox = pre.GetSpacing()[0] * pre.GetSpacing()[1] * pre.GetSpacing()[2]
    for k, row in enumerate(rows[:n_found], start=1):
        expected = float((labels.lesion_labels.array == k).sum()) * vox
        if abs(row["volume_mm3"] - expected) > 1e-3 * max(expected, 1.0):
            raise SelfTestError(f"table volume of Lesion {k} is {row['volume_mm3']:.1f} mm3, segment has {expected:.1f}")
    if lesion_dice < config.min_lesion_dice:
        raise SelfTestError(f"lesion Dice {lesion_dice:.3f} < {config.min_lesion_dice} on phantom seed {config.seed}")
    if breast_dice < config.min_breast_dice:
        raise SelfTestError(f"breast Dice {breast_dice:.3f} < {config.min_breast_dice} on phantom seed {config.seed}")
    report = SelfTestReport(len(phantom.lesions), n_found, lesion_dice, breast_dice, names, len(rows), segment_s)
    log.info("self-test passed: %s", report)
    return report


def run_self_test_in_slicer(config: SelfTestConfig | None = None) -> SelfTestReport:
    """The self-test on the Slicer application's scene (what 'Reload and Test' runs)."""
    import os

    import slicer

    from .mrml_context import context_from_slicer_application

    work_dir = os.path.join(slicer.app.temporaryPath, "BreastLesionSegSelfTest")
    return run_self_test(context_from_slicer_application(), work_dir=work_dir, config=config or SelfTestConfig())
