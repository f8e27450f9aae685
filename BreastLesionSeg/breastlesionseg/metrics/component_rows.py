"""Saved component rows (one feature dict per connected component) read back for re-scoring or calibration.

Two files hold them:

* a benchmark's ``cases.jsonl`` (``benchmarks/bench_generalisation.py``): one JSON object per line, one per
  exam, ``{"section": str, "seed": int, "rows": [component rows], ...}``;
* a calibration's ``--json`` (``scripts/calibrate_lesion_confidence.py``): ``{"rows": [component rows], ...}``.

Rows saved before a feature existed get the features derivable from what they hold
(:func:`breastlesionseg.metrics.component_features.with_kinetic_descriptors`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from .component_features import with_kinetic_descriptors


def read_component_cases(path: str | Path) -> list[dict]:
    """The exams of a ``cases.jsonl`` file, every component row with its kinetic descriptors.

    Raises:
        InputError: ``path`` is missing, or a line is not a JSON exam with ``section``, ``seed`` and ``rows``
            (the message names the file and the line number).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"component cases file '{path}' does not exist")
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"'{path}' line {number} is not JSON ({exc.msg}); a cut-off last line "
                             f"means an interrupted run: delete that line and resume") from exc
        if not isinstance(case, dict) or not {"section", "seed", "rows"} <= case.keys():
            raise InputError(f"'{path}' line {number} is not a benchmark exam (needs section, seed and rows)")
        case["rows"] = [with_kinetic_descriptors(r) for r in case["rows"]]
        cases.append(case)
    return cases


def read_component_rows(path: str | Path, section: str = "validation",
                        seeds: Iterable[int] | None = None) -> list[dict]:
    """The component rows of a ``cases.jsonl`` (of one ``section`` and, if given, ``seeds``) or of a
    calibration ``.json`` (``{"rows": [...]}``; ``section`` and ``seeds`` do not apply), with kinetic descriptors.

    Raises:
        InputError: a missing or malformed file.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        wanted = None if seeds is None else {int(s) for s in seeds}
        return [r for c in read_component_cases(path) if c["section"] == section
                and (wanted is None or int(c["seed"]) in wanted) for r in c["rows"]]
    if not path.is_file():
        raise InputError(f"component rows file '{path}' does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"component rows file '{path}' is not JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise InputError(f"component rows file '{path}' has no 'rows' list")
    return [with_kinetic_descriptors(r) for r in data["rows"]]


__all__ = ["read_component_cases", "read_component_rows"]
