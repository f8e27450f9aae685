"""lesion_metrics on the real Duke exam: the enhancing core inside the expert lesion box."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Volume
from breastlesionseg.metrics import lesion_metrics


@pytest.mark.realdata
def test_duke_box_core_metrics(duke_dir, duke_phase_paths):
    phases = [Volume.from_sitk(sitk.ReadImage(str(p)), name=p.name, source=str(p)) for p in duke_phase_paths]
    exam = DCEExam(phases)
    box = sitk.GetArrayFromImage(sitk.ReadImage(str(duke_dir / "Breast_MRI_153_lesion_bbox.nii.gz"))) > 0
    pre = exam.phases[0].array.astype(np.float32)
    post1 = exam.phases[1].array.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        pe = np.where(pre > 50, 100 * (post1 - pre) / pre, 0)
    core = sitk.GetImageFromArray((box & (pe >= 70)).astype(np.uint8))
    labels = sitk.GetArrayFromImage(sitk.RelabelComponent(sitk.ConnectedComponent(core, True), sortByObjectSize=True))
    labels = (labels == 1).astype(np.uint8)  # largest enhancing component in the box

    m = lesion_metrics(exam, labels)
    assert m["totals"]["lesion_count"] == 1
    les = m["lesions"][0]
    g = exam.geometry
    assert les["volume_mm3"] == pytest.approx(labels.sum() * g.voxel_volume_mm3)
    assert les["ftv_mm3"] == pytest.approx(les["volume_mm3"])  # selected by early PE >= 70 %
    assert les["mean_pe_early_percent"] >= 70 and les["peak_pe_early_percent"] >= les["mean_pe_early_percent"]
    assert les["kinetic_curve_type"] in ("persistent", "plateau", "washout")
    # geometry: centroid inside the box, diameters bounded by ITK's Feret diameter and the box
    idx = np.argwhere(box)
    lo, hi = g.index_to_lps(idx.min(0)[::-1].astype(float)), g.index_to_lps(idx.max(0)[::-1].astype(float))
    assert np.all(np.asarray(les["centroid_lps_mm"]) >= np.minimum(lo, hi) - 1e-6)
    assert np.all(np.asarray(les["centroid_lps_mm"]) <= np.maximum(lo, hi) + 1e-6)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(g.apply_to(sitk.GetImageFromArray(labels)))
    assert les["longest_3d_diameter_mm"] == pytest.approx(stats.GetFeretDiameter(1), rel=1e-9)
    assert les["longest_axial_diameter_mm"] <= les["longest_3d_diameter_mm"] <= np.linalg.norm(hi - lo) + 1e-6
    centre_x = g.index_to_lps((np.asarray(g.size) - 1) / 2.0)[0]
    assert les["side"] == ("left" if les["centroid_lps_mm"][0] > centre_x else "right")
