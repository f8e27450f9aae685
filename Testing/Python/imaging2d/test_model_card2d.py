"""2D model folders: saving the same weights again keeps the file (and its sha256); new weights replace it."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D, load_model_2d, save_model_2d
from breastlesionseg.nn.factory2d import build_network_2d

CONFIG = {"widths": [4, 8, 12], "attention": "none"}


def _card() -> ModelCard2D:
    return ModelCard2D(model_id="tiny-us", modality="ultrasound", arch="attention_unet2d", config=CONFIG,
                       input_size_px=32)


def test_resaving_identical_weights_keeps_the_file_and_its_checksum(tmp_path):
    torch.manual_seed(0)
    state = build_network_2d("attention_unet2d", CONFIG).state_dict()
    folder = save_model_2d(state, _card(), tmp_path / "m")
    first = (folder / "weights.pt").read_bytes()
    sha = load_model_2d(folder)[1].weights_sha256
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_model_2d(state, _card(), folder)
    again = save_model_2d({k: v.clone() for k, v in state.items()}, _card(), folder, overwrite=True)
    assert (again / "weights.pt").read_bytes() == first and load_model_2d(again)[1].weights_sha256 == sha
    changed = {k: (v + 1 if v.is_floating_point() else v) for k, v in state.items()}
    save_model_2d(changed, _card(), folder, overwrite=True)
    network, card = load_model_2d(folder)
    assert card.weights_sha256 != sha
    assert all(torch.equal(network.state_dict()[k], changed[k]) for k in changed)


def test_limitations_are_texts_and_survive_the_folder(tmp_path):
    from breastlesionseg.errors import ModelError

    torch.manual_seed(0)
    state = build_network_2d("attention_unet2d", CONFIG).state_dict()
    card = _card()
    card.limitations = ["a scanner left out of training: Dice 0.70"]
    folder = save_model_2d(state, card, tmp_path / "m")
    assert load_model_2d(folder)[1].limitations == ["a scanner left out of training: Dice 0.70"]
    assert _card().limitations == []
    for bad in ("one text", [""], [7]):
        with pytest.raises(ModelError, match="limitations"):
            ModelCard2D(model_id="tiny-us", modality="ultrasound", arch="attention_unet2d", config=CONFIG,
                        input_size_px=32, limitations=bad)
