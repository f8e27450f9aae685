#!/usr/bin/env python
"""Build a training dataset of synthetic phantom exams (for the demo model; never real data).

Each seed gives one phantom (``breastlesionseg.phantom``, default configuration except at least one
lesion per exam) added with its ground-truth lesion labels and breast mask through
``breastlesionseg.training.dataset_add.add_case`` (the same path as ``breastlesionseg dataset add``).

Seeds 0-19 are the held-out evaluation phantoms of the demo model and are refused unless
``--allow-eval-seeds`` is given.

Example::

    python scripts/make_phantom_dataset.py --out benchmarks/output/phantom_dataset --seeds 1000-1039
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

from breastlesionseg.errors import BreastLesionSegError
from breastlesionseg.phantom import generate_phantom
from breastlesionseg.phantom.randomisation import FAMILIES, draw_config
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument
from breastlesionseg.training.dataset import Dataset
from breastlesionseg.training.dataset_add import add_case

#: seeds of the held-out evaluation phantoms (never trained on)
EVAL_SEEDS = range(0, 20)

log = logging.getLogger("make_phantom_dataset")


def parse_range_mm(text: str) -> tuple[float, float]:
    """``"5,12"`` -> ``(5.0, 12.0)`` (mm); the phantom configuration checks the limits."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in mm (e.g. 5,12), got {text!r}") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 < MIN <= MAX, got {text!r}")
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    """Build the dataset; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="dataset folder to create or extend")
    parser.add_argument("--seeds", type=seeds_argument, default=parse_seeds("1000-1039"),
                        help="phantom seeds, e.g. 1000-1039 (default) or 1,2,5-7")
    parser.add_argument("--min-lesions", type=int, default=1, help="minimum lesions per phantom (default 1)")
    parser.add_argument("--max-lesions", type=int, default=3, help="maximum lesions per phantom (default 3)")
    parser.add_argument("--family", default="default",
                        help="phantom family of breastlesionseg.phantom.randomisation (default: the classic "
                             "phantom; 'training' = domain-randomised); held-out families are refused")
    parser.add_argument("--allow-eval-seeds", action="store_true",
                        help="allow the held-out evaluation seeds 0-19 (never for the demo model)")
    parser.add_argument("--lesion-diameter-mm", type=parse_range_mm, default=None, metavar="MIN,MAX",
                        help="draw lesion diameters from MIN-MAX mm instead of the configuration's 5-30 mm "
                             "(e.g. 5,12: small lesions)")
    parser.add_argument("--force", action="store_true", help="replace cases that already exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    bad = [s for s in args.seeds if s in EVAL_SEEDS]
    if bad and not args.allow_eval_seeds:
        log.error("seeds %s are held-out evaluation phantoms; refusing to put them in a training set", bad)
        return 2
    if args.family not in FAMILIES or FAMILIES[args.family].heldout:
        log.error("family %r is unknown or held out (out-of-distribution checks only); training families: %s",
                  args.family, [n for n, f in FAMILIES.items() if not f.heldout])
        return 2
    diameters = ("" if args.lesion_diameter_mm is None
                 else ", lesion diameter {:g}-{:g} mm".format(*args.lesion_diameter_mm))
    ds = Dataset(args.out)
    existing = set(ds.load_manifest().ids()) if ds.exists() else set()
    t0 = time.monotonic()
    try:
        for seed in args.seeds:
            case_id = f"phantom-{seed:05d}"
            if case_id in existing and not args.force:
                log.info("%s already in %s: kept", case_id, args.out)
                continue
            cfg = dataclasses.replace(draw_config(args.family, seed), n_lesions=(args.min_lesions, args.max_lesions))
            if args.lesion_diameter_mm is not None:
                cfg = dataclasses.replace(cfg, lesion_diameter_mm=args.lesion_diameter_mm)
            ph = generate_phantom(cfg)
            add_case(ds, case_id, ph.exam.phases, lesions=ph.lesion_labels, breast_mask=ph.breast_mask,
                     phase_names=ph.exam.names,
                     source=f"synthetic phantom seed={seed} family={args.family} (breastlesionseg.phantom, n_lesions="
                            f"{args.min_lesions}-{args.max_lesions}{diameters})",
                     corrected_by="phantom ground truth", notes=f"{len(ph.lesions)} lesion(s): "
                     + ", ".join(f"{l['kind']} {l['volume_mm3']:.0f} mm3" for l in ph.lesions),
                     force=args.force)
    except BreastLesionSegError as exc:
        log.error("%s", exc)
        return 2
    log.info("dataset %s: %d case(s) in %.0f s", args.out, len(ds.load_manifest().cases), time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
