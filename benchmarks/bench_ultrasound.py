#!/usr/bin/env python
"""Benchmark ultrasound inference: CPU time per image after the model is loaded, and peak memory.

Runs ``predict_image`` (the CLI's path) on BUS-BRA test-fold images of the shipped model's fold, with
and without the Grad-CAM heat map, on ``--threads`` torch threads (default 2), after ``--warmup``
untimed images; reports median and 90th-percentile milliseconds per image and the process's peak
resident memory (``resource.getrusage``), and writes ``benchmarks/output/bench_ultrasound.json``.
Timing on a shared machine varies with its load: the load average is recorded beside the figures.

Usage::

    python benchmarks/bench_ultrasound.py [--model us-attunet-busbra] [--images 40] [--threads 2] [--one-look]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "busbra-ultrasound"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="us-attunet-busbra")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one-look", action="store_true",
                   help="time the model with its card's second look at the lesion switched off (lesion_zoom_margin 0)")
    p.add_argument("--output", default=str(REPO / "benchmarks" / "output" / "bench_ultrasound.json"))
    return p.parse_args()


def time_images(paths: list[Path], model, with_heat_map: bool, warmup: int) -> list[float]:
    """Milliseconds per image of ``predict_image`` (image already read) after ``warmup`` untimed ones."""
    from breastlesionseg.imaging2d.image_io import read_image_2d
    from breastlesionseg.ultrasound.predict import predict_image

    images = [read_image_2d(p) for p in paths]
    for image in images[:warmup]:
        predict_image(image, model, with_heat_map=with_heat_map)
    times = []
    for image in images:
        start = time.perf_counter()
        predict_image(image, model, with_heat_map=with_heat_map)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    """Run and print the benchmark."""
    args = parse_args()
    import torch

    from breastlesionseg.ultrasound.busbra import read_busbra
    from breastlesionseg.ultrasound.model import load_ultrasound_model

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_ultrasound_model(args.model)
    load_s = time.perf_counter() - started
    if args.one_look:
        model.card = dataclasses.replace(model.card, lesion_zoom_margin=0.0)
    fold = int(model.card.split.get("fold", 0))
    paths = [r.image_path for r in read_busbra(args.data) if r.test_fold == fold][: args.images]
    result = {"model_id": model.model_id, "lesion_zoom_margin": model.card.lesion_zoom_margin,
              "crop_classifier": model.crop_classifier is not None, "threads": args.threads, "images": len(paths),
              "load_s": round(load_s, 3),
              "load_average_1min": os.getloadavg()[0], "cpu": os.cpu_count(), "cpu_model": cpu_model()}
    for label, heat in (("mask_and_probabilities", False), ("with_heat_map", True)):
        times = time_images(paths, model, heat, args.warmup)
        result[label] = {"median_ms": round(statistics.median(times), 1),
                         "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 1)}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
