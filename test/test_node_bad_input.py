"""Bad input never stops the node: each case is dropped (or reset), counted by reason in
diagnostics, logged once (rate-limited), and later good frames are still published.

In-process (memory transport, ground-truth backend); ``test_node_dds`` repeats a mix of
these over real DDS.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("cyclonedds")

from test_node_logic import DT, T0, MultiOracle, clip, feed, image, make_node, stamps_of

from unihoi_ros.ros import messages as M


def assert_recovers(node, tp, seq, first: int, n: int = 3, topic: str = "image", make=None):
    """Frames ``first..first+n-1`` of ``seq`` (good ones) are all published."""
    make = make or image
    feed(node, tp, [make(seq.rgb[first + k], first + k) for k in range(n)], topic)
    got = stamps_of(tp, "depth/image")
    assert got[-n:] == [T0 + (first + k) * DT for k in range(n)], "good frames after bad input"


@pytest.mark.parametrize("case", ["bayer_rggb8", "nan_32FC1", "nan_32FC3"])
def test_unsupported_encoding(case, caplog):
    """messages.image_to_rgb raises UnsupportedEncodingError for float images (32FC1 is an
    array encoding, 32FC3 none at all), so NaN-filled float frames never reach the network."""
    seq = clip()
    node, tp = make_node(seq)
    h, w = seq.rgb.shape[1:3]
    try:
        feed(node, tp, [image(seq.rgb[0], 0)])
        bad = []
        for k in range(5):
            stamp = T0 + (1 + k) * DT
            if case == "bayer_rggb8":
                m = image(seq.rgb[1 + k], 1 + k)
                m.encoding = "bayer_rggb8"
            elif case == "nan_32FC1":
                m = M.array_to_image(np.full((h, w), np.nan, np.float32), stamp, "camera")
            else:
                m = M.array_to_image(np.full((h, w * 3), np.nan, np.float32), stamp, "camera")
                m.encoding, m.width = "32FC3", w
            bad.append(m)
        with pytest.raises(M.UnsupportedEncodingError):
            M.image_to_rgb(bad[0])
        with caplog.at_level(logging.WARNING, logger="unihoi_ros.node"):
            feed(node, tp, bad)
        assert node.stats()["drops"] == {"unsupported_encoding": 5}
        warnings = [r for r in caplog.records if "unsupported encoding" in r.getMessage()]
        assert len(warnings) == 1, "logged once (rate-limited)"
        assert_recovers(node, tp, seq, 6)
        assert tp.spin_diagnostics().values["# of Missed Frames (unsupported_encoding)"] == 5
    finally:
        node.stop()


def test_malformed_raw_image():
    seq = clip()
    node, tp = make_node(seq)
    try:
        truncated = image(seq.rgb[0], 0)
        truncated.data = truncated.data[:-10]
        bad_step = image(seq.rgb[1], 1)
        bad_step.step = 3
        feed(node, tp, [truncated, bad_step])
        assert node.stats()["drops"] == {"malformed_image": 2}
        assert_recovers(node, tp, seq, 2)
    finally:
        node.stop()


def test_corrupt_compressed_frames():
    seq = clip()
    node, tp = make_node(seq, use_compressed=True)

    def png(rgb, i):  # lossless, so the ground-truth backend recognises the frame
        return M.rgb_to_compressed(rgb, T0 + i * DT, "camera", "png")

    try:
        feed(node, tp, [png(seq.rgb[0], 0)], "image/compressed")
        truncated = M.rgb_to_compressed(seq.rgb[1], T0 + DT, "camera", "jpeg")
        truncated.data = truncated.data[: len(truncated.data) // 2]
        garbage = png(seq.rgb[2], 2)
        garbage.data = np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)
        empty = png(seq.rgb[3], 3)
        empty.data = np.zeros(0, np.uint8)
        depth_fmt = png(seq.rgb[4], 4)
        depth_fmt.format = "16UC1; compressedDepth png"
        feed(node, tp, [truncated, garbage, empty, depth_fmt], "image/compressed")
        assert node.stats()["drops"] == {"corrupt_compressed": 3, "unsupported_encoding": 1}
        assert_recovers(node, tp, seq, 5, topic="image/compressed", make=png)
    finally:
        node.stop()


def test_resolution_change_mid_stream_resets_and_goes_on():
    big, small = clip(), clip(1, 4, 36, 48)
    node, tp = make_node(big, small, subscribers=1)
    try:
        feed(node, tp, [image(big.rgb[i], i) for i in range(4)])
        feed(node, tp, [image(small.rgb[k], 4 + k) for k in range(4)])
        stats = node.stats()
        assert stats["resolution_changes"] == 1 and stats["missed"] == 0
        depth = tp.messages("depth/image")
        assert [(d.height, d.width) for d in depth] == [(48, 64)] * 4 + [(36, 48)] * 4
        info = tp.messages("depth/camera_info")[-1]
        assert (info.height, info.width) == (36, 48)
        assert len(tp.messages("trajectory")[-1].poses) == 4, "a new world frame: path restarts"
        np.testing.assert_allclose(
            tp.tf[4].transforms[0].transform.translation.x, 0.0, atol=1e-9)  # new origin
        assert tp.spin_diagnostics().values["# of Resolution Changes"] == 1
    finally:
        node.stop()


def test_duplicate_out_of_order_and_time_jump():
    seq = clip()
    node, tp = make_node(seq)
    try:
        msgs = [image(seq.rgb[i], i) for i in range(4)]
        dup = image(seq.rgb[4], 3)  # same stamp as frame 3
        old = image(seq.rgb[5], 1)  # 67 ms back: out of order
        feed(node, tp, [*msgs, dup, old])
        stats = node.stats()
        assert stats["drops"] == {"duplicate_stamp": 1, "out_of_order": 1}
        assert stamps_of(tp, "depth/image") == [T0 + i * DT for i in range(4)]
        # A jump back by more than a second (a looping bag) starts a new stream instead.
        back = [M.rgb_to_image(seq.rgb[6 + k], 10 + k * DT, "camera") for k in range(3)]
        feed(node, tp, back)
        stats = node.stats()
        assert stats["time_jumps"] == 1 and stats["missed"] == 2
        assert stamps_of(tp, "depth/image")[-3:] == [10 + k * DT for k in range(3)]
    finally:
        node.stop()


def test_camera_info_that_never_arrives(caplog):
    seq = clip()
    # 1.5 s: the first frame arrives well within it even on a busy machine
    node, tp = make_node(seq, use_camera_info=True, camera_info_timeout_s=1.5)
    try:
        feed(node, tp, [image(seq.rgb[0], 0)])
        assert stamps_of(tp, "depth/image") == [], "waits for camera_info first"
        import time

        time.sleep(1.6)
        with caplog.at_level(logging.WARNING, logger="unihoi_ros.node"):
            feed(node, tp, [image(seq.rgb[i], i) for i in range(1, 6)])
        assert stamps_of(tp, "depth/image") == [T0 + i * DT for i in range(1, 6)]
        stats = node.stats()
        assert stats["camera_info_timeouts"] == 1
        assert stats["frames_without_camera_info"] == 5
        msgs = [r.getMessage() for r in caplog.records if "camera_info" in r.getMessage()]
        assert len(msgs) == 1 and "predicted intrinsics" in msgs[0]
        rep = tp.spin_diagnostics()
        assert rep.level == M.DIAG_WARN and "camera_info" in rep.message
        assert rep.values["# of Frames Without Camera Info"] == 5
        np.testing.assert_allclose(  # the predicted (here: ground-truth) K is used
            np.asarray(tp.messages("depth/camera_info")[-1].k).reshape(3, 3), seq.K)
    finally:
        node.stop()


def test_inference_error_is_counted_and_the_stream_goes_on():
    seq = clip()
    node, tp = make_node(seq, backend=MultiOracle(seq, fail_on={3}))
    try:
        feed(node, tp, [image(seq.rgb[i], i) for i in range(7)])
        stats = node.stats()
        assert stats["drops"] == {"inference_error": 1}
        assert stamps_of(tp, "depth/image") == [T0 + i * DT for i in range(7) if i != 3]
        assert tp.spin_diagnostics().values["# of Missed Frames (inference_error)"] == 1
    finally:
        node.stop()


def test_first_window_with_degenerate_pose_solves_is_published():
    from unihoi_ros.backends.base import Backend, WindowPrediction
    from unihoi_ros.flow import DISFlow
    from unihoi_ros.pipeline import Reconstructor

    class NoConfidence(Backend):  # confidence 0 everywhere: every pair solve of a window fails
        name, device, num_frames = "zero", "cpu", 4

        def encode(self, rgb):
            return None

        def infer_window(self, features, rgbs, flows_bwd):
            h, w = rgbs[0].shape[:2]
            return WindowPrediction(np.ones((4, h, w), np.float32), np.array(
                [[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]]), np.zeros((3, h, w), np.float32))

    rec = Reconstructor(NoConfidence(), DISFlow("medium"))
    seq = clip()
    result = rec.push(T0, seq.rgb[0])
    # The first frame defines the world: its warm-up window repeats it, which is no motion
    # whatever the confidence says.
    assert result is not None and result.pose_ok
    np.testing.assert_array_equal(result.T_world_cam, np.eye(4))
    # The next frame's pair solve fails: published, flagged, and it keeps the last pose.
    result = rec.push(T0 + DT, seq.rgb[1])
    assert result is not None and not result.pose_ok and "pose_degenerate" in result.flags
    np.testing.assert_array_equal(result.T_world_cam, np.eye(4))
