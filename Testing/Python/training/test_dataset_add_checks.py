"""dataset add refuses what would poison a training set: a .seg.nrrd made on another image (geometry
mismatch, issue 14 row 6), a truncated phase file, phases in reverse order."""
from __future__ import annotations

import numpy as np
import pytest
import slicerio

from breastlesionseg.errors import DatasetError, InputError
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io.seg_nrrd import write_seg_nrrd
from breastlesionseg.training.dataset import Dataset
from breastlesionseg.training.dataset_add import add_case

SPACING, ORIGIN = (1.5, 1.5, 2.0), (-10.0, 5.0, 3.0)  # the synth_case_files grid


def _seg_file(path, arrays, origin=ORIGIN):
    _, lesion, bm = arrays
    geo = Geometry(tuple(int(s) for s in lesion.shape[::-1]), SPACING, origin)
    write_seg_nrrd(path, Volume(bm, geo), Volume(lesion.astype(np.uint16), geo))
    return path


def test_seg_nrrd_on_the_pre_grid_is_added(tmp_path, synth_case_files):
    src = synth_case_files(4)
    seg = _seg_file(tmp_path / "ok.seg.nrrd", src["arrays"])
    rec = add_case(tmp_path / "ds", "c1", src["phases"], seg_nrrd=seg)
    assert rec.lesion_count == 1
    data = Dataset(tmp_path / "ds").load_case("c1")
    assert np.array_equal(data.lesion_labels.array > 0, src["arrays"][1] > 0)


@pytest.mark.parametrize("shift_mm", [(20.0, 0.0, 0.0), (0.0, 0.0, -20.0), (0.6, 0.0, 0.0)])
def test_seg_nrrd_made_on_a_shifted_image_is_refused(tmp_path, synth_case_files, shift_mm):
    src = synth_case_files(5)
    seg = _seg_file(tmp_path / "shifted.seg.nrrd", src["arrays"], tuple(o + s for o, s in zip(ORIGIN, shift_mm)))
    with pytest.raises(DatasetError, match="geometry mismatch") as err:
        add_case(tmp_path / "ds", "c1", src["phases"], seg_nrrd=seg)
    assert "shifted.seg.nrrd" in str(err.value)
    assert not (tmp_path / "ds" / "cases" / "c1").exists()


def test_cropped_slicer_labelmap_with_its_offset_is_placed_back(tmp_path, synth_case_files):
    src = synth_case_files(6)
    _, lesion, _ = src["arrays"]
    lo = np.array([3, 4, 1])  # crop start (i, j, k) in the pre grid, recorded as Slicer does
    crop = (slice(1, lesion.shape[0]), slice(4, lesion.shape[1]), slice(3, lesion.shape[2]))
    pre = Geometry(tuple(int(s) for s in lesion.shape[::-1]), SPACING, ORIGIN)
    m = pre.ijk_to_lps_matrix()
    m[:3, 3] = pre.index_to_lps(lo[None, :].astype(float))[0]
    seg = slicerio.create_segmentation(tuple(int(v) for v in lesion[crop].shape[::-1]), m)
    seg["referenceImageExtentOffset"] = [int(v) for v in lo]
    slicerio.add_segment(seg, lesion[crop].transpose(2, 1, 0), {"id": "Segment_1", "name": "Lesion 1"})
    path = tmp_path / "cropped.seg.nrrd"
    slicerio.write_segmentation(str(path), seg)
    add_case(tmp_path / "ds", "c1", src["phases"], seg_nrrd=path, breast_mask=src["breast_mask"])
    got = Dataset(tmp_path / "ds").load_case("c1").lesion_labels.array > 0
    assert np.array_equal(got, lesion > 0)
    # the same crop claiming another offset was made on an image elsewhere: refused
    seg["referenceImageExtentOffset"] = [int(v) + 7 for v in lo]
    slicerio.write_segmentation(str(path), seg)
    with pytest.raises(DatasetError, match="geometry mismatch"):
        add_case(tmp_path / "ds", "c2", src["phases"], seg_nrrd=path, breast_mask=src["breast_mask"], force=True)


def test_truncated_phase_and_reversed_phases_are_refused(tmp_path, synth_case_files):
    src = synth_case_files(7)
    raw = src["phases"][1].read_bytes()
    cut = tmp_path / "post1_cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        add_case(tmp_path / "ds", "c1", [src["phases"][0], cut, src["phases"][2]], lesions=src["lesions"],
                 breast_mask=src["breast_mask"])
    with pytest.raises(DatasetError, match="implausible phase order"):
        add_case(tmp_path / "ds", "c1", src["phases"][::-1], lesions=src["lesions"], breast_mask=src["breast_mask"])
    assert not (tmp_path / "ds" / "cases").exists() or not any((tmp_path / "ds" / "cases").iterdir())


def test_dataset_check_finds_truncated_and_reordered_case_files(tmp_path, synth_case_files):
    from breastlesionseg.training.dataset_check import check_dataset

    src = synth_case_files(8)
    root = tmp_path / "ds"
    add_case(root, "c1", src["phases"], lesions=src["lesions"], breast_mask=src["breast_mask"])
    add_case(root, "c2", synth_case_files(9, "b")["phases"], lesions=src["lesions"], breast_mask=src["breast_mask"])
    assert check_dataset(root).ok
    case1, case2 = root / "cases" / "c1", root / "cases" / "c2"
    raw = (case1 / "post1.nii.gz").read_bytes()
    (case1 / "post1.nii.gz").write_bytes(raw[: len(raw) // 2])
    pre, post2 = (case2 / "pre.nii.gz").read_bytes(), (case2 / "post2.nii.gz").read_bytes()
    (case2 / "pre.nii.gz").write_bytes(post2)
    (case2 / "post2.nii.gz").write_bytes(pre)
    report = check_dataset(root, verify_hashes=False)
    problems = {case.case_id: " ".join(case.problems) for case in report.cases}
    assert "truncated" in problems["c1"]
    assert "implausible phase order" in problems["c2"]


def test_a_full_disk_during_add_leaves_the_dataset_unchanged(tmp_path, synth_case_files, monkeypatch):
    import errno

    import breastlesionseg.training.dataset_add as dataset_add

    src = synth_case_files(6)
    seg = _seg_file(tmp_path / "ok.seg.nrrd", src["arrays"])
    add_case(tmp_path / "ds", "c1", src["phases"], seg_nrrd=seg)
    written = []

    def full_after_one(volume, path):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        path.write_bytes(b"x")

    monkeypatch.setattr(dataset_add, "write_volume_file", full_after_one)
    with pytest.raises(InputError, match="no space left on the device .*c2.*the dataset is unchanged"):
        add_case(tmp_path / "ds", "c2", src["phases"], seg_nrrd=seg, force=True)
    ds = Dataset(tmp_path / "ds")
    assert [c.case_id for c in ds.load_manifest().cases] == ["c1"]
    assert sorted(p.name for p in ds.cases_dir.iterdir()) == ["c1"]
