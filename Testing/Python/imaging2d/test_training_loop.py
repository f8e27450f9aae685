"""Resumable 2D training loop: a run split in two parts equals the epochs of one run; no silent overwrite."""
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
    cosine_learning_rate,
    run_training,
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
