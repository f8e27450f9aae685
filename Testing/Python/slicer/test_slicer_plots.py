"""Kinetic curve and training curve plot nodes (real vtkMRMLPlot* nodes)."""
from __future__ import annotations

import math

import pytest

from breastlesionseg.exam import DCEExam
from breastlesionseg.metrics import lesion_metrics
from BreastLesionSegLib import plots
from BreastLesionSegLib.logic import training_curve
from BreastLesionSegLib.process import parse_progress_line


def _column(table_node, name):
    t = table_node.GetTable()
    col = t.GetColumnByName(name)
    return [col.GetValue(i) for i in range(t.GetNumberOfRows())]


def test_kinetic_plot_one_series_per_lesion_with_times(ctx, synthetic_results):
    vols, breast, lesions = synthetic_results
    exam = DCEExam(vols, acquisition_times_s=[0.0, 90.0, 180.0])
    metrics = lesion_metrics(exam, lesions, breast)
    plot = plots.update_kinetic_plot(ctx.scene, metrics, ["Lesion 1", "Lesion 2"], [(1, 0, 0), (0, 0, 1)])
    assert plot.chart.GetNumberOfPlotSeriesNodes() == 2
    s1 = plot.chart.GetNthPlotSeriesNode(0)
    assert s1.GetXColumnName() == "time_s" and s1.GetYColumnName() == "Lesion 1"
    assert s1.GetColor() == pytest.approx((1.0, 0.0, 0.0))
    assert _column(plot.table, "time_s") == [0.0, 90.0, 180.0]
    pe = _column(plot.table, "Lesion 1")  # lesion: 100 -> 300 -> 250 (+-1 noise): 0, ~200, ~150 %
    assert pe[0] == pytest.approx(0.0, abs=1e-6) and pe[1] == pytest.approx(200, abs=5) and pe[2] == pytest.approx(150, abs=5)
    assert plot.chart.GetXAxisTitle().startswith("Time")
    # refresh in place with one lesion: old series nodes leave the scene
    n_series = ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode")
    one = dict(metrics, lesions=metrics["lesions"][:1])
    same = plots.update_kinetic_plot(ctx.scene, one, ["Lesion 1"], [(1, 0, 0)], plot)
    assert same.chart is plot.chart and same.chart.GetNumberOfPlotSeriesNodes() == 1
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == n_series - 1
    with pytest.raises(ValueError, match="names"):
        plots.update_kinetic_plot(ctx.scene, metrics, ["Lesion 1"], [(1, 0, 0)])
    with pytest.raises(ValueError, match="y_key"):
        plots.update_kinetic_plot(ctx.scene, metrics, ["a", "b"], [(1, 0, 0)] * 2, y_key="peak")


def test_kinetic_plot_without_times_uses_phase_index(ctx, synthetic_results):
    vols, breast, lesions = synthetic_results
    metrics = lesion_metrics(DCEExam(vols), lesions, breast)
    plot = plots.update_kinetic_plot(ctx.scene, metrics, ["A", "B"], [(1, 0, 0), (0, 1, 0)], y_key="mean_signal")
    assert _column(plot.table, "phase") == [0.0, 1.0, 2.0]
    assert _column(plot.table, "A")[1] == pytest.approx(float(vols[1].array[lesions.array == 1].mean()), rel=1e-6)


def test_training_curve_from_epoch_events(ctx):
    lines = ['{"event": "progress", "stage": "load", "fraction": 0.1}',
             '{"event": "epoch", "epoch": 1, "epochs": 3, "train_loss": 0.9, "val_dice": 0.2}',
             '{"event": "epoch", "epoch": 2, "epochs": 3, "train_loss": 0.6}',
             '{"event": "epoch", "epoch": 3, "epochs": 3, "train_loss": 0.4, "val_dice": 0.6}']
    curve = training_curve([parse_progress_line(x) for x in lines])
    assert curve["epoch"] == [1.0, 2.0, 3.0] and curve["train_loss"] == [0.9, 0.6, 0.4]
    assert curve["val_dice"][0] == 0.2 and math.isnan(curve["val_dice"][1])
    plot = plots.update_training_plot(ctx.scene, curve)
    assert plot.chart.GetNumberOfPlotSeriesNodes() == 2
    assert _column(plot.table, "train_loss") == [0.9, 0.6, 0.4]
    curve["epoch"].append(4.0)
    curve["train_loss"].append(0.3)
    curve["val_dice"].append(0.7)
    again = plots.update_training_plot(ctx.scene, curve, plot)
    assert again.chart is plot.chart and _column(plot.table, "val_dice")[3] == pytest.approx(0.7)
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == 2
