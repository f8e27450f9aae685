"""BreastLesionSegLogic: everything the panel does, on an explicit scene and module logics.

Workflow:
1. inputs: :meth:`BreastLesionSegLogic.propose_inputs` (auto-assignment) -> pre + post volume nodes;
2. Apply: :meth:`start_segmentation` writes the phases to a fresh run folder and starts
   ``breastlesionseg segment ... --progress json`` out of process; the panel polls the run; Cancel =
   ``run.cancel()``: the scene is not touched until :meth:`import_results`;
3. results: :meth:`import_results` creates a NEW segmentation node (Breast left/right, Lesion 1..N), a
   lesion table and kinetic curves, optional probability / heat-map volumes. Replacing the previous
   result node needs ``confirm_replace=True`` (the panel asks first), so edits are never lost;
4. :meth:`update_metrics` recomputes the table from the (edited) segments;
5. :meth:`add_to_training_set` exports the corrected case via ``breastlesionseg.training``;
6. :meth:`start_training` runs ``breastlesionseg train ... --progress json`` out of process and
   :meth:`register_model` adds the new model folder to the user's model folders.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from breastlesionseg.errors import BreastLesionSegError, InputError
from breastlesionseg.output_files import BREAST_MASK_FILE, HEATMAP_FILE, LESIONS_FILE, METRICS_FILE, PROBABILITY_FILE

from . import parameters as P
from . import plots, scene_io, segmentation_nodes, tables
from .input_assignment import InputAssignment, VolumeCandidate, assign_inputs
from .models import ModelInfo, find_model
from .mrml_context import MRMLContext
from .process import OutOfProcessRun, child_environment, cli_command

log = logging.getLogger(__name__)



#: node reference role from a table / chart / curve table to the segmentation it describes
RESULT_OF_ROLE = "BreastLesionSegSegmentation"


class ReplaceNotConfirmedError(BreastLesionSegError):
    """Replacing an existing result node was requested without the user's confirmation."""


@dataclass
class SegmentationJob:
    """One out-of-process segmentation run.

    Attributes:
        run: the child process wrapper (poll / cancel / wait).
        run_dir: folder owned by the run (inputs + output); removed on cancel or failure.
        output_dir: where the CLI writes its results.
        phase_node_ids: pre then post node ids that were written as inputs.
        settings: the settings used.
    """

    run: OutOfProcessRun
    run_dir: Path
    output_dir: Path
    phase_node_ids: list[str]
    settings: P.SegmentationSettings


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
        focus_ras: RAS centroid of the largest lesion (slice views jump there), None without lesions.
        output_dir: the CLI's output folder (metrics.json, overview.png) when imported from a run.
    """

    segmentation: Any
    table: Any
    plot: plots.KineticPlot
    probability: Any = None
    heatmap: Any = None
    metrics: dict = field(default_factory=dict)
    lesion_segment_ids: list[str] = field(default_factory=list)
    focus_ras: tuple[float, float, float] | None = None
    output_dir: Path | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "case"


class BreastLesionSegLogic:
    """The module logic.

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

    # -- parameter node ------------------------------------------------------------------------
    @property
    def parameter_node(self) -> Any:
        """The module's parameter node in this scene (a new one starts from the default model's card)."""
        pnode = P.get_parameter_node(self.ctx.scene)
        if P.is_fresh(pnode):
            self._initialize_settings(pnode)
        return pnode

    @staticmethod
    def _initialize_settings(pnode: Any) -> None:
        """Save the default settings with the default model's calibrated threshold and minimum volume.

        A model runs with the post-processing settings calibrated with it (its card); a fresh panel must
        not show the dataclass defaults for the default model. When the default model is not installed the
        dataclass defaults stay (the panel then says the model is missing).
        """
        from .models import apply_card_defaults, find_model

        settings = P.SegmentationSettings()
        default_id = settings.model
        try:
            apply_card_defaults(settings, find_model(default_id, settings.user_model_dirs))
            settings.model = default_id  # by id, not this machine's folder: the scene stays portable
        except ValueError as exc:
            log.info("default model not found; keeping the default settings: %s", exc)
        P.save_settings(pnode, settings)

    def settings(self) -> P.SegmentationSettings:
        """Current settings from the parameter node."""
        return P.load_settings(self.parameter_node)

    # -- inputs --------------------------------------------------------------------------------
    def volume_candidates(self, time_of: Callable[[Any], float | None] | None = None) -> list[VolumeCandidate]:
        """Scalar volumes of the scene (not label maps) as assignment candidates.

        Args:
            time_of: returns a node's acquisition time in s (Slicer: from the DICOM database), or None.
        """
        scene = self.ctx.scene
        out = []
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            if node.IsA("vtkMRMLLabelMapVolumeNode") or node.GetImageData() is None or node.GetHideFromEditors():
                continue
            if node.GetAttribute("BreastLesionSeg.Output"):
                continue
            series = node.GetAttribute("DICOM.SeriesNumber")
            out.append(VolumeCandidate(node.GetID(), node.GetName(), time_of(node) if time_of else None,
                                       int(series) if series and series.isdigit() else None))
        return out

    def propose_inputs(self, time_of: Callable[[Any], float | None] | None = None,
                       store: bool = True) -> InputAssignment:
        """Auto-assign pre/post volumes; with ``store`` the parameter node references are set."""
        assignment = assign_inputs(self.volume_candidates(time_of))
        if store:
            scene, pnode = self.ctx.scene, self.parameter_node
            P.set_node_reference(pnode, P.ROLE_PRE, scene.GetNodeByID(assignment.pre) if assignment.pre else None)
            P.set_node_references(pnode, P.ROLE_POST, [scene.GetNodeByID(i) for i in assignment.posts])
        return assignment

    def phase_nodes(self, settings: P.SegmentationSettings | None = None) -> tuple[Any, list[Any], list[float] | None]:
        """(pre node, post nodes, acquisition times or None) from the parameter node.

        Raises:
            InputError: no pre-contrast / post-contrast volume (or sequence) selected.
        """
        settings = settings or self.settings()
        pnode = self.parameter_node
        if settings.input_mode == "sequence":
            seq = P.node_reference(pnode, P.ROLE_SEQUENCE)
            if seq is None:
                raise InputError("no 4D DCE sequence selected")
            frames = scene_io.sequence_volume_nodes(seq)
            return frames[0], frames[1:], scene_io.sequence_times_s(seq)
        pre = P.node_reference(pnode, P.ROLE_PRE)
        posts = P.node_references(pnode, P.ROLE_POST)
        if pre is None:
            raise InputError("no pre-contrast volume selected")
        if not posts:
            raise InputError("no post-contrast volume selected (select at least one)")
        return pre, posts, None

    # -- segmentation --------------------------------------------------------------------------
    def model_info(self, settings: P.SegmentationSettings) -> ModelInfo:
        """The selected model (id or folder, searched in the user's model folders too)."""
        try:
            return find_model(settings.model, settings.user_model_dirs)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def segment_arguments(self, phase_paths: Sequence[Path], output_dir: Path, settings: P.SegmentationSettings,
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

    def start_segmentation(self, pre_node: Any, post_nodes: Sequence[Any],
                           settings: P.SegmentationSettings | None = None) -> SegmentationJob:
        """Write the phases into a new run folder and start the CLI out of process (returns at once).

        The scene is only read. Raises InputError for bad inputs (checked before anything starts).
        """
        settings = (settings or self.settings()).validate()
        model = self.model_info(settings)
        phases = [pre_node, *post_nodes]
        if len(phases) < model.required_phases:
            raise InputError(f"model '{model.model_id}' needs {model.required_phases} phases (pre + "
                             f"{model.required_phases - 1} post-contrast); {len(phases)} selected")
        scene_io.exam_from_nodes(pre_node, post_nodes, resample=True)  # validates grids/overlap before starting
        self.work_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("run_%Y%m%d_%H%M%S_"), dir=self.work_dir))
        paths = scene_io.write_phase_files(phases, run_dir / "inputs")
        output_dir = run_dir / "output"
        command = cli_command(self.segment_arguments(paths, output_dir, settings, model), python=self.python)
        run = OutOfProcessRun(command, run_dir=run_dir, env=child_environment(threads=self.threads),
                              name="segmentation").start()
        return SegmentationJob(run, run_dir, output_dir, [n.GetID() for n in phases], settings)

    def import_results(self, output_dir: str | os.PathLike, pre_node: Any, post_nodes: Sequence[Any],
                       replace: ResultNodes | Any | None = None, confirm_replace: bool = False,
                       name: str | None = None) -> ResultNodes:
        """Turn a ``segment`` output folder into nodes.

        Args:
            output_dir: folder with lesions.nii.gz, breast_mask.nii.gz, metrics.json (and optional maps).
            pre_node, post_nodes: the phases the run used (reference grid, study, kinetic curves).
            replace: a previous segmentation node (or ResultNodes) to overwrite instead of creating new nodes.
            confirm_replace: must be True when ``replace`` is given (the user said yes).
            name: base name of the new nodes (default "<pre name> lesions").

        Raises:
            ReplaceNotConfirmedError: ``replace`` without ``confirm_replace``.
            InputError / GeometryError: missing or off-grid result files.
        """
        from breastlesionseg.io import read_label_volume, read_volume

        out = Path(output_dir)
        if replace is not None and not confirm_replace:
            raise ReplaceNotConfirmedError("replacing the previous result would discard its edits: ask the user and "
                                           "pass confirm_replace=True, or create a new result instead")
        for f in (LESIONS_FILE, BREAST_MASK_FILE, METRICS_FILE):
            if not (out / f).is_file():
                raise InputError(f"result folder '{out}' has no {f} (did the segmentation finish?)")
        lesions = read_label_volume(out / LESIONS_FILE)
        breast = read_label_volume(out / BREAST_MASK_FILE)
        metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
        old = replace.segmentation if isinstance(replace, ResultNodes) else replace
        scene = self.ctx.scene
        base = name or f"{pre_node.GetName()} lesions"
        if old is not None:
            seg = old
            for sid in segmentation_nodes.segment_ids(seg):
                seg.GetSegmentation().RemoveSegment(sid)
        else:
            seg = segmentation_nodes.create_segmentation_node(self.ctx, pre_node, base)
        sides = {int(les["label"]): les.get("side") for les in metrics.get("lesions", [])
                 if les.get("side") in ("left", "right")}
        segmentation_nodes.write_results_to_segmentation(self.ctx, seg, pre_node, breast, lesions, sides)
        seg.SetAttribute("BreastLesionSeg.Output", "segmentation")
        model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
        seg.SetAttribute("BreastLesionSeg.Model", str(model.get("id", "")))  # metrics.json "model": {"id", "demo", ...}
        seg.SetAttribute("BreastLesionSeg.Device", str(metrics.get("device", "")))
        lesion_ids = [segmentation_nodes.lesion_spec(int(les["label"])).segment_id for les in metrics.get("lesions", [])]
        previous = replace if isinstance(replace, ResultNodes) else None
        result = self._show_metrics(seg, pre_node, metrics, lesion_ids, previous, base)
        result.output_dir = out
        for file_name, attr, label in ((PROBABILITY_FILE, "probability", "probability"),
                                       (HEATMAP_FILE, "heatmap", "heat map")):
            if (out / file_name).is_file():
                vol = read_volume(out / file_name)
                old_node = getattr(previous, attr) if previous is not None else None
                node = (scene_io.update_node_from_volume(old_node, vol) if old_node is not None
                        else scene_io.node_from_volume(scene, vol, scene.GenerateUniqueName(f"{base} {label}")))
                node.SetAttribute("BreastLesionSeg.Output", attr)
                segmentation_nodes.place_beside(scene, node, pre_node)
                setattr(result, attr, node)
        self._remember(result)
        return result

    def _show_metrics(self, seg: Any, pre_node: Any, metrics: dict, lesion_ids: list[str],
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
            segmentation_nodes.place_beside(scene, table, pre_node)
        old_plot = previous.plot if previous is not None else None
        plot = plots.update_kinetic_plot(scene, metrics, names, colors, old_plot, name=f"{base} kinetics")
        if old_plot is None:
            segmentation_nodes.place_beside(scene, plot.chart, pre_node)
            segmentation_nodes.place_beside(scene, plot.table, pre_node)
        for node, kind in ((table, "table"), (plot.chart, "chart"), (plot.table, "curves")):
            node.SetAttribute("BreastLesionSeg.Output", kind)
            # a node reference (not an id string) survives id changes when scenes are imported
            node.SetNodeReferenceID(RESULT_OF_ROLE, seg.GetID())
        focus = None
        if metrics.get("lesions"):
            largest = max(metrics["lesions"], key=lambda les: les.get("volume_mm3") or 0.0)
            focus = tuple(float(v) for v in largest["centroid_ras_mm"])
        return ResultNodes(seg, table, plot, metrics=metrics, lesion_segment_ids=lesion_ids, focus_ras=focus)

    def _remember(self, result: ResultNodes) -> None:
        pnode = self.parameter_node
        P.set_node_reference(pnode, P.ROLE_SEGMENTATION, result.segmentation)
        P.set_node_reference(pnode, P.ROLE_TABLE, result.table)
        P.set_node_reference(pnode, P.ROLE_CHART, result.plot.chart)
        P.set_node_reference(pnode, P.ROLE_CURVE_TABLE, result.plot.table)
        P.set_node_reference(pnode, P.ROLE_PROBABILITY, result.probability)
        P.set_node_reference(pnode, P.ROLE_HEATMAP, result.heatmap)

    def current_result(self) -> ResultNodes | None:
        """The result nodes referenced by the parameter node (after a scene reload too)."""
        pnode = self.parameter_node
        seg = P.node_reference(pnode, P.ROLE_SEGMENTATION)
        if seg is None:
            return None
        result = self.result_for_segmentation(seg)
        result.probability = P.node_reference(pnode, P.ROLE_PROBABILITY)
        result.heatmap = P.node_reference(pnode, P.ROLE_HEATMAP)
        return result

    def result_for_segmentation(self, seg_node: Any) -> ResultNodes:
        """The table / kinetic plot made for ``seg_node`` (found by node reference); None parts are made by
        :meth:`update_metrics` when the segmentation was not made here (e.g. loaded from a .seg.nrrd)."""
        if seg_node is None or not seg_node.IsA("vtkMRMLSegmentationNode"):
            raise InputError("no segmentation selected")
        found: dict[str, Any] = {}
        scene = self.ctx.scene
        for cls in ("vtkMRMLTableNode", "vtkMRMLPlotChartNode"):
            for i in range(scene.GetNumberOfNodesByClass(cls)):
                node = scene.GetNthNodeByClass(i, cls)
                if node.GetNodeReference(RESULT_OF_ROLE) is seg_node:
                    found[node.GetAttribute("BreastLesionSeg.Output") or ""] = node
        chart, curves = found.get("chart"), found.get("curves")
        plot = None
        if chart is not None and curves is not None:
            plot = plots.KineticPlot(chart, curves, [chart.GetNthPlotSeriesNode(i)
                                                     for i in range(chart.GetNumberOfPlotSeriesNodes())])
        return ResultNodes(seg_node, found.get("table"), plot)

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
        return tuple(float(largest[f"centroid_{axis}_ras_mm"]) for axis in "RAS")

    def run_segmentation(self, pre_node: Any, post_nodes: Sequence[Any], settings: P.SegmentationSettings | None = None,
                         timeout_s: float | None = None, on_update: Callable[[Any], None] | None = None) -> ResultNodes:
        """Blocking variant (scripts, self-test): start, wait, import into a new node.

        Raises:
            BreastLesionSegError: the run failed (with the CLI's error message) or was cancelled.
        """
        job = self.start_segmentation(pre_node, post_nodes, settings)
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
        if job.run.state != "succeeded":
            raise BreastLesionSegError(f"segmentation {job.run.state}: {job.run.error_message}")
        return self.import_results(job.output_dir, pre_node, post_nodes)

    # -- after edits ---------------------------------------------------------------------------
    def update_metrics(self, result: ResultNodes, pre_node: Any, post_nodes: Sequence[Any],
                       acquisition_times_s: Sequence[float] | None = None,
                       pe_threshold_percent: float = 70.0) -> ResultNodes:
        """Recompute the lesion table and kinetic curves from the (edited) segments of ``result``.

        Lesions are renumbered by decreasing volume; table rows carry the segment names.
        """
        from breastlesionseg.metrics import lesion_metrics

        labels = segmentation_nodes.labels_from_segmentation(self.ctx, result.segmentation, pre_node)
        exam = scene_io.exam_from_nodes(pre_node, post_nodes, acquisition_times_s)
        metrics = lesion_metrics(exam, labels.lesion_labels, labels.breast_mask,
                                 pe_threshold_percent=pe_threshold_percent)
        base = result.segmentation.GetName()
        updated = self._show_metrics(result.segmentation, pre_node, metrics, labels.lesion_segment_ids, result, base)
        updated.probability, updated.heatmap, updated.output_dir = result.probability, result.heatmap, result.output_dir
        self._remember(updated)
        return updated

    # -- training ------------------------------------------------------------------------------
    def add_to_training_set(self, dataset_dir: str | os.PathLike, case_id: str, segmentation_node: Any,
                            pre_node: Any, post_nodes: Sequence[Any], corrected_by: str = "",
                            source: str = "", notes: str = "") -> Path:
        """Export the corrected segmentation + phases as a new case of a training dataset.

        Never overwrites: an existing case id (or the same images already in the dataset) is refused by
        ``breastlesionseg.training.dataset_add.add_case`` with a DatasetError. Returns the case folder.
        """
        from breastlesionseg.training.dataset_add import add_case

        if not str(dataset_dir).strip():
            raise InputError("no training dataset folder selected")
        labels = segmentation_nodes.labels_from_segmentation(self.ctx, segmentation_node, pre_node)
        if not labels.lesion_labels.array.any():
            raise InputError(f"segmentation '{segmentation_node.GetName()}' has no non-empty lesion segment to export")
        exam = scene_io.exam_from_nodes(pre_node, post_nodes)
        record = add_case(dataset_dir, case_id, exam.phases, lesions=labels.lesion_labels,
                          breast_mask=labels.breast_mask, source=source or f"3D Slicer: {pre_node.GetName()}",
                          corrected_by=corrected_by, notes=notes, force=False)
        folder = Path(dataset_dir) / "cases" / record.case_id
        log.info("case '%s' added to %s", record.case_id, dataset_dir)
        return folder

    def suggest_case_id(self, pre_node: Any) -> str:
        """A case id from the pre-contrast volume name and the date."""
        return f"{_slug(pre_node.GetName())}_{time.strftime('%Y%m%d')}"

    def training_arguments(self, dataset_dir: str | os.PathLike, output_dir: str | os.PathLike,
                           settings: P.SegmentationSettings) -> list[str]:
        """Arguments of ``breastlesionseg train`` (fine-tuning from the selected model when asked)."""
        device = "cuda" if settings.device.startswith("cuda") else settings.device  # train takes auto/cpu/cuda
        args = ["train", "--data", str(dataset_dir), "--output", str(output_dir), "--epochs",
                str(int(settings.training_epochs)), "--device", device, "--progress", "json",
                "--training-data", f"corrected cases of the dataset '{dataset_dir}' (3D Slicer BreastLesionSeg)"]
        if settings.fine_tune:
            args += ["--init-from", str(self.model_info(settings).folder)]
        if self.threads:
            args += ["--threads", str(int(self.threads))]
        return args

    def start_training(self, settings: P.SegmentationSettings | None = None,
                       output_dir: str | os.PathLike | None = None) -> tuple[OutOfProcessRun, Path]:
        """Start ``breastlesionseg train`` out of process; returns (run, model output folder)."""
        settings = (settings or self.settings()).validate()
        if not settings.dataset_dir or not Path(settings.dataset_dir).is_dir():
            raise InputError(f"training dataset folder '{settings.dataset_dir}' does not exist")
        # default: the user's model folder of the core search path (kept across sessions, unlike work_dir)
        root = Path(output_dir or settings.training_output_dir or (Path.home() / ".breastlesionseg" / "models"))
        out = root / time.strftime("model_%Y%m%d_%H%M%S")
        if out.exists():
            raise InputError(f"training output folder '{out}' already exists")
        command = cli_command(self.training_arguments(settings.dataset_dir, out, settings), python=self.python)
        run = OutOfProcessRun(command, run_dir=None, env=child_environment(threads=self.threads), cleanup=False,
                              name="training").start()
        return run, out

    def select_model(self, model: str | os.PathLike) -> ModelInfo:
        """Select a model folder and take the threshold / minimum lesion volume from its card."""
        from .models import apply_card_defaults, read_model_info

        try:
            info = read_model_info(model)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        settings = apply_card_defaults(self.settings(), info)
        P.save_settings(self.parameter_node, settings)
        return info

    def register_model(self, model_folder: str | os.PathLike) -> ModelInfo:
        """Add a trained model folder to the user's model folders and select it (with its card's settings)."""
        from .models import apply_card_defaults, read_model_info

        try:
            info = read_model_info(model_folder)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        settings = self.settings()
        parent = str(info.folder.parent)
        if parent not in settings.user_model_dirs and str(info.folder) not in settings.user_model_dirs:
            settings.user_model_dirs.append(parent)
        apply_card_defaults(settings, info)
        P.save_settings(self.parameter_node, settings)
        return info


def result_summary(metrics: dict) -> str:
    """One line for the status label: lesions, total volume, model (demo flag), device and time."""
    lesions = metrics.get("lesions") or []
    totals = metrics.get("totals") or {}
    parts = [f"{len(lesions)} lesion(s)"]
    if isinstance(totals.get("total_volume_ml"), (int, float)) and lesions:
        parts.append(f"total {totals['total_volume_ml']:.2f} mL")
    model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
    if model.get("id"):
        parts.append(f"model {model['id']}" + (" (DEMO)" if model.get("demo") else ""))
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

