"""The phantom's fat-saturated contrasts and enhancement levels are calibrated to the real Duke exam."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.phantom import PhantomConfig, generate_phantom
from breastlesionseg.phantom.anatomy import FAT, GLAND
from breastlesionseg.phantom.kinetics import BLOOD_PEAK_RANGE_PERCENT


def _read(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float64)


@pytest.mark.realdata
def test_contrasts_match_the_duke_exam(duke_dir):
    pre = _read(duke_dir / "Breast_MRI_153_0000_pre.nii.gz")
    post1 = _read(duke_dir / "Breast_MRI_153_0001_post1.nii.gz")
    tissue = _read(duke_dir / "Breast_MRI_153_fgt_fat_sparse.nii.gz").astype(int)
    box = _read(duke_dir / "Breast_MRI_153_lesion_bbox.nii.gz") > 0
    # README: labels 1-2 fibroglandular tissue, 3-5 fat (label 4 is brighter; use the clear fat labels 3 and 5)
    duke_ratio = np.median(pre[tissue == 1]) / np.median(pre[np.isin(tissue, (3, 5))])
    sub = post1 - pre
    core = box & (sub > np.percentile(sub[box], 60))  # the enhancing core of the expert lesion box
    duke_lesion_pe = (post1[core].mean() - pre[core].mean()) / pre[core].mean() * 100

    p = generate_phantom(PhantomConfig(seed=0, size=(112, 64, 32), n_lesions=(2, 2), noise_percent=0,
                                       bias_strength=0, fgt_density=0.6))
    ph_pre = p.exam.pre.array.astype(float)
    ph_ratio = np.percentile(ph_pre[p.tissue.array == GLAND], 95) / np.median(ph_pre[p.tissue.array == FAT])
    assert 1.7 < duke_ratio < 2.8  # sanity of the real-data reading
    assert ph_ratio == pytest.approx(duke_ratio, rel=0.25)
    # the Duke lesion's early enhancement lies in the phantom's mass range (90-200 %)
    assert 90.0 <= duke_lesion_pe <= 200.0
    # the Duke heart (first-pass blood) enhances ~260 %: the phantom's per-seed blood peak range starts there
    heart = (slice(75, 86), slice(305, 335), slice(200, 260))  # a box inside the blood pool (axial slices 75-85)
    assert np.median(sub[heart]) > np.percentile(sub, 95)  # it is the strongly enhancing heart
    duke_heart_pe = (post1[heart].mean() - pre[heart].mean()) / pre[heart].mean() * 100
    assert BLOOD_PEAK_RANGE_PERCENT[0] * 0.85 <= duke_heart_pe <= BLOOD_PEAK_RANGE_PERCENT[1]
