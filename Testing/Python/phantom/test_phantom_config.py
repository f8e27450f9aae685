"""PhantomConfig validation, derived grid and JSON round trip."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.phantom import DEFAULT_FOV_MM, PhantomConfig
from breastlesionseg.phantom.grid import phantom_geometry


def test_defaults_keep_the_documented_fov_and_size():
    cfg = PhantomConfig()
    assert cfg.size == (224, 128, 64)
    assert cfg.spacing_mm == (1.5, 1.5, 2.0)
    assert np.prod(cfg.size) < 2_000_000
    assert cfg.phase_names == ["pre", "post1", "post2", "post3", "post4"]
    assert cfg.post_times_s == (90.0, 180.0, 270.0, 360.0)


def test_size_without_spacing_keeps_fov():
    cfg = PhantomConfig(size=(112, 64, 32))
    assert np.allclose(np.asarray(cfg.spacing_mm) * cfg.size, DEFAULT_FOV_MM)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"seed": -1}, "seed"),
        ({"size": (10, 10)}, "size"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing"),
        ({"n_post": 1}, "n_post"),
        ({"n_post": 7}, "n_post"),
        ({"n_lesions": (3, 1)}, "n_lesions"),
        ({"lesion_diameter_mm": (2.0, 10.0)}, "lesion_diameter_mm"),
        ({"lesion_diameter_mm": (5.0, 40.0)}, "lesion_diameter_mm"),
        ({"oblique_deg": 60.0}, "oblique_deg"),
        ({"oblique_axis": "q"}, "oblique_axis"),
        ({"phase_times_s": (60.0, 50.0, 70.0, 80.0)}, "phase_times_s"),
        ({"bpe_percent": 90.0}, "bpe_percent"),
        ({"dtype": "int8"}, "dtype"),
    ],
)
def test_bad_values_raise_input_error_naming_the_argument(kwargs, word):
    with pytest.raises(InputError, match=word):
        PhantomConfig(**kwargs)


def test_oblique_direction_is_a_rotation_about_the_axis_and_grid_is_centred():
    cfg = PhantomConfig(size=(40, 30, 20), spacing=(2.0, 2.0, 3.0), oblique_deg=30.0, oblique_axis="z")
    d = cfg.direction_matrix
    assert np.allclose(d @ d.T, np.eye(3))
    assert np.allclose(d[:, 2], [0, 0, 1])
    assert np.allclose(d[:, 0], [np.cos(np.radians(30)), np.sin(np.radians(30)), 0])
    geo = phantom_geometry(cfg)
    centre = geo.index_to_lps((np.asarray(geo.size) - 1) / 2.0)
    assert np.allclose(centre, cfg.fov_center_lps_mm, atol=1e-9)


def test_config_dict_round_trip():
    cfg = PhantomConfig(seed=7, size=(50, 40, 30), spacing=(2.0, 2.5, 3.0), n_post=3, n_lesions=(1, 2),
                        phase_times_s=(60.0, 150.0, 400.0), fat_saturated=False)
    back = PhantomConfig.from_dict(cfg.to_dict())
    assert back == cfg
    with pytest.raises(InputError, match="unknown keys"):
        PhantomConfig.from_dict({**cfg.to_dict(), "colour": 1})
