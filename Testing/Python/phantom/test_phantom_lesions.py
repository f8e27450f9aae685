"""Lesion solids: analytic volumes, voxelisation, connectivity, shape variety."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from breastlesionseg.geometry import Geometry
from breastlesionseg.phantom import PhantomConfig
from breastlesionseg.phantom.anatomy import draw_anatomy
from breastlesionseg.phantom.generator import _rng
from breastlesionseg.phantom.grid import VoxelCoordinates
from breastlesionseg.phantom.lesions import MASS_SHAPES, draw_lesion, voxelize_lesion


def _fine_grid_around(spec, spacing_mm=0.5):
    r = spec.bounding_radius_mm() + 1.0
    n = int(2 * r / spacing_mm) + 1
    origin = spec.center - (n - 1) / 2.0 * spacing_mm
    return Geometry((n, n, n), (spacing_mm,) * 3, tuple(origin))


@pytest.fixture(scope="module")
def specs():
    rng = np.random.default_rng(5)
    anatomy = draw_anatomy(_rng(5, 1))
    cfg = PhantomConfig(lesion_diameter_mm=(8.0, 20.0), non_mass_fraction=0.4)
    return [draw_lesion(rng, anatomy.breasts[i % 2], cfg) for i in range(40)]


def test_shape_variety(specs):
    kinds = {(s.kind, s.shape) for s in specs}
    assert {("mass", m) for m in MASS_SHAPES} <= kinds
    assert ("non-mass", "segmental") in kinds and ("non-mass", "clumped") in kinds
    assert {s.kinetics for s in specs} == {"persistent", "plateau", "washout"}


def test_mass_analytic_volume_equals_target(specs):
    for s in specs:
        if s.kind == "mass":
            assert s.analytic_volume_mm3() == pytest.approx(math.pi / 6 * s.target_diameter_mm**3, rel=1e-9)
        else:
            assert s.analytic_volume_mm3() >= 0.97 * math.pi / 6 * s.target_diameter_mm**3


def test_voxelised_volume_and_connectivity(specs):
    for s in specs[:12]:
        geo = _fine_grid_around(s)
        coords = VoxelCoordinates.of(geo)
        allowed = np.ones(geo.shape_zyx, dtype=bool)
        vl = voxelize_lesion(s, geo, coords, allowed, np.zeros_like(allowed))
        assert vl is not None
        mask = np.zeros(geo.shape_zyx, dtype=bool)
        mask.flat[vl.flat_index] = True
        assert ndimage.label(mask)[1] == 1  # one 6-connected instance
        vol = vl.n_voxels * geo.voxel_volume_mm3
        # thin spicules/clump necks may be cut off as separate islands -> slightly smaller
        assert 0.85 * s.analytic_volume_mm3() <= vol <= 1.05 * s.analytic_volume_mm3(), (s.kind, s.shape)
        assert np.all((vl.heterogeneity >= 0.2) & (vl.heterogeneity <= 1.15))


def test_lesion_respects_the_allowed_region(specs):
    s = next(sp for sp in specs if sp.kind == "mass")
    geo = _fine_grid_around(s, 1.0)
    coords = VoxelCoordinates.of(geo)
    allowed = coords.x < np.float32(s.center[0])  # only one half may be lesion
    vl = voxelize_lesion(s, geo, coords, allowed, np.zeros(geo.shape_zyx, dtype=bool))
    assert vl is not None and np.all(allowed.flat[vl.flat_index])
