"""Lazy dependency installation decisions, devices and the model list (no Slicer needed)."""
from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from BreastLesionSegLib import dependencies as deps
from BreastLesionSegLib import devices, models

ROOT = Path(__file__).resolve().parents[3]


def test_pins_match_the_core_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pinned = set(pyproject["project"]["dependencies"]) | set(pyproject["project"]["optional-dependencies"]["fast"])
    for req in deps.REQUIREMENTS:
        assert req.pip_spec in pinned, f"{req.pip_spec} differs from pyproject.toml"


def test_one_pip_call_that_keeps_the_pytorch_extensions_torch():
    """Issue 15 bug 7: torch through the extension (>= 2.8, as MONAI needs), then ONE pip call whose constraint
    file pins the installed torch, so pip cannot replace it."""
    missing = deps.missing_requirements(find_spec=lambda name: None if name in ("torch", "monai", "scipy") else object())
    assert [r.import_name for r in missing] == ["torch", "monai", "scipy"]
    plan = deps.install_plan(missing)
    assert plan.torch_via_extension and plan.pip_specs == ["monai==1.6.1", "scipy>=1.11"]
    assert "PyTorch extension" in plan.message() and "monai==1.6.1" in plan.message()
    calls = []

    class TorchLogic:  # the PyTorch extension's installer: what it is asked for is what is checked
        def installTorch(self, askConfirmation, torchVersionRequirement):
            calls.append(("torch", askConfirmation, torchVersionRequirement))
            return object()

    def pip_install(args):
        constraint = Path(args[args.index("--constraint") + 1])
        calls.append(("pip", args[:args.index("--constraint")], constraint.read_text(encoding="utf-8").strip()))

    installed = deps.install(plan, confirm=lambda text: calls.append("asked") or True, pip_install=pip_install,
                             pytorch_utils_logic=TorchLogic, torch_version=lambda: "2.9.1+cu128")
    assert calls == ["asked", ("torch", False, ">=2.8"), ("pip", ["monai==1.6.1", "scipy>=1.11"], "torch==2.9.1+cu128")]
    assert installed == ["torch>=2.8", "monai==1.6.1", "scipy>=1.11"]


def test_torch_requirement_is_what_monai_needs():
    from importlib.metadata import requires

    monai_torch = [r for r in requires("monai") if r.startswith("torch") and ";" not in r]
    assert monai_torch == [f"torch{deps.TORCH_REQUIREMENT}.0"] or monai_torch == [f"torch{deps.TORCH_REQUIREMENT}"]


def test_optional_fast_runtime_gates_neither_the_panel_nor_the_self_test():
    """Issue 15 bug 7: without OpenVINO the panel works (slower backend) and the self-test runs."""
    only_fast_missing = lambda name: None if name == "openvino" else object()  # noqa: E731
    plan = deps.install_plan(deps.missing_requirements(find_spec=only_fast_missing))
    assert not plan.needed and plan.offered and "Optional" in plan.message()
    assert deps.self_test_skip_reason(find_spec=only_fast_missing) is None
    reason = deps.self_test_skip_reason(find_spec=lambda name: None if name == "monai" else object())
    assert reason is not None and "monai==1.6.1" in reason  # the ctest skips (with the reason), never fails


def test_install_refuses_without_confirmation_or_pytorch_extension():
    plan = deps.install_plan(deps.missing_requirements(find_spec=lambda name: None if name == "torch" else object()))
    pip_calls = []
    with pytest.raises(deps.DependencyError, match="declined"):
        deps.install(plan, confirm=lambda text: False, pip_install=pip_calls.append, pytorch_utils_logic=None)
    with pytest.raises(deps.DependencyError, match="Extensions Manager"):
        deps.install(plan, confirm=lambda text: True, pip_install=pip_calls.append, pytorch_utils_logic=None)
    assert pip_calls == []
    nothing = deps.install_plan([])
    assert not nothing.needed and deps.install(nothing, lambda t: 1 / 0, pip_calls.append, None) == []
    pip_only = deps.install_plan(deps.missing_requirements(find_spec=lambda name: None if name == "scipy" else object()))
    deps.install(pip_only, confirm=lambda text: True, pip_install=pip_calls.append, pytorch_utils_logic=None,
                 torch_version=lambda: None)
    assert pip_calls == [["scipy>=1.11"]]  # no torch installed: no constraint file


def test_gpu_names_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.gpu_names() == []
    assert "CPU" in devices.device_description([])
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert devices.gpu_names() == ["NVIDIA H100 80GB HBM3"]
    assert devices.device_description(["NVIDIA H100 80GB HBM3"]) == "GPU: cuda:0 NVIDIA H100 80GB HBM3"


def _card(folder: Path, model_id: str, demo: bool = False, channels=("pre", "post1", "sub1")):
    folder.mkdir(parents=True)
    (folder / "model_card.json").write_text(json.dumps({
        "model_id": model_id, "arch": "mm3dunet", "input_channels": list(channels), "demo": demo,
        "training_data": "20 phantom exams", "validation_metrics": {"dice": 0.83, "n_cases": 20},
        "limitations": ["small lesions without fat suppression: 4 of 9 found"] if demo else []}))


def test_model_list_search_order_and_card_summary(tmp_path, monkeypatch):
    monkeypatch.setenv(models.MODELS_ENV, str(tmp_path / "env"))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    _card(tmp_path / "user" / "m-a", "model-a", demo=True, channels=("pre", "post1", "post2", "sub2"))
    _card(tmp_path / "env" / "m-a-older", "model-a")
    _card(tmp_path / "env" / "m-b", "model-b")
    (tmp_path / "env" / "broken").mkdir()
    (tmp_path / "env" / "broken" / "model_card.json").write_text("{not json")
    found = {m.model_id: m for m in models.list_models([tmp_path / "user"])}
    assert found["model-a"].folder == (tmp_path / "user" / "m-a").resolve()  # user folder wins
    assert "model-b" in found
    assert found["model-a"].required_phases == 3
    summary = found["model-a"].summary()
    assert "DEMO" in summary and "20 phantom exams" in summary and "dice 0.830" in summary
    assert "Known limitations:\n- small lesions without fat suppression: 4 of 9 found" in summary
    assert found["model-b"].limitations == () and "Known limitations" not in found["model-b"].summary()
    assert models.find_model(str(tmp_path / "env" / "m-b")).model_id == "model-b"
    with pytest.raises(ValueError, match="not found"):
        models.find_model("nope", [tmp_path / "user"])


def test_search_path_matches_the_core_registry(tmp_path, monkeypatch):
    registry = pytest.importorskip("breastlesionseg.nn.registry")
    monkeypatch.setenv(models.MODELS_ENV, os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert models.core_model_search_path() == registry.model_search_path()
