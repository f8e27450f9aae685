#!/usr/bin/env python
"""Does the 3D lesion model hold on exams it was not generated from? (issue 17)

One run measures, for each model given, through the whole ``SegmentationEngine`` pipeline (breast
region, crop, canonical model grid, sliding window, post-processing, per-lesion confidence):

* **Duke 153** (real exam, ``../shared/data/duke-breast-mri-153``): fraction of Lesion 1's voxels inside
  the expert box (target >= 85 %), number of other reported lesions (target <= 2), number of candidates;
* **held-out phantom families** (``heldout-*`` of ``breastlesionseg.phantom.randomisation``, never
  trained or calibrated on): lesion Dice (mean over exams with lesions), sensitivity for lesions
  >= 20 mm3, false positives per exam (lesion-free exams included), breast-region Dice;
* **compound oblique vs axial**: default phantoms and the same patients on a grid rotated 20 degrees
  about z and then x; lesion Dice of both;
* **in distribution**: default-configuration phantoms of the held-out seeds 0-19.

Every phantom figure is given twice: for the *reported* lesions (``lesions.nii.gz``) and for *all*
components (reported + candidates), so the effect of the per-lesion confidence is visible.

Writes ``benchmarks/output/generalisation/generalisation.json`` and ``.md`` (the table for
``docs/generalisation.md``). Example (about 20-40 min on 2 shared CPU cores)::

    python benchmarks/bench_generalisation.py --models models/mm3dunet-phantom-demo --family-seeds 0-2 \\
        --oblique-seeds 0-2 --indist-seeds 0-3
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from breastlesionseg.geometry import Volume
from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.metrics import evaluate_segmentation
from breastlesionseg.phantom import PhantomConfig, generate_phantom
from breastlesionseg.phantom.randomisation import FAMILIES, draw_config

log = logging.getLogger("bench_generalisation")
REPO = Path(__file__).resolve().parents[1]
DUKE = REPO.parent / "shared" / "data" / "duke-breast-mri-153"
OUT = REPO / "benchmarks" / "output" / "generalisation"
#: lesions at least this large (mm3) count for the sensitivity
SENSITIVITY_MIN_MM3 = 20.0


def parse_seeds(text: str) -> list[int]:
    """``"0-3"`` or ``"1,2,5-7"`` -> sorted unique seeds."""
    seeds: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        seeds.update(range(int(lo), int(hi or lo) + 1))
    return sorted(seeds)


def _all_components(result) -> Volume:
    """Reported lesions and candidates in one map (candidates numbered after the lesions)."""
    arr = np.asarray(result.lesion_labels.array, dtype=np.uint16).copy()
    if result.candidate_labels is not None:
        cand = np.asarray(result.candidate_labels.array)
        arr[cand > 0] = cand[cand > 0] + result.n_lesions
    return Volume(arr, result.lesion_labels.geometry, name="all components")


def _score(prediction: Volume, phantom) -> dict:
    ev = evaluate_segmentation(prediction, phantom.lesion_labels, surface_distances_mm=False)
    refs = [r for r in ev["detection"]["reference_lesions"] if r["volume_mm3"] >= SENSITIVITY_MIN_MM3]
    return {"dice": ev["dice"], "fp": ev["detection"]["counts"]["fp"], "n_ref": len(refs),
            "n_detected": sum(bool(r["detected"]) for r in refs)}


def phantom_case(engine: SegmentationEngine, config: PhantomConfig) -> dict:
    """Segment one phantom; scores of the reported lesions and of all components, breast-region Dice."""
    t0 = time.perf_counter()
    phantom = generate_phantom(config)
    result = engine.run(phantom.exam)
    truth_breast = np.asarray(phantom.breast_mask.array) > 0
    pred_breast = np.asarray(result.breast_mask.array) > 0
    breast_dice = 2.0 * np.count_nonzero(truth_breast & pred_breast) / max(
        np.count_nonzero(truth_breast) + np.count_nonzero(pred_breast), 1)
    row = {"seed": config.seed, "has_lesion": bool(phantom.lesions), "n_lesions_truth": len(phantom.lesions),
           "reported": _score(result.lesion_labels, phantom), "all": _score(_all_components(result), phantom),
           "n_candidates": len(result.candidates), "breast_dice": float(breast_dice),
           "segment_s": float(result.timings_s.get("total", 0.0)), "wall_s": time.perf_counter() - t0}
    log.info("  seed %d: Dice %.3f (all %.3f), FP %d (all %d), candidates %d, breast Dice %.3f", config.seed,
             row["reported"]["dice"] or 0.0, row["all"]["dice"] or 0.0, row["reported"]["fp"], row["all"]["fp"],
             row["n_candidates"], breast_dice)
    return row


def summarise(rows: list[dict]) -> dict:
    """Mean lesion Dice (exams with lesions), sensitivity >= 20 mm3, FP/exam, breast Dice; reported and all."""
    out: dict = {"n_exams": len(rows), "n_lesion_free": sum(not r["has_lesion"] for r in rows),
                 "breast_dice": float(np.mean([r["breast_dice"] for r in rows])) if rows else None}
    for key in ("reported", "all"):
        with_lesion = [r[key]["dice"] for r in rows if r["has_lesion"] and r[key]["dice"] is not None]
        n_ref = sum(r[key]["n_ref"] for r in rows)
        out[key] = {"dice": float(np.mean(with_lesion)) if with_lesion else None,
                    "sensitivity": sum(r[key]["n_detected"] for r in rows) / n_ref if n_ref else None,
                    "fp_per_exam": float(np.mean([r[key]["fp"] for r in rows])) if rows else None}
    return out


def duke_case(engine: SegmentationEngine) -> dict:
    """Duke 153: Lesion 1 inside the expert box, other reported lesions, candidates."""
    from breastlesionseg.exam import load_exam, resample_to_grid
    from breastlesionseg.io import read_label_volume

    paths = sorted(DUKE.glob("Breast_MRI_153_000[0-4]_*.nii.gz"))
    exam = load_exam(paths)
    result = engine.run(exam)
    box = read_label_volume(DUKE / "Breast_MRI_153_lesion_bbox.nii.gz")
    if not box.geometry.same_grid(exam.geometry):
        box = resample_to_grid(box, exam.geometry, "nearest")
    inside = np.asarray(box.array) > 0
    labels = np.asarray(result.lesion_labels.array)
    lesion1 = labels == 1
    frac = float(np.count_nonzero(lesion1 & inside) / max(np.count_nonzero(lesion1), 1))
    cand = np.asarray(result.candidate_labels.array) if result.candidate_labels is not None else None
    return {"lesion1_fraction_in_box": frac, "lesion1_volume_mm3": result.lesion_volumes_mm3[0] if labels.any() else 0,
            "other_lesions": max(result.n_lesions - 1, 0), "n_candidates": len(result.candidates),
            "lesion_confidence": result.lesion_confidence, "segment_s": result.timings_s.get("total"),
            "candidates_in_box": int(len(np.unique(cand[inside & (cand > 0)]))) if cand is not None else 0}


def run_model(model: str, args: argparse.Namespace) -> dict:
    """Every section of the benchmark for one model."""
    engine = SegmentationEngine(InferenceConfig(model=model, device="cpu", num_threads=args.threads))
    out: dict = {"model": model, "sha256": engine.model_info.sha256,
                 "has_confidence_model": bool(getattr(engine.card, "lesion_confidence", None))}
    if args.duke and DUKE.is_dir():
        log.info("%s: Duke 153", model)
        out["duke"] = duke_case(engine)
    out["families"] = {}
    for name in args.families:
        log.info("%s: family %s", model, name)
        rows = [phantom_case(engine, draw_config(name, s)) for s in args.family_seeds]
        out["families"][name] = {"rows": rows, "summary": summarise(rows)}
    obl = {"axial": [], "oblique": []}
    for s in args.oblique_seeds:
        log.info("%s: axial / compound oblique seed %d", model, s)
        obl["axial"].append(phantom_case(engine, PhantomConfig(seed=s)))
        obl["oblique"].append(phantom_case(engine, PhantomConfig(seed=s, oblique_deg=20.0, oblique_axis="z",
                                                                 oblique2_deg=20.0, oblique2_axis="x")))
    out["oblique"] = {k: {"rows": v, "summary": summarise(v)} for k, v in obl.items()}
    log.info("%s: in distribution", model)
    rows = [phantom_case(engine, PhantomConfig(seed=s)) for s in args.indist_seeds]
    out["in_distribution"] = {"rows": rows, "summary": summarise(rows)}
    return out


def _f(v, fmt="{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    """The results as Markdown tables (reported lesions; all components in brackets)."""
    lines = [f"Seeds: held-out families {args.family_seeds[0]}-{args.family_seeds[-1]} per family, "
             f"oblique {args.oblique_seeds}, in distribution {args.indist_seeds}. Figures: reported lesions "
             "(all components incl. candidates in brackets).", ""]
    for res in results:
        lines += [f"### {res['model']} (sha256 {res['sha256'][:12]}, confidence model: "
                  f"{'yes' if res['has_confidence_model'] else 'no'})", ""]
        if "duke" in res:
            d = res["duke"]
            lines += [f"Duke 153: Lesion 1 {100 * d['lesion1_fraction_in_box']:.1f} % inside the expert box "
                      f"({d['lesion1_volume_mm3'] / 1000:.2f} mL), {d['other_lesions']} other reported lesions, "
                      f"{d['n_candidates']} candidates.", ""]
        lines += ["| set | exams (lesion-free) | lesion Dice | sensitivity >= 20 mm3 | FP / exam | breast Dice |",
                  "|---|---|---|---|---|---|"]
        sets = [(k, v["summary"]) for k, v in res["families"].items()]
        sets += [(f"default {k}", v["summary"]) for k, v in res["oblique"].items()]
        sets += [("in distribution (default, seeds 0-19 subset)", res["in_distribution"]["summary"])]
        for name, s in sets:
            r, a = s["reported"], s["all"]
            lines.append(f"| {name} | {s['n_exams']} ({s['n_lesion_free']}) | {_f(r['dice'])} ({_f(a['dice'])}) | "
                         f"{_f(r['sensitivity'], '{:.2f}')} ({_f(a['sensitivity'], '{:.2f}')}) | "
                         f"{_f(r['fp_per_exam'], '{:.2f}')} ({_f(a['fp_per_exam'], '{:.2f}')}) | "
                         f"{_f(s['breast_dice'])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[str(REPO / "models" / "mm3dunet-phantom-demo")])
    parser.add_argument("--families", nargs="+", default=[n for n, f in FAMILIES.items() if f.heldout])
    parser.add_argument("--family-seeds", type=parse_seeds, default=parse_seeds("0-2"))
    parser.add_argument("--oblique-seeds", type=parse_seeds, default=parse_seeds("0-2"))
    parser.add_argument("--indist-seeds", type=parse_seeds, default=parse_seeds("0-3"))
    parser.add_argument("--no-duke", dest="duke", action="store_false")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    unknown = [f for f in args.families if f not in FAMILIES or not FAMILIES[f].heldout]
    if unknown:
        parser.error(f"not held-out families: {unknown}")
    results = [run_model(m, args) for m in args.models]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generalisation.json").write_text(json.dumps(results, indent=1, default=float))
    table = markdown(results, args)
    (args.out / "generalisation.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
