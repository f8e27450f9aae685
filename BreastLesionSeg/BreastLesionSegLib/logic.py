"""SceneLogic: everything the panel does, on an explicit scene and module logics.

Workflow:
1. inputs: :meth:`SceneLogic.propose_inputs` (auto-assignment) and :meth:`SceneLogic.select_phases`
   (volumes or a 4D sequence -> a :class:`~.phases.PhaseSelection`);
2. Apply: :meth:`start_segmentation` writes the phases to a fresh run folder and starts
   ``breastlesionseg segment ... --progress json`` out of process; the panel polls the run; Cancel =
   ``run.cancel()``: the scene is not touched until :meth:`finish_segmentation`, which imports the
   results and removes the run folder;
3. results: :meth:`import_results` creates a NEW segmentation node (Breast left/right, Lesion 1..N), a
   lesion table and kinetic curves, optional probability / heat-map volumes, all in the study of the
   inputs. Replacing the previous result node needs ``confirm_replace=True`` (the panel asks first);
   the run's low-confidence candidates become hidden "Candidate k (confidence c)" segments, not in the
   lesion table but rows of a candidate table "<base> candidates" (confidence, volume, promoted), which the
   reader can show and promote (:meth:`promote_candidate`);
4. :meth:`update_metrics` recomputes the table from the (edited) segments (and the candidate table's
   segment names and "promoted" column);
5. :meth:`add_to_training_set` exports the corrected case via ``breastlesionseg.training``; an ultrasound
   result: :meth:`add_image_to_training_set` writes a BUS-BRA-like pair (:mod:`.image2d_scene`);
6. :meth:`start_training` runs ``breastlesionseg train ... --progress json`` out of process and
   :meth:`register_model` adds the new model folder to the user's model folders and selects it by id.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from breastlesionseg.errors import BreastLesionSegError, InputError
from breastlesionseg.output_files import (BREAST_MASK_FILE, CANDIDATES_FILE, HEATMAP_FILE, LESIONS_FILE, METRICS_FILE,
                                         PROBABILITY_FILE)

from . import image2d_scene, phases, plots, scene_io, segmentation_nodes, tables
from .input_assignment import InputAssignment, assign_inputs
from .models import ModelInfo, apply_card_defaults, find_model, read_model_info
from .mrml_context import MRMLContext
from .phases import PhaseSelection
from .process import OutOfProcessRun, child_environment, cli_command
from .settings import (MODALITY_DCE_MRI, SegmentationSettings, chosen_folder, dataset_is_ready,
                       selected_model_id)

log = logging.getLogger(__name__)

#: node reference role from a table / chart / curve table / map volume to the segmentation it describes
RESULT_OF_ROLE = "BreastLesionSegSegmentation"
# Trainings started from Slicer keep their case cache in half precision: the workstation also holds Slicer and the
# open exam, and real exams are several times larger than phantoms (one of breastlesionseg.training.config.CACHE_DTYPES)
SLICER_TRAINING_CACHE_DTYPE = "float16"


class ReplaceNotConfirmedError(BreastLesionSegError):
    """Replacing an existing result node was requested without the user's confirmation."""


@dataclass
class SegmentationJob:
    """One out-of-process segmentation run.

    Attributes:
        run: the child process wrapper (poll / cancel / wait).
        run_dir: folder owned by the run (inputs + output); removed on cancel or failure, and by
            :meth:`SceneLogic.finish_segmentation` after a success.
        output_dir: where the CLI writes its results.
        selection: the phases that were written as inputs (a 2D image: ``pre`` only).
        settings: the settings used.
        modality: DCE-MRI, or a 2D modality (single-image command).
        model: the 2D model that runs (its card's demo flag and training data go into the table).
    """

    run: OutOfProcessRun
    run_dir: Path
    output_dir: Path
    selection: PhaseSelection
    settings: SegmentationSettings
    modality: str = MODALITY_DCE_MRI
    model: ModelInfo | None = None


@dataclass
class ResultNodes:
    """Nodes made from one result.

    Attributes:
        segmentation: the segmentation node (Breast left/right, Lesion 1..N).
        table: lesion table node.
        plot: kinetic curve plot (chart, curve table, series).
        probability: lesion probability volume node or None.
        heatmap: Grad-CAM heat-map volume node or None.
        metrics: the ``lesion_metrics`` dict shown in the table.
        lesion_segment_ids: segment id of each table row.
        candidate_segment_ids: hidden low-confidence candidate segments (not in the table).
        focus_ras: RAS centroid of the largest lesion (slice views jump there), None without lesions.
        output_dir: the CLI's output folder (metrics.json, overview.png) when imported from a run.
        candidate_table: table node of the run's low-confidence candidates, one row each (segment name,
            candidate label, confidence 0-1, volume in mm3, promoted yes/no; a promoted candidate keeps its
            row, now named "Lesion k"); None when the run had no candidates (or for a 2D result).
    """

    segmentation: Any
    table: Any
    plot: plots.KineticPlot
    probability: Any = None
    heatmap: Any = None
    metrics: dict = field(default_factory=dict)
    lesion_segment_ids: list[str] = field(default_factory=list)
    candidate_segment_ids: list[str] = field(default_factory=list)
    focus_ras: tuple[float, float, float] | None = None
    output_dir: Path | None = None
    candidate_table: Any = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "case"


class SceneLogic:
    """The module logic on an explicit scene (the panel, scripts and the tests use it alike).

    It never reads the parameter node: the panel passes plain values (:class:`.settings.SegmentationSettings`
    made with :func:`.settings.settings_from`, and the selected nodes).

    Args:
        ctx: scene + module logics (:mod:`.mrml_context`).
        work_dir: folder for run folders (default: a temporary folder per process).
        python: interpreter for the CLI (default: PythonSlicer in Slicer, else this one).
        threads: CPU threads of the child (OMP_NUM_THREADS and ``--threads``), None = library default.
    """

    def __init__(self, ctx: MRMLContext, work_dir: str | os.PathLike | None = None, python: str | None = None,
                 threads: int | None = None) -> None:
        self.ctx = ctx
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "BreastLesionSeg"
        self.python = python
        self.threads = threads

    # -- inputs --------------------------------------------------------------------------------
    def propose_inputs(self, dicom_database: Any = None) -> InputAssignment:
        """Auto-assignment of pre/post volumes from the scene's volumes (names, DICOM times and series numbers).

        Args:
            dicom_database: ``slicer.dicomDatabase`` in Slicer (acquisition times), None elsewhere.
        """
        return assign_inputs(phases.volume_candidates(self.ctx.scene, dicom_database))

    def assigned_nodes(self, assignment: InputAssignment) -> tuple[Any, list[Any]]:
        """(pre node or None, post nodes) of an assignment."""
        scene = self.ctx.scene
        pre = scene.GetNodeByID(assignment.pre) if assignment.pre else None
        return pre, [scene.GetNodeByID(i) for i in assignment.posts]

    def select_phases(self, input_mode: str, pre: Any = None, posts: Sequence[Any] = (),
                      sequence: Any = None) -> PhaseSelection:
        """The phases to segment (see :func:`.phases.select_phases`)."""
        return phases.select_phases(self.ctx, input_mode, pre, posts, sequence)

    def select_image(self, node: Any) -> PhaseSelection:
        """A single 2D image (ultrasound, mammography) as the input of a run.

        Raises:
            InputError: no image, or more than one slice.
        """
        image2d_scene.image_pixels(node)
        return PhaseSelection(node, [], None, display_node=node, placement_node=node)

    def modality_unavailable(self, modality: str) -> str | None:
        """Why ``modality`` cannot be segmented in this installation, or None when it can."""
        command = image2d_scene.IMAGE_COMMANDS.get(modality)
        if modality == MODALITY_DCE_MRI or (command and importlib.util.find_spec(f"breastlesionseg.cli.cmd_{command}")):
            return None
        return f"{modality}: this installation has no 'breastlesionseg {command}' command yet"

    # -- model ---------------------------------------------------------------------------------
    def model_info(self, settings: SegmentationSettings, model: str | os.PathLike | None = None) -> ModelInfo:
        """The model of ``settings.modality``: ``model`` (an id or a folder) or the selected one, found by id
        in the user's model folders and the search path."""
        try:
            return find_model(model or selected_model_id(settings), settings.user_model_folders, settings.modality)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def sync_model_defaults(self, values: Any) -> bool:
        """Take the threshold / minimum lesion volume from the selected model's card once per model choice.

        ``values`` is the parameter-node wrapper (or a SegmentationSettings). When ``values.model`` differs
        from ``values.model_defaults_from`` (a new scene, or the user picked another model) the card's
        calibrated values are applied and the model remembered; otherwise nothing changes, so the user's own
        threshold and minimum volume are kept. Returns True when the card was applied.
        """
        if values.model == values.model_defaults_from:
            return False
        try:
            info = find_model(values.model, [str(f) for f in values.user_model_folders])
        except ValueError as exc:
            log.info("model '%s' not found; threshold and minimum volume unchanged: %s", values.model, exc)
            return False
        apply_card_defaults(values, info)
        return True

    def register_model(self, values: Any, model_folder: str | os.PathLike) -> ModelInfo:
        """Add a trained model's parent folder to ``values.user_model_folders`` and select it by id
        (with its card's threshold and minimum volume)."""
        try:
            info = read_model_info(model_folder)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        parent = str(info.folder.parent)
        if parent not in [str(f) for f in values.user_model_folders]:
            values.user_model_folders.append(parent)
        apply_card_defaults(values, info)
        return info

    # -- segmentation --------------------------------------------------------------------------
    def segment_arguments(self, phase_paths: Sequence[Path], output_dir: Path, settings: SegmentationSettings,
                          model: ModelInfo) -> list[str]:
        """Arguments of ``breastlesionseg segment`` for these settings."""
        args = ["segment", *[str(p) for p in phase_paths], "--output", str(output_dir), "--model", str(model.folder),
                "--device", settings.device, "--threshold", repr(float(settings.threshold)),
                "--min-lesion-mm3", repr(float(settings.min_lesion_volume_mm3)), "--progress", "json"]
        if not settings.breast_masking:
            args.append("--no-breast-mask")
        if settings.save_probability:
            args.append("--save-probability")
        if settings.save_heatmap:
            args.append("--heatmap")
        if self.threads:
            args += ["--threads", str(int(self.threads))]
        return args

    def start_segmentation(self, selection: PhaseSelection, settings: SegmentationSettings) -> SegmentationJob:
        """Write the phases into a new run folder and start the CLI out of process (returns at once).

        The scene is only read. Raises InputError for bad inputs (checked before anything starts).
        """
        settings = settings.validate()
        model = self.model_info(settings)
        if len(selection.phases) < model.required_phases:
            raise InputError(f"model '{model.model_id}' needs {model.required_phases} phases (pre + "
                             f"{model.required_phases - 1} post-contrast); {len(selection.phases)} selected")
        # the resampling and checks every command applies (finite, size, phase order), before anything starts
        exam = scene_io.validated_exam_from_nodes(selection.pre, selection.posts, selection.acquisition_times_s)
        for warning in exam.warnings:
            log.warning("%s", warning)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("run_%Y%m%d_%H%M%S_"), dir=self.work_dir))
        paths = scene_io.write_phase_files(selection.phases, run_dir / "inputs")
        output_dir = run_dir / "output"
        command = cli_command(self.segment_arguments(paths, output_dir, settings, model), python=self.python)
        run = OutOfProcessRun(command, run_dir=run_dir, env=child_environment(threads=self.threads),
                              name="segmentation").start()
        return SegmentationJob(run, run_dir, output_dir, selection, settings)

    def start_image_segmentation(self, selection: PhaseSelection, settings: SegmentationSettings,
                                 model: str | os.PathLike | None = None) -> SegmentationJob:
        """Write the 2D image into a new run folder and start the modality's single-image command out of process.

        Args:
            selection: from :meth:`select_image`.
            settings: ``settings.modality`` names the command; its model field the model.
            model: a model id or folder of that modality instead of the selected one.

        Raises:
            InputError: no such command here, or the model is not installed (or of another modality).
        """
        settings = settings.validate()
        unavailable = self.modality_unavailable(settings.modality)
        if unavailable or settings.modality == MODALITY_DCE_MRI:
            raise InputError(unavailable or "DCE-MRI is segmented with start_segmentation")
        info = self.model_info(settings, model)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("run_%Y%m%d_%H%M%S_"), dir=self.work_dir))
        image = image2d_scene.write_image_input(selection.pre, run_dir / "inputs")
        output_dir = run_dir / "output"
        args = image2d_scene.image_arguments(settings.modality, image, output_dir, self.threads, str(info.folder))
        run = OutOfProcessRun(cli_command(args, python=self.python), run_dir=run_dir,
                              env=child_environment(threads=self.threads), name="segmentation").start()
        return SegmentationJob(run, run_dir, output_dir, selection, settings, settings.modality, info)

    def finish_segmentation(self, job: SegmentationJob, replace: ResultNodes | Any | None = None,
                            confirm_replace: bool = False) -> ResultNodes:
        """Import a succeeded run's results and remove its run folder (inputs and outputs).

        The run folder holds uncompressed copies of every phase; it is removed after the import whether the
        import succeeds or not (a failed or cancelled run removes it itself).

        Raises:
            BreastLesionSegError: the run did not succeed (with the CLI's error message).
        """
        try:
            if job.run.state != "succeeded":
                raise BreastLesionSegError(f"segmentation {job.run.state}: {job.run.error_message}")
            if job.modality != MODALITY_DCE_MRI:
                return self.import_image_results(job.output_dir / image2d_scene.INPUT_STEM, job.selection, replace,
                                                 confirm_replace, model=job.model)
            return self.import_results(job.output_dir, job.selection, replace=replace, confirm_replace=confirm_replace)
        finally:
            shutil.rmtree(job.run_dir, ignore_errors=True)

    def import_results(self, output_dir: str | os.PathLike, selection: PhaseSelection,
                       replace: ResultNodes | Any | None = None, confirm_replace: bool = False,
                       name: str | None = None) -> ResultNodes:
        """Turn a ``segment`` output folder into nodes in the study of the inputs.

        Args:
            output_dir: folder with lesions.nii.gz, breast_mask.nii.gz, metrics.json (and optional maps).
            selection: the phases the run used (grid, study, kinetic curves with their acquisition times).
            replace: a previous segmentation node (or ResultNodes) to overwrite instead of creating new nodes.
            confirm_replace: must be True when ``replace`` is given (the user said yes).
            name: base name of the new nodes (default "<shown volume name> lesions").

        Raises:
            ReplaceNotConfirmedError: ``replace`` without ``confirm_replace``.
            InputError / GeometryError: missing or off-grid result files.
        """
        if replace is not None and not confirm_replace:
            raise ReplaceNotConfirmedError("replacing the previous result would discard its edits: ask the user and "
                                           "pass confirm_replace=True, or create a new result instead")
        lesions, breast, metrics = _read_result_files(Path(output_dir))
        previous = replace if isinstance(replace, ResultNodes) else (
            self.result_for_segmentation(replace) if replace is not None else None)
        base = name or f"{selection.display_node.GetName()} lesions"
        seg = self._result_segmentation(previous, selection, base)
        sides = {int(les["label"]): les.get("side") for les in metrics.get("lesions", [])
                 if les.get("side") in ("left", "right")}
        segmentation_nodes.write_results_to_segmentation(self.ctx, seg, selection.pre, breast, lesions, sides)
        candidate_ids = self._import_candidates(seg, Path(output_dir), selection, metrics)
        model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
        seg.SetAttribute("BreastLesionSeg.Model", str(model.get("id", "")))  # metrics.json "model": {"id", ...}
        seg.SetAttribute("BreastLesionSeg.Device", str(metrics.get("device", "")))
        lesion_ids = [segmentation_nodes.lesion_spec(int(les["label"])).segment_id for les in metrics.get("lesions", [])]
        result = self._show_metrics(seg, selection, metrics, lesion_ids, previous, base)
        result.output_dir = Path(output_dir)
        result.candidate_table = self._import_candidate_table(seg, selection, metrics, candidate_ids, previous, base)
        self._import_maps(result, Path(output_dir), selection, previous, base)
        if selection.acquisition_times_s is not None:  # the CLI numbers phases; the table and curves use seconds
            result = self.update_metrics(result, selection)
        return result

    def _import_candidates(self, seg: Any, out: Path, selection: PhaseSelection, metrics: dict) -> list[str]:
        """Hidden candidate segments from ``candidates.nii.gz`` and ``metrics.json["candidates"]`` (when written)."""
        from breastlesionseg.io import read_label_volume

        candidates = metrics.get("candidates") or []
        if not candidates:
            return []
        if not (out / CANDIDATES_FILE).is_file():
            log.warning("metrics.json lists %d candidate(s) but '%s' has no %s", len(candidates), out, CANDIDATES_FILE)
            return []
        return segmentation_nodes.write_candidate_segments(self.ctx, seg, selection.pre,
                                                           read_label_volume(out / CANDIDATES_FILE), candidates)

    def _import_candidate_table(self, seg: Any, selection: PhaseSelection, metrics: dict, segment_ids: list[str],
                                previous: ResultNodes | None, base: str) -> Any:
        """The candidate table of a run: one row per imported candidate segment (``metrics.json["candidates"]``
        confidence and volume), beside the lesion table. A replaced result's candidate table is refilled (the
        same node), or removed when the new run has no candidates; None then."""
        scene = self.ctx.scene
        old = previous.candidate_table if previous is not None else None
        by_id = {segmentation_nodes.candidate_segment_id(int(c["id"])): c for c in metrics.get("candidates") or []}
        rows = []
        for sid in segment_ids:
            cand = by_id[sid]
            name, promoted = segmentation_nodes.candidate_state(seg, sid)
            rows.append({"Segment": name, "candidate_id": int(cand["id"]), "confidence": cand.get("confidence"),
                         "volume_mm3": cand.get("volume_mm3"), "promoted": promoted})
        if not rows:
            if old is not None:
                log.info("the new run has no candidates: candidate table '%s' removed", old.GetName())
                scene.RemoveNode(old)
            return None
        table = old if old is not None else scene.AddNewNodeByClass(
            "vtkMRMLTableNode", scene.GenerateUniqueName(f"{base} candidates"))
        tables.fill_candidate_table(table, rows)
        table.SetAttribute("BreastLesionSeg.Output", "candidates")
        table.SetNodeReferenceID(RESULT_OF_ROLE, seg.GetID())
        segmentation_nodes.place_beside(scene, table, selection.placement_node)
        return table

    def _refresh_candidate_table(self, table: Any, seg: Any) -> None:
        """Current segment names and "promoted" state in the candidate table (rows are kept: a promoted or
        deleted candidate stays listed; a deleted one keeps its last name)."""
        rows = []
        for row in tables.table_to_dicts(table):
            name, promoted = segmentation_nodes.candidate_state(
                seg, segmentation_nodes.candidate_segment_id(row["candidate_id"]))
            rows.append(dict(row, Segment=name or row[tables.SEGMENT_COLUMN], promoted=promoted))
        tables.fill_candidate_table(table, rows)

    def promote_candidate(self, result: ResultNodes, selection: PhaseSelection, segment_id: str) -> ResultNodes:
        """The reader accepts candidate ``segment_id`` as a lesion: it becomes "Lesion k" (Mass terminology,
        shown), the table and curves are recomputed with it, and its candidate-table row says promoted "yes"
        under its new name.

        Raises:
            InputError: the segment is not a candidate of ``result``'s segmentation.
        """
        segmentation_nodes.promote_candidate(result.segmentation, segment_id)
        return self.update_metrics(result, selection)

    def import_image_results(self, folder: str | os.PathLike, selection: PhaseSelection,
                             replace: ResultNodes | Any | None = None, confirm_replace: bool = False,
                             model: ModelInfo | None = None) -> ResultNodes:
        """A single-image command's result folder as an editable "Lesion" segment, a one-row table and the
        heat map as an RGB volume, beside the image.

        ``model`` is the card of the model that ran (the table says whether it is a demo model and what it
        was trained on); None: found by the ``model_id`` of ``result.json`` among the installed 2D models.

        Raises:
            ReplaceNotConfirmedError: ``replace`` without ``confirm_replace``.
            InputError: missing files, or a mask / heat map not of the image's size.
        """
        if replace is not None and not confirm_replace:
            raise ReplaceNotConfirmedError("replacing the previous result would discard its edits: ask the user first")
        image = selection.pre
        mask, result_json, heat = image2d_scene.read_image_result(folder, image)
        previous = replace if isinstance(replace, ResultNodes) else (
            self.result_for_segmentation(replace) if replace is not None else None)
        base = f"{image.GetName()} lesion"
        seg = self._result_segmentation(previous, selection, base)
        image2d_scene.write_lesion_segment(self.ctx, seg, image, mask)
        seg.SetAttribute("BreastLesionSeg.Model", str(result_json.get("model_id", "")))
        table = previous.table if previous is not None and previous.table is not None else \
            self.ctx.scene.AddNewNodeByClass("vtkMRMLTableNode", self.ctx.scene.GenerateUniqueName(f"{base} table"))
        model = model or self._image_model(str(result_json.get("model_id", "")))
        row = image2d_scene.lesion_row(result_json, mask, image, model)
        image2d_scene.fill_image_table(table, row)
        heatmap = None
        if heat is not None:
            heatmap = image2d_scene.heatmap_volume(self.ctx.scene, heat, image, f"{base} heat map",
                                                   previous.heatmap if previous is not None else None)
        for node, kind in ((table, "table"), (heatmap, "heatmap")):
            if node is not None:
                node.SetAttribute("BreastLesionSeg.Output", kind)
                node.SetNodeReferenceID(RESULT_OF_ROLE, seg.GetID())
                segmentation_nodes.place_beside(self.ctx.scene, node, selection.placement_node)
        return ResultNodes(seg, table, None, heatmap=heatmap, metrics=dict(result_json, **row),
                           lesion_segment_ids=["lesion"], output_dir=Path(folder))

    def _image_model(self, model_id: str) -> ModelInfo | None:
        """The installed 2D model with this id (None when absent: the table then lacks the card's fields)."""
        for modality in image2d_scene.IMAGE_COMMANDS:
            try:
                return find_model(model_id, modality=modality)
            except ValueError:
                continue
        log.warning("model '%s' of a 2D result is not installed; its card cannot be shown", model_id)
        return None

    def _result_segmentation(self, previous: ResultNodes | None, selection: PhaseSelection, base: str) -> Any:
        if previous is not None:
            seg = previous.segmentation
            for sid in segmentation_nodes.segment_ids(seg):
                seg.GetSegmentation().RemoveSegment(sid)
            return seg
        seg = segmentation_nodes.create_segmentation_node(self.ctx, selection.pre, base)
        segmentation_nodes.place_beside(self.ctx.scene, seg, selection.placement_node)
        seg.SetAttribute("BreastLesionSeg.Output", "segmentation")
        return seg

    def _import_maps(self, result: ResultNodes, out: Path, selection: PhaseSelection, previous: ResultNodes | None,
                     base: str) -> None:
        """Probability / heat-map volumes (when the run wrote them) as volumes beside the inputs."""
        from breastlesionseg.io import read_volume

        scene = self.ctx.scene
        for file_name, attr, label in ((PROBABILITY_FILE, "probability", "probability"),
                                       (HEATMAP_FILE, "heatmap", "heat map")):
            if not (out / file_name).is_file():
                continue
            vol = read_volume(out / file_name)
            old_node = getattr(previous, attr) if previous is not None else None
            node = (scene_io.update_node_from_volume(old_node, vol) if old_node is not None
                    else scene_io.node_from_volume(scene, vol, scene.GenerateUniqueName(f"{base} {label}")))
            node.SetAttribute("BreastLesionSeg.Output", attr)
            node.SetNodeReferenceID(RESULT_OF_ROLE, result.segmentation.GetID())
            segmentation_nodes.place_beside(scene, node, selection.placement_node)
            setattr(result, attr, node)

    def _show_metrics(self, seg: Any, selection: PhaseSelection, metrics: dict, lesion_ids: list[str],
                      previous: ResultNodes | None, base: str) -> ResultNodes:
        """Fill (or create) the table and kinetic plot of ``metrics`` for ``seg``."""
        scene = self.ctx.scene
        segmentation = seg.GetSegmentation()
        names = [segmentation.GetSegment(i).GetName() for i in lesion_ids]
        colors = [segmentation.GetSegment(i).GetColor() for i in lesion_ids]
        if previous is not None and previous.table is not None:
            table = tables.fill_lesion_table(previous.table, metrics, names)
        else:
            table = tables.create_lesion_table(scene, metrics, names, name=f"{base} table")
        old_plot = previous.plot if previous is not None else None
        plot = plots.update_kinetic_plot(scene, metrics, names, colors, old_plot, name=f"{base} kinetics")
        for node, kind in ((table, "table"), (plot.chart, "chart"), (plot.table, "curves")):
            node.SetAttribute("BreastLesionSeg.Output", kind)
            # a node reference (not an id string) survives id changes when scenes are imported
            node.SetNodeReferenceID(RESULT_OF_ROLE, seg.GetID())
            segmentation_nodes.place_beside(scene, node, selection.placement_node)
        focus = None
        if metrics.get("lesions"):
            largest = max(metrics["lesions"], key=lambda les: les.get("volume_mm3") or 0.0)
            focus = tuple(float(v) for v in largest["centroid_ras_mm"])
        result = ResultNodes(seg, table, plot, metrics=metrics, lesion_segment_ids=lesion_ids, focus_ras=focus,
                             candidate_segment_ids=segmentation_nodes.candidate_segment_ids(seg))
        if previous is not None:
            result.probability, result.heatmap, result.output_dir = previous.probability, previous.heatmap, previous.output_dir
            result.candidate_table = previous.candidate_table
            if result.candidate_table is not None:
                self._refresh_candidate_table(result.candidate_table, seg)
        return result

    def result_for_segmentation(self, seg_node: Any) -> ResultNodes:
        """The table, kinetic plot and maps made for ``seg_node`` (found by node reference, after a scene
        reload too); missing parts are made by :meth:`update_metrics` (e.g. a segmentation from a .seg.nrrd)."""
        if seg_node is None or not seg_node.IsA("vtkMRMLSegmentationNode"):
            raise InputError("no segmentation selected")
        found: dict[str, Any] = {}
        scene = self.ctx.scene
        for cls in ("vtkMRMLTableNode", "vtkMRMLPlotChartNode", "vtkMRMLScalarVolumeNode"):
            for i in range(scene.GetNumberOfNodesByClass(cls)):
                node = scene.GetNthNodeByClass(i, cls)
                if node.GetNodeReference(RESULT_OF_ROLE) is seg_node:
                    found[node.GetAttribute("BreastLesionSeg.Output") or ""] = node
        chart, curves = found.get("chart"), found.get("curves")
        plot = None
        if chart is not None and curves is not None:
            plot = plots.KineticPlot(chart, curves, [chart.GetNthPlotSeriesNode(i)
                                                     for i in range(chart.GetNumberOfPlotSeriesNodes())])
        return ResultNodes(seg_node, found.get("table"), plot, probability=found.get("probability"),
                           heatmap=found.get("heatmap"), candidate_table=found.get("candidates"))

    def focus_of_largest_lesion(self, result: ResultNodes) -> tuple[float, float, float] | None:
        """RAS centroid of the largest lesion row of ``result``'s table (None without lesions)."""
        if result.focus_ras is not None:
            return result.focus_ras
        if result.table is None:
            return None
        rows = [r for r in tables.table_to_dicts(result.table) if r.get(tables.SEGMENT_COLUMN) != "Total"]
        if not rows:
            return None
        largest = max(rows, key=lambda r: r.get("volume_mm3", 0.0))
        if "centroid_R_ras_mm" not in largest:  # a 2D result: the image is shown whole
            return None
        return tuple(float(largest[f"centroid_{axis}_ras_mm"]) for axis in "RAS")

    def run_segmentation(self, selection: PhaseSelection, settings: SegmentationSettings,
                         timeout_s: float | None = None, on_update: Callable[[Any], None] | None = None) -> ResultNodes:
        """Blocking variant (scripts, self-test): start, wait, import into a new node, remove the run folder.

        Raises:
            BreastLesionSegError: the run failed (with the CLI's error message), was cancelled or timed out.
        """
        job = self.start_segmentation(selection, settings)
        t0 = time.monotonic()
        while True:
            update = job.run.poll()
            if on_update is not None:
                on_update(update)
            if job.run.state not in ("pending", "running"):
                break
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                job.run.cancel()
                raise BreastLesionSegError(f"segmentation took longer than {timeout_s:.0f} s and was cancelled")
            time.sleep(0.1)
        return self.finish_segmentation(job)

    # -- after edits ---------------------------------------------------------------------------
    def update_metrics(self, result: ResultNodes, selection: PhaseSelection,
                       pe_threshold_percent: float = 70.0) -> ResultNodes:
        """Recompute the lesion table and kinetic curves from the (edited) segments of ``result``.

        Lesions are renumbered by decreasing volume; table rows carry the segment names; the curves use the
        selection's acquisition times (s) when known.
        """
        from breastlesionseg.metrics import lesion_metrics

        if not selection.posts:  # a 2D image: the area of the edited "Lesion" segment, the probabilities as before
            mask = image2d_scene.lesion_mask(self.ctx, result.segmentation, selection.pre)
            previous_row = tables.table_to_dicts(result.table)[0] if result.table is not None else {}
            row = image2d_scene.lesion_row(previous_row, mask, selection.pre)
            image2d_scene.fill_image_table(result.table, row)
            result.metrics = dict(result.metrics, **row)
            return result
        labels = segmentation_nodes.labels_from_segmentation(self.ctx, result.segmentation, selection.pre)
        exam = scene_io.exam_from_nodes(selection.pre, selection.posts, selection.acquisition_times_s)
        metrics = lesion_metrics(exam, labels.lesion_labels, labels.breast_mask,
                                 pe_threshold_percent=pe_threshold_percent)
        base = result.segmentation.GetName()
        return self._show_metrics(result.segmentation, selection, metrics, labels.lesion_segment_ids, result, base)

    # -- training ------------------------------------------------------------------------------
    def add_to_training_set(self, dataset_folder: str | os.PathLike, case_id: str, segmentation_node: Any,
                            selection: PhaseSelection, corrected_by: str = "", source: str = "",
                            notes: str = "") -> Path:
        """Export the corrected segmentation + phases as a new case of a training dataset.

        Never overwrites: an existing case id (or the same images already in the dataset) is refused by
        ``breastlesionseg.training.dataset_add.add_case`` with a DatasetError. Returns the case folder.

        Raises:
            InputError: no (absolute) dataset folder chosen, or no non-empty lesion segment.
        """
        from breastlesionseg.training.dataset_add import add_case

        folder = chosen_folder(dataset_folder, "training dataset folder")
        labels = segmentation_nodes.labels_from_segmentation(self.ctx, segmentation_node, selection.pre)
        if not labels.lesion_labels.array.any():
            raise InputError(f"segmentation '{segmentation_node.GetName()}' has no non-empty lesion segment to export")
        exam = scene_io.exam_from_nodes(selection.pre, selection.posts, selection.acquisition_times_s)
        record = add_case(folder, case_id, exam.phases, lesions=labels.lesion_labels,
                          breast_mask=labels.breast_mask,
                          source=source or f"3D Slicer: {selection.display_node.GetName()}",
                          corrected_by=corrected_by, notes=notes, force=False)
        log.info("case '%s' added to %s", record.case_id, folder)
        return folder / "cases" / record.case_id

    def add_image_to_training_set(self, folder: str | os.PathLike, case_id: str, segmentation_node: Any,
                                  selection: PhaseSelection, corrected_by: str = "", source: str = "") -> Path:
        """Export the corrected "Lesion" segment of a 2D (ultrasound) result and its image as a BUS-BRA-like
        training pair (image PNG, mask PNG, a ``bus_data.csv`` row) into ``folder``; returns the mask PNG.

        Never overwrites (see :func:`.image2d_scene.export_training_pair`).

        Raises:
            InputError: no (absolute) folder chosen, an empty segment, or the pair exists already.
        """
        target = chosen_folder(folder, "training folder")
        if segmentation_node is None:
            raise InputError("no result segmentation selected")
        mask = image2d_scene.lesion_mask(self.ctx, segmentation_node, selection.pre)
        pair = image2d_scene.export_training_pair(target, case_id, selection.pre, mask, corrected_by=corrected_by,
                                    source=source or f"3D Slicer: {selection.pre.GetName()}")
        return pair.mask_path

    def suggest_case_id(self, selection: PhaseSelection) -> str:
        """A case id from the shown volume's name and the date."""
        return f"{_slug(selection.display_node.GetName())}_{time.strftime('%Y%m%d')}"

    def training_arguments(self, dataset_folder: str | os.PathLike, output_dir: str | os.PathLike,
                           settings: SegmentationSettings) -> list[str]:
        """Arguments of ``breastlesionseg train`` (fine-tuning from the selected model when asked; half-precision
        case cache, :data:`SLICER_TRAINING_CACHE_DTYPE`)."""
        device = "cuda" if settings.device.startswith("cuda") else settings.device  # train takes auto/cpu/cuda
        args = ["train", "--data", str(dataset_folder), "--output", str(output_dir), "--epochs",
                str(int(settings.training_epochs)), "--device", device, "--progress", "json",
                "--training-data", f"corrected cases of the dataset '{dataset_folder}' (3D Slicer BreastLesionSeg)"]
        if settings.fine_tune:
            dce = dataclasses.replace(settings, modality=MODALITY_DCE_MRI)  # training is DCE-MRI only
            args += ["--init-from", str(self.model_info(dce).folder)]
        args += ["--cache-dtype", SLICER_TRAINING_CACHE_DTYPE]
        if self.threads:
            args += ["--threads", str(int(self.threads))]
        return args

    def start_training(self, settings: SegmentationSettings) -> tuple[OutOfProcessRun, Path]:
        """Start ``breastlesionseg train`` out of process; returns (run, model output folder).

        Raises:
            InputError: no chosen dataset folder with at least one case, or no absolute output folder.
        """
        settings = settings.validate()
        dataset = chosen_folder(settings.dataset_folder, "training dataset folder")
        if not dataset_is_ready(dataset):
            raise InputError(f"training dataset folder '{dataset}' does not exist or has no case yet "
                             "(add corrected cases with 'Add to training set')")
        root = chosen_folder(settings.training_output_folder, "training output folder")
        out = root / time.strftime("model_%Y%m%d_%H%M%S")
        if out.exists():
            raise InputError(f"training output folder '{out}' already exists")
        command = cli_command(self.training_arguments(dataset, out, settings), python=self.python)
        run = OutOfProcessRun(command, run_dir=None, env=child_environment(threads=self.threads), cleanup=False,
                              name="training").start()
        return run, out


def _read_result_files(out: Path) -> tuple[Any, Any, dict]:
    """(lesion labels, breast mask, metrics dict) of a ``segment`` output folder."""
    from breastlesionseg.io import read_label_volume

    for f in (LESIONS_FILE, BREAST_MASK_FILE, METRICS_FILE):
        if not (out / f).is_file():
            raise InputError(f"result folder '{out}' has no {f} (did the segmentation finish?)")
    metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    return read_label_volume(out / LESIONS_FILE), read_label_volume(out / BREAST_MASK_FILE), metrics


def result_summary(metrics: dict) -> str:
    """One line for the status label: lesions, total volume, model (demo flag), device and time; for a 2D
    image: the lesion area, the probabilities the command reported and the model (demo flag)."""
    if "lesion_area_px" in metrics:
        parts = [f"lesion area {metrics['lesion_area_px']} px"]
        area = metrics.get("lesion_area_mm2")
        parts[0] += f" ({area:.1f} mm2)" if isinstance(area, (int, float)) else ""
        parts += [f"{key[:-len('_probability')].replace('_', ' ')} probability {value:.2f}"
                  for key, value in metrics.items() if key.endswith("_probability") and isinstance(value, (int, float))]
        if metrics.get("model_id"):
            parts.append(f"model {metrics['model_id']}" + (" (DEMO model)" if metrics.get("model_demo") == "yes" else ""))
        return ", ".join(parts)
    lesions = metrics.get("lesions") or []
    totals = metrics.get("totals") or {}
    parts = [f"{len(lesions)} lesion(s)"]
    if isinstance(totals.get("total_volume_ml"), (int, float)) and lesions:
        parts.append(f"total {totals['total_volume_ml']:.2f} mL")
    model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
    if model.get("id"):
        parts.append(f"model {model['id']}" + (" (DEMO)" if model.get("demo") else ""))
    if metrics.get("candidates"):
        parts.append(f"{len(metrics['candidates'])} low-confidence candidate(s) hidden")
    if metrics.get("device"):
        parts.append(f"on {metrics['device']}")
    total_s = (metrics.get("timings_s") or {}).get("total")
    if isinstance(total_s, (int, float)):
        parts.append(f"{total_s:.1f} s")
    return ", ".join(parts)


def training_curve(events: Sequence[Any]) -> dict[str, list[float]]:
    """Epoch, training loss and validation Dice series from the ``epoch`` events of a training run."""
    out: dict[str, list[float]] = {"epoch": [], "train_loss": [], "val_dice": []}
    for ev in events:
        if getattr(ev, "event", None) != "epoch":
            continue
        out["epoch"].append(float(ev.data.get("epoch", len(out["epoch"]) + 1)))
        for key in ("train_loss", "val_dice"):
            v = ev.data.get(key)
            out[key].append(float(v) if isinstance(v, (int, float)) else float("nan"))
    return out

