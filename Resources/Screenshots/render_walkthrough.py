#!/usr/bin/env python
"""Render the module walkthrough picture from the module logic's real output (no Slicer GUI here).

3D Slicer itself cannot run on the build machines, so this script does what the panel does with the
same ``BreastLesionSegLib`` code on a real MRML scene (slicer-core wheel): a phantom exam is loaded as
volume nodes named like scanner series, inputs are auto-assigned, ``breastlesionseg segment`` runs out
of process with the shipped model, the result is imported as a segmentation node + lesion table +
kinetic curves. The picture is drawn with matplotlib from those MRML nodes (segments exported back
to label maps, table and curve table nodes read back), laid out like Slicer's "Four-Up + table + plot".

Usage (repository root):
    .venv/bin/python Resources/Screenshots/render_walkthrough.py [--model mm3dunet-phantom-demo] [--seed 3]
        [--output Resources/Screenshots/walkthrough.png]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "BreastLesionSeg"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mm3dunet-phantom-demo")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "Resources" / "Screenshots" / "walkthrough.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from breastlesionseg.phantom import PhantomConfig, generate_phantom
    from BreastLesionSegLib import scene_io, segmentation_nodes as sn, tables
    from BreastLesionSegLib.logic import SceneLogic
    from BreastLesionSegLib.mrml_context import create_standalone_context
    from BreastLesionSegLib.selftest import SERIES_NAMES
    from BreastLesionSegLib.settings import INPUT_VOLUMES, SegmentationSettings

    phantom = generate_phantom(PhantomConfig(seed=args.seed, n_lesions=(1, 2), lesion_diameter_mm=(12.0, 25.0)))
    ctx = create_standalone_context()
    nodes = [scene_io.node_from_volume(ctx.scene, v, SERIES_NAMES[k]) for k, v in enumerate(phantom.exam.phases)]
    logic = SceneLogic(ctx, work_dir=tempfile.mkdtemp(prefix="bls_walkthrough_"), threads=args.threads)
    assignment = logic.propose_inputs()
    pre, posts = logic.assigned_nodes(assignment)
    settings = SegmentationSettings(model=args.model, device="auto")
    logic.sync_model_defaults(settings)  # the model card's threshold and minimum volume, as the panel does
    result = logic.run_segmentation(logic.select_phases(INPUT_VOLUMES, pre, posts), settings)
    labels = sn.labels_from_segmentation(ctx, result.segmentation, pre)
    rows = tables.table_to_dicts(result.table)

    seg = result.segmentation.GetSegmentation()
    colors = {sid: seg.GetSegment(sid).GetColor() for sid in sn.segment_ids(result.segmentation)}
    pre_a = scene_io.volume_from_node(pre).array.astype(float)
    sub = scene_io.volume_from_node(posts[0]).array.astype(float) - pre_a
    lesion = labels.lesion_labels.array
    k = int(np.argwhere(lesion == 1)[:, 0].mean()) if lesion.any() else lesion.shape[0] // 2

    fig = plt.figure(figsize=(13, 8.4), dpi=100, facecolor="#2b2b2b")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.15, 1], wspace=0.12, hspace=0.22)
    text_kw = {"color": "white"}

    def contours(ax, mask, color, lw=1.4):
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=lw)

    for col, (img, title) in enumerate(((pre_a[k], f"{pre.GetName()} (pre-contrast), slice {k}"),
                                        (sub[k], f"{posts[0].GetName()} - pre (subtraction)"))):
        ax = fig.add_subplot(grid[0, col])
        lo, hi = np.percentile(img, [1, 99.5])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="upper")  # anterior up, patient right on the left
        if labels.breast_mask is not None:
            contours(ax, labels.breast_mask.array[k] == 1, colors["breast_left"])
            contours(ax, labels.breast_mask.array[k] == 2, colors["breast_right"])
        for idx, sid in enumerate(labels.lesion_segment_ids, start=1):
            contours(ax, lesion[k] == idx, colors[sid], lw=2.0)
            if (lesion[k] == idx).any():
                jy, ix = np.argwhere(lesion[k] == idx).mean(axis=0)
                ax.text(ix + 6, jy - 6, seg.GetSegment(sid).GetName(), color=colors[sid], fontsize=9, weight="bold")
        ax.set_title(title, fontsize=10, **text_kw)
        ax.axis("off")

    ax_t = fig.add_subplot(grid[1, 0])
    ax_t.axis("off")
    shown = [("Segment", "{}"), ("side", "{}"), ("volume_ml", "{:.2f}"), ("longest_3d_diameter_mm", "{:.1f}"),
             ("mean_pe_early_percent", "{:.0f}"), ("kinetic_curve_type", "{}"), ("ftv_ml", "{:.2f}")]
    header = ["Segment", "side", "vol mL", "diam mm", "PE %", "curve", "FTV mL"]

    def fmt(value, spec):
        if isinstance(value, float) and np.isnan(value):
            return "-"
        return spec.format(value) if value not in ("", None) else "-"

    max_rows = 8  # the table node has every lesion; the picture shows the first ones and the total
    shown_rows = rows[:max_rows] + ([rows[-1]] if len(rows) > max_rows else [])
    cells = [[fmt(r.get(key), spec) for key, spec in shown] for r in shown_rows]
    if cells:
        tab = ax_t.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        tab.scale(1.0, 1.4)
    ax_t.set_title(f"{result.table.GetName()} (table node)", fontsize=10, **text_kw)

    ax_p = fig.add_subplot(grid[1, 1], facecolor="#1e1e1e")
    curve_table = result.plot.table.GetTable()
    x_name = curve_table.GetColumnName(0)
    x = [curve_table.GetValue(r, 0).ToDouble() for r in range(curve_table.GetNumberOfRows())]
    for i in range(result.plot.chart.GetNumberOfPlotSeriesNodes()):
        series = result.plot.chart.GetNthPlotSeriesNode(i)
        col = curve_table.GetColumnByName(series.GetYColumnName())
        ax_p.plot(x, [col.GetValue(r) for r in range(col.GetNumberOfTuples())], "-o", color=series.GetColor(),
                  label=series.GetYColumnName())
    ax_p.set_xlabel(result.plot.chart.GetXAxisTitle(), **text_kw)
    ax_p.set_ylabel(result.plot.chart.GetYAxisTitle(), **text_kw)
    ax_p.tick_params(colors="white")
    ax_p.set_title(f"{result.plot.chart.GetName()} (plot chart node, {x_name})", fontsize=10, **text_kw)
    if 0 < result.plot.chart.GetNumberOfPlotSeriesNodes() <= 8:
        ax_p.legend(fontsize=8)
    fig.suptitle(f"BreastLesionSeg result on phantom seed {args.seed} with model '{result.segmentation.GetAttribute('BreastLesionSeg.Model')}'\n"
                 f"inputs auto-assigned: {', '.join(n.GetName() for n in [pre] + posts)}", fontsize=10, **text_kw)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, facecolor=fig.get_facecolor())
    truth = phantom.lesion_labels.array > 0
    dice = 2 * np.logical_and(truth, lesion > 0).sum() / max(1, truth.sum() + (lesion > 0).sum())
    print(f"wrote {args.output}; lesions found {len(labels.lesion_segment_ids)} (truth {len(phantom.lesions)}), "
          f"lesion Dice vs phantom truth {dice:.3f}; assignment notes: {assignment.notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
