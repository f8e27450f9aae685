"""Results -> segmentation node -> label arrays, names/colours/terminology, .seg.nrrd with real MRML."""
from __future__ import annotations

import numpy as np
import pytest
import slicer

from breastlesionseg.errors import GeometryError
from breastlesionseg.geometry import Geometry, Volume
from BreastLesionSegLib import scene_io, segmentation_nodes as sn


def _study_with_volume(ctx, volume):
    node = scene_io.node_from_volume(ctx.scene, volume, volume.name)
    sh = ctx.scene.GetSubjectHierarchyNode()
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
    study = sh.CreateStudyItem(patient, "DCE study")
    # (in Slicer the subject-hierarchy plugin logic creates items for new nodes; the DICOM loader
    #  puts the series under its study; here we do it by hand)
    sh.CreateItem(study, node)
    return node, study


def test_results_to_segments_and_back(ctx, synthetic_results):
    (pre, _, _), breast, lesions = synthetic_results
    pre_node, study = _study_with_volume(ctx, pre)
    seg = sn.create_segmentation_node(ctx, pre_node, "BreastLesionSeg result")
    ids = sn.write_results_to_segmentation(ctx, seg, pre_node, breast, lesions, lesion_sides={1: "left", 2: "right"})
    assert ids == ["breast_left", "breast_right", "lesion_1", "lesion_2"]
    S = seg.GetSegmentation()
    assert [S.GetSegment(i).GetName() for i in ids] == ["Breast left", "Breast right", "Lesion 1", "Lesion 2"]
    assert np.allclose(S.GetSegment("lesion_1").GetColor(), sn.LESION_COLORS[0])
    assert np.allclose(S.GetSegment("breast_right").GetColor(), sn.BREAST_COLORS[2])
    term = S.GetSegment("lesion_2").GetTerminology().split("~")
    assert term[2] == "SCT^4147007^Mass" and term[5] == "SCT^76752008^Breast" and term[6] == "SCT^24028007^Right"
    assert S.GetSegment("breast_left").GetTerminology().split("~")[3] == "SCT^7771000^Left"
    # breast and lesions overlap -> Slicer keeps them in separate layers, nothing is lost
    assert S.GetNumberOfLayers() >= 2
    sh = ctx.scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(seg)) == study
    back = sn.labels_from_segmentation(ctx, seg, pre_node)
    np.testing.assert_array_equal(back.breast_mask.array, breast.array)
    np.testing.assert_array_equal(back.lesion_labels.array, lesions.array)
    assert back.lesion_labels.geometry.same_grid(pre.geometry)
    assert back.lesion_segment_ids == ["lesion_1", "lesion_2"] and back.ignored_segment_ids == []
    # per-segment export leaves no temporary node behind
    n_nodes = ctx.scene.GetNumberOfNodes()
    sn.export_segment_mask(ctx, seg, "lesion_2", pre_node)
    assert ctx.scene.GetNumberOfNodes() == n_nodes


def test_edited_and_user_added_segments_are_renumbered_by_volume(ctx, synthetic_results):
    (pre, _, _), breast, lesions = synthetic_results
    pre_node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    seg = sn.create_segmentation_node(ctx, pre_node, "result")
    sn.write_results_to_segmentation(ctx, seg, pre_node, breast, lesions)
    # the radiologist grows lesion 2 beyond lesion 1 and adds an "Other" segment and a new lesion
    grown = np.zeros_like(lesions.array)
    grown[2:10, 6:12, 2:9] = 1  # 8*6*7 = 336 voxels > 120
    sn.set_segment_mask(ctx, seg, pre_node, sn.lesion_spec(2), grown)
    sn.set_segment_mask(ctx, seg, pre_node, sn.SegmentSpec("Segment_1", "Lesion (new)", (1, 1, 0), ""),
                        (np.arange(grown.size).reshape(grown.shape) == 5))
    sn.set_segment_mask(ctx, seg, pre_node, sn.SegmentSpec("note", "Clip artefact", (0, 0, 1), ""), grown)
    back = sn.labels_from_segmentation(ctx, seg, pre_node)
    assert back.lesion_segment_ids == ["lesion_2", "lesion_1", "Segment_1"]
    assert back.ignored_segment_ids == ["note"]
    assert int((back.lesion_labels.array == 1).sum()) == 336
    assert int((back.lesion_labels.array == 2).sum()) == int((lesions.array == 1).sum())
    assert int((back.lesion_labels.array == 3).sum()) == 1


def test_classification_by_terminology_or_name():
    assert sn.classify_segment("Mass", sn.lesion_terminology()) == ("lesion", None)
    assert sn.classify_segment("Breast", sn.breast_terminology("right")) == ("breast", 2)
    assert sn.classify_segment("breast left", "") == ("breast", 1)
    assert sn.classify_segment("Lesion 12", "") == ("lesion", None)
    assert sn.classify_segment("Lesionless", "") == ("other", None)
    assert sn.classify_segment("Heart", "") == ("other", None)


def test_results_off_grid_are_refused(ctx, synthetic_results):
    (pre, _, _), breast, lesions = synthetic_results
    pre_node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    seg = sn.create_segmentation_node(ctx, pre_node, "result")
    g = lesions.geometry
    moved = Volume(lesions.array, Geometry(g.size, g.spacing, (0.0, 0.0, 0.0), g.direction))
    with pytest.raises(GeometryError, match="not on the grid"):
        sn.write_results_to_segmentation(ctx, seg, pre_node, breast, moved)


def test_seg_nrrd_written_by_mrml_reads_in_slicerio(ctx, synthetic_results, tmp_path):
    slicerio = pytest.importorskip("slicerio")
    (pre, _, _), breast, lesions = synthetic_results
    pre_node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    seg = sn.create_segmentation_node(ctx, pre_node, "result")
    sn.write_results_to_segmentation(ctx, seg, pre_node, breast, lesions)
    path = tmp_path / "result.seg.nrrd"
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    assert storage.WriteData(seg)
    info = slicerio.read_segmentation(str(path))
    names = [s["name"] for s in info["segments"]]
    assert names == ["Breast left", "Breast right", "Lesion 1", "Lesion 2"]
    merged = slicerio.extract_segments(info, [("Lesion 1", 1), ("Lesion 2", 2)])
    np.testing.assert_array_equal(merged["voxels"].transpose(2, 1, 0), lesions.array)
    lps = np.asarray(info["ijkToLPS"])
    np.testing.assert_allclose(lps, pre.geometry.ijk_to_lps_matrix(), atol=1e-5)
    lesion1 = [s for s in info["segments"] if s["name"] == "Lesion 1"][0]
    assert lesion1["terminology"]["type"][1] == "4147007" and lesion1["terminology"]["anatomicRegion"][1] == "76752008"
    assert lesion1["nameAutoGenerated"] is False and np.allclose(lesion1["color"], sn.LESION_COLORS[0], atol=1e-3)
    # and back into MRML
    seg2 = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "reloaded")
    st2 = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    st2.SetFileName(str(path))
    assert st2.ReadData(seg2)
    back = sn.labels_from_segmentation(ctx, seg2, pre_node)
    np.testing.assert_array_equal(back.lesion_labels.array, lesions.array)
    np.testing.assert_array_equal(back.breast_mask.array, breast.array)


def test_seg_nrrd_interoperates_with_the_core_reader_and_writer(ctx, synthetic_results, tmp_path):
    """MRML storage node -> breastlesionseg.io.read_seg_nrrd, and write_seg_nrrd -> MRML storage node."""
    from breastlesionseg.io.seg_nrrd import read_seg_nrrd, write_seg_nrrd

    (pre, _, _), breast, lesions = synthetic_results
    pre_node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    seg = sn.create_segmentation_node(ctx, pre_node, "result")
    sn.write_results_to_segmentation(ctx, seg, pre_node, breast, lesions)
    path = tmp_path / "from_slicer.seg.nrrd"
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    assert storage.WriteData(seg)
    contents = read_seg_nrrd(path, reference_geometry=pre.geometry)
    np.testing.assert_array_equal(contents.lesion_labels.array, lesions.array)
    np.testing.assert_array_equal(contents.breast_mask.array, breast.array)
    assert [s["role"] for s in contents.segments] == ["breast_left", "breast_right", "lesion", "lesion"]
    # and without a reference: Slicer writes the segments' effective extent; the core must place it right
    own = read_seg_nrrd(path)
    lps_of_first_lesion_voxel = own.geometry.index_to_lps(np.argwhere(own.lesion_labels.array == 1)[0][::-1])
    kji = np.argwhere(lesions.array == 1)[0]
    np.testing.assert_allclose(lps_of_first_lesion_voxel, pre.geometry.index_to_lps(kji[::-1]), atol=1e-4)
    # the other way round: the CLI's writer -> Slicer's reader
    core_path = tmp_path / "from_core.seg.nrrd"
    write_seg_nrrd(core_path, breast, lesions)
    seg2 = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "from core")
    st2 = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    st2.SetFileName(str(core_path))
    assert st2.ReadData(seg2)
    names = sn.segment_names(seg2, sn.segment_ids(seg2))
    assert names == ["Breast left", "Breast right", "Lesion 1", "Lesion 2"]
    back = sn.labels_from_segmentation(ctx, seg2, pre_node)
    np.testing.assert_array_equal(back.lesion_labels.array, lesions.array)
    np.testing.assert_array_equal(back.breast_mask.array, breast.array)
    S2 = seg2.GetSegmentation()
    lesion_term = S2.GetSegment(sn.segment_ids(seg2)[2]).GetTerminology()
    assert sn.classify_segment("anything", lesion_term) == ("lesion", None)
