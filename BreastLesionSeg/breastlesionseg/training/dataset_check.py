"""Validate a training dataset: manifest, files, grids, labels; problems reported per case."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..geometry import Geometry, Volume
from .dataset import CASES_DIR, CaseRecord, Dataset, read_volume_file, volume_sha256
from .dataset_add import instance_labels

log = logging.getLogger(__name__)

#: a case is flagged when less than this fraction of its lesion voxels lies inside the breast mask
MIN_LESION_INSIDE_BREAST = 0.9


@dataclass
class CaseCheck:
    """Result for one case: ``problems`` make the dataset invalid, ``warnings`` do not."""

    case_id: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"case_id": self.case_id, "ok": self.ok, "problems": self.problems, "warnings": self.warnings}


@dataclass
class DatasetCheckReport:
    """Result of :func:`check_dataset`.

    Attributes:
        root: dataset folder.
        cases: one :class:`CaseCheck` per manifest case (in order).
        problems: dataset-level problems (manifest unreadable, duplicate ids, orphan folders, ...).
    """

    root: str
    cases: list[CaseCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when neither the dataset nor any case has a problem."""
        return not self.problems and all(c.ok for c in self.cases)

    @property
    def n_bad_cases(self) -> int:
        """Number of cases with at least one problem."""
        return sum(not c.ok for c in self.cases)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"root": self.root, "ok": self.ok, "n_cases": len(self.cases), "n_bad_cases": self.n_bad_cases,
                "problems": self.problems, "cases": [c.to_dict() for c in self.cases]}

    def format_text(self) -> str:
        """Human-readable multi-line summary."""
        lines = [f"dataset {self.root}: {len(self.cases)} case(s), {self.n_bad_cases} with problems"
                 + ("" if not self.problems else f", {len(self.problems)} dataset problem(s)")]
        lines += [f"  DATASET: {p}" for p in self.problems]
        for c in self.cases:
            status = "ok" if c.ok else "PROBLEM"
            lines.append(f"  {c.case_id}: {status}")
            lines += [f"    - {p}" for p in c.problems]
            lines += [f"    (warning) {w}" for w in c.warnings]
        return "\n".join(lines)


def _check_phase_order(res: CaseCheck, phases: list[Volume]) -> None:
    """The exam rule every command applies: the pre-contrast phase is the least enhanced."""
    from ..exam.validation import check_phase_order_signal

    check = check_phase_order_signal([v.array for v in phases], [v.name for v in phases])
    if not check.plausible:
        res.problems.append(f"implausible phase order: '{check.names[check.least_enhanced]}' is the least enhanced "
                            f"phase, not 'pre' (mean signal of the most dynamic voxels: {check.describe()})")


def _check_case(ds: Dataset, rec: CaseRecord, verify_hashes: bool) -> CaseCheck:
    res = CaseCheck(rec.case_id)
    try:
        grid = Geometry.from_dict(rec.geometry)
    except (KeyError, TypeError, ValueError) as exc:
        res.problems.append(f"manifest geometry is invalid: {exc}")
        return res
    roles = list(rec.phase_names) + ["lesions", "breast_mask"]
    missing_roles = [r for r in roles if r not in rec.files]
    if missing_roles:
        res.problems.append(f"manifest lists no file for {missing_roles}")
    if len(rec.phase_names) < 2:
        res.problems.append(f"only {len(rec.phase_names)} phase(s) {rec.phase_names}; pre + >= 1 post needed")
    vols: dict[str, Volume] = {}
    for role in roles:
        if role not in rec.files:
            continue
        path = ds.root / rec.files[role]
        if not path.is_file():
            res.problems.append(f"{role} file '{path}' is missing")
            continue
        try:
            vols[role] = read_volume_file(path, name=role, label=role in ("lesions", "breast_mask"))
        except DatasetError as exc:
            res.problems.append(str(exc))
            continue
        if not vols[role].geometry.same_grid(grid):
            g = vols[role].geometry
            res.problems.append(f"{role} file '{path}' is not on the manifest grid (size {g.size} vs {grid.size}, "
                                f"spacing {tuple(round(s, 4) for s in g.spacing)} vs "
                                f"{tuple(round(s, 4) for s in grid.spacing)})")
    phases = [vols[n] for n in rec.phase_names if n in vols]
    for v in phases:
        if not np.isfinite(np.asarray(v.array, dtype=np.float64)).all():
            res.problems.append(f"phase '{v.name}' contains NaN/inf voxels")
    if len(phases) == len(rec.phase_names) >= 2 and not res.problems:
        _check_phase_order(res, phases)
    if verify_hashes and rec.image_sha256 and len(phases) == len(rec.phase_names) and not res.problems:
        if volume_sha256(phases) != rec.image_sha256:
            res.problems.append("phase voxels differ from the manifest hash (files modified or corrupted)")
    lab = vols.get("lesions")
    bm = vols.get("breast_mask")
    if lab is not None:
        arr = np.asarray(lab.array)
        if not (arr > 0).any():
            res.problems.append("lesion label map is empty")
        elif lab.geometry.same_grid(grid):
            inst, counts = instance_labels(arr.astype(np.int64))
            if len(counts) != rec.lesion_count:
                res.problems.append(f"lesion count {len(counts)} in the file != {rec.lesion_count} in the manifest")
            vol_mm3 = sum(counts) * grid.voxel_volume_mm3
            if abs(vol_mm3 - rec.lesion_volume_mm3) > max(1e-3, 1e-4 * rec.lesion_volume_mm3):
                res.problems.append(f"lesion volume {vol_mm3:.1f} mm3 in the file != {rec.lesion_volume_mm3:.1f} "
                                    "mm3 in the manifest")
            if verify_hashes and rec.label_sha256 and volume_sha256([Volume(inst, grid)]) != rec.label_sha256:
                res.problems.append("lesion labels differ from the manifest hash (file modified or corrupted)")
    if bm is not None:
        b = np.asarray(bm.array)
        extra = sorted(set(np.unique(b).tolist()) - {0, 1, 2})
        if extra:
            res.problems.append(f"breast mask has values {extra[:5]} (expected 0/1/2)")
        if not (b > 0).any():
            res.problems.append("breast mask is empty")
        elif lab is not None and lab.array.shape == b.shape and (np.asarray(lab.array) > 0).any():
            inside = float((b[np.asarray(lab.array) > 0] > 0).mean())
            if inside < MIN_LESION_INSIDE_BREAST:
                res.problems.append(f"only {100 * inside:.0f}% of the lesion voxels lie inside the breast mask "
                                    f"(>= {100 * MIN_LESION_INSIDE_BREAST:.0f}% expected)")
    if not rec.corrected_by:
        res.warnings.append("corrected_by is empty (who checked this segmentation?)")
    return res


def check_dataset(dataset: str | os.PathLike | Dataset, verify_hashes: bool = True) -> DatasetCheckReport:
    """Validate every case of a dataset.

    Checks per case: manifest entry complete, every file present and readable, all files on the
    manifest grid, voxels finite, lesion label non-empty with the manifest's lesion count/volume,
    breast mask values 0/1/2 and non-empty, lesions inside the breast mask, voxel hashes unchanged.
    Dataset level: manifest readable, unique case ids, no duplicate images, no orphan case folders.

    Args:
        dataset: dataset folder or :class:`Dataset`.
        verify_hashes: also compare voxel hashes with the manifest (detects edited/corrupted files).

    Returns:
        The report; ``report.ok`` is False when anything is wrong.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    report = DatasetCheckReport(root=str(ds.root))
    if not ds.manifest_path.is_file():
        report.problems.append(f"manifest '{ds.manifest_path}' does not exist")
        return report
    try:
        manifest = ds.load_manifest()
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    ids = manifest.ids()
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        report.problems.append(f"duplicate case ids in the manifest: {dups}")
    hashes: dict[str, str] = {}
    for rec in manifest.cases:
        if rec.image_sha256 and rec.image_sha256 in hashes and hashes[rec.image_sha256] != rec.case_id:
            report.problems.append(f"cases '{hashes[rec.image_sha256]}' and '{rec.case_id}' have identical images")
        hashes.setdefault(rec.image_sha256, rec.case_id)
        report.cases.append(_check_case(ds, rec, verify_hashes))
    if ds.cases_dir.is_dir():
        orphans = sorted(p.name for p in ds.cases_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                         and p.name not in ids)
        if orphans:
            report.problems.append(f"folders in '{ds.root / CASES_DIR}' not in the manifest: {orphans}")
    if not manifest.cases:
        report.problems.append("the dataset has no case")
    log.info("checked %d case(s) in %s: %d with problems", len(report.cases), ds.root, report.n_bad_cases)
    return report
