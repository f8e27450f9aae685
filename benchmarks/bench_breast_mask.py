#!/usr/bin/env python
"""Benchmark the classical breast-region segmentation and the optimized-volume (OV) crop.

Measures, on this machine (CPU description, cores, torch threads, GPU: none/yes):

* the time of ``segment_breast_region`` (median of ``--repeats`` runs; the exam is already in memory)
  on the real Duke exam (448 x 448 x 160, 5 phases; target < 5 s on 2 CPU cores) and on phantoms,
* breast volumes (mL) and, on phantoms, the Dice against the ground truth,
* the OV crop (16 mm margin, sides a multiple of 16): its shape and the fraction of the volume kept,

and saves axial + sagittal overlay PNGs of the Duke mask (matplotlib, Agg) to ``benchmarks/output/``.
Writes ``benchmarks/output/bench_breast_mask_<UTC time>.json`` and prints a table.

Usage::

    .venv/bin/python benchmarks/bench_breast_mask.py                 # Duke + 5 phantoms
    .venv/bin/python benchmarks/bench_breast_mask.py --phantoms 0 --repeats 1
    # randomised phantom families (breastlesionseg/phantom/randomisation.py): Dice and lesions left outside
    .venv/bin/python benchmarks/bench_breast_mask.py --phantoms 0 --repeats 1 --no-duke \
        --families heldout-marked-vessels heldout-nonfatsat-noisy heldout-coarse-thick heldout-oblique \
        --family-seeds 0-11
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument  # noqa: E402

log = logging.getLogger("bench_breast_mask")
DUKE = Path(os.environ.get("BLS_SHARED_DATA", REPO.parent / "shared" / "data")) / "duke-breast-mri-153"


def machine() -> dict:
    """Cores, CPU model, torch threads and GPU of this machine."""
    import torch

    cpu = cpu_model()
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def lesions_outside(region: np.ndarray, lesion_labels: np.ndarray) -> list[int]:
    """Reference lesion labels with less than half of their voxels inside ``region`` (bool, same grid)."""
    return [int(v) for v in np.unique(lesion_labels[lesion_labels > 0]) if region[lesion_labels == v].mean() < 0.5]


def timed(fn, repeats: int):
    """Run ``fn`` ``repeats`` times; returns (last result, list of seconds)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def overlay_png(exam, mask: np.ndarray, out_png: Path, view: str, bbox: np.ndarray | None = None) -> Path:
    """Axial or sagittal overlay of the breast mask (left red, right cyan) on the first post-contrast phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = np.asarray(exam.phases[1].array if len(exam.phases) > 1 else exam.pre.array, dtype=np.float32)
    vmax = float(np.percentile(img, 99.5))
    sx, sy, sz = exam.geometry.spacing
    if bbox is not None and bbox.any():
        zc, yc, xc = (int(np.mean(a)) for a in np.nonzero(bbox))
    else:
        zc, yc, xc = (s // 2 for s in img.shape)
    nz, ny, nx = img.shape
    if view == "axial":
        # the lowest panel lies below the heart, where the liver is behind the chest wall
        slices = [(int(nz * 0.15), "inferior, liver behind"), (int(nz * 0.3), "inferior"), (zc, "lesion slice"),
                  (int(nz * 0.7), "superior")]
        fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
        for ax, (z, what) in zip(axes, slices):
            ax.imshow(img[z], cmap="gray", vmin=0, vmax=vmax, aspect=sy / sx)
            ax.contour(mask[z] == 1, [0.5], colors="r", linewidths=1.0)
            ax.contour(mask[z] == 2, [0.5], colors="c", linewidths=1.0)
            if bbox is not None and bbox[z].any():
                ax.contour(bbox[z] > 0, [0.5], colors="y", linewidths=0.8)
            ax.set_title(f"axial z={z} ({what})", fontsize=9)
            # radiological display: patient's right (low LPS x) on the viewer's left is the array's left
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("Breast region (red: patient's left, cyan: patient's right, yellow: expert lesion box) "
                     "on post-contrast 1", fontsize=10)
    else:
        cols = [(xc, "through the lesion"), (nx - xc, "contralateral")]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        for ax, (x, what) in zip(axes, cols):
            x = int(np.clip(x, 0, nx - 1))
            ax.imshow(img[::-1, :, x], cmap="gray", vmin=0, vmax=vmax, aspect=sz / sy)
            ax.contour(mask[::-1, :, x] == 1, [0.5], colors="r", linewidths=1.0)
            ax.contour(mask[::-1, :, x] == 2, [0.5], colors="c", linewidths=1.0)
            if bbox is not None and bbox[:, :, x].any():
                ax.contour(bbox[::-1, :, x] > 0, [0.5], colors="y", linewidths=0.8)
            ax.set_title(f"sagittal x={x} ({what}); anterior left, superior up", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=64, pil_kwargs={"optimize": True})
    plt.close(fig)
    return out_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantoms", type=int, default=5, help="number of phantom seeds (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "output")
    parser.add_argument("--no-duke", dest="duke", action="store_false", help="skip the Duke exam")
    parser.add_argument("--families", nargs="*", default=[],
                        help="randomised phantom families (phantom/randomisation.py FAMILIES) to measure too")
    parser.add_argument("--family-seeds", type=seeds_argument, default=parse_seeds("0-11"),
                        help="seeds per family, e.g. '0-11' or '0,3,5-7' (default 0-11)")
    args = parser.parse_args(argv)
    from breastlesionseg.phantom.randomisation import FAMILIES, draw_config

    unknown = [f for f in args.families if f not in FAMILIES]
    if unknown:
        parser.error(f"--families: unknown phantom families {unknown}; choose from {sorted(FAMILIES)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import SimpleITK as sitk
    import torch

    torch.set_num_threads(args.threads)
    from breastlesionseg.breast import compute_crop, segment_breast_region
    from breastlesionseg.exam.dce_exam import DCEExam
    from breastlesionseg.geometry import Volume
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {"machine": machine(), "repeats": args.repeats, "cases": [], "created_utc": stamp}
    rows = []

    def record(name: str, exam, truth=None, bbox=None, lesion_labels=None) -> dict:
        result, times = timed(lambda: segment_breast_region(exam), args.repeats)
        crop = compute_crop(result.mask, margin_mm=16.0, multiple=16)
        case = {
            "case": name,
            "shape_zyx": list(exam.geometry.shape_zyx),
            "spacing_mm_xyz": list(exam.geometry.spacing),
            "phases": len(exam.phases),
            "time_s_median": statistics.median(times),
            "times_s": times,
            "step_timings_s": result.timings_s,
            "volumes_ml": result.volumes_ml,
            "crop": crop.to_dict(),
            "details": result.details,
        }
        if truth is not None:
            m, g = result.mask.array > 0, truth > 0
            case["dice_vs_truth"] = float(2 * np.count_nonzero(m & g) / (np.count_nonzero(m) + np.count_nonzero(g)))
        if lesion_labels is not None:
            case["lesions_outside"] = lesions_outside(result.mask.array > 0, lesion_labels)
        if bbox is not None:
            case["lesion_box_inside_fraction"] = float(np.mean(result.mask.array[bbox > 0] > 0))
        report["cases"].append(case)
        rows.append(case)
        return {"result": result, "case": case}

    if not args.duke:
        log.info("Duke exam skipped (--no-duke)")
    elif (DUKE / "Breast_MRI_153_0000_pre.nii.gz").is_file():
        paths = sorted(DUKE.glob("Breast_MRI_153_000[0-4]_*.nii.gz"))
        exam = DCEExam([Volume.from_sitk(sitk.ReadImage(str(p)), name=p.stem) for p in paths])
        bbox = sitk.GetArrayFromImage(sitk.ReadImage(str(DUKE / "Breast_MRI_153_lesion_bbox.nii.gz")))
        out = record("duke-breast-mri-153", exam, bbox=bbox)
        mask = out["result"].mask.array
        pngs = [overlay_png(exam, mask, args.out / "breast_region_duke_axial.png", "axial", bbox),
                overlay_png(exam, mask, args.out / "breast_region_duke_sagittal.png", "sagittal", bbox)]
        out["case"]["overlays"] = [str(p) for p in pngs]
    else:
        log.warning("Duke exam not found at %s: skipped", DUKE)

    for seed in range(args.phantoms):
        ph = generate_phantom(PhantomConfig(seed=seed))
        record(f"phantom seed {seed}", ph.exam, truth=ph.breast_mask.array)
    for family in args.families:
        for seed in args.family_seeds:
            ph = generate_phantom(draw_config(family, seed))
            record(f"{family} seed {seed}", ph.exam, truth=ph.breast_mask.array,
                   lesion_labels=np.asarray(ph.lesion_labels.array))

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench_breast_mask_{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
    mach = report["machine"]
    print(f"machine: {mach['cpu_model']}, {mach['cpu_cores']} cores, torch threads {mach['torch_threads']}, "
          f"GPU {mach['gpu']}")
    print(f"| case | shape (z,y,x) | time s (median of {args.repeats}) | left mL | right mL | crop (z,y,x) "
          "| kept % | Dice |")
    print("|---|---|---|---|---|---|---|---|")
    for c in rows:
        dice = f"{c['dice_vs_truth']:.4f}" if "dice_vs_truth" in c else "-"
        print(f"| {c['case']} | {tuple(c['shape_zyx'])} | {c['time_s_median']:.2f} | {c['volumes_ml']['left']:.0f} | "
              f"{c['volumes_ml']['right']:.0f} | {tuple(c['crop']['shape_zyx'])} | "
              f"{100 * c['crop']['fraction_kept']:.1f} | {dice} |")
    for family in args.families:
        cases = [c for c in rows if c["case"].startswith(f"{family} seed ")]
        dice = [c["dice_vs_truth"] for c in cases]
        outside = sum(len(c["lesions_outside"]) for c in cases)
        print(f"{family}: {len(cases)} phantoms, breast Dice mean {np.mean(dice):.4f} min {np.min(dice):.4f}, "
              f"{outside} lesions with less than half their voxels inside the breast region")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
