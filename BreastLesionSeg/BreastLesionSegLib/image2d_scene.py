"""Single 2D images (ultrasound, mammography) in the scene <-> the single-image commands' files.

The Slicer panel's 2D modes run ``breastlesionseg ultrasound IMAGE --output DIR`` (mammography: the
``mammography`` command, same layout) out of process like the DCE pipeline. Contract of those
commands: for an input ``<stem>.png`` they write ``DIR/<stem>/lesion_mask.png`` (8-bit 0/255, exactly
the input's width x height), ``result.json`` (``lesion_present_probability``,
``malignancy_probability``, lesion area, model id) and ``heatmap.png`` (colour heat map, same size).

An image in Slicer is a single-slice volume: a scalar node (gray) or a vector node (RGB), arrays
``(1, H, W)`` / ``(1, H, W, C)``. Row ``j`` and column ``i`` of the PNG are voxel ``(0, j, i)``, so the
mask maps back exactly onto the image's grid, and areas in mm2 use the node's pixel spacing when it is
known (a DICOM image, or a spacing other than Slicer's 1 x 1 mm default for PNG/JPEG files, which carry
none); otherwise the table gives the area in pixels only.

The commands report different fields: ``ultrasound`` a lesion-present and a malignancy probability,
``mammography`` the maximum lesion probability (``max_lesion_probability``); the table shows every
``*_probability`` number of ``result.json``, the model id and what the model card says about the model
(demo flag, training data), so a demo model is never mistaken for a validated one.

"Add to training set" (ultrasound) writes the corrected segment and the image as a pair laid out like
BUS-BRA (Gómez-Flores et al., "BUS-BRA: A breast ultrasound dataset for assessing computer-aided
diagnosis systems", Medical Physics 2024), so the same readers and tools work::

    <folder>/Images/bus_<id>.png      the image (8-bit; gray, or RGB as loaded), exactly the node's pixels
    <folder>/Masks/mask_<id>.png      the corrected "Lesion" segment, 0/255, the image's size
    <folder>/bus_data.csv             one row per pair: BUS-BRA's columns (ID, Case, Histology, Pathology,
                                      BIRADS, Device, Width, Height, Side, BBOX, Scale) + Source, CorrectedBy

Pathology, histology, BI-RADS, device and side are not known to the panel and are left empty (fill them
in before training a malignancy head); ``Scale`` is 1 (the image is written at its own size); ``BBOX``
is the mask's bounding box ``[x, y, w, h]`` in pixels. Nothing is ever overwritten: an existing image
or mask file, or an ID already in ``bus_data.csv``, is refused before anything is written, and every
file is written atomically (a failure removes the files that call wrote).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicer

from breastlesionseg.errors import InputError
from breastlesionseg.io import terminology
from breastlesionseg.io.atomic import write_atomic, write_text_atomic
from breastlesionseg.ultrasound.busbra import DATA_CSV, image_file, mask_file  # the layout read_busbra reads

from . import scene_io, segmentation_nodes, tables
from .settings import MODALITY_MAMMOGRAPHY, MODALITY_ULTRASOUND

log = logging.getLogger(__name__)

#: the command of each 2D modality, and the module that provides it
IMAGE_COMMANDS = {MODALITY_ULTRASOUND: "ultrasound", MODALITY_MAMMOGRAPHY: "mammography"}
MASK_FILE = "lesion_mask.png"
RESULT_FILE = "result.json"
HEATMAP_FILE = "heatmap.png"
INPUT_STEM = "image"
#: the editable segment of a 2D result
LESION_SEGMENT = segmentation_nodes.SegmentSpec("lesion", "Lesion", terminology.lesion_color(1),
                                                segmentation_nodes.lesion_terminology())
#: result.json fields shown in the table (besides every ``*_probability`` number)
RESULT_FIELDS = ("model_id",)
#: the model card's description in the table row (kept by Update metrics)
MODEL_FIELDS = ("model_demo", "model_trained_on")
#: Slicer's spacing of an image file without one (PNG, JPEG)
DEFAULT_SPACING_MM = (1.0, 1.0)


def image_pixels(node: Any) -> np.ndarray:
    """(H, W) or (H, W, C) pixels of a single-slice image volume.

    Raises:
        InputError: no node, no image data, or more than one slice.
    """
    if node is None or node.GetImageData() is None:
        raise InputError("no image selected (load a PNG, JPEG or DICOM image and select it)")
    array = slicer.util.arrayFromVolume(node)
    if array.shape[0] != 1:
        raise InputError(f"image '{node.GetName()}' has {array.shape[0]} slices; a single 2D image is needed")
    return np.array(array[0], copy=True)


def image_png_pixels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) pixels as written to a PNG: 8-bit (other types scaled from their min..max), a single
    component as gray."""
    if pixels.dtype != np.uint8:
        lo, hi = float(pixels.min()), float(pixels.max())
        pixels = np.zeros(pixels.shape, np.uint8) if hi <= lo else np.round((pixels - lo) / (hi - lo) * 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return pixels


def write_image_input(node: Any, folder: str | Path) -> Path:
    """Write the image as ``folder/image.png`` (:func:`image_png_pixels`)."""
    pixels = image_png_pixels(image_pixels(node))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{INPUT_STEM}.png"
    sitk.WriteImage(sitk.GetImageFromArray(pixels, isVector=pixels.ndim == 3), str(path))
    return path


def image_arguments(modality: str, image_path: Path, output_dir: Path, threads: int | None = None,
                    model: str | None = None) -> list[str]:
    """Arguments of the modality's single-image command (``model``: id or folder; None: its shipped model)."""
    if modality not in IMAGE_COMMANDS:
        raise InputError(f"modality {modality!r} has no single-image command (one of {tuple(IMAGE_COMMANDS)})")
    args = [IMAGE_COMMANDS[modality], str(image_path), "--output", str(output_dir)]
    args += ["--model", str(model)] if model else []
    return args + (["--threads", str(int(threads))] if threads else [])


def pixel_area_mm2(node: Any) -> float:
    """Area of one pixel in mm2 (column spacing x row spacing)."""
    spacing = node.GetSpacing()
    return float(spacing[0] * spacing[1])


def pixel_spacing_known(node: Any) -> bool:
    """True when the node's pixel spacing is real: a DICOM image (``DICOM.instanceUIDs``), or a spacing other
    than the 1 x 1 mm Slicer gives PNG / JPEG files (which carry no spacing)."""
    if node.GetAttribute("DICOM.instanceUIDs"):
        return True
    return tuple(float(v) for v in node.GetSpacing()[:2]) != DEFAULT_SPACING_MM


def _read_png(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"result folder '{path.parent}' has no {path.name} (did the command finish?)")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _check_size(array: np.ndarray, pixels: np.ndarray, path: Path) -> None:
    if array.shape[:2] != pixels.shape[:2]:
        raise InputError(f"'{path}' is {array.shape[1]}x{array.shape[0]} px; the image is "
                         f"{pixels.shape[1]}x{pixels.shape[0]} px")


def read_image_result(folder: str | Path, node: Any) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """(mask (H, W) bool, result.json dict, heat map (H, W, 3) uint8 or None) of ``folder`` for image ``node``.

    Raises:
        InputError: missing files, or a mask / heat map not of the image's size.
    """
    folder, pixels = Path(folder), image_pixels(node)
    mask = _read_png(folder / MASK_FILE, "mask")
    mask = mask[..., 0] if mask.ndim == 3 else mask
    _check_size(mask, pixels, folder / MASK_FILE)
    if not (folder / RESULT_FILE).is_file():
        raise InputError(f"result folder '{folder}' has no {RESULT_FILE}")
    result = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    heat = _read_png(folder / HEATMAP_FILE, "heat map") if (folder / HEATMAP_FILE).is_file() else None
    if heat is not None:
        _check_size(heat, pixels, folder / HEATMAP_FILE)
    return mask > 127, result, heat


def model_fields(model: Any) -> dict:
    """``model_demo`` ("yes"/"no") and ``model_trained_on`` (the card's training data) of a
    :class:`~.models.ModelInfo`; empty when the model's card was not found."""
    if model is None:
        return {}
    return {"model_demo": "yes" if model.demo else "no", "model_trained_on": model.training_data}


def lesion_row(result: dict, mask: np.ndarray, node: Any, model: Any = None) -> dict:
    """The table row of one image.

    Args:
        result: ``result.json`` (or the previous table row, after an edit): every ``*_probability`` number,
            the model id and the model fields are kept.
        mask: the (edited) lesion mask (H, W).
        node: the image (pixel spacing).
        model: the :class:`~.models.ModelInfo` of the model that ran (None: keep ``result``'s model fields).

    Returns:
        probabilities, ``model_id``, ``model_demo``, ``model_trained_on``, ``lesion_area_px``, and
        ``lesion_area_mm2`` when the pixel spacing is known (else ``pixel_spacing`` says it is unknown).
    """
    area_px = int(np.count_nonzero(mask))
    row = {key: value for key, value in result.items() if key.endswith("_probability")
           and isinstance(value, (int, float)) and not isinstance(value, bool)}
    row.update({key: result.get(key) for key in RESULT_FIELDS + MODEL_FIELDS if result.get(key) is not None})
    row.update(model_fields(model))
    row["lesion_area_px"] = area_px
    if pixel_spacing_known(node):
        spacing = node.GetSpacing()
        row.update(lesion_area_mm2=area_px * pixel_area_mm2(node), pixel_spacing=f"{spacing[0]:g} x {spacing[1]:g} mm")
    else:
        row["pixel_spacing"] = "unknown (image file without spacing): area in px only"
    return row


def write_lesion_segment(ctx: Any, seg_node: Any, node: Any, mask: np.ndarray) -> None:
    """Set the "Lesion" segment (Mass in the breast) of ``seg_node`` to ``mask`` (H, W) on the image's grid."""
    segmentation_nodes.set_segment_mask(ctx, seg_node, node, LESION_SEGMENT, np.asarray(mask, bool)[None])


def lesion_mask(ctx: Any, seg_node: Any, node: Any) -> np.ndarray:
    """The (edited) "Lesion" segment as an (H, W) bool mask on the image's grid."""
    return segmentation_nodes.export_segment_mask(ctx, seg_node, LESION_SEGMENT.segment_id, node)[0]


def fill_image_table(table_node: Any, row: dict) -> Any:
    """One "Lesion" row: probabilities, model id, area (px, mm2)."""
    return tables.fill_table_rows(table_node, [row], [LESION_SEGMENT.name])


def heatmap_volume(scene: Any, heat_rgb: np.ndarray, node: Any, name: str, old: Any = None) -> Any:
    """The colour heat map as an RGB volume on the image's grid (shown as the slice views' foreground)."""
    volume = old or scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", scene.GenerateUniqueName(name))
    slicer.util.updateVolumeFromArray(volume, np.ascontiguousarray(heat_rgb[None].astype(np.uint8)))
    volume.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(scene_io.ijk_to_ras_matrix(node, world=False)))
    if volume.GetDisplayNode() is None:
        volume.CreateDefaultDisplayNodes()
    return volume


# --- ultrasound training pairs (BUS-BRA layout) --------------------------------------------------------
#: BUS-BRA's bus_data.csv columns, then where the pair came from
CSV_COLUMNS = ("ID", "Case", "Histology", "Pathology", "BIRADS", "Device", "Width", "Height", "Side", "BBOX", "Scale",
               "Source", "CorrectedBy")
#: a folder holding a DCE-MRI training dataset (``breastlesionseg dataset``) is not mixed with 2D pairs
DCE_DATASET_FILE = "dataset.json"


@dataclass(frozen=True)
class TrainingPair:
    """Where one exported pair went.

    Attributes:
        image_id: the row's ID (``bus_<id>``).
        image_path, mask_path: the written PNG files.
        csv_path: ``bus_data.csv``.
        row: the CSV row written.
    """

    image_id: str
    image_path: Path
    mask_path: Path
    csv_path: Path
    row: dict


def pair_id(case_id: str) -> str:
    """The BUS-BRA-style ID of a case id: ``bus_<case id>`` (characters other than letters, digits, '.', '_'
    and '-' become '_').

    Raises:
        InputError: an empty case id.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id.strip()).strip("_.")
    if not slug:
        raise InputError("no case id given for the training pair (type one in the panel)")
    return slug if slug.startswith("bus_") else f"bus_{slug}"


def bounding_box(mask: np.ndarray) -> list[int]:
    """``[x, y, w, h]`` (pixels) of the non-zero pixels of an (H, W) mask."""
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]


def _existing_rows(csv_path: Path) -> list[dict]:
    if not csv_path.is_file():
        return []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "ID" not in reader.fieldnames:
            raise InputError(f"'{csv_path}' exists but has no ID column; choose another folder")
        return list(reader)


def _csv_text(rows: list[dict]) -> str:
    columns = list(CSV_COLUMNS) + sorted({k for r in rows for k in r} - set(CSV_COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _write_png(path: Path, pixels: np.ndarray) -> None:
    write_atomic(path, lambda tmp: sitk.WriteImage(sitk.GetImageFromArray(pixels, isVector=pixels.ndim == 3), str(tmp)))


def export_training_pair(folder: Path, case_id: str, image_node: Any, mask: np.ndarray, source: str = "",
                         corrected_by: str = "") -> TrainingPair:
    """Write the image and its corrected lesion mask as a BUS-BRA-like pair + a ``bus_data.csv`` row.

    Args:
        folder: the chosen (absolute) folder; created when missing.
        case_id: the pair's id (``bus_`` is prefixed when absent).
        image_node: the single-slice image volume.
        mask: (H, W) bool corrected lesion mask on the image's grid.
        source: where the image came from (CSV ``Source``).
        corrected_by: who corrected the mask (CSV ``CorrectedBy``).

    Raises:
        InputError: an empty mask, a mask not of the image's size, a folder holding a DCE-MRI dataset, or
            files / an ID that already exist (nothing is overwritten).
    """
    folder = Path(folder)
    pixels = image_pixels(image_node)
    mask = np.asarray(mask, bool)
    if mask.shape != pixels.shape[:2]:
        raise InputError(f"mask {mask.shape[1]}x{mask.shape[0]} px does not match image '{image_node.GetName()}' "
                         f"({pixels.shape[1]}x{pixels.shape[0]} px)")
    if not mask.any():
        raise InputError(f"the Lesion segment of '{image_node.GetName()}' is empty; nothing to export")
    if (folder / DCE_DATASET_FILE).is_file():
        raise InputError(f"'{folder}' holds a DCE-MRI training dataset ({DCE_DATASET_FILE}); choose another folder "
                         "for ultrasound training pairs")
    image_id = pair_id(case_id)
    image_path, mask_path, csv_path = image_file(folder, image_id), mask_file(folder, image_id), folder / DATA_CSV
    rows = _existing_rows(csv_path)
    if any(r.get("ID") == image_id for r in rows):
        raise InputError(f"'{csv_path}' already has a row {image_id}; choose another case id (nothing was written)")
    for path in (image_path, mask_path):
        if path.exists():
            raise InputError(f"'{path}' exists; choose another case id (nothing is overwritten)")
    png = image_png_pixels(pixels)
    height, width = mask.shape
    row = {"ID": image_id, "Case": image_id.removeprefix("bus_"), "Histology": "", "Pathology": "", "BIRADS": "",
           "Device": "", "Width": width, "Height": height, "Side": "", "BBOX": str(bounding_box(mask)).replace(" ", ""),
           "Scale": 1.0, "Source": source, "CorrectedBy": corrected_by}
    written: list[Path] = []
    try:
        _write_png(image_path, png)
        written.append(image_path)
        _write_png(mask_path, np.where(mask, 255, 0).astype(np.uint8))
        written.append(mask_path)
        write_text_atomic(csv_path, _csv_text(rows + [row]), overwrite=csv_path.exists())
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    log.info("training pair %s written to %s", image_id, folder)
    return TrainingPair(image_id, image_path, mask_path, csv_path, row)
