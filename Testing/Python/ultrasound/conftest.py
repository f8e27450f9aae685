"""Fixtures of the ultrasound tests: a tiny model folder with controllable outputs, BUS-BRA location."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from breastlesionseg.imaging2d.model_card2d import ModelCard2D, save_model_2d
from breastlesionseg.nn.factory2d import build_network_2d

COLUMNS = ("ID", "Case", "Histology", "Pathology", "BIRADS", "Device", "Width", "Height", "Side", "BBOX", "Scale",
           "Source", "CorrectedBy")
BUSBRA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "busbra-ultrasound"


def make_model_folder(folder: Path, seg_bias: float, lesion_bias: float, malignancy_bias: float) -> Path:
    """A tiny attention U-Net whose outputs are constants: the heads' weights are zero, so
    lesion probability = sigmoid(seg_bias) everywhere, lesion-present = sigmoid(lesion_bias), etc."""
    torch.manual_seed(0)
    net = build_network_2d("attention_unet2d", {"widths": [4, 8, 8]})
    with torch.no_grad():
        for layer, bias in ((net.seg_head, seg_bias), (net.heads.lesion, lesion_bias), (net.heads.malignancy, malignancy_bias)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    card = ModelCard2D(model_id=folder.name, modality="ultrasound", arch="attention_unet2d",
                       config=net.config.to_dict(), input_size_px=64)
    return save_model_2d(net.state_dict(), card, folder)


@pytest.fixture(scope="session")
def lesion_model(tmp_path_factory) -> Path:
    """Model that finds a lesion everywhere: mask = whole image, lesion-present 0.88, malignancy 0.27."""
    return make_model_folder(tmp_path_factory.mktemp("models") / "us-all-lesion", 20.0, 2.0, -1.0)


@pytest.fixture(scope="session")
def no_lesion_model(tmp_path_factory) -> Path:
    """Model whose lesion-present probability is 0.05: the mask must stay empty."""
    return make_model_folder(tmp_path_factory.mktemp("models") / "us-no-lesion", 20.0, -2.944, 0.0)


@pytest.fixture(scope="session")
def busbra_dir() -> Path:
    """The BUS-BRA folder; skips when ../shared/data is absent."""
    if not (BUSBRA_DIR / "bus_data.csv").is_file():
        pytest.skip(f"BUS-BRA not found at {BUSBRA_DIR} (needs ../shared/data beside the checkout)")
    return BUSBRA_DIR


def _pair(rng: np.random.Generator, height: int = 64, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A gray speckle image with a dark elliptic lesion in its right part (room for a lesion-free crop) and its mask."""
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.integers(24, 40), rng.integers(70, 80)
    ry, rx = rng.integers(6, 12), rng.integers(6, 12)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    image = np.clip(rng.normal(140, 25, (height, width)) - 90 * mask, 0, 255).astype(np.uint8)
    return image, mask


def write_user_folder(root: Path, pairs: list[tuple[str, str, str, str]]) -> Path:
    """Images/bus_<id>.png, Masks/mask_<id>.png and bus_data.csv as the Slicer module's export writes them.

    Args:
        root: folder to create.
        pairs: (case, pathology, BI-RADS, device) of each image; empty texts are unknown labels.
    """
    (root / "Images").mkdir(parents=True)
    (root / "Masks").mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for index, (case, pathology, birads, device) in enumerate(pairs):
        number = f"{case.replace(' ', '_')}-{index}"
        image, mask = _pair(rng)
        Image.fromarray(image).save(root / "Images" / f"bus_{number}.png")
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(root / "Masks" / f"mask_{number}.png")
        rows.append({"ID": f"bus_{number}", "Case": case, "Histology": "", "Pathology": pathology, "BIRADS": birads,
                     "Device": device, "Width": image.shape[1], "Height": image.shape[0], "Side": "", "BBOX": "[0,0,1,1]",
                     "Scale": 1.0, "Source": "synthetic", "CorrectedBy": "test"})
    with (root / "bus_data.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return root
