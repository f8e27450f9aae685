"""Fixtures of the mammography tests: tiny seeded mammograms (PNG, DICOM MG), a tiny CDD-CESM-like dataset,
a tiny random-weight model folder, and the real CDD-CESM folder (skipped when ../shared/data is absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[3]
#: ../shared/data beside the checkout (the same rule as Testing/Python/conftest.py)
CDDCESM_DIR = Path(os.environ.get("BLS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / "cdd-cesm-mammography"


def write_dicom_mg(path: Path, pixels: np.ndarray, pixel_spacing=None, imager_pixel_spacing=None) -> Path:
    """A minimal DICOM MG file (uint16 MONOCHROME2) with the given spacing attributes."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "MG"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixel_spacing is not None:
        ds.PixelSpacing = [str(v) for v in pixel_spacing]
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = [str(v) for v in imager_pixel_spacing]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def synthetic_mammogram(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image with a bright disc on noise, bool disc mask)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    cy, cx, r = height * rng.uniform(0.3, 0.7), width * rng.uniform(0.3, 0.7), min(height, width) * 0.2
    mask = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
    image = np.clip(rng.normal(60, 15, (height, width)) + 120 * mask, 0, 255).astype(np.uint8)
    return image, mask


@pytest.fixture()
def tiny_cddcesm(tmp_path: Path) -> Path:
    """A CDD-CESM-like folder: 6 patients, 10 JPEG images (one flipped copy), JPEG masks, 48 x 48 px."""
    root = tmp_path / "cddcesm"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = ["P1_L_DM_CC", "P1_L_CM_CC", "flipped_P1_L_DM_CC", "P2_R_DM_MLO", "P3_L_CM_MLO", "P3_R_CM_CC",
             "P4_R_DM_CC", "mirrored_P5_L_DM_MLO", "P5_L_CM_MLO", "P6_R_DM_CC"]
    for seed, name in enumerate(names):
        image, mask = synthetic_mammogram(48, 48, seed)
        Image.fromarray(image).save(root / "images" / f"{name}.jpg", quality=90)
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(root / "masks" / f"{name}.jpg", quality=75)
    return root


@pytest.fixture()
def tiny_model_dir(tmp_path: Path) -> Path:
    """A mammography model folder with random weights of a 3-level, width-4 network (32 px input)."""
    import torch

    from breastlesionseg.imaging2d.model_card2d import ModelCard2D, save_model_2d
    from breastlesionseg.nn.hires_unet import HiResUNet2D
    from breastlesionseg.nn.hires_unet_config import HiResUNetConfig

    torch.manual_seed(0)
    config = HiResUNetConfig(levels=3, base_width=4)
    network = HiResUNet2D(config).eval()
    card = ModelCard2D(model_id="mg-tiny-test", modality="mammography", arch="hires_unet2d", config=config.to_dict(),
                       input_size_px=32, threshold=0.5, training_data="random weights (test)")
    return save_model_2d(network.state_dict(), card, tmp_path / "models" / "mg-tiny-test")


@pytest.fixture(scope="session")
def cddcesm_dir() -> Path:
    """The real CDD-CESM subset; skips when ../shared/data is absent."""
    if not (CDDCESM_DIR / "images").is_dir():
        pytest.skip(f"CDD-CESM data not found at {CDDCESM_DIR} (needs ../shared/data beside the checkout)")
    return CDDCESM_DIR
