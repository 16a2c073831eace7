"""A lab's first hour with the node (memory transport): any camera on a fixed-size graph,
frames that fit the robot's TF tree, distorted cameras, and diagnostics that notice."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("cyclonedds")

from test_node_logic import DT, T0, clip, feed, make_node, stamps_of

from unihoi_ros.geometry.frames import body_world_pose
from unihoi_ros.pipeline.rectify import Rectifier, has_distortion
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.node import UnihoiNode
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.transport import MemoryTransport


def _image(rgb, i, frame_id="head_cam_color_optical_frame"):
    return M.rgb_to_image(rgb, T0 + i * DT, frame_id)


def _quat_matrix(q) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()


# --------------------------------------------------------------------------- frames
def test_outputs_follow_the_input_frame_id_and_world_has_body_axes():
    seq = clip()
    node, tp = make_node(seq, subscribers=1, world_frame="unihoi_world", camera_frame="")
    try:
        feed(node, tp, [_image(rgb, i) for i, rgb in enumerate(seq.rgb)])
    finally:
        node.stop()
    cam = "head_cam_color_optical_frame"
    for topic in ("depth/image", "depth/camera_info", "confidence/image", "points"):
        assert {m.header.frame_id for m in tp.messages(topic)} == {cam}, topic
    tf = [t for msg in tp.tf for t in msg.transforms]
    assert {(t.header.frame_id, t.child_frame_id) for t in tf} == {("unihoi_world", cam)}
    assert NodeParams.load().world_frame not in ("odom", "map")
    # The first TF of the stream: optical -> REP-103 body rotation, at the origin.
    first = tf[0].transform
    np.testing.assert_allclose(_quat_matrix(first.rotation),
                               [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    assert np.allclose([first.translation.x, first.translation.y, first.translation.z], 0)
    # Every later TF: the ground-truth pose, rotated into body axes (oracle backend).
    last = tf[-1].transform
    expected = body_world_pose(np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam[-1])
    # (poses are estimated from flow: close, not exact; without the rotation to body axes
    # they would be 90+ degrees off)
    dR = _quat_matrix(last.rotation).T @ expected[:3, :3]
    assert np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))) < 1.5
    np.testing.assert_allclose([last.translation.x, last.translation.y, last.translation.z],
                               expected[:3, 3], atol=0.01)
    # `pose`: one PoseStamped per frame in the world frame; the Path agrees with it.
    poses = tp.messages("pose")
    assert stamps_of(tp, "pose") == [T0 + i * DT for i in range(len(seq.rgb))]
    assert {p.header.frame_id for p in poses} == {"unihoi_world"}
    path = tp.messages("trajectory")[-1]
    assert path.header.frame_id == "unihoi_world" and len(path.poses) == len(poses)
    assert path.poses[-1].pose.position.x == pytest.approx(poses[-1].pose.position.x)


def test_empty_input_frame_id_falls_back_and_parameter_overrides():
    seq = clip(frames=6)
    node, tp = make_node(seq, camera_frame="")
    try:
        feed(node, tp, [_image(rgb, i, frame_id="") for i, rgb in enumerate(seq.rgb)])
    finally:
        node.stop()
    assert {m.header.frame_id for m in tp.messages("depth/image")} == {"camera_optical_frame"}
    node, tp = make_node(seq, camera_frame="my_cam_optical")
    try:
        feed(node, tp, [_image(rgb, i) for i, rgb in enumerate(seq.rgb)])
    finally:
        node.stop()
    assert {m.header.frame_id for m in tp.messages("depth/image")} == {"my_cam_optical"}


def test_body_world_pose_is_a_rotation_of_the_world():
    rng = np.random.default_rng(0)
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=1).as_matrix()
    T[:3, 3] = rng.normal(size=3)
    B = body_world_pose(T)
    # Camera z (forward) in the optical world is body x; relative motion is preserved.
    np.testing.assert_allclose(body_world_pose(np.eye(4))[:3, 2], [1, 0, 0])
    np.testing.assert_allclose(np.linalg.inv(B) @ body_world_pose(T @ T), T, atol=1e-12)


# --------------------------------------------------------------------------- fixed-size graph
@pytest.fixture(scope="module")
def onnx_112x154(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from unihoi_ros.backends.factory import load_backend, load_network
    from unihoi_ros.model.export import export_onnx

    net, _, _ = load_network("random:tiny")
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "tiny_112x154.onnx", 112, 154)
    loader = lambda: load_backend("random:tiny", "onnxruntime", "cpu", onnx_path=str(path))  # noqa: E731
    loader.path = path
    return loader


def test_unihoi_process_serves_any_camera_on_a_fixed_size_graph(onnx_112x154, tmp_path):
    import cv2

    from unihoi_ros.cli import main as cli_main
    from unihoi_ros.io import load_run

    video = tmp_path / "cam.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (160, 120))
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for i in range(6):
        vw.write(np.roll(base, 2 * i, axis=1))
    vw.release()
    out = tmp_path / "out"
    assert cli_main(["process", str(video), "-o", str(out), "--model", "random:tiny",
                     "--backend", "onnxruntime", "--device", "cpu", "--onnx-file",
                     str(onnx_112x154.path), "--no-progress"]) == 0
    pred = load_run(out)
    assert pred.depth.shape == (6, 112, 154)
    assert np.all(pred.K[:, 0, 2] < 154) and np.all(pred.K[:, 1, 2] < 112)


@pytest.mark.parametrize("camera_hw", [(120, 160), (480, 640)])
def test_fixed_size_graph_serves_any_camera(onnx_112x154, camera_hw):
    backend = onnx_112x154()
    assert tuple(backend.input_size) == (112, 154)
    params = NodeParams.load(overrides={"live_mode": False, "use_camera_info": False})
    tp = MemoryTransport()
    node = UnihoiNode(params, backend, tp)
    node.start()
    assert "154x112" in node.startup_summary()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (*camera_hw, 3), dtype=np.uint8)
    frames = [np.roll(base, 2 * i, axis=1) for i in range(6)]
    try:
        feed(node, tp, [_image(f, i) for i, f in enumerate(frames)], timeout=120)
        stats = node.stats()
    finally:
        node.stop()
    assert stats["published"] == len(frames) and stats["missed"] == 0, stats
    for depth, info in zip(tp.messages("depth/image"), tp.messages("depth/camera_info")):
        assert (depth.height, depth.width) == (info.height, info.width) == (112, 154)
        assert depth.header.stamp == info.header.stamp


def test_fixed_size_graph_scales_a_known_K(onnx_112x154):
    """use_camera_info with a 480x640 camera: the published K is the camera's, scaled."""
    backend = onnx_112x154()
    params = NodeParams.load(overrides={"live_mode": False, "use_camera_info": True,
                                        "camera_info_slop_s": 0.001})
    tp = MemoryTransport()
    node = UnihoiNode(params, backend, tp)
    node.start()
    K = np.array([[500.0, 0, 319.5], [0, 505.0, 239.5], [0, 0, 1]])
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    try:
        for i in range(3):
            img = _image(np.roll(frame, i, axis=1), i)
            info = M.camera_info_msg(K, 640, 480, T0 + i * DT, "cam")
            tp.inject("camera_info", info)
            tp.inject("image", img)
        assert node.wait_idle(60)
    finally:
        node.stop()
    got = np.asarray(tp.messages("depth/camera_info")[-1].k).reshape(3, 3)
    sx, sy = 154 / 640, 112 / 480  # half-pixel aware: (c + 0.5) * s - 0.5
    np.testing.assert_allclose(got[0], [500 * sx, 0, (319.5 + 0.5) * sx - 0.5], rtol=1e-9)
    np.testing.assert_allclose(got[1], [0, 505 * sy, (239.5 + 0.5) * sy - 0.5], rtol=1e-9)


# --------------------------------------------------------------------------- distortion
def _smooth_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([np.sin(x / 9.0), np.cos(y / 7.0), np.sin((x + y) / 11.0)], -1)
    return ((img + 1.0) * 127.5).astype(np.float32)


def _distort(img: np.ndarray, K: np.ndarray, D: np.ndarray) -> np.ndarray:
    """The image a camera with distortion D sees (each distorted pixel samples the
    undistorted image where it really points)."""
    import cv2

    h, w = img.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = np.stack([u.ravel(), v.ravel()], -1).reshape(-1, 1, 2)
    und = cv2.undistortPoints(pts, K, D, P=K).reshape(h, w, 2).astype(np.float32)
    return cv2.remap(img, und[..., 0], und[..., 1], cv2.INTER_LINEAR)


def test_rectifier_undoes_plumb_bob_distortion():
    h, w = 120, 160
    K = np.array([[110.0, 0, 79.5], [0, 112.0, 59.5], [0, 0, 1]])
    D = np.array([-0.25, 0.08, 0.001, -0.001, 0.0])
    truth = _smooth_image(h, w)
    distorted = _distort(truth, K, D)
    rect = Rectifier().rectify(distorted, K, D, "plumb_bob")
    inner = (slice(20, -20), slice(25, -25))
    err_before = np.abs(distorted[inner] - truth[inner]).mean()
    err_after = np.abs(rect[inner] - truth[inner]).mean()
    assert err_after < 2.0 and err_after < 0.1 * err_before, (err_before, err_after)
    assert has_distortion(D) and not has_distortion(np.zeros(5)) and not has_distortion(None)
    with pytest.raises(ValueError, match="not supported"):
        Rectifier().rectify(distorted, K, D, "kannala_brandt_9")


def test_node_rectifies_distorted_cameras_and_refuses_unknown_models():
    from unihoi_ros.backends.factory import load_backend

    seq = clip(frames=6)
    backend = load_backend("random:tiny", "torch", "cpu")  # rectified pixels: no oracle
    for model, expect in (("plumb_bob", "rectified_frames"), ("weird", "distortion_refused")):
        node, tp = make_node(seq, backend=backend, use_camera_info=True,
                             camera_info_slop_s=0.001)
        try:
            for i, rgb in enumerate(seq.rgb):
                info = M.camera_info_msg(seq.K, seq.rgb.shape[2], seq.rgb.shape[1],
                                         T0 + i * DT, "cam")
                info.d = np.array([-0.1, 0.01, 0.0, 0.0, 0.0])
                info.distortion_model = model
                tp.inject("camera_info", info)
                tp.inject("image", _image(rgb, i))
            assert node.wait_idle(30)
            stats = node.stats()
        finally:
            node.stop()
        assert stats[expect] == len(seq.rgb) and stats["published"] == len(seq.rgb), stats
        for info in tp.messages("depth/camera_info"):
            assert not np.any(np.asarray(info.d))  # outputs describe a pinhole image


# --------------------------------------------------------------------------- diagnostics
class SilentTransport(MemoryTransport):
    def __init__(self, publishers: int | None) -> None:
        super().__init__()
        self.n = publishers

    def input_publisher_count(self, topic: str) -> int | None:
        return self.n


def _node(transport, **overrides):
    seq = clip(frames=4)
    from test_node_logic import MultiOracle

    params = NodeParams.load(overrides={"live_mode": False, **overrides})
    node = UnihoiNode(params, MultiOracle(seq), transport)
    node.start()
    return node, seq


def test_diagnostics_warn_naming_the_topic_without_publisher_or_input():
    node, _ = _node(SilentTransport(0), image_topic="/cam/image_raw")
    try:
        rep = node.diagnostics_report()
    finally:
        node.stop()
    assert rep.level == M.DIAG_WARN and rep.message == "no publisher on the input topic " \
        "/cam/image_raw"
    # 1.5 s: the first report comes well within it even on a busy machine
    node, _ = _node(SilentTransport(1), image_topic="/cam/image_raw", input_timeout_s=1.5)
    try:
        assert node.diagnostics_report().level == M.DIAG_OK  # just started
        time.sleep(1.7)
        rep = node.diagnostics_report()
        assert rep.level == M.DIAG_WARN and "no input on /cam/image_raw for" in rep.message
    finally:
        node.stop()


def test_diagnostics_error_with_the_reason_when_everything_is_dropped():
    node, seq = _node(MemoryTransport())
    tp = node.transport
    try:
        node.diagnostics_report()
        bad = [M.rgb_to_image(rgb, T0 + i * DT, "c") for i, rgb in enumerate(seq.rgb)]
        for m in bad:
            m.encoding = "32FC1"  # not a colour image: dropped as unsupported
        feed(node, tp, bad)
        rep = node.diagnostics_report()
    finally:
        node.stop()
    assert rep.level == M.DIAG_ERROR
    assert rep.message == ("frames arrive but nothing is published: every frame dropped "
                           f"(unsupported_encoding x{len(bad)})"), rep.message


# --------------------------------------------------------------------------- tracks
def test_tracks_published_only_while_subscribed_with_stable_ids():
    seq = clip(frames=10, height=60, width=80)
    node, tp = make_node(seq, subscribers=0)
    tracks_pub = tp.publishers[tp.resolve("tracks")]
    try:
        feed(node, tp, [_image(rgb, i) for i, rgb in enumerate(seq.rgb[:3])])
        assert tp.messages("tracks") == []  # nobody listens: not even built
        tracks_pub.subscribers = 1
        feed(node, tp, [_image(rgb, i + 3) for i, rgb in enumerate(seq.rgb[3:])])
    finally:
        node.stop()
    msgs = tp.messages("tracks")
    assert len(msgs) == len(seq.rgb) - 3
    assert {m.header.frame_id for m in msgs} == {node.params.world_frame}
    names = [f.name for f in msgs[0].fields]
    assert names == ["x", "y", "z", "id", "dynamic", "rgb"] and msgs[0].point_step == 24
    data = [np.frombuffer(np.asarray(m.data, np.uint8).tobytes(), M.TRACKS_DTYPE) for m in msgs]
    assert all(len(d) > 0 and np.isfinite(d["x"]).all() for d in data)
    ids = [set(d["id"].tolist()) for d in data]
    assert all(len(a & b) >= 0.5 * len(a) for a, b in itertools.pairwise(ids))  # persist
    # Static points are published in the body-axes world: the scene lies in front (+x).
    static = data[-1][data[-1]["dynamic"] == 0]
    assert np.median(static["x"]) > 0.1
