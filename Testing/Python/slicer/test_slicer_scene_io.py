"""Volume nodes <-> core Volume / DCEExam with real MRML (RAS <-> LPS, oblique grids, transforms)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.geometry import Geometry, Volume
from BreastLesionSegLib import scene_io


def _load_with_mrml(scene, path, name):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    return node


def test_file_loaded_by_slicer_gives_the_itk_geometry(ctx, synthetic_results, tmp_path):
    """ITK writes LPS; Slicer's own reader converts to RAS; we must get the LPS geometry back exactly."""
    (pre, _, _), _, _ = synthetic_results
    path = tmp_path / "pre.nrrd"
    sitk.WriteImage(pre.to_sitk(), str(path))
    node = _load_with_mrml(ctx.scene, path, "pre")
    back = scene_io.volume_from_node(node)
    assert back.geometry.same_grid(pre.geometry, atol_mm=1e-4, atol_dir=1e-6)
    assert back.geometry.orientation_code() == pre.geometry.orientation_code()
    np.testing.assert_array_equal(back.array, pre.array)
    # RAS = diag(-1,-1,1) LPS: the node's origin is the LPS origin with x and y negated
    np.testing.assert_allclose(node.GetOrigin(), np.array(pre.geometry.origin) * [-1, -1, 1], atol=1e-4)


def test_node_round_trip_and_file_written_for_the_cli(ctx, synthetic_results, tmp_path):
    (pre, post1, _), _, _ = synthetic_results
    node = scene_io.node_from_volume(ctx.scene, post1, "post1")
    np.testing.assert_allclose(scene_io.ijk_to_ras_matrix(node), post1.geometry.ijk_to_ras_matrix(), atol=1e-9)
    again = scene_io.volume_from_node(node)
    assert again.geometry.same_grid(post1.geometry, atol_mm=1e-9, atol_dir=1e-12)
    np.testing.assert_array_equal(again.array, post1.array)
    paths = scene_io.write_phase_files([scene_io.node_from_volume(ctx.scene, pre, "pre"), node], tmp_path / "in")
    assert [p.name for p in paths] == ["phase_00.nrrd", "phase_01.nrrd"]
    img = sitk.ReadImage(str(paths[1]))
    assert Geometry.from_sitk(img).same_grid(post1.geometry, atol_mm=1e-5, atol_dir=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), post1.array)
    # a physical point check independent of our matrices: voxel (i,j,k) = (3, 4, 5)
    np.testing.assert_allclose(img.TransformIndexToPhysicalPoint((3, 4, 5)), post1.geometry.index_to_lps([3, 4, 5]),
                               atol=1e-4)
    with pytest.raises(InputError, match="refusing to overwrite"):
        scene_io.write_volume_file(post1, paths[1])


def test_parent_transform_is_applied_and_shear_refused(ctx, synthetic_results):
    (pre, _, _), _, _ = synthetic_results
    node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    transform = ctx.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "move")
    m = np.eye(4)
    a = np.deg2rad(10)
    m[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    m[:3, 3] = [5.0, -3.0, 7.0]  # RAS mm
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(m))
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved = scene_io.volume_from_node(node)
    ras0 = m @ np.r_[pre.geometry.ijk_to_ras_matrix()[:3, 3], 1.0]
    np.testing.assert_allclose(moved.geometry.origin, ras0[:3] * [-1, -1, 1], atol=1e-9)
    np.testing.assert_allclose(moved.geometry.spacing, pre.geometry.spacing, atol=1e-9)
    shear = np.eye(4)
    shear[0, 1] = 0.3
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(shear))
    with pytest.raises(GeometryError, match="not orthogonal"):
        scene_io.volume_from_node(node)


def test_exam_from_nodes_resamples_other_grids_and_rejects_bad_input(ctx, synthetic_results):
    (pre, post1, post2), _, _ = synthetic_results
    pre_n = scene_io.node_from_volume(ctx.scene, pre, "pre")
    p1_n = scene_io.node_from_volume(ctx.scene, post1, "post1")
    exam = scene_io.exam_from_nodes(pre_n, [p1_n])
    assert exam.geometry.same_grid(pre.geometry) and len(exam.phases) == 2
    np.testing.assert_array_equal(exam.phases[1].array, post1.array)
    # post2 acquired on a grid shifted by exactly 2 voxels along i: resampling must shift it back
    g = pre.geometry
    shifted_origin = tuple(g.index_to_lps([2, 0, 0]))
    arr = np.zeros_like(post2.array)
    arr[:, :, :-2] = post2.array[:, :, 2:]
    p2_n = scene_io.node_from_volume(ctx.scene, Volume(arr, Geometry(g.size, g.spacing, shifted_origin, g.direction)), "p2")
    exam3 = scene_io.exam_from_nodes(pre_n, [p1_n, p2_n])
    np.testing.assert_allclose(exam3.phases[2].array[:, :, 2:-2], post2.array[:, :, 2:-2], atol=1e-3)
    with pytest.raises(GeometryError, match="not on the pre-contrast grid"):
        scene_io.exam_from_nodes(pre_n, [p2_n], resample=False)
    with pytest.raises(InputError, match="selected twice"):
        scene_io.exam_from_nodes(pre_n, [pre_n])
    with pytest.raises(InputError, match="no post-contrast"):
        scene_io.exam_from_nodes(pre_n, [])
    far = Geometry(g.size, g.spacing, (1000.0, 1000.0, 1000.0), g.direction)
    far_n = scene_io.node_from_volume(ctx.scene, Volume(post1.array, far), "far")
    with pytest.raises(GeometryError, match="'far' .* do not overlap"):
        scene_io.exam_from_nodes(pre_n, [far_n])


def test_sequence_frames_are_the_phases(ctx, synthetic_results):
    vols, _, _ = synthetic_results
    seq = ctx.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "DCE 4D")
    seq.SetIndexUnit("s")
    for t, v in zip((0, 75, 150), vols):
        seq.SetDataNodeAtValue(scene_io.node_from_volume(ctx.scene, v, v.name), str(t))
    frames = scene_io.sequence_volume_nodes(seq)
    assert len(frames) == 3
    assert scene_io.sequence_times_s(seq) == [0.0, 75.0, 150.0]
    exam = scene_io.exam_from_nodes(frames[0], frames[1:], acquisition_times_s=scene_io.sequence_times_s(seq))
    for got, want in zip(exam.phases, vols):
        np.testing.assert_array_equal(got.array, want.array)
    one = ctx.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "single")
    one.SetDataNodeAtValue(scene_io.node_from_volume(ctx.scene, vols[0], "x"), "0")
    with pytest.raises(InputError, match="1 frame"):
        scene_io.sequence_volume_nodes(one)


@pytest.mark.realdata
def test_duke_exam_through_mrml_matches_the_core_reader(ctx, duke_phase_paths, tmp_path):
    """The real 448x448x160 exam: Slicer's reader + our RAS->LPS conversion == breastlesionseg.io.read_volume."""
    from breastlesionseg.io import read_volume

    node = _load_with_mrml(ctx.scene, duke_phase_paths[0], "pre")
    ours = scene_io.volume_from_node(node)
    core = read_volume(duke_phase_paths[0])
    assert ours.geometry.same_grid(core.geometry, atol_mm=1e-4, atol_dir=1e-6)
    assert ours.geometry.orientation_code() == core.geometry.orientation_code()
    np.testing.assert_array_equal(ours.array, core.array)
    written = scene_io.write_phase_files([node], tmp_path)[0]
    assert Geometry.from_sitk(sitk.ReadImage(str(written))).same_grid(core.geometry, atol_mm=1e-4, atol_dir=1e-6)
