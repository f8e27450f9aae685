"""The panel's settings as plain typed values, and the rules that depend only on them.

The panel keeps its state in Slicer's parameter node through the typed wrapper of
:mod:`.parameter_node` (``@parameterNodeWrapper``); the logic never reads the parameter node. It
takes the values as a :class:`SegmentationSettings` (made from the wrapper with :func:`settings_from`),
so every rule here runs and is tested without the Slicer application. Ranges, choices and defaults
are defined here once; the wrapper's annotations are built from them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastlesionseg.errors import InputError

#: imaging modalities of the panel (DCE-MRI is the 3D pipeline; the 2D modes use the single-image CLIs)
MODALITY_DCE_MRI = "DCE-MRI"
MODALITY_ULTRASOUND = "Ultrasound"
MODALITY_MAMMOGRAPHY = "Mammography"
MODALITIES = (MODALITY_DCE_MRI, MODALITY_ULTRASOUND, MODALITY_MAMMOGRAPHY)

#: how the DCE phases are given: separate volumes, or one 4D sequence (frame 0 = pre-contrast)
INPUT_VOLUMES = "Volumes"
INPUT_SEQUENCE = "4D sequence"
INPUT_MODES = (INPUT_VOLUMES, INPUT_SEQUENCE)

DEVICES = ("auto", "cpu", "cuda")

DEFAULT_MODEL_ID = "mm3dunet-phantom-demo"
#: the model each single-image command uses by default (``cmd_ultrasound`` / ``cmd_mammography`` DEFAULT_MODEL)
DEFAULT_2D_MODEL_IDS = {MODALITY_ULTRASOUND: "us-attunet-busbra", MODALITY_MAMMOGRAPHY: "hires-unet-cddcesm-demo"}

#: accepted ranges (inclusive); the wrapper's WithinRange annotations and :meth:`validate` use them
THRESHOLD_RANGE = (0.01, 0.99)
MIN_LESION_VOLUME_RANGE_MM3 = (0.0, 100000.0)
TRAINING_EPOCHS_RANGE = (1, 10000)

#: Slicer versions before this lack ``vtkSegment.SetTerminology`` / ``GetTerminology`` (used for every segment)
MINIMUM_SLICER_VERSION = (5, 10)


def default_dataset_folder() -> Path:
    """Where "Add to training set" writes unless the user chooses another folder (shown in the panel)."""
    return Path.home() / "BreastLesionSeg" / "TrainingSet"


def default_training_output_folder() -> Path:
    """Where "Train / fine-tune" writes new models: the user's model folder of the core search path."""
    return Path.home() / ".breastlesionseg" / "models"


@dataclass
class SegmentationSettings:
    """Typed panel values (the same names as the parameter-node wrapper's fields).

    Attributes:
        modality: one of :data:`MODALITIES`.
        input_mode: one of :data:`INPUT_MODES` (DCE-MRI only).
        model: DCE-MRI model id (the card's ``model_id``; never an install-specific folder).
        ultrasound_model / mammography_model: model id of that 2D mode ("" = the command's default,
            :data:`DEFAULT_2D_MODEL_IDS`).
        model_defaults_from: id of the model whose card set ``threshold`` and ``min_lesion_volume_mm3``
            ("" until a card was applied).
        device: one of :data:`DEVICES` or "cuda:N".
        breast_masking: restrict lesions to the breast region.
        threshold: probability threshold of the lesion map, in :data:`THRESHOLD_RANGE`.
        min_lesion_volume_mm3: components smaller than this (mm3) are removed.
        save_probability: also load the lesion probability map.
        save_heatmap: also load the heat map.
        user_model_folders: extra folders searched for models.
        dataset_folder: training dataset folder (absolute).
        training_output_folder: where new models are written (absolute).
        training_epochs: epochs of a training run.
        fine_tune: start training from the selected model.
        corrected_by: name recorded in the training manifest.
    """

    modality: str = MODALITY_DCE_MRI
    input_mode: str = INPUT_VOLUMES
    model: str = DEFAULT_MODEL_ID
    model_defaults_from: str = ""
    ultrasound_model: str = ""
    mammography_model: str = ""
    device: str = "auto"
    breast_masking: bool = True
    threshold: float = 0.5
    min_lesion_volume_mm3: float = 20.0
    save_probability: bool = False
    save_heatmap: bool = False
    user_model_folders: list[str] = field(default_factory=list)
    dataset_folder: Path = field(default_factory=default_dataset_folder)
    training_output_folder: Path = field(default_factory=default_training_output_folder)
    training_epochs: int = 20
    fine_tune: bool = True
    corrected_by: str = ""

    def validate(self) -> "SegmentationSettings":
        """Check choices and ranges; raises InputError naming the field and value."""
        _check_choice("modality", self.modality, MODALITIES)
        _check_choice("input_mode", self.input_mode, INPUT_MODES)
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        _check_range("threshold", self.threshold, THRESHOLD_RANGE)
        _check_range("min_lesion_volume_mm3", self.min_lesion_volume_mm3, MIN_LESION_VOLUME_RANGE_MM3)
        _check_range("training_epochs", self.training_epochs, TRAINING_EPOCHS_RANGE)
        if not self.model:
            raise InputError("model must name an installed model (its id)")
        return self


def model_field(modality: str) -> str:
    """The settings field holding the selected model of ``modality`` ("model" for DCE-MRI)."""
    _check_choice("modality", modality, MODALITIES)
    return {MODALITY_ULTRASOUND: "ultrasound_model", MODALITY_MAMMOGRAPHY: "mammography_model"}.get(modality, "model")


def selected_model_id(values: Any, modality: str | None = None) -> str:
    """The model id selected for ``modality`` (default: ``values.modality``); a 2D mode without a choice
    yet selects its command's default model."""
    modality = modality or values.modality
    chosen = str(getattr(values, model_field(modality)) or "")
    return chosen or DEFAULT_2D_MODEL_IDS.get(modality, DEFAULT_MODEL_ID)


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise InputError(f"{name} must be one of {choices}, got {value!r}")


def _check_range(name: str, value: float, bounds: tuple) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise InputError(f"{name} must be within {bounds[0]}..{bounds[1]}, got {value}")


def settings_from(values: Any) -> SegmentationSettings:
    """Plain, validated settings from any object with the fields' attributes (the parameter-node wrapper).

    Raises:
        InputError: a value is out of range or not one of the choices.
    """
    kwargs = {}
    for f in dataclasses.fields(SegmentationSettings):
        value = getattr(values, f.name)
        if f.name == "user_model_folders":
            value = [str(v) for v in value]
        elif f.name in ("dataset_folder", "training_output_folder"):
            value = Path(str(value)) if str(value) else Path()
        kwargs[f.name] = value
    return SegmentationSettings(**kwargs).validate()


def chosen_folder(value: str | Path | None, what: str) -> Path:
    """An absolute folder the user chose, or InputError.

    A directory button that was never set reads back "" or "." (``Path("")`` is ``Path(".")``); a relative
    path would be resolved against Slicer's working directory, so both are refused instead of writing
    patient images wherever Slicer was started.
    """
    text = str(value or "").strip()
    if text in ("", "."):
        raise InputError(f"no {what} chosen: choose a folder in the panel")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise InputError(f"{what} '{text}' is a relative path; choose an absolute folder")
    return path


def dataset_is_ready(value: str | Path | None) -> bool:
    """True when ``value`` is a chosen training dataset folder that holds at least one case (Train enabled)."""
    try:
        folder = chosen_folder(value, "training dataset folder")
    except InputError:
        return False
    cases = folder / "cases"
    return (folder / "dataset.json").is_file() and cases.is_dir() and any(p.is_dir() for p in cases.iterdir())


def slicer_version_error(major: int, minor: int) -> str | None:
    """The message shown when this Slicer is too old for the module, or None when it is recent enough."""
    if (int(major), int(minor)) >= MINIMUM_SLICER_VERSION:
        return None
    need = ".".join(str(v) for v in MINIMUM_SLICER_VERSION)
    return (f"BreastLesionSeg needs 3D Slicer {need} or newer (this is {major}.{minor}): segment terminology "
            f"(vtkSegment.SetTerminology) is only available from Slicer {need}. Install a newer Slicer.")
