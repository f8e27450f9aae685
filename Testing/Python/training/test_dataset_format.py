"""Dataset format: add_case writes the case + manifest (JSON and CSV), refuses bad cases, check_dataset."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import DatasetError
from breastlesionseg.training.dataset import Dataset
from breastlesionseg.training.dataset_add import add_case, instance_labels
from breastlesionseg.training.dataset_check import check_dataset


def test_add_case_writes_files_manifest_and_csv(tmp_path, synth_case_files):
    src = synth_case_files(1)
    phases, lesion, bm = src["arrays"]
    root = tmp_path / "ds"
    rec = add_case(root, "case-001", src["phases"], lesions=src["lesions"], breast_mask=src["breast_mask"],
                   corrected_by="Dr A", notes="test")
    assert rec.phase_names == ["pre", "post1", "post2"]
    assert rec.lesion_count == 1
    assert rec.lesion_volume_mm3 == pytest.approx(lesion.sum() * 1.5 * 1.5 * 2.0)
    assert rec.breast_mask_source == "given"
    manifest = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    assert manifest["schema_version"] == 1 and [c["case_id"] for c in manifest["cases"]] == ["case-001"]
    assert manifest["cases"][0]["geometry"]["spacing_mm_xyz"] == [1.5, 1.5, 2.0]
    rows = list(csv.DictReader((root / "dataset.csv").open(encoding="utf-8")))
    assert rows[0]["case_id"] == "case-001" and rows[0]["corrected_by"] == "Dr A" and rows[0]["lesion_count"] == "1"
    # files round-trip voxels and geometry
    img = sitk.ReadImage(str(root / "cases/case-001/post1.nii.gz"))
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), phases[1])
    assert img.GetSpacing() == pytest.approx((1.5, 1.5, 2.0)) and img.GetOrigin() == pytest.approx((-10, 5, 3))
    data = Dataset(root).load_case("case-001")
    assert np.array_equal(data.lesion_labels.array > 0, lesion > 0)
    assert np.array_equal(data.breast_mask.array, bm)
    assert check_dataset(root).ok


def test_add_refuses_duplicates_and_needs_force(tmp_path, synth_case_files):
    a, b = synth_case_files(1, "a"), synth_case_files(2, "b")
    root = tmp_path / "ds"
    add_case(root, "x", a["phases"], lesions=a["lesions"], breast_mask=a["breast_mask"])
    before = (root / "cases/x/pre.nii.gz").read_bytes()
    with pytest.raises(DatasetError, match="already in dataset"):
        add_case(root, "x", b["phases"], lesions=b["lesions"], breast_mask=b["breast_mask"])
    assert (root / "cases/x/pre.nii.gz").read_bytes() == before  # not overwritten
    with pytest.raises(DatasetError, match="identical images"):
        add_case(root, "y", a["phases"], lesions=a["lesions"], breast_mask=a["breast_mask"])
    rec = add_case(root, "x", b["phases"], lesions=b["lesions"], breast_mask=b["breast_mask"], force=True)
    assert Dataset(root).load_manifest().ids() == ["x"]
    assert (root / "cases/x/pre.nii.gz").read_bytes() != before
    assert rec.image_sha256 == Dataset(root).load_manifest().cases[0].image_sha256
    assert not [p for p in (root / "cases").iterdir() if p.name.startswith(".")]  # no temp/trash left


def test_add_refuses_mismatched_grid_naming_the_file(tmp_path, synth_case_files, nifti_writer):
    src = synth_case_files(3)
    phases, _, _ = src["arrays"]
    shifted = nifti_writer(phases[1], src["folder"] / "post_shifted.nii.gz", origin=(-10.0, 5.0, 7.0))
    with pytest.raises(DatasetError, match=r"phase 'post1' '.*post_shifted.nii.gz' is not on the grid"):
        add_case(tmp_path / "ds", "c", [src["phases"][0], shifted], lesions=src["lesions"],
                 breast_mask=src["breast_mask"])
    small = nifti_writer(np.zeros((11, 23, 20), np.uint8), src["folder"] / "small_lesion.nii.gz")
    with pytest.raises(DatasetError, match=r"lesion labels '.*small_lesion.nii.gz' is not on the grid.*size"):
        add_case(tmp_path / "ds", "c", src["phases"], lesions=small, breast_mask=src["breast_mask"])
    assert not (tmp_path / "ds" / "dataset.json").exists()


def test_add_refuses_empty_label_missing_phase_and_2d(tmp_path, synth_case_files, nifti_writer):
    src = synth_case_files(4)
    empty = nifti_writer(np.zeros((11, 23, 21), np.uint8), src["folder"] / "empty.nii.gz")
    with pytest.raises(DatasetError, match="empty.*no lesion voxel"):
        add_case(tmp_path / "ds", "c", src["phases"], lesions=empty, breast_mask=src["breast_mask"])
    with pytest.raises(DatasetError, match="missing phase 'post1'.*nope.nii.gz"):
        add_case(tmp_path / "ds", "c", [src["phases"][0], tmp_path / "nope.nii.gz"], lesions=src["lesions"],
                 breast_mask=src["breast_mask"])
    with pytest.raises(DatasetError, match="missing phase.*got 1"):
        add_case(tmp_path / "ds", "c", src["phases"][:1], lesions=src["lesions"], breast_mask=src["breast_mask"])
    flat = [nifti_writer(np.ones((1, 23, 21), np.float32) * k, src["folder"] / f"flat{k}.nii.gz") for k in (1, 2)]
    with pytest.raises(DatasetError, match="flat1.nii.gz.*2D"):
        add_case(tmp_path / "ds", "c", flat, lesions=src["lesions"], breast_mask=src["breast_mask"])
    with pytest.raises(DatasetError, match="case id"):
        add_case(tmp_path / "ds", "../evil", src["phases"], lesions=src["lesions"], breast_mask=src["breast_mask"])
    assert not (tmp_path / "ds" / "cases").exists() or not any((tmp_path / "ds" / "cases").iterdir())


def test_instance_labels_split_binary_and_order_by_volume():
    arr = np.zeros((5, 12, 12), np.uint8)
    arr[1:3, 1:3, 1:3] = 1  # 8 voxels
    arr[1:4, 6:10, 6:10] = 1  # 48 voxels
    inst, counts = instance_labels(arr)
    assert counts == [48, 8]
    assert inst[2, 7, 7] == 1 and inst[1, 1, 1] == 2
    multi = np.zeros_like(arr)
    multi[1:3, 1:3, 1:3] = 5
    multi[1:4, 6:10, 6:10] = 3
    inst2, counts2 = instance_labels(multi)
    assert counts2 == [48, 8] and np.array_equal(inst, inst2)


def test_check_reports_corrupted_case(tmp_path, synth_case_files, nifti_writer):
    root = tmp_path / "ds"
    for seed in (5, 6):
        s = synth_case_files(seed, f"s{seed}")
        add_case(root, f"case{seed}", s["phases"], lesions=s["lesions"], breast_mask=s["breast_mask"],
                 corrected_by="Dr B")
    assert check_dataset(root).ok
    # corrupt case6: lesions replaced by an empty map on another grid, post2 deleted
    nifti_writer(np.zeros((11, 23, 20), np.uint8), root / "cases/case6/lesions.nii.gz")
    (root / "cases/case6/post2.nii.gz").unlink()
    # and modify case5's pre voxels (same grid)
    pre = sitk.ReadImage(str(root / "cases/case5/pre.nii.gz"))
    arr = sitk.GetArrayFromImage(pre)
    arr[0, 0, 0] += 1000
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(pre)
    sitk.WriteImage(out, str(root / "cases/case5/pre.nii.gz"))
    (root / "cases/orphan").mkdir()
    report = check_dataset(root)
    assert not report.ok and report.n_bad_cases == 2
    by_id = {c.case_id: c for c in report.cases}
    text6 = " ".join(by_id["case6"].problems)
    assert "post2 file" in text6 and "missing" in text6
    assert "lesions file" in text6 and "not on the manifest grid" in text6
    assert "empty" in text6
    assert any("hash" in p for p in by_id["case5"].problems)
    assert any("orphan" in p for p in report.problems)
    assert json.loads(json.dumps(report.to_dict()))["n_bad_cases"] == 2


def test_add_case_from_seg_nrrd_onto_pre_grid(tmp_path, synth_case_files):
    from breastlesionseg.geometry import Geometry, Volume
    from breastlesionseg.io.seg_nrrd import write_seg_nrrd

    src = synth_case_files(8)
    phases, lesion, bm = src["arrays"]
    grid = Geometry(lesion.shape[::-1], (1.5, 1.5, 2.0), (-10.0, 5.0, 3.0))
    two = lesion.astype(np.uint16)
    two[0, 0:2, 0:2] = 2  # a second, small lesion
    seg = tmp_path / "corrected.seg.nrrd"
    write_seg_nrrd(seg, Volume(bm, grid), Volume(two, grid))
    rec = add_case(tmp_path / "ds", "segcase", src["phases"], seg_nrrd=seg, corrected_by="Dr S")
    assert rec.lesion_count == 2 and rec.breast_mask_source == "given"
    data = Dataset(tmp_path / "ds").load_case("segcase")
    assert np.array_equal(data.breast_mask.array, bm)
    assert np.array_equal(data.lesion_labels.array > 0, two > 0)
    assert data.lesion_labels.geometry.same_grid(grid)


@pytest.mark.slow
def test_add_case_computes_breast_mask_when_absent(tmp_path):
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    ph = generate_phantom(PhantomConfig(seed=1005, size=(112, 64, 32), n_lesions=(1, 1)))
    rec = add_case(tmp_path / "ds", "ph", ph.exam.phases[:2], lesions=ph.lesion_labels)
    assert rec.breast_mask_source == "computed"
    data = Dataset(tmp_path / "ds").load_case("ph")
    computed, truth = data.breast_mask.array > 0, ph.breast_mask.array > 0
    dice = 2 * (computed & truth).sum() / (computed.sum() + truth.sum())
    assert dice > 0.7
