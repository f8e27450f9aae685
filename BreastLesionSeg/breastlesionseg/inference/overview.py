"""``overview.png``: a picture a radiologist reads at a glance.

Left: axial maximum-intensity projection of the early subtraction (post1 - pre) with the breast
outline (cyan) and every lesion's projected outline (colours by lesion) and number. Right: the
axial key slice through the centroid of each of the largest lesions (up to ``max_key_slices``),
showing the early subtraction with the lesion contours. Images are shown in radiological
convention (patient's right on the viewer's left, anterior up), with the aspect of the voxel spacing,
after an axis permutation/flip of the array to (S, P, L) order (no resampling).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import InputError  # noqa: E402
from ..exam import DCEExam  # noqa: E402
from ..geometry import Volume  # noqa: E402

log = logging.getLogger(__name__)

_LESION_COLOURS = ["#ff3030", "#ffd000", "#30ff30", "#ff40ff", "#ff9020", "#40a0ff", "#ffffff", "#a0ff80"]


def _lps_axes(direction: Sequence[float]) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """For a (z, y, x) array with this direction: the transpose to (S, P, L) and which of those axes to flip.

    Each index axis (i, j, k) is assigned the LPS axis its direction cosine is closest to.
    """
    d = np.asarray(direction, dtype=float).reshape(3, 3)  # column c = index axis c (i, j, k)
    lps_of_index = [int(np.argmax(np.abs(d[:, c]))) for c in range(3)]
    if sorted(lps_of_index) != [0, 1, 2]:  # degenerate (45-degree) obliques: fall back to the array order
        return (0, 1, 2), (False, False, False)
    sign_of_index = [float(np.sign(d[lps_of_index[c], c])) for c in range(3)]
    # array axis a (0=z=k, 1=y=j, 2=x=i) holds index axis 2-a
    order = []
    flips = []
    for lps_axis in (2, 1, 0):  # S, P, L
        index_axis = lps_of_index.index(lps_axis)
        order.append(2 - index_axis)
        flips.append(sign_of_index[index_axis] < 0)
    return tuple(order), tuple(flips)


def _view(array: np.ndarray, order: tuple[int, ...], flips: tuple[bool, ...]) -> np.ndarray:
    out = np.transpose(array, order)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
    return out


def _subtraction_mip_and_slices(exam: DCEExam, order, flips, slices: Sequence[int]) -> tuple[np.ndarray, list]:
    """Axial MIP of post1 - pre (over S) and the requested axial slices, in (S, P, L) view; chunked."""
    pre = _view(np.asarray(exam.pre.array), order, flips)
    post = _view(np.asarray(exam.post[0].array), order, flips)
    mip = None
    step = 8
    for s0 in range(0, pre.shape[0], step):
        block = post[s0:s0 + step].astype(np.float32) - pre[s0:s0 + step].astype(np.float32)
        m = block.max(axis=0)
        mip = m if mip is None else np.maximum(mip, m)
    key = [post[s].astype(np.float32) - pre[s].astype(np.float32) for s in slices]
    return mip, key


def _window(image: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    values = image[mask] if mask is not None and mask.any() else image
    lo, hi = np.percentile(values, [1.0, 99.7]) if values.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1.0)


def _save_palette_png(fig, path: Path, dpi: int) -> None:
    """Save the figure as an 8-bit palette PNG (gray images + a few contour colours fit 256 colours;
    about 3x smaller than RGBA, so the picture stays small enough for reports and READMEs)."""
    from PIL import Image

    # draw straight into the Agg canvas's pixel buffer (the same pixels as savefig, without a PNG
    # encode + decode round trip: ~0.1 s less for the Duke overview)
    fig.set_dpi(dpi)
    fig.set_facecolor("black")
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    colours = [matplotlib.colors.to_rgb(c) for c in _LESION_COLOURS + ["cyan", "#bbbbbb"]]
    n_gray = 256 - len(colours)
    palette: list[int] = []
    for g in np.linspace(0, 255, n_gray):
        palette += [int(round(g))] * 3
    for rgb in colours:
        palette += [int(round(255 * v)) for v in rgb]
    pal_image = Image.new("P", (1, 1))
    pal_image.putpalette(palette)
    Image.fromarray(np.ascontiguousarray(pixels)).quantize(palette=pal_image, dither=Image.Dither.NONE).save(
        path, format="PNG", optimize=True)


def lesion_centroids_zyx(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``[(label, centroid (z, y, x) in voxels)]`` of every label present in ``labels``, by label.

    Visits only the lesion voxels (``scipy.ndimage.center_of_mass`` visits every voxel of the volume:
    1.5 s of a 2 s overview on the 448 x 448 x 160 Duke exam). Missing label numbers are skipped.
    """
    flat = np.asarray(labels).ravel()
    idx = np.flatnonzero(flat)
    if idx.size == 0:
        return []
    lab = flat[idx].astype(np.int64)
    counts = np.bincount(lab)
    coords = np.unravel_index(idx, np.shape(labels))
    sums = np.stack([np.bincount(lab, weights=c, minlength=counts.size) for c in coords], axis=1)
    return [(k, sums[k] / counts[k]) for k in range(1, counts.size) if counts[k] > 0]


def _draw_key_slice(ax, image: np.ndarray, breast: np.ndarray, labels: np.ndarray, aspect: float, title: str) -> None:
    """One axial key slice: windowed image, breast contour, each lesion outlined and numbered."""
    slo, shi = _window(image, breast)
    ax.imshow(image, cmap="gray", vmin=slo, vmax=shi, aspect=aspect, interpolation="nearest")
    if breast.any():
        ax.contour(breast.astype(np.uint8), levels=[0.5], colors="cyan", linewidths=0.5)
    for lesion in [int(v) for v in np.unique(labels) if v > 0]:
        colour = _LESION_COLOURS[(lesion - 1) % len(_LESION_COLOURS)]
        m = labels == lesion
        ax.contour(m.astype(np.uint8), levels=[0.5], colors=colour, linewidths=1.2)
        yy, xx = np.nonzero(m)
        ax.text(xx.mean() + 6, yy.mean() - 6, str(lesion), color=colour, fontsize=11, fontweight="bold")
    ax.set_title(title, color="white", fontsize=10)


def _mark_orientation(ax) -> None:
    """No ticks; R / L / A letters at the panel's edges (radiological view)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.01, 0.5, "R", transform=ax.transAxes, color="white", fontsize=9, va="center")
    ax.text(0.97, 0.5, "L", transform=ax.transAxes, color="white", fontsize=9, va="center")
    ax.text(0.5, 0.97, "A", transform=ax.transAxes, color="white", fontsize=9, ha="center", va="top")


def render_overview(
    exam: DCEExam,
    breast_mask: Volume,
    lesion_labels: Volume,
    path: str | Path,
    title: str = "",
    footer: str = "",
    max_key_slices: int = 3,
    dpi: int = 80,
    max_numbered: int = 12,
) -> Path:
    """Draw the overview figure into ``path`` (PNG).

    Args:
        exam: the exam (pre + at least one post phase) on the pre grid.
        breast_mask: 0/1/2 breast region on the pre grid.
        lesion_labels: 0..N lesion instances on the pre grid, numbered by decreasing volume.
        path: output PNG path (written directly; callers write into a temporary folder).
        title: figure title (e.g. the exam name and model).
        footer: small print at the bottom (e.g. "demo model trained on synthetic phantoms").
        max_key_slices: number of lesion key slices to show.
        dpi: resolution.
        max_numbered: lesions numbered in the MIP (the largest; the rest are outlined only).

    Returns:
        ``path``.
    """
    for vol, what in ((breast_mask, "breast mask"), (lesion_labels, "lesion labels")):
        if not vol.geometry.same_grid(exam.geometry):
            raise InputError(f"overview: the {what} is not on the exam's pre-contrast grid")
    order, flips = _lps_axes(exam.geometry.direction)
    spacing_zyx = np.asarray(exam.geometry.spacing[::-1])[list(order)]  # (S, P, L) spacing
    labels = _view(np.asarray(lesion_labels.array), order, flips)
    breast = _view(np.asarray(breast_mask.array), order, flips) > 0
    n = int(labels.max()) if labels.size else 0
    centroids = []
    if n:
        centroids = lesion_centroids_zyx(labels)
    key = centroids[:max_key_slices]
    if key:
        slice_indices = [int(round(c[0])) for _, c in key]
    else:
        zs = np.nonzero(breast.any(axis=(1, 2)))[0]
        slice_indices = [int(zs[len(zs) // 2]) if zs.size else breast.shape[0] // 2]
    mip, key_images = _subtraction_mip_and_slices(exam, order, flips, slice_indices)
    breast_proj = breast.any(axis=0)
    aspect = float(spacing_zyx[1] / spacing_zyx[2])

    ncols = 1 + len(key_images)
    image_aspect = float(mip.shape[0] * spacing_zyx[1]) / float(mip.shape[1] * spacing_zyx[2])  # height / width, mm
    panel_w = 5.2
    fig_h = min(max(panel_w * image_aspect, 2.5), 8.0) + 1.3  # room for titles and the footer
    fig, axes = plt.subplots(1, ncols, figsize=(panel_w * ncols, fig_h), facecolor="black", squeeze=False)
    axes = axes[0]
    lo, hi = _window(mip, breast_proj)
    ax = axes[0]
    ax.imshow(mip, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
    if breast_proj.any():
        ax.contour(breast_proj.astype(np.uint8), levels=[0.5], colors="cyan", linewidths=0.6)
    for lesion, c in centroids:
        colour = _LESION_COLOURS[(lesion - 1) % len(_LESION_COLOURS)]
        proj = (labels == lesion).any(axis=0)
        ax.contour(proj.astype(np.uint8), levels=[0.5], colors=colour, linewidths=1.0)
        if lesion <= max_numbered:
            ax.text(c[2] + 6, c[1] - 6, str(lesion), color=colour, fontsize=11, fontweight="bold")
    if len(centroids) > max_numbered:
        ax.text(0.02, 0.02, f"lesions > {max_numbered} outlined, not numbered", transform=ax.transAxes,
                color="#bbbbbb", fontsize=8)
    ax.set_title("subtraction MIP (post1 - pre)", color="white", fontsize=10)

    for panel, (image, s) in enumerate(zip(key_images, slice_indices), start=1):
        name = f"lesion {key[panel - 1][0]}" if key else "no lesion found"
        _draw_key_slice(axes[panel], image, breast[s], labels[s], aspect, f"{name}: axial slice {s} (inferior->superior)")
    for ax in axes:
        _mark_orientation(ax)
    if title:
        fig.suptitle(title, color="white", fontsize=12)
    if footer:
        fig.text(0.5, 0.015, footer, color="#bbbbbb", fontsize=8.5, ha="center")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95 if title else 1.0))
    path = Path(path)
    _save_palette_png(fig, path, dpi)
    plt.close(fig)
    log.debug("overview written to %s", path)
    return path
