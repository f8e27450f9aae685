"""DICOM study scanning, dynamic (DCE) series selection and ordering, series reading and writing.

A DCE study usually holds many series (localisers, T2, DWI, the dynamic phases, subtractions, MIPs).
:func:`scan_dicom_study` reads the header of every DICOM file below a folder (SimpleITK/GDCM, no
pixel data) and groups them into :class:`SeriesInfo` records, splitting a series that holds several
temporal positions (one series UID, several ``TemporalPositionIdentifier`` / ``TriggerTime`` values)
into one record per time point. :func:`select_dynamic_series` then picks the dynamic phases and
orders them pre-contrast first, and says why.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Volume

log = logging.getLogger(__name__)

# DICOM tags (group|element, as SimpleITK names them)
TAG_STUDY_UID = "0020|000d"
TAG_SERIES_UID = "0020|000e"
TAG_SERIES_NUMBER = "0020|0011"
TAG_SERIES_DESCRIPTION = "0008|103e"
TAG_ACQUISITION_TIME = "0008|0032"
TAG_SERIES_TIME = "0008|0031"
TAG_CONTENT_TIME = "0008|0033"
TAG_TRIGGER_TIME = "0018|1060"
TAG_TEMPORAL_POSITION = "0020|0100"
TAG_IMAGE_TYPE = "0008|0008"
TAG_POSITION = "0020|0032"
TAG_ORIENTATION = "0020|0037"
TAG_PIXEL_SPACING = "0028|0030"
TAG_ROWS = "0028|0010"
TAG_COLUMNS = "0028|0011"
TAG_MODALITY = "0008|0060"
TAG_INSTANCE_NUMBER = "0020|0013"

#: series descriptions that suggest a dynamic (DCE) T1 phase
DYNAMIC_PATTERN = re.compile(
    r"dyn|dce|dynamic|vibe|thrive|twist|tricks|disco|lava|fl3d|fame|\bph\s*\d|phase\s*\d|\bpre\b|pre[-_ ]?contrast|"
    r"\bpost|1st|2nd|3rd|\d+th|pass|\bt1|gad|\+c\b|contrast",
    re.IGNORECASE,
)
#: series descriptions of derived or other-contrast series that are never DCE phases. Words are matched whole
#: (letters/digits around them break the match, so "post2" is not "t2" and "Vibrant ASSET" is not a calibration);
#: the prefixes (sub..., diff..., loc..., calib...) only need a word start.
_WORD_START = r"(?<![a-z0-9])"
_WORD_END = r"(?![a-z0-9])"
EXCLUDE_PATTERN = re.compile(
    _WORD_START + r"(?:sub|diff|loc|calib|asset\s*cal|shim|scout|survey|report|screen\s*save)"
    r"|" + _WORD_START + r"(?:mip|mpr|pe|ser|cad|adc|dwi|stir|flair|haste|t2|t2w|t2\*|t2star|b1)" + _WORD_END
    + r"|map" + _WORD_END,
    re.IGNORECASE,
)
PRE_PATTERN = re.compile(r"\bpre\b|pre[-_ ]?contrast|\bnative\b|\bph\s*0\b|\bbefore\b", re.IGNORECASE)


def _parse_time_s(value: str) -> float | None:
    """DICOM TM ``HHMMSS.ffffff`` (or ``HH:MM:SS``) -> seconds since midnight, ``None`` if absent/invalid."""
    value = value.strip().replace(":", "")
    if not value:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", value)
    if not match:
        return None
    hh, mm, ss, frac = match.groups()
    return int(hh) * 3600 + int(mm or 0) * 60 + int(ss or 0) + (float(frac) if frac else 0.0)


def _parse_float(value: str) -> float | None:
    try:
        return float(value.strip().split("\\")[0])
    except (ValueError, IndexError):
        return None


def _parse_floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.strip().split("\\") if v.strip())
    except ValueError:
        return ()


@dataclass
class SeriesInfo:
    """One DICOM series (or one temporal position of a multi-phase series) found in a study folder.

    Attributes:
        series_uid: SeriesInstanceUID.
        study_uid: StudyInstanceUID.
        description: SeriesDescription ("" when absent).
        series_number: SeriesNumber (``None`` when absent).
        acquisition_time_s: AcquisitionTime (else SeriesTime/ContentTime) of the earliest file, seconds since midnight.
        trigger_time_ms: TriggerTime (0018,1060) in ms when present.
        temporal_position: TemporalPositionIdentifier when the series UID holds several time points.
        files: the files, sorted along the slice normal (foot -> head for axial).
        rows, columns: in-plane matrix.
        pixel_spacing_mm: (row spacing, column spacing) in mm.
        orientation: ImageOrientationPatient (6 direction cosines).
        image_type: ImageType (e.g. ``ORIGINAL\\PRIMARY\\M``).
        slice_spacing_mm: median spacing of the sorted slice positions in mm (``None`` for one slice).
        slice_positions_mm: position of each sorted file along the slice normal in mm (empty without geometry tags).
    """

    series_uid: str
    study_uid: str = ""
    description: str = ""
    series_number: int | None = None
    acquisition_time_s: float | None = None
    trigger_time_ms: float | None = None
    temporal_position: int | None = None
    files: list[str] = field(default_factory=list)
    rows: int = 0
    columns: int = 0
    pixel_spacing_mm: tuple[float, ...] = ()
    orientation: tuple[float, ...] = ()
    image_type: str = ""
    slice_spacing_mm: float | None = None
    slice_positions_mm: list[float] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        """Number of image files (slices) of this series / time point."""
        return len(self.files)

    @property
    def key(self) -> str:
        """Unique id: the series UID, plus ``#t<position>`` for one time point of a multi-phase series."""
        return self.series_uid if self.temporal_position is None else f"{self.series_uid}#t{self.temporal_position}"

    @property
    def label(self) -> str:
        """Short human label: ``#<number> '<description>'`` (+ time point)."""
        text = f"#{self.series_number if self.series_number is not None else '?'} '{self.description}'"
        if self.temporal_position is not None:
            text += f" t{self.temporal_position}"
        return text

    def geometry_key(self) -> tuple:
        """What must match for two series to be phases of one dynamic acquisition."""
        return (
            self.rows, self.columns, self.n_files,
            tuple(round(v, 3) for v in self.orientation),
            tuple(round(v, 3) for v in self.pixel_spacing_mm),
            None if self.slice_spacing_mm is None else round(self.slice_spacing_mm, 2),
        )

    def to_dict(self) -> dict:
        """JSON-friendly dict (without the file list, with ``n_files``)."""
        data = asdict(self)
        data.pop("files")
        data.pop("slice_positions_mm")
        data["n_files"] = self.n_files
        data["pixel_spacing_mm"] = list(self.pixel_spacing_mm)
        data["orientation"] = list(self.orientation)
        return data


@dataclass
class _FileHeader:
    path: str
    tags: dict


def _read_header(path: str, reader: sitk.ImageFileReader) -> _FileHeader | None:
    """Header tags of one DICOM file, ``None`` when it is not a readable DICOM image."""
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    keys = (TAG_STUDY_UID, TAG_SERIES_UID, TAG_SERIES_NUMBER, TAG_SERIES_DESCRIPTION, TAG_ACQUISITION_TIME,
            TAG_SERIES_TIME, TAG_CONTENT_TIME, TAG_TRIGGER_TIME, TAG_TEMPORAL_POSITION, TAG_IMAGE_TYPE,
            TAG_INSTANCE_NUMBER)
    tags = {k: reader.GetMetaData(k).strip() for k in keys if reader.HasMetaDataKey(k)}
    if TAG_SERIES_UID not in tags:
        return None
    # GDCM turns the geometry tags into the image geometry instead of metadata entries
    d = reader.GetDirection()
    size = reader.GetSize()
    tags[TAG_POSITION] = "\\".join(f"{v:.6f}" for v in reader.GetOrigin())
    tags[TAG_ORIENTATION] = "\\".join(f"{v:.8f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    tags[TAG_PIXEL_SPACING] = "\\".join(f"{v:.8g}" for v in reader.GetSpacing()[:2])
    tags[TAG_COLUMNS], tags[TAG_ROWS] = str(size[0]), str(size[1])
    return _FileHeader(path, tags)


def _list_files(folder: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return out


def _series_from_headers(uid: str, headers: list[_FileHeader], temporal_position: int | None) -> SeriesInfo:
    first = headers[0].tags
    orientation = _parse_floats(first.get(TAG_ORIENTATION, ""))
    positions = [_parse_floats(h.tags.get(TAG_POSITION, "")) for h in headers]
    if len(orientation) == 6 and all(len(p) == 3 for p in positions):
        normal = np.cross(orientation[:3], orientation[3:])
        dist = np.array([float(np.dot(normal, p)) for p in positions])
        order = np.argsort(dist, kind="stable")
        sorted_dist = [float(d) for d in dist[order]]
        spacing = float(np.median(np.diff(sorted_dist))) if len(dist) > 1 else None
    else:  # no geometry tags: fall back to instance number
        order = np.argsort([_parse_float(h.tags.get(TAG_INSTANCE_NUMBER, "")) or 0.0 for h in headers], kind="stable")
        sorted_dist, spacing = [], None
    times = [t for t in (_parse_time_s(h.tags.get(TAG_ACQUISITION_TIME, "") or h.tags.get(TAG_SERIES_TIME, "")
                                         or h.tags.get(TAG_CONTENT_TIME, "")) for h in headers) if t is not None]
    triggers = [t for t in (_parse_float(h.tags.get(TAG_TRIGGER_TIME, "")) for h in headers) if t is not None]
    number = _parse_float(first.get(TAG_SERIES_NUMBER, ""))
    return SeriesInfo(
        series_uid=uid,
        study_uid=first.get(TAG_STUDY_UID, ""),
        description=first.get(TAG_SERIES_DESCRIPTION, ""),
        series_number=None if number is None else int(number),
        acquisition_time_s=min(times) if times else None,
        trigger_time_ms=min(triggers) if triggers else None,
        temporal_position=temporal_position,
        files=[headers[i].path for i in order],
        rows=int(_parse_float(first.get(TAG_ROWS, "")) or 0),
        columns=int(_parse_float(first.get(TAG_COLUMNS, "")) or 0),
        pixel_spacing_mm=_parse_floats(first.get(TAG_PIXEL_SPACING, "")),
        orientation=orientation,
        image_type=first.get(TAG_IMAGE_TYPE, ""),
        slice_spacing_mm=spacing,
        slice_positions_mm=sorted_dist,
    )


def _split_temporal(headers: list[_FileHeader]) -> list[tuple[int | None, list[_FileHeader]]]:
    """Split the files of one series UID into time points when it holds several (else one group)."""
    positions = [h.tags.get(TAG_POSITION, "") for h in headers]
    n_unique_positions = len(set(positions))
    if n_unique_positions == len(headers):
        return [(None, headers)]
    for tag in (TAG_TEMPORAL_POSITION, TAG_TRIGGER_TIME, TAG_ACQUISITION_TIME):
        values = [h.tags.get(tag, "") for h in headers]
        if all(values) and len(set(values)) > 1:
            groups: dict[str, list[_FileHeader]] = defaultdict(list)
            for value, header in zip(values, headers):
                groups[value].append(header)
            if all(len({h.tags.get(TAG_POSITION, "") for h in g}) == len(g) for g in groups.values()):
                key = (lambda v: _parse_float(v) or 0.0) if tag != TAG_ACQUISITION_TIME else (
                    lambda v: _parse_time_s(v) or 0.0)
                ordered = sorted(groups, key=key)
                return [(i + 1, groups[v]) for i, v in enumerate(ordered)]
    # fall back: the n-th file at each position belongs to time point n (in instance-number order)
    by_position: dict[str, list[_FileHeader]] = defaultdict(list)
    for h in sorted(headers, key=lambda h: _parse_float(h.tags.get(TAG_INSTANCE_NUMBER, "")) or 0.0):
        by_position[h.tags.get(TAG_POSITION, "")].append(h)
    n_t = min(len(v) for v in by_position.values())
    if n_t * len(by_position) != len(headers):
        raise InputError(
            f"DICOM series {headers[0].tags.get(TAG_SERIES_UID)} has repeated slice positions that do not form "
            f"complete time points ({len(headers)} files, {len(by_position)} positions)."
        )
    return [(t + 1, [v[t] for v in by_position.values()]) for t in range(n_t)]


def scan_dicom_study(folder: str | os.PathLike) -> list[SeriesInfo]:
    """Find every DICOM image series below ``folder`` (recursively), reading headers only.

    Args:
        folder: a study folder (files of several series mixed or in sub-folders) or one series folder.

    Returns:
        One :class:`SeriesInfo` per series, or per time point of a series that holds several,
        sorted by series number then time.

    Raises:
        InputError: ``folder`` is missing, not a folder, or holds no DICOM image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"DICOM folder '{folder}' does not exist.")
    if not folder.is_dir():
        raise InputError(f"'{folder}' is not a folder (expected a DICOM study or series folder).")
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.LoadPrivateTagsOff()
    by_uid: dict[str, list[_FileHeader]] = defaultdict(list)
    files = _list_files(folder)
    for path in files:
        header = _read_header(path, reader)
        if header is not None:
            by_uid[header.tags[TAG_SERIES_UID]].append(header)
    if not by_uid:
        raise InputError(f"'{folder}' holds no readable DICOM image ({len(files)} files looked at).")
    series: list[SeriesInfo] = []
    for uid, headers in by_uid.items():
        for position, group in _split_temporal(headers):
            series.append(_series_from_headers(uid, group, position))
    series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30,
                               s.temporal_position or 0, s.acquisition_time_s or 0.0))
    log.info("scanned %s: %d DICOM files in %d series/time points", folder, sum(s.n_files for s in series),
             len(series))
    return series


def _is_candidate(s: SeriesInfo) -> tuple[bool, str]:
    if s.n_files < 2:
        return False, "single image"
    if "DERIVED" in s.image_type.upper() and not DYNAMIC_PATTERN.search(s.description):
        return False, "image type DERIVED and the description does not look dynamic"
    match = EXCLUDE_PATTERN.search(s.description)
    if match:
        return False, f"description has '{match.group(0)}': a derived / non-dynamic series"
    return True, ""


def select_dynamic_series(series: Sequence[SeriesInfo]) -> tuple[list[SeriesInfo], str]:
    """Pick the dynamic (DCE) series of one study and order them pre-contrast first.

    Rules, in order:
      1. Only one study may be present.
      2. Candidates: 3D series (>= 2 slices) whose description is not a derived or other-contrast series
         (subtraction, MIP, T2, DWI, localiser ...); ``DERIVED`` image types need a dynamic-looking description.
      3. Candidates are grouped by geometry (matrix, slices, orientation, pixel spacing); the group with the
         most series wins, ties broken by how many descriptions look dynamic (``dyn``, ``pre``, ``post``,
         ``ph1``, ``1st pass``, ``vibe`` ...), then by the earliest series number.
      4. Order: by trigger time when every phase has a distinct one, else acquisition time, else
         temporal position, else series number. A phase described as pre-contrast is put first when only
         series numbers order the phases.

    Args:
        series: from :func:`scan_dicom_study`.

    Returns:
        ``(phases, explanation)``: the chosen series in time order (first = pre-contrast) and a
        human-readable text saying what was chosen and why (also logged).

    Raises:
        InputError: several studies, or no group of at least two same-geometry series.
    """
    series = list(series)
    if not series:
        raise InputError("no DICOM series to choose the dynamic phases from.")
    studies = sorted({s.study_uid for s in series})
    if len(studies) > 1:
        raise InputError(
            f"the DICOM folder holds {len(studies)} studies ({', '.join(studies)}); pass the folder of one study."
        )
    lines: list[str] = []
    candidates: list[SeriesInfo] = []
    for s in series:
        ok, why = _is_candidate(s)
        if ok:
            candidates.append(s)
        else:
            lines.append(f"skipped {s.label} ({s.n_files} files): {why}")
            log.warning("DICOM series %s (%d files) skipped: %s", s.label, s.n_files, why)
    groups: dict[tuple, list[SeriesInfo]] = defaultdict(list)
    for s in candidates:
        groups[s.geometry_key()].append(s)
    eligible = [g for g in groups.values() if len(g) >= 2]
    if not eligible:
        listing = "; ".join(f"{s.label} {s.columns}x{s.rows}x{s.n_files}" for s in series)
        raise InputError(
            "no dynamic series found: need at least two series (or time points) with the same geometry that are "
            f"not derived/T2/DWI/localisers; found: {listing}. Pass the phase files/folders explicitly instead."
        )

    def score(group: list[SeriesInfo]) -> tuple:
        hits = sum(bool(DYNAMIC_PATTERN.search(s.description)) for s in group)
        first_number = min((s.series_number for s in group if s.series_number is not None), default=1 << 30)
        return (len(group), hits, -first_number)

    eligible.sort(key=score, reverse=True)
    chosen = list(eligible[0])
    for other in eligible[1:]:
        lines.append("not chosen (other geometry / fewer phases): " + ", ".join(s.label for s in other))

    order_by = _order_in_time(chosen)
    pre_named = [s for s in chosen if PRE_PATTERN.search(s.description)]
    if pre_named and chosen[0] is not pre_named[0]:
        lines.append(f"WARNING: {pre_named[0].label} is described as pre-contrast but {order_by} puts "
                     f"{chosen[0].label} first; check the phase order.")
    first = chosen[0]
    head = (
        f"chose {len(chosen)} dynamic phases ({first.columns}x{first.rows}x{first.n_files}) ordered by {order_by}: "
        + ", ".join(s.label for s in chosen)
        + f"; pre-contrast = {first.label}"
    )
    explanation = "\n".join([head, *lines])
    log.info("%s", explanation)
    return chosen, explanation


def _order_in_time(chosen: list[SeriesInfo]) -> str:
    """Sort ``chosen`` in place by trigger time, else acquisition time, else temporal position, else series
    number (the series described as pre-contrast first); returns what decided the order."""

    def distinct(values: list) -> bool:
        return all(v is not None for v in values) and len(set(values)) == len(values)

    triggers = [s.trigger_time_ms for s in chosen]
    acq = [s.acquisition_time_s for s in chosen]
    temporal = [s.temporal_position for s in chosen]
    if distinct(triggers):
        chosen.sort(key=lambda s: s.trigger_time_ms)
        order_by = "trigger time"
    elif distinct(acq):
        chosen.sort(key=lambda s: s.acquisition_time_s)
        order_by = "acquisition time"
    elif distinct(temporal):
        chosen.sort(key=lambda s: s.temporal_position)
        order_by = "temporal position"
    else:
        chosen.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.description))
        order_by = "series number"
        pre = [s for s in chosen if PRE_PATTERN.search(s.description)]
        if len(pre) == 1 and chosen[0] is not pre[0]:
            chosen.remove(pre[0])
            chosen.insert(0, pre[0])
            order_by += " (the series described as pre-contrast first)"
    return order_by


def relative_times_s(phases: Sequence[SeriesInfo]) -> list[float] | None:
    """Time of each phase after the first in seconds (trigger time, else acquisition time), or ``None``."""
    triggers = [s.trigger_time_ms for s in phases]
    if all(t is not None for t in triggers) and len(set(triggers)) == len(triggers):
        return [(t - triggers[0]) / 1000.0 for t in triggers]
    acq = [s.acquisition_time_s for s in phases]
    if all(t is not None for t in acq) and len(set(acq)) == len(acq):
        return [float(t - acq[0]) for t in acq]
    return None


def read_series_image(info: SeriesInfo) -> sitk.Image:
    """Read the voxels of one series / time point (rescale slope/intercept applied by GDCM).

    Raises:
        InputError: missing slices (non-uniform slice spacing) or unreadable files.
    """
    folder = os.path.dirname(info.files[0]) if info.files else "?"
    if len(info.slice_positions_mm) >= 2:
        gaps = np.diff(info.slice_positions_mm)
        if gaps.min() <= 1e-6 or (gaps.max() - gaps.min()) > 0.01 * abs(float(np.median(gaps))) + 1e-3:
            raise InputError(
                f"DICOM series {info.label} in '{folder}' has missing or duplicate slices (slice gaps from "
                f"{gaps.min():.3f} to {gaps.max():.3f} mm); a 3D volume needs evenly spaced slices."
            )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(info.files))
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read DICOM series {info.label} in '{folder}': {str(exc).strip().splitlines()[-1]}") \
            from exc
    return image


def read_dicom_series(folder: str | os.PathLike, series_uid: str | None = None) -> tuple[sitk.Image, SeriesInfo]:
    """Read the one DICOM series (or the one named by ``series_uid``/``key``) below ``folder``.

    Raises:
        InputError: no DICOM, several series and no ``series_uid``, unknown ``series_uid``.
    """
    series = scan_dicom_study(folder)
    if series_uid is not None:
        series = [s for s in series if series_uid in (s.series_uid, s.key)]
        if not series:
            raise InputError(f"no DICOM series with UID {series_uid} in '{folder}'.")
    if len(series) > 1:
        listing = "; ".join(f"{s.label} ({s.n_files} files)" for s in series)
        raise InputError(
            f"'{folder}' holds {len(series)} DICOM series/time points ({listing}); pass one series folder, or pass the "
            f"study folder to load_exam / 'breastlesionseg inspect' to pick the dynamic phases."
        )
    return read_series_image(series[0]), series[0]


# ---------------------------------------------------------------------------------------------------------------
# writing (used for tests, demos and exporting phantoms as DICOM)
# ---------------------------------------------------------------------------------------------------------------
def _format_time(seconds: float) -> str:
    seconds = seconds % 86400.0
    hh = int(seconds // 3600)
    mm = int((seconds - hh * 3600) // 60)
    ss = seconds - hh * 3600 - mm * 60
    return f"{hh:02d}{mm:02d}{ss:09.6f}"


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike,
    *,
    series_description: str,
    series_number: int = 1,
    study_uid: str | None = None,
    series_uid: str | None = None,
    acquisition_time_s: float | None = None,
    trigger_time_ms: float | None = None,
    temporal_position: int | None = None,
    patient_id: str = "PHANTOM",
    overwrite: bool = False,
) -> Path:
    """Write a volume as an MR DICOM series (one file per slice) with SimpleITK/GDCM.

    Float voxels are stored as uint16 with RescaleSlope/RescaleIntercept chosen to cover the value range
    (quantisation step = range / 65000); integer voxels fitting int16/uint16 are stored as they are.
    The folder is written next to its final place and renamed into place when complete.
    DICOM slice order follows ImageOrientationPatient's normal, so a left-handed direction matrix (e.g. z
    flipped) reads back as the same physical image on the right-handed grid (k reversed, origin at the
    other end).

    Args:
        volume: 3D volume (LPS geometry; oblique directions are kept via ImageOrientationPatient).
        folder: target folder (created; must not exist unless ``overwrite``).
        series_description, series_number, study_uid, series_uid: identification (UIDs generated when ``None``).
        acquisition_time_s: AcquisitionTime, seconds since midnight.
        trigger_time_ms: TriggerTime in ms.
        temporal_position: TemporalPositionIdentifier.
        patient_id: PatientID/PatientName.
        overwrite: replace an existing folder.

    Returns:
        ``folder``.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise InputError(f"refusing to overwrite existing folder '{folder}' (use --force / overwrite=True)")
    stored, slope, intercept, float_tags = _stored_voxels(volume, folder)
    image = volume.geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(stored)))
    study_uid = study_uid or _new_uid()
    series_uid = series_uid or _new_uid()
    direction = volume.geometry.direction
    orientation = "\\".join(f"{v:.10g}" for v in (direction[0], direction[3], direction[6],
                                                  direction[1], direction[4], direction[7]))
    now = _dt.datetime.now()
    common = [
        ("0008|0060", "MR"),
        ("0010|0010", patient_id), ("0010|0020", patient_id),
        ("0020|000d", study_uid), ("0020|000e", series_uid),
        ("0020|0011", str(int(series_number))),
        ("0008|103e", series_description),
        ("0008|0020", now.strftime("%Y%m%d")), ("0008|0030", now.strftime("%H%M%S")),
        ("0008|0021", now.strftime("%Y%m%d")), ("0008|0031", now.strftime("%H%M%S")),
        ("0020|0037", orientation),
        ("0008|0008", "ORIGINAL\\PRIMARY\\M\\ND"),
        ("0018|0050", f"{volume.geometry.spacing[2]:.10g}"),
        ("0028|1052", f"{intercept:.10g}"), ("0028|1053", f"{slope:.10g}"),
        *float_tags,
    ]
    if acquisition_time_s is not None:
        common.append((TAG_ACQUISITION_TIME, _format_time(acquisition_time_s)))
        common.append((TAG_SERIES_TIME, _format_time(acquisition_time_s)))
    if trigger_time_ms is not None:
        common.append((TAG_TRIGGER_TIME, f"{trigger_time_ms:.6g}"))
    if temporal_position is not None:
        common.append((TAG_TEMPORAL_POSITION, str(int(temporal_position))))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _write_slices(image, common, tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.debug("wrote DICOM series '%s' (%d slices) to %s", series_description, image.GetDepth(), folder)
    return folder


def _stored_voxels(volume: Volume, folder: Path) -> tuple[np.ndarray, float, float, list[tuple[str, str]]]:
    """Voxels as DICOM stores them -> ``(stored array, rescale slope, intercept, extra pixel tags)``.

    Integers that fit are stored as int16/uint16; anything else as uint16 through a rescale slope/intercept.
    """
    arr = np.asarray(volume.array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(f"cannot write '{volume.name or volume.source}' as DICOM to '{folder}': it has NaN/Inf voxels")
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        return arr.astype(np.int16), 1.0, 0.0, []
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 65535:
        return arr.astype(np.uint16), 1.0, 0.0, []
    # GDCM converts float voxels to stored uint16 with these (whole-number intercept required)
    lo, hi = float(np.min(arr)), float(np.max(arr))
    intercept = float(np.floor(lo))
    slope = (hi - intercept) / 65000.0 if hi > intercept else 1.0
    float_tags = [("0028|0100", "16"), ("0028|0101", "16"), ("0028|0102", "15"), ("0028|0103", "0")]
    return arr.astype(np.float64), slope, intercept, float_tags


def _write_slices(image: sitk.Image, common: list[tuple[str, str]], folder: Path) -> None:
    """One DICOM file per slice of ``image`` into ``folder`` (position, instance number, SOP UID per slice)."""
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        for tag, value in common:
            slice_image.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_image.SetMetaData(TAG_POSITION, "\\".join(f"{v:.10g}" for v in position))
        slice_image.SetMetaData(TAG_INSTANCE_NUMBER, str(k + 1))
        slice_image.SetMetaData("0008|0018", _new_uid())
        writer.SetFileName(str(folder / f"IM{k + 1:05d}.dcm"))
        writer.Execute(slice_image)


def _new_uid() -> str:
    """A new unique DICOM UID (UUID-derived, under the 2.25 root)."""
    import uuid

    return f"2.25.{uuid.uuid4().int}"
