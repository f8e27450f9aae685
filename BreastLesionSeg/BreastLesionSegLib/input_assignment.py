"""Auto-assignment of the pre- and post-contrast volumes from the loaded volumes.

Decides from series names ("ax dyn pre", "ax dyn 1st pass", "Breast_MRI_153_0003_post3", "Ph2/ax 3d dyn",
"t1_fl3d_tra_dynaVIEWS_spair_post 2") and, when known, DICOM acquisition times and series numbers.
Derived or non-DCE series (subtractions, MIPs, parametric maps, T2/STIR, DWI/ADC, localizers,
segmentations) are left out with a reason. The panel shows the result and the user can change it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

#: name tokens of series that are not DCE phases (checked on the lower-cased name)
_EXCLUDE_PATTERNS = (
    (r"\bsub(s|tr(act(ed|ion)?)?)?\b|subtraction|\bsubtracted\b|_sub\b", "subtraction series"),
    (r"\bmip\b|\bmpr\b|\bmaximum intensity", "projection / reformat"),
    (r"\bpe\b|\bser\b|percent enhancement|wash[- ]?(in|out) map|\bmap\b|\bftv\b", "parametric map"),
    (r"\bt2\b|\bstir\b|\bt2w\b|\btse\b|\bhaste\b", "T2-weighted series"),
    (r"\bdwi\b|\badc\b|diffusion|\bb\d{2,4}\b", "diffusion series"),
    (r"localizer|locator|\bscout\b|\bsurvey\b|calibration|\bcal\b|\bloc\b", "localizer"),
    (r"segmentation|\blabel(map)?s?\b|\bmask\b|probability|heat ?map|lesions?\b", "derived result"),
)
_PRE_PATTERN = r"\bpre\b|pre[- _]?contrast|\bprecontrast\b|\bnative\b|non[- _]?contrast|\bunenhanced\b|\bph(ase)?[ _-]?0\b"
_POST_KEYWORD = r"\bpost\b|post[- _]?contrast|\bpass\b|\bpostcontrast\b|\bpost\d+\b|\bpost[_-]\d+\b"
_ORDINAL_PATTERNS = (
    r"\b(\d+)\s*(?:st|nd|rd|th)\b",  # "1st pass", "2nd phase"
    r"\bpost\s*[-_ ]?\s*(\d+)\b",  # "post1", "post 2", "post_3"
    r"\bpass\s*[-_ ]?\s*(\d+)\b",  # "pass 2"
    r"\bph(?:ase)?\s*[-_ ]?\s*(\d+)\b",  # "Ph3", "phase 2"
    r"\bdyn(?:amic)?\s*[-_ ]?\s*(\d+)\b",  # "dyn 2"
    r"[_-](\d{4})[_-]",  # "Breast_MRI_153_0002_post2" style index field
)
_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8}


@dataclass(frozen=True)
class VolumeCandidate:
    """A loaded volume the user could pick.

    Attributes:
        node_id: MRML node id.
        name: node / series name.
        acquisition_time_s: DICOM acquisition time (s since midnight or any common origin), None if unknown.
        series_number: DICOM series number, None if unknown.
    """

    node_id: str
    name: str
    acquisition_time_s: float | None = None
    series_number: int | None = None


@dataclass
class InputAssignment:
    """The proposed inputs.

    Attributes:
        pre: node id of the pre-contrast volume (None when it cannot be told).
        posts: node ids of the post-contrast volumes in time order.
        excluded: node id -> why it was left out.
        notes: how the decision was made (shown to the user).
    """

    pre: str | None
    posts: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when a pre-contrast and at least one post-contrast volume were found."""
        return self.pre is not None and len(self.posts) >= 1


def _normalise(name: str) -> str:
    text = name.lower().replace("/", " ").replace("\\", " ")
    text = re.sub(r"([a-z])(\d)", r"\1 \2", text) if re.search(r"\bph\d", text) else text
    for word, n in _WORDS.items():
        text = re.sub(rf"\b{word}\b", f"{n}th", text)
    return text


def exclusion_reason(name: str) -> str | None:
    """Why a series named ``name`` is not a DCE phase, or None when it may be one."""
    text = _normalise(name).replace("_", " ")
    for pattern, reason in _EXCLUDE_PATTERNS:
        if re.search(pattern, text):
            return reason
    return None


def is_pre_name(name: str) -> bool:
    """True when the name says pre-contrast."""
    return re.search(_PRE_PATTERN, _normalise(name).replace("_", " ")) is not None


def is_post_name(name: str) -> bool:
    """True when the name says post-contrast (post, pass)."""
    text = _normalise(name)
    return re.search(_POST_KEYWORD, text.replace("_", " ")) is not None or re.search(r"post\d", text) is not None


def phase_ordinal(name: str) -> int | None:
    """The phase number a name carries ("2nd pass" -> 2, "post3" -> 3, "Ph4" -> 4, "..._0002_..." -> 2)."""
    text = _normalise(name)
    for pattern in _ORDINAL_PATTERNS:
        m = re.search(pattern, text if pattern.startswith("[_-]") else text.replace("_", " "))
        if m:
            return int(m.group(1))
    return None


def assign_inputs(candidates: Sequence[VolumeCandidate]) -> InputAssignment:
    """Propose pre and post volumes.

    Rules, in order: drop derived / non-DCE series; the pre-contrast volume is the one whose name says
    so (the earliest if several), else the earliest acquisition time, else the lowest phase number of a
    name that does not say "post"/"pass"; post volumes are the remaining phases ordered by acquisition
    time when every one has it, else by the phase number in the name, then series number, then name.
    """
    excluded: dict[str, str] = {}
    notes: list[str] = []
    phases = []
    for c in candidates:
        reason = exclusion_reason(c.name)
        if reason:
            excluded[c.node_id] = reason
        else:
            phases.append(c)
    if not phases:
        return InputAssignment(None, [], excluded, ["no volume looks like a DCE phase"])
    all_times = all(c.acquisition_time_s is not None for c in phases)

    def order_key(c: VolumeCandidate) -> tuple:
        ordinal = phase_ordinal(c.name)
        if all_times:
            return (0, c.acquisition_time_s, ordinal if ordinal is not None else 0, c.name)
        return (0 if ordinal is not None else 1, ordinal if ordinal is not None else 0,
                c.series_number if c.series_number is not None else 1 << 30, c.name)

    pre_named = sorted([c for c in phases if is_pre_name(c.name)], key=order_key)
    if pre_named:
        pre = pre_named[0]
        notes.append(f"pre-contrast '{pre.name}': the name says pre-contrast")
        for other in pre_named[1:]:
            excluded[other.node_id] = f"another pre-contrast series ('{pre.name}' chosen)"
    elif all_times:
        pre = min(phases, key=order_key)
        notes.append(f"pre-contrast '{pre.name}': earliest acquisition time (no name says 'pre')")
    else:
        unnamed = [c for c in phases if not is_post_name(c.name)]
        pre = min(unnamed, key=order_key) if unnamed else None
        if pre is not None:
            notes.append(f"pre-contrast '{pre.name}': lowest phase number (no name says 'pre'); please check")
        else:
            notes.append("no pre-contrast volume recognised: please select it")
    posts = [c for c in phases if (pre is None or c.node_id != pre.node_id) and c.node_id not in excluded]
    posts.sort(key=order_key)
    if all_times:
        notes.append("post-contrast volumes ordered by acquisition time")
        if pre is not None and any(c.acquisition_time_s < pre.acquisition_time_s for c in posts):
            notes.append(f"warning: some volumes were acquired before '{pre.name}'; check the pre-contrast choice")
    else:
        notes.append("post-contrast volumes ordered by the phase number in their names")
    return InputAssignment(pre.node_id if pre is not None else None, [c.node_id for c in posts], excluded, notes)


def dicom_time_s(text: str | None) -> float | None:
    """Seconds since midnight of a DICOM TM value ("HHMMSS.FFFFFF", "HHMM", "HH:MM:SS"); None when unparsable."""
    if not text:
        return None
    value = text.strip().replace(":", "")
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?", value)
    if not m:
        return None
    hours, minutes, seconds = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    return hours * 3600.0 + minutes * 60.0 + seconds + (float(m.group(4)) if m.group(4) else 0.0)
