"""predict_image: mask at the input's exact size, areas from DICOM MG pixel spacing, model checks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from breastlesionseg.errors import InputError, ModelError
from breastlesionseg.imaging2d.image_io import read_image_2d
from breastlesionseg.mammography.predict import load_mammography_model, predict_image

from .conftest import synthetic_mammogram, write_dicom_mg


def test_dicom_mg_spacing_prefers_pixel_spacing_then_imager_pixel_spacing(tmp_path):
    pixels = (np.arange(40 * 30).reshape(40, 30) % 4000).astype(np.uint16)
    both = read_image_2d(write_dicom_mg(tmp_path / "both.dcm", pixels, (0.1, 0.12), (0.07, 0.07)))
    imager = read_image_2d(write_dicom_mg(tmp_path / "imager.dcm", pixels, None, (0.085, 0.09)))
    none = read_image_2d(write_dicom_mg(tmp_path / "none.dcm", pixels))
    assert (both.spacing_mm, both.spacing_source) == ((0.1, 0.12), "PixelSpacing")
    assert (imager.spacing_mm, imager.spacing_source) == ((0.085, 0.09), "ImagerPixelSpacing")
    assert (none.spacing_mm, none.spacing_source) == (None, "none")
    np.testing.assert_array_equal(both.pixels, pixels.astype(np.float32))


@pytest.mark.parametrize("shape", [(37, 29), (61, 90)])
def test_mask_has_the_input_size_and_area_uses_the_spacing(tiny_model_dir, tmp_path, shape):
    image, _ = synthetic_mammogram(*shape, seed=3)
    path = write_dicom_mg(tmp_path / "mg.dcm", image.astype(np.uint16) * 16, None, (0.2, 0.25))
    model = load_mammography_model(tiny_model_dir)
    result = predict_image(path, model)
    assert result.mask.shape == shape and result.lesion_probability_map.shape == shape
    assert result.area_px == int(result.mask.sum())
    assert result.area_mm2 == pytest.approx(result.area_px * 0.05)
    fields = result.to_json_dict()
    assert fields["pixel_spacing_source"] == "ImagerPixelSpacing" and fields["width_px"] == shape[1]
    assert fields["model_limitations"] == model.card.limitations
    json.dumps(fields)


def test_the_cards_limitations_come_with_every_result(tiny_model_dir):
    model = load_mammography_model(tiny_model_dir)
    model.card.limitations = ["98 training images: cross-validated Dice 0.47"]
    image, _ = synthetic_mammogram(31, 27, seed=4)
    assert predict_image(image, model).to_json_dict()["model_limitations"] == [
        "98 training images: cross-validated Dice 0.47"]


def test_probability_matches_the_network_on_a_square_input(tiny_model_dir):
    """A 32 px image at a 32 px model input: letterbox is the identity, probabilities equal the network's."""
    model = load_mammography_model(tiny_model_dir)
    image, _ = synthetic_mammogram(32, 32, seed=4)
    result = predict_image(image.astype(np.float32), model)
    from breastlesionseg.imaging2d.intensity import scale_to_unit

    with torch.no_grad():
        expected = torch.sigmoid(model.network(torch.from_numpy(scale_to_unit(image))[None, None]))[0, 0].numpy()
    np.testing.assert_allclose(result.lesion_probability_map, expected, atol=1e-5)
    np.testing.assert_array_equal(result.mask, (expected > 0.5).astype(np.uint8))
    assert result.area_mm2 is None and result.source is None


def test_bad_inputs_and_models_are_named(tiny_model_dir, tmp_path):
    model = load_mammography_model(tiny_model_dir)
    with pytest.raises(InputError, match="shape"):
        predict_image(np.zeros((4, 4)), model)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png"):
        predict_image(tmp_path / "broken.png", model)
    weights = tiny_model_dir / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelError, match="sha256"):
        load_mammography_model(tiny_model_dir)
