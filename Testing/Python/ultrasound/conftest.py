"""Fixtures of the ultrasound tests: a tiny model folder with controllable outputs, BUS-BRA location."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from breastlesionseg.imaging2d.model_card2d import ModelCard2D, save_model_2d
from breastlesionseg.nn.factory2d import build_network_2d

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
