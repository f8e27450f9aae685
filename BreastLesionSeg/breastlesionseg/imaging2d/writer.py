"""Per-image output folders and the run's ``results.csv``, written atomically (nothing partial is left).

``DIR/<name>/`` holds ``lesion_mask.png`` (8-bit 0/255, the input's exact width x height),
``heatmap.png`` (colour-mapped heat map, same size), ``overlay.png`` (the image with the heat map and
the mask outline) and ``result.json``. A folder is written under a temporary name and renamed when
complete; an existing folder is only replaced with ``overwrite``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.atomic import write_text_atomic

MASK_FILE = "lesion_mask.png"
HEATMAP_FILE = "heatmap.png"
OVERLAY_FILE = "overlay.png"
RESULT_FILE = "result.json"
RESULTS_CSV = "results.csv"
#: colour of the mask outline in the overlay (RGB)
OUTLINE_RGB = (0, 255, 0)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")


def to_display_uint8(pixels: np.ndarray) -> np.ndarray:
    """(H, W) gray -> uint8 with the 0.5..99.5 percentiles stretched to 0..255."""
    from .intensity import scale_to_unit

    return np.round(scale_to_unit(pixels) * 255).astype(np.uint8)


def heatmap_rgb(heat_map: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 colours (matplotlib colormap)."""
    from matplotlib import colormaps

    return (colormaps[colormap](np.clip(heat_map, 0, 1))[..., :3] * 255).astype(np.uint8)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: mask pixels with a 4-neighbour outside the mask."""
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, border_value=0)


def overlay_rgb(pixels: np.ndarray, heat_map: np.ndarray, mask: np.ndarray, heat_weight: float = 0.35) -> np.ndarray:
    """(H, W, 3) uint8: the gray image blended with the colour heat map, mask outline drawn on top."""
    gray = to_display_uint8(pixels).astype(np.float32)[..., None].repeat(3, axis=2)
    blended = (1 - heat_weight * heat_map[..., None]) * gray + heat_weight * heat_map[..., None] * heatmap_rgb(heat_map)
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    out[mask_outline(mask)] = OUTLINE_RGB
    return out


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and non-finite floats as ``None`` (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return json_ready(value.item())
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_image_outputs(output_dir: str | Path, name: str, pixels: np.ndarray, mask: np.ndarray,
                        heat_map: np.ndarray, result: dict[str, Any], overwrite: bool = False) -> Path:
    """Write ``output_dir/name/`` (mask, heat map, overlay, result.json) atomically; returns the folder.

    Args:
        pixels: (H, W) gray input image.
        mask: (H, W) bool lesion mask.
        heat_map: (H, W) float in [0, 1].
        result: the ``result.json`` content (non-finite numbers become null).
        overwrite: replace an existing folder.
    Raises:
        InputError: shapes differ, or the folder exists and ``overwrite`` is false.
    """
    if mask.shape != pixels.shape or heat_map.shape != pixels.shape:
        raise InputError(f"{name}: mask {mask.shape} / heat map {heat_map.shape} differ from the image {pixels.shape}")
    output_dir = Path(output_dir)
    final = output_dir / name
    if final.exists() and not overwrite:
        raise InputError(f"output folder '{final}' exists; use --force to replace it")
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=output_dir))
    try:
        _save_png(np.where(mask, 255, 0).astype(np.uint8), staging / MASK_FILE)
        _save_png(heatmap_rgb(heat_map), staging / HEATMAP_FILE)
        _save_png(overlay_rgb(pixels, heat_map, mask), staging / OVERLAY_FILE)
        (staging / RESULT_FILE).write_text(json.dumps(json_ready(result), indent=2) + "\n", encoding="utf-8")
        os.chmod(staging, 0o755)
        _replace_folder(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _replace_folder(staging: Path, final: Path) -> None:
    """Rename ``staging`` onto ``final`` (an existing ``final`` is moved aside first, then deleted)."""
    if not final.exists():
        os.replace(staging, final)
        return
    trash = final.with_name(f".{final.name}.old")
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(final, trash)
    os.replace(staging, final)
    shutil.rmtree(trash, ignore_errors=True)


def write_results_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str], overwrite: bool = False) -> Path:
    """Write a CSV of ``rows`` (missing keys empty, non-finite numbers empty) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in json_ready(dict(row)).items()})
    return write_text_atomic(path, buffer.getvalue(), overwrite=overwrite)
