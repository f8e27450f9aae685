"""Fixtures of the inference tests: a tiny oblique synthetic exam with known breast and lesion masks,
a hand-set network whose output is a known function of the input, and a random model folder."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume


def rotation_direction(deg_z: float, deg_x: float) -> tuple[float, ...]:
    """Row-major LPS direction of a rotation about z then x (an oblique grid)."""
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple((rx @ rz).ravel())


@dataclass
class SyntheticCase:
    """A small exam with its truth."""

    exam: DCEExam
    breast: Volume  # 0/1/2
    lesions: Volume  # truth 1..N by decreasing volume (only lesions inside the breast and >= min volume)
    all_lesions: Volume  # every blob painted into the images (incl. tiny and outside-breast ones)
    tiny_volume_mm3: float  # volume of the tiny blob (to be removed by min volume)


def make_case(direction: tuple[float, ...], seed: int = 0) -> SyntheticCase:
    """61 x 53 x 27 voxels, spacing (0.8, 0.9, 1.7) mm, two breasts (half ellipsoids) and 4 blobs.

    Blobs: radius 7 mm and 5 mm spheres inside the breasts (lesion 1, 2), a 1-voxel blob inside
    the breast (removed by the minimum volume), and a 4 mm sphere outside the breast (removed by
    the breast restriction).
    """
    rng = np.random.default_rng(seed)
    geo = Geometry((61, 53, 27), (0.8, 0.9, 1.7), (-20.0, 15.0, -30.0), direction)
    k, j, i = np.meshgrid(*[np.arange(n) for n in geo.shape_zyx], indexing="ij")
    # physical-ish coordinates in index space scaled by spacing (mm from the grid centre)
    x = (i - 30) * 0.8
    y = (j - 26) * 0.9
    z = (k - 13) * 1.7
    breast = np.zeros(geo.shape_zyx, np.uint8)
    left = ((x - 11) / 11.5) ** 2 + ((y + 3) / 15) ** 2 + (z / 19) ** 2 <= 1
    right = ((x + 11) / 11.5) ** 2 + ((y + 3) / 15) ** 2 + (z / 19) ** 2 <= 1
    breast[left & (x > 0)] = 1
    breast[right & (x <= 0)] = 2
    blobs = np.zeros(geo.shape_zyx, np.uint8)
    blobs[(x - 11) ** 2 + (y + 4) ** 2 + (z - 2) ** 2 <= 7.0**2] = 1
    blobs[(x + 12) ** 2 + (y + 2) ** 2 + (z + 4) ** 2 <= 5.0**2] = 2
    blobs[(k == 20) & (j == 14) & (i == 36)] = 3  # tiny, inside the left breast
    outside = (x - 0.5) ** 2 + (y - 16) ** 2 + (z - 0) ** 2 <= 4.0**2
    blobs[outside] = 4
    assert breast[20, 14, 36] > 0 and not np.any(breast[outside])
    pre = 100.0 + 200.0 * (breast > 0) + rng.normal(0, 5, geo.shape_zyx)
    post1 = pre + 30.0 + 800.0 * (blobs > 0) + rng.normal(0, 5, geo.shape_zyx)
    post2 = pre + 40.0 + 700.0 * (blobs > 0) + rng.normal(0, 5, geo.shape_zyx)
    phases = [Volume(a.astype(np.float32), geo, name=n) for a, n in ((pre, "pre"), (post1, "post1"), (post2, "post2"))]
    truth = np.zeros_like(blobs, dtype=np.uint16)
    truth[blobs == 1] = 1
    truth[blobs == 2] = 2
    assert np.count_nonzero(truth == 1) > np.count_nonzero(truth == 2) > 50
    return SyntheticCase(
        exam=DCEExam(phases),
        breast=Volume(breast, geo, name="breast"),
        lesions=Volume(truth, geo, name="truth"),
        all_lesions=Volume(blobs.astype(np.uint16), geo, name="blobs"),
        tiny_volume_mm3=geo.voxel_volume_mm3,
    )


@pytest.fixture(scope="session")
def oblique_case() -> SyntheticCase:
    """The synthetic case on an oblique grid (20 deg about z, 10 deg about x)."""
    return make_case(rotation_direction(20.0, 10.0))


class SubtractionNet(nn.Module):
    """A hand-set network: lesion logit = gain * (input channel ``channel`` - offset) per voxel.

    ``forward_with_aux`` also returns ACT logits ``(-m, m)`` with ``m`` the window's maximum logit, so
    the ACT "lesion present" probability is ``sigmoid(2 m)``.
    """

    def __init__(self, channel: int = 2, gain: float = 0.02, offset: float = 400.0, in_channels: int = 3) -> None:
        super().__init__()
        self.channel, self.gain, self.offset, self.in_channels = channel, gain, offset, in_channels
        self.dummy = nn.Parameter(torch.zeros(()))  # so .to(device) and parameters() work
        self.calls = 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * (x[:, self.channel:self.channel + 1] - self.offset) + 0.0 * self.dummy

    def forward_with_aux(self, x: torch.Tensor):
        self.calls += 1
        seg = self.logits(x)
        m = seg.amax(dim=(1, 2, 3, 4))
        return seg, torch.stack([-m, m], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


def make_card(patch=(7, 15, 13), spacing=(1.2, 1.1, 2.3), normalization="none", model_id="test-handset"):
    """A real model card (3 channels pre/post1/sub1) for a hand-set or tiny network."""
    from breastlesionseg.nn.model_card import ModelCard

    return ModelCard(
        model_id=model_id,
        arch="mm3dunet",
        config={"in_channels": 3, "out_channels": 1, "base_width": 4, "levels": 2, "expansion": 2,
                "act_channels": 4},
        input_channels=["pre", "post1", "sub1"],
        normalization=normalization,
        target_spacing_mm=spacing,
        patch_size=patch,
        overlap=0.25,
        threshold=0.5,
        demo=False,
    )


@pytest.fixture(scope="session")
def handset_factory():
    """A function returning a fresh ``(SubtractionNet, card)`` (for fixtures of wider scope)."""
    return lambda: (SubtractionNet(), make_card())


@pytest.fixture()
def handset_model():
    """``(SubtractionNet, card)`` with raw (un-normalised) channels."""
    return SubtractionNet(), make_card()


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A tiny randomly initialised MM-3DUNet saved with the nn save API (a real model folder)."""
    from breastlesionseg.nn.factory import build_network
    from breastlesionseg.nn.registry import save_model

    torch.manual_seed(0)
    card = make_card(patch=(16, 24, 32), spacing=(2.0, 2.0, 3.0), normalization="zscore", model_id="random-tiny")
    net = build_network("mm3dunet", card.config)
    folder = tmp_path_factory.mktemp("models") / "random-tiny"
    save_model(net, card, folder)
    return folder
