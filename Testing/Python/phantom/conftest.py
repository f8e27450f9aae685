"""Shared phantom fixtures: small-grid phantoms generated once per test session."""
from __future__ import annotations

import pytest

from breastlesionseg.phantom import PhantomConfig, generate_phantom

#: a coarse grid over the default 336 x 192 x 128 mm field of view (3 x 3 x 4 mm voxels, fast)
SMALL_SIZE = (112, 64, 32)


@pytest.fixture(scope="session")
def small_phantoms():
    """Phantoms of seeds 0..5 with 1-3 lesions on the small grid (dict seed -> Phantom)."""
    return {s: generate_phantom(PhantomConfig(seed=s, size=SMALL_SIZE, n_lesions=(1, 3))) for s in range(6)}
