"""Fixtures for the training tests: tiny synthetic DCE cases written as NIfTI files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk


def make_case_arrays(seed: int, shape_zyx=(11, 23, 21), n_post: int = 2):
    """Synthetic DCE case: noisy breast-like ellipsoid with one enhancing sphere.

    Returns:
        (phases list of (z, y, x) float32, lesion uint8 (z, y, x), breast uint8 (z, y, x)).
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape_zyx)
    c = (np.asarray(shape_zyx) - 1) / 2.0
    breast = (((z - c[0]) / (c[0] + 0.5)) ** 2 + ((y - c[1]) / (c[1] * 0.9)) ** 2
              + ((x - c[2]) / (c[2] * 0.9)) ** 2) <= 1.0
    lc = c + rng.integers(-2, 3, size=3)
    r = 2.0 + rng.random()
    lesion = ((z - lc[0]) ** 2 + ((y - lc[1]) ** 2 + (x - lc[2]) ** 2)) <= r * r
    lesion &= breast
    pre = 100.0 * breast + rng.normal(0, 5, shape_zyx)
    phases = [pre.astype(np.float32)]
    for k in range(1, n_post + 1):
        post = pre + 10.0 * k * breast + 150.0 * lesion + rng.normal(0, 5, shape_zyx)
        phases.append(post.astype(np.float32))
    bm = np.zeros(shape_zyx, np.uint8)
    bm[breast & (x >= c[2])] = 1
    bm[breast & (x < c[2])] = 2
    return phases, lesion.astype(np.uint8), bm


def write_nifti(arr: np.ndarray, path: Path, spacing=(1.5, 1.5, 2.0), origin=(-10.0, 5.0, 3.0)) -> Path:
    """Write a (z, y, x) array as NIfTI with the given (x, y, z) spacing/origin."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return path


@pytest.fixture
def synth_case_files(tmp_path: Path):
    """Factory: ``make(seed, name)`` -> dict of paths (phases list, lesions, breast_mask) + arrays."""

    def make(seed: int = 0, name: str = "c", **kw):
        phases, lesion, bm = make_case_arrays(seed, **kw)
        folder = tmp_path / f"src_{name}"
        folder.mkdir(exist_ok=True)
        paths = [write_nifti(p, folder / f"phase{k}.nii.gz") for k, p in enumerate(phases)]
        return {
            "phases": paths,
            "lesions": write_nifti(lesion, folder / "lesion.nii.gz"),
            "breast_mask": write_nifti(bm, folder / "breast.nii.gz"),
            "arrays": (phases, lesion, bm),
            "folder": folder,
        }

    return make


@pytest.fixture
def nifti_writer():
    """The :func:`write_nifti` helper as a fixture."""
    return write_nifti


@pytest.fixture
def tiny_dataset(tmp_path):
    """A dataset of 3 tiny synthetic cases (one lesion each) built with add_case; returns its folder."""
    from breastlesionseg.training.dataset_add import add_case

    root = tmp_path / "tiny_ds"
    for seed in range(3):
        phases, lesion, bm = make_case_arrays(seed)
        folder = tmp_path / f"tiny_src{seed}"
        folder.mkdir()
        paths = [write_nifti(p, folder / f"p{k}.nii.gz") for k, p in enumerate(phases)]
        add_case(root, f"case{seed}", paths, lesions=write_nifti(lesion, folder / "l.nii.gz"),
                 breast_mask=write_nifti(bm, folder / "b.nii.gz"), corrected_by="synthetic")
    return root


def tiny_config(data_dir, output_dir, **overrides):
    """A TrainConfig small enough for a unit test (tiny network, tiny patches, high learning rate)."""
    from breastlesionseg.training.config import TrainConfig

    kw = dict(data_dir=data_dir, output_dir=output_dir, epochs=3, patch_size=(8, 16, 16), batch_size=2,
              patches_per_case=2, base_width=4, levels=2, expansion=2, lr=1e-2, target_spacing_mm=(1.5, 1.5, 2.0),
              val_fraction=0.34, progress="none", seed=0)
    kw.update(overrides)
    return TrainConfig(**kw)


@pytest.fixture
def tiny_train_config():
    """The :func:`tiny_config` factory as a fixture."""
    return tiny_config
