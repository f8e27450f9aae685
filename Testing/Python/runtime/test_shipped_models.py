"""The shipped models are verified against the checksum list inside the package (issue 14 row 12)."""
from __future__ import annotations

import shutil

import pytest

from breastlesionseg.errors import ModelError
from breastlesionseg.imaging2d.model_card2d import CARD_KIND as CARD_KIND_2D
from breastlesionseg.imaging2d.model_card2d import ModelCard2D, card_kind, list_models_2d, load_model_2d
from breastlesionseg.nn import ModelCard, load_model
from breastlesionseg.nn.registry import MODELS_ENV, REPO_MODELS_DIR, list_models, sha256_file
from breastlesionseg.nn.shipped_models import SHIPPED_MODELS
from breastlesionseg.ultrasound.crop_classifier import member_specs


def test_the_packaged_list_matches_the_repository_models():
    assert {p.name for p in REPO_MODELS_DIR.iterdir() if (p / "model_card.json").is_file()} == set(SHIPPED_MODELS)
    for model_id, sums in SHIPPED_MODELS.items():
        folder = REPO_MODELS_DIR / model_id
        if card_kind(folder) == CARD_KIND_2D:
            card2d = ModelCard2D.read(folder)
            assert sha256_file(folder / card2d.weights_file) == sums["weights_sha256"] == card2d.weights_sha256
            if card2d.crop_classifier or "crop_classifier_sha256" in sums:
                members = member_specs(card2d.crop_classifier)
                assert ([sha256_file(folder / m["weights_file"]) for m in members] == sums["crop_classifier_sha256"]
                        == [m["weights_sha256"] for m in members])
            continue
        card = ModelCard.read(folder)
        assert sha256_file(folder / card.weights_file) == sums["weights_sha256"] == card.weights_sha256
        assert sha256_file(folder / card.onnx_export["file"]) == sums["onnx_sha256"] == card.onnx_export["sha256"]


def _tampered_copy(tmp_path, monkeypatch, model_id):
    """A copy of a shipped model folder (in the model search path) whose weights were changed: (folder, weights)."""
    folder = tmp_path / "models" / model_id
    shutil.copytree(REPO_MODELS_DIR / model_id, folder)
    weights = folder / "weights.pt"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    return folder, weights


def test_a_tampered_2d_model_is_refused_by_id(tmp_path, monkeypatch):
    model_id = "us-attunet-busbra"
    folder, weights = _tampered_copy(tmp_path, monkeypatch, model_id)
    card = ModelCard2D.read(folder)
    card.weights_sha256 = sha256_file(weights)  # the card "agrees" with the tampered weights
    card.write(folder, overwrite=True)
    with pytest.raises(ModelError, match="claims to be the shipped model 'us-attunet-busbra'"):
        load_model_2d(model_id)
    card.weights_sha256 = ""
    card.write(folder, overwrite=True)
    with pytest.raises(ModelError, match="no weights_sha256"):
        load_model_2d(folder)


def test_a_tampered_crop_classifier_of_a_shipped_model_is_refused_by_id(tmp_path, monkeypatch, caplog):
    from breastlesionseg.ultrasound.model import load_ultrasound_model

    model_id = "us-attunet-busbra"
    if "crop_classifier_sha256" not in SHIPPED_MODELS[model_id]:
        pytest.skip("the shipped ultrasound model has no crop classifier")
    folder = tmp_path / "models" / model_id
    shutil.copytree(REPO_MODELS_DIR / model_id, folder)
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    card = ModelCard2D.read(folder)
    members = member_specs(card.crop_classifier)
    classifier = folder / members[-1]["weights_file"]  # the last member: each file is checked, not only the first
    classifier.write_bytes(classifier.read_bytes() + b"tampered")
    members[-1] = {**members[-1], "weights_sha256": sha256_file(classifier)}
    card.crop_classifier = {"members": members}
    card.write(folder, overwrite=True)
    with pytest.raises(ModelError, match="claims to be the shipped model 'us-attunet-busbra'"):
        load_ultrasound_model(model_id)


def test_mri_and_2d_listings_keep_to_their_kind(caplog):
    assert "mm3dunet-phantom-demo" in {c.model_id for c in list_models()}
    assert not {"us-attunet-busbra", "hires-unet-cddcesm-demo"} & {c.model_id for c in list_models()}
    assert "skipping" not in caplog.text
    assert {c.model_id for c in list_models_2d("ultrasound")} >= {"us-attunet-busbra"}
    assert "us-attunet-busbra" not in {c.model_id for c in list_models_2d("mammography")}
    with pytest.raises(ValueError, match="modality"):
        list_models_2d("ct")


def test_weights_and_card_edited_together_are_refused_by_id(tmp_path, monkeypatch, caplog):
    model_id = "mm3dunet-phantom-demo"
    folder, weights = _tampered_copy(tmp_path, monkeypatch, model_id)
    card = ModelCard.read(folder)
    card.weights_sha256 = sha256_file(weights)  # the card "agrees" with the tampered weights
    (folder / "model_card.json").write_text(card.to_json())
    with pytest.raises(ModelError, match="claims to be the shipped model 'mm3dunet-phantom-demo'"):
        load_model(model_id)
    # given by path it is the user's explicit choice (e.g. a re-training before the list is updated): a WARNING
    net, loaded = load_model(folder)
    assert loaded.model_id == model_id and "claims to be the shipped model" in caplog.text
