"""Distributed training on CPU: torchrun with 2 processes, gloo backend, DistributedDataParallel."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from breastlesionseg.nn import load_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_process_gloo_training(tiny_dataset, tmp_path):
    out = tmp_path / "ddp_model"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
           f"--master-port={_free_port()}", "--module", "breastlesionseg.cli.main",
           "train", "--data", str(tiny_dataset), "--output", str(out), "--device", "cpu", "--epochs", "4",
           "--patch", "8,16,16", "--batch-size", "2", "--patches-per-case", "4", "--base-width", "4", "--levels", "2",
           "--expansion", "2", "--lr", "1e-2", "--spacing", "1.5,1.5,2.0", "--val-fraction", "0.34", "--threads", "1",
           "--progress", "json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]  # rank 0 alone reports
    assert events[-1]["event"] == "done"
    report = json.loads((out / "training_report.json").read_text(encoding="utf-8"))
    assert report["world_size"] == 2
    assert report["replica_max_weight_diff"] == 0.0  # both ranks end with identical weights
    losses = [h["train_loss"] for h in report["history"]]
    assert losses[-1] < losses[0], losses
    net, card = load_model(out)
    assert card.extra["training"]["n_train_cases"] == 2
