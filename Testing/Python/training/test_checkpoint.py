"""Checkpoints and weights load safely: clear errors that never suggest unsafe loading (issue 14 row 13)."""
from __future__ import annotations

import os

import pytest
import torch

from breastlesionseg.errors import InputError, ModelError
from breastlesionseg.training.checkpoint import read_checkpoint, safe_torch_load
from breastlesionseg.training.loop import CHECKPOINT_FORMAT, load_checkpoint


class _RunsCode:
    def __reduce__(self):
        return (os.getpid, ())


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "last.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "epoch": 3, "model": {"w": torch.arange(5.0)}}, good)
    evil = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": _RunsCode()}, evil)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:-200])
    other = tmp_path / "other.pt"
    torch.save({"format": "someone-else", "x": 1}, other)
    return good, evil, cut, other


def test_good_checkpoint_round_trips(files):
    state = load_checkpoint(files[0])
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.arange(5.0))


def test_code_carrying_checkpoint_is_refused_without_unsafe_advice(files):
    with pytest.raises(InputError) as err:
        load_checkpoint(files[1])
    text = str(err.value)
    assert str(files[1]) in text and "refusing to load it" in text and "--resume" in text
    assert "weights_only" not in text and "False" not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's advice is not chained either


@pytest.mark.parametrize(("index", "pattern"), [(2, "truncated or corrupt"), (3, "not a breastlesionseg training "
                                                                                "checkpoint")])
def test_bad_checkpoints_have_clear_messages(files, index, pattern):
    with pytest.raises(InputError, match=pattern) as err:
        read_checkpoint(files[index], CHECKPOINT_FORMAT)
    assert "weights_only" not in str(err.value)


def test_weights_errors_use_the_requested_type(files, tmp_path):
    with pytest.raises(ModelError, match="refusing to load it"):
        safe_torch_load(files[1], "weights", ModelError)
    with pytest.raises(ModelError, match="does not exist"):
        safe_torch_load(tmp_path / "none.pt", "weights", ModelError)


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import torch

    from breastlesionseg.errors import InputError
    from breastlesionseg.training import loop

    path = tmp_path / "last.pt"
    loop._save_checkpoint({"epoch": 3, "w": torch.ones(2)}, path)
    real_save = torch.save

    def failing_save(obj, f):  # torch.save on a full disk: a RuntimeError from its stream writer
        real_save({"epoch": 4}, f)
        raise RuntimeError("[enforce fail at inline_container.cc] PytorchStreamWriter failed writing file")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 0))
    with pytest.raises(InputError, match="no space left on the device while writing .*last.pt.*existing file is unchanged"):
        loop._save_checkpoint({"epoch": 4}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
