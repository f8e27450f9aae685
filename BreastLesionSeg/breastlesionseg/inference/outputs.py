"""Write a segmentation result into an output folder, all or nothing.

Files (the CLI contract of ``breastlesionseg segment``):

* ``segmentation.seg.nrrd`` — Slicer segmentation: "Breast left", "Breast right", "Lesion 1".."Lesion N";
* ``lesions.nii.gz`` — 0 background, 1..N lesion instances (uint16), on the pre-contrast grid;
* ``breast_mask.nii.gz`` — 0 / 1 left / 2 right (uint8), on the pre-contrast grid;
* ``metrics.json`` — lesion + breast metrics, model id/sha256/demo flag, device, timings, peak memory;
* ``overview.png`` — subtraction MIP and key slices with contours and lesion numbers;
* ``probability.nii.gz`` / ``heatmap.nii.gz`` — optional float32 maps in [0, 1];
* ``candidates.nii.gz`` — lower-confidence lesion candidates 1..M (uint16; ``metrics.json["candidates"]``
  lists their confidence and volume), when the model card has a per-lesion confidence model.

Everything is written into a hidden temporary folder beside the target and moved into place only
when every file is complete, so an error or a cancellation never leaves partial output (the folder of a
killed run is removed by the next run on the same output). One run at a time holds an output folder
(:mod:`breastlesionseg.io.output_claim`). A non-empty existing folder is only written into with
``overwrite=True`` (``--force``); then only the files above are replaced, other files in it are left alone,
and a result image edited since it was written (its SHA-256 no longer matches ``metrics.json``) is kept as
``<name>.edited-<UTC time>.<ending>``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..errors import InputError
from ..breast.result import breast_volume_warnings
from ..exam import DCEExam
from ..geometry import Volume
from ..io.atomic import is_disk_full
from ..io.output_claim import claim_output
from ..output_files import (BREAST_MASK_FILE, CANDIDATES_FILE, HEATMAP_FILE, LESIONS_FILE, METRICS_FILE,
                            OUTPUT_FILES, OVERVIEW_FILE, PROBABILITY_FILE, SEGMENTATION_FILE)
from .result import SegmentationResult

log = logging.getLogger(__name__)

RESEARCH_USE_NOTE = (
    "For research use only. Not a medical device; results must be reviewed and corrected by a qualified reader."
)
#: ``metrics.json`` key: SHA-256 of every result image as written (to tell reader edits from our own files)
OUTPUT_SHA256_KEY = "output_files_sha256"
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
        "warnings": list(exam.warnings),
    }
    doc.update(result.summary())
    doc.update(result.metrics)
    volumes = doc.get("breast_volumes") or {}
    doc["warnings"] += breast_volume_warnings({"left": volumes.get("left_ml"), "right": volumes.get("right_ml")},
                                              exam.pre.source)
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
    if result.candidate_labels is not None:
        jobs.append((CANDIDATES_FILE, lambda: write_volume(
            Volume(np.asarray(result.candidate_labels.array, dtype=np.uint16), exam.geometry, name="candidates"),
            folder / CANDIDATES_FILE)))
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="bls-write") as pool:
        futures = [(name, pool.submit(job)) for name, job in jobs]
        footer = f"model {result.model.model_id} ({result.model.sha256[:12] or 'no checksum'})"
        if result.model.is_demo:
            footer += " - " + DEMO_MODEL_NOTE
        footer += " - research use only"
        render_overview(exam, result.breast_mask, result.lesion_labels, folder / OVERVIEW_FILE,
                        title=title or f"{result.n_lesions} lesion(s) found", footer=footer)
        for _name, future in futures:
            future.result()  # re-raises a failed write; the caller removes the partial folder
    doc = metrics_document(result, exam, extra)
    # what this run wrote: a later --force run keeps a backup of any file that no longer matches (reader edits)
    doc[OUTPUT_SHA256_KEY] = {name: file_sha256(folder / name) for name, _ in jobs}
    (folder / METRICS_FILE).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return [name for name, _ in jobs] + [METRICS_FILE, OVERVIEW_FILE]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_name(name: str, stamp: str) -> str:
    """``segmentation.seg.nrrd`` -> ``segmentation.edited-<stamp>.seg.nrrd`` (the format ending is kept)."""
    stem, dot, rest = name.partition(".")
    return f"{stem}.edited-{stamp}{dot}{rest}"


def back_up_edited_outputs(out: Path) -> list[Path]:
    """Keep every result image in ``out`` that differs from what the run that wrote it recorded.

    ``metrics.json`` records the SHA-256 of each image file a run wrote; a file whose bytes no longer match
    (edited by a reader, e.g. the segmentation corrected in Slicer), or that no record covers, is renamed to
    ``<name>.edited-<UTC time>.<ending>`` before ``--force`` replaces the results. Unedited files are simply
    replaced.

    Returns:
        The backup files made.
    """
    try:
        recorded = json.loads((out / METRICS_FILE).read_text(encoding="utf-8")).get(OUTPUT_SHA256_KEY) or {}
    except (OSError, ValueError, AttributeError):
        recorded = {}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backups = []
    for name in OUTPUT_FILES:
        target = out / name
        if name in (METRICS_FILE, OVERVIEW_FILE) or not target.is_file():
            continue
        if recorded.get(name) == file_sha256(target):
            continue
        backup = out / backup_name(name, stamp)
        os.replace(target, backup)
        log.warning("'%s' was edited after it was written (or its record is missing): kept as '%s'", target, backup)
        backups.append(backup)
    return backups


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
    if not result.lesion_labels.geometry.same_grid(exam.geometry):
        raise InputError("write_outputs: the result is not on the exam's pre-contrast grid")
    with claim_output(out_dir):  # a no-op when the command claimed the folder already
        out = check_output_dir(out_dir, overwrite)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except OSError as exc:
            raise _write_error(out, exc) from exc
        try:
            written = _write_files(result, exam, tmp, extra_metrics, title)
            _normal_permissions(tmp, written)
            _publish(tmp, out, written)
        except (OSError, RuntimeError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError) or is_disk_full(exc, out):  # SimpleITK wraps a full disk in RuntimeError
                raise _write_error(out, exc) from exc
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("outputs written to %s", out)
    return {name: out / name for name in written}


def _publish(tmp: Path, out: Path, written: list[str]) -> None:
    """Move the complete temporary folder into place (one rename for a new folder)."""
    if not out.exists():
        os.rename(tmp, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.rename(tmp, out)
        return
    # overwrite=True (checked by the caller): keep edited results as backups, replace ours, keep the user's others
    back_up_edited_outputs(out)
    for name in OUTPUT_FILES:
        target = out / name
        if name in written:
            os.replace(tmp / name, target)
        elif target.exists():
            target.unlink()  # a stale optional map of an earlier run would contradict this one
    shutil.rmtree(tmp)


def _write_error(out: Path, exc: OSError | RuntimeError) -> InputError:
    """A clear message for a failed write (disk full, permissions); nothing partial is left by the caller."""
    if is_disk_full(exc, out):
        return InputError(f"no space left on the device while writing the results into '{out}'; nothing was "
                          f"written. Free some space or choose another --output.")
    return InputError(f"cannot write the results into '{out}': {exc.strerror or exc}; nothing was written.")
