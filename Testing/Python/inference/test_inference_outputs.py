"""Output folder: every file, exact geometry (oblique), slicerio-readable segments, all-or-nothing writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import slicerio

from breastlesionseg.errors import InputError
from breastlesionseg.inference import InferenceConfig, SegmentationEngine, write_outputs
from breastlesionseg.inference import outputs as outputs_module
from breastlesionseg.io import read_label_volume, read_volume


@pytest.fixture(scope="module")
def result_and_exam(oblique_case, handset_factory):
    case = oblique_case
    net, card = handset_factory()
    engine = SegmentationEngine(InferenceConfig(device="cpu", crop_margin_mm=3.0, save_probability=True,
                                                backend="eager"),
                                model=net, card=card,
                                breast_segmenter=lambda exam: case.breast)
    return engine.run(case.exam), case


def test_write_outputs_all_files_with_exact_geometry(tmp_path, result_and_exam):
    result, case = result_and_exam
    out = tmp_path / "run1"
    files = write_outputs(result, case.exam, out)
    assert sorted(files) == sorted(["segmentation.seg.nrrd", "lesions.nii.gz", "breast_mask.nii.gz", "metrics.json",
                                    "overview.png", "probability.nii.gz"])
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    geo = case.exam.geometry
    lesions = read_label_volume(out / "lesions.nii.gz")
    breast = read_label_volume(out / "breast_mask.nii.gz")
    prob = read_volume(out / "probability.nii.gz")
    for vol in (lesions, breast, prob):
        assert vol.geometry.size == geo.size
        np.testing.assert_allclose(vol.geometry.spacing, geo.spacing, atol=1e-6)
        np.testing.assert_allclose(vol.geometry.origin, geo.origin, atol=1e-4)
        np.testing.assert_allclose(vol.geometry.direction, geo.direction, atol=1e-6)
    np.testing.assert_array_equal(lesions.array, result.lesion_labels.array)
    np.testing.assert_array_equal(breast.array, result.breast_mask.array)
    np.testing.assert_allclose(prob.array, result.probability.array, atol=1e-7)

    seg = slicerio.read_segmentation(str(out / "segmentation.seg.nrrd"))
    names = slicerio.segment_names(seg)
    assert names == ["Breast left", "Breast right", "Lesion 1", "Lesion 2"]
    lesion1 = slicerio.extract_segments(seg, [("Lesion 1", 1)])
    assert int(np.count_nonzero(lesion1["voxels"])) == int(np.count_nonzero(result.lesion_labels.array == 1))
    ijk_to_lps = np.asarray(seg["ijkToLPS"])
    np.testing.assert_allclose(ijk_to_lps[:3, :3], geo.ijk_to_lps_matrix()[:3, :3], atol=1e-9)

    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert doc["model"]["id"] == "test-handset" and doc["model"]["demo"] is False
    assert doc["totals"]["lesion_count"] == 2 and len(doc["lesions"]) == 2
    assert doc["lesions"][0]["volume_mm3"] == pytest.approx(result.lesion_volumes_mm3[0])
    assert set(doc["timings_s"]) >= {"breast_region", "inference", "postprocess", "total"}
    assert doc["device"].startswith("cpu") and doc["peak_memory_mb"] > 0
    assert doc["breast_volumes"]["left_ml"] > 0
    png = (out / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 400_000


def test_refuses_non_empty_folder_and_force_replaces_only_our_files(tmp_path, result_and_exam):
    result, case = result_and_exam
    out = tmp_path / "edited"
    out.mkdir()
    (out / "segmentation.seg.nrrd").write_text("user's edited segmentation")
    (out / "notes.txt").write_text("keep me")
    (out / "heatmap.nii.gz").write_text("stale map from an earlier run")
    with pytest.raises(InputError, match="not empty"):
        write_outputs(result, case.exam, out)
    assert (out / "segmentation.seg.nrrd").read_text(encoding="utf-8") == "user's edited segmentation"
    write_outputs(result, case.exam, out, overwrite=True)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert not (out / "heatmap.nii.gz").exists()
    assert slicerio.segment_names(slicerio.read_segmentation(str(out / "segmentation.seg.nrrd")))[-1] == "Lesion 2"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_outputs(result, case.exam, empty)  # an empty existing folder is fine
    assert (empty / "metrics.json").is_file()


def test_failure_half_way_leaves_no_output(tmp_path, result_and_exam, monkeypatch):
    result, case = result_and_exam

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr("breastlesionseg.inference.overview.render_overview", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_outputs(result, case.exam, tmp_path / "never")
    assert list(tmp_path.iterdir()) == []
    assert outputs_module.OUTPUT_FILES[0] == "segmentation.seg.nrrd"


def test_lesion_centroids_match_scipy_center_of_mass_and_skip_missing_labels():
    from scipy import ndimage

    from breastlesionseg.inference.overview import lesion_centroids_zyx

    rng = np.random.default_rng(7)
    labels = np.zeros((9, 23, 17), np.uint16)
    labels[1:4, 2:9, 3:6] = 1
    labels[6, 15:20, 10:16] = 3  # label 2 is missing
    labels[rng.random(labels.shape) > 0.995] = 4  # scattered voxels
    got = lesion_centroids_zyx(labels)
    assert [k for k, _ in got] == [1, 3, 4]
    for k, centroid in got:
        np.testing.assert_allclose(centroid, ndimage.center_of_mass(labels == k), atol=1e-9)
    assert lesion_centroids_zyx(np.zeros((3, 4, 5), np.uint8)) == []
