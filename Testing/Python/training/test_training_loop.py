"""Training loop: a tiny run lowers the loss and writes a loadable model; resume; output protection."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from breastlesionseg.errors import DatasetError, InputError
from breastlesionseg.nn import ModelCard, load_model
from breastlesionseg.training import loop as loop_mod
from breastlesionseg.training.loop import load_checkpoint, train


def test_tiny_training_lowers_loss_and_writes_loadable_model(tiny_dataset, tiny_train_config, tmp_path):
    out = tmp_path / "model"
    stream = io.StringIO()
    cfg = tiny_train_config(tiny_dataset, out, epochs=4, progress="json", demo=True,
                            training_command="breastlesionseg train --data X --output Y")
    result = train(cfg, json_stream=stream)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 4
    assert losses[-1] < losses[0] - 0.02, losses
    # model folder: card + weights, loadable, right output shape
    net, card = load_model(out)
    assert card.input_channels == ["pre", "post1", "sub1"] and card.demo is True
    assert card.patch_size == (8, 16, 16) and card.target_spacing_mm == (1.5, 1.5, 2.0)
    assert card.validation_metrics["best_epoch"] == result.best_epoch
    assert card.validation_metrics["val_dice"] == pytest.approx(result.best_val_dice)
    assert card.training_command.startswith("breastlesionseg train")
    x = torch.randn(1, 3, 8, 16, 16)
    with torch.no_grad():
        seg, act = net.forward_with_aux(x)
    assert seg.shape == (1, 1, 8, 16, 16) and act.shape == (1, 2)
    # the kept weights are the best epoch's checkpoint
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best["epoch"] == result.best_epoch
    for k, v in net.state_dict().items():
        assert torch.equal(v, best["model"][k])
    # JSON progress lines parse and follow the protocol
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4] and all(e["epochs"] == 4 for e in epochs)
    assert all({"train_loss", "val_dice", "val_iou", "eta_s"} <= set(e) for e in epochs)
    assert [e["train_loss"] for e in epochs] == pytest.approx(losses)
    assert events[-1] == {"event": "done", "output": str(out)}
    # report + curves
    report = json.loads((out / "training_report.json").read_text(encoding="utf-8"))
    assert report["epochs_done"] == 4 and report["energy"]["carbon_footprint_kg_co2"] == pytest.approx(
        0.475 * report["energy"]["energy_kwh"])
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "carbon footprint" in (out / "training_report.md").read_text(encoding="utf-8")


def test_resume_continues_from_last_epoch_like_an_uninterrupted_run(tiny_dataset, tiny_train_config, tmp_path,
                                                                     monkeypatch):
    ref = train(tiny_train_config(tiny_dataset, tmp_path / "ref", epochs=3, val_fraction=0.0))
    out = tmp_path / "interrupted"
    original_epoch = loop_mod.TrainingProgress.epoch

    def crash_after_second(self, epoch, *args, **kwargs):
        original_epoch(self, epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(loop_mod.TrainingProgress, "epoch", crash_after_second)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(tiny_dataset, out, epochs=3, val_fraction=0.0))
    monkeypatch.setattr(loop_mod.TrainingProgress, "epoch", original_epoch)
    assert not (out / "model_card.json").exists()  # interrupted: no model, only checkpoints
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2
    n_steps = int(next(iter(ckpt["optimizer"]["state"].values()))["step"])
    assert n_steps == 2 * 3  # 2 epochs x (3 cases x 2 patches / batch 2)
    # without --resume the checkpoints are protected
    with pytest.raises(InputError, match="--resume"):
        train(tiny_train_config(tiny_dataset, out, epochs=3, val_fraction=0.0))
    resumed = train(tiny_train_config(tiny_dataset, out, epochs=3, val_fraction=0.0, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in ref.history])
    final = load_checkpoint(out / "checkpoints" / "last.pt")
    assert int(next(iter(final["optimizer"]["state"].values()))["step"]) == 3 * 3
    for (k, a), b in zip(ref.network.state_dict().items(), resumed.network.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    # a finished model is not overwritten without --force
    with pytest.raises(InputError, match="already holds a trained model"):
        train(tiny_train_config(tiny_dataset, out, epochs=3))


def test_resume_refuses_changed_settings(tiny_dataset, tiny_train_config, tmp_path):
    out = tmp_path / "m"
    train(tiny_train_config(tiny_dataset, out, epochs=1, val_fraction=0.0))
    with pytest.raises(InputError, match="patch_size"):
        train(tiny_train_config(tiny_dataset, out, epochs=2, val_fraction=0.0, resume=True, patch_size=(8, 8, 8)))


def test_resume_of_a_finished_training_keeps_its_model_files(tiny_dataset, tiny_train_config, tmp_path):
    out = tmp_path / "m"
    train(tiny_train_config(tiny_dataset, out, epochs=2, val_fraction=0.0))
    card_path = out / "model_card.json"
    card = json.loads(card_path.read_text())
    card["threshold"] = 0.123  # stands for a calibrated card
    card_path.write_text(json.dumps(card))
    weights_before = (out / "weights.pt").read_bytes()
    with pytest.raises(InputError, match="nothing is left to train"):
        train(tiny_train_config(tiny_dataset, out, epochs=2, val_fraction=0.0, resume=True))
    assert json.loads(card_path.read_text())["threshold"] == 0.123
    assert (out / "weights.pt").read_bytes() == weights_before
    # more epochs: the training goes on and replaces the model at its end
    resumed = train(tiny_train_config(tiny_dataset, out, epochs=3, val_fraction=0.0, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert json.loads(card_path.read_text()).get("threshold") != 0.123


def test_float16_cache_halves_the_images_and_warns_when_the_cache_will_not_fit(tiny_dataset, tiny_train_config,
                                                                               tmp_path, monkeypatch, caplog):
    from breastlesionseg.training.dataset import Dataset

    ds = Dataset(tiny_dataset)
    ids = ["case0", "case1", "case2"]
    full = loop_mod._load_cases(ds, ids, tiny_train_config(tiny_dataset, tmp_path / "a"), None, 0.0, 1.0)
    monkeypatch.setattr(loop_mod, "CACHE_PROJECTION_CASES", 1)
    monkeypatch.setattr(loop_mod, "available_memory_bytes", lambda: 1000)
    with caplog.at_level("WARNING", logger=loop_mod.__name__):
        half = loop_mod._load_cases(ds, ids, tiny_train_config(tiny_dataset, tmp_path / "b", cache_dtype="float16"),
                                    None, 0.0, 1.0)
    for cid in ids:
        assert half[cid].image.dtype == np.float16 and full[cid].image.dtype == np.float32
        assert half[cid].image.nbytes * 2 == full[cid].image.nbytes
        np.testing.assert_allclose(half[cid].image, full[cid].image, atol=2e-3 * np.abs(full[cid].image).max())
    assert "train on fewer cases" in caplog.text and "3 cases" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger=loop_mod.__name__):
        loop_mod._load_cases(ds, ids, tiny_train_config(tiny_dataset, tmp_path / "c"), None, 0.0, 1.0)
    assert "--cache-dtype float16" in caplog.text
    # a float16 training runs and its model loads
    result = train(tiny_train_config(tiny_dataset, tmp_path / "m", epochs=1, val_fraction=0.0, cache_dtype="float16"))
    assert np.isfinite(result.history[0]["train_loss"])
    with pytest.raises(InputError, match="cache_dtype"):
        tiny_train_config(tiny_dataset, tmp_path / "d", cache_dtype="int8")


def test_fine_tune_from_model_and_channel_mismatch(tiny_dataset, tiny_train_config, tmp_path):
    base = tmp_path / "base"
    train(tiny_train_config(tiny_dataset, base, epochs=1, val_fraction=0.0))
    net0, _ = load_model(base)
    tuned = train(tiny_train_config(tiny_dataset, tmp_path / "tuned", epochs=1, val_fraction=0.0,
                                    init_from=str(base), lr=1e-3))
    card = ModelCard.read(tmp_path / "tuned")
    assert card.extra["training"]["init_from"] == "base"
    # started from the base weights: close to them, but trained further
    diffs = [float((a - b).abs().max()) for a, b in zip(net0.state_dict().values(), tuned.network.state_dict().values())
             if a.dtype.is_floating_point]
    assert 0 < max(diffs) < 0.1
    with pytest.raises(InputError, match="channels"):
        train(tiny_train_config(tiny_dataset, tmp_path / "bad", epochs=1, init_from=str(base),
                                channels=("pre", "sub1")))


def test_train_rejects_missing_dataset(tmp_path, tiny_train_config):
    with pytest.raises(DatasetError, match="not a dataset"):
        train(tiny_train_config(tmp_path / "nothing", tmp_path / "out"))


@pytest.mark.gpu
def test_tiny_training_on_cuda_with_amp(tiny_dataset, tiny_train_config, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    result = train(tiny_train_config(tiny_dataset, tmp_path / "gpu", epochs=4, device="cuda", amp=True))
    assert result.report["amp"] is True and result.report["device"].startswith("cuda")
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.report["energy"]["gpu_energy_kwh"] > 0
    net, _ = load_model(tmp_path / "gpu")
    assert np.isfinite(sum(float(p.sum()) for p in net.parameters()))
