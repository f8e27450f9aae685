"""The CDD-CESM mammography subset (Khaled R. et al., Scientific Data 9:122, 2022; CC BY 4.0): cases and folds.

Files: ``images/[flipped_|mirrored_]Pxxx_{L,R}_{DM,CM}_{CC,MLO}.jpg`` and ``masks/`` of the same names
(DM = low-energy, CM = contrast-subtracted). Masks are hand-drawn and stored as lossy JPEG: lesion where the
gray value is >= 128. In the 98-file subset, 59 files carry a ``flipped_``/``mirrored_`` prefix: 90 distinct
views of 77 patients, 8 views present twice. Folds therefore group by patient id (prefix stripped), so no
patient (and no flipped copy of a view) is in training and validation at once.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

log = logging.getLogger(__name__)

#: mask gray values >= this are lesion (JPEG-compressed binary masks)
MASK_THRESHOLD = 128
NAME_RE = re.compile(
    r"^(?:(?P<copy>flipped|mirrored)_)?(?P<patient>P\d+)_(?P<side>[LR])_(?P<kind>DM|CM)_(?P<view>CC|MLO)$")


@dataclass(frozen=True)
class MammogramCase:
    """One annotated CDD-CESM image.

    Attributes:
        image_path, mask_path: the JPEG files.
        patient_id: ``Pxxx`` (the grouping key of the folds).
        laterality: ``L`` or ``R``.
        kind: ``DM`` (low-energy) or ``CM`` (contrast-subtracted).
        view: ``CC`` or ``MLO``.
        copy: ``""`` for an original file, ``flipped`` / ``mirrored`` for an augmented copy.
    """

    image_path: Path
    mask_path: Path
    patient_id: str
    laterality: str
    kind: str
    view: str
    copy: str = ""

    @property
    def name(self) -> str:
        """File stem, e.g. ``flipped_P107_R_CM_CC``."""
        return self.image_path.stem


def read_cddcesm(root: str | Path) -> list[MammogramCase]:
    """All annotated images under ``root`` (sorted by name).

    Raises:
        DatasetError: missing folders, an image without a mask, or a file name that does not follow the pattern.
    """
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"CDD-CESM folder '{root}' must contain images/ and masks/")
    cases = []
    for image_path in sorted(images_dir.glob("*.jpg")):
        match = NAME_RE.match(image_path.stem)
        if match is None:
            raise DatasetError(f"'{image_path}': name does not match [flipped_|mirrored_]Pxxx_L|R_DM|CM_CC|MLO.jpg")
        mask_path = masks_dir / image_path.name
        if not mask_path.is_file():
            raise DatasetError(f"'{image_path}' has no mask '{mask_path}'")
        cases.append(MammogramCase(image_path, mask_path, match["patient"], match["side"], match["kind"],
                                   match["view"], match["copy"] or ""))
    if not cases:
        raise DatasetError(f"no images/*.jpg found under '{root}'")
    return cases


def patient_folds(cases: list[MammogramCase], n_folds: int) -> list[int]:
    """Fold index (0..n_folds-1) of every case; all images of one patient share a fold.

    Patients are assigned largest first to the fold holding the fewest images (deterministic, balanced).

    Raises:
        DatasetError: fewer patients than folds, or ``n_folds < 2``.
    """
    counts = Counter(c.patient_id for c in cases)
    if n_folds < 2 or len(counts) < n_folds:
        raise DatasetError(f"need >= 2 folds and at least as many patients ({len(counts)}) as folds; got {n_folds}")
    sizes = [0] * n_folds
    fold_of: dict[str, int] = {}
    for patient, count in sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0][1:]))):
        fold = min(range(n_folds), key=lambda k: (sizes[k], k))
        fold_of[patient] = fold
        sizes[fold] += count
    log.info("patient-wise folds: %s images in %d folds (%d patients)", sizes, n_folds, len(counts))
    return [fold_of[c.patient_id] for c in cases]
