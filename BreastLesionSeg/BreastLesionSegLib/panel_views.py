"""Qt and view glue of the panel: shows what the tested logic decided, decides nothing itself.

Only used inside the Slicer application (``qt`` and ``slicer.app`` are imported in the functions), so
this file is checked statically by the tests; every value it shows comes from :mod:`.panel_state`,
:mod:`.logic` or :mod:`.phases`.
"""
from __future__ import annotations

from typing import Any, Sequence

from .panel_state import PanelState


def show_dependency_state(ui: Any, version_problem: str | None = None) -> bool:
    """Show what is missing (or the Slicer version problem) and the GPU; returns True when the panel can work."""
    from .dependencies import install_plan, missing_requirements
    from .devices import device_description, gpu_names

    ui.gpuNameLabel.setText(device_description(gpu_names()))
    plan = install_plan(missing_requirements())
    ui.dependencyGroupBox.setVisible(plan.offered or bool(version_problem))
    ui.dependencyLabel.setText(version_problem or plan.message())
    ui.installDependenciesButton.setVisible(plan.offered and not version_problem)
    ready = not plan.needed and not version_problem
    for box in ("inputs", "model", "options", "run", "results", "training"):
        getattr(ui, f"{box}CollapsibleButton").setEnabled(ready)
    return ready


def fill_post_list(list_widget: Any, rows: Sequence[tuple[str, str, bool]]) -> None:
    """Show (node id, name, checked) rows as checkable, draggable items (no change signals)."""
    import qt

    list_widget.blockSignals(True)
    list_widget.clear()
    for node_id, name, checked in rows:
        item = qt.QListWidgetItem(name)
        item.setData(qt.Qt.UserRole, node_id)
        item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsDragEnabled)
        item.setCheckState(qt.Qt.Checked if checked else qt.Qt.Unchecked)
        list_widget.addItem(item)
    list_widget.blockSignals(False)


def checked_post_ids(list_widget: Any) -> list[str]:
    """Node ids of the checked items, in the list's (drag-and-drop) order."""
    import qt

    items = [list_widget.item(i) for i in range(list_widget.count)]
    return [item.data(qt.Qt.UserRole) for item in items if item.checkState() == qt.Qt.Checked]


def fill_model_selector(combo: Any, entries: Sequence[tuple[str, str]], index: int) -> None:
    """Show (label, model id) entries and select ``index`` (-1: none)."""
    combo.clear()
    for label, model_id in entries:
        combo.addItem(label, model_id)
    combo.setCurrentIndex(index)


def apply_panel_state(ui: Any, state: PanelState) -> None:
    """Show / enable the .ui widgets as ``state`` says."""
    for name, shown in state.visible().items():
        getattr(ui, name).setVisible(shown)
    for name, enabled in state.enabled().items():
        getattr(ui, name).setEnabled(enabled)
    ui.applyButton.toolTip = state.status or "Segment the selected inputs"
    ui.modelCardLabel.setText(state.model_card)


def show_result(result: Any, selection: Any, ctx: Any) -> None:
    """Result over the pre-contrast phase in the slice views (sequence mode: the browser's proxy volume at
    frame 0, never a frame of the sequence's internal scene), the curves in the plot view, views on the
    largest lesion."""
    import slicer

    from .phases import show_pre_contrast

    overlay = result.probability or result.heatmap
    slicer.util.setSliceViewerLayers(background=show_pre_contrast(ctx, selection), foreground=overlay,
                                     foregroundOpacity=0.4 if overlay else None)
    result.segmentation.GetDisplayNode().SetVisibility(True)
    if result.plot is not None:
        slicer.modules.plots.logic().ShowChartInLayout(result.plot.chart)
    jump_to(result.focus_ras)


def show_training_curve(events: Sequence[Any], plot: Any = None) -> Any:
    """Draw (or refresh) the training curves of a run's epoch events in the plot view; returns the plot."""
    import slicer

    from .logic import training_curve
    from .plots import update_training_plot

    plot = update_training_plot(slicer.mrmlScene, training_curve(events), plot)
    slicer.modules.plots.logic().ShowChartInLayout(plot.chart)
    return plot


def jump_to(ras: Sequence[float] | None) -> None:
    """Centre the slice views on ``ras`` (mm), nothing when None."""
    import slicer

    if ras is not None:
        slicer.modules.markups.logic().JumpSlicesToLocation(ras[0], ras[1], ras[2], True)


def edit_in_segment_editor(segmentation: Any, source_volume: Any) -> None:
    """Open Segment Editor on ``segmentation`` with ``source_volume``."""
    import slicer

    slicer.util.selectModule("SegmentEditor")
    editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
    editor.setSegmentationNode(segmentation)
    editor.setSourceVolumeNode(source_volume)


def panel_actions_in_slicer() -> Any:
    """The panel's actions on the application's scene (run folders under Slicer's temporary folder)."""
    import os

    import slicer

    from .logic import SceneLogic
    from .mrml_context import context_from_slicer_application
    from .panel_actions import PanelActions

    work_dir = os.path.join(slicer.app.temporaryPath, "BreastLesionSeg")
    return PanelActions(SceneLogic(context_from_slicer_application(), work_dir=work_dir))


def install_dependencies_in_slicer() -> list[str]:
    """Ask, then install the missing packages with Slicer's installers (see :func:`.dependencies.install`)."""
    import slicer

    from .dependencies import install, install_plan, missing_requirements

    try:
        import PyTorchUtils

        torch_logic = PyTorchUtils.PyTorchUtilsLogic
    except ModuleNotFoundError:
        torch_logic = None
    return install(install_plan(missing_requirements()), confirm=slicer.util.confirmOkCancelDisplay,
                   pip_install=slicer.util.pip_install, pytorch_utils_logic=torch_logic)
