"""The engine end to end on a tiny oblique exam with known truth (oracle predictor / hand-set network)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from breastlesionseg.errors import CancelledError, InputError, ModelError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Volume
from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.inference import engine as engine_module
from breastlesionseg.inference.postprocess import resample_array
from breastlesionseg.inference.sliding_window import WindowPrediction
from breastlesionseg.nn.registry import sha256_file


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def _engine(model_and_card, breast: Volume, **kw) -> SegmentationEngine:
    net, card = model_and_card
    cfg = InferenceConfig(device="cpu", crop_margin_mm=3.0, backend="eager", **kw)
    return SegmentationEngine(cfg, model=net, card=card, breast_segmenter=lambda exam: breast)


@pytest.fixture()
def oracle(monkeypatch, oblique_case):
    """Replace the predictor by an oracle: the painted blobs, resampled onto the model grid, as probability."""
    calls = []

    def fake_predict(model, prepared, config, device, overlap, progress, cancel):
        truth = (oblique_case.all_lesions.array > 0).astype(np.float32)
        prob = resample_array(truth, oblique_case.exam.geometry, prepared.model_geometry)
        calls.append(prepared)
        if progress is not None:
            progress(1.0, "oracle")
        return WindowPrediction(prob, 0.9, [0.9], 1, 1, device, 1)

    monkeypatch.setattr(engine_module, "predict", fake_predict)
    return calls


def test_oracle_truth_survives_crop_resample_uncrop_on_oblique_grid(oblique_case, handset_model, oracle):
    case = oblique_case
    result = _engine(handset_model, case.breast, min_lesion_volume_mm3=10.0).run(case.exam)
    prepared = oracle[0]
    # the network ran on a real crop at the model's spacing, not on the full grid
    assert prepared.crop_geometry.size != case.exam.geometry.size
    assert prepared.model_geometry.spacing == pytest.approx((1.2, 1.1, 2.3))
    # the network runs on an LPS-aligned (canonical) grid, the outputs come back onto the oblique grid
    np.testing.assert_allclose(prepared.model_geometry.direction_matrix, np.eye(3))
    # every output lies exactly on the pre-contrast grid (oblique direction included)
    for vol in (result.lesion_labels, result.breast_mask):
        assert vol.geometry == case.exam.geometry
        assert vol.array.shape == case.exam.geometry.shape_zyx
    labels = result.lesion_labels.array
    truth = case.lesions.array
    # the two real lesions, numbered by decreasing volume, reproduced through crop/resample/uncrop
    assert result.n_lesions == 2
    assert result.lesion_volumes_mm3[0] > result.lesion_volumes_mm3[1]
    assert dice(labels == 1, truth == 1) > 0.95
    assert dice(labels == 2, truth == 2) > 0.95
    # the blob outside the breast is gone and nothing lies outside the breast
    assert not np.any(labels[case.breast.array == 0])
    assert not np.any(labels[case.all_lesions.array == 4])
    # volumes agree with the painted spheres
    vv = case.exam.geometry.voxel_volume_mm3
    for k in (1, 2):
        assert result.lesion_volumes_mm3[k - 1] == pytest.approx(np.count_nonzero(truth == k) * vv, rel=0.08)
    # metrics come from lesion_metrics, on the same lesions
    assert [les["label"] for les in result.metrics["lesions"]] == [1, 2]
    assert result.metrics["lesions"][0]["volume_mm3"] == pytest.approx(result.lesion_volumes_mm3[0])
    assert result.act_score == 0.9


def test_breast_restriction_and_min_volume_options(oblique_case, handset_model, oracle):
    case = oblique_case
    unrestricted = _engine(handset_model, case.breast, breast_masking=False).run(case.exam)
    assert unrestricted.crop_geometry.size == case.exam.geometry.size  # no crop without the breast mask
    blob4 = case.all_lesions.array == 4
    assert unrestricted.n_lesions == 3
    outside_label = np.bincount(unrestricted.lesion_labels.array[blob4]).argmax()
    assert outside_label == 3 and dice(unrestricted.lesion_labels.array == 3, blob4) > 0.9
    v1, v2 = unrestricted.lesion_volumes_mm3[:2]
    only_big = _engine(handset_model, case.breast, min_lesion_volume_mm3=(v1 + v2) / 2).run(case.exam)
    assert only_big.n_lesions == 1 and only_big.lesion_volumes_mm3[0] == pytest.approx(v1, rel=0.02)


@pytest.mark.parametrize("normalization", ["zscore", "robust"])
def test_the_model_cards_normalisation_reaches_the_network_input(oblique_case, handset_model, oracle, normalization):
    """zscore: mean 0 / SD 1 inside the breast on the model grid; robust: median 0 / 1.4826 MAD 1 there."""
    net, card = handset_model
    card.normalization = normalization
    _engine((net, card), oblique_case.breast).run(oblique_case.exam)
    prepared = oracle[-1]
    inside = prepared.channels[:, prepared.breast_model > 0]
    if normalization == "zscore":
        centre, spread = inside.mean(axis=1), inside.std(axis=1)
    else:
        centre = np.median(inside, axis=1)
        spread = 1.4826 * np.median(np.abs(inside - centre[:, None]), axis=1)
    np.testing.assert_allclose(centre, 0, atol=1e-4)
    np.testing.assert_allclose(spread, 1, rtol=1e-3)


def test_handset_network_end_to_end_with_probability(oblique_case, handset_model):
    case = oblique_case
    result = _engine(handset_model, case.breast, save_probability=True, min_lesion_volume_mm3=10.0).run(case.exam)
    truth = case.lesions.array
    assert result.n_lesions == 2
    assert dice(result.lesion_labels.array == 1, truth == 1) > 0.95
    assert dice(result.lesion_labels.array == 2, truth == 2) > 0.95
    prob = result.probability
    assert prob is not None and prob.geometry == case.exam.geometry and prob.array.dtype == np.float32
    assert 0.0 <= prob.array.min() and prob.array.max() <= 1.0
    assert prob.array[truth == 1].mean() > 0.8 and prob.array[case.breast.array > 0][truth[case.breast.array > 0] == 0].mean() < 0.1
    # ACT: sigmoid(2 * max logit) with max logit = 0.02 * (~830 - 400) > 8
    assert result.act_score > 0.999
    assert list(result.timings_s) == ["breast_region", "crop", "resample", "channels", "backend", "inference",
                                      "postprocess", "metrics", "total"]
    assert result.backend.startswith("eager")
    assert result.device.startswith("cpu")


def test_progress_is_monotone_with_stage_names_in_order(oblique_case, handset_model):
    seen = []
    _engine(handset_model, oblique_case.breast).run(oblique_case.exam, progress=lambda s, f, m="": seen.append((s, f)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == pytest.approx(1.0)
    order = list(dict.fromkeys(s for s, _ in seen))
    assert order == ["breast_region", "crop", "resample", "channels", "backend", "inference", "postprocess",
                     "metrics"]


def test_cancel_during_inference_raises(oblique_case, handset_model):
    cancel = threading.Event()

    def progress(stage, fraction, message=""):
        if stage == "inference" and fraction > 0.3:
            cancel.set()

    net, _ = handset_model
    with pytest.raises(CancelledError):
        _engine(handset_model, oblique_case.breast).run(oblique_case.exam, progress=progress, cancel=cancel)
    assert net.calls > 0
    cancel_first = threading.Event()
    cancel_first.set()
    with pytest.raises(CancelledError):
        _engine(handset_model, oblique_case.breast).run(oblique_case.exam, cancel=cancel_first)


def test_bad_inputs_give_clear_errors(oblique_case, handset_model):
    case = oblique_case
    empty = Volume(np.zeros_like(case.breast.array), case.breast.geometry)
    with pytest.raises(InputError, match="no breast region"):
        _engine(handset_model, empty).run(case.exam)
    net, card = handset_model
    card.input_channels = ["pre", "post3", "sub3"]
    two_posts = DCEExam(case.exam.phases[:3])
    with pytest.raises(InputError, match="needs 4 phases"):
        _engine((net, card), case.breast).run(two_posts)
    with pytest.raises(InputError, match="DCEExam"):
        _engine(handset_model, case.breast).run(case.exam.phases)
    with pytest.raises(ModelError, match="needs its model card"):
        SegmentationEngine(InferenceConfig(device="cpu"), model=net)
    with pytest.raises(InputError, match="--device 'gpu7'"):
        SegmentationEngine(InferenceConfig(device="gpu7"), model=net, card=card)
    with pytest.raises(InputError, match="overlap"):
        InferenceConfig(overlap=1.0)
    with pytest.raises(ModelError, match="not found"):
        SegmentationEngine(InferenceConfig(model="no-such-model-xyz", device="cpu"))


def test_card_limitations_reach_every_result(oblique_case, handset_model, oracle):
    """The card's known limitations are in the notes of each result and in its model summary."""
    text = "small lesions without fat suppression are found about half as often"
    net, card = handset_model
    card.limitations = [text]
    result = _engine((net, card), oblique_case.breast).run(oblique_case.exam)
    assert f"known limitation of model 'test-handset': {text}" in result.notes
    assert result.summary()["model"]["limitations"] == [text]


def test_real_model_folder_with_heatmap_and_tta(oblique_case, random_model_dir):
    case = oblique_case
    cfg = InferenceConfig(model=str(random_model_dir), device="cpu", heatmap=True, tta=True, tta_flips=((2,),),
                          crop_margin_mm=3.0, threshold=0.5)
    engine = SegmentationEngine(cfg, breast_segmenter=lambda exam: case.breast)
    assert engine.model_info.sha256 == sha256_file(random_model_dir / "weights.pt")
    assert engine.model_info.model_id == "random-tiny" and engine.model_info.is_demo is False
    result = engine.run(case.exam)
    heat = result.heatmap
    assert heat is not None and heat.geometry == case.exam.geometry
    assert 0.0 <= heat.array.min() and heat.array.max() <= 1.0 + 1e-6
    assert not np.any(heat.array[case.breast.array == 0])
    assert "heatmap" in result.timings_s
    assert result.act_score is not None and 0.0 <= result.act_score <= 1.0
    assert not np.any(result.lesion_labels.array[case.breast.array == 0])
    assert result.lesion_labels.geometry == case.exam.geometry
    summary = result.summary()
    assert summary["model"]["sha256"] == engine.model_info.sha256 and summary["settings"]["tta"] is True
    # the folder has no ONNX export: eager PyTorch runs, and the report says why OpenVINO did not
    assert summary["inference_backend"].startswith("eager")
    assert "skipped openvino:" in summary["inference_backend"]


def test_exported_model_folder_runs_in_openvino_like_eager(oblique_case, random_model_dir, tmp_path, caplog):
    """The verified ONNX export in the model folder is used on CPU; the probabilities match eager."""
    import logging
    import shutil

    pytest.importorskip("openvino")
    from breastlesionseg.runtime.model_file import export_into_model_dir

    folder = tmp_path / "random-tiny"
    shutil.copytree(random_model_dir, folder)
    export_into_model_dir(folder)
    results = {}
    for backend in ("auto", "eager"):
        cfg = InferenceConfig(model=str(folder), device="cpu", backend=backend, crop_margin_mm=3.0,
                              save_probability=True, threshold=0.5)
        engine = SegmentationEngine(cfg, breast_segmenter=lambda exam: oblique_case.breast)
        with caplog.at_level(logging.INFO, logger="breastlesionseg"):
            results[backend] = engine.run(oblique_case.exam)
    assert results["auto"].backend.startswith("openvino") and results["eager"].backend.startswith("eager")
    assert len([r for r in caplog.records if r.getMessage().startswith("inference backend: ")]) == 2  # one line each
    np.testing.assert_allclose(results["auto"].probability.array, results["eager"].probability.array, atol=1e-3)


def test_a_failing_network_is_a_model_error_not_bad_input(oblique_case, handset_model):
    class Broken(torch.nn.Module):
        in_channels, out_channels, size_multiple = 3, 1, 8

        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    _, card = handset_model
    engine = _engine((Broken(), card), oblique_case.breast)
    with pytest.raises(ModelError, match="the network failed during sliding-window inference"):
        engine.run(oblique_case.exam)


def test_background_preparation_is_a_silent_daemon_thread(monkeypatch, handset_model, oblique_case, caplog):
    """Issue 14 row 16: a bad input found while the backend starts must not wait for it nor print its lines."""
    import logging

    started, release = threading.Event(), threading.Event()
    real_build = engine_module.SegmentationEngine._build_runnable

    def slow_build(self, num_threads):
        started.set()
        threads.append(threading.current_thread())
        release.wait(30)
        return real_build(self, num_threads)

    threads: list = []
    monkeypatch.setattr(engine_module.SegmentationEngine, "_build_runnable", slow_build)
    engine = _engine(handset_model, oblique_case.breast)
    with caplog.at_level(logging.DEBUG, logger="breastlesionseg"):
        engine.prepare_backend_in_background()
        assert started.wait(30)
        assert threads[0].daemon  # never delays the interpreter's exit
        release.set()
        threads[0].join(30)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # nothing logged from the thread
    with caplog.at_level(logging.INFO, logger="breastlesionseg"):
        engine.runnable()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "inference backend: " + engine.runnable()[1]]


def test_inference_spacing_runs_the_network_on_a_finer_grid_and_maps_back_exactly(oblique_case, handset_model, oracle):
    """card.inference_spacing_mm: the network grid is finer, every output is still on the exam's own grid."""
    import dataclasses

    case = oblique_case
    net, card = handset_model
    finer = dataclasses.replace(card, inference_spacing_mm=(0.9, 0.8, 1.7))
    assert card.run_spacing_mm() == pytest.approx((1.2, 1.1, 2.3)) and finer.run_spacing_mm() == (0.9, 0.8, 1.7)
    coarse_run = _engine((net, card), case.breast, min_lesion_volume_mm3=10.0).run(case.exam)
    engine = _engine((net, finer), case.breast, min_lesion_volume_mm3=10.0)
    result = engine.run(case.exam)
    coarse, fine = oracle[0].model_geometry, oracle[1].model_geometry
    assert fine.spacing == pytest.approx((0.9, 0.8, 1.7)) and engine.model_info.spacing_mm_xyz == (0.9, 0.8, 1.7)
    # the same physical extent, more voxels
    extent = lambda g: np.asarray(g.size) * np.asarray(g.spacing)  # noqa: E731
    np.testing.assert_allclose(extent(fine), extent(coarse), atol=2.0)
    assert np.prod(fine.size) > 1.5 * np.prod(coarse.size)
    for vol in (result.lesion_labels, result.breast_mask):
        assert vol.geometry == case.exam.geometry
    truth = case.lesions.array
    for k in (1, 2):
        assert dice(result.lesion_labels.array == k, truth == k) > 0.95
    assert result.lesion_volumes_mm3 == pytest.approx(coarse_run.lesion_volumes_mm3, rel=0.08)
    with pytest.raises(InputError, match="inference_spacing_mm"):
        dataclasses.replace(card, inference_spacing_mm=(0.9, 0.0, 1.7))
    assert "inference_spacing_mm" not in card.to_dict() or card.to_dict()["inference_spacing_mm"] is None
    assert type(card).from_dict(finer.to_dict()).inference_spacing_mm == (0.9, 0.8, 1.7)


def test_window_and_min_volume_come_from_config_else_model_card(random_model_dir, tmp_path):
    """The sliding-window size: InferenceConfig.window_zyx > card.inference_window > card.patch_size."""
    import shutil

    from breastlesionseg.nn.model_card import ModelCard

    plain = SegmentationEngine(InferenceConfig(model=str(random_model_dir), device="cpu"))
    assert plain.model_info.patch_size_zyx == (16, 24, 32)  # the card's training patch
    forced = SegmentationEngine(InferenceConfig(model=str(random_model_dir), device="cpu", window_zyx=(8, 40, 24)))
    assert forced.model_info.patch_size_zyx == (8, 40, 24)
    folder = tmp_path / "random-tiny"
    shutil.copytree(random_model_dir, folder)
    card = ModelCard.from_dict(json.loads((folder / "model_card.json").read_text(encoding="utf-8")))
    card.inference_window = (24, 48, 48)
    card.min_lesion_volume_mm3 = 33.0
    (folder / "model_card.json").write_text(card.to_json())
    from_card = SegmentationEngine(InferenceConfig(model=str(folder), device="cpu"))
    assert from_card.model_info.patch_size_zyx == (24, 48, 48)
    assert from_card.min_lesion_volume_mm3 == 33.0 and plain.min_lesion_volume_mm3 == 10.0
    explicit = SegmentationEngine(InferenceConfig(model=str(folder), device="cpu", min_lesion_volume_mm3=0.0))
    assert explicit.min_lesion_volume_mm3 == 0.0
    with pytest.raises(ValueError, match="window_zyx"):
        InferenceConfig(model=str(folder), window_zyx=(0, 8, 8))
    with pytest.raises(ValueError, match="inference_window"):
        card.inference_window = (24, -1, 48)
        card.validate()


def test_window_shrinks_with_a_note_when_memory_is_short(oblique_case, handset_model, oracle, monkeypatch):
    """Graceful degradation: a tiny memory budget gives a smaller sliding window, said in the notes."""
    from breastlesionseg.inference import window_budget as window_module

    case = oblique_case
    full = _engine(handset_model, case.breast, min_lesion_volume_mm3=10.0).run(case.exam)
    full_window = oracle[-1].patch_size_zyx
    assert not [n for n in full.notes if "sliding window reduced" in n]
    per_voxel = window_module.BYTES_PER_VOXEL["eager"]
    budget = int(0.5 * full_window[0] * full_window[1] * full_window[2] * per_voxel)
    monkeypatch.setattr(window_module, "memory_budget_bytes", lambda: budget)
    short = _engine(handset_model, case.breast, min_lesion_volume_mm3=10.0).run(case.exam)
    small_window = oracle[-1].patch_size_zyx
    assert small_window != full_window
    assert small_window[0] * small_window[1] * small_window[2] * per_voxel <= budget
    assert [n for n in short.notes if "sliding window reduced" in n and str(tuple(full_window)) in n]
    np.testing.assert_array_equal(short.lesion_labels.array, full.lesion_labels.array)  # oracle: same result


def test_backend_prepared_in_background_is_the_one_run_uses(monkeypatch, handset_model, oblique_case):
    engine = _engine(handset_model, oblique_case.breast, num_threads=1)
    seen = []
    real_select = engine_module.SegmentationEngine._build_runnable

    def recording_build(self, num_threads):
        seen.append((threading.current_thread().name, num_threads))
        return real_select(self, num_threads)

    monkeypatch.setattr(engine_module.SegmentationEngine, "_build_runnable", recording_build)
    engine.prepare_backend_in_background()
    engine.prepare_backend_in_background()  # idempotent: one preparation
    network, summary = engine.runnable()
    assert network is engine.runnable()[0]  # built once, cached
    assert len(seen) == 1 and seen[0][0].startswith("bls-backend") and seen[0][1] == 1
    assert summary.startswith("eager")
    result = engine.run(oblique_case.exam)
    assert len(seen) == 1 and result.n_lesions >= 1


def test_background_backend_errors_surface_when_the_backend_is_needed(monkeypatch, handset_model, oblique_case):
    engine = _engine(handset_model, oblique_case.breast)

    def failing_build(self, num_threads):
        raise ModelError("runtime broke while compiling")

    monkeypatch.setattr(engine_module.SegmentationEngine, "_build_runnable", failing_build)
    engine.prepare_backend_in_background()
    with pytest.raises(ModelError, match="runtime broke"):
        engine.run(oblique_case.exam)


def test_automatic_window_batch_per_device_fitted_to_memory(monkeypatch, handset_model, oblique_case):
    from breastlesionseg.inference import window_budget as window_module

    result = _engine(handset_model, oblique_case.breast).run(oblique_case.exam)
    assert result.config["sw_batch_size"] == window_module.AUTO_SW_BATCH_SIZE["cpu"] == 1
    monkeypatch.setitem(window_module.AUTO_SW_BATCH_SIZE, "cpu", 8)
    assert _engine(handset_model, oblique_case.breast).run(oblique_case.exam).config["sw_batch_size"] == 8
    # too little memory for 8 windows: the batch is halved before the window is touched
    monkeypatch.setattr(window_module, "memory_budget_bytes", lambda: int(7 * 15 * 13 * 1503.0 * 2.5))
    small = _engine(handset_model, oblique_case.breast).run(oblique_case.exam)
    assert small.config["sw_batch_size"] == 2 and not [n for n in small.notes if "window reduced" in n]
    # an explicit batch is kept as given
    assert _engine(handset_model, oblique_case.breast, sw_batch_size=3).run(oblique_case.exam).config["sw_batch_size"] == 3
