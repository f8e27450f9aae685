"""Slicer .seg.nrrd writer/reader: round trip, independent slicerio read, Slicer-edited files, errors."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io.seg_nrrd import read_seg_nrrd, write_seg_nrrd
from breastlesionseg.io.terminology import (
    BREAST_LEFT_COLOR,
    breast_terminology,
    lesion_color,
    lesion_terminology,
    terminology_string,
)

BREAST_LEFT_TERM = (
    "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure"
    "~SCT^76752008^Breast~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^"
)
LESION_RIGHT_TERM = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^49755003^Morphologically Altered Structure"
    "~SCT^4147007^Mass~^^~Anatomic codes - DICOM master list~SCT^76752008^Breast~SCT^24028007^Right"
)


@pytest.fixture
def grid() -> Geometry:
    rot = sitk.VersorTransform((0.2, 0.9, 0.1), 0.5).GetMatrix()  # oblique
    return Geometry((17, 13, 9), (0.65, 0.8, 1.7), (-101.123456789, 33.3, -7.25), rot)


@pytest.fixture
def maps(grid):
    breast = np.zeros(grid.shape_zyx, np.uint8)
    breast[:, :, 9:] = 1  # +x index side
    breast[:, :, :8] = 2
    lesions = np.zeros(grid.shape_zyx, np.int32)
    lesions[2:5, 3:6, 2:6] = 1  # in the right breast
    lesions[5:7, 6:9, 11:13] = 2  # in the left breast
    lesions[0:2, 0:2, 7:9] = 3  # straddles midline gap and left breast
    return Volume(breast, grid, name="breast"), Volume(lesions, grid, name="lesions")


def test_round_trip(tmp_path, grid, maps):
    breast, lesions = maps
    path = write_seg_nrrd(tmp_path / "segmentation.seg.nrrd", breast, lesions)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segmentation.seg.nrrd"]  # no temp file left
    c = read_seg_nrrd(path)
    assert np.array_equal(c.lesion_labels.array, lesions.array)
    assert np.array_equal(c.breast_mask.array, breast.array)
    g = c.geometry
    assert g.size == grid.size
    np.testing.assert_allclose(g.spacing, grid.spacing, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.origin, grid.origin, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.direction, grid.direction, rtol=0, atol=1e-12)
    assert [s["name"] for s in c.segments] == ["Breast left", "Breast right", "Lesion 1", "Lesion 2", "Lesion 3"]
    assert [s["role"] for s in c.segments] == ["breast_left", "breast_right", "lesion", "lesion", "lesion"]
    assert [s["label"] for s in c.segments] == [1, 2, 1, 2, 3]


def test_independent_slicerio_read(tmp_path, grid, maps):
    breast, lesions = maps
    path = write_seg_nrrd(tmp_path / "s.seg.nrrd", breast, lesions)
    seg = slicerio.read_segmentation(str(path))
    # exact geometry: ijkToLPS as written from the grid
    np.testing.assert_array_equal(seg["ijkToLPS"], grid.ijk_to_lps_matrix())
    assert seg["voxels"].shape == (2,) + grid.size  # two layers: breast and lesions overlap
    assert slicerio.segment_names(seg) == ["Breast left", "Breast right", "Lesion 1", "Lesion 2", "Lesion 3"]
    left = slicerio.segment_from_name(seg, "Breast left")
    assert left["color"] == pytest.approx(list(BREAST_LEFT_COLOR))
    assert terminology_string(left["terminology"]) == BREAST_LEFT_TERM
    l1 = slicerio.segment_from_name(seg, "Lesion 1")
    assert terminology_string(l1["terminology"]) == LESION_RIGHT_TERM  # lesion 1 lies in the right breast
    assert l1["color"] == pytest.approx(list(lesion_color(1)))
    assert l1["layer"] != left["layer"]
    for value in (1, 2, 3):
        mask = slicerio.segment_mask(seg, f"Lesion {value}")  # (i, j, k)
        assert np.array_equal(mask.transpose(2, 1, 0), lesions.array == value)
        extent = slicerio.segment_from_name(seg, f"Lesion {value}")["extent"]
        idx = np.argwhere(lesions.array == value)[:, ::-1]
        assert extent == [int(v) for a in range(3) for v in (idx[:, a].min(), idx[:, a].max())]
    assert np.array_equal(slicerio.segment_mask(seg, "Breast right").transpose(2, 1, 0), breast.array == 2)


def test_lesions_only_single_layer_and_overwrite(tmp_path, grid, maps):
    _, lesions = maps
    path = tmp_path / "l.seg.nrrd"
    write_seg_nrrd(path, None, lesions)
    seg = slicerio.read_segmentation(str(path))
    assert seg["voxels"].ndim == 3
    assert read_seg_nrrd(path).breast_mask is None
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_seg_nrrd(path, None, lesions)
    emptied = lesions.with_array(np.zeros_like(lesions.array))
    write_seg_nrrd(path, None, emptied, overwrite=True)
    assert read_seg_nrrd(path).lesion_labels.array.max() == 0


def test_extra_segments(tmp_path, grid, maps):
    breast, lesions = maps
    probe = lesions.array == 2
    path = write_seg_nrrd(tmp_path / "e.seg.nrrd", breast, lesions,
                          extra_segments=[{"name": "High probability", "mask": probe, "color": (0, 1, 0)}])
    seg = slicerio.read_segmentation(str(path))
    assert np.array_equal(slicerio.segment_mask(seg, "High probability").transpose(2, 1, 0), probe)
    c = read_seg_nrrd(path)
    assert c.segments[-1]["role"] == "other" and c.segments[-1]["voxel_count"] == int(probe.sum())
    assert np.array_equal(c.lesion_labels.array, lesions.array)


def test_slicer_edited_file_cropped_renamed(tmp_path, grid, maps):
    """A file as Slicer writes after edits: other IDs/order, no our tags, cropped labelmap, renamed segments."""
    breast, lesions = maps
    lo = np.array([2, 1, 0])  # crop offset (i, j, k)
    hi = np.array([15, 12, 8])
    crop = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo[::-1], hi[::-1]))  # (z, y, x)
    m = grid.ijk_to_lps_matrix()
    m[:3, 3] = grid.index_to_lps(lo.astype(float))
    seg = slicerio.create_segmentation(tuple(int(v) for v in (hi - lo + 1)), m)
    edited = lesions.array.copy()
    edited[edited == 1] = 0  # the radiologist deleted lesion 1 ...
    new = np.zeros_like(edited, bool)
    new[6:8, 1:3, 3:5] = True  # ... and painted a new one, named by Slicer
    slicerio.add_segment(seg, (lesions.array == 2)[crop].transpose(2, 1, 0),
                         {"id": "Segment_7", "name": "lesion 2", "terminology": lesion_terminology("left")})
    slicerio.add_segment(seg, new[crop].transpose(2, 1, 0),
                         {"id": "Segment_8", "name": "Segment_8", "terminology": lesion_terminology()})
    slicerio.add_segment(seg, (breast.array == 1)[crop].transpose(2, 1, 0),
                         {"id": "Segment_1", "name": "left breast tissue", "terminology": breast_terminology("left")})
    slicerio.add_segment(seg, (lesions.array == 3)[crop].transpose(2, 1, 0), {"id": "x", "name": "Lesion 3"})
    path = tmp_path / "edited.seg.nrrd"
    slicerio.write_segmentation(str(path), seg)

    c = read_seg_nrrd(path, reference_geometry=grid)
    assert c.geometry == grid
    roles = {s["name"]: (s["role"], s["label"]) for s in c.segments}
    assert roles == {"lesion 2": ("lesion", 2), "Segment_8": ("lesion", 1), "left breast tissue": ("breast_left", 1),
                     "Lesion 3": ("lesion", 3)}
    expected = np.zeros_like(edited)
    expected[lesions.array == 2] = 2
    expected[lesions.array == 3] = 3
    expected[new] = 1
    inside = np.zeros(grid.shape_zyx, bool)
    inside[crop] = True  # voxels outside the cropped labelmap are background on the reference grid
    assert np.array_equal(c.lesion_labels.array, np.where(inside, expected, 0))
    assert np.array_equal(c.breast_mask.array, np.where(inside & (breast.array == 1), 1, 0))
    assert c.lesion_labels.array[0, 0, 7] == 0 and (lesions.array[0, 0, 7] == 3)  # cropped away in the file
    # without a reference grid the cropped grid is returned, shifted by the crop offset
    c2 = read_seg_nrrd(path)
    assert c2.geometry.size == tuple(int(v) for v in hi - lo + 1)
    np.testing.assert_allclose(c2.geometry.origin, grid.index_to_lps(lo.astype(float)), atol=1e-9)


def test_input_errors(tmp_path, grid, maps):
    breast, lesions = maps
    other = Geometry(grid.size, grid.spacing, (0.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match="breast_mask 'moved' is not on the grid of lesion_labels"):
        write_seg_nrrd(tmp_path / "a.seg.nrrd", Volume(breast.array, other, source="moved"), lesions)
    with pytest.raises(InputError, match="labels must be 0, 1 \\(left\\) or 2"):
        write_seg_nrrd(tmp_path / "a.seg.nrrd", breast.with_array(breast.array * 3), lesions)
    with pytest.raises(InputError, match="must end with '.seg.nrrd'"):
        write_seg_nrrd(tmp_path / "a.nrrd", breast, lesions)
    with pytest.raises(InputError, match="does not exist"):
        read_seg_nrrd(tmp_path / "missing.seg.nrrd")
    (tmp_path / "junk.seg.nrrd").write_text("not a nrrd")
    with pytest.raises(InputError, match="not a readable Slicer segmentation"):
        read_seg_nrrd(tmp_path / "junk.seg.nrrd")
    assert not list(tmp_path.glob(".a.seg.nrrd*"))


@pytest.mark.slicer
def test_loaded_by_slicer_mrml(tmp_path, grid, maps):
    """The real Slicer segmentation storage node (slicer-core wheel) reads the file: names, colours,
    terminology, and every segment's voxels at the right RAS positions."""
    slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel (real MRML)")
    from vtk import vtkMatrix4x4
    from vtk.util import numpy_support

    breast, lesions = maps
    path = write_seg_nrrd(tmp_path / "s.seg.nrrd", breast, lesions)
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)  # registers the segmentation converter rules
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "s")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    seg = node.GetSegmentation()
    expected = {"Breast left": breast.array == 1, "Breast right": breast.array == 2,
                "Lesion 1": lesions.array == 1, "Lesion 2": lesions.array == 2, "Lesion 3": lesions.array == 3}
    assert [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())] == list(expected)
    lesion1 = seg.GetSegment("Lesion_1")
    assert lesion1.GetTerminology() == LESION_RIGHT_TERM
    assert lesion1.GetColor() == pytest.approx(lesion_color(1))
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        image = segment.GetRepresentation("Binary labelmap")
        ext = image.GetExtent()
        dims = [ext[1] - ext[0] + 1, ext[3] - ext[2] + 1, ext[5] - ext[4] + 1]
        scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1])
        kji = np.argwhere(scalars == segment.GetLabelValue()) + [ext[4], ext[2], ext[0]]
        mat = vtkMatrix4x4()
        image.GetImageToWorldMatrix(mat)
        m = np.array([[mat.GetElement(r, c) for c in range(4)] for r in range(4)])
        ras = (np.c_[kji[:, ::-1], np.ones(len(kji))] @ m.T)[:, :3]
        want = grid.index_to_lps(np.argwhere(expected[segment.GetName()])[:, ::-1].astype(float)) * [-1, -1, 1]
        assert len(ras) == len(want) > 0
        np.testing.assert_allclose(np.sort(ras, axis=0), np.sort(want, axis=0), atol=1e-6)


def test_extra_segments_leave_inputs_untouched(tmp_path, grid, maps):
    lesions = maps[1].with_array(maps[1].array.astype(np.uint8))  # the writer's own dtype: no conversion copy
    before = lesions.array.copy()
    probe = np.zeros(grid.shape_zyx, bool)
    probe[0:2, 10:12, 0:3] = True  # does not overlap any lesion: slicerio paints it into layer 0
    path = write_seg_nrrd(tmp_path / "x.seg.nrrd", None, lesions, extra_segments=[{"name": "probe", "mask": probe}])
    assert np.array_equal(lesions.array, before)
    seg = slicerio.read_segmentation(str(path))
    assert np.array_equal(slicerio.segment_mask(seg, "probe").transpose(2, 1, 0), probe)
    assert np.array_equal(read_seg_nrrd(path).lesion_labels.array, before)
