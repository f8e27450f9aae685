"""On-disk training dataset format: ``dataset.json`` manifest (+ ``dataset.csv`` twin) and case folders.

Layout::

    <root>/dataset.json            manifest (schema below), rewritten atomically on every change
    <root>/dataset.csv             the same cases as a flat table (for spreadsheets), written atomically
    <root>/cases/<case_id>/pre.nii.gz, post1.nii.gz, ...   DCE phases, all on the pre-contrast grid
    <root>/cases/<case_id>/lesions.nii.gz                   lesion instances 0..N (by decreasing volume)
    <root>/cases/<case_id>/breast_mask.nii.gz               breast mask 0/1 (left)/2 (right)

Manifest (``schema_version`` 1)::

    {"schema_version": 1, "format": "breastlesionseg-dataset", "created_at": ISO, "updated_at": ISO,
     "cases": [CaseRecord.to_dict(), ...]}

Every path in the manifest is relative to the dataset root, so a dataset folder can be moved.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DatasetError
from ..geometry import Geometry, Volume
from ..io.atomic import write_text_atomic

log = logging.getLogger(__name__)

DATASET_SCHEMA_VERSION = 1
DATASET_FORMAT = "breastlesionseg-dataset"
MANIFEST_NAME = "dataset.json"
MANIFEST_CSV_NAME = "dataset.csv"
CASES_DIR = "cases"
LESIONS_FILE = "lesions.nii.gz"
BREAST_MASK_FILE = "breast_mask.nii.gz"
#: allowed case ids: letters, digits, '-', '_', '.', not starting with '.'
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
PHASE_NAME_PATTERN = re.compile(r"^(pre|post[1-9][0-9]?)$")


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with seconds (``2026-11-21T08:00:00Z``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_phase_names(n_phases: int) -> list[str]:
    """``["pre", "post1", ..., "post{n-1}"]``."""
    return ["pre"] + [f"post{k}" for k in range(1, n_phases)]


def validate_case_id(case_id: str) -> str:
    """Return ``case_id`` if it is usable as a folder name, else raise :class:`DatasetError`."""
    if not isinstance(case_id, str) or not CASE_ID_PATTERN.match(case_id):
        raise DatasetError(
            f"case id {case_id!r} is invalid: use 1-128 letters, digits, '_', '-' or '.' (not starting with '.')"
        )
    return case_id


@dataclass
class CaseRecord:
    """One case of the manifest.

    Attributes:
        case_id: unique id (folder name under ``cases/``).
        source: where the case came from (original paths, DICOM study, "phantom seed=3", ...).
        phase_names: ``["pre", "post1", ...]`` in time order.
        files: role -> path relative to the dataset root; roles are the phase names plus
            ``"lesions"`` and ``"breast_mask"``.
        geometry: ``Geometry.to_dict()`` of the pre-contrast grid (every file lies on it).
        lesion_count: number of lesion instances in ``lesions.nii.gz``.
        lesion_volume_mm3: total lesion volume in mm3.
        breast_volume_ml: total breast-mask volume in ml.
        breast_mask_source: ``"given"`` (supplied by the user / Slicer) or ``"computed"`` (breast module).
        image_sha256: hash of the phase voxels + grid (duplicate detection, corruption check).
        label_sha256: hash of the lesion voxels.
        corrected_by: who corrected the segmentation (free text), or "".
        corrected_at: ISO time of the correction (defaults to when it was added).
        added_at: ISO time the case was added.
        notes: free text.
    """

    case_id: str
    source: str
    phase_names: list[str]
    files: dict[str, str]
    geometry: dict
    lesion_count: int
    lesion_volume_mm3: float
    breast_volume_ml: float = 0.0
    breast_mask_source: str = "given"
    image_sha256: str = ""
    label_sha256: str = ""
    corrected_by: str = ""
    corrected_at: str = ""
    added_at: str = ""
    notes: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CaseRecord":
        """Inverse of :meth:`to_dict`; raises :class:`DatasetError` on missing keys."""
        required = ("case_id", "phase_names", "files", "geometry", "lesion_count", "lesion_volume_mm3")
        missing = [k for k in required if k not in data]
        if missing:
            raise DatasetError(f"manifest case {data.get('case_id', '?')!r} lacks keys {missing}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("source", "")
        return cls(**kwargs)

    @property
    def grid(self) -> Geometry:
        """The case's pre-contrast grid."""
        return Geometry.from_dict(self.geometry)


@dataclass
class Manifest:
    """The dataset manifest: schema version, timestamps and the case list (in insertion order)."""

    cases: list[CaseRecord] = field(default_factory=list)
    schema_version: int = DATASET_SCHEMA_VERSION
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "schema_version": self.schema_version,
            "format": DATASET_FORMAT,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "Manifest":
        """Parse a manifest dict; raises :class:`DatasetError` naming ``source`` when it is not one."""
        if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
            raise DatasetError(f"'{source}' is not a breastlesionseg dataset manifest (format != {DATASET_FORMAT!r})")
        version = data.get("schema_version")
        if version != DATASET_SCHEMA_VERSION:
            raise DatasetError(
                f"'{source}': unsupported dataset schema_version {version!r} (this version reads {DATASET_SCHEMA_VERSION})"
            )
        cases = [CaseRecord.from_dict(c) for c in data.get("cases", [])]
        return cls(cases=cases, schema_version=version, created_at=data.get("created_at", ""),
                   updated_at=data.get("updated_at", ""))

    def ids(self) -> list[str]:
        """Case ids in order."""
        return [c.case_id for c in self.cases]

    def get(self, case_id: str) -> CaseRecord | None:
        """The case with this id, or None."""
        for c in self.cases:
            if c.case_id == case_id:
                return c
        return None


CSV_COLUMNS = (
    "case_id", "source", "phase_names", "n_phases", "size_xyz", "spacing_mm_xyz", "orientation",
    "lesion_count", "lesion_volume_mm3", "breast_volume_ml", "breast_mask_source", "corrected_by",
    "corrected_at", "added_at", "image_sha256", "notes",
)


def manifest_to_csv(manifest: Manifest) -> str:
    """The manifest as CSV text (one row per case, columns :data:`CSV_COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in manifest.cases:
        g = c.geometry
        writer.writerow([
            c.case_id, c.source, " ".join(c.phase_names), len(c.phase_names),
            "x".join(str(int(s)) for s in g.get("size_xyz", [])),
            "x".join(f"{float(s):.4g}" for s in g.get("spacing_mm_xyz", [])), g.get("orientation", ""),
            c.lesion_count, f"{c.lesion_volume_mm3:.3f}", f"{c.breast_volume_ml:.3f}", c.breast_mask_source,
            c.corrected_by, c.corrected_at, c.added_at, c.image_sha256, c.notes,
        ])
    return buf.getvalue()


class Dataset:
    """A dataset folder: reads and (atomically) rewrites its manifest.

    Args:
        root: dataset folder (created by :meth:`create` or by the first ``add_case``).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # -- paths ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        """``<root>/dataset.json``."""
        return self.root / MANIFEST_NAME

    @property
    def csv_path(self) -> Path:
        """``<root>/dataset.csv``."""
        return self.root / MANIFEST_CSV_NAME

    @property
    def cases_dir(self) -> Path:
        """``<root>/cases``."""
        return self.root / CASES_DIR

    def case_dir(self, case_id: str) -> Path:
        """``<root>/cases/<case_id>``."""
        return self.cases_dir / validate_case_id(case_id)

    def path(self, record: CaseRecord, role: str) -> Path:
        """Absolute path of a case file by role (phase name, ``lesions``, ``breast_mask``)."""
        if role not in record.files:
            raise DatasetError(f"case '{record.case_id}' has no file for role '{role}' in {self.manifest_path}")
        return self.root / record.files[role]

    # -- manifest ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the manifest exists."""
        return self.manifest_path.is_file()

    def load_manifest(self) -> Manifest:
        """Read ``dataset.json``; an absent manifest in an absent/empty folder is an empty dataset."""
        if not self.manifest_path.is_file():
            if self.root.exists() and not self.root.is_dir():
                raise DatasetError(f"dataset path '{self.root}' is a file, not a folder")
            return Manifest(created_at=utc_now_iso())
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read dataset manifest '{self.manifest_path}': {exc}") from exc
        return Manifest.from_dict(data, source=str(self.manifest_path))

    def save_manifest(self, manifest: Manifest) -> None:
        """Write ``dataset.json`` and ``dataset.csv`` atomically (each replaced in one rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        manifest.updated_at = utc_now_iso()
        if not manifest.created_at:
            manifest.created_at = manifest.updated_at
        write_text_atomic(self.csv_path, manifest_to_csv(manifest), overwrite=True)
        write_text_atomic(self.manifest_path, json.dumps(manifest.to_dict(), indent=2) + "\n", overwrite=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on ``<root>/.dataset.lock`` (serialises concurrent ``add`` calls)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / ".dataset.lock"
        with open(lock_path, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # Windows: no advisory locks; single writer assumed
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- case data --------------------------------------------------------------------------
    def records(self) -> list[CaseRecord]:
        """All case records in manifest order."""
        return self.load_manifest().cases

    def load_case(self, record: CaseRecord | str) -> "CaseData":
        """Read the volumes of one case (phases, lesion labels, breast mask)."""
        if isinstance(record, str):
            found = self.load_manifest().get(record)
            if found is None:
                raise DatasetError(f"case '{record}' is not in dataset '{self.root}'")
            record = found
        from ..exam.dce_exam import DCEExam

        phases = [read_volume_file(self.path(record, name), name=name) for name in record.phase_names]
        lesions = read_volume_file(self.path(record, "lesions"), name="lesions", label=True)
        breast = read_volume_file(self.path(record, "breast_mask"), name="breast_mask", label=True)
        return CaseData(record=record, exam=DCEExam(phases), lesion_labels=lesions, breast_mask=breast)


@dataclass
class CaseData:
    """The volumes of one dataset case.

    Attributes:
        record: its manifest entry.
        exam: the DCE exam (phases on the pre grid).
        lesion_labels: lesion instances 0..N, ``(z, y, x)`` on the pre grid.
        breast_mask: breast mask 0/1/2 on the pre grid.
    """

    record: CaseRecord
    exam: object
    lesion_labels: Volume
    breast_mask: Volume


def read_volume_file(path: str | os.PathLike, name: str = "", label: bool = False) -> Volume:
    """Read a 3D image (NIfTI/NRRD/MHA/DICOM folder) keeping its voxel type, as :class:`DatasetError` on failure.

    Args:
        path: the file.
        name: role used as the volume name and in messages (``pre``, ``lesions``, ...).
        label: read as an integer label map (constant maps allowed) with ``io.read_label_volume``;
            otherwise an image with ``io.read_volume`` (stored voxel type kept).
    """
    from ..errors import InputError
    from ..io import read_label_volume, read_volume

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{name or 'image'} file '{path}' does not exist")
    try:
        vol = read_label_volume(path, name=name or None) if label else read_volume(path, name=name or None, dtype=None)
    except InputError as exc:
        raise DatasetError(f"cannot use {name or 'image'} file '{path}': {exc}") from exc
    return vol


def write_volume_file(volume: Volume, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a volume atomically (NIfTI by extension) with ``breastlesionseg.io.write_volume``."""
    from ..io import write_volume

    return Path(write_volume(volume, path, overwrite=overwrite))


def volume_sha256(volumes: list[Volume]) -> str:
    """SHA-256 over the voxel bytes (dtype, shape) and grid of each volume, in order."""
    import hashlib

    h = hashlib.sha256()
    for v in volumes:
        arr = np.ascontiguousarray(v.array)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        g = v.geometry  # rounded so a NIfTI round trip (float32 header) gives the same hash
        grid = [list(g.size), [round(x, 3) + 0.0 for x in g.spacing],
                [round(x, 2) + 0.0 for x in g.origin], [round(x, 4) + 0.0 for x in g.direction]]
        h.update(json.dumps(grid).encode())
        h.update(arr.tobytes())
    return h.hexdigest()
