"""write_phantom / load_phantom: files, JSON, exact round trip, overwrite protection, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import InputError
from breastlesionseg.phantom import PhantomConfig, generate_phantom, load_phantom, write_phantom


@pytest.fixture(scope="module")
def oblique_phantom():
    return generate_phantom(PhantomConfig(seed=3, size=(61, 41, 23), spacing=(5.0, 4.5, 5.5), oblique_deg=20.0,
                                          oblique_axis="y", n_post=2, n_lesions=(1, 2)))


def test_write_load_round_trip_preserves_arrays_and_geometry(tmp_path, oblique_phantom):
    p = oblique_phantom
    paths = write_phantom(p, tmp_path / "ph")
    assert sorted(paths) == sorted(["pre", "post1", "post2", "breast_mask", "lesions", "tissue", "structures", "json"])
    assert all(path.is_file() for path in paths.values())
    q = load_phantom(tmp_path / "ph")
    assert q.exam.names == p.exam.names
    for a, b in zip(p.exam.phases, q.exam.phases):
        assert b.array.dtype == a.array.dtype and np.array_equal(a.array, b.array)
        assert b.geometry.same_grid(a.geometry, atol_mm=1e-4, atol_dir=1e-6)
    assert np.array_equal(q.breast_mask.array, p.breast_mask.array) and q.breast_mask.array.dtype == np.uint8
    assert np.array_equal(q.lesion_labels.array, p.lesion_labels.array) and q.lesion_labels.array.dtype == np.uint16
    assert q.lesions == p.lesions and q.config == p.config
    for key in ("tissue", "structures"):  # the analysis maps survive too
        assert np.array_equal(getattr(q, key).array, getattr(p, key).array)
        assert getattr(q, key).array.dtype == np.uint8 and getattr(q, key).geometry.same_grid(p.exam.geometry)
    # the oblique direction really is in the file (read back independently with SimpleITK)
    img = sitk.ReadImage(str(paths["pre"]))
    assert np.allclose(img.GetDirection(), p.exam.geometry.direction, atol=1e-6)


def test_json_volumes_equal_voxel_counts(tmp_path, oblique_phantom):
    paths = write_phantom(oblique_phantom, tmp_path)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["lesions"])))
    bm = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["breast_mask"])))
    vv = float(np.prod(doc["geometry"]["spacing_mm_xyz"]))
    assert doc["n_lesions"] == len(doc["lesions"]) == int(lab.max()) >= 1
    for les in doc["lesions"]:
        assert les["volume_mm3"] == pytest.approx(np.count_nonzero(lab == les["index"]) * vv)
    assert doc["breast_volumes_ml"]["left"] == pytest.approx(np.count_nonzero(bm == 1) * vv / 1000)
    assert doc["breast_volumes_ml"]["right"] == pytest.approx(np.count_nonzero(bm == 2) * vv / 1000)
    assert doc["files"]["pre"] == "pre.nii.gz" and doc["phases"] == ["pre", "post1", "post2"]


def test_refuses_to_overwrite_without_flag(tmp_path, oblique_phantom):
    write_phantom(oblique_phantom, tmp_path)
    before = (tmp_path / "pre.nii.gz").stat().st_mtime_ns
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_phantom(oblique_phantom, tmp_path)
    assert (tmp_path / "pre.nii.gz").stat().st_mtime_ns == before
    write_phantom(oblique_phantom, tmp_path, overwrite=True)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temporary files left


def test_load_errors_name_the_problem(tmp_path, oblique_phantom):
    with pytest.raises(InputError, match="phantom.json"):
        load_phantom(tmp_path)
    paths = write_phantom(oblique_phantom, tmp_path)
    paths["post1"].unlink()
    with pytest.raises(InputError, match="post1"):
        load_phantom(tmp_path)
