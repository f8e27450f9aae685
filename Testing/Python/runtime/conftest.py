"""Shared fixtures of the runtime tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def load_benchmark():
    """``load(name)``: import ``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture()
def tiny_model_dir(tmp_path):
    """A saved MM-3DUNet model folder (3 channels, ACT head, window 16 x 24 x 24), no ONNX export yet."""
    from breastlesionseg.nn import ModelCard, save_model
    from breastlesionseg.nn.factory import build_network

    torch.manual_seed(3)
    net = build_network("mm3dunet", dict(in_channels=3, expansion=3, base_width=4, act=True))
    card = ModelCard(model_id="tiny-runtime", arch="mm3dunet", config=net.config.to_dict(),
                     input_channels=["pre", "post1", "sub1"], patch_size=(16, 24, 24), demo=True)
    return save_model(net, card, tmp_path / "tiny-runtime")
