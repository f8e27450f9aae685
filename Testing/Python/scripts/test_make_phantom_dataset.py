"""scripts/make_phantom_dataset.py: the lesion-diameter range reaches the phantoms and is recorded per case."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def make(load_repo_script):
    return load_repo_script("scripts/make_phantom_dataset.py")


def test_parse_range_mm_reads_min_max_and_names_bad_input(make):
    assert make.parse_range_mm("5,12") == (5.0, 12.0)
    for bad in ("12,5", "5", "a,b", "0,3"):
        with pytest.raises(argparse.ArgumentTypeError, match="MIN"):
            make.parse_range_mm(bad)


def _equivalent_diameters_mm(path) -> list[float]:
    image = sitk.ReadImage(str(path))
    labels = sitk.GetArrayFromImage(image)
    voxel_mm3 = float(np.prod(image.GetSpacing()))
    return [float((6.0 * np.count_nonzero(labels == v) * voxel_mm3 / np.pi) ** (1.0 / 3.0))
            for v in np.unique(labels[labels > 0])]


def test_small_lesion_range_reaches_every_case(make, tmp_path):
    out = tmp_path / "ds"
    assert make.main(["--out", str(out), "--family", "training-nonfatsat", "--seeds", "3768-3770",
                      "--min-lesions", "3", "--max-lesions", "3", "--lesion-diameter-mm", "5,8"]) == 0
    manifest = json.loads((out / "dataset.json").read_text())
    assert len(manifest["cases"]) == 3
    diameters = []
    for case in manifest["cases"]:
        assert "lesion diameter 5-8 mm" in case["source"]
        diameters += _equivalent_diameters_mm(out / case["files"]["lesions"])
    # 9 lesions drawn from 5-8 mm (lobulation and non-mass shapes widen the spread a little); from the default
    # 5-30 mm at least one of nine would be larger
    assert len(diameters) >= 8 and max(diameters) < 11.0
