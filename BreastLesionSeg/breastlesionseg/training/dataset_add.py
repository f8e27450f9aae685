"""Add one corrected case to a training dataset (``breastlesionseg dataset add`` and Slicer's "Add to training set").

The case is validated completely (3D, same grid, finite voxels, non-empty lesion label, breast-mask
values) before anything is written; the files are written into a hidden temporary folder that is
renamed into ``cases/<case_id>/`` in one step, then the manifest is rewritten atomically.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..errors import BreastLesionSegError, DatasetError
from ..geometry import Geometry, Volume
from ..io.atomic import disk_full_reported
from .dataset import (
    BREAST_MASK_FILE,
    CASES_DIR,
    LESIONS_FILE,
    PHASE_NAME_PATTERN,
    CaseRecord,
    Dataset,
    default_phase_names,
    read_volume_file,
    utc_now_iso,
    validate_case_id,
    volume_sha256,
    write_volume_file,
)

log = logging.getLogger(__name__)

VolumeLike = "str | os.PathLike | Volume"


def instance_labels(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Lesion label map -> instances ``1..N`` numbered by decreasing voxel count.

    A binary map (values 0/1) is split into 26-connected components; a map with several
    positive values keeps the user's split (each value one lesion).

    Args:
        labels: ``(z, y, x)`` integer label map, values >= 0.

    Returns:
        ``(instances uint16 (z, y, x), voxel counts of lesions 1..N)``.
    """
    values = np.unique(labels)
    values = values[values > 0]
    if values.size == 1:
        comp, n = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), dtype=bool))
    else:
        comp = np.zeros(labels.shape, dtype=np.int32)
        for idx, v in enumerate(values, start=1):
            comp[labels == v] = idx
        n = int(values.size)
    counts = np.bincount(comp.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-counts, kind="stable")
    lut = np.zeros(n + 1, dtype=np.uint16)
    lut[order + 1] = np.arange(1, n + 1, dtype=np.uint16)
    return lut[comp], [int(counts[i]) for i in order]


def _as_volume(item: VolumeLike, role: str, label: bool = False) -> Volume:
    """A path (read it) or a Volume (used as is)."""
    if isinstance(item, Volume):
        return item
    if item is None:
        raise DatasetError(f"no {role} given")
    return read_volume_file(item, name=role, label=label)


def _describe(vol: Volume, role: str) -> str:
    return f"{role} '{vol.source}'" if vol.source else role


def _check_3d(vol: Volume, role: str) -> None:
    if min(vol.geometry.size) < 2:
        raise DatasetError(
            f"{_describe(vol, role)} is 2D (size x,y,z = {vol.geometry.size}); training cases must be 3D volumes"
        )


def _check_grid(vol: Volume, role: str, ref: Volume) -> None:
    if not vol.geometry.same_grid(ref.geometry):
        g, r = vol.geometry, ref.geometry
        raise DatasetError(
            f"{_describe(vol, role)} is not on the grid of {_describe(ref, 'pre')}: size {g.size} vs {r.size}, "
            f"spacing {tuple(round(s, 4) for s in g.spacing)} vs {tuple(round(s, 4) for s in r.spacing)} mm, "
            f"origin {tuple(round(s, 3) for s in g.origin)} vs {tuple(round(s, 3) for s in r.origin)} mm"
            + ("" if np.allclose(g.direction, r.direction, atol=1e-5) else ", direction differs")
            + "; resample it onto the pre-contrast grid first"
        )


def _read_seg_nrrd(path: str | os.PathLike, reference: Geometry) -> tuple[Volume, Volume | None]:
    """Read a Slicer ``.seg.nrrd`` onto the pre-contrast grid -> (lesion labels, breast mask or None).

    Uses ``breastlesionseg.io.seg_nrrd.read_seg_nrrd`` (segments "Lesion k", "Breast left/right";
    Slicer's cropped labelmaps are placed back onto ``reference``).
    """
    from ..io.seg_nrrd import read_seg_nrrd

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"segmentation file '{path}' does not exist")
    try:
        contents = read_seg_nrrd(path, reference_geometry=reference)
    except BreastLesionSegError as exc:
        raise DatasetError(f"cannot use segmentation '{path}': {exc}") from exc
    lesions, breast = contents.lesion_labels, contents.breast_mask
    lesions.source = str(path)
    if breast is not None:
        breast.source = str(path)
    return lesions, breast


def _compute_breast_mask(exam) -> Volume:
    """Breast mask from the breast-region module (when the user gives none)."""
    try:
        from ..breast import segment_breast_region  # type: ignore[attr-defined]
    except ImportError as exc:
        raise DatasetError(
            "no breast mask given and breastlesionseg.breast.segment_breast_region is unavailable; "
            "pass --breast-mask"
        ) from exc
    result = segment_breast_region(exam)
    return result.mask


def add_case(
    dataset: str | os.PathLike | Dataset,
    case_id: str,
    phases: Sequence[VolumeLike],
    *,
    lesions: VolumeLike | None = None,
    breast_mask: VolumeLike | None = None,
    seg_nrrd: str | os.PathLike | None = None,
    phase_names: Sequence[str] | None = None,
    source: str = "",
    corrected_by: str = "",
    corrected_at: str | None = None,
    notes: str = "",
    force: bool = False,
) -> CaseRecord:
    """Validate one case and add it to the dataset (creating the dataset when needed).

    Stages: check the arguments, read and validate the phases (one grid, finite, plausible phase order), the
    lesion labels (a ``.seg.nrrd`` made on another image is refused: geometry mismatch) and the breast mask,
    then write the case folder in one rename and the manifest last.

    Args:
        dataset: dataset folder or :class:`Dataset`.
        case_id: unique id (folder name).
        phases: pre-contrast then post-contrast phases in time order: paths or Volumes, all 3D on one grid.
        lesions: lesion label map (binary -> split into connected lesions, or instance labels), on the pre grid.
        breast_mask: breast mask 0/1/2 on the pre grid; computed with ``breastlesionseg.breast`` when absent.
        seg_nrrd: a Slicer ``.seg.nrrd`` with "Lesion k" (and optionally "Breast left/right") segments,
            instead of ``lesions`` / ``breast_mask``; it must have been made on the pre-contrast phase's grid.
        phase_names: names of the phases (default ``pre, post1, ...``).
        source: free-text provenance (default: the phase paths).
        corrected_by: who corrected the segmentation.
        corrected_at: ISO time of the correction (default now).
        notes: free text.
        force: replace an existing case with the same id, and accept a case whose images duplicate another's.

    Returns:
        The new manifest record.

    Raises:
        DatasetError: invalid case (2D, mismatched grids, empty label, missing/truncated phase file, implausible
            phase order, segmentation made on another image, duplicate, ...).
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    names = _check_arguments(case_id, phases, lesions, breast_mask, seg_nrrd, phase_names)
    vols = _read_phases(case_id, list(phases), names)
    inst, counts, seg_breast = _read_lesions(case_id, lesions, seg_nrrd, vols[0])
    bm, breast_source = _read_breast_mask(case_id, breast_mask, seg_breast, vols, inst)
    grid = vols[0].geometry
    now = utc_now_iso()
    record = CaseRecord(
        case_id=case_id,
        source=source or " ".join((p.source or p.name) if isinstance(p, Volume) else str(p) for p in phases),
        phase_names=names,
        files={**{n: f"{CASES_DIR}/{case_id}/{n}.nii.gz" for n in names},
               "lesions": f"{CASES_DIR}/{case_id}/{LESIONS_FILE}",
               "breast_mask": f"{CASES_DIR}/{case_id}/{BREAST_MASK_FILE}"},
        geometry=grid.to_dict(),
        lesion_count=len(counts),
        lesion_volume_mm3=float(sum(counts) * grid.voxel_volume_mm3),
        breast_volume_ml=float((bm > 0).sum() * grid.voxel_volume_mm3 / 1000.0),
        breast_mask_source=breast_source,
        image_sha256=volume_sha256(vols),
        label_sha256=volume_sha256([Volume(inst, grid)]),
        corrected_by=corrected_by,
        corrected_at=corrected_at or now,
        added_at=now,
        notes=notes,
    )
    _write_case(ds, record, vols, inst, bm, force)
    log.info("added case '%s' to %s: %d lesion(s), %.1f mm3, breast mask %s", case_id, ds.root,
             record.lesion_count, record.lesion_volume_mm3, breast_source)
    return record


def _check_arguments(case_id: str, phases: Sequence[VolumeLike], lesions, breast_mask, seg_nrrd,
                     phase_names: Sequence[str] | None) -> list[str]:
    """Stage 1: argument combinations, phase names and phase files exist -> the phase names."""
    validate_case_id(case_id)
    if (lesions is None) == (seg_nrrd is None):
        raise DatasetError(f"case '{case_id}': give exactly one of a lesion label map (--lesions) or a "
                           f".seg.nrrd (--seg-nrrd)")
    if seg_nrrd is not None and breast_mask is not None:
        log.info("case '%s': --breast-mask overrides the breast segments of the .seg.nrrd", case_id)
    phases = list(phases)
    if len(phases) < 2:
        raise DatasetError(
            f"case '{case_id}': missing phase: a DCE case needs the pre-contrast and at least one post-contrast "
            f"phase, got {len(phases)}"
        )
    names = list(phase_names) if phase_names else default_phase_names(len(phases))
    if len(names) != len(phases):
        raise DatasetError(f"case '{case_id}': {len(names)} phase names {names} for {len(phases)} phases")
    bad = [n for n in names if not PHASE_NAME_PATTERN.match(n)] + ([] if names[0] == "pre" else [names[0]])
    if bad or len(set(names)) != len(names):
        raise DatasetError(f"case '{case_id}': phase names must be 'pre', 'post1', 'post2', ... (unique, pre first); "
                           f"got {names}")
    for item, name in zip(phases, names):
        if item is None or (not isinstance(item, Volume) and not Path(item).is_file()):
            raise DatasetError(f"case '{case_id}': missing phase '{name}': file '{item}' does not exist")
    return names


def _read_phases(case_id: str, phases: list[VolumeLike], names: list[str]) -> list[Volume]:
    """Stage 2: read the phases (memory budget from the headers first) and validate them as one exam."""
    from ..exam.validation import preflight_phase_files, require_plausible_phase_order

    paths = [Path(p) for p in phases if not isinstance(p, Volume)]
    try:
        if len(paths) == len(phases):
            preflight_phase_files(paths)
    except BreastLesionSegError as exc:
        raise DatasetError(f"case '{case_id}': {exc}") from exc
    vols = [_as_volume(p, name) for p, name in zip(phases, names)]
    for v, name in zip(vols, names):
        v.name = name
        _check_3d(v, f"phase '{name}'")
    pre = vols[0]
    for v, name in zip(vols[1:], names[1:]):
        _check_grid(v, f"phase '{name}'", pre)
    for v, name in zip(vols, names):
        if not np.issubdtype(v.array.dtype, np.number):
            raise DatasetError(f"case '{case_id}': {_describe(v, name)} has non-numeric voxels ({v.array.dtype})")
        if not np.isfinite(np.asarray(v.array, dtype=np.float64)).all():
            raise DatasetError(f"case '{case_id}': {_describe(v, 'phase ' + repr(name))} contains NaN/inf voxels")
    try:
        require_plausible_phase_order(vols)
    except BreastLesionSegError as exc:
        raise DatasetError(f"case '{case_id}': {exc}") from exc
    return vols


def _read_lesions(case_id: str, lesions: VolumeLike | None, seg_nrrd, pre: Volume) -> tuple[np.ndarray, list[int],
                                                                                          Volume | None]:
    """Stage 3: lesion labels (a label map, or a .seg.nrrd made on the pre grid) -> (instances, counts, breast)."""
    seg_breast = None
    if seg_nrrd is not None:
        lesion_vol, seg_breast = _read_seg_nrrd(seg_nrrd, pre.geometry)
    else:
        lesion_vol = _as_volume(lesions, "lesions", label=True)
    _check_3d(lesion_vol, "lesion labels")
    _check_grid(lesion_vol, "lesion labels", pre)
    lab = np.asarray(lesion_vol.array)
    if not (np.issubdtype(lab.dtype, np.integer) or np.array_equal(lab, np.round(lab))):
        raise DatasetError(f"case '{case_id}': {_describe(lesion_vol, 'lesion labels')} has non-integer values")
    if lab.min() < 0:
        raise DatasetError(f"case '{case_id}': {_describe(lesion_vol, 'lesion labels')} has negative values")
    if not (lab > 0).any():
        raise DatasetError(f"case '{case_id}': {_describe(lesion_vol, 'lesion labels')} is empty (no lesion voxel); "
                           "a training case needs at least one segmented lesion")
    inst, counts = instance_labels(lab.astype(np.int64))
    return inst, counts, seg_breast


def _read_breast_mask(case_id: str, breast_mask: VolumeLike | None, seg_breast: Volume | None, vols: list[Volume],
                      inst: np.ndarray) -> tuple[np.ndarray, str]:
    """Stage 4: the breast mask (given, from the .seg.nrrd, or computed) -> (0/1/2 array, source)."""
    pre = vols[0]
    if breast_mask is not None:
        breast_vol, breast_source = _as_volume(breast_mask, "breast_mask", label=True), "given"
    elif seg_breast is not None:
        breast_vol, breast_source = seg_breast, "given"
    else:
        from ..exam.dce_exam import DCEExam

        breast_vol, breast_source = _compute_breast_mask(DCEExam(vols)), "computed"
    _check_3d(breast_vol, "breast mask")
    _check_grid(breast_vol, "breast mask", pre)
    bm = np.asarray(breast_vol.array)
    extra = sorted(set(np.unique(bm).tolist()) - {0, 1, 2})
    if extra:
        raise DatasetError(f"case '{case_id}': {_describe(breast_vol, 'breast mask')} has values {extra[:5]}; "
                           "expected 0 (background), 1 (left breast), 2 (right breast)")
    if not (bm > 0).any():
        raise DatasetError(f"case '{case_id}': {_describe(breast_vol, 'breast mask')} is empty")
    inside = float((bm[inst > 0] > 0).mean())
    if inside < 0.5:
        log.warning("case '%s': only %.0f%% of the lesion voxels lie inside the breast mask", case_id, 100 * inside)
    return bm, breast_source


def _write_case(ds: Dataset, record: CaseRecord, vols: list[Volume], inst: np.ndarray, bm: np.ndarray,
                force: bool) -> None:
    """Stage 5: under the dataset lock, refuse duplicates, write a temp folder, rename it, save the manifest."""
    case_id, names, grid = record.case_id, record.phase_names, vols[0].geometry
    with ds.locked():
        manifest = ds.load_manifest()
        existing = manifest.get(case_id)
        if existing is not None and not force:
            raise DatasetError(f"case '{case_id}' is already in dataset '{ds.root}' (added {existing.added_at}); "
                               "use --force / force=True to replace it")
        twins = [c.case_id for c in manifest.cases if c.image_sha256 == record.image_sha256 and c.case_id != case_id]
        if twins and not force:
            raise DatasetError(f"case '{case_id}': identical images are already in dataset '{ds.root}' as case "
                               f"{twins}; refusing a duplicate (use --force / force=True to add it anyway)")
        final_dir = ds.case_dir(case_id)
        if final_dir.exists() and existing is None and not force:
            raise DatasetError(f"folder '{final_dir}' exists but is not in the manifest; remove it or use --force")
        ds.cases_dir.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".tmp-{case_id}-", dir=ds.cases_dir))
        try:
            with disk_full_reported(final_dir, "the dataset is unchanged"):
                for v, n in zip(vols, names):
                    write_volume_file(Volume(np.asarray(v.array), grid, name=n), tmp_dir / f"{n}.nii.gz")
                write_volume_file(Volume(inst, grid, name="lesions"), tmp_dir / LESIONS_FILE)
                write_volume_file(Volume(bm.astype(np.uint8), grid, name="breast_mask"), tmp_dir / BREAST_MASK_FILE)
                trash = None
                if final_dir.exists():
                    trash = ds.cases_dir / f".trash-{case_id}-{uuid.uuid4().hex[:8]}"
                    os.replace(final_dir, trash)
                os.replace(tmp_dir, final_dir)
        finally:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir, ignore_errors=True)
        manifest.cases = [c for c in manifest.cases if c.case_id != case_id] + [record]
        ds.save_manifest(manifest)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
