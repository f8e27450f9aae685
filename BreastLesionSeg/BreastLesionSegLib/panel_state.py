"""What the panel shows and enables, decided from plain values (the widget only applies it).

Kept out of the widget so that each rule is tested: which buttons are enabled, which input rows are
visible for the modality, the order of the post-contrast list, and the model selector's entries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from typing import Callable

from .input_assignment import InputAssignment, VolumeCandidate
from .models import ModelInfo
from .settings import INPUT_SEQUENCE, MODALITY_DCE_MRI, MODALITY_ULTRASOUND, dataset_is_ready


#: .ui widgets shown only for DCE-MRI, and only for the single-image modalities
DCE_INPUT_WIDGETS = ("inputModeLabel", "inputModeComboBox", "preVolumeLabel", "preVolumeSelector", "postVolumesLabel",
                     "postVolumesListWidget", "sequenceLabel", "sequenceSelector", "autoAssignButton",
                     "assignmentNotesLabel")
IMAGE_2D_WIDGETS = ("image2dLabel", "image2dSelector")
#: options of the DCE-MRI pipeline only (the single-image commands take their thresholds from the model card)
DCE_OPTION_WIDGETS = ("thresholdLabel", "thresholdSliderWidget", "minLesionVolumeLabel", "minLesionVolumeSpinBox",
                      "breastMaskingCheckBox", "probabilityCheckBox")
RESULT_ACTION_BUTTONS = ("editSegmentsButton", "updateMetricsButton", "jumpToLesionButton")
#: modalities whose corrected results "Add to training set" exports (ultrasound: BUS-BRA-like pairs)
TRAINABLE_MODALITIES = (MODALITY_DCE_MRI, MODALITY_ULTRASOUND)


@dataclass(frozen=True)
class PanelState:
    """Enabled / visible flags of the panel's controls.

    Attributes:
        show_dce_inputs: pre/post/sequence rows and Auto-assign (DCE-MRI).
        use_sequence: the sequence row is enabled instead of pre/post volumes.
        show_image_2d: the single-image row (ultrasound, mammography).
        apply: Apply is enabled.
        cancel: Cancel is enabled.
        result_actions: Edit segments / Update metrics / Centre on lesion.
        add_to_training: Add to training set (DCE-MRI and ultrasound results).
        train: Train is enabled (a chosen dataset with at least one case, no training running).
        cancel_training: Stop training is enabled.
        status: a reason shown when Apply is disabled ("" otherwise).
        model_card: the selected model's card text (or why it is missing).
    """

    show_dce_inputs: bool
    use_sequence: bool
    show_image_2d: bool
    apply: bool
    cancel: bool
    result_actions: bool
    add_to_training: bool
    train: bool
    cancel_training: bool
    status: str = ""
    model_card: str = ""

    def visible(self) -> dict[str, bool]:
        """.ui widget name -> shown."""
        return {**{n: self.show_dce_inputs for n in DCE_INPUT_WIDGETS + DCE_OPTION_WIDGETS},
                **{n: self.show_image_2d for n in IMAGE_2D_WIDGETS}}

    def enabled(self) -> dict[str, bool]:
        """.ui widget name -> enabled."""
        return {"preVolumeSelector": not self.use_sequence, "postVolumesListWidget": not self.use_sequence,
                "autoAssignButton": not self.use_sequence, "sequenceSelector": self.use_sequence,
                "applyButton": self.apply, "cancelButton": self.cancel, "trainButton": self.train,
                "cancelTrainingButton": self.cancel_training, "addToTrainingButton": self.add_to_training,
                **{n: self.result_actions for n in RESULT_ACTION_BUTTONS}}


def panel_state(modality: str, input_mode: str, model_found: bool, have_result: bool, dataset_folder: object,
                segmenting: bool, training: bool, modality_unavailable: str | None = None,
                model_card: str = "") -> PanelState:
    """The panel's enabled / visible controls.

    Args:
        modality: the selected modality.
        input_mode: the DCE input mode.
        model_found: the selected model id is installed.
        have_result: a result segmentation is selected.
        dataset_folder: the training dataset folder value (as the directory button reads it).
        segmenting: a segmentation run is in progress.
        training: a training run is in progress.
        modality_unavailable: why the modality cannot run here (None when it can).
        model_card: the selected model's card text.
    """
    dce = modality == MODALITY_DCE_MRI
    status = modality_unavailable or ("" if model_found else "the selected model is not installed: add its folder")
    return PanelState(
        show_dce_inputs=dce, use_sequence=dce and input_mode == INPUT_SEQUENCE, show_image_2d=not dce,
        apply=not segmenting and not status, cancel=segmenting,
        result_actions=have_result and not segmenting,
        add_to_training=modality in TRAINABLE_MODALITIES and have_result and not segmenting,
        train=dce and not training and dataset_is_ready(dataset_folder), cancel_training=training, status=status,
        model_card=model_card if model_found else status)


def post_list_order(candidates: Sequence[VolumeCandidate], selected_ids: Sequence[str],
                    pre_id: str | None) -> list[tuple[str, str, bool]]:
    """(node id, name, checked) rows of the post-contrast list: the selected ones first in their order,
    then the other candidates; the pre-contrast volume is not listed."""
    by_id = {c.node_id: c for c in candidates}
    rows = [(i, by_id[i].name, True) for i in selected_ids if i in by_id and i != pre_id]
    rows += [(c.node_id, c.name, False) for c in candidates if c.node_id not in selected_ids and c.node_id != pre_id]
    return rows


def model_choices(models: Sequence[ModelInfo], selected_id: str) -> tuple[list[tuple[str, str]], int]:
    """((label, model id) entries of the model selector, index of ``selected_id`` or -1)."""
    entries = [(m.model_id + (" [demo]" if m.demo else ""), m.model_id) for m in models]
    index = next((k for k, (_, model_id) in enumerate(entries) if model_id == selected_id), -1)
    return entries, index


def assignment_notes(assignment: InputAssignment, name_of: Callable[[str], str]) -> str:
    """The text under Auto-assign: how the inputs were chosen and which volumes were left out, and why."""
    lines = list(assignment.notes)
    if assignment.excluded:
        lines.append("Left out: " + "; ".join(f"{name_of(i)}: {why}" for i, why in assignment.excluded.items()))
    return "\n".join(lines)
