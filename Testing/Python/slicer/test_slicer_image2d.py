"""The panel's 2D modes (issue 16's Slicer ultrasound mode) on real MRML with a real BUS-BRA image: the image
node -> the single-image command's input PNG, and its result folder (the command's documented layout) ->
an editable "Lesion" segment, a table with the probabilities and the area, the heat map as a volume;
Update metrics after an edit."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from breastlesionseg.errors import InputError
from breastlesionseg.io.terminology import parse_terminology_string
from BreastLesionSegLib import image2d_scene, tables
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.settings import MODALITY_DCE_MRI, MODALITY_ULTRASOUND

ROOT = Path(__file__).resolve().parents[3]
BUSBRA = Path(os.environ.get("BLS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "busbra-ultrasound"
CASE = "bus_0001-l"  # 175 x 256 px, malignant (bus_data.csv)


@pytest.fixture
def busbra_case():
    image, mask = BUSBRA / "Images" / f"{CASE}.png", BUSBRA / "Masks" / f"mask_{CASE[4:]}.png"
    if not image.is_file() or not mask.is_file():
        pytest.skip(f"BUS-BRA image {image} not found (needs ../shared/data beside the checkout)")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(image))), sitk.GetArrayFromImage(sitk.ReadImage(str(mask))) > 127


def _image_node(ctx, pixels, spacing_mm=(0.1, 0.12), name="US image"):
    """A single-slice volume as Slicer loads a PNG: (1, H, W) scalar or (1, H, W, 3) vector."""
    cls = "vtkMRMLVectorVolumeNode" if pixels.ndim == 3 else "vtkMRMLScalarVolumeNode"
    node = ctx.scene.AddNewNodeByClass(cls, name)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(pixels[None]))
    node.SetSpacing(spacing_mm[0], spacing_mm[1], 1.0)
    node.SetOrigin(-12.5, 7.0, 3.0)
    node.CreateDefaultDisplayNodes()
    return node


def _command_output(folder, mask, heat, probabilities=(0.93, 0.81)):
    """What `breastlesionseg ultrasound image.png --output DIR` writes into DIR/image/."""
    folder.mkdir(parents=True)
    sitk.WriteImage(sitk.GetImageFromArray(mask.astype(np.uint8) * 255), str(folder / image2d_scene.MASK_FILE))
    sitk.WriteImage(sitk.GetImageFromArray(heat, isVector=True), str(folder / image2d_scene.HEATMAP_FILE))
    (folder / image2d_scene.RESULT_FILE).write_text(json.dumps({
        "lesion_present_probability": probabilities[0], "malignancy_probability": probabilities[1],
        "model_id": "us-test", "lesion_area_px": int(mask.sum())}))
    return folder


@pytest.mark.realdata
def test_busbra_result_becomes_an_editable_lesion_with_table_and_heat_map(ctx, busbra_case, tmp_path):
    pixels, truth = busbra_case
    node = _image_node(ctx, pixels)
    heat = np.zeros(pixels.shape + (3,), np.uint8)
    heat[..., 0] = np.linspace(0, 255, pixels.shape[1], dtype=np.uint8)[None]
    folder = _command_output(tmp_path / "output" / "image", truth, heat)
    logic = SceneLogic(ctx)
    selection = logic.select_image(node)
    result = logic.import_image_results(folder, selection)
    mask = image2d_scene.lesion_mask(ctx, result.segmentation, node)
    np.testing.assert_array_equal(mask, truth)  # exactly the command's mask, on the image's grid
    segment = result.segmentation.GetSegmentation().GetSegment("lesion")
    entry = parse_terminology_string(segment.GetTerminology())
    assert segment.GetName() == "Lesion" and entry["type"][2] == "Mass" and entry["anatomicRegion"][2] == "Breast"
    (row,) = tables.table_to_dicts(result.table)
    assert row["lesion_present_probability"] == pytest.approx(0.93) and row["malignancy_probability"] == pytest.approx(0.81)
    assert row["lesion_area_px"] == int(truth.sum())
    assert row["lesion_area_mm2"] == pytest.approx(truth.sum() * 0.1 * 0.12)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(result.heatmap)[0], heat)
    assert np.allclose(slicer.util.arrayFromVolume(result.heatmap).shape[1:3], pixels.shape)
    assert logic.result_for_segmentation(result.segmentation).heatmap is result.heatmap
    # the radiologist erases the lower half of the lesion, then Update metrics
    rows = np.nonzero(truth.any(axis=1))[0]
    edited = truth.copy()
    edited[(rows.min() + rows.max()) // 2:] = False
    image2d_scene.write_lesion_segment(ctx, result.segmentation, node, edited)
    updated = logic.update_metrics(result, selection)
    (row,) = tables.table_to_dicts(updated.table)
    assert row["lesion_area_px"] == int(edited.sum()) < int(truth.sum())
    assert row["malignancy_probability"] == pytest.approx(0.81)  # the model's probabilities are kept


@pytest.mark.realdata
def test_image_input_png_is_the_node_pixels(ctx, busbra_case, tmp_path):
    pixels, _ = busbra_case
    gray = image2d_scene.write_image_input(_image_node(ctx, pixels), tmp_path / "gray")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(gray))), pixels)
    rgb = np.stack([pixels, 255 - pixels, pixels // 2], axis=-1)
    colour = image2d_scene.write_image_input(_image_node(ctx, rgb, name="rgb"), tmp_path / "rgb")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(colour))), rgb)


def test_image_inputs_and_results_are_checked(ctx, tmp_path):
    logic = SceneLogic(ctx)
    with pytest.raises(InputError, match="no image selected"):
        logic.select_image(None)
    volume = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "3D")
    slicer.util.updateVolumeFromArray(volume, np.zeros((3, 5, 7), np.uint8))
    with pytest.raises(InputError, match="3 slices"):
        logic.select_image(volume)
    node = _image_node(ctx, np.arange(35, dtype=np.uint16).reshape(5, 7) * 100)
    png = image2d_scene.write_image_input(node, tmp_path / "in")
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(png)))
    assert back.dtype == np.uint8 and back.min() == 0 and back.max() == 255  # 16-bit scaled from its min..max
    wrong = _command_output(tmp_path / "out" / "image", np.ones((4, 7), bool), np.zeros((5, 7, 3), np.uint8))
    with pytest.raises(InputError, match="7x4 px; the image is 7x5 px"):
        logic.import_image_results(wrong, logic.select_image(node))


def test_two_d_modality_is_offered_only_with_its_command(ctx, panel_values):
    logic = SceneLogic(ctx)
    assert logic.modality_unavailable(MODALITY_DCE_MRI) is None
    reason = logic.modality_unavailable(MODALITY_ULTRASOUND)
    has_command = importlib.util.find_spec("breastlesionseg.cli.cmd_ultrasound") is not None
    assert (reason is None) == has_command
    state, _, _ = PanelActions(logic).state(panel_values(modality=MODALITY_ULTRASOUND))
    assert state.show_image_2d and not state.show_dce_inputs and state.apply == has_command


SHIPPED_ULTRASOUND_MODEL = ROOT / "models" / "us-attunet-busbra"
#: a BUS-BRA image of the shipped model's test fold (5-fold-cv.csv kFold == 1: never seen in training), malignant
TEST_FOLD_CASE = "bus_0009-r"


@pytest.mark.realdata
def test_ultrasound_apply_runs_the_shipped_model_on_a_busbra_test_image(ctx, panel_values, tmp_path,
                                                                         poll_until_finished):
    """The panel's Apply in Ultrasound mode, end to end: the real command with the shipped model on a real
    BUS-BRA image it was not trained on; the loaded segment is compared with the dataset's mask."""
    
    image, truth_png = BUSBRA / "Images" / f"{TEST_FOLD_CASE}.png", BUSBRA / "Masks" / f"mask_{TEST_FOLD_CASE[4:]}.png"
    if not image.is_file():
        pytest.skip(f"BUS-BRA image {image} not found (needs ../shared/data beside the checkout)")
    if not (SHIPPED_ULTRASOUND_MODEL / "model_card.json").is_file():
        pytest.fail(f"the shipped ultrasound model is missing at {SHIPPED_ULTRASOUND_MODEL}")
    pixels = sitk.GetArrayFromImage(sitk.ReadImage(str(image)))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(truth_png))) > 127
    node = _image_node(ctx, pixels)
    values = panel_values(modality=MODALITY_ULTRASOUND, image_2d=node)
    actions = PanelActions(SceneLogic(ctx, work_dir=tmp_path / "work", threads=2))
    state, entries, index = actions.state(values)
    assert state.apply and entries[index][1] == "us-attunet-busbra" and "BUS-BRA" in state.model_card
    actions.apply(values)
    out = poll_until_finished(actions, values, max_polls=3000)
    result, _ = out.shown
    (row,) = tables.table_to_dicts(result.table)
    mask = image2d_scene.lesion_mask(ctx, result.segmentation, node)
    dice = 2 * np.logical_and(mask, truth).sum() / max(mask.sum() + truth.sum(), 1)
    print(f"BUS-BRA {TEST_FOLD_CASE}: Dice {dice:.3f}, {row}")
    assert dice > 0.82  # measured 0.941 with the 20-epoch fold-0 model
    assert row["lesion_present_probability"] > 0.95  # above the card's lesion-present threshold: a mask is drawn
    assert 0.0 <= row["malignancy_probability"] <= 1.0
    assert row["model_id"] == "us-attunet-busbra" and row["model_demo"] == "no" and "BUS-BRA" in row["model_trained_on"]
    assert mask.shape == truth.shape and row["lesion_area_px"] == int(mask.sum())
    assert values.result.segmentation is result.segmentation and values.result.heatmap is result.heatmap
    assert list((tmp_path / "work").iterdir()) == []


@pytest.fixture(scope="session")
def constant_ultrasound_model(tmp_path_factory):
    """A tiny ultrasound model (the core's 2D card and network) whose heads are constants: lesion everywhere,
    lesion-present sigmoid(2) = 0.881, malignancy sigmoid(-1) = 0.269."""
    torch = pytest.importorskip("torch")
    model_card2d = pytest.importorskip("breastlesionseg.imaging2d.model_card2d")
    from breastlesionseg.nn.factory2d import build_network_2d

    torch.manual_seed(0)
    net = build_network_2d("attention_unet2d", {"widths": [4, 8, 8]})
    with torch.no_grad():
        for layer, bias in ((net.seg_head, 20.0), (net.heads.lesion, 2.0), (net.heads.malignancy, -1.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    folder = tmp_path_factory.mktemp("models") / "us-constant"
    card = model_card2d.ModelCard2D(model_id="us-constant", modality="ultrasound", arch="attention_unet2d",
                                    config=net.config.to_dict(), input_size_px=64)
    return model_card2d.save_model_2d(net.state_dict(), card, folder)


def test_ultrasound_run_with_the_real_command(ctx, constant_ultrasound_model, tmp_path):
    """Apply's path for an ultrasound image with the real `breastlesionseg ultrasound` command out of process."""
    if importlib.util.find_spec("breastlesionseg.cli.cmd_ultrasound") is None:
        pytest.skip("this installation has no 'breastlesionseg ultrasound' command")
    from BreastLesionSegLib.settings import SegmentationSettings

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (37, 45), dtype=np.uint8)  # odd size: rows != columns
    node = _image_node(ctx, pixels, spacing_mm=(0.2, 0.25))
    logic = SceneLogic(ctx, work_dir=tmp_path / "work", threads=1)
    selection = logic.select_image(node)
    job = logic.start_image_segmentation(selection, SegmentationSettings(modality=MODALITY_ULTRASOUND),
                                         model=constant_ultrasound_model)
    assert job.run.wait(timeout_s=300) == "succeeded", "\n".join(job.run.log_lines[-20:])
    result = logic.finish_segmentation(job)
    assert list((tmp_path / "work").iterdir()) == []  # run folder removed after the import
    mask = image2d_scene.lesion_mask(ctx, result.segmentation, node)
    assert mask.shape == (37, 45) and mask.all()  # "lesion everywhere", exactly the image's pixels
    (row,) = tables.table_to_dicts(result.table)
    assert row["lesion_present_probability"] == pytest.approx(0.881, abs=0.002)
    assert row["malignancy_probability"] == pytest.approx(0.269, abs=0.002)
    assert row["lesion_area_px"] == 37 * 45 and row["lesion_area_mm2"] == pytest.approx(37 * 45 * 0.2 * 0.25)
    assert row["model_id"] == "us-constant"
    assert slicer.util.arrayFromVolume(result.heatmap).shape == (1, 37, 45, 3)


@pytest.mark.realdata
def test_ultrasound_add_to_training_set_writes_a_busbra_like_pair(ctx, busbra_case, panel_values, tmp_path):
    """The corrected Lesion segment + the image as a BUS-BRA-like pair (Images/, Masks/, bus_data.csv row) in the
    chosen folder; the mask PNG is the segment, pixel for pixel; nothing is ever overwritten."""
    import csv

    pixels, truth = busbra_case
    node = _image_node(ctx, pixels)
    heat = np.zeros(pixels.shape + (3,), np.uint8)
    logic = SceneLogic(ctx)
    selection = logic.select_image(node)
    result = logic.import_image_results(_command_output(tmp_path / "output" / "image", truth, heat), selection)
    corrected = truth.copy()
    corrected[: int(np.nonzero(truth.any(axis=1))[0].mean())] = False  # the reader erases the upper half
    image2d_scene.write_lesion_segment(ctx, result.segmentation, node, corrected)
    folder = tmp_path / "us_pairs"
    values = panel_values(modality=MODALITY_ULTRASOUND, image_2d=node, dataset_folder=folder, corrected_by="Dr. A")
    values.result.segmentation = result.segmentation
    actions = PanelActions(logic)
    state, _, _ = actions.state(values)
    assert state.add_to_training  # enabled for an ultrasound result
    mask_path = actions.add_to_training_set(values, "case 17")
    assert mask_path == folder / "Masks" / "mask_case_17.png"
    written_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path)))
    np.testing.assert_array_equal(written_mask > 127, image2d_scene.lesion_mask(ctx, result.segmentation, node))
    assert set(np.unique(written_mask)) == {0, 255} and int((written_mask > 127).sum()) == int(corrected.sum())
    written_image = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "Images" / "bus_case_17.png")))
    np.testing.assert_array_equal(written_image, pixels)
    with (folder / "bus_data.csv").open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    rows, cols = np.nonzero(corrected)
    assert row["ID"] == "bus_case_17" and row["Case"] == "case_17" and row["CorrectedBy"] == "Dr. A"
    assert (int(row["Width"]), int(row["Height"])) == (pixels.shape[1], pixels.shape[0])
    assert json.loads(row["BBOX"]) == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
    assert row["Source"] == "3D Slicer: US image" and row["Pathology"] == ""

    # a second export with the same id is refused and changes nothing; another id appends a row
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    image2d_scene.write_lesion_segment(ctx, result.segmentation, node, truth)
    with pytest.raises(InputError, match="already has a row bus_case_17"):
        actions.add_to_training_set(values, "case 17")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    (folder / "Images" / "bus_case_18.png").write_bytes(b"someone else's file")
    with pytest.raises(InputError, match="exists; choose another case id"):
        actions.add_to_training_set(values, "case_18")
    assert not (folder / "Masks" / "mask_case_18.png").exists()
    actions.add_to_training_set(values, "bus_case_19")
    with (folder / "bus_data.csv").open(newline="", encoding="utf-8") as handle:
        assert [r["ID"] for r in csv.DictReader(handle)] == ["bus_case_17", "bus_case_19"]
    assert (sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "Masks" / "mask_case_19.png"))) > 127).sum() == truth.sum()

    # refused: a DCE-MRI dataset folder, a relative folder, an empty segment
    (tmp_path / "dce").mkdir()
    (tmp_path / "dce" / "dataset.json").write_text("{}")
    for bad, message in ((tmp_path / "dce", "holds a DCE-MRI training dataset"), ("relative/folder", "relative path")):
        values.dataset_folder = bad
        with pytest.raises(InputError, match=message):
            actions.add_to_training_set(values, "case 20")
    values.dataset_folder = folder
    image2d_scene.write_lesion_segment(ctx, result.segmentation, node, np.zeros_like(truth))
    with pytest.raises(InputError, match="is empty"):
        actions.add_to_training_set(values, "case 21")
