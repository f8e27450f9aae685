"""The segmentation engine: one DCE exam in, breast region + numbered lesions + metrics out.

Pipeline (each step timed, reported through ``progress`` and checked for cancellation):

1. ``breast_region`` — breast region 0/1/2 on the pre grid (:mod:`breastlesionseg.breast`);
2. ``crop`` — optimized-volume crop (breast bounding box + margin) of the phases the model needs;
3. ``resample`` — the crop resampled linearly to the model card's spacing;
4. ``channels`` — input channels + normalisation from the model card;
   ``backend`` — (first run only) the fastest validated inference backend (:mod:`breastlesionseg.runtime`);
5. ``inference`` — Gaussian-blended sliding-window inference (+ test-time flips), ACT score;
6. ``heatmap`` — optional Grad-CAM of the ACT head;
7. ``postprocess`` — probability back onto the cropped pre grid (linear), threshold, restrict to the
   breast, remove components < min volume (mm3), instances 1..N by decreasing volume, un-crop;
8. ``metrics`` — lesion and breast metrics (:func:`breastlesionseg.metrics.lesion_metrics`).

Memory: apart from the exam itself, only crops of the needed phases are copied (float32), and the
full-grid float maps (probability / heat map) are only built when asked for.
"""
from __future__ import annotations

import dataclasses
import logging
import resource
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch

from ..errors import CancelledError, InputError, ModelError
from ..exam import DCEExam
from ..geometry import Geometry, Volume
from ..nn.limitations import limitation_notes
from ..progress import CancelToken, ProgressCallback, StageProgress
from ..runtime.names import BACKEND_THREAD_NAME
from .canonical_grid import resample_to_canonical_model
from .config import InferenceConfig
from .device import describe_device, is_out_of_memory, resolve_device, torch_threads
from .lesion_confidence import LesionConfidenceModel
from .postprocess import postprocess_probability, resample_array, score_components
from .preprocess import PreparedInput, build_model_input, crop_exam, phases_needed
from .result import ModelInfo, SegmentationResult

if TYPE_CHECKING:  # pragma: no cover
    from ..nn.model_card import ModelCard

log = logging.getLogger(__name__)

#: a breast-region function: exam -> (z, y, x) 0/1/2 mask Volume on the pre grid
BreastSegmenter = Callable[[DCEExam], Volume]

#: relative expected duration of each step (for one overall progress fraction)
_STAGE_WEIGHTS = {
    "breast_region": 3.0,
    "crop": 0.5,
    "resample": 1.5,
    "channels": 0.5,
    "backend": 0.5,
    "inference": 16.0,
    "heatmap": 16.0,
    "postprocess": 1.5,
    "metrics": 2.0,
}


class _Steps:
    """The timed, progress-reporting, cancellable steps of one :meth:`SegmentationEngine.run`.

    ``with steps("crop"): ...`` checks the cancel token, reports the step's start and end through the
    overall progress tracker and records its seconds in :attr:`timings`.
    """

    def __init__(self, weights: list[tuple[str, float]], progress: ProgressCallback | None,
                 cancel: CancelToken | None) -> None:
        self.tracker = StageProgress(weights, progress)
        self.cancel = cancel
        self.timings: dict[str, float] = {}
        self.t_start = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError("segmentation cancelled by the user")
        self.tracker.update(name, 0.0, "start")
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0
        self.tracker.update(name, 1.0, f"{self.timings[name]:.2f} s")
        log.debug("step %s: %.3f s", name, self.timings[name])


def default_breast_segmenter(exam: DCEExam) -> Volume:
    """The package's breast-region segmentation (``breastlesionseg.breast.segment_breast_region``)."""
    from ..breast import segment_breast_region
    from ..breast.config import BreastRegionConfig

    result = segment_breast_region(exam, BreastRegionConfig())
    return result.mask


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


class SegmentationEngine:
    """Segment breast DCE-MRI exams with one lesion model.

    Args:
        config: run settings (model, device, overlap, threshold, ...).
        model: an already built network (optional; then ``card`` is required). Tests use this to
            run the pipeline with a network whose output is a known function.
        card: the model card of ``model``.
        breast_segmenter: ``f(exam) -> Volume`` (0/1/2 on the pre grid); default: the package's
            breast-region segmentation.
        model_path: folder of ``model`` for the report (optional).

    Raises:
        ModelError: the model cannot be found or loaded (checksum, architecture).
        InputError: a bad device or setting.
    """

    def __init__(
        self,
        config: InferenceConfig | None = None,
        *,
        model: torch.nn.Module | None = None,
        card: "ModelCard | None" = None,
        breast_segmenter: BreastSegmenter | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        self.config = config if config is not None else InferenceConfig()
        self.config.validate()
        self.device = resolve_device(self.config.device)
        if model is None:
            from ..nn.registry import load_model, resolve_model

            folder = resolve_model(self.config.model)
            model, card = load_model(folder, device="cpu")
            model_path = folder
        elif card is None:
            raise ModelError("SegmentationEngine: a model passed in needs its model card (card=...)")
        self.model = model.eval()
        self.card = card
        self.model_dir = Path(model_path) if model_path else None
        self.breast_segmenter = breast_segmenter if breast_segmenter is not None else default_breast_segmenter
        self.model_info = ModelInfo(
            model_id=str(card.model_id),
            sha256=str(getattr(card, "weights_sha256", "") or ""),
            is_demo=bool(getattr(card, "demo", False)),
            path=str(model_path or ""),
            arch=str(getattr(card, "arch", type(model).__name__)),
            channels=list(card.input_channels),
            spacing_mm_xyz=card.run_spacing_mm(),
            patch_size_zyx=self._window_zyx(card),
            limitations=tuple(getattr(card, "limitations", ()) or ()),
        )
        self._runnable: dict[str, tuple[torch.nn.Module, str]] = {}
        self._pending: dict[str, Future] = {}
        self.overlap = float(self.config.overlap if self.config.overlap is not None else card.overlap)
        self.threshold = float(self.config.threshold if self.config.threshold is not None else card.threshold)
        self.min_lesion_volume_mm3 = float(
            self.config.min_lesion_volume_mm3 if self.config.min_lesion_volume_mm3 is not None
            else getattr(card, "min_lesion_volume_mm3", 10.0)
        )

    def _window_zyx(self, card) -> tuple[int, int, int]:
        """Sliding-window size: the config's override, else the card's inference window, else its patch."""
        window = self.config.window_zyx or getattr(card, "inference_window", None) or card.patch_size
        return tuple(int(s) for s in window)  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------
    def run(
        self,
        exam: DCEExam,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SegmentationResult:
        """Segment one exam.

        Args:
            exam: the DCE exam, every phase on the pre-contrast grid.
            progress: ``progress(stage, fraction, message)`` with the overall fraction (monotone).
            cancel: ``is_set()`` token (e.g. :class:`threading.Event`), checked between steps and
                between sliding windows.

        Returns:
            The :class:`SegmentationResult` (all volumes on the pre grid).

        Raises:
            CancelledError: ``cancel`` was set; nothing is returned.
            InputError: the exam does not suit the model (too few phases, no breast found, ...).
            ModelError: the network fails on this input.
        """
        if not isinstance(exam, DCEExam):
            raise InputError(f"SegmentationEngine.run needs a DCEExam, got {type(exam).__name__}")
        cfg = self.config
        steps = _Steps(self._stage_weights(), progress, cancel)
        notes = self._model_notes()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        with torch_threads(cfg.num_threads):
            with steps("breast_region"):
                breast_mask = self._breast_region(exam)
            prepared = self._prepare_input(exam, breast_mask, steps)
            with steps("backend"):
                network, backend_summary = self.runnable()
                batch, window, window_note = self._batch_and_window(network)
                if window_note:
                    notes.append(window_note)
                    prepared = dataclasses.replace(prepared, patch_size_zyx=window)
            with steps("inference"):
                prediction = predict(network, prepared, dataclasses.replace(cfg, sw_batch_size=batch), self.device,
                                     self.overlap, steps.tracker.sub("inference"), cancel)
            notes.extend(prediction.notes)
            heat_model = self._heatmap(prepared, prediction.device, steps, cancel) if cfg.heatmap else None
            with steps("postprocess"):
                maps = self._postprocess(exam, prepared, prediction.probability, heat_model)
            with steps("metrics"):
                metrics = self._metrics(exam, maps["labels"], breast_mask)
        steps.timings["total"] = time.perf_counter() - steps.t_start
        return self._result(breast_mask, maps, prediction, metrics, steps.timings, notes, prepared, backend_summary)

    # ------------------------------------------------------------------------------------------ stages of run
    def _stage_weights(self) -> list[tuple[str, float]]:
        """(step, relative expected duration) in run order, for one overall progress fraction."""
        cfg = self.config
        stages = ["breast_region", "crop", "resample", "channels", "backend", "inference"]
        stages += (["heatmap"] if cfg.heatmap else []) + ["postprocess", "metrics"]
        passes = 1 + (len(cfg.tta_flips) if cfg.tta else 0)
        return [(s, _STAGE_WEIGHTS[s] * (passes if s == "inference" else 1)) for s in stages]

    def _model_notes(self) -> list[str]:
        """What every result of this model must say: demo status, then the card's known limitations."""
        info = self.model_info
        notes = [f"model '{info.model_id}' is a DEMO model trained on synthetic phantoms only; "
                 "its results on real exams are illustrations, not findings"] if info.is_demo else []
        return notes + limitation_notes(info.model_id, info.limitations)

    def _prepare_input(self, exam: DCEExam, breast_mask: Volume, steps: "_Steps") -> PreparedInput:
        """Steps crop, resample, channels: the normalised model input on the model grid."""
        cfg, card = self.config, self.card
        with steps("crop"):
            n_phases = phases_needed(card.input_channels)
            cropped = crop_exam(exam, breast_mask, n_phases, cfg.crop_margin_mm, use_breast_crop=cfg.breast_masking)
        with steps("resample"):
            model_exam, breast_model, model_geometry = resample_to_canonical_model(
                exam, breast_mask, cropped, card.run_spacing_mm())
            del cropped.phases[:]  # the crops are no longer needed
        with steps("channels"):
            channels = build_model_input(model_exam, breast_model, card.input_channels, card.normalization,
                                         getattr(card, "normalization_region", "breast_mask"))
            del model_exam
        return PreparedInput(cropped.crop, cropped.geometry, model_geometry, channels, breast_model,
                             cropped.breast, self.model_info.patch_size_zyx)

    def _heatmap(self, prepared: PreparedInput, device: torch.device, steps: "_Steps",
                 cancel: CancelToken | None) -> np.ndarray:
        """Step heatmap: Grad-CAM of the ACT head on the model grid."""
        from .gradcam import gradcam_heatmap

        cfg = self.config
        with steps("heatmap"):
            return gradcam_heatmap(
                self.model, prepared.channels, prepared.patch_size_zyx, overlap=self.overlap,
                sigma_scale=cfg.sigma_scale, device=device,
                breast_mask=prepared.breast_model if cfg.breast_masking else None,
                progress=steps.tracker.sub("heatmap"), cancel=cancel,
            )

    def _postprocess(self, exam: DCEExam, prepared: PreparedInput, probability_model: np.ndarray,
                     heat_model: np.ndarray | None) -> dict:
        """Step postprocess: threshold, lesion instances, and the maps back on the exam's pre grid.

        Returns:
            ``{"labels": Volume, "volumes_mm3": [...], "probability": Volume | None, "heatmap": Volume | None}``.
        """
        cfg, crop = self.config, prepared.crop
        post = postprocess_probability(
            probability_model, prepared.model_geometry, prepared.crop_geometry,
            prepared.breast_crop if cfg.breast_masking else None, self.threshold, self.min_lesion_volume_mm3,
        )
        scored = score_components(post, crop, prepared.crop_geometry,
                                  prepared.breast_crop if cfg.breast_masking else None,
                                  [p.array for p in exam.phases], LesionConfidenceModel.from_card(self.card))
        maps = {"labels": Volume(crop.uncrop(scored.lesion_labels, fill=0), exam.geometry, name="lesions"),
                "volumes_mm3": scored.lesion_volumes_mm3, "probability": None, "heatmap": None,
                "scored": scored, "candidate_labels": None if scored.candidate_labels is None else Volume(
                    crop.uncrop(scored.candidate_labels, fill=0), exam.geometry, name="lesion candidates")}
        if cfg.save_probability:
            maps["probability"] = Volume(crop.uncrop(post.probability_crop, fill=0.0).astype(np.float32),
                                         exam.geometry, name="lesion probability")
        if heat_model is not None:
            heat_crop = resample_array(heat_model, prepared.model_geometry, prepared.crop_geometry)
            if cfg.breast_masking:
                heat_crop[prepared.breast_crop == 0] = 0.0
            maps["heatmap"] = Volume(crop.uncrop(heat_crop.astype(np.float32), fill=0.0), exam.geometry,
                                     name="Grad-CAM heat map")
        if post.removed_outside_breast_voxels:
            log.info("%d above-threshold voxels outside the breast region were discarded",
                     post.removed_outside_breast_voxels)
        return maps

    def _result(self, breast_mask: Volume, maps: dict, prediction, metrics: dict, timings: dict[str, float],
                notes: list[str], prepared: PreparedInput, backend_summary: str) -> SegmentationResult:
        """Assemble the :class:`SegmentationResult` of one run."""
        cfg = self.config
        peak_gpu = None
        if prediction.device.type == "cuda":
            peak_gpu = torch.cuda.max_memory_allocated(prediction.device) / 2**20
        return SegmentationResult(
            breast_mask=breast_mask,
            lesion_labels=maps["labels"],
            lesion_volumes_mm3=maps["volumes_mm3"],
            lesion_confidence=maps["scored"].lesion_confidence,
            candidate_labels=maps["candidate_labels"],
            candidates=maps["scored"].candidates,
            probability=maps["probability"],
            heatmap=maps["heatmap"],
            act_score=prediction.act_score,
            metrics=metrics,
            model=self.model_info,
            device=describe_device(prediction.device),
            timings_s=timings,
            peak_memory_mb=peak_rss_mb(),
            peak_gpu_memory_mb=peak_gpu,
            crop_geometry=prepared.crop_geometry,
            model_geometry=prepared.model_geometry,
            n_windows=prediction.n_windows,
            config={**cfg.to_dict(), "overlap": self.overlap, "threshold": self.threshold,
                    "sw_batch_size": prediction.sw_batch_size,
                    "min_lesion_volume_mm3": self.min_lesion_volume_mm3},
            notes=notes,
            n_windows_skipped=prediction.skipped_windows,
            backend=backend_summary,
        )

    # ------------------------------------------------------------------------------------------ backend
    def runnable(self) -> tuple[torch.nn.Module, str]:
        """The network as it runs on this engine's device, and a line saying which backend it is and why.

        Chosen once per device with :func:`breastlesionseg.runtime.select_backend` (OpenVINO on CPU when the
        model folder holds its verified ONNX export and it matches eager on the window, else eager PyTorch).
        The choice is logged here, in the calling thread, as one INFO line.
        """
        key = str(self.device)
        if key not in self._runnable:
            pending = self._pending.pop(key, None)
            if pending is not None:
                self._runnable[key] = pending.result()  # re-raises what the background preparation raised
            else:
                self._runnable[key] = self._build_runnable(self.config.num_threads)
            log.info("inference backend: %s", self._runnable[key][1])
        return self._runnable[key]

    def prepare_backend_in_background(self) -> None:
        """Start choosing and building the backend (:meth:`runnable`) in a background daemon thread.

        Call it before loading the exam: reading and compiling the ONNX export or the CUDA start-up then
        overlap with loading and the breast region. The thread logs nothing and never delays the process
        exit (a bad input found meanwhile ends the process at once); errors surface when :meth:`run` needs
        the backend. Idempotent.
        """
        key = str(self.device)
        if key in self._runnable or key in self._pending:
            return
        threads = self.config.num_threads if self.config.num_threads is not None else torch.get_num_threads()
        future: Future = Future()

        def work() -> None:
            try:
                future.set_result(self._build_runnable(threads))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of runnable()
                future.set_exception(exc)

        self._pending[key] = future
        threading.Thread(target=work, name=BACKEND_THREAD_NAME, daemon=True).start()

    def _build_runnable(self, num_threads: int | None) -> tuple[torch.nn.Module, str]:
        from ..runtime import select_backend

        t0 = time.perf_counter()
        self.model.to(self.device)
        selection = select_backend(self.model, self.device, self.model_info.patch_size_zyx,
                                   preference=self.config.backend, model_dir=self.model_dir, card=self.card,
                                   num_threads=num_threads)
        log.debug("backend %s prepared in %.2f s", selection.name, time.perf_counter() - t0)
        return selection.network, selection.summary()

    def _batch_and_window(self, network: torch.nn.Module) -> tuple[int, tuple[int, int, int], str | None]:
        """Windows per forward pass and the window, fitted to one memory budget.

        The batch is the config's, or the device's automatic batch halved until it fits; then the window is
        the model's, or a smaller one when even that batch would not fit (with a note for the user).
        """
        from .window_budget import (AUTO_SW_BATCH_SIZE, batch_for_memory, cuda_memory_budget_bytes,
                                    memory_budget_bytes, window_for_memory)

        cuda = self.device if self.device.type == "cuda" else None
        budget = cuda_memory_budget_bytes(cuda) if cuda is not None else memory_budget_bytes()
        backend = getattr(network, "backend_name", "?")  # unknown -> charged the largest measured figure
        window = self.model_info.patch_size_zyx
        if self.config.sw_batch_size is not None:
            batch = int(self.config.sw_batch_size)
        else:
            batch = batch_for_memory(window, self.device.type, backend, AUTO_SW_BATCH_SIZE.get(self.device.type, 1),
                                     budget_bytes=budget)
        fitted, note = window_for_memory(window, self.device.type, backend, batch=batch,
                                         multiple=int(getattr(self.model, "size_multiple", 8)), budget_bytes=budget)
        return batch, fitted, note

    def _breast_region(self, exam: DCEExam) -> Volume:
        mask = self.breast_segmenter(exam)
        if not isinstance(mask, Volume):
            raise InputError(f"the breast segmenter returned {type(mask).__name__}, expected a Volume")
        if not mask.geometry.same_grid(exam.geometry):
            raise InputError("the breast region is not on the exam's pre-contrast grid")
        values = np.unique(np.asarray(mask.array))
        if not set(values.tolist()) <= {0, 1, 2}:
            raise InputError(f"the breast region has labels {values.tolist()}; expected 0, 1 (left), 2 (right)")
        return Volume(np.asarray(mask.array, dtype=np.uint8), exam.geometry, name="breast region")

    def _metrics(self, exam: DCEExam, labels: Volume, breast_mask: Volume) -> dict:
        from ..metrics import lesion_metrics

        return lesion_metrics(exam, labels, breast_mask, pe_threshold_percent=self.config.pe_threshold_percent)


def predict(
    model: torch.nn.Module,
    prepared: PreparedInput,
    config: InferenceConfig,
    device: torch.device,
    overlap: float,
    progress: Callable[[float, str], None] | None,
    cancel: CancelToken | None,
):
    """Sliding-window probability on the model grid for a prepared input (the engine's predictor).

    Returns a :class:`~breastlesionseg.inference.sliding_window.WindowPrediction`. Kept as a module
    function so tests can swap it for an oracle.

    Raises:
        ModelError: the network itself fails (a runtime error other than out-of-memory).
    """
    from .sliding_window import predict_probability

    try:
        return predict_probability(
            model, prepared.channels, prepared.patch_size_zyx,
            overlap=overlap, blend_mode=config.blend_mode, sigma_scale=config.sigma_scale,
            sw_batch_size=config.sw_batch_size, device=device, amp=config.amp,
            flips=config.tta_flips if config.tta else (), breast_mask=prepared.breast_model,
            skip_outside_mask=config.breast_masking and config.skip_empty_windows,
            progress=progress, cancel=cancel,
        )
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise
        raise ModelError(f"the network failed during sliding-window inference: {type(exc).__name__}: {exc}") from exc
