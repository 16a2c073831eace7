"""Frames lost before arrival, estimated from the camera's stamps (unihoi_ros.ros.input_loss),
and the node's totals that carry it (diagnostics, the shutdown summary line)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from unihoi_ros.ros.input_loss import InputLossEstimator, frames_missing

PERIOD = 100_000_000  # 10 Hz, ns


def _estimate(stamps) -> InputLossEstimator:
    est = InputLossEstimator()
    for s in stamps:
        est.add(int(s))
    return est


def test_frames_missing_rounds_gaps_to_periods():
    assert frames_missing(PERIOD, PERIOD) == 0
    assert frames_missing(int(1.4 * PERIOD), PERIOD) == 0  # jitter, not a lost frame
    assert frames_missing(int(1.6 * PERIOD), PERIOD) == 1
    assert frames_missing(3 * PERIOD, PERIOD) == 2
    assert frames_missing(0, PERIOD) == frames_missing(-PERIOD, PERIOD) == 0
    assert frames_missing(51 * PERIOD, PERIOD) == 0  # a pause, not loss
    assert frames_missing(5 * PERIOD, 0) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_equals_the_frames_removed(seed):
    """A jittery 10 Hz camera loses a random 30 % of 300 frames (runs of up to 4 in a row
    included): the estimate is the number removed, exactly."""
    rng = np.random.default_rng(seed)
    n = 300
    stamps = np.arange(n) * PERIOD + 1_000_000_000 + rng.normal(0, 0.05 * PERIOD, n)
    keep = rng.random(n) > 0.3
    keep[:2] = keep[-1] = True  # losses at the very ends have no gap to show them
    keep[100:104] = False
    est = _estimate(stamps[keep])
    assert est.lost == int((~keep).sum())
    assert est.period_ms == pytest.approx(100.0, rel=0.06)


def test_no_loss_no_estimate_and_stream_restarts_are_not_loss():
    stamps = list(np.arange(20) * PERIOD + 5)
    stamps += list(np.arange(20) * PERIOD + 5)  # a bag looping: stamps jump back
    stamps += [stamps[-1] + 200 * PERIOD]  # a paused camera
    stamps += [stamps[-1]]  # a duplicate
    assert _estimate(stamps).lost == 0


def test_losses_among_the_first_gaps_are_counted_once_the_period_is_known():
    stamps = [0, PERIOD, 3 * PERIOD, 4 * PERIOD, 5 * PERIOD, 6 * PERIOD, 9 * PERIOD]
    est = _estimate(stamps)
    assert est.lost == 1 + 2
    assert _estimate(stamps[:3]).lost == 0 and _estimate(stamps[:3]).period_ms is None


def test_node_diagnostics_and_summary_line_report_the_loss(caplog):
    """Frames 3 and 7-8 of a 12-frame clip never arrive: the node's diagnostics say about 3
    frames were lost before arrival (WARN), and the shutdown summary line gives received,
    processed, published and the estimate."""
    pytest.importorskip("rosbags")
    pytest.importorskip("cyclonedds")
    from test_node_logic import clip, feed, image, make_node

    from unihoi_ros.ros import messages as M

    seq = clip()
    node, tp = make_node(seq)
    sent = [i for i in range(12) if i not in (3, 7, 8)]
    try:
        tp.spin_diagnostics()
        feed(node, tp, [image(seq.rgb[i], i) for i in sent])
        rep = tp.spin_diagnostics()
        assert rep.values["# of Frames Lost Before Arrival (est. from stamps)"] == 3
        assert rep.values["Input Period From Stamps (ms)"] == pytest.approx(33.333, rel=1e-3)
        assert rep.level == M.DIAG_WARN and "about 3 input frame(s) lost" in rep.message
        assert tp.spin_diagnostics().values[
            "# of Frames Lost Before Arrival (est. from stamps)"] == 3
    finally:
        with caplog.at_level(logging.INFO, logger="unihoi_ros.node"):
            node.stop()
            node.stop()  # a second stop says nothing more
    stats = node.stats()
    assert (stats["received"], stats["processed"], stats["published"]) == (9, 9, 9)
    lines = [r.getMessage() for r in caplog.records if "summary:" in r.getMessage()]
    assert lines == ["unihoi_node summary: received 9 frame(s) (about 3 lost before arrival, "
                     "from the camera's stamps), processed 9, published 9, dropped 0"]


def test_summary_line_gives_drops_by_reason():
    pytest.importorskip("rosbags")
    pytest.importorskip("cyclonedds")
    from test_node_logic import MultiOracle, clip, image, make_node

    seq = clip()
    node, tp = make_node(seq, backend=MultiOracle(seq, delay_s=0.25), live_mode=True)
    try:
        for i in range(6):  # a burst while inference is busy: pending frames replaced
            tp.inject("image", image(seq.rgb[i], i))
        tp.inject("image", image(seq.rgb[6], 5))  # a repeated stamp
        assert node.wait_idle(30)
    finally:
        node.stop()
    st = node.stats()
    busy, dup = st["drops"].get("busy", 0), st["drops"].get("duplicate_stamp", 0)
    assert busy >= 4 and st["missed"] == busy + dup and st["received"] == 7
    assert node.summary_line().endswith(
        f"processed {st['processed']}, published {st['published']}, dropped {busy + dup} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(st["drops"].items())) + ")")
    assert st["processed"] == 7 - busy - dup  # what the worker took and fed
