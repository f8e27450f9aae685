"""Geometric lesion metrics: volume, longest 3D and axial diameters, centroid (LPS/RAS), breast side.

All quantities are physical (mm, mm3, mL) and computed on the image grid with its spacing and direction,
so they are correct on anisotropic and oblique grids.

Definitions:
- volume: voxel count x voxel volume (SimpleITK ``LabelShapeStatisticsImageFilter.GetPhysicalSize``).
- longest 3D diameter: the largest distance between the centres of two surface voxels of the lesion
  (voxels with a 6-neighbour outside it), in physical space. Computed exactly from the vertices of the
  convex hull of the surface voxel centres (``scipy.spatial.ConvexHull``): the farthest pair of a point
  set is always a pair of hull vertices. Equals ITK's Feret diameter.
- longest axial diameter: the largest distance between two voxel centres of the lesion lying in the
  same "axial" slice, over all such slices. The axial slices are the planes of the voxel index axis most
  aligned with the patient's superior-inferior axis (LPS z), so on a sagittal or oblique acquisition the
  planes closest to axial are used; distances are physical, so anisotropic spacing and oblique directions
  are accounted for.
- centroid: mean LPS position of the voxel centres (SimpleITK ``GetCentroid``); RAS = LPS with x and y negated.
- side: patient's left (+x in LPS) or right. With a breast mask (1 = left, 2 = right): the breast label
  most lesion voxels lie in (ties broken by the label at the centroid voxel). Otherwise, or when the
  lesion lies outside the mask: the sign of the centroid's LPS x relative to the midline, taken as the
  mean x of the left and right breast centroids when the mask has both, else the x of the grid's centre.
"""
from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from ..geometry import LPS_TO_RAS, Geometry
from ..labels import BREAST_LEFT, BREAST_RIGHT

log = logging.getLogger(__name__)

MM3_PER_ML = 1000.0
_BRUTE_FORCE_MAX_POINTS = 64


def hull_vertex_indices(points: np.ndarray) -> np.ndarray:
    """Indices of a subset of ``points`` (n, d) that contains every extreme point (convex hull vertices).

    Degenerate (coplanar / collinear) sets are handled with Qhull's joggle option; if even that fails,
    all indices are returned. Small sets are returned whole (brute force is cheaper).
    """
    pts = np.asarray(points, dtype=float)
    n = len(pts)
    if n <= _BRUTE_FORCE_MAX_POINTS:
        return np.arange(n)
    try:
        return ConvexHull(pts).vertices
    except QhullError:
        try:
            return ConvexHull(pts, qhull_options="QJ").vertices
        except QhullError:
            log.debug("convex hull failed on %d points; using all of them", n)
            return np.arange(n)


def max_pairwise_distance_mm(points_mm: np.ndarray) -> float:
    """Largest Euclidean distance between two of the given points.

    Exact: the farthest pair of a point set is a pair of its convex hull's vertices.

    Args:
        points_mm: ``(n, d)`` coordinates in mm.

    Returns:
        The distance in mm (0 for fewer than two points).
    """
    pts = np.unique(np.asarray(points_mm, dtype=float), axis=0)
    if len(pts) < 2:
        return 0.0
    pts = pts[hull_vertex_indices(pts)]
    return float(pdist(pts).max()) if len(pts) > 1 else 0.0


def axial_slice_axis(geometry: Geometry) -> int:
    """Index axis (0 = i/x, 1 = j/y, 2 = k/z) whose direction is closest to the LPS superior-inferior axis."""
    return int(np.argmax(np.abs(geometry.direction_matrix[2, :])))


def _surface_points_lps(mask: np.ndarray, offset_zyx: np.ndarray, geometry: Geometry) -> np.ndarray:
    """LPS centres (n, 3) of the surface voxels of a cropped binary mask located at ``offset_zyx``."""
    padded = np.pad(mask, 1)
    surface = padded & ~ndimage.binary_erosion(padded)
    zyx = np.argwhere(surface) - 1 + offset_zyx
    return geometry.index_to_lps(zyx[:, ::-1].astype(float))


def _longest_axial_mm(mask: np.ndarray, offset_zyx: np.ndarray, geometry: Geometry) -> float:
    """Largest in-slice diameter (mm) of a cropped binary mask, over the axial-most slices."""
    axis_ijk = axial_slice_axis(geometry)
    axis_zyx = 2 - axis_ijk
    best = 0.0
    for s in range(mask.shape[axis_zyx]):
        plane = np.take(mask, s, axis=axis_zyx)
        if not plane.any():
            continue
        idx2 = np.argwhere(plane)
        # hull in the 2D index plane: an affine map to physical space keeps the extreme points extreme
        idx2 = idx2[hull_vertex_indices(idx2)]
        zyx = np.insert(idx2, axis_zyx, s, axis=1) + offset_zyx
        lps = geometry.index_to_lps(zyx[:, ::-1].astype(float))
        if len(lps) > 1:
            best = max(best, float(pdist(lps).max()))
    return best


def midline_x_lps(geometry: Geometry, breast_mask: np.ndarray | None = None) -> tuple[float, str]:
    """LPS x (mm) of the patient's sagittal midline and how it was found.

    Returns:
        ``(x_mm, source)``: source ``"breast_mask"`` (mean x of the left and right breast centroids) or
        ``"grid_centre"`` (x of the centre of the image grid).
    """
    if breast_mask is not None:
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(geometry.apply_to(sitk.GetImageFromArray(breast_mask)))
        labels = set(stats.GetLabels())
        if {BREAST_LEFT, BREAST_RIGHT} <= labels:
            x = 0.5 * (stats.GetCentroid(BREAST_LEFT)[0] + stats.GetCentroid(BREAST_RIGHT)[0])
            return float(x), "breast_mask"
    centre = geometry.index_to_lps((np.asarray(geometry.size, dtype=float) - 1.0) / 2.0)
    return float(centre[0]), "grid_centre"


def lesion_shape_metrics(
    labels: np.ndarray, geometry: Geometry, breast_mask: np.ndarray | None = None
) -> dict[int, dict]:
    """Shape metrics of every lesion of a label map.

    Args:
        labels: ``(z, y, x)`` int array on ``geometry``, 0 background, 1..N lesions (gaps allowed).
        geometry: the grid.
        breast_mask: optional ``(z, y, x)`` breast mask (0 / 1 left / 2 right) on the same grid.

    Returns:
        ``{label: {...}}`` with keys ``label, voxel_count, volume_mm3, volume_ml, longest_3d_diameter_mm,
        longest_axial_diameter_mm, centroid_lps_mm, centroid_ras_mm, side, side_source``.
    """
    image = geometry.apply_to(sitk.GetImageFromArray(labels))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(image)
    objects = ndimage.find_objects(labels)
    midline_x, midline_source = midline_x_lps(geometry, breast_mask)
    out: dict[int, dict] = {}
    for label in sorted(int(v) for v in stats.GetLabels()):
        sl = objects[label - 1]
        mask = labels[sl] == label
        offset = np.array([s.start for s in sl])
        centroid_lps = np.asarray(stats.GetCentroid(label), dtype=float)
        volume_mm3 = float(stats.GetPhysicalSize(label))
        side, side_source = _side(mask, sl, centroid_lps, geometry, breast_mask, midline_x, midline_source)
        out[label] = {
            "label": label,
            "voxel_count": int(stats.GetNumberOfPixels(label)),
            "volume_mm3": volume_mm3,
            "volume_ml": volume_mm3 / MM3_PER_ML,
            "longest_3d_diameter_mm": max_pairwise_distance_mm(_surface_points_lps(mask, offset, geometry)),
            "longest_axial_diameter_mm": _longest_axial_mm(mask, offset, geometry),
            "centroid_lps_mm": [float(v) for v in centroid_lps],
            "centroid_ras_mm": [float(v) for v in LPS_TO_RAS @ centroid_lps],
            "side": side,
            "side_source": side_source,
        }
    return out


def _side(
    mask: np.ndarray,
    sl: tuple[slice, ...],
    centroid_lps: np.ndarray,
    geometry: Geometry,
    breast_mask: np.ndarray | None,
    midline_x: float,
    midline_source: str,
) -> tuple[str, str]:
    """(side, source) of one lesion; see the module docstring for the rule."""
    if breast_mask is not None:
        inside = breast_mask[sl][mask]
        n_left = int(np.count_nonzero(inside == BREAST_LEFT))
        n_right = int(np.count_nonzero(inside == BREAST_RIGHT))
        if n_left != n_right:
            return ("left" if n_left > n_right else "right"), "breast_mask"
        if n_left > 0:  # tie: label at the centroid voxel
            ijk = np.round(geometry.lps_to_index(centroid_lps)).astype(int)
            if np.all(ijk >= 0) and np.all(ijk < np.asarray(geometry.size)):
                at = int(breast_mask[ijk[2], ijk[1], ijk[0]])
                if at in (BREAST_LEFT, BREAST_RIGHT):
                    return ("left" if at == BREAST_LEFT else "right"), "breast_mask"
    source = f"midline_{midline_source}"
    if centroid_lps[0] > midline_x:
        return "left", source
    if centroid_lps[0] < midline_x:
        return "right", source
    return "unknown", source
