"""Write a synthetic 8-bit ultrasound DICOM with a region calibration (tests, demos, format checks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ultrasound_dicom(path: str | Path, pixels: np.ndarray, delta_cm: tuple[float, float] = (0.0125, 0.02),
                           photometric: str = "MONOCHROME2") -> Path:
    """Write ``pixels`` as an uncompressed ultrasound DICOM with one 2D region in centimetres.

    Args:
        path: target file.
        pixels: uint8 (H, W) gray, (F, H, W) multi-frame gray, or (H, W, 3) RGB with ``photometric="RGB"``.
        delta_cm: (PhysicalDeltaX, PhysicalDeltaY), cm per pixel along columns and rows.
        photometric: ``"MONOCHROME2"`` or ``"RGB"``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, generate_uid

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    rgb = photometric == "RGB"
    frames = pixels.shape[0] if (pixels.ndim == 3 and not rgb) else 1
    rows, columns = pixels.shape[-3:-1] if rgb else pixels.shape[-2:]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = "US", int(rows), int(columns)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = (3 if rgb else 1), photometric
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = int(columns) - 1, int(rows) - 1
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 3, 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = float(delta_cm[0]), float(delta_cm[1])
    ds.SequenceOfUltrasoundRegions = [region]
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return Path(path)
