"""Training building blocks: losses (Wang et al. / Narimani et al. weights), k-fold splits, lesion-balanced
sampling + ACT labels, augmentation axes, energy/CO2 report, config validation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss, FocalLoss

from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Geometry
from breastlesionseg.training.config import TrainConfig
from breastlesionseg.training.crossval import kfold_indices, split_cases
from breastlesionseg.training.losses import SegmentationLoss
from breastlesionseg.training.preprocess import PreparedCase
from breastlesionseg.training.report import CO2_KG_PER_KWH, EnergyMeter
from breastlesionseg.training.sampling import PatchDataset, lesion_balanced_indices
from breastlesionseg.training.transforms import build_augmentation


def _logits_target(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 1, 4, 6, 6, generator=g)
    target = (torch.rand(2, 1, 4, 6, 6, generator=g) > 0.7).float()
    return logits, target


def test_hybrid_loss_is_the_narimani_weighted_sum():
    logits, target = _logits_target()
    loss = SegmentationLoss("hybrid", act_weight=0.0)(logits, target)
    dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)(logits, target)
    focal = FocalLoss(gamma=2.0, use_softmax=False)(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert float(loss.total) == pytest.approx(float(0.1 * dice + 0.45 * focal + 0.45 * bce), rel=1e-6)
    assert set(loss.parts) == {"dice", "focal", "bce"}
    custom = SegmentationLoss("hybrid", hybrid_weights=(1.0, 0.0, 0.0), act_weight=0.0)(logits, target)
    assert float(custom.total) == pytest.approx(float(dice), rel=1e-6)


def test_dice_ce_loss_adds_weighted_act_cross_entropy():
    logits, target = _logits_target(1)
    act_logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    act_target = torch.tensor([1, 0])
    out = SegmentationLoss("dice_ce", act_weight=0.25)(logits, target, act_logits, act_target)
    ce = torch.nn.functional.cross_entropy(act_logits, act_target)
    assert float(out.total) == pytest.approx(out.parts["dice"] + 0.25 * float(ce), rel=1e-6)
    perfect = SegmentationLoss("dice_ce")(target * 40 - 20, target)  # logits +-20 -> Dice ~ 1
    assert float(perfect.total) < 1e-3
    with pytest.raises(InputError, match="unknown loss"):
        SegmentationLoss("mse")


def test_kfold_partitions_cases_and_split_is_order_independent():
    parts = kfold_indices(11, 5, seed=3)
    assert sorted(i for p in parts for i in p) == list(range(11))
    assert sorted(len(p) for p in parts) == [2, 2, 2, 2, 3]
    ids = [f"c{i:02d}" for i in range(11)]
    vals = [split_cases(ids, 5, f, seed=3)[1] for f in range(5)]
    assert sorted(v for vs in vals for v in vs) == ids  # every case validated exactly once
    train, val = split_cases(ids, 5, 2, seed=3)
    assert not set(train) & set(val) and len(train) + len(val) == 11
    assert split_cases(list(reversed(ids)), 5, 2, seed=3) == (train, val)
    assert split_cases(ids, 1, 0, val_fraction=0.2, seed=0)[1].__len__() == 2
    assert split_cases(ids[:1], 1, 0, val_fraction=0.2) == (ids[:1], [])
    with pytest.raises(InputError, match="at least 5 cases"):
        split_cases(ids[:3], 5, 0)


def _prepared(seed=0, shape=(12, 20, 20)):
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), np.uint8)
    label[0, 5:8, 8:12, 3:6] = 1  # lesion on the low-x side
    breast = np.zeros(shape, np.uint8)
    breast[2:10, 2:18, 2:18] = 1
    image = rng.normal(0, 1, (2, *shape)).astype(np.float32)
    image[1][label[0] > 0] += 5
    return PreparedCase("p", image, label, breast, Geometry(shape[::-1], (1, 1, 1), (0, 0, 0)), int(label.sum()))


def test_lesion_balanced_sampling_and_act_labels():
    case = _prepared()
    pos = PatchDataset([case], (4, 6, 6), patches_per_case=20, pos_fraction=1.0, augmentation=None, seed=1)
    for i in range(len(pos)):
        image, label, act = pos[i]
        assert image.shape == (2, 4, 6, 6) and label.shape == (1, 4, 6, 6)
        assert label.sum() > 0 and int(act) == 1  # centred on a lesion voxel
        # the label follows the image: lesion voxels are the bright ones of channel 1
        assert float(image[1][label[0] > 0].mean()) > 3.0
    neg = PatchDataset([case], (4, 4, 4), patches_per_case=30, pos_fraction=0.0, augmentation=None, seed=1)
    items = [neg[i] for i in range(len(neg))]
    acts = [int(it[2]) for it in items]
    labels = [float(it[1].sum()) for it in items]
    assert acts == [int(v > 0) for v in labels]
    assert sum(acts) < len(acts)  # mostly lesion-free patches
    # reseeding per epoch makes the draw reproducible
    neg.set_epoch(3)
    a = [neg[i][0] for i in range(3)]
    neg.set_epoch(3)
    b = [neg[i][0] for i in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_float16_cache_gives_float32_patches_equal_to_the_float32_cache():
    case = _prepared(seed=4)
    half = dataclasses.replace(case, image=case.image.astype(np.float16))
    assert half.nbytes - half.label.nbytes - half.breast.nbytes == case.image.nbytes // 2
    augmentation = build_augmentation(rotate_deg=15.0, flip_prob=0.5, intensity_scale=0.2)
    full_ds = PatchDataset([case], (4, 6, 6), patches_per_case=6, pos_fraction=0.5, augmentation=augmentation, seed=2)
    half_ds = PatchDataset([half], (4, 6, 6), patches_per_case=6, pos_fraction=0.5,
                           augmentation=build_augmentation(rotate_deg=15.0, flip_prob=0.5, intensity_scale=0.2), seed=2)
    for i in range(len(full_ds)):
        (a, la, acta), (b, lb, actb) = full_ds[i], half_ds[i]
        assert b.dtype == torch.float32
        assert torch.equal(la, lb) and int(acta) == int(actb)  # the same patch ...
        assert torch.allclose(a, b, atol=5e-3 * float(a.abs().max()))  # ... within float16 rounding


def test_augmentation_flips_left_right_and_scales_intensity():
    image = torch.zeros(1, 3, 5, 7)
    image[0, :, :, 0] = 1.0  # low-x column
    label = image.clone()
    flip = build_augmentation(rotate_deg=0.0, flip_prob=1.0, intensity_scale=0.0)
    out = flip({"image": image, "label": label})
    assert torch.equal(out["image"][0, :, :, -1], torch.ones(3, 5)) and float(out["image"][0, :, :, 0].sum()) == 0
    assert torch.equal(out["label"], out["image"])
    scale = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.2)
    scale.set_random_state(seed=5)
    factors = []
    for _ in range(20):
        o = scale({"image": torch.ones(1, 2, 2, 2), "label": torch.zeros(1, 2, 2, 2)})
        factors.append(float(o["image"].mean()))
        assert float(o["label"].sum()) == 0
    assert 0.8 <= min(factors) < 0.95 and 1.05 < max(factors) <= 1.2
    rot = build_augmentation(rotate_deg=15.0, flip_prob=0.0, intensity_scale=0.0)
    rot.set_random_state(seed=2)
    vol = torch.zeros(1, 5, 21, 21)
    vol[0, :, 10, 3:18] = 1.0  # a line along x
    changed = 0
    for _ in range(10):
        o = rot({"image": vol, "label": vol.clone()})
        zs = torch.nonzero(o["label"][0] > 0.5)[:, 0]
        assert set(zs.tolist()) == set(range(5))  # axial rotation: every slice keeps its line
        assert torch.equal(o["label"][0, 0], o["label"][0, 4])  # same in-plane rotation on every slice
        changed += int(float((o["label"] - vol).abs().sum()) > 0)
    assert changed >= 5  # ... but the line turned in-plane


def test_energy_report_follows_narimani_formula(monkeypatch):
    meter = EnergyMeter(use_gpu=False, cpu_tdp_w=100.0, logical_cores=4)
    meter.start(elapsed_before_s=3600.0)
    s = meter.summary(cpu_s_all_ranks=7200.0)  # 2 busy cores for an hour at 25 W each
    assert s["cpu_energy_kwh"] == pytest.approx(7200 * 25 / 3.6e6)
    assert s["gpu_energy_kwh"] == 0.0
    assert s["carbon_footprint_kg_co2"] == pytest.approx(CO2_KG_PER_KWH * 0.05)
    assert s["carbon_footprint_1kw_workstation_kg_co2"] == pytest.approx(0.475 * 1.0, rel=1e-3)  # 1 kW for ~1 h
    assert s["assumptions"]["cpu_power_per_busy_core_w"] == 25.0


def test_train_config_validates_arguments(tmp_path):
    with pytest.raises(InputError, match="patch_size"):
        TrainConfig(tmp_path, tmp_path / "o", patch_size=(10, 32, 32))
    with pytest.raises(InputError, match="fold must be in 0..4"):
        TrainConfig(tmp_path, tmp_path / "o", folds=5, fold=5)
    with pytest.raises(InputError, match="loss"):
        TrainConfig(tmp_path, tmp_path / "o", loss="l2")
    with pytest.raises(InputError, match="acquisition_augment_prob must be in"):
        TrainConfig(tmp_path, tmp_path / "o", acquisition_augment_prob=1.5)
    with pytest.raises(InputError, match=r"normalization must be one of \['zscore', 'robust', 'none'\], got 'minmax'"):
        TrainConfig(tmp_path, tmp_path / "o", normalization="minmax")
    with pytest.raises(InputError, match="subtraction_only_prob must be in"):
        TrainConfig(tmp_path, tmp_path / "o", subtraction_only_prob=-0.1)
    with pytest.raises(InputError, match=r"needs input channels with a subtraction .* \['pre', 'post1'\]"):
        TrainConfig(tmp_path, tmp_path / "o", subtraction_only_prob=0.3, channels=("pre", "post1"))
    with pytest.raises(InputError, match="needs input channels"):
        TrainConfig(tmp_path, tmp_path / "o", subtraction_only_prob=0.3, channels=("sub1", "sub2"))  # nothing to blank
    mixed = TrainConfig(tmp_path, tmp_path / "o", subtraction_only_prob=0.3, channels=("sub1", "pre", "post2", "sub2"))
    assert mixed.subtraction_channels() == [0, 3] and mixed.blanked_channels() == [1, 2]
    cfg = TrainConfig(tmp_path, tmp_path / "out")
    assert cfg.model_id == "out" and cfg.lr == 1e-4 and cfg.weight_decay == 1e-4 and cfg.rotate_deg == 15.0
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def _two_lesion_case() -> PreparedCase:
    """A 15 x 41 x 43 case with a 7x9x9-voxel lesion (567 voxels) and a 1x2x2 one (4 voxels)."""
    shape = (15, 41, 43)
    label = np.zeros((1, *shape), np.uint8)
    label[0, 4:11, 5:14, 5:14] = 1  # large lesion, low x/y corner
    label[0, 7, 30:32, 33:35] = 1  # small lesion, high x/y corner
    breast = np.ones(shape, np.uint8)
    image = np.zeros((1, *shape), np.float32)
    return PreparedCase("two", image, label, breast, Geometry(shape[::-1], (1, 1, 1), (0, 0, 0)), int(label.sum()))


def test_lesion_balanced_indices_equal_per_lesion():
    case = _two_lesion_case()
    idx = lesion_balanced_indices(case.label[0], np.random.default_rng(0), per_lesion=100)
    assert idx.size == 200
    zyx = np.stack(np.unravel_index(idx, case.label[0].shape), axis=1)
    assert np.all(case.label[0].ravel()[idx] == 1)
    small = zyx[:, 2] >= 30
    assert small.sum() == 100  # the 4-voxel lesion has as many candidates as the 567-voxel one
    assert lesion_balanced_indices(np.zeros((3, 5, 7), np.uint8), np.random.default_rng(0)).size == 0


@pytest.mark.parametrize("mode, low, high", [("instance", 0.35, 0.65), ("voxel", 0.0, 0.05)])
def test_positive_sampling_modes_share_of_small_lesion(mode, low, high):
    """Instance sampling centres ~half the positive patches on the 4-voxel lesion; voxel sampling ~0.7%."""
    ds = PatchDataset([_two_lesion_case()], (5, 8, 8), patches_per_case=200, pos_fraction=1.0,
                      augmentation=None, seed=3, positive_sampling=mode)
    hits = 0
    for i in range(len(ds)):
        _, label, _ = ds[i]
        # the 8x8 in-plane patch cannot hold voxels of both lesions; the small one is the only one whose
        # lesion voxels number <= 4
        hits += int(0 < float(label.sum()) <= 4)
    share = hits / len(ds)
    assert low <= share <= high, (mode, share)


def test_positive_sampling_mode_is_validated():
    with pytest.raises(InputError, match="positive_sampling"):
        PatchDataset([_two_lesion_case()], (5, 8, 8), 1, 1.0, None, positive_sampling="lesion")


def test_subtraction_only_patches_blank_the_other_channels_at_the_given_rate():
    image = torch.arange(3 * 5 * 7 * 9, dtype=torch.float32).reshape(3, 5, 7, 9) + 1.0
    label = torch.zeros(1, 5, 7, 9)
    label[0, 1:3, 2:5, 3:6] = 1.0
    always = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, blank_channels=[0, 1],
                                subtraction_only_prob=1.0)
    out = always({"image": image, "label": label})
    assert not out["image"][:2].any() and torch.equal(out["image"][2], image[2])  # only sub1 (channel 2) kept
    assert torch.equal(out["label"], label) and image.min() > 0  # label and the input itself untouched
    sometimes = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, blank_channels=[0, 1],
                                   subtraction_only_prob=0.3)
    sometimes.set_random_state(seed=5)
    blanked = [not sometimes({"image": image, "label": label})["image"][0].any() for _ in range(400)]
    assert 0.22 < np.mean(blanked) < 0.38
    never = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, blank_channels=[0, 1])
    assert torch.equal(never({"image": image, "label": label})["image"], image)


def test_zoom_out_shrinks_lesions_in_image_and_label_alike(tmp_path):
    from breastlesionseg.training.loop import training_augmentation
    from breastlesionseg.training.transforms import ZOOM_OUT_RANGE

    image = torch.zeros(2, 15, 17, 19)
    label = torch.zeros(1, 15, 17, 19)
    image[:, 4:11, 5:12, 6:13] = 5.0  # a 7-voxel cube in the centre
    label[0, 4:11, 5:12, 6:13] = 1.0
    zoom = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, zoom_out_prob=1.0)
    zoom.set_random_state(seed=3)
    sizes = []
    for _ in range(20):
        out = zoom({"image": image, "label": label})
        assert out["image"].shape == image.shape and out["label"].shape == label.shape
        assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
        n = float(out["label"].sum())
        low, high = ZOOM_OUT_RANGE
        assert (low ** 3) * 343 * 0.6 <= n <= 343 * 1.05  # 7^3 voxels shrunk by at most 0.7 per axis
        bright = out["image"][0] > 2.5
        assert float((bright == (out["label"][0] > 0)).float().mean()) > 0.97  # the label follows the image
        sizes.append(n)
    assert min(sizes) < 0.6 * 343 and max(sizes) > 0.8 * 343  # factors drawn over the range
    never = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0)
    assert torch.equal(never({"image": image, "label": label})["label"], label)
    config = TrainConfig(tmp_path, tmp_path / "o", rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, zoom_out_prob=1.0)
    assert float(training_augmentation(config)({"image": image, "label": label})["label"].sum()) <= 343
    with pytest.raises(InputError, match="zoom_out_prob must be in"):
        TrainConfig(tmp_path, tmp_path / "o", zoom_out_prob=1.5)


def test_training_augmentation_blanks_the_configs_non_subtraction_channels(tmp_path):
    from breastlesionseg.training.loop import training_augmentation

    config = TrainConfig(tmp_path, tmp_path / "o", channels=("sub1", "pre", "post1"), rotate_deg=0.0, flip_prob=0.0,
                         intensity_scale=0.0, subtraction_only_prob=1.0)
    image = torch.ones(3, 5, 7, 9)
    out = training_augmentation(config)({"image": image, "label": torch.zeros(1, 5, 7, 9)})["image"]
    assert torch.equal(out[0], image[0]) and not out[1:].any()


def test_acquisition_augmentation_changes_the_image_only_and_blurs_along_slices():
    # a single bright slice: a thick-slice blur spreads it to its neighbours along z (array axis 0)
    image = torch.zeros(2, 9, 11, 13)
    image[:, 4] = 1.0
    label = torch.zeros(1, 9, 11, 13)
    label[0, 3:6, 4:7, 5:8] = 1.0
    off = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, acquisition_prob=0.0)
    assert torch.equal(off({"image": image, "label": label})["image"], image)
    aug = build_augmentation(rotate_deg=0.0, flip_prob=0.0, intensity_scale=0.0, acquisition_prob=1.0)
    aug.set_random_state(seed=3)
    spread = []
    for _ in range(5):
        out = aug({"image": image.clone(), "label": label.clone()})
        assert torch.equal(out["label"], label)  # image-only transforms
        assert out["image"].shape == image.shape and bool(torch.isfinite(out["image"]).all())
        profile = out["image"][0].mean(dim=(1, 2))  # mean over the plane, per slice
        spread.append(float(profile[3] + profile[5]) / float(profile[4]))
    assert min(spread) > 0.1  # the neighbouring slices received signal (0 before)
    aug.set_random_state(seed=3)
    again = aug({"image": image.clone(), "label": label.clone()})
    aug.set_random_state(seed=3)
    assert torch.equal(aug({"image": image.clone(), "label": label.clone()})["image"], again["image"])
