"""Installed models for the panel's model selector, read from their ``model_card.json``.

Only the JSON cards are read here (no torch import in the Slicer process: inference and training
run out of process). The search path is the core's (``breastlesionseg.nn.model_paths.model_search_path``:
``$BREASTLESIONSEG_MODELS``, ``~/.breastlesionseg/models``, the repository's ``models/``), preceded by
the user's model folders from the panel and followed by the models shipped inside the extension
(``Resources/Models``). The panel stores the model id; the folder found for it is passed to the CLI, so
the child process loads exactly the model the user saw.

Each panel modality has its own models: DCE-MRI the 3D cards (``input_channels``), Ultrasound and
Mammography the 2D lesion cards (``"kind": "lesion2d"`` with their ``modality``, the cards of
``breastlesionseg.imaging2d.model_card2d``, read here as JSON with the same rules).
:func:`models_for_modality` lists one modality's.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# torch-free parts of the core: where models live, card file name, 2D card kind (defined once there)
from breastlesionseg.imaging2d.model_card2d import CARD_KIND as CARD_KIND_2D
from breastlesionseg.nn.model_paths import CARD_FILE, MODELS_ENV
from breastlesionseg.nn.model_paths import model_search_path as core_model_search_path

log = logging.getLogger(__name__)

#: panel modality -> the ``modality`` of a 2D card (breastlesionseg.imaging2d.model_card2d.MODALITIES)
CARD_MODALITY_2D = {"Ultrasound": "ultrasound", "Mammography": "mammography"}
MODALITY_3D = "DCE-MRI"  # settings.MODALITY_DCE_MRI (kept import-free of settings)
#: models shipped inside the installed extension (module folder)
EXTENSION_MODELS_DIR = Path(__file__).resolve().parent.parent / "Resources" / "Models"


def model_search_path(user_dirs: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """User folders first, then the core search path, then the extension's shipped models."""
    out: list[Path] = []
    for p in [Path(d).expanduser() for d in user_dirs] + core_model_search_path() + [EXTENSION_MODELS_DIR]:
        if p not in out:
            out.append(p)
    return out


@dataclass(frozen=True)
class ModelInfo:
    """What the panel shows about a model.

    Attributes:
        model_id: the card's id.
        folder: model folder (passed to the CLI).
        demo: demonstration model (e.g. phantom-trained).
        arch: network architecture.
        input_channels: channel names; the number of phases needed follows from them.
        training_data: what it was trained on.
        validation_metrics: e.g. {"dice": 0.83}.
        description: free text.
        threshold: the card's lesion probability threshold (calibrated with the model).
        min_lesion_volume_mm3: the card's minimum lesion volume in mm3.
        modality: the panel modality it segments ("DCE-MRI", "Ultrasound", "Mammography").
        limitations: the card's known limitations (measured; shown in the summary).
    """

    model_id: str
    folder: Path
    demo: bool
    arch: str
    input_channels: tuple[str, ...]
    training_data: str
    validation_metrics: dict
    description: str
    threshold: float = 0.5
    min_lesion_volume_mm3: float = 10.0
    modality: str = MODALITY_3D
    limitations: tuple[str, ...] = ()

    @property
    def required_phases(self) -> int:
        """Phases (pre + posts) the model needs: 1 + the highest post index in its channels."""
        highest = 0
        for name in self.input_channels:
            digits = "".join(ch for ch in name if ch.isdigit())
            if digits:
                highest = max(highest, int(digits))
        return highest + 1

    def summary(self) -> str:
        """Multi-line model card text for the panel."""
        lines = [f"{self.model_id} ({self.arch})" + ("  [DEMO model: not for clinical use]" if self.demo else "")]
        if self.training_data:
            lines.append(f"Trained on: {self.training_data}")
        if self.validation_metrics:
            shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in self.validation_metrics.items() if not isinstance(v, (dict, list)))
            lines.append(f"Validation: {shown}")
        if self.modality == MODALITY_3D:
            lines.append(f"Inputs: {', '.join(self.input_channels)} (needs {self.required_phases} phases)")
        else:
            lines.append(f"Input: one {self.modality.lower()} image")
        if self.limitations:
            lines.append("Known limitations:")
            lines.extend(f"- {text}" for text in self.limitations)
        if self.description:
            lines.append(self.description)
        lines.append(f"Folder: {self.folder}")
        return "\n".join(lines)


def read_model_info(folder: str | os.PathLike) -> ModelInfo:
    """ModelInfo of one model folder.

    Raises:
        ValueError: no readable card, or a card without model_id / input_channels (a 2D card without
            model_id or with an unknown modality).
    """
    folder = Path(folder)
    card = _read_card(folder)
    if card.get("kind") == CARD_KIND_2D:
        return _model_info_2d(folder, card)
    if not isinstance(card, dict) or not card.get("model_id") or not card.get("input_channels"):
        raise ValueError(f"model folder '{folder}': {CARD_FILE} lacks model_id or input_channels")
    return ModelInfo(
        model_id=str(card["model_id"]), folder=folder.resolve(), demo=bool(card.get("demo", False)),
        arch=str(card.get("arch", "")), input_channels=tuple(card["input_channels"]),
        training_data=str(card.get("training_data", "")), validation_metrics=dict(card.get("validation_metrics") or {}),
        description=str(card.get("description", "")),
        threshold=float(card.get("threshold", 0.5)),
        min_lesion_volume_mm3=float(card.get("min_lesion_volume_mm3", 10.0)),
        limitations=_limitations(card),
    )


def _limitations(card: dict) -> tuple[str, ...]:
    """The card's ``limitations`` texts (empty when it has none; the core validates the card when it runs)."""
    values = card.get("limitations")
    return tuple(str(v) for v in values if str(v).strip()) if isinstance(values, list) else ()


def _read_card(folder: Path) -> dict:
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"model folder '{folder}': cannot read {CARD_FILE} ({exc})") from None
    if not isinstance(card, dict):
        raise ValueError(f"model folder '{folder}': {CARD_FILE} is not a JSON object")
    return card


def _dice_figures(cv_metrics: dict) -> dict:
    """The card's Dice figures (top level and one level down, e.g. ``this_fold_test.dice``)."""
    out = {}
    for key, value in cv_metrics.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()
                        if k == "dice" and isinstance(v, (int, float)) and not isinstance(v, bool)})
        elif "dice" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def _model_info_2d(folder: Path, card: dict) -> ModelInfo:
    """ModelInfo of a 2D lesion card (``breastlesionseg.imaging2d.model_card2d.ModelCard2D``).

    A card is a demo model when it says ``"demo": true`` or its training data or id say "demo" (the
    CDD-CESM mammography card: "DEMO MODEL, SMALL DATA: 98 CDD-CESM mammography JPEGs ...").
    """
    by_card = {v: k for k, v in CARD_MODALITY_2D.items()}
    if not card.get("model_id") or card.get("modality") not in by_card:
        raise ValueError(f"model folder '{folder}': 2D {CARD_FILE} lacks model_id or has modality "
                         f"{card.get('modality')!r} (one of {tuple(by_card)})")
    training_data = str(card.get("training_data", ""))
    demo = bool(card.get("demo", False)) or bool(re.search(r"\bdemo\b", f"{training_data} {card['model_id']}", re.I))
    metrics = card.get("cv_metrics") if isinstance(card.get("cv_metrics"), dict) else {}
    return ModelInfo(
        model_id=str(card["model_id"]), folder=folder.resolve(), demo=demo, arch=str(card.get("arch", "")),
        input_channels=("image",), training_data=training_data, validation_metrics=_dice_figures(metrics),
        description=str(card.get("research_use_text", "")), threshold=float(card.get("threshold", 0.5)),
        min_lesion_volume_mm3=0.0, modality=by_card[card["modality"]], limitations=_limitations(card))


def apply_card_defaults(values, info: ModelInfo):
    """Select ``info``'s model by id in ``values`` with the threshold and minimum lesion volume of its card.

    ``values`` is the parameter-node wrapper or a SegmentationSettings. Each model's card carries the
    post-processing settings calibrated with it, so a model never runs with another model's threshold.
    The model is stored by id (never by this computer's folder), so a saved scene finds it on another
    computer or after an update. Returns ``values`` (modified in place).
    """
    values.model = info.model_id
    values.model_defaults_from = info.model_id
    values.threshold = float(info.threshold)
    values.min_lesion_volume_mm3 = float(info.min_lesion_volume_mm3)
    return values


def list_models(user_dirs: Sequence[str | os.PathLike] = ()) -> list[ModelInfo]:
    """Every valid DCE-MRI (3D) model in the search path; the first folder of each model id wins."""
    return models_for_modality(MODALITY_3D, user_dirs)


def models_for_modality(modality: str, user_dirs: Sequence[str | os.PathLike] = ()) -> list[ModelInfo]:
    """The valid models of one panel modality in the search path; the first folder of each model id wins.

    Args:
        modality: "DCE-MRI" (3D cards), "Ultrasound" or "Mammography" (2D lesion cards of that modality).
        user_dirs: the panel's model folders (searched first).

    Raises:
        ValueError: unknown modality.
    """
    if modality != MODALITY_3D and modality not in CARD_MODALITY_2D:
        raise ValueError(f"modality must be one of {(MODALITY_3D, *CARD_MODALITY_2D)}, got {modality!r}")
    found: dict[str, ModelInfo] = {}
    for root in model_search_path(user_dirs):
        if not root.is_dir():
            continue
        candidates = [root] if (root / CARD_FILE).is_file() else sorted(p for p in root.iterdir()
                                                                         if (p / CARD_FILE).is_file())
        for folder in candidates:
            try:
                info = read_model_info(folder)
            except ValueError as exc:
                log.warning("%s", exc)
                continue
            if info.modality == modality:
                found.setdefault(info.model_id, info)
    return list(found.values())


def model_ids_for_modality(modality: str, user_dirs: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Ids of the models the panel's model selector lists in ``modality`` (see :func:`models_for_modality`)."""
    return [info.model_id for info in models_for_modality(modality, user_dirs)]


def find_model(name_or_folder: str | os.PathLike, user_dirs: Sequence[str | os.PathLike] = (),
               modality: str = MODALITY_3D) -> ModelInfo:
    """The ``modality`` model with this id (or this folder).

    Raises:
        ValueError: not found (lists where it looked), or a folder holding another modality's model.
    """
    path = Path(name_or_folder).expanduser()
    if (path / CARD_FILE).is_file():
        info = read_model_info(path)
        if info.modality != modality:
            raise ValueError(f"model folder '{path}' holds a {info.modality} model ('{info.model_id}'), "
                             f"not a {modality} model")
        return info
    for info in models_for_modality(modality, user_dirs):
        if info.model_id == str(name_or_folder):
            return info
    where = ", ".join(str(p) for p in model_search_path(user_dirs))
    raise ValueError(f"{modality} model '{name_or_folder}' not found in {where}")
