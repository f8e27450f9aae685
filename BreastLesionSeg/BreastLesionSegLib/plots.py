"""Kinetic (time-intensity) curves per lesion as MRML plot nodes.

One table node holds the curves (x = acquisition time in s when known, else the phase index; one
column per lesion), one ``vtkMRMLPlotSeriesNode`` per lesion coloured like its segment, and one
``vtkMRMLPlotChartNode`` that shows them all (Slicer's plot view; select a series to see one lesion).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import vtk

log = logging.getLogger(__name__)

#: y quantities of the curve: metrics key -> axis title
Y_QUANTITIES = {
    "mean_percent_enhancement_percent": "Mean enhancement (%)",
    "mean_signal": "Mean signal",
}


@dataclass
class KineticPlot:
    """The plot nodes of one result."""

    chart: Any
    table: Any
    series: list[Any] = field(default_factory=list)


def curve_points(lesion: dict, y_key: str) -> tuple[list[float], list[float], bool]:
    """(x, y, x_is_time) of one lesion's ``time_intensity_curve``, one point per phase (undefined y = NaN)."""
    curve = lesion.get("time_intensity_curve") or []
    have_times = bool(curve) and all(isinstance(p.get("time_s"), (int, float)) for p in curve)
    xs, ys = [], []
    for k, p in enumerate(curve):
        y = p.get(y_key)
        xs.append(float(p["time_s"]) if have_times else float(p.get("phase_index", k)))
        ys.append(float("nan") if y is None else float(y))
    return xs, ys, have_times


def _remove_series(scene: Any, chart: Any) -> None:
    for i in reversed(range(chart.GetNumberOfPlotSeriesNodes())):
        node = chart.GetNthPlotSeriesNode(i)
        chart.RemoveNthPlotSeriesNodeID(i)
        if node is not None:
            scene.RemoveNode(node)


def update_kinetic_plot(scene: Any, metrics: dict, lesion_names: Sequence[str],
                        colors: Sequence[Sequence[float]], plot: KineticPlot | None = None,
                        y_key: str = "mean_percent_enhancement_percent", name: str = "Kinetic curves") -> KineticPlot:
    """Create (or refresh in place) the kinetic curve plot of a ``lesion_metrics`` result.

    Args:
        scene: the MRML scene.
        metrics: ``lesion_metrics`` output (each lesion has ``time_intensity_curve``).
        lesion_names: segment name of each lesion (series names).
        colors: RGB 0..1 of each lesion (series colours, same as the segments).
        plot: existing plot to refresh (its old series are removed), or None to create one.
        y_key: curve quantity, a key of :data:`Y_QUANTITIES`.
        name: base name of new nodes.

    Raises:
        ValueError: unknown ``y_key`` or names/colours not matching the lesions.
    """
    if y_key not in Y_QUANTITIES:
        raise ValueError(f"y_key must be one of {sorted(Y_QUANTITIES)}, got {y_key!r}")
    lesions = metrics.get("lesions", [])
    if len(lesion_names) != len(lesions) or len(colors) != len(lesions):
        raise ValueError(f"{len(lesion_names)} names and {len(colors)} colours for {len(lesions)} lesions")
    if plot is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(f"{name} table"))
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
        plot = KineticPlot(chart=chart, table=table_node)
    else:
        _remove_series(scene, plot.chart)
        plot.series = []
    curves = [curve_points(les, y_key) for les in lesions]
    x_is_time = bool(curves) and all(c[2] for c in curves)
    n_points = max((len(c[0]) for c in curves), default=0)
    table = vtk.vtkTable()
    x_col = vtk.vtkDoubleArray()
    x_col.SetName("time_s" if x_is_time else "phase")
    table.AddColumn(x_col)
    for lesion_name in lesion_names:
        col = vtk.vtkDoubleArray()
        col.SetName(str(lesion_name))
        table.AddColumn(col)
    table.SetNumberOfRows(n_points)
    x_ref = max((c[0] for c in curves), key=len, default=[])
    for r in range(n_points):
        table.SetValue(r, 0, vtk.vtkVariant(x_ref[r]))
        for c, (xs, ys, _) in enumerate(curves, start=1):
            table.SetValue(r, c, vtk.vtkVariant(ys[r] if r < len(ys) else float("nan")))
    plot.table.SetAndObserveTable(table)
    if x_is_time:
        plot.table.SetColumnUnitLabel("time_s", "s")
    for lesion_name, rgb in zip(lesion_names, colors):
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(str(lesion_name)))
        series.SetAndObserveTableNodeID(plot.table.GetID())
        series.SetXColumnName(x_col.GetName())
        series.SetYColumnName(str(lesion_name))
        series.SetPlotType(series.PlotTypeScatter)
        series.SetLineStyle(series.LineStyleSolid)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetColor(*[float(v) for v in rgb[:3]])
        plot.chart.AddAndObservePlotSeriesNodeID(series.GetID())
        plot.series.append(series)
    plot.chart.SetTitle("Kinetic curves (lesion mean)")
    plot.chart.SetXAxisTitle("Time after pre-contrast (s)" if x_is_time else "Phase (0 = pre-contrast)")
    plot.chart.SetYAxisTitle(Y_QUANTITIES[y_key])
    plot.chart.SetLegendVisibility(True)
    return plot


def update_training_plot(scene: Any, curve: dict[str, Sequence[float]], plot: KineticPlot | None = None,
                         name: str = "Training curves") -> KineticPlot:
    """Training loss and validation Dice per epoch (``logic.training_curve`` output) as plot nodes.

    Refreshes ``plot`` in place when given (called after every epoch event), else creates it.
    """
    epochs = list(curve.get("epoch", []))
    series_spec = (("train_loss", "Training loss", (0.85, 0.33, 0.10)), ("val_dice", "Validation Dice", (0.0, 0.45, 0.74)))
    for key, _, _ in series_spec:
        if len(curve.get(key, [])) != len(epochs):
            raise ValueError(f"training curve '{key}' has {len(curve.get(key, []))} values for {len(epochs)} epochs")
    if plot is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(f"{name} table"))
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
        plot = KineticPlot(chart=chart, table=table_node)
        for key, title, rgb in series_spec:
            series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(title))
            series.SetAndObserveTableNodeID(table_node.GetID())
            series.SetXColumnName("epoch")
            series.SetYColumnName(key)
            series.SetPlotType(series.PlotTypeScatter)
            series.SetMarkerStyle(series.MarkerStyleCircle)
            series.SetColor(*rgb)
            chart.AddAndObservePlotSeriesNodeID(series.GetID())
            plot.series.append(series)
        chart.SetTitle("Training")
        chart.SetXAxisTitle("Epoch")
        chart.SetYAxisTitle("Loss / Dice")
        chart.SetLegendVisibility(True)
    table = vtk.vtkTable()
    for key in ("epoch", "train_loss", "val_dice"):
        col = vtk.vtkDoubleArray()
        col.SetName(key)
        table.AddColumn(col)
    table.SetNumberOfRows(len(epochs))
    for r, epoch in enumerate(epochs):
        table.SetValue(r, 0, vtk.vtkVariant(float(epoch)))
        table.SetValue(r, 1, vtk.vtkVariant(float(curve["train_loss"][r])))
        table.SetValue(r, 2, vtk.vtkVariant(float(curve["val_dice"][r])))
    plot.table.SetAndObserveTable(table)
    return plot
