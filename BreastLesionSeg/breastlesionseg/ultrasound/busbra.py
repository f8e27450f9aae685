"""BUS-BRA (Gómez-Flores et al., "BUS-BRA: A breast ultrasound dataset for assessing computer-aided
diagnosis systems", Medical Physics 51(4):3110-3123, 2024) and BUS-BRA-like user folders: records and
patient-wise folds.

Folds are numbered 0..4 here; fold ``k`` is the dataset's ``kFold == k + 1`` partition of ``5-fold-cv.csv``:
its test images are those with ``kFold == k + 1``; among the others, ``valid_{k+1} == 0`` marks validation
(early stopping) and ``1`` training images.

A folder without ``5-fold-cv.csv`` (e.g. the pairs the Slicer module's ultrasound "Add to training set"
writes) gets folds derived from its ``Case`` text (:func:`derived_roles`): a patient's test fold is the
sha256 of the case text modulo 5, and in each fold about :data:`DERIVED_VAL_FRACTION` of the other
patients validate. Empty ``Pathology``, ``BIRADS`` or ``Device`` cells are unknown labels.
"""
from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

log = logging.getLogger(__name__)

NUM_FOLDS = 5
#: the dataset table and (optional) fold table of a BUS-BRA(-like) folder
DATA_CSV, FOLDS_CSV = "bus_data.csv", "5-fold-cv.csv"
#: share of the non-test patients of a derived fold that validate (early stopping)
DERIVED_VAL_FRACTION = 0.2
#: ``device`` of an image whose ``Device`` cell is empty
UNKNOWN_DEVICE = "unknown"
CITATION = ("Gómez-Flores W., Gregorio-Calas M.J., Coelho de Albuquerque Pereira W., \"BUS-BRA: A breast "
            "ultrasound dataset for assessing computer-aided diagnosis systems\", Medical Physics "
            "51(4):3110-3123, 2024; data: Zenodo doi:10.5281/zenodo.8231412")
_PATHOLOGY = {"malignant": True, "benign": False, "": None, "unknown": None}


@dataclass(frozen=True)
class BusBraRecord:
    """One BUS-BRA(-like) image.

    Attributes:
        image_id: e.g. ``bus_0001-l``.
        case_id: patient id as text (BUS-BRA's patient numbers as their text, e.g. ``"1"``); folds never
            split a patient.
        malignant: biopsy-proven pathology; None when unknown (empty ``Pathology``).
        birads: BI-RADS category (2..5 in BUS-BRA); None when unknown (empty ``BIRADS``).
        device: scanner name as in ``bus_data.csv``; ``"unknown"`` when empty.
        histology: histological diagnosis (may be empty).
        image_path, mask_path: PNG files.
        test_fold: 0-based fold whose test set holds this image.
        roles: per fold ``"train"``, ``"val"`` or ``"test"``.
    """

    image_id: str
    case_id: str
    malignant: bool | None
    birads: int | None
    device: str
    histology: str
    image_path: Path
    mask_path: Path
    test_fold: int
    roles: tuple[str, ...]


def _role(value: str) -> str:
    return {"1": "train", "0": "val"}.get(value.strip(), "test")


def image_file(root: str | Path, image_id: str) -> Path:
    """Where a BUS-BRA(-like) folder keeps image ``image_id`` (e.g. ``bus_0001-l``): ``Images/<id>.png``."""
    return Path(root) / "Images" / f"{image_id}.png"


def mask_file(root: str | Path, image_id: str) -> Path:
    """Where a BUS-BRA(-like) folder keeps the lesion mask of ``image_id``: ``Masks/mask_<number>.png``."""
    return Path(root) / "Masks" / f"mask_{image_id.removeprefix('bus_')}.png"


def _case_key(case_id: str, salt: str = "") -> int:
    """A stable integer of a case text (sha256; independent of Python's hash seed and of the platform)."""
    return int(hashlib.sha256(f"{salt}{case_id}".encode("utf-8")).hexdigest(), 16)


def derived_roles(case_ids: list[str] | set[str]) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Patient-wise folds of a folder without ``5-fold-cv.csv``: ``{case: (test_fold, roles)}``.

    A case's test fold is ``sha256(case) % 5`` (it never changes when cases are added). In fold ``k`` the
    other cases are ranked by ``sha256("val<k>:" + case)`` and the first ``max(1, round(0.2 * n))`` of them
    validate (none when fewer than two remain), the rest train.
    """
    cases = sorted(set(case_ids))
    test_fold = {case: _case_key(case) % NUM_FOLDS for case in cases}
    roles: dict[str, list[str]] = {case: ["test"] * NUM_FOLDS for case in cases}
    for fold in range(NUM_FOLDS):
        others = sorted((c for c in cases if test_fold[c] != fold), key=lambda c: (_case_key(c, f"val{fold}:"), c))
        n_val = max(1, round(DERIVED_VAL_FRACTION * len(others))) if len(others) >= 2 else 0
        for rank, case in enumerate(others):
            roles[case][fold] = "val" if rank < n_val else "train"
    return {case: (test_fold[case], tuple(roles[case])) for case in cases}


def _malignant(value: str, where: str) -> bool | None:
    key = value.strip().lower()
    if key not in _PATHOLOGY:
        raise DatasetError(f"{where}: Pathology must be 'malignant', 'benign' or empty (unknown); got {value!r}")
    return _PATHOLOGY[key]


def _birads(value: str, where: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"{where}: BIRADS must be a whole number (e.g. 4) or empty (unknown); got {value!r}") from None


def read_busbra(root: str | Path) -> list[BusBraRecord]:
    """All records of a BUS-BRA(-like) folder (``bus_data.csv``, ``Images/``, ``Masks/``, optional ``5-fold-cv.csv``).

    With ``5-fold-cv.csv`` the dataset's folds are used; without it folds are derived from the ``Case``
    column (:func:`derived_roles`; an empty ``Case`` is the image's own id).

    Raises:
        DatasetError: ``bus_data.csv`` or a column is missing, an image has no fold in ``5-fold-cv.csv``, or a
            label is unreadable (named in the message).
    """
    root = Path(root)
    data_csv, folds_csv = root / DATA_CSV, root / FOLDS_CSV
    if not data_csv.is_file():
        raise DatasetError(f"BUS-BRA folder '{root}' lacks {data_csv.name}")
    with data_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "ID" not in reader.fieldnames:
            raise DatasetError(f"{data_csv} has no ID column")
        rows = [row for row in reader if (row.get("ID") or "").strip()]
    if not rows:
        raise DatasetError(f"{data_csv} holds no images")
    cases = [((row.get("Case") or "").strip() or row["ID"].strip()) for row in rows]
    if folds_csv.is_file():
        with folds_csv.open(newline="", encoding="utf-8") as handle:
            folds = {row["ID"]: row for row in csv.DictReader(handle)}
        fold_of = {}
        for row in rows:
            if row["ID"] not in folds:
                raise DatasetError(f"{folds_csv}: no fold for image {row['ID']}")
            fold_row = folds[row["ID"]]
            test_fold = int(fold_row["kFold"]) - 1
            fold_of[row["ID"]] = (test_fold, tuple("test" if k == test_fold else _role(fold_row[f"valid_{k + 1}"])
                                                   for k in range(NUM_FOLDS)))
    else:
        by_case = derived_roles(cases)
        fold_of = {row["ID"]: by_case[case] for row, case in zip(rows, cases)}
        log.info("%s has no %s: %d patient-wise folds derived from the Case column of %d images (%d patients; "
                 "test fold = sha256(case) mod %d, ~%d%% of the other patients validate)", root, folds_csv.name,
                 NUM_FOLDS, len(rows), len(by_case), NUM_FOLDS, round(100 * DERIVED_VAL_FRACTION))
    records = []
    for line, (row, case) in enumerate(zip(rows, cases), start=2):
        image_id = row["ID"].strip()
        where = f"{data_csv} row {line} ({image_id})"
        test_fold, roles = fold_of[row["ID"]]
        records.append(BusBraRecord(
            image_id=image_id, case_id=case, malignant=_malignant(row.get("Pathology") or "", where),
            birads=_birads(row.get("BIRADS") or "", where), device=(row.get("Device") or "").strip() or UNKNOWN_DEVICE,
            histology=(row.get("Histology") or "").strip(),
            image_path=image_file(root, image_id), mask_path=mask_file(root, image_id),
            test_fold=test_fold, roles=roles))
    return records


def fold_split(records: list[BusBraRecord], fold: int, holdout_device: str = "") -> dict[str, list[BusBraRecord]]:
    """``{"train": [...], "val": [...], "test": [...]}`` of a 0-based ``fold``.

    Args:
        records: :func:`read_busbra`'s records.
        fold: 0..4.
        holdout_device: leave-one-scanner-out: every image of the one scanner whose name contains this text
            (case-insensitive) is the test set, and no image of it trains or validates; the other images
            keep their fold roles (the fold's own test images are then unused). ``""``: the fold as it is.

    Raises:
        DatasetError: fold out of range, or ``holdout_device`` matching no scanner or several.
    """
    if not 0 <= fold < NUM_FOLDS:
        raise DatasetError(f"fold must be 0..{NUM_FOLDS - 1}; got {fold}")
    held_out = matching_device(records, holdout_device) if holdout_device else None
    split: dict[str, list[BusBraRecord]] = {"train": [], "val": [], "test": []}
    for record in records:
        if held_out is None:
            split[record.roles[fold]].append(record)
        elif record.device == held_out:
            split["test"].append(record)
        elif record.roles[fold] != "test":
            split[record.roles[fold]].append(record)
    return split


def matching_device(records: list[BusBraRecord], text: str) -> str:
    """The one scanner name containing ``text`` (case-insensitive).

    Raises:
        DatasetError: no scanner or several match (the message lists them).
    """
    devices = sorted({r.device for r in records})
    matches = [d for d in devices if text.strip().lower() in d.lower()] if text.strip() else []
    if len(matches) != 1:
        raise DatasetError(f"holdout device {text!r} must name exactly one scanner; "
                           f"{'matches ' + str(matches) if matches else 'matches none'} of {devices}")
    return matches[0]
