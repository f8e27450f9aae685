"""Learned breast-region path: plumbing with tiny untrained networks saved through the nn API."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from breastlesionseg.breast import BreastRegionConfig, segment_breast_region
from breastlesionseg.breast.learned import LABELS_BINARY, LABELS_SIDES, _model_grid
from breastlesionseg.errors import InputError, ModelError
from breastlesionseg.exam.dce_exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.nn import ModelCard, build_network, save_model

CONFIG = dict(in_channels=2, expansion=2, base_width=4)


def _save(tmp_path: Path, labels: list[str], *, task: str | None = "breast_region", region: str = "volume",
          name: str = "tiny-breast") -> Path:
    torch.manual_seed(0)
    net = build_network("mm3dunet", dict(CONFIG, out_channels=len(labels)))
    extra = {"task": task} if task else {}
    card = ModelCard(model_id=name, arch="mm3dunet", config=net.config.to_dict(), input_channels=["pre", "post1"],
                     label_names=labels, normalization_region=region, target_spacing_mm=(2.0, 2.0, 3.0),
                     patch_size=(8, 16, 16), demo=True, training_data="untrained (unit test)", extra=extra)
    return save_model(net, card, tmp_path / name)


def _exam(oblique: bool = False) -> DCEExam:
    direction = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    if oblique:
        c, s = np.cos(0.3), np.sin(0.3)
        direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    g = Geometry((23, 19, 9), (1.3, 1.1, 2.5), (-14.0, 3.0, 5.0), direction)
    rng = np.random.default_rng(1)
    pre = rng.normal(100, 10, g.shape_zyx).astype(np.float32)
    pre[:, 8:, :] += 200
    return DCEExam([Volume(pre, g, name="pre"), Volume(pre * 1.2, g, name="post1")])


@pytest.mark.parametrize("labels", [LABELS_SIDES, LABELS_BINARY])
@pytest.mark.parametrize("oblique", [False, True])
def test_untrained_model_gives_valid_mask_on_pre_grid(tmp_path, labels, oblique):
    folder = _save(tmp_path, labels)
    exam = _exam(oblique)
    result = segment_breast_region(exam, BreastRegionConfig(method="model", model=str(folder)))
    assert result.method == "model:tiny-breast"
    assert result.mask.geometry.same_grid(exam.geometry)
    assert result.mask.array.dtype == np.uint8
    assert set(np.unique(result.mask.array)) <= {0, 1, 2}
    assert len(result.details["weights_sha256"]) == 64
    vox_ml = exam.geometry.voxel_volume_mm3 / 1000.0
    assert result.volumes_ml["left"] == pytest.approx(np.count_nonzero(result.mask.array == 1) * vox_ml)


def test_model_grid_covers_same_extent():
    g = Geometry((23, 19, 9), (1.3, 1.1, 2.5), (-14.0, 3.0, 5.0))
    t = _model_grid(g, (2.0, 2.0, 3.0))
    assert t.size == (15, 11, 8)
    # centres of both grids coincide
    np.testing.assert_allclose(g.index_to_lps((np.array(g.size) - 1) / 2.0), t.index_to_lps((np.array(t.size) - 1) / 2.0))


def test_lesion_model_or_bad_card_is_refused(tmp_path):
    exam = _exam()
    lesion = _save(tmp_path, ["lesion"], task=None, name="lesion-model")
    with pytest.raises(ModelError, match="not a breast-region model"):
        segment_breast_region(exam, BreastRegionConfig(method="model", model=str(lesion)))
    masked = _save(tmp_path, LABELS_SIDES, region="breast_mask", name="needs-mask")
    with pytest.raises(ModelError, match="normalization_region"):
        segment_breast_region(exam, BreastRegionConfig(method="model", model=str(masked)))
    with pytest.raises(ModelError):
        segment_breast_region(exam, BreastRegionConfig(method="model", model=str(tmp_path / "missing")))
    with pytest.raises(InputError, match="model="):
        BreastRegionConfig(method="model")
