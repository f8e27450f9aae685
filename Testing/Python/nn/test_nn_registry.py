"""Model folders: save/load round trip, checksum verification, architecture mismatch, search path, card."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from breastlesionseg.errors import InputError, ModelError
from breastlesionseg.nn import (
    MODELS_ENV, ModelCard, build_network, list_models, load_model, resolve_model, save_model, sha256_file,
)

CONFIG = dict(in_channels=3, expansion=2, base_width=4)


def _card(model_id: str = "tiny-test", **kw) -> ModelCard:
    fields = dict(model_id=model_id, arch="mm3dunet", config=build_network("mm3dunet", CONFIG).config.to_dict(),
                  input_channels=["pre", "post1", "sub1"], demo=True, training_data="unit-test noise")
    fields.update(kw)
    return ModelCard(**fields)


@pytest.fixture()
def saved(tmp_path: Path):
    torch.manual_seed(0)
    net = build_network("mm3dunet", CONFIG)
    folder = save_model(net, _card(), tmp_path / "tiny-test")
    return net, folder


def test_round_trip_equal_outputs_and_card(saved):
    net, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["model_card.json", "weights.pt"]
    card_json = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    assert card_json["weights_sha256"] == sha256_file(folder / "weights.pt")
    assert card_json["demo"] is True and card_json["research_use_only"] is True
    loaded, card = load_model(folder)
    assert not loaded.training and card.model_id == "tiny-test" and card.input_channels == ["pre", "post1", "sub1"]
    x = torch.randn(1, 3, 9, 17, 19)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_with_aux(x), net.forward_with_aux(x), rtol=0, atol=0)


def test_refuses_overwrite_then_replaces_with_overwrite(saved, tmp_path):
    net, folder = saved
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_model(net, _card(), folder)
    torch.nn.init.zeros_(net.head.weight)
    save_model(net, _card(), folder, overwrite=True)
    loaded, _ = load_model(folder)
    assert torch.count_nonzero(loaded.head.weight) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_truncated_weights_fail_checksum(saved):
    _, folder = saved
    w = folder / "weights.pt"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(folder)


def test_byte_flipped_weights_fail_checksum(saved):
    _, folder = saved
    w = folder / "weights.pt"
    data = bytearray(w.read_bytes())
    data[len(data) // 3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(folder)


def test_architecture_mismatch_names_keys(saved, tmp_path):
    _, folder = saved
    # weights of a different architecture, with a card that claims the MM-3DUNet config (checksum valid)
    other = build_network("unet3d", dict(in_channels=3, base_width=4, levels=3, widths=None))
    torch.save(other.state_dict(), folder / "weights.pt")
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["weights_sha256"] = sha256_file(folder / "weights.pt")
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError) as info:
        load_model(folder)
    msg = str(info.value)
    assert "missing keys: encoders.0.0.expand.0.weight" in msg  # first MM-3DUNet key, absent from the file
    assert "unexpected keys: encoders.0.0.0.weight" in msg  # first dense U-Net key
    assert "in all)" in msg  # long lists are shortened with a count


def test_shape_mismatch_is_reported(saved):
    _, folder = saved
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["config"]["base_width"] = 8  # card says wider than the weights
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="shape mismatches"):
        load_model(folder)


def test_missing_and_invalid_files(saved, tmp_path):
    _, folder = saved
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelError, match="not found"):
        load_model("no-such-model-anywhere")
    (folder / "weights.pt").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(folder)
    (folder / "model_card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(folder)
    (folder / "model_card.json").unlink()
    with pytest.raises(ModelError, match="has no model_card.json"):
        load_model(folder)


def test_card_errors_name_the_field(tmp_path):
    with pytest.raises(InputError, match="input_channels"):
        _card(input_channels=["pre", "post1"])  # 2 names, in_channels=3
    with pytest.raises(InputError, match="'patch_size'"):
        _card(patch_size=(32, 0, 96))
    with pytest.raises(InputError, match="'threshold'"):
        _card(threshold=1.5)
    with pytest.raises(InputError, match="'model_id'"):
        _card(model_id="../evil")
    bad = _card().to_dict()
    del bad["arch"]
    with pytest.raises(ModelError, match="arch"):
        ModelCard.from_dict(bad)


def test_card_limitations_are_texts_and_round_trip():
    card = _card(limitations=["small lesions without fat suppression: 4 of 9 found"])
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again.limitations == ["small lesions without fat suppression: 4 of 9 found"]
    assert _card().limitations == []
    for bad in ("one text, not a list", ["ok", ""], ["ok", 3]):
        with pytest.raises(InputError, match="'limitations'"):
            _card(limitations=bad)


def test_card_json_round_trip_keeps_unknown_fields():
    data = _card(validation_metrics={"dice": 0.8}).to_dict()
    data["future_field"] = {"x": 1}
    card = ModelCard.from_dict(json.loads(json.dumps(data)))
    assert card.extra == {"future_field": {"x": 1}} and card.to_dict() == data
    assert card.target_spacing_mm == tuple(data["target_spacing_mm"])


def test_search_path_by_name_and_list_models(saved, tmp_path, monkeypatch):
    net, folder = saved
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert resolve_model("tiny-test") == folder
    _, card = load_model("tiny-test")
    assert card.model_id == "tiny-test"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_card.json").write_text("[]")
    ids = [c.model_id for c in list_models()]
    assert "tiny-test" in ids and "broken" not in ids


class _NotATensor:
    """A pickled object that ``torch.load(weights_only=True)`` must refuse to construct."""

    def __reduce__(self):
        return (print, ("this code must never run",))


def test_pickled_code_is_refused_even_with_a_valid_checksum(saved):
    _, folder = saved
    torch.save({"head.weight": _NotATensor()}, folder / "weights.pt")
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["weights_sha256"] = sha256_file(folder / "weights.pt")
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="refusing to load it") as err:
        load_model(folder)
    assert "weights_only" not in str(err.value)  # torch's advice to load unsafely is never relayed


def test_save_unwraps_compiled_or_parallel_modules(tmp_path):
    torch.manual_seed(0)
    net = build_network("mm3dunet", CONFIG)
    wrapped = torch.nn.DataParallel(net)
    folder = save_model(wrapped, _card(), tmp_path / "wrapped")
    state = torch.load(folder / "weights.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state)
    loaded, _ = load_model(folder)
    x = torch.randn(1, 3, 9, 9, 10)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    with pytest.raises(InputError, match="not a breastlesionseg network"):
        save_model(torch.nn.Conv3d(1, 1, 1), _card(), tmp_path / "conv")


def test_a_checksum_list_is_matched_file_by_file(monkeypatch, caplog):
    from breastlesionseg.nn import shipped_models
    from breastlesionseg.nn.registry import check_shipped_weights

    monkeypatch.setitem(shipped_models.SHIPPED_MODELS, "m-list", {"parts": ["a" * 64, "b" * 64], "one": "c" * 64})
    check_shipped_weights("m-list", "a" * 64, Path("x0.pt"), key="parts", index=0)
    check_shipped_weights("m-list", "b" * 64, Path("x1.pt"), key="parts", index=1)
    check_shipped_weights("m-list", "c" * 64, Path("y.pt"), key="one", index=0)  # a single checksum is position 0
    for sha, index, key in (("a" * 64, 1, "parts"), ("a" * 64, 2, "parts"), ("c" * 64, 1, "one")):
        with pytest.raises(ModelError, match="claims to be the shipped model 'm-list'"):
            check_shipped_weights("m-list", sha, Path("z.pt"), key=key, index=index)
    check_shipped_weights("m-list", "d" * 64, Path("z.pt"), refuse=False, key="parts", index=0)
    assert "loaded because it was given by path" in caplog.text
