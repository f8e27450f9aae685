"""Progress protocol helpers: stage weighting, JSON lines, console bar, scaled sub-progress."""
from __future__ import annotations

import io
import json

import pytest

from breastlesionseg.progress import ConsoleProgressBar, JsonLinesProgress, StageProgress, scaled


def test_stage_progress_maps_stage_fractions_to_monotone_overall_fraction():
    seen = []
    sp = StageProgress([("a", 1.0), ("b", 3.0)], lambda s, f, m="": seen.append((s, f)))
    sp.update("a", 0.5)
    sp.update("a", 1.0)
    sp.update("b", 0.5)
    sp.update("a", 0.2)  # late report of an earlier stage must not move the bar back
    sp.update("b", 1.0)
    assert [round(f, 6) for _, f in seen] == [0.125, 0.25, 0.625, 0.625, 1.0]
    with pytest.raises(ValueError, match="unknown progress stage 'c'"):
        sp.update("c", 0.1)
    with pytest.raises(ValueError, match="weights must be positive"):
        StageProgress([("a", 0.0)], None)


def test_json_lines_follow_the_design_protocol():
    buf = io.StringIO()
    em = JsonLinesProgress(buf)
    em("inference", 0.25, "window 1/4")
    em.epoch(3, 20, train_loss=0.41, val_dice=float("nan"))
    em.done("/tmp/out")
    em.error("bad input")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines[0] == {"event": "progress", "stage": "inference", "fraction": 0.25, "message": "window 1/4"}
    assert lines[1] == {"event": "epoch", "epoch": 3, "epochs": 20, "train_loss": 0.41, "val_dice": None}
    assert lines[2] == {"event": "done", "output": "/tmp/out"}
    assert lines[3] == {"event": "error", "message": "bad input"}


def test_json_lines_throttle_keeps_stage_changes_and_the_end():
    buf = io.StringIO()
    em = JsonLinesProgress(buf, min_interval_s=60.0)
    for i in range(10):
        em("inference", i / 10)
    em("postprocess", 0.95)
    em("postprocess", 1.0)
    fractions = [json.loads(line)["fraction"] for line in buf.getvalue().splitlines()]
    assert fractions == [0.0, 0.95, 1.0]


def test_scaled_maps_into_interval_and_never_decreases():
    seen = []
    sub = scaled(lambda s, f, m="": seen.append((s, f)), 0.2, 0.6)
    sub("x", 0.0)
    sub("x", 0.5)
    sub("y", 0.25)  # a later stage restarting its own fraction must not move back
    sub("y", 1.0)
    assert [(s, round(f, 6)) for s, f in seen] == [("x", 0.2), ("x", 0.4), ("y", 0.4), ("y", 0.6)]
    assert scaled(None, 0, 1) is None


def test_console_bar_non_tty_prints_one_line_per_stage():
    buf = io.StringIO()
    bar = ConsoleProgressBar(buf, width=10, min_interval_s=0.0)
    bar("load", 0.0)
    bar("load", 0.05)
    bar("inference", 0.5, "window 3/6")
    bar("inference", 1.0)
    lines = buf.getvalue().splitlines()
    assert lines == ["[..........]   0% load", "[#####.....]  50% inference: window 3/6", "[##########] 100% inference"]
