"""BUS-BRA (Gómez-Flores et al., "BUS-BRA: A breast ultrasound dataset for assessing computer-aided
diagnosis systems", Medical Physics 51(4):3110-3123, 2024): records and its own patient-wise folds.

Folds are numbered 0..4 here; fold ``k`` is the dataset's ``kFold == k + 1`` partition of ``5-fold-cv.csv``:
its test images are those with ``kFold == k + 1``; among the others, ``valid_{k+1} == 0`` marks validation
(early stopping) and ``1`` training images.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

NUM_FOLDS = 5
CITATION = ("Gómez-Flores W., Gregorio-Calas M.J., Coelho de Albuquerque Pereira W., \"BUS-BRA: A breast "
            "ultrasound dataset for assessing computer-aided diagnosis systems\", Medical Physics "
            "51(4):3110-3123, 2024; data: Zenodo doi:10.5281/zenodo.8231412")


@dataclass(frozen=True)
class BusBraRecord:
    """One BUS-BRA image.

    Attributes:
        image_id: e.g. ``bus_0001-l``.
        case_id: patient number (folds never split a patient).
        malignant: biopsy-proven pathology.
        birads: BI-RADS category 2..5.
        device: scanner name as in ``bus_data.csv``.
        histology: histological diagnosis.
        image_path, mask_path: PNG files.
        test_fold: 0-based fold whose test set holds this image.
        roles: per fold ``"train"``, ``"val"`` or ``"test"``.
    """

    image_id: str
    case_id: int
    malignant: bool
    birads: int
    device: str
    histology: str
    image_path: Path
    mask_path: Path
    test_fold: int
    roles: tuple[str, ...]


def _role(value: str) -> str:
    return {"1": "train", "0": "val"}.get(value.strip(), "test")


def read_busbra(root: str | Path) -> list[BusBraRecord]:
    """All records of a BUS-BRA folder (``bus_data.csv``, ``5-fold-cv.csv``, ``Images/``, ``Masks/``).

    Raises:
        DatasetError: a file or column is missing (named in the message).
    """
    root = Path(root)
    data_csv, folds_csv = root / "bus_data.csv", root / "5-fold-cv.csv"
    for path in (data_csv, folds_csv):
        if not path.is_file():
            raise DatasetError(f"BUS-BRA folder '{root}' lacks {path.name}")
    with folds_csv.open(newline="", encoding="utf-8") as handle:
        folds = {row["ID"]: row for row in csv.DictReader(handle)}
    records = []
    with data_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            image_id = row["ID"]
            if image_id not in folds:
                raise DatasetError(f"{folds_csv}: no fold for image {image_id}")
            fold_row = folds[image_id]
            test_fold = int(fold_row["kFold"]) - 1
            roles = tuple("test" if k == test_fold else _role(fold_row[f"valid_{k + 1}"]) for k in range(NUM_FOLDS))
            number = image_id.removeprefix("bus_")
            records.append(BusBraRecord(
                image_id=image_id, case_id=int(row["Case"]), malignant=row["Pathology"].strip() == "malignant",
                birads=int(row["BIRADS"]), device=row["Device"].strip(), histology=row["Histology"].strip(),
                image_path=root / "Images" / f"{image_id}.png", mask_path=root / "Masks" / f"mask_{number}.png",
                test_fold=test_fold, roles=roles))
    if not records:
        raise DatasetError(f"{data_csv} holds no images")
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
