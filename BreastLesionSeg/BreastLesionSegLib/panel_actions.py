"""What each panel button does, on the panel's values (the parameter-node wrapper) and a SceneLogic.

The widget connects buttons and timers to these methods and shows what they return; everything else
(which phases, which settings, the background runs, which result nodes the panel remembers, what the
status line says) happens here, so the tests drive the panel's flow exactly as the widget does. The
values object is the ``@parameterNodeWrapper`` instance in Slicer; any object with the same attributes
(:class:`~.settings.SegmentationSettings` fields, ``pre_volume``, ``post_volumes``, ``sequence``, and
``result`` with ``segmentation``, ``table``, ``chart``, ``probability``, ``heatmap``) works.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastlesionseg.errors import BreastLesionSegError

from .background_runs import BackgroundRuns, run_outcome
from .input_assignment import InputAssignment
from .logic import ResultNodes, SceneLogic, result_summary
from .models import ModelInfo, models_for_modality
from .panel_state import PanelState, assignment_notes, model_choices, panel_state, post_list_order
from .phases import PhaseSelection, volume_candidates
from .settings import MODALITY_DCE_MRI, MODALITY_ULTRASOUND, model_field, selected_model_id, settings_from

log = logging.getLogger(__name__)

#: the result nodes the panel remembers (fields of the wrapper's ``result`` pack)
RESULT_FIELDS = ("segmentation", "table", "chart", "probability", "heatmap")


@dataclass
class PollOutcome:
    """What one timer tick produced for the panel.

    Attributes:
        log_lines: lines for the log box.
        segmentation_fraction / training_fraction: progress (0..1) of the running jobs, None when idle.
        new_epoch: an epoch ended (redraw the training curves).
        status: new text of the segmentation status line ("" = unchanged).
        training_status: new text of the training status line ("" = unchanged).
        shown: (result, selection) to show in the views after a successful segmentation.
        error: an error to show in a dialog ("" = none).
        finished: a run ended (refresh the panel; stop the timer when nothing runs).
    """

    log_lines: list[str] = field(default_factory=list)
    segmentation_fraction: float | None = None
    training_fraction: float | None = None
    new_epoch: bool = False
    status: str = ""
    training_status: str = ""
    shown: tuple[ResultNodes, PhaseSelection] | None = None
    error: str = ""
    finished: bool = False


class PanelActions:
    """The panel's actions.

    Args:
        logic: the scene logic (Slicer's scene in the application, a standalone scene in tests).
    """

    def __init__(self, logic: SceneLogic) -> None:
        self.logic = logic
        self.runs = BackgroundRuns()
        self._replace: Any = None

    # -- what the panel shows ------------------------------------------------------------------
    def state(self, values: Any) -> tuple[PanelState, list[tuple[str, str]], int]:
        """(enabled/visible state, model selector entries, selected entry) for the current values.

        The selector lists the models of the selected modality (DCE-MRI: the 3D models; Ultrasound /
        Mammography: the 2D models of that modality). A newly chosen DCE-MRI model first brings its
        card's threshold and minimum volume (once per choice).
        """
        self.logic.sync_model_defaults(values)
        models = models_for_modality(values.modality, [str(f) for f in values.user_model_folders])
        entries, index = model_choices(models, selected_model_id(values))
        state = panel_state(values.modality, values.input_mode, index >= 0, values.result.segmentation is not None,
                            values.dataset_folder, self.runs.segmentation is not None, self.runs.training is not None,
                            self.logic.modality_unavailable(values.modality),
                            models[index].summary() if index >= 0 else "")
        return state, entries, index

    def choose_model(self, values: Any, model_id: str) -> None:
        """The user picked ``model_id`` in the selector: it becomes the model of the selected modality."""
        setattr(values, model_field(values.modality), model_id or "")

    def post_list_rows(self, values: Any) -> list[tuple[str, str, bool]]:
        """(node id, name, checked) rows of the post-contrast list."""
        return post_list_order(volume_candidates(self.logic.ctx.scene), [n.GetID() for n in values.post_volumes if n],
                               values.pre_volume.GetID() if values.pre_volume else None)

    # -- inputs --------------------------------------------------------------------------------
    def auto_assign(self, values: Any, dicom_database: Any = None) -> str:
        """Set pre / post volumes from the scene's volumes; returns the notes shown under Auto-assign."""
        assignment: InputAssignment = self.logic.propose_inputs(dicom_database)
        values.pre_volume, values.post_volumes = self.logic.assigned_nodes(assignment)
        scene = self.logic.ctx.scene
        return assignment_notes(assignment, lambda node_id: scene.GetNodeByID(node_id).GetName())

    def selection(self, values: Any) -> PhaseSelection:
        """The phases the values select (a 2D modality: the image)."""
        if values.modality != MODALITY_DCE_MRI:
            return self.logic.select_image(values.image_2d)
        return self.logic.select_phases(values.input_mode, values.pre_volume, list(values.post_volumes), values.sequence)

    # -- segmentation --------------------------------------------------------------------------
    def apply(self, values: Any, replace: Any = None) -> None:
        """Start segmenting the selected phases in the background (``replace``: a confirmed result to overwrite)."""
        settings = settings_from(values)
        start = self.logic.start_segmentation if settings.modality == MODALITY_DCE_MRI else self.logic.start_image_segmentation
        job = start(self.selection(values), settings)
        self.runs.start_segmentation(job)
        self._replace = replace

    def poll(self, values: Any) -> PollOutcome:
        """Collect the background runs' output; import a finished segmentation, register a trained model."""
        report = self.runs.poll()
        out = PollOutcome(report.log_lines, report.segmentation_fraction, report.training_fraction, report.new_epoch)
        if report.segmentation_done is not None:
            self._finish_segmentation(values, report.segmentation_done, out)
        if report.training_done is not None:
            self._finish_training(values, *report.training_done, out)
        out.finished = report.segmentation_done is not None or report.training_done is not None
        return out

    def _finish_segmentation(self, values: Any, job: Any, out: PollOutcome) -> None:
        out.status = run_outcome(job.run)
        replace, self._replace = self._replace, None
        if job.run.state == "cancelled":
            return
        try:
            result = self.logic.finish_segmentation(job, replace, confirm_replace=replace is not None)
        except (BreastLesionSegError, OSError, RuntimeError) as exc:  # shown to the user; the scene keeps its nodes
            out.error = str(exc)
            return
        self.remember(values, result)
        out.status, out.shown = result_summary(result.metrics), (result, job.selection)

    def _finish_training(self, values: Any, run: Any, output: Path, out: PollOutcome) -> None:
        out.training_status = run_outcome(run)
        if run.state != "succeeded":
            out.error = out.error or (run.error_message if run.state == "failed" else "")
            return
        try:
            info: ModelInfo = self.logic.register_model(values, output)
        except BreastLesionSegError as exc:
            out.error = f"training finished but the model could not be registered: {exc}"
            return
        out.training_status = f"New model '{info.model_id}' registered and selected."

    def remember(self, values: Any, result: ResultNodes) -> None:
        """Keep the result nodes in the values (saved with the scene as node references)."""
        for name in RESULT_FIELDS:
            node = result.plot.chart if name == "chart" and result.plot is not None else getattr(result, name, None)
            setattr(values.result, name, node)

    def current_result(self, values: Any) -> ResultNodes:
        """The result nodes of the selected segmentation."""
        return self.logic.result_for_segmentation(values.result.segmentation)

    def update_metrics(self, values: Any) -> tuple[ResultNodes, PhaseSelection]:
        """Recompute the table and curves from the edited segments; returns (result, selection) to show."""
        selection = self.selection(values)
        result = self.logic.update_metrics(self.current_result(values), selection)
        self.remember(values, result)
        return result, selection

    # -- training ------------------------------------------------------------------------------
    def add_to_training_set(self, values: Any, case_id: str = "") -> Path:
        """Export the selected result as a new case of the dataset folder; returns the case folder (ultrasound:
        the BUS-BRA-like pair's mask PNG)."""
        selection = self.selection(values)
        if values.modality == MODALITY_ULTRASOUND:
            return self.logic.add_image_to_training_set(values.dataset_folder,
                                                        case_id or self.logic.suggest_case_id(selection),
                                                        values.result.segmentation, selection,
                                                        corrected_by=values.corrected_by)
        return self.logic.add_to_training_set(values.dataset_folder, case_id or self.logic.suggest_case_id(selection),
                                              values.result.segmentation, selection, corrected_by=values.corrected_by)

    def train(self, values: Any) -> Path:
        """Start training in the background; returns the new model's folder."""
        run, output = self.logic.start_training(settings_from(values))
        self.runs.start_training((run, output))
        return output
