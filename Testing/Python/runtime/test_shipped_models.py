"""The shipped models are verified against the checksum list inside the package (issue 14 row 12)."""
from __future__ import annotations

import shutil

import pytest

from breastlesionseg.errors import ModelError
from breastlesionseg.nn import ModelCard, load_model
from breastlesionseg.nn.registry import MODELS_ENV, REPO_MODELS_DIR, sha256_file
from breastlesionseg.nn.shipped_models import SHIPPED_MODELS


def test_the_packaged_list_matches_the_repository_models():
    for model_id, sums in SHIPPED_MODELS.items():
        folder = REPO_MODELS_DIR / model_id
        card = ModelCard.read(folder)
        assert sha256_file(folder / card.weights_file) == sums["weights_sha256"] == card.weights_sha256
        assert sha256_file(folder / card.onnx_export["file"]) == sums["onnx_sha256"] == card.onnx_export["sha256"]


def test_weights_and_card_edited_together_are_refused_by_id(tmp_path, monkeypatch, caplog):
    model_id = "mm3dunet-phantom-demo"
    folder = tmp_path / "models" / model_id
    shutil.copytree(REPO_MODELS_DIR / model_id, folder)
    weights = folder / "weights.pt"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    card = ModelCard.read(folder)
    card.weights_sha256 = sha256_file(weights)  # the card "agrees" with the tampered weights
    (folder / "model_card.json").write_text(card.to_json())
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    with pytest.raises(ModelError, match="claims to be the shipped model 'mm3dunet-phantom-demo'"):
        load_model(model_id)
    # given by path it is the user's explicit choice (e.g. a re-training before the list is updated): a WARNING
    net, loaded = load_model(folder)
    assert loaded.model_id == model_id and "claims to be the shipped model" in caplog.text
