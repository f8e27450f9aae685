"""Breast region on real data: the Duke exam (lesion box inside, heart and lungs outside) and the
pyradiomics single-phase crop (lesion inside)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from breastlesionseg.breast import compute_crop, segment_breast_region
from breastlesionseg.exam.dce_exam import DCEExam
from breastlesionseg.geometry import Volume

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def duke(duke_phase_paths, duke_dir):
    phases = [Volume.from_sitk(sitk.ReadImage(str(p)), name=p.stem) for p in duke_phase_paths]
    exam = DCEExam(phases)
    result = segment_breast_region(exam)
    bbox = sitk.GetArrayFromImage(sitk.ReadImage(str(duke_dir / "Breast_MRI_153_lesion_bbox.nii.gz")))
    return exam, result, bbox


def test_duke_mask_on_pre_grid_contains_lesion_box(duke):
    exam, result, bbox = duke
    assert result.mask.geometry.same_grid(exam.geometry)
    mask = result.mask.array
    assert np.all(mask[bbox > 0] > 0), "the whole expert lesion box lies in the breast region"
    # the lesion is in the patient's right breast (low LPS x): label 2
    assert set(np.unique(mask[bbox > 0])) == {2}


def test_duke_excludes_heart_and_lungs(duke):
    exam, result, _ = duke
    mask = result.mask.array > 0
    pre = exam.pre.array.astype(np.float32)
    post = exam.phases[1].array.astype(np.float32)
    sub = post - pre
    # strongly enhancing tissue: the heart is its largest connected region
    strong = ndi.binary_opening(sub > np.percentile(sub, 98.0), iterations=2)
    lab, n = ndi.label(strong)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    heart = lab == int(np.argmax(sizes))
    vox_ml = exam.geometry.voxel_volume_mm3 / 1000.0
    assert heart.sum() * vox_ml > 30.0
    zz, yy, xx = np.nonzero(heart)
    assert yy.mean() > 250  # posterior (y grows posterior in LPS)
    assert np.count_nonzero(heart & mask) / heart.sum() < 0.02
    # lungs: the dark interior (below 20 % of the median tissue signal) deep inside the body
    dark = ndi.gaussian_filter(pre, 2.0) < 0.2 * np.median(pre[pre > np.percentile(pre, 50)])
    lungs = dark.copy()
    lungs[:, :300, :] = False  # posterior third of the field of view, behind the chest wall
    assert np.count_nonzero(lungs) * vox_ml > 50.0
    assert np.count_nonzero(lungs & mask) / np.count_nonzero(lungs) < 0.02


def test_duke_inferior_slices_stay_anterior_of_the_chest_wall(duke):
    """Below the heart (array z 15-45) the liver, not the lungs / heart, lies behind the chest wall;
    the mask must not dip there into the chest wall in front of the liver: in every column its most
    posterior voxel lies at most 10 mm posterior of the mask's most posterior voxel in the same
    column of the mid slices (z 55-75, where lungs and heart anchor the chest wall). Before the
    inferior-descent limit, 4468 inferior columns exceeded 10 mm (up to 32 mm)."""
    exam, result, _ = duke
    mask = result.mask.array > 0
    sy_mm = exam.geometry.spacing[1]
    ny = mask.shape[1]
    yy = np.arange(ny)[None, :, None]
    posterior = np.where(mask, yy, -1).max(axis=1)  # (z, x) most posterior mask row, -1 where empty
    mid = posterior[55:76].max(axis=0)
    inferior = posterior[15:46]
    both = (inferior >= 0) & (mid[None, :] >= 0)
    assert both.sum() > 5000  # the inferior slices do contain breast tissue
    excess_mm = (inferior - mid[None, :])[both] * sy_mm
    assert excess_mm.max() <= 10.0, f"inferior mask dips {excess_mm.max():.1f} mm behind the mid-slice chest wall"


def test_duke_volumes_plausible_and_crop(duke):
    _, result, bbox = duke
    v = result.volumes_ml
    assert 500.0 < v["left"] < 3000.0
    assert 500.0 < v["right"] < 3500.0
    assert v["total"] == pytest.approx(v["left"] + v["right"])
    box = compute_crop(result.mask, margin_mm=16.0, multiple=16)
    assert all(s % 16 == 0 for s in box.shape_zyx)
    assert 0.3 < box.fraction_kept <= 1.0
    inside = np.zeros(bbox.shape, bool)
    inside[box.inside_slices] = True
    assert np.all(inside[bbox > 0])


def test_pyradiomics_single_phase_crop(pyradiomics_dir):
    image = Volume.from_sitk(sitk.ReadImage(str(pyradiomics_dir / "breast1_image.nrrd")), name="breast1")
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(pyradiomics_dir / "breast1_label.nrrd")))
    result = segment_breast_region(image)
    mask = result.mask.array
    assert result.mask.geometry.same_grid(image.geometry)
    assert np.all(mask[label > 0] > 0)
    # a crop inside the breast without air or chest wall: the whole tissue, on the patient's right
    assert result.details["has_air"] is False
    assert set(np.unique(mask)) == {2}
    assert result.volumes_ml["total"] == pytest.approx(mask.size * image.geometry.voxel_volume_mm3 / 1000.0)
