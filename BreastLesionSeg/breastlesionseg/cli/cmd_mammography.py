"""``breastlesionseg mammography``: lesion mask and lesion probability of 2D mammograms
(research use; not a medical device).

For each input image ``IMG``: ``DIR/<stem>/lesion_mask.png`` (0/255, the input's exact size),
``result.json`` (lesion area in px and, when the DICOM file gives PixelSpacing/ImagerPixelSpacing, mm2),
``heatmap.png`` (the lesion probability, colour-mapped) and ``overlay.png``; one row per input in
``DIR/results.csv`` (the same layout as ``breastlesionseg ultrasound``). A file that cannot be read is
reported by name, the others are still processed, and the exit code is non-zero. Examples::

    breastlesionseg mammography mammogram.dcm --output out/
    breastlesionseg mammography folder/ other.png --output out/ --model hires-unet-cddcesm-demo
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import EXIT_BAD_INPUT, EXIT_OK, BreastLesionSegError, InputError

log = logging.getLogger(__name__)

CSV_COLUMNS: tuple[str, ...] = ("input", "status", "output_folder", "lesion_found", "lesion_area_px", "lesion_area_mm2",
                                "max_lesion_probability", "pixel_spacing_source", "model_id", "error")
DEFAULT_MODEL = "hires-unet-cddcesm-demo"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mammography`` sub-command."""
    p = subparsers.add_parser("mammography", help="2D mammography: lesion mask and probability map",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files (PNG/JPEG/BMP/TIFF/DICOM MG) or folders of them")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"model id or folder (default: the shipped demo {DEFAULT_MODEL})")
    p.add_argument("--frame", type=int, default=None, metavar="K", help="frame of multi-frame files")
    p.add_argument("--force", action="store_true", help="replace existing output folders and results.csv")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.set_defaults(func=run)


def process_one(path: Path, name: str, model, args: argparse.Namespace) -> dict:
    """Predict and write one image's folder; returns its results.csv row (raises on failure)."""
    from ..imaging2d.image_io import read_image_2d
    from ..imaging2d.writer import write_image_outputs
    from ..mammography.predict import predict_image

    image = read_image_2d(path, args.frame)
    result = predict_image(image, model)
    fields = result.to_json_dict()
    folder = write_image_outputs(args.output, name, image.pixels, result.mask.astype(bool),
                                 result.lesion_probability_map, fields, overwrite=args.force)
    return {"input": str(path), "status": "ok", "output_folder": str(folder), **fields}


def run(args: argparse.Namespace) -> int:
    """Process every input; exit code 0 when all succeeded, 2 when any input failed."""
    import torch

    from ..imaging2d.writer import RESULTS_CSV, write_results_csv
    from ..mammography.predict import load_mammography_model
    from ..nn.limitations import limitation_notes
    from .cmd_ultrasound import collect_inputs, output_names

    torch.set_num_threads(max(1, args.threads))
    csv_path = Path(args.output) / RESULTS_CSV
    if csv_path.exists() and not args.force:
        raise InputError(f"'{csv_path}' exists; use --force to replace it, or choose another --output")
    paths = collect_inputs(args.inputs)
    if not paths:
        raise InputError("no input images found in " + ", ".join(args.inputs))
    model = load_mammography_model(args.model)
    for note in limitation_notes(model.model_id, model.card.limitations):
        log.warning("%s", note)
    rows, failures = [], 0
    for path, name in zip(paths, output_names(paths)):
        try:
            row = process_one(path, name, model, args)
            log.info("%s: lesion area %d px -> %s", path, row["lesion_area_px"], row["output_folder"])
        except BreastLesionSegError as exc:
            failures += 1
            log.error("%s", exc)
            row = {"input": str(path), "status": "error", "error": str(exc), "model_id": model.model_id}
        rows.append(row)
    write_results_csv(csv_path, rows, CSV_COLUMNS, overwrite=args.force)
    print(f"{len(rows) - failures} of {len(rows)} image(s) processed; results in {csv_path}")
    return EXIT_BAD_INPUT if failures else EXIT_OK
