"""Volume and DICOM input/output with exact LPS geometry (NIfTI, NRRD, MHA, DICOM series/study folders).

The public names below are imported on first use, so that light submodules (``io.atomic``,
``io.output_claim``) can be imported without SimpleITK and pydicom (fast ``--help``).
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "SeriesInfo": "dicom",
    "read_dicom_series": "dicom",
    "read_series_image": "dicom",
    "relative_times_s": "dicom",
    "scan_dicom_study": "dicom",
    "select_dynamic_series": "dicom",
    "write_dicom_series": "dicom",
    "VOLUME_SUFFIXES": "volume_io",
    "check_volume_values": "volume_io",
    "read_label_volume": "volume_io",
    "read_sitk_image": "volume_io",
    "read_volume": "volume_io",
    "volume_stem": "volume_io",
    "volume_suffix": "volume_io",
    "write_volume": "volume_io",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
