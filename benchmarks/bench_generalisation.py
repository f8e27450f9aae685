#!/usr/bin/env python
"""Does the 3D lesion model hold on exams it was not generated from? (issue 17)

Every exam goes through the whole ``SegmentationEngine`` pipeline (breast region, crop, canonical model
grid, sliding window, post-processing) with every connected component kept as a *candidate* together
with its features and its match to the truth (``breastlesionseg.metrics.component_truth``). The
figures are then computed twice from the same run: for **all components** (what the model reported
before per-lesion confidence) and for the components a **confidence model reports**
(``confidence >= report_threshold``). Sections (one JSON line per exam, appended as it goes, so a
long run can be resumed with ``--resume``):

* ``validation`` — phantoms of the *training* family, seeds 2000-2099 (never held out): with
  ``--fit-confidence`` the confidence model is fitted on them (``scripts/calibrate_lesion_confidence.py``'s
  rule) and reused for every other section; otherwise the model card's confidence model is used;
* ``duke`` — Duke 153 (real exam): fraction of Lesion 1's voxels inside the expert box (target >= 85 %),
  other reported lesions (target <= 2), candidates;
* ``heldout-*`` — held-out phantom families (out of the training ranges): lesion Dice (mean over exams
  with lesions), sensitivity for lesions >= 20 mm3, false positives per exam (lesion-free exams
  included), breast-region Dice;
* ``axial`` / ``oblique`` — default phantoms and the same patients rotated 20 degrees about z and x;
* ``in-distribution`` — default phantoms of the held-out seeds 0-19;
* ``paired-fatsat`` / ``paired-nonfatsat`` (``--fat-suppression-seeds``) — the same training-family patients drawn
  with and without fat suppression (family ``training-nonfatsat``; every other draw the same), outside the
  validation seeds: what fat suppression alone changes, inside the training ranges.

Every section also gives the sensitivity for small lesions (20-300 mm3), where the misses are, and its *ceiling*:
the figures of the components that touch a true lesion alone, which no confidence model can exceed on this
network's output (a target the ceiling misses needs a better network, not a better confidence rule).

Writes ``benchmarks/output/generalisation/<model id>/cases.jsonl``, ``summary.json`` and ``summary.md``.
Example (about 1 h on 2 busy CPU cores)::

    python benchmarks/bench_generalisation.py --model models/mm3dunet-phantom-demo --fit-confidence
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from breastlesionseg.exam.loader import assemble_exam
from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.inference.lesion_confidence import (LesionConfidenceModel, choose_report_threshold,
                                                         confidence_fit_metrics, fit_confidence_model)
from breastlesionseg.metrics.component_features import COMPONENT_FEATURE_NAMES
from breastlesionseg.metrics.component_rows import read_component_cases
from breastlesionseg.metrics.component_truth import (
    is_false_positive,
    is_small_lesion,
    match_components,
    reference_lesions,
    score_subset,
)
from breastlesionseg.nn.model_card import ModelCard
from breastlesionseg.phantom import PhantomConfig, generate_phantom
from breastlesionseg.phantom.randomisation import FAMILIES, draw_config
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument
from breastlesionseg.phantom.structures import SOURCE_NAMES, component_sources

log = logging.getLogger("bench_generalisation")
REPO = Path(__file__).resolve().parents[1]
DUKE = REPO.parent / "shared" / "data" / "duke-breast-mri-153"
OUT = REPO / "benchmarks" / "output" / "generalisation"
#: a component is a true lesion when at least this fraction of its voxels lies in the truth
TRUE_OVERLAP_FRACTION = 0.1
OBLIQUE = dict(oblique_deg=20.0, oblique_axis="z", oblique2_deg=20.0, oblique2_axis="x")


def probe_engine(model: str, threads: int) -> SegmentationEngine:
    """An engine whose confidence model reports nothing: every component comes back as a candidate."""
    engine = SegmentationEngine(InferenceConfig(model=model, device="cpu", num_threads=threads))
    engine.card.lesion_confidence = LesionConfidenceModel(
        [COMPONENT_FEATURE_NAMES[0]], [0.0], [1.0], [0.0], 0.0, 1.0, "probe").to_dict()
    return engine


def phantom_case(engine: SegmentationEngine, section: str, config: PhantomConfig,
                 register: bool = False) -> dict[str, Any]:
    """One phantom: component rows (features + match to the truth), reference lesions, breast-region Dice.

    With ``register`` the post-contrast phases are first aligned rigidly to the pre-contrast phase, as
    ``segment --register`` does (its time is ``register_s``).
    """
    phantom = generate_phantom(config)
    exam, register_s = phantom.exam, 0.0
    if register:
        t0 = time.perf_counter()
        exam = assemble_exam(list(phantom.exam.phases), register=True)
        register_s = time.perf_counter() - t0
    result = engine.run(exam)
    ref = np.asarray(phantom.lesion_labels.array)
    components = np.asarray(result.candidate_labels.array)
    matches = match_components(components, ref)
    sources = component_sources(components, ref, np.asarray(phantom.tissue.array), np.asarray(phantom.structures.array))
    rows = []
    for c in result.candidates:
        m = matches[c["id"]]
        rows.append({**c, **m, "seed": config.seed, "source": sources.get(c["id"], "other"),
                     "is_lesion": m["n_overlap"] >= TRUE_OVERLAP_FRACTION * m["n_voxels"]})
    tb, pb = np.asarray(phantom.breast_mask.array) > 0, np.asarray(result.breast_mask.array) > 0
    return {"section": section, "seed": config.seed, "config": config.to_dict(), "rows": rows,
            "ref_volumes_mm3": reference_lesions(ref, phantom.exam.geometry.voxel_volume_mm3),
            "ref_voxels": int(np.count_nonzero(ref)),
            "breast_dice": float(2 * np.count_nonzero(tb & pb) / max(tb.sum() + pb.sum(), 1)),
            "segment_s": float(result.timings_s.get("total", 0.0)), "register_s": register_s}


def duke_case(engine: SegmentationEngine, register: bool = False) -> dict[str, Any]:
    """Duke 153: component rows with the fraction of each component inside the expert box."""
    from breastlesionseg.exam import load_exam, resample_to_grid
    from breastlesionseg.io import read_label_volume

    t0 = time.perf_counter()
    exam = load_exam(sorted(DUKE.glob("Breast_MRI_153_000[0-4]_*.nii.gz")), register=register)
    load_s = time.perf_counter() - t0
    result = engine.run(exam)
    box = read_label_volume(DUKE / "Breast_MRI_153_lesion_bbox.nii.gz")
    if not box.geometry.same_grid(exam.geometry):
        box = resample_to_grid(box, exam.geometry, "nearest")
    matches = match_components(np.asarray(result.candidate_labels.array), (np.asarray(box.array) > 0).astype(np.uint8))
    rows = [{**c, **matches[c["id"]]} for c in result.candidates]
    for r in rows:
        r["fraction_in_box"] = r["n_overlap"] / max(r["n_voxels"], 1)
    return {"section": "duke", "seed": -1, "rows": rows, "segment_s": float(result.timings_s.get("total", 0.0)),
            "load_s": load_s}


def planned_cases(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(section, PhantomConfig or 'duke') in run order: validation first (the confidence fit needs it)."""
    plan: list[tuple[str, Any]] = [("validation", draw_config("training", s)) for s in args.validation_seeds]
    if args.duke and DUKE.is_dir():
        plan.append(("duke", "duke"))
    for name in args.families:
        plan += [(name, draw_config(name, s)) for s in args.family_seeds]
        # lesion-free exams of the family (its other ranges unchanged): false positives where there is nothing
        plan += [(name, dataclasses.replace(draw_config(name, s), n_lesions=(0, 0))) for s in args.lesion_free_seeds]
    for s in args.oblique_seeds:
        plan += [("axial", PhantomConfig(seed=s)), ("oblique", PhantomConfig(seed=s, **OBLIQUE))]
    plan += [("in-distribution", PhantomConfig(seed=s)) for s in args.indist_seeds]
    for s in args.fat_suppression_seeds:
        plan += [("paired-fatsat", dataclasses.replace(draw_config("training", s), fat_saturated=True)),
                 ("paired-nonfatsat", draw_config("training-nonfatsat", s))]
    return plan


def collect(engine: SegmentationEngine, args: argparse.Namespace, cases_path: Path) -> list[dict]:
    """Run every planned case not yet in ``cases_path`` (JSON lines, appended per case)."""
    done = []
    if args.resume and cases_path.is_file():
        done = read_component_cases(cases_path)
    have = {(c["section"], c["seed"]) for c in done}
    for section, config in planned_cases(args):
        seed = -1 if config == "duke" else config.seed
        if (section, seed) in have:
            continue
        t0 = time.perf_counter()
        case = (duke_case(engine, args.register) if config == "duke"
                else phantom_case(engine, section, config, args.register))
        case["wall_s"] = time.perf_counter() - t0
        with cases_path.open("a") as fh:
            fh.write(json.dumps(case, default=float) + "\n")
        done.append(case)
        log.info("%s seed %d: %d components (%d true) in %.0f s", section, seed, len(case["rows"]),
                 sum(bool(r.get("is_lesion")) for r in case["rows"]), case["wall_s"])
    return done


#: the component subsets every section is scored on: all components, the ones the confidence model reports, and
#: the ones that touch a true lesion (what a perfect confidence model would report: the ceiling of any confidence
#: model on this network's output)
SUBSETS = ("all", "reported", "ceiling")


def _keep(key: str, row: dict, confidence: float, model: LesionConfidenceModel | None) -> bool:
    """Whether ``row`` belongs to subset ``key`` of :data:`SUBSETS`."""
    if key == "ceiling":
        return not is_false_positive(row)
    return key == "all" or model is None or confidence >= model.report_threshold


def summarise_section(cases: list[dict], model: LesionConfidenceModel | None) -> dict[str, Any]:
    """Lesion Dice / sensitivity >= 20 mm3 / FP per exam / breast Dice for each subset of :data:`SUBSETS`."""
    out: dict[str, Any] = {"n_exams": len(cases), "n_lesion_free": sum(not c["ref_volumes_mm3"] for c in cases),
                           "breast_dice": float(np.mean([c["breast_dice"] for c in cases]))}
    confidence = [model.confidence(c["rows"]) if (model is not None and c["rows"]) else np.ones(len(c["rows"]))
                  for c in cases]
    for key in SUBSETS:
        scores, small_scores = [], []
        for c, conf in zip(cases, confidence):
            for r, p in zip(c["rows"], conf):
                r["_keep"] = _keep(key, r, p, model)
            scores.append(score_subset(c["rows"], c["ref_volumes_mm3"], c["ref_voxels"], lambda r: r["_keep"]))
            small = {k: v for k, v in c["ref_volumes_mm3"].items() if is_small_lesion(v)}
            small_scores.append(score_subset(c["rows"], small, c["ref_voxels"], lambda r: r["_keep"]))
        dices = [s["dice"] for s, c in zip(scores, cases) if c["ref_volumes_mm3"] and s["dice"] is not None]
        n_ref = sum(s["n_ref"] for s in scores)
        n_small = sum(s["n_ref"] for s in small_scores)
        out[key] = {"dice": float(np.mean(dices)) if dices else None,
                    "sensitivity": sum(s["n_detected"] for s in scores) / n_ref if n_ref else None,
                    "n_small": n_small,
                    "sensitivity_small": sum(s["n_detected"] for s in small_scores) / n_small if n_small else None,
                    "fp_per_exam": float(np.mean([s["fp"] for s in scores])),
                    "fp_sources": false_positive_sources(r for c in cases for r in c["rows"] if r["_keep"])}
    return out


def false_positive_sources(rows: Iterable[dict]) -> dict[str, int]:
    """How many of ``rows``' false components (touching no true lesion) lie in each source (rows with one)."""
    counts = {name: 0 for name in SOURCE_NAMES}
    for r in rows:
        if is_false_positive(r) and "source" in r:
            counts[r["source"]] += 1
    return {name: n for name, n in counts.items() if n}


def summarise_duke(case: dict, model: LesionConfidenceModel | None) -> dict[str, Any]:
    """Lesion 1 (the largest reported component) in the box, other reported lesions, candidates."""
    out = {}
    for key in ("all", "reported"):
        rows = case["rows"]
        if key == "reported" and model is not None and rows:
            rows = [r for r, p in zip(rows, model.confidence(rows)) if p >= model.report_threshold]
        rows = sorted(rows, key=lambda r: -r["volume_mm3"])
        out[key] = {"lesion1_fraction_in_box": rows[0]["fraction_in_box"] if rows else None,
                    "lesion1_volume_mm3": rows[0]["volume_mm3"] if rows else None,
                    "other_lesions": max(len(rows) - 1, 0)}
    out["n_candidates"] = out["all"]["other_lesions"] - out["reported"]["other_lesions"]
    out["segment_s"] = case["segment_s"]
    out["load_s"] = case.get("load_s")
    return out


def confidence_model(cases: list[dict], card: Any, fit: bool) -> LesionConfidenceModel | None:
    """Fitted on the validation section (``fit``), else the card's."""
    if not fit:
        return LesionConfidenceModel.from_card(card)
    rows = [r for c in cases if c["section"] == "validation" for r in c["rows"]]
    seeds = sorted({c["seed"] for c in cases if c["section"] == "validation"})
    model = fit_confidence_model(rows, [r["is_lesion"] for r in rows], 0.5,
                                 f"{len(seeds)} validation phantoms, family 'training', seeds {seeds[0]}-{seeds[-1]} "
                                 "(benchmarks/bench_generalisation.py --fit-confidence)")
    model.report_threshold = choose_report_threshold(model, rows)
    model.fit_metrics = confidence_fit_metrics(model, rows, len(seeds))
    return model


def _number(value: float | None, fmt: str = "{:.3f}") -> str:
    """A table cell: ``value`` formatted, ``-`` when there is none."""
    return "-" if value is None else fmt.format(value)


def markdown(summary: dict) -> str:
    """The summary as a Markdown table (reported by the confidence model; all components in brackets)."""
    f = _number
    lines = [f"Model `{summary['model_id']}` (sha256 {summary['sha256'][:12]}); confidence model: "
             f"{summary['confidence']}. Figures: reported lesions (all components, i.e. without the "
             "confidence split, in brackets). `validation`: the phantoms the confidence model was fitted on "
             "(in-sample)." + (" Phases registered rigidly first (segment --register)." if summary.get("register")
                               else ""), ""]
    d = summary.get("duke")
    if d:
        r, a = d["reported"], d["all"]
        lines += [f"Duke 153: Lesion 1 {100 * (r['lesion1_fraction_in_box'] or 0):.1f} % inside the expert box "
                  f"({(r['lesion1_volume_mm3'] or 0) / 1000:.2f} mL); {r['other_lesions']} other reported lesions "
                  f"({a['other_lesions']} before the confidence split, {d['n_candidates']} now candidates).", ""]
    lines += ["| set | exams (lesion-free) | lesion Dice | sensitivity >= 20 mm3 | sensitivity 20-300 mm3 (lesions) "
              "| FP / exam | breast Dice |", "|---|---|---|---|---|---|---|"]
    for name, s in summary["sections"].items():
        r, a = s["reported"], s["all"]
        lines.append(f"| {name} | {s['n_exams']} ({s['n_lesion_free']}) | {f(r['dice'])} ({f(a['dice'])}) | "
                     f"{f(r['sensitivity'], '{:.2f}')} ({f(a['sensitivity'], '{:.2f}')}) | "
                     f"{f(r.get('sensitivity_small'), '{:.2f}')} ({f(a.get('sensitivity_small'), '{:.2f}')}; "
                     f"{r.get('n_small', '-')}) | "
                     f"{f(r['fp_per_exam'], '{:.2f}')} ({f(a['fp_per_exam'], '{:.2f}')}) | {f(s['breast_dice'])} |")
    lines += ceiling_markdown(summary["sections"])
    lines += sources_markdown(summary["sections"])
    return "\n".join(lines) + "\n"


def ceiling_markdown(sections: dict) -> list[str]:
    """Table of the ceiling subset: what a perfect confidence model would report from this network's output."""
    sections = {k: s for k, s in sections.items() if "ceiling" in s}
    if not sections:
        return []
    lines = ["", "Ceiling of any confidence model: the components that touch a true lesion, none of the false ones "
             "(no rule can report more of what the network found, or fewer false lesions):", "",
             "| set | lesion Dice | sensitivity >= 20 mm3 | sensitivity 20-300 mm3 |", "|---|---|---|---|"]
    for name, s in sections.items():
        c = s["ceiling"]
        lines.append(f"| {name} | {_number(c['dice'])} | {_number(c['sensitivity'], '{:.2f}')} | "
                     f"{_number(c['sensitivity_small'], '{:.2f}')} |")
    return lines


def sources_markdown(sections: dict) -> list[str]:
    """Table of where the false lesions lie (phantoms only): reported (all components in brackets)."""
    names = [n for n in SOURCE_NAMES if any(n in s[k].get("fp_sources", {}) for s in sections.values()
                                               for k in ("reported", "all"))]
    if not names:
        return []
    lines = ["", "False lesions by where they lie (count of reported false lesions; all false components in "
             "brackets):", "", "| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for section, s in sections.items():
        r, a = s["reported"].get("fp_sources", {}), s["all"].get("fp_sources", {})
        lines.append(f"| {section} | " + " | ".join(f"{r.get(n, 0)} ({a.get(n, 0)})" for n in names) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "mm3dunet-phantom-demo"))
    parser.add_argument("--validation-seeds", type=seeds_argument, default=parse_seeds("2000-2099"))
    parser.add_argument("--families", nargs="+", default=[n for n, f in FAMILIES.items() if f.heldout])
    parser.add_argument("--family-seeds", type=seeds_argument, default=parse_seeds("0-1"))
    parser.add_argument("--lesion-free-seeds", type=seeds_argument, default=[],
                        help="per held-out family, extra exams drawn with no lesion (seeds not in --family-seeds)")
    parser.add_argument("--oblique-seeds", type=seeds_argument, default=parse_seeds("0-5"),
                        help="default phantoms scored axial and compound oblique "
                             "(6 pairs; 2 are too few to judge a 0.05 Dice gap)")
    parser.add_argument("--indist-seeds", type=seeds_argument, default=parse_seeds("0,8,12"))
    parser.add_argument("--fat-suppression-seeds", type=seeds_argument, default=[],
                        help="training-family patients drawn with and without fat suppression (sections "
                             "paired-fatsat / paired-nonfatsat); not validation seeds, e.g. 2100-2119")
    parser.add_argument("--register", action="store_true",
                        help="align the phases rigidly first, as segment --register does (write to another --out)")
    parser.add_argument("--no-duke", dest="duke", action="store_false")
    parser.add_argument("--fit-confidence", action="store_true", help="fit the confidence model on 'validation'")
    parser.add_argument("--resume", action="store_true", help="keep the cases already in cases.jsonl")
    parser.add_argument("--summary-only", action="store_true", help="only summarise the cases in cases.jsonl")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if [f for f in args.families if f not in FAMILIES or not FAMILIES[f].heldout]:
        parser.error("--families must be held-out families")
    if set(args.validation_seeds) & set(range(20)):
        parser.error("validation seeds must not be the held-out seeds 0-19")
    if set(args.fat_suppression_seeds) & (set(args.validation_seeds) | set(range(20))):
        parser.error("--fat-suppression-seeds must be neither validation seeds (the confidence model is fitted on "
                     "them) nor the held-out seeds 0-19")
    card = ModelCard.read(Path(args.model))
    out = args.out / card.model_id
    out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        cases = read_component_cases(out / "cases.jsonl")
    else:
        cases = collect(probe_engine(args.model, args.threads), args, out / "cases.jsonl")
    model = confidence_model(cases, card, args.fit_confidence)
    sections: dict[str, list[dict]] = {}
    for c in cases:
        if c["section"] != "duke":
            sections.setdefault(c["section"], []).append(c)
    summary = {"model_id": card.model_id, "sha256": card.weights_sha256, "register": bool(args.register),
               "confidence": "none" if model is None else f"report threshold {model.report_threshold:.2f}, "
                                                          f"{model.fitted_on}",
               "confidence_model": None if model is None else model.to_dict(),
               "sections": {k: summarise_section(v, model) for k, v in sections.items()}}
    duke = [c for c in cases if c["section"] == "duke"]
    if duke:
        summary["duke"] = summarise_duke(duke[0], model)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
