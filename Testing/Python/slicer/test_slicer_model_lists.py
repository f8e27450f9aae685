"""The model selector lists the models of the selected modality: MRI models in DCE-MRI mode, the 2D ultrasound
models in Ultrasound mode, the 2D mammography models in Mammography mode; each mode keeps its own choice and
Apply runs the model chosen for that mode."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.models import find_model, model_ids_for_modality, models_for_modality
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.settings import (MODALITY_DCE_MRI, MODALITY_MAMMOGRAPHY, MODALITY_ULTRASOUND,
                                         settings_from)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = {MODALITY_DCE_MRI: "mm3dunet-phantom-demo", MODALITY_ULTRASOUND: "us-attunet-busbra",
           MODALITY_MAMMOGRAPHY: "hires-unet-cddcesm-demo"}


@pytest.fixture
def isolated_search_path(monkeypatch, tmp_path):
    """The search path without the user's own ~/.breastlesionseg/models (the repository's models/ stays)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BREASTLESIONSEG_MODELS", raising=False)


@pytest.fixture
def user_models(tmp_path, tiny_model_dir):
    """A user model folder with an MRI model and a second mammography model (a copy of the demo's card)."""
    folder = tmp_path / "my_models"
    shutil.copytree(tiny_model_dir, folder / tiny_model_dir.name)
    card = json.loads((ROOT / "models" / SHIPPED[MODALITY_MAMMOGRAPHY] / "model_card.json").read_text(encoding="utf-8"))
    (folder / "mg-second").mkdir()
    (folder / "mg-second" / "model_card.json").write_text(json.dumps(dict(card, model_id="mg-second")), encoding="utf-8")
    return folder


def test_each_mode_lists_only_its_models(isolated_search_path, user_models):
    for modality, model_id in SHIPPED.items():
        if not (ROOT / "models" / model_id / "model_card.json").is_file():
            pytest.fail(f"shipped model {model_id} missing")
    assert model_ids_for_modality(MODALITY_DCE_MRI) == [SHIPPED[MODALITY_DCE_MRI]]
    assert model_ids_for_modality(MODALITY_ULTRASOUND) == [SHIPPED[MODALITY_ULTRASOUND]]
    assert model_ids_for_modality(MODALITY_MAMMOGRAPHY) == [SHIPPED[MODALITY_MAMMOGRAPHY]]
    mine = [str(user_models)]
    assert model_ids_for_modality(MODALITY_DCE_MRI, mine) == ["slicer-test-tiny", SHIPPED[MODALITY_DCE_MRI]]
    assert model_ids_for_modality(MODALITY_ULTRASOUND, mine) == [SHIPPED[MODALITY_ULTRASOUND]]
    assert model_ids_for_modality(MODALITY_MAMMOGRAPHY, mine) == ["mg-second", SHIPPED[MODALITY_MAMMOGRAPHY]]
    (mammo,) = [m for m in models_for_modality(MODALITY_MAMMOGRAPHY) if m.model_id == SHIPPED[MODALITY_MAMMOGRAPHY]]
    assert mammo.demo and "CDD-CESM" in mammo.training_data and mammo.modality == MODALITY_MAMMOGRAPHY
    with pytest.raises(ValueError, match="modality must be one of"):
        model_ids_for_modality("CT")
    with pytest.raises(ValueError, match="holds a Mammography model"):
        find_model(ROOT / "models" / SHIPPED[MODALITY_MAMMOGRAPHY], modality=MODALITY_ULTRASOUND)


def test_the_lists_agree_with_the_core_registries(isolated_search_path):
    """Same ids as the core's ``list_models_2d(modality)`` and ``nn.registry.list_models()`` (MRI only)."""
    pytest.importorskip("torch")
    from breastlesionseg.imaging2d.model_card2d import list_models_2d
    from breastlesionseg.nn.registry import list_models

    assert model_ids_for_modality(MODALITY_DCE_MRI) == [c.model_id for c in list_models()]
    assert model_ids_for_modality(MODALITY_ULTRASOUND) == [c.model_id for c in list_models_2d("ultrasound")]
    assert model_ids_for_modality(MODALITY_MAMMOGRAPHY) == [c.model_id for c in list_models_2d("mammography")]


def test_the_panel_selector_follows_the_mode_and_keeps_each_choice(ctx, isolated_search_path, user_models,
                                                                     panel_values):
    actions = PanelActions(SceneLogic(ctx))
    values = panel_values(user_model_folders=[str(user_models)])
    shown = {}
    for modality in SHIPPED:
        values.modality = modality
        _, entries, index = actions.state(values)
        shown[modality] = ([model_id for _, model_id in entries], entries[index][1])
    assert shown[MODALITY_DCE_MRI] == (["slicer-test-tiny", "mm3dunet-phantom-demo"], "mm3dunet-phantom-demo")
    assert shown[MODALITY_ULTRASOUND] == (["us-attunet-busbra"], "us-attunet-busbra")  # the command's default
    assert shown[MODALITY_MAMMOGRAPHY] == (["mg-second", "hires-unet-cddcesm-demo"], "hires-unet-cddcesm-demo")
    actions.choose_model(values, "mg-second")  # picked in Mammography mode
    state, entries, index = actions.state(values)
    assert entries[index][1] == "mg-second" and state.apply and "mg-second" in state.model_card
    assert actions.logic.model_info(settings_from(values)).folder == (user_models / "mg-second").resolve()
    values.modality = MODALITY_DCE_MRI  # the DCE-MRI choice and its card defaults are untouched
    _, entries, index = actions.state(values)
    assert values.model == "mm3dunet-phantom-demo" and entries[index][1] == "mm3dunet-phantom-demo"
    values.modality = MODALITY_MAMMOGRAPHY
    _, entries, index = actions.state(values)
    assert entries[index][1] == "mg-second"
    values.mammography_model = "removed-model"  # e.g. a scene saved on another computer
    state, _, index = actions.state(values)
    assert index == -1 and not state.apply and "not installed" in state.status


def test_the_shipped_cards_known_limitations_show_in_the_panel_summary(isolated_search_path):
    for modality in (MODALITY_DCE_MRI, MODALITY_ULTRASOUND, MODALITY_MAMMOGRAPHY):
        card = json.loads((ROOT / "models" / SHIPPED[modality] / "model_card.json").read_text(encoding="utf-8"))
        info = find_model(SHIPPED[modality], modality=modality)
        assert card["limitations"] and info.limitations == tuple(card["limitations"])
        assert "Known limitations:\n- " + card["limitations"][0] in info.summary()
