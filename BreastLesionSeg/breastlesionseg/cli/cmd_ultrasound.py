"""``breastlesionseg ultrasound``: lesion mask, lesion-present and malignancy probabilities and heat map
of breast ultrasound images (research use; not a medical device).

For each input image ``IMG``: ``DIR/<stem>/lesion_mask.png`` (0/255, the input's exact size),
``result.json``, ``heatmap.png``, ``overlay.png``; one row per input in ``DIR/results.csv``. A file that
cannot be read is reported by name, the others are still processed, and the exit code is non-zero.
Examples::

    breastlesionseg ultrasound scan.png --output out/
    breastlesionseg ultrasound exam_folder/ cine.dcm --frame 12 --output out/ --model us-attunet-busbra
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import EXIT_BAD_INPUT, EXIT_OK, BreastLesionSegError, InputError
from ..ultrasound.model import DEFAULT_MODEL_ID

log = logging.getLogger(__name__)

#: file name endings read from a folder input
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
CSV_COLUMNS: tuple[str, ...] = ("input", "status", "output_folder", "lesion_present_probability", "malignancy_probability",
                                "lesion_found", "lesion_area_px", "lesion_area_mm2", "model_id", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ultrasound`` sub-command."""
    p = subparsers.add_parser("ultrasound", help="breast ultrasound: lesion mask, malignancy probability, heat map",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files (PNG/JPEG/BMP/TIFF/DICOM) or folders of them")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default=DEFAULT_MODEL_ID, metavar="NAME|PATH", help="model id or folder (default: the shipped BUS-BRA model)")
    p.add_argument("--frame", type=int, default=None, metavar="K", help="frame of multi-frame files (default: middle frame)")
    p.add_argument("--no-heat-map", action="store_true", help="skip the Grad-CAM heat map (heatmap.png is then all zero)")
    p.add_argument("--force", action="store_true", help="replace existing output folders and results.csv")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.set_defaults(func=run)


def collect_inputs(items: list[str]) -> list[Path]:
    """Files as given, plus the image files (by suffix) directly inside each folder, sorted; order kept."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                log.warning("folder '%s' holds no image files (%s)", path, ", ".join(IMAGE_SUFFIXES))
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def output_names(paths: list[Path]) -> list[str]:
    """One distinct folder name per input: the stem, or ``stem_ext`` / ``stem_<n>`` when stems collide."""
    names: list[str] = []
    for path in paths:
        name = path.stem or "image"
        if name in names:
            name = f"{path.stem}_{path.suffix.lstrip('.').lower() or 'file'}"
        base, counter = name, 2
        while name in names:
            name, counter = f"{base}_{counter}", counter + 1
        names.append(name)
    return names


def process_one(path: Path, name: str, model, args: argparse.Namespace) -> dict:
    """Predict and write one image's folder; returns its results.csv row (raises on failure)."""
    from ..imaging2d.image_io import read_image_2d
    from ..imaging2d.writer import write_image_outputs
    from ..ultrasound.predict import predict_image

    image = read_image_2d(path, args.frame)
    result = predict_image(image, model, with_heat_map=not args.no_heat_map)
    fields = result.to_json_dict()
    folder = write_image_outputs(args.output, name, image.pixels, result.mask.astype(bool), result.heat_map,
                                 fields, overwrite=args.force)
    return {"input": str(path), "status": "ok", "output_folder": str(folder), **fields}


def run(args: argparse.Namespace) -> int:
    """Process every input; exit code 0 when all succeeded, 2 when any input failed."""
    import torch

    from ..imaging2d.writer import RESULTS_CSV, write_results_csv
    from ..nn.limitations import limitation_notes
    from ..ultrasound.model import load_ultrasound_model

    torch.set_num_threads(max(1, args.threads))
    csv_path = Path(args.output) / RESULTS_CSV
    if csv_path.exists() and not args.force:
        raise InputError(f"'{csv_path}' exists; use --force to replace it, or choose another --output")
    paths = collect_inputs(args.inputs)
    if not paths:
        raise InputError("no input images found in " + ", ".join(args.inputs))
    model = load_ultrasound_model(args.model)
    for note in limitation_notes(model.model_id, model.card.limitations):
        log.warning("%s", note)
    rows, failures = [], 0
    for path, name in zip(paths, output_names(paths)):
        try:
            row = process_one(path, name, model, args)
            log.info("%s: lesion present %.2f, malignancy %.2f, area %d px -> %s", path,
                     row["lesion_present_probability"], row["malignancy_probability"], row["lesion_area_px"], row["output_folder"])
        except BreastLesionSegError as exc:
            failures += 1
            log.error("%s", exc)
            row = {"input": str(path), "status": "error", "error": str(exc), "model_id": model.model_id}
        rows.append(row)
    write_results_csv(csv_path, rows, CSV_COLUMNS, overwrite=args.force)
    print(f"{len(rows) - failures} of {len(rows)} image(s) processed; results in {csv_path}")
    return EXIT_BAD_INPUT if failures else EXIT_OK
