"""Sliding-window inference: exact blending of a known function, ACT score, flips, cancel, OOM fallback."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from breastlesionseg.errors import CancelledError
from breastlesionseg.inference.sliding_window import count_windows, predict_probability


def _channels(shape=(11, 19, 23), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(400, 300, (3, *shape)).astype(np.float32)


def test_gaussian_blending_reproduces_a_pointwise_network_exactly(handset_model):
    net, _ = handset_model
    x = _channels()
    pred = predict_probability(net, x, (7, 9, 8), overlap=0.5, blend_mode="gaussian", device="cpu")
    expected = 1.0 / (1.0 + np.exp(-(0.02 * (x[2].astype(np.float64) - 400.0))))
    np.testing.assert_allclose(pred.probability, expected, atol=2e-6)
    assert pred.probability.shape == x.shape[1:] and pred.probability.dtype == np.float32
    assert pred.n_windows == count_windows(x.shape[1:], (7, 9, 8), 0.5) == net.calls
    assert pred.n_passes == 1


def test_window_larger_than_image_and_constant_blending(handset_model):
    net, _ = handset_model
    x = _channels((5, 6, 7))
    pred = predict_probability(net, x, (8, 8, 8), overlap=0.25, blend_mode="constant")
    expected = 1.0 / (1.0 + np.exp(-(0.02 * (x[2].astype(np.float64) - 400.0))))
    np.testing.assert_allclose(pred.probability, expected, atol=2e-6)
    assert pred.n_windows == 1


def test_act_score_is_max_over_windows_covering_the_breast(handset_model):
    net, _ = handset_model
    x = np.full((3, 9, 16, 16), 0.0, np.float32)
    x[2, 4, 2, 2] = 700.0  # a bright voxel in the corner window only: logit 6 there
    x[2, 4, 13, 13] = 900.0  # brighter, in the opposite corner: logit 10
    breast = np.zeros(x.shape[1:], np.uint8)
    breast[:, :8, :8] = 1  # the breast covers the first corner only
    pred = predict_probability(net, x, (9, 8, 8), overlap=0.0, breast_mask=breast)
    # windows: 4 (2 x 2 in y, x); ACT prob = softmax((-m, m))[1] = sigmoid(2 m), m = max logit in the window
    assert pred.n_windows == 4
    assert pred.act_score == pytest.approx(1.0 / (1.0 + np.exp(-12.0)), rel=1e-6)
    no_mask = predict_probability(net, x, (9, 8, 8), overlap=0.0)
    assert no_mask.act_score == pytest.approx(1.0 / (1.0 + np.exp(-20.0)), rel=1e-6)
    background = 1.0 / (1.0 + np.exp(-2 * 0.02 * -400.0))
    assert sorted(no_mask.window_act)[0] == pytest.approx(background, rel=1e-4)
    # a window only 25% inside the breast does not count (ACT_MIN_BREAST_FRACTION = 0.5): the brighter
    # voxel's window touches the breast at its edge, the score stays that of the first corner
    edge = breast.copy()
    edge[:, 8:, 8:10] = 1  # 2 of the 8 columns of the opposite corner window
    partial = predict_probability(net, x, (9, 8, 8), overlap=0.0, breast_mask=edge)
    assert partial.act_score == pytest.approx(1.0 / (1.0 + np.exp(-12.0)), rel=1e-6)


def test_flips_average_passes_and_count_windows(handset_model):
    net, _ = handset_model
    x = _channels((9, 13, 15), seed=1)
    plain = predict_probability(net, x, (5, 7, 9), overlap=0.25)
    flipped = predict_probability(net, x, (5, 7, 9), overlap=0.25, flips=[(2,), (1, 2)])
    # a pointwise network is flip-equivariant: averaging flipped passes changes nothing
    np.testing.assert_allclose(flipped.probability, plain.probability, atol=2e-6)
    assert flipped.n_passes == 3


def test_flips_are_undone_before_averaging():
    """A network that is NOT flip-equivariant (output = sigmoid of a ramp along x) shows the average."""

    class RampNet(torch.nn.Module):
        def forward(self, x):
            w = x.shape[-1]
            ramp = torch.linspace(-3.0, 1.0, w).view(1, 1, 1, 1, w).expand(x.shape[0], 1, *x.shape[2:])
            return ramp.clone()

    x = _channels((4, 5, 9))
    pred = predict_probability(RampNet(), x, (4, 5, 9), overlap=0.0, flips=[(2,)])
    ramp = np.linspace(-3.0, 1.0, 9)
    sig = 1 / (1 + np.exp(-ramp))
    expected = 0.5 * (sig + sig[::-1])  # un-flipped pass + flipped-back pass
    np.testing.assert_allclose(pred.probability[0, 0], expected, atol=1e-6)
    assert pred.act_score is None


def test_progress_fractions_are_monotone_and_reach_one(handset_model):
    net, _ = handset_model
    seen = []
    predict_probability(net, _channels(), (7, 9, 8), overlap=0.25, flips=[(2,)],
                        progress=lambda f, m="": seen.append(f))
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) == net.calls


def test_cancel_between_windows_raises(handset_model):
    net, _ = handset_model
    cancel = threading.Event()

    def progress(fraction, message=""):
        if fraction > 0.2:
            cancel.set()

    with pytest.raises(CancelledError, match="cancelled"):
        predict_probability(net, _channels(), (7, 9, 8), overlap=0.25, progress=progress, cancel=cancel)
    total = count_windows((11, 19, 23), (7, 9, 8), 0.25)
    assert net.calls < total


def test_out_of_memory_halves_the_window_batch(handset_model):
    net, _ = handset_model

    class Picky(torch.nn.Module):
        """Runs out of memory for batches of more than 2 windows."""

        def __init__(self):
            super().__init__()
            self.inner = net

        def forward_with_aux(self, x):
            if x.shape[0] > 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.inner.forward_with_aux(x)

    x = _channels()
    pred = predict_probability(Picky(), x, (7, 9, 8), overlap=0.5, sw_batch_size=8)
    assert pred.sw_batch_size == 2
    assert [n for n in pred.notes if "sw_batch_size=4" in n] and [n for n in pred.notes if "sw_batch_size=2" in n]
    expected = 1.0 / (1.0 + np.exp(-(0.02 * (x[2].astype(np.float64) - 400.0))))
    np.testing.assert_allclose(pred.probability, expected, atol=2e-6)


def test_other_errors_are_not_swallowed():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shape mismatch somewhere")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        predict_probability(Broken(), _channels((4, 4, 4)), (4, 4, 4))


def test_windows_outside_the_breast_are_skipped_without_changing_the_breast(handset_model):
    net, _ = handset_model
    x = _channels((9, 24, 40), seed=3)
    breast = np.zeros(x.shape[1:], np.uint8)
    breast[:, 4:12, 5:15] = 1
    full = predict_probability(net, x, (9, 8, 8), overlap=0.25, breast_mask=breast)
    calls_full = net.calls
    net.calls = 0
    skipped = predict_probability(net, x, (9, 8, 8), overlap=0.25, breast_mask=breast, skip_outside_mask=True)
    assert skipped.skipped_windows > 0 and net.calls == calls_full - skipped.skipped_windows
    inside = breast > 0
    np.testing.assert_allclose(skipped.probability[inside], full.probability[inside], atol=2e-6)
    # far from the breast (beyond the dilation and any window touching it) the probability is 0
    assert np.all(skipped.probability[:, 20:, 30:] == 0.0)
    assert skipped.act_score == pytest.approx(full.act_score)


class _ThreadRecordingNet(torch.nn.Module):
    """Wraps the hand-set network and records PyTorch's thread count at every forward pass."""

    def __init__(self, inner, runs_on_torch_threads: bool) -> None:
        super().__init__()
        self.inner = inner
        self.runs_on_torch_threads = runs_on_torch_threads
        self.seen_threads: list[int] = []

    def forward_with_aux(self, x):
        self.seen_threads.append(torch.get_num_threads())
        return self.inner.forward_with_aux(x)


@pytest.mark.parametrize("own_pool", [True, False])
def test_torch_drops_to_one_thread_only_for_networks_with_their_own_thread_pool(handset_model, own_pool):
    inner, _ = handset_model
    net = _ThreadRecordingNet(inner, runs_on_torch_threads=not own_pool)
    x = _channels()
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pred = predict_probability(net, x, (7, 9, 8), overlap=0.5, device="cpu")
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    assert after == 2  # restored
    assert net.seen_threads and set(net.seen_threads) == ({1} if own_pool else {2})
    expected = 1.0 / (1.0 + np.exp(-(0.02 * (x[2].astype(np.float64) - 400.0))))
    np.testing.assert_allclose(pred.probability, expected, atol=2e-6)  # same result either way


def test_runtime_networks_declare_their_own_thread_pool():
    from breastlesionseg.runtime.backend import RunnableNetwork
    from breastlesionseg.runtime.eager import _EagerNetwork
    from breastlesionseg.runtime.openvino_backend import OpenVinoNetwork

    assert RunnableNetwork.runs_on_torch_threads and _EagerNetwork.runs_on_torch_threads
    assert not OpenVinoNetwork.runs_on_torch_threads
