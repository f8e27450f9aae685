"""Write and read a phantom exam folder.

Layout of ``out_dir``::

    pre.nii.gz, post1.nii.gz, ... postK.nii.gz   the phases (uint16 or float32, LPS geometry exact)
    breast_mask.nii.gz                           uint8 0 / 1 left / 2 right
    lesions.nii.gz                               uint16 lesion instances 0..N (decreasing volume)
    tissue.nii.gz                                uint8 tissue classes (see phantom.json "tissue_names")
    structures.nii.gz                            uint8 enhancing non-lesion structures (phantom.json
                                                 "structure_names": vessels, lymph nodes)
    phantom.json                                 config, grid, phases, breast volumes (mL), lesion table,
                                                 file list; written last, so its presence marks a
                                                 complete phantom

Every file is written atomically (``breastlesionseg.io.atomic``); existing files are only replaced
with ``overwrite=True`` and the check happens before anything is written.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import InputError
from ..exam.dce_exam import DCEExam
from ..io.atomic import write_text_atomic
from ..io.volume_io import read_label_volume, read_volume, write_volume
from .config import PhantomConfig
from .generator import Phantom

log = logging.getLogger(__name__)

PHANTOM_JSON = "phantom.json"
FORMAT_VERSION = 1


def phantom_file_names(phase_names: list[str]) -> dict[str, str]:
    """Key -> file name of every file of a phantom folder (phases keyed by phase name)."""
    names = {p: f"{p}.nii.gz" for p in phase_names}
    names.update({"breast_mask": "breast_mask.nii.gz", "lesions": "lesions.nii.gz", "tissue": "tissue.nii.gz",
                  "structures": "structures.nii.gz", "json": PHANTOM_JSON})
    return names


def check_phantom_targets(out_dir: str | os.PathLike, phase_names: list[str],
                          overwrite: bool = False) -> dict[str, Path]:
    """Target paths of a phantom folder; raises :class:`InputError` when one exists and not ``overwrite``.

    Call it before generating to fail fast (the CLI does).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"phantom output '{out}' exists and is not a folder")
    paths = {k: out / v for k, v in phantom_file_names(phase_names).items()}
    if not overwrite:
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise InputError(f"refusing to overwrite existing phantom file '{existing[0]}'{more} "
                             f"(use --force / overwrite=True)")
    return paths


def write_phantom(phantom: Phantom, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
    """Write a phantom's phases, ground truth and ``phantom.json`` into ``out_dir``.

    Args:
        phantom: from :func:`generate_phantom`.
        out_dir: target folder (created if needed).
        overwrite: replace existing phantom files (default: refuse, naming the first existing file).

    Returns:
        Key -> written path (keys: phase names, ``breast_mask``, ``lesions``, ``tissue`` and ``structures``
        when the phantom has them, ``json``).

    Raises:
        InputError: a target file exists and ``overwrite`` is false, or ``out_dir`` is a file.
    """
    out = Path(out_dir)
    paths = check_phantom_targets(out, phantom.exam.names, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for phase in phantom.exam.phases:
        write_volume(phase, paths[phase.name], overwrite=overwrite)
    write_volume(phantom.breast_mask, paths["breast_mask"], overwrite=overwrite)
    write_volume(phantom.lesion_labels, paths["lesions"], overwrite=overwrite)
    for key, volume in (("tissue", phantom.tissue), ("structures", phantom.structures)):
        if volume is not None:
            write_volume(volume, paths[key], overwrite=overwrite)
        else:
            paths.pop(key)
    doc = {"format_version": FORMAT_VERSION, **phantom.summary(),
           "files": {k: p.name for k, p in paths.items()}}
    write_text_atomic(paths["json"], json.dumps(doc, indent=2) + "\n", overwrite=overwrite)
    log.info("wrote phantom seed %d to %s", phantom.config.seed, out)
    return paths


def load_phantom(out_dir: str | os.PathLike) -> Phantom:
    """Read a phantom folder written by :func:`write_phantom` (voxel types and geometry preserved).

    Raises:
        InputError: missing folder / ``phantom.json`` / listed file, or an unreadable JSON.
    """
    folder = Path(out_dir)
    jpath = folder / PHANTOM_JSON
    if not jpath.is_file():
        raise InputError(f"'{folder}' is not a phantom folder: '{PHANTOM_JSON}' is missing")
    try:
        doc = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read '{jpath}': {exc}") from exc
    files = doc.get("files", {})
    for key in [*doc.get("phases", []), "breast_mask", "lesions"]:
        if key not in files or not (folder / files[key]).is_file():
            raise InputError(f"phantom folder '{folder}': file for '{key}' ({files.get(key)}) is missing")
    phases = [read_volume(folder / files[name], name=name, dtype=None) for name in doc["phases"]]
    times = doc.get("acquisition_times_s") or None
    exam = DCEExam(phases, acquisition_times_s=times, notes=[f"phantom loaded from {folder}"])
    breast = read_label_volume(folder / files["breast_mask"], name="breast_mask")
    lesions = read_label_volume(folder / files["lesions"], name="lesions")
    tissue, structures = (read_label_volume(folder / files[key], name=key)
                          if key in files and (folder / files[key]).is_file() else None
                          for key in ("tissue", "structures"))
    return Phantom(
        config=PhantomConfig.from_dict(doc["config"]),
        exam=exam,
        breast_mask=breast,
        lesion_labels=lesions,
        lesions=list(doc.get("lesions", [])),
        tissue=tissue,
        structures=structures,
        anatomy=doc.get("anatomy", {}),
        generation_time_s=float(doc.get("generation_time_s", 0.0)),
    )
