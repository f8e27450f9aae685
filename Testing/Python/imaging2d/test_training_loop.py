"""Resumable 2D training loop: a run split in two parts equals the epochs of one run; no silent overwrite; a run
moves between devices (CUDA part skipped without a GPU)."""
from __future__ import annotations

import json

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.imaging2d.training_loop import (
    BEST_WEIGHTS,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    TrainLoopConfig,
    check_resume_settings,
    cosine_learning_rate,
    run_training,
    to_device,
)


def _problem():
    torch.manual_seed(3)
    x = torch.randn(24, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = torch.nn.Linear(3, 1)

    def batches(epoch):
        return [(x[i:i + 8], y[i:i + 8]) for i in range(0, 24, 8)]

    def loss(net, batch):
        return torch.nn.functional.mse_loss(net(batch[0])[:, 0], batch[1])

    def validate(net):
        return {"score": -float(loss(net, (x, y)))}

    return model, batches, loss, validate


def test_resumed_run_continues_and_stops_at_max_epochs(tmp_path):
    model, batches, loss, validate = _problem()
    first = run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=2, bf16=False, learning_rate=0.05))
    assert [h["epoch"] for h in first] == [1, 2]
    resumed_model, *_ = _problem()
    history = run_training(resumed_model, batches, loss, validate, tmp_path,
                           TrainLoopConfig(max_epochs=4, bf16=False, learning_rate=0.05), resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["val_score"] > history[0]["val_score"]  # it learns
    assert (tmp_path / BEST_WEIGHTS).is_file()
    assert len(json.loads((tmp_path / HISTORY_FILE).read_text(encoding="utf-8"))) == 4
    assert torch.load(tmp_path / LAST_CHECKPOINT, weights_only=True)["finished"]
    again = run_training(resumed_model, batches, loss, validate, tmp_path,
                         TrainLoopConfig(max_epochs=4, bf16=False), resume=True)
    assert len(again) == 4  # a finished run does nothing more


def test_resume_with_other_run_settings_is_refused_except_epochs_patience_and_device(tmp_path):
    model, batches, loss, validate = _problem()
    settings = {"width": 8, "loop": {"max_epochs": 1, "patience_epochs": 5, "bf16": False}, "sizes": (3, 5)}
    run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=1, bf16=False),
                 run_settings=settings)
    before = (tmp_path / LAST_CHECKPOINT).read_bytes()
    other = {**settings, "width": 16, "sizes": (3, 7)}
    with pytest.raises(InputError, match=r"other settings for \['sizes', 'width'\]"):
        check_resume_settings(tmp_path, other)
    with pytest.raises(InputError, match=r"\['width'\]"):
        run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=2, bf16=False), resume=True,
                     run_settings={**settings, "width": 16})
    assert (tmp_path / LAST_CHECKPOINT).read_bytes() == before  # nothing rewritten
    longer = {**settings, "loop": {"max_epochs": 2, "patience_epochs": 9, "bf16": True}}
    check_resume_settings(tmp_path, longer)  # more epochs, patience, another device: allowed
    history = run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=2, bf16=False),
                           resume=True, run_settings=longer)
    assert [h["epoch"] for h in history] == [1, 2]
    check_resume_settings(tmp_path / "empty", other)  # no checkpoint: nothing to compare


def test_existing_checkpoint_without_resume_is_an_error(tmp_path):
    model, batches, loss, validate = _problem()
    run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=1, bf16=False))
    with pytest.raises(InputError, match="--resume"):
        run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=2, bf16=False))


def test_cosine_learning_rate_ends_at_the_minimum():
    config = TrainLoopConfig(max_epochs=5, learning_rate=1e-3, min_learning_rate_fraction=0.1)
    rates = [cosine_learning_rate(e, config) for e in range(1, 6)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-4)
    assert rates[2] == pytest.approx(0.55e-3)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_to_device_keeps_the_structure_of_a_batch():
    batch = {"image": torch.ones(2, 1, 3, 3), "pair": (torch.zeros(2), [torch.ones(1), "name"]), "n": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert set(moved) == {"image", "pair", "n"} and moved["n"] == 3
    assert isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list) and moved["pair"][1][1] == "name"
    assert torch.equal(moved["image"], batch["image"])
    from breastlesionseg.nn.multitask_output import MultiTaskOutput  # a network output: a named tuple of tensors

    output = MultiTaskOutput(torch.ones(1, 1, 3, 3), torch.zeros(1), torch.ones(1))
    moved_output = to_device(output, torch.device("cpu"))
    assert isinstance(moved_output, MultiTaskOutput) and torch.equal(moved_output.seg_logits, output.seg_logits)


def test_an_unknown_device_is_refused_before_training(tmp_path):
    model, batches, loss, validate = _problem()
    with pytest.raises(InputError, match="--device 'npu'"):
        run_training(model, batches, loss, validate, tmp_path, TrainLoopConfig(max_epochs=1, bf16=False), device="npu")
    assert not (tmp_path / LAST_CHECKPOINT).exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_run_trained_on_cuda_resumes_on_the_cpu(tmp_path):
    model, batches, loss, validate = _problem()
    seen = []

    def validate_on_cpu(net):  # a caller's validation code: CPU tensors in, CPU tensors out
        out = net(torch.ones(1, 3))
        seen.append(out.device.type)
        return validate(net)

    first = run_training(model, batches, loss, validate_on_cpu, tmp_path,
                         TrainLoopConfig(max_epochs=2, bf16=True, learning_rate=0.05), device="cuda")
    assert seen == ["cpu", "cpu"] and next(model.parameters()).device.type == "cpu"
    checkpoint = torch.load(tmp_path / LAST_CHECKPOINT, weights_only=True)
    assert all(v.device.type == "cpu" for v in checkpoint["model"].values())
    resumed, *_ = _problem()
    history = run_training(resumed, batches, loss, validate, tmp_path,
                           TrainLoopConfig(max_epochs=4, bf16=False, learning_rate=0.05), resume=True, device="cpu")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and history[-1]["val_score"] > first[0]["val_score"]
