"""Standard terminology codes and display colours of the segments BreastLesionSeg writes.

Slicer stores a segment's meaning in the ``TerminologyEntry`` tag of a ``.seg.nrrd`` as
``contextName~category~type~typeModifier~anatomicContextName~anatomicRegion~anatomicRegionModifier``,
each code as ``scheme^value^meaning`` (Slicer developer guide, "Segmentations", TerminologyEntry tag;
``slicerio.segmentation.terminology_entry_from_string``). Here an entry is the dict form slicerio uses::

    {"contextName": ..., "category": [scheme, value, meaning], "type": [...], "typeModifier": [...],
     "anatomicContextName": ..., "anatomicRegion": [...], "anatomicRegionModifier": [...]}

Codes (SNOMED CT, scheme ``SCT``; Breast is an entry of Slicer's "DICOM master list" (the "3D Slicer
General Anatomy list" has none), Mass one of the "3D Slicer General Anatomy list"; DICOM CID 7151 /
CID 244 laterality codes):

- breast: category 123037004 "Anatomical Structure", type 76752008 "Breast", type modifier
  7771000 "Left" / 24028007 "Right";
- lesion: category 49755003 "Morphologically Altered Structure", type 4147007 "Mass", anatomic region
  76752008 "Breast" with the laterality modifier when the side is known.
"""
from __future__ import annotations

from slicerio.segmentation import terminology_entry_from_string, terminology_entry_to_string

CATEGORY_TYPE_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
BREAST_CATEGORY_TYPE_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

SCT_ANATOMICAL_STRUCTURE = ["SCT", "123037004", "Anatomical Structure"]
SCT_MORPHOLOGICALLY_ALTERED = ["SCT", "49755003", "Morphologically Altered Structure"]
SCT_BREAST = ["SCT", "76752008", "Breast"]
SCT_MASS = ["SCT", "4147007", "Mass"]
SCT_LEFT = ["SCT", "7771000", "Left"]
SCT_RIGHT = ["SCT", "24028007", "Right"]

#: SNOMED CT code values of lesion-like types accepted when reading segmentations edited elsewhere
LESION_TYPE_CODES = {"4147007", "52988006", "108369006", "86049000", "367643001"}  # mass, lesion, neoplasm, ...

#: display colours, RGB in 0..1
BREAST_LEFT_COLOR = (0.93, 0.76, 0.64)
BREAST_RIGHT_COLOR = (0.62, 0.78, 0.93)
LESION_COLORS = (
    (0.90, 0.10, 0.10),
    (1.00, 0.85, 0.00),
    (0.10, 0.75, 0.20),
    (0.85, 0.20, 0.85),
    (1.00, 0.50, 0.00),
    (0.00, 0.80, 0.85),
    (0.55, 0.35, 0.95),
    (0.60, 0.90, 0.30),
)


def _side_code(side: str | None) -> list[str] | None:
    if side is None or side == "unknown":
        return None
    if side == "left":
        return list(SCT_LEFT)
    if side == "right":
        return list(SCT_RIGHT)
    raise ValueError(f"side must be 'left', 'right', 'unknown' or None, got {side!r}")


def breast_terminology(side: str) -> dict:
    """Terminology entry of the patient's left or right breast."""
    modifier = _side_code(side)
    if modifier is None:
        raise ValueError(f"a breast segment needs side 'left' or 'right', got {side!r}")
    return {
        "contextName": BREAST_CATEGORY_TYPE_CONTEXT,
        "category": list(SCT_ANATOMICAL_STRUCTURE),
        "type": list(SCT_BREAST),
        "typeModifier": modifier,
        "anatomicContextName": ANATOMIC_CONTEXT,
    }


def lesion_terminology(side: str | None = None) -> dict:
    """Terminology entry of a breast lesion (a mass in the breast, with laterality when known)."""
    entry = {
        "contextName": CATEGORY_TYPE_CONTEXT,
        "category": list(SCT_MORPHOLOGICALLY_ALTERED),
        "type": list(SCT_MASS),
        "anatomicContextName": ANATOMIC_CONTEXT,
        "anatomicRegion": list(SCT_BREAST),
    }
    modifier = _side_code(side)
    if modifier is not None:
        entry["anatomicRegionModifier"] = modifier
    return entry


def lesion_color(index: int) -> tuple[float, float, float]:
    """Display colour of lesion ``index`` (1-based), cycling through a palette of distinct colours."""
    return LESION_COLORS[(max(int(index), 1) - 1) % len(LESION_COLORS)]


def terminology_string(entry: dict) -> str:
    """Slicer's ``TerminologyEntry`` string of an entry (as written in the ``.seg.nrrd`` header)."""
    return terminology_entry_to_string(entry)


def parse_terminology_string(text: str) -> dict:
    """Inverse of :func:`terminology_string`."""
    return terminology_entry_from_string(text)


def _code_value(entry: dict | None, key: str) -> str | None:
    if not entry or key not in entry:
        return None
    code = entry[key]
    return str(code[1]) if len(code) > 1 else None


def is_lesion_terminology(entry: dict | None) -> bool:
    """True for a "Morphologically Altered Structure" entry or a lesion-like type (mass, lesion, neoplasm)."""
    return _code_value(entry, "category") == SCT_MORPHOLOGICALLY_ALTERED[1] or (
        _code_value(entry, "type") in LESION_TYPE_CODES
    )


def breast_side_of_terminology(entry: dict | None) -> str | None:
    """``"left"`` / ``"right"`` for a breast entry with a laterality modifier, else None."""
    if _code_value(entry, "type") != SCT_BREAST[1]:
        return None
    modifier = _code_value(entry, "typeModifier") or _code_value(entry, "anatomicRegionModifier")
    return {SCT_LEFT[1]: "left", SCT_RIGHT[1]: "right"}.get(modifier or "")
