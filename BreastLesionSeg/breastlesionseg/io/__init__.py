"""Volume and DICOM input/output with exact LPS geometry (NIfTI, NRRD, MHA, DICOM series/study folders)."""
from __future__ import annotations

from .dicom import (
    SeriesInfo,
    read_dicom_series,
    read_series_image,
    relative_times_s,
    scan_dicom_study,
    select_dynamic_series,
    write_dicom_series,
)
from .volume_io import (
    VOLUME_SUFFIXES,
    check_volume_values,
    read_label_volume,
    read_sitk_image,
    read_volume,
    volume_stem,
    volume_suffix,
    write_volume,
)

__all__ = [
    "SeriesInfo",
    "VOLUME_SUFFIXES",
    "check_volume_values",
    "read_dicom_series",
    "read_label_volume",
    "read_series_image",
    "read_sitk_image",
    "read_volume",
    "relative_times_s",
    "scan_dicom_study",
    "select_dynamic_series",
    "volume_stem",
    "volume_suffix",
    "write_dicom_series",
    "write_volume",
]
