"""The point tracker reusing the reconstructor's backward flow, on its own thread (offline),
and the pictures' thinned cloud."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.flow import DISFlow
from unihoi_ros.io.pictures import thinned
from unihoi_ros.pipeline import OracleBackend, Reconstructor
from unihoi_ros.sim import make_sequence
from unihoi_ros.tracks import PointTracker, TrackerConfig
from unihoi_ros.tracks.background import BackgroundTracker, TrackingError
from unihoi_ros.tracks.dense import reusable_flow
from unihoi_ros.tracks.klt import grey

FIELDS = ("ids", "xyz", "dynamic", "rgb", "uv", "visible", "age", "following")


@pytest.fixture(scope="module")
def clip():
    """A synthetic clip streamed with DIS flow (the flow ``unihoi process`` reuses): the
    results and, per result, the reconstructor's ``backward_flow``."""
    seq = make_sequence(seed=22, num_frames=16, height=120, width=160, num_tracks=96)
    rec = Reconstructor(OracleBackend(seq), DISFlow())
    results, flows = [], []
    for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
        rec.push(int(stamp), rgb)
        for r in rec.drain():
            results.append(r)
            flows.append(rec.backward_flow(r.stamp_ns))
    return seq, results, flows


def same_tracks(a, b) -> None:
    assert a.stamp_ns == b.stamp_ns
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_reusable_flow_checks_the_frame_and_size():
    flow = np.ones((4, 6, 2), np.float32)
    assert reusable_flow((flow, 7), 7, (4, 6)) is flow
    assert reusable_flow((flow, 7), 8, (4, 6)) is None  # points to another frame
    assert reusable_flow((flow, 7), 7, (6, 4)) is None  # another size
    assert reusable_flow((flow, 7), None, (4, 6)) is None  # no previous frame
    assert reusable_flow(None, 7, (4, 6)) is None


def test_reconstructor_hands_out_its_backward_flow(clip):
    seq, results, flows = clip
    assert flows[0] is None  # the stream's first frame has no previous frame
    dis = DISFlow()
    for i in (1, 5, len(results) - 1):
        flow, prev_stamp = flows[i]
        assert prev_stamp == results[i - 1].stamp_ns
        # The flow of the frames as processed, as DIS computes it on its own.
        np.testing.assert_array_equal(flow, dis.backward(results[i].rgb, results[i - 1].rgb))
    rec = Reconstructor(OracleBackend(seq), DISFlow())
    assert rec.backward_flow(int(seq.stamps_ns[0])) is None  # nothing buffered


def test_tracker_fed_its_own_backward_flow_gives_the_same_tracks(clip):
    _, results, _ = clip
    own, fed = PointTracker(), PointTracker()
    calls = {"n": 0}
    dense = fed._dense

    def counting(src, dst):
        calls["n"] += 1
        return dense(src, dst)

    fed._dense = counting
    prev = None
    for r in results:
        flow = None if prev is None else (dense(grey(r.rgb), grey(prev.rgb)), prev.stamp_ns)
        same_tracks(own.update(r), fed.update(r, flow))
        prev = r
    assert calls["n"] == len(results) - 1  # the forward flow only


def test_a_flow_of_another_frame_is_not_used(clip):
    _, results, _ = clip
    own, fed = PointTracker(), PointTracker()
    junk = np.full((results[0].height, results[0].width, 2), 40.0, np.float32)
    for i, r in enumerate(results):
        wrong = None if i == 0 else (junk, results[i - 1].stamp_ns + 1)
        same_tracks(own.update(r), fed.update(r, wrong))
    # The same junk flow pointing at the right frame is used: every forward-backward
    # check fails, no following track (seen only by its 2D track) stays seen.
    fed, own = PointTracker(), PointTracker()
    fed.update(results[0]), own.update(results[0])

    def followed(ts):
        return int(np.sum(ts.visible & ts.following & (ts.age > 0)))

    assert followed(own.update(results[1])) > 5
    assert followed(fed.update(results[1], (junk, results[0].stamp_ns))) == 0


def seen_in_both(seq, i: int, u: int, v: int) -> bool:
    """Pixel ``(u, v)`` of frame i shows a point seen in frame i-1 too: the exact flow's
    target is in view and not hidden behind a nearer surface."""
    du, dv = seq.flow_bwd[i - 1][v, u]
    pu, pv = int(np.rint(u + du)), int(np.rint(v + dv))
    if not (0 <= pu < seq.width and 0 <= pv < seq.height):
        return False
    return abs(seq.depth[i - 1][pv, pu] - seq.depth[i][v, u]) < 0.1 * seq.depth[i][v, u]


def step_errors(seq, results, flows, reuse: bool) -> np.ndarray:
    """Per 2D step of a track seen in consecutive frames, the distance (px) between where
    the clip's exact backward flow takes its new pixel and its previous pixel, where
    :func:`seen_in_both`."""
    tracker = PointTracker(TrackerConfig(max_tracks=96))
    errors, last = [], {}
    for i, r in enumerate(results):
        ts = tracker.update(r, flows[i] if reuse else None)
        for j in np.flatnonzero(ts.visible & (ts.age > 0)):
            tid = int(ts.ids[j])
            u, v = np.rint(ts.uv[j]).astype(int)
            if tid in last and seen_in_both(seq, i, u, v):
                errors.append(np.linalg.norm(ts.uv[j] + seq.flow_bwd[i - 1][v, u] - last[tid]))
        last = {int(t): ts.uv[k] for k, t in enumerate(ts.ids) if ts.visible[k]}
    return np.asarray(errors)


def test_reusing_the_pipeline_flow_keeps_the_2d_tracks(clip):
    seq, results, flows = clip
    own = step_errors(seq, results, flows, reuse=False)
    reused = step_errors(seq, results, flows, reuse=True)
    assert own.size > 500 and reused.size > 0.9 * own.size
    # Measured: within 0.5 px 0.967 own, 0.984 reused; median 0.026 / 0.023 px.
    assert np.mean(reused <= 0.5) >= np.mean(own <= 0.5) - 0.02
    assert np.median(reused) < 0.1


def test_background_tracker_gives_the_tracks_of_one_thread(clip):
    _, results, flows = clip
    got = []
    bg = BackgroundTracker(PointTracker(), lambda r, ts: got.append((r.stamp_ns, ts)))
    for r, f in zip(results, flows):
        bg.add(r, f)
    assert bg.close() == len(results)
    direct = PointTracker()
    assert [s for s, _ in got] == [r.stamp_ns for r in results]
    for (_, ts), r, f in zip(got, results, flows):
        same_tracks(ts, direct.update(r, f))


def test_background_tracker_reports_a_failure(clip):
    _, results, _ = clip

    def sink(r, ts):
        if r.stamp_ns == results[2].stamp_ns:
            raise OSError("disk full")

    bg = BackgroundTracker(PointTracker(), sink, queue_size=1)
    with pytest.raises(TrackingError, match="frame 2 failed: OSError: disk full"):
        for r in results:
            bg.add(r)
        bg.close()
    assert bg.close(raise_error=False) == 2
    with pytest.raises(RuntimeError, match="closed"):
        bg.add(results[0])


def test_thinned_keeps_every_kth_point():
    cloud = np.arange(30.0).reshape(10, 3)
    colors = np.arange(30).reshape(10, 3).astype(np.uint8)
    small, c = thinned(cloud, colors, max_points=4)
    np.testing.assert_array_equal(small, cloud[::3])  # k = ceil(10 / 4)
    np.testing.assert_array_equal(c, colors[::3])
    assert len(small) <= 4
    same, none = thinned(cloud, None, max_points=10)
    assert same is cloud and none is None
    with pytest.raises(ValueError):
        thinned(cloud, colors, max_points=0)


def test_offline_sessions_let_idle_threads_sleep():
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    import unihoi_ros
    from unihoi_ros.backends import onnxruntime_backend as orb

    graph = next((Path(unihoi_ros.__file__).parent / "model" / "weights").glob("*.onnx"))
    key = "session.intra_op.allow_spinning"

    def spinning(backend) -> str | None:
        try:
            return backend.session.get_session_options().get_session_config_entry(key)
        except RuntimeError:  # not set: ONNX Runtime's default (spinning)
            return None

    try:
        orb.set_idle_spinning(False)
        assert spinning(orb.OnnxRuntimeBackend(graph, threads=1)) == "0"
    finally:
        orb.set_idle_spinning(True)
    assert spinning(orb.OnnxRuntimeBackend(graph, threads=1)) is None  # the default
