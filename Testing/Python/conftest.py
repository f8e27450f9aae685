"""Shared pytest fixtures: real data location, small torch thread count, temp dirs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: ../shared/data beside the checkout (real breast MRI; never copied into the project)
SHARED_DATA = Path(os.environ.get("BLS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
DUKE_DIR = SHARED_DATA / "duke-breast-mri-153"
PYRADIOMICS_DIR = SHARED_DATA / "pyradiomics-breast1"


def pytest_configure(config):  # noqa: D103
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("BLS_TEST_THREADS", "2")))
    except ImportError:  # torch is a hard dependency, but keep collection readable without it
        pass


@pytest.fixture(scope="session")
def duke_dir() -> Path:
    """Folder of the real 5-phase Duke exam; skips when ../shared/data is absent."""
    if not (DUKE_DIR / "Breast_MRI_153_0000_pre.nii.gz").is_file():
        pytest.skip(f"real Duke exam not found at {DUKE_DIR} (needs ../shared/data beside the checkout)")
    return DUKE_DIR


@pytest.fixture(scope="session")
def duke_phase_paths(duke_dir: Path) -> list[Path]:
    """Pre, post1..post4 of the Duke exam, in time order."""
    return sorted(duke_dir.glob("Breast_MRI_153_000[0-4]_*.nii.gz"))


@pytest.fixture(scope="session")
def pyradiomics_dir() -> Path:
    """Folder of the pyradiomics breast1 crop; skips when ../shared/data is absent."""
    if not (PYRADIOMICS_DIR / "breast1_image.nrrd").is_file():
        pytest.skip(f"pyradiomics breast crop not found at {PYRADIOMICS_DIR}")
    return PYRADIOMICS_DIR


@pytest.fixture(scope="session")
def load_repo_script():
    """A loader of the repository's scripts and benchmarks (not a package): ``load("scripts/x.py")`` -> module.

    Each file is imported once per session, under its file name.
    """
    import importlib.util

    modules: dict[str, object] = {}

    def load(relative_path: str):
        if relative_path not in modules:
            path = REPO_ROOT / relative_path
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules[relative_path] = module
        return modules[relative_path]

    return load
