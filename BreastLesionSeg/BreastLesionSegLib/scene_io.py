"""MRML volume nodes <-> core ``Volume`` / ``DCEExam`` (RAS <-> LPS, oblique grids, parent transforms).

MRML stores a volume's grid as an IJK->RAS matrix; the core uses ITK's LPS geometry
(``breastlesionseg.geometry.Geometry``). The conversion flips the sign of x and y of the origin and of
the direction rows. Arrays are ``(k, j, i)`` = ``(z, y, x)`` on both sides.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import LPS_TO_RAS, Geometry, Volume
from breastlesionseg.io.atomic import write_atomic

log = logging.getLogger(__name__)

#: Relative tolerance on the orthogonality of a (world) IJK->RAS matrix.
_ORTHO_TOL = 1e-4


def _node_label(node: Any) -> str:
    return f"'{node.GetName()}' ({node.GetID()})" if node is not None else "None"


def ijk_to_ras_matrix(node: Any, world: bool = True) -> np.ndarray:
    """4x4 IJK->RAS matrix of a volume node.

    Args:
        node: a ``vtkMRMLVolumeNode``.
        world: include the node's parent transform (must be linear).

    Raises:
        GeometryError: the parent transform is not linear.
    """
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(m)
    transform = node.GetParentTransformNode() if world else None
    if transform is not None:
        if not transform.IsTransformToWorldLinear():
            raise GeometryError(f"volume {_node_label(node)} is under a non-linear transform "
                                f"'{transform.GetName()}'; harden the transform (Data module) before segmenting")
        to_world = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(to_world)
        ijk_to_ras = slicer.util.arrayFromVTKMatrix(to_world) @ ijk_to_ras
    return ijk_to_ras


def geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray, size_xyz: Sequence[int], what: str = "volume") -> Geometry:
    """LPS ``Geometry`` from a 4x4 IJK->RAS matrix and the grid size (x, y, z).

    Raises:
        GeometryError: the matrix has sheared or degenerate axes (not representable by ITK).
    """
    lin = np.asarray(ijk_to_ras, dtype=float)[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise GeometryError(f"{what}: degenerate IJK->RAS matrix (voxel spacing {spacing.tolist()} mm)")
    direction_ras = lin / spacing
    if not np.allclose(direction_ras.T @ direction_ras, np.eye(3), atol=_ORTHO_TOL):
        raise GeometryError(f"{what}: the voxel axes are not orthogonal (sheared grid or shearing transform); "
                            "resample the volume before segmenting")
    direction_lps = LPS_TO_RAS @ direction_ras
    origin_lps = LPS_TO_RAS @ np.asarray(ijk_to_ras, dtype=float)[:3, 3]
    return Geometry(tuple(int(s) for s in size_xyz), tuple(spacing.tolist()), tuple(origin_lps.tolist()),
                    tuple(direction_lps.ravel().tolist()))


def volume_from_node(node: Any, dtype: Any = None) -> Volume:
    """Copy a scalar volume node into a core ``Volume`` (LPS geometry, world coordinates).

    Args:
        node: ``vtkMRMLScalarVolumeNode`` (or label map) with image data.
        dtype: optional numpy dtype of the returned array (default: keep the node's type).

    Raises:
        InputError: the node is missing, has no image data or is not single-component 3D.
        GeometryError: non-linear or shearing parent transform.
    """
    if node is None:
        raise InputError("volume node is None (select an input volume)")
    if not node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"node {_node_label(node)} is a {node.GetClassName()}, not a scalar volume")
    image = node.GetImageData()
    if image is None:
        raise InputError(f"volume {_node_label(node)} has no image data")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume {_node_label(node)} has {image.GetNumberOfScalarComponents()} components; "
                         "a single-component 3D image is needed")
    array = np.array(slicer.util.arrayFromVolume(node), dtype=dtype, copy=True)
    if array.ndim != 3:
        raise InputError(f"volume {_node_label(node)} is not 3D (array shape {array.shape})")
    dims = image.GetDimensions()
    geometry = geometry_from_ijk_to_ras(ijk_to_ras_matrix(node), dims, what=f"volume {_node_label(node)}")
    return Volume(array, geometry, name=node.GetName(), source=f"volume {_node_label(node)}")


def update_node_from_volume(node: Any, volume: Volume) -> Any:
    """Set a volume node's voxels and IJK->RAS matrix from a core ``Volume``; returns the node."""
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.geometry.ijk_to_ras_matrix()))
    return node


def node_from_volume(scene: Any, volume: Volume, name: str | None = None, labelmap: bool = False) -> Any:
    """A new scalar (or label map) volume node in ``scene`` holding ``volume``."""
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(cls, name or volume.name or "Volume")
    update_node_from_volume(node, volume)
    node.CreateDefaultDisplayNodes()
    return node


def same_grid_nodes(a: Any, b: Any) -> bool:
    """True when two volume nodes share dimensions and world IJK->RAS matrix."""
    return (a.GetImageData().GetDimensions() == b.GetImageData().GetDimensions()
            and np.allclose(ijk_to_ras_matrix(a), ijk_to_ras_matrix(b), atol=1e-4))


def sequence_volume_nodes(sequence_node: Any) -> list[Any]:
    """The frames of a 4D DCE ``vtkMRMLSequenceNode``, in index order (frame 0 = pre-contrast).

    Raises:
        InputError: fewer than 2 frames or a frame that is not a scalar volume.
    """
    if sequence_node is None or not sequence_node.IsA("vtkMRMLSequenceNode"):
        raise InputError(f"expected a sequence node, got {_node_label(sequence_node)}")
    n = sequence_node.GetNumberOfDataNodes()
    if n < 2:
        raise InputError(f"sequence {_node_label(sequence_node)} has {n} frame(s); a DCE exam needs a "
                         "pre-contrast and at least one post-contrast frame")
    frames = [sequence_node.GetNthDataNode(i) for i in range(n)]
    for i, f in enumerate(frames):
        if f is None or not f.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"sequence {_node_label(sequence_node)} frame {i} is not a scalar volume")
    return frames


def sequence_times_s(sequence_node: Any) -> list[float] | None:
    """Index values of a sequence as times in seconds when the index unit is 's' and values are numeric."""
    if sequence_node.GetIndexUnit() not in ("s", "sec", "second", "seconds"):
        return None
    try:
        return [float(sequence_node.GetNthIndexValue(i)) for i in range(sequence_node.GetNumberOfDataNodes())]
    except ValueError:
        return None


def exam_from_nodes(pre_node: Any, post_nodes: Sequence[Any], acquisition_times_s: Sequence[float] | None = None,
                    resample: bool = True) -> DCEExam:
    """Build a ``DCEExam`` from a pre-contrast node and post-contrast nodes in time order.

    Post phases not on the pre grid are resampled onto it (linear interpolation, SimpleITK) when
    ``resample`` is true; otherwise a ``GeometryError`` is raised.

    Raises:
        InputError: no post-contrast volume, or the pre volume also selected as a post volume.
        GeometryError: grids differ and ``resample`` is false, or the phases do not overlap.
    """
    _check_phase_nodes(pre_node, post_nodes)
    pre = volume_from_node(pre_node)
    phases = [pre]
    for node in post_nodes:
        vol = volume_from_node(node)
        if not vol.geometry.same_grid(pre.geometry):
            if not resample:
                raise GeometryError(f"post-contrast volume {_node_label(node)} is not on the pre-contrast grid of "
                                    f"{_node_label(pre_node)}")
            vol = _resample_onto(vol, pre, f"{_node_label(node)}")
        phases.append(vol)
    times = list(acquisition_times_s) if acquisition_times_s is not None else None
    if times is not None and len(times) != len(phases):
        raise InputError(f"{len(times)} acquisition times given for {len(phases)} phases")
    return DCEExam(phases, acquisition_times_s=times)


def _check_phase_nodes(pre_node: Any, post_nodes: Sequence[Any]) -> None:
    if not post_nodes:
        raise InputError("no post-contrast volume selected; a DCE exam needs at least one")
    ids = [pre_node.GetID()] + [n.GetID() for n in post_nodes if n is not None]
    if len(set(ids)) != len(ids):
        raise InputError(f"the same volume is selected twice among the phases: {ids}")


def validated_exam_from_nodes(pre_node: Any, post_nodes: Sequence[Any],
                              acquisition_times_s: Sequence[float] | None = None) -> DCEExam:
    """The exam of the nodes through the core's :func:`~breastlesionseg.exam.assemble_exam`: the same
    resampling onto the pre grid and the same checks (finite values, memory budget, plausible phase order)
    as every command; ``exam.warnings`` holds what the user must see.

    Raises:
        InputError / GeometryError: as ``assemble_exam`` (and no post volume, or a volume selected twice).
    """
    from breastlesionseg.exam import assemble_exam

    _check_phase_nodes(pre_node, post_nodes)
    volumes = [volume_from_node(node) for node in (pre_node, *post_nodes)]
    times = list(acquisition_times_s) if acquisition_times_s is not None else None
    return assemble_exam(volumes, acquisition_times_s=times)


def _resample_onto(vol: Volume, pre: Volume, what: str) -> Volume:
    """Linear resampling of ``vol`` onto the pre-contrast grid (core ``resample_to_grid``); refuses
    volumes that do not overlap it in physical space (core ``require_overlap``)."""
    from breastlesionseg.exam import require_overlap, resample_to_grid

    require_overlap(vol, pre)
    out = resample_to_grid(vol.with_array(vol.array.astype(np.float32)), pre.geometry, "linear")
    log.info("resampled %s onto the pre-contrast grid", what)
    return out


def write_volume_file(volume: Volume, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> Path:
    """Write a ``Volume`` (LPS geometry) to NRRD/NIfTI atomically with SimpleITK."""
    image = volume.to_sitk()
    return write_atomic(path, lambda p: sitk.WriteImage(image, str(p), useCompression=compress), overwrite=overwrite)


def write_phase_files(nodes: Sequence[Any], folder: str | os.PathLike) -> list[Path]:
    """Write the phase volumes (pre first) as ``phase_00.nrrd``, ``phase_01.nrrd``... into ``folder``.

    These are the inputs of the out-of-process ``breastlesionseg segment`` run. Geometry is written
    in LPS exactly as the nodes hold it in world coordinates.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, node in enumerate(nodes):
        # transient inputs of one run on local disk: uncompressed is several times faster to write and read
        paths.append(write_volume_file(volume_from_node(node), folder / f"phase_{k:02d}.nrrd", compress=False))
    return paths
