"""Write a segmentation result into an output folder, all or nothing.

Files (the CLI contract of ``breastlesionseg segment``):

* ``segmentation.seg.nrrd`` — Slicer segmentation: "Breast left", "Breast right", "Lesion 1".."Lesion N";
* ``lesions.nii.gz`` — 0 background, 1..N lesion instances (uint16), on the pre-contrast grid;
* ``breast_mask.nii.gz`` — 0 / 1 left / 2 right (uint8), on the pre-contrast grid;
* ``metrics.json`` — lesion + breast metrics, model id/sha256/demo flag, device, timings, peak memory;
* ``overview.png`` — subtraction MIP and key slices with contours and lesion numbers;
* ``probability.nii.gz`` / ``heatmap.nii.gz`` — optional float32 maps in [0, 1].

Everything is written into a hidden temporary folder beside the target and moved into place only
when every file is complete, so an error or a cancellation never leaves partial output. A non-empty
existing folder is only written into with ``overwrite=True`` (``--force``); then only the files
above are replaced, other files in it are left alone.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..errors import InputError
from ..exam import DCEExam
from ..geometry import Volume
from ..output_files import (BREAST_MASK_FILE, HEATMAP_FILE, LESIONS_FILE, METRICS_FILE, OUTPUT_FILES, OVERVIEW_FILE,
                            PROBABILITY_FILE, SEGMENTATION_FILE)
from .result import SegmentationResult

log = logging.getLogger(__name__)

RESEARCH_USE_NOTE = (
    "For research use only. Not a medical device; results must be reviewed and corrected by a qualified reader."
)
DEMO_MODEL_NOTE = "DEMO MODEL trained on synthetic phantoms only - results on real exams are illustrations"


def check_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Fail early when ``out_dir`` cannot be written: a file, or a non-empty folder without ``overwrite``.

    Raises:
        InputError: naming the folder and what to do.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output '{out}' exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            f"--output folder '{out}' exists and is not empty; refusing to overwrite results that may have been "
            "edited (choose another folder or pass --force)"
        )
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_floats(value: Any) -> Any:
    """Replace NaN/inf by None so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_floats(v) for v in value]
    return value


def metrics_document(result: SegmentationResult, exam: DCEExam, extra: dict | None = None) -> dict:
    """The content of ``metrics.json``: lesion metrics (``lesions``, ``totals``, ``breast_volumes``,
    ``parameters``, ``definitions``) plus the run description (``model``, ``device``, ``timings_s``,
    ``peak_memory_mb``, geometry, settings, notes) and the inputs."""
    doc: dict[str, Any] = {
        "format": "breastlesionseg-segmentation",
        "format_version": 1,
        "software_version": __version__,
        "research_use": RESEARCH_USE_NOTE,
        "inputs": [{"name": p.name, "source": p.source} for p in exam.phases],
        "exam_notes": list(exam.notes),
    }
    doc.update(result.summary())
    doc.update(result.metrics)
    if extra:
        doc.update(extra)
    return _clean_floats(json.loads(json.dumps(doc, default=_json_default)))


def _write_files(result: SegmentationResult, exam: DCEExam, folder: Path, extra: dict | None, title: str) -> list[str]:
    """Write every output file into ``folder``; the image files are compressed in worker threads.

    zlib and SimpleITK release the GIL while they compress, so the volumes are written concurrently
    while the main thread renders the overview (matplotlib stays on the calling thread). Duke exam,
    2 cores: see docs/performance.md.
    """
    from ..io import write_volume
    from ..io.seg_nrrd import write_seg_nrrd
    from .overview import render_overview

    jobs: list[tuple[str, Callable[[], object]]] = [
        (SEGMENTATION_FILE, lambda: write_seg_nrrd(folder / SEGMENTATION_FILE, result.breast_mask, result.lesion_labels)),
        (LESIONS_FILE, lambda: write_volume(
            Volume(np.asarray(result.lesion_labels.array, dtype=np.uint16), exam.geometry, name="lesions"),
            folder / LESIONS_FILE)),
        (BREAST_MASK_FILE, lambda: write_volume(
            Volume(np.asarray(result.breast_mask.array, dtype=np.uint8), exam.geometry, name="breast"),
            folder / BREAST_MASK_FILE)),
    ]
    if result.probability is not None:
        jobs.append((PROBABILITY_FILE, lambda: write_volume(result.probability, folder / PROBABILITY_FILE)))
    if result.heatmap is not None:
        jobs.append((HEATMAP_FILE, lambda: write_volume(result.heatmap, folder / HEATMAP_FILE)))
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="bls-write") as pool:
        futures = [(name, pool.submit(job)) for name, job in jobs]
        doc = metrics_document(result, exam, extra)
        (folder / METRICS_FILE).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        footer = f"model {result.model.model_id} ({result.model.sha256[:12] or 'no checksum'})"
        if result.model.is_demo:
            footer += " - " + DEMO_MODEL_NOTE
        footer += " - research use only"
        render_overview(exam, result.breast_mask, result.lesion_labels, folder / OVERVIEW_FILE,
                        title=title or f"{result.n_lesions} lesion(s) found", footer=footer)
        for _name, future in futures:
            future.result()  # re-raises a failed write; the caller removes the partial folder
    return [name for name, _ in jobs] + [METRICS_FILE, OVERVIEW_FILE]


def _normal_permissions(folder: Path, names: list[str]) -> None:
    """Temporary files/folders are created private (0600/0700); give results the user's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for name in names:
        os.chmod(folder / name, 0o666 & ~umask)


def write_outputs(
    result: SegmentationResult,
    exam: DCEExam,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    extra_metrics: dict | None = None,
    title: str = "",
) -> dict[str, Path]:
    """Write every output file of ``result`` into ``out_dir`` atomically (all files or none).

    Args:
        result: the engine's result (on ``exam``'s pre grid).
        exam: the segmented exam (for the overview picture and input names).
        out_dir: the output folder (created; must not be a non-empty folder unless ``overwrite``).
        overwrite: write into a non-empty folder, replacing the output files of a previous run.
        extra_metrics: extra top-level entries for ``metrics.json`` (e.g. Dice against a reference).
        title: overview figure title.

    Returns:
        ``{file name: path}`` of the files written.

    Raises:
        InputError: the folder is not writable under these rules.
    """
    out = check_output_dir(out_dir, overwrite)
    if not result.lesion_labels.geometry.same_grid(exam.geometry):
        raise InputError("write_outputs: the result is not on the exam's pre-contrast grid")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        written = _write_files(result, exam, tmp, extra_metrics, title)
        _normal_permissions(tmp, written)
        if not out.exists():
            os.rename(tmp, out)
        elif not any(out.iterdir()):
            out.rmdir()
            os.rename(tmp, out)
        else:  # overwrite=True, checked above: replace our files, keep the user's others
            for name in OUTPUT_FILES:
                target = out / name
                if name in written:
                    os.replace(tmp / name, target)
                elif target.exists():
                    target.unlink()  # a stale optional map of an earlier run would contradict this one
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("outputs written to %s", out)
    return {name: out / name for name in written}
