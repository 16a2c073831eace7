"""The reconstructor's one entry (:meth:`Reconstructor.feed`): the stream gate's stamp and
size rules, backend failures (reset, counted) against bugs (they propagate), and batch
callers (:meth:`push` / :meth:`flush`) mixed with :meth:`feed` losing no result."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.errors import InferenceError
from unihoi_ros.flow import GroundTruthFlow
from unihoi_ros.pipeline import OracleBackend, Reconstructor, ReconstructorConfig
from unihoi_ros.pipeline.gate import StreamGate
from unihoi_ros.pipeline.outcome import TIME_JUMP_NS, DropReason, ResetReason
from unihoi_ros.sim import make_sequence

T0 = 5_000_000_000


def test_gate_stamp_rules():
    gate = StreamGate()
    for stamp in (T0, T0 + 1):  # admitted: no drop, no reset
        outcome = gate.check_stamp(stamp)
        assert (outcome.dropped, outcome.reset) == (None, None)
    assert gate.last_stamp == T0 + 1
    assert gate.check_stamp(T0 + 1).dropped is DropReason.DUPLICATE_STAMP
    assert gate.check_stamp(T0).dropped is DropReason.OUT_OF_ORDER
    assert gate.check_stamp(T0 + 1 - TIME_JUMP_NS).dropped is DropReason.OUT_OF_ORDER
    jump = gate.check_stamp(T0 - TIME_JUMP_NS)  # older by more than TIME_JUMP_NS
    assert jump.reset is ResetReason.TIME_JUMP and jump.dropped is None
    assert "jumped back 1.000 s" in jump.message and gate.last_stamp == T0 - TIME_JUMP_NS
    # record=False: the stamp is judged, not taken
    assert gate.check_stamp(T0 + 10, record=False).dropped is None
    assert gate.last_stamp == T0 - TIME_JUMP_NS and not gate.checked(T0 + 10)
    assert gate.check_stamp(T0 + 20).dropped is None and gate.checked(T0 + 20)


def test_gate_size_rule():
    gate = StreamGate()
    assert gate.check_size((48, 64)).reset is None
    gate.admit(T0, (48, 64))
    assert gate.check_size((48, 64)).reset is None
    changed = gate.check_size((60, 80))
    assert changed.reset is ResetReason.RESOLUTION_CHANGE
    assert "(48, 64) -> (60, 80)" in changed.message


class Failing(OracleBackend):
    """Ground truth, but the window of frame ``fail_at`` raises (a backend failure)."""

    def __init__(self, seq, fail_at: int) -> None:
        super().__init__(seq)
        self.fail_at = fail_at

    def infer_window(self, features, rgbs, flows_bwd, **kw):
        if features[-1] == self.fail_at:
            raise RuntimeError("device lost")
        return super().infer_window(features, rgbs, flows_bwd, **kw)


def test_backend_failure_resets_the_stream_and_keeps_the_cause():
    seq = make_sequence(seed=3, num_frames=6, height=48, width=64)
    rec = Reconstructor(Failing(seq, fail_at=3), GroundTruthFlow(seq))
    outs = [rec.feed(int(s), f) for s, f in zip(seq.stamps_ns, seq.rgb)]
    failed = outs[3]
    assert failed.dropped is DropReason.INFERENCE_ERROR
    assert failed.reset is ResetReason.INFERENCE_ERROR and failed.results == []
    assert isinstance(failed.error, InferenceError)
    assert isinstance(failed.error.__cause__, RuntimeError)  # the backend's own traceback
    assert "device lost" in failed.message
    assert [len(o.results) for o in outs] == [1, 1, 1, 0, 1, 1]
    # the next frame starts a new world frame
    np.testing.assert_allclose(outs[4].results[0].T_world_cam, np.eye(4), atol=1e-12)
    stats = rec.stats()
    assert stats["drops"] == {"inference_error": 1} and stats["counts"]["resets"] == 1


class BrokenFlow(GroundTruthFlow):
    def backward(self, *args, **kwargs):
        raise ZeroDivisionError("a bug in the flow")


def test_a_bug_outside_the_backend_propagates():
    seq = make_sequence(seed=3, num_frames=3, height=48, width=64)
    rec = Reconstructor(OracleBackend(seq), BrokenFlow(seq))
    assert len(rec.feed(int(seq.stamps_ns[0]), seq.rgb[0]).results) == 1  # no flow yet
    with pytest.raises(ZeroDivisionError, match="a bug in the flow"):
        rec.feed(int(seq.stamps_ns[1]), seq.rgb[1])


def test_feed_and_push_mixed_lose_no_result():
    seq = make_sequence(seed=4, num_frames=9, height=48, width=64)
    rec = Reconstructor(OracleBackend(seq), GroundTruthFlow(seq), ReconstructorConfig(stride=2))
    got = []
    for i, (s, f) in enumerate(zip(seq.stamps_ns, seq.rgb)):
        if i % 3 == 0:
            got += rec.feed(int(s), f).results
        else:
            rec.push(int(s), f)
            if i % 3 == 2:
                got += rec.drain()
    got += rec.flush()  # the last frame waits for a window of stride 2
    assert sorted(r.stamp_ns for r in got) == [int(s) for s in seq.stamps_ns]
    assert len({r.stamp_ns for r in got}) == len(got)


def test_feed_returns_the_same_results_as_push_and_flush():
    seq = make_sequence(seed=5, num_frames=7, height=48, width=64)
    cfg = ReconstructorConfig(stride=3)
    a = Reconstructor(OracleBackend(seq), GroundTruthFlow(seq), cfg)
    b = Reconstructor(OracleBackend(seq), GroundTruthFlow(seq), cfg)
    fed = [r for s, f in zip(seq.stamps_ns, seq.rgb) for r in a.feed(int(s), f).results]
    fed += a.flush()
    for s, f in zip(seq.stamps_ns, seq.rgb):
        b.push(int(s), f)
    pushed = b.flush()
    assert [r.stamp_ns for r in fed] == [r.stamp_ns for r in pushed] == list(seq.stamps_ns)
    for x, y in zip(fed, pushed):
        np.testing.assert_array_equal(x.T_world_cam, y.T_world_cam)
        np.testing.assert_array_equal(x.depth, y.depth)
