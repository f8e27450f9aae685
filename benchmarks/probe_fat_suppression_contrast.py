#!/usr/bin/env python
"""What fat suppression changes in the network's input: small lesions in the normalised channels (issue 17).

For training-family patients drawn with and without fat suppression (family ``training-nonfatsat``; every other
draw of a seed is the same), builds the network's input channels exactly as inference does (``pre``, ``post1``,
``sub1``, normalised inside the true breast region: z-score, or ``--normalization robust``, median / MAD) and,
for every lesion of 20-300 mm3, reports per channel:

* ``mean``: the lesion's mean normalised value;
* ``percentile``: the share of breast voxels below that mean (%), i.e. how much the lesion stands out of the breast;
* ``cnr``: (lesion mean - ring mean) / ring SD, the ring being 2-4 voxels around the lesion (no lesion voxels).

No network is run: this measures the input, not the model. Writes
``benchmarks/output/fat_suppression_contrast.json`` (or ``--json``) and logs a per-lesion table and the medians.

Usage::

    .venv/bin/python benchmarks/probe_fat_suppression_contrast.py --seeds 2100-2119 [--normalization robust]
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

from breastlesionseg.io.atomic import write_text_atomic  # noqa: E402
from breastlesionseg.metrics.component_truth import is_small_lesion  # noqa: E402
from breastlesionseg.nn.channels import NORMALIZATIONS, build_channels  # noqa: E402
from breastlesionseg.phantom import generate_phantom  # noqa: E402
from breastlesionseg.phantom.randomisation import draw_config  # noqa: E402
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument  # noqa: E402

log = logging.getLogger("probe_fat_suppression_contrast")
CHANNELS = ("pre", "post1", "sub1")
#: the families of one patient: with fat suppression (as drawn for training) and without
CONDITIONS = {"fat-suppressed": "training", "not fat-suppressed": "training-nonfatsat"}
RING_INNER_VOXELS, RING_OUTER_VOXELS = 1, 4


def lesion_contrast(channel: np.ndarray, lesion: np.ndarray, ring: np.ndarray, breast: np.ndarray) -> dict:
    """``mean`` / ``percentile`` (% of breast voxels below the lesion mean) / ``cnr`` of one lesion in one channel."""
    mean = float(channel[lesion].mean())
    return {"mean": round(mean, 3), "percentile": round(float((channel[breast] < mean).mean() * 100), 1),
            "cnr": round(float((mean - channel[ring].mean()) / max(float(channel[ring].std()), 1e-6)), 2)}


def small_lesions(seed: int, family: str, normalization: str = "zscore") -> list[dict]:
    """The 20-300 mm3 lesions of phantom ``seed`` of ``family`` with their contrast in every channel (normalised
    with ``normalization``)."""
    phantom = generate_phantom(draw_config(family, seed))
    breast = np.asarray(phantom.breast_mask.array) > 0
    channels = build_channels(phantom.exam, list(CHANNELS), normalization, mask=breast)
    truth = np.asarray(phantom.lesion_labels.array) > 0
    labels, count = ndimage.label(truth)
    rows = []
    for index in range(1, count + 1):
        lesion = labels == index
        volume_mm3 = float(lesion.sum() * phantom.exam.geometry.voxel_volume_mm3)
        if not is_small_lesion(volume_mm3):
            continue
        ring = (ndimage.binary_dilation(lesion, iterations=RING_OUTER_VOXELS)
                & ~ndimage.binary_dilation(lesion, iterations=RING_INNER_VOXELS) & ~truth)
        rows.append({"seed": seed, "lesion": index, "volume_mm3": round(volume_mm3, 1),
                     **{name: lesion_contrast(ch, lesion, ring, breast) for name, ch in zip(CHANNELS, channels)}})
    return rows


def medians(rows: list[dict]) -> dict:
    """Median of every channel's measures over ``rows``."""
    return {name: {key: round(statistics.median(r[name][key] for r in rows), 2) for key in ("mean", "percentile", "cnr")}
            for name in CHANNELS} if rows else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seeds_argument, default=parse_seeds("2100-2119"),
                        help="training-family patients (default 2100-2119, the benchmark's pairs)")
    parser.add_argument("--normalization", choices=[n for n in NORMALIZATIONS if n != "none"], default="zscore",
                        help="channel normalisation inside the breast (nn.channels; default zscore, as version 5)")
    parser.add_argument("--json", type=Path, default=None,
                        help="output (default benchmarks/output/fat_suppression_contrast[_robust].json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    suffix = "" if args.normalization == "zscore" else f"_{args.normalization}"
    out = args.json or REPO / "benchmarks" / "output" / f"fat_suppression_contrast{suffix}.json"
    result = {"seeds": [args.seeds[0], args.seeds[-1]], "channels": list(CHANNELS),
              "normalization": args.normalization, "conditions": {}}
    for condition, family in CONDITIONS.items():
        rows = [row for seed in args.seeds for row in small_lesions(seed, family, args.normalization)]
        for r in rows:
            log.info("%-19s seed %d lesion %d %6.1f mm3 | %s", condition, r["seed"], r["lesion"], r["volume_mm3"],
                     " | ".join(f"{n} {r[n]['mean']:5.2f} p{r[n]['percentile']:5.1f} cnr {r[n]['cnr']:5.2f}"
                                for n in CHANNELS))
        result["conditions"][condition] = {"family": family, "lesions": rows, "median": medians(rows)}
        log.info("%s: median over %d lesions %s", condition, len(rows), result["conditions"][condition]["median"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(result, indent=1), overwrite=True)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
