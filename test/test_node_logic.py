"""UnihoiNode in-process (memory transport, ground-truth backend): parameters, queueing,
outputs, diagnostics, camera_info, the backend factory and the ``run`` command's wiring.

Also provides the helpers :func:`make_node` and :class:`MultiOracle` to
``test_node_bad_input``.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")

from unihoi_ros.backends.base import Backend
from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.pipeline import OracleBackend
from unihoi_ros.pipeline.outcome import DropReason
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.frame_queue import FrameQueue, InputFrame
from unihoi_ros.ros.node import UnihoiNode
from unihoi_ros.ros.params import (
    NodeParams,
    default_params_file,
    param_descriptions,
    read_params_file,
)
from unihoi_ros.ros.path_serializer import PathSerializer
from unihoi_ros.ros.ratelog import RateLimitedLog
from unihoi_ros.ros.transport import ApproximatePairer, MemoryTransport
from unihoi_ros.sim import make_sequence

BUSY = DropReason.BUSY.value

T0 = 1_000_000_000
DT = 33_333_333
ODOM, CAMERA = "odom_t", "cam_t_optical_frame"


# --------------------------------------------------------------------------- helpers
class MultiOracle(Backend):
    """Ground truth of several synthetic clips (frames recognised by their pixels)."""

    name = "oracle"
    device = "cpu"
    num_frames = 4
    model_source = "oracle (ground truth)"

    def __init__(self, *sequences, delay_s: float = 0.0, fail_on: set[int] | None = None):
        self._oracles = [OracleBackend(s) for s in sequences]
        self.delay_s = delay_s
        self.fail_on = fail_on or set()  # sequence-0 frame indices whose window raises

    def encode(self, rgb):
        for k, oracle in enumerate(self._oracles):
            try:
                return (k, oracle.encode(rgb))
            except KeyError:
                continue
        raise KeyError("frame is in none of the clips")

    def infer_window(self, features, rgbs, flows_bwd):
        if self.delay_s:
            time.sleep(self.delay_s)
        k, idx = features[-1]
        if k == 0 and idx in self.fail_on:
            raise RuntimeError(f"injected failure on frame {idx}")
        return self._oracles[k].infer_window([f[1] for f in features], rgbs, flows_bwd)


_SEQ_CACHE: dict = {}


def clip(seed: int = 0, frames: int = 12, height: int = 48, width: int = 64):
    key = (seed, frames, height, width)
    if key not in _SEQ_CACHE:
        _SEQ_CACHE[key] = make_sequence(seed, frames, height, width)
    return _SEQ_CACHE[key]


def make_node(*sequences, backend=None, subscribers: int = 0, **overrides):
    """A started node on a memory transport (replay mode unless overridden)."""
    base = {"live_mode": False, "world_frame": ODOM, "camera_frame": CAMERA}
    params = NodeParams.load(overrides={**base, **overrides})
    transport = MemoryTransport()
    node = UnihoiNode(params, backend or MultiOracle(*sequences), transport)
    node.start()
    for name in ("points", "trajectory"):
        transport.publishers[transport.resolve(name)].subscribers = subscribers
    return node, transport


def image(rgb, i: int, **kw):
    return M.rgb_to_image(rgb, T0 + i * DT, "camera", **kw)


def feed(node, transport, msgs, topic: str = "image", timeout: float = 30.0) -> None:
    for m in msgs:
        transport.inject(topic, m)
    assert node.wait_idle(timeout), "the node did not finish in time"


def play_clip(node, transport, seq) -> dict:
    """Feed every frame of ``seq`` on ``image``, wait until the node is idle, stop it (also
    on failure) and return its stats."""
    try:
        feed(node, transport, [image(rgb, i) for i, rgb in enumerate(seq.rgb)])
        return node.stats()
    finally:
        node.stop()


def stamps_of(transport, topic: str) -> list[int]:
    return [M.stamp_to_ns(m.header.stamp) for m in transport.messages(topic)]


# --------------------------------------------------------------------------- parameters
def test_yaml_is_the_single_source_of_parameters():
    values, _ = read_params_file(default_params_file())
    params = NodeParams.load()
    fields = set(params.as_dict()) - {"use_sim_time"}
    assert fields == set(values), "NodeParams and config/egocentric.yaml disagree"
    for name, value in values.items():
        assert getattr(params, name) == value, name
    descriptions = param_descriptions()
    missing = [n for n in values if len(descriptions.get(n, "")) < 10]
    assert not missing, f"parameters without a description comment: {missing}"
    assert "ApproximateTimeSynchronizer" in descriptions["use_camera_info"]


def test_node_says_its_effective_settings(caplog):
    seq = clip()
    with caplog.at_level(logging.INFO, logger="unihoi_ros.node"):
        node, tp = make_node(seq)
        try:
            feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb[:2])])
        finally:
            node.stop()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("settings: ")]
    assert node.settings == NodeParams.load().stream_settings()
    assert len(said) == 2 and "max side 320" in said[0]  # at start-up, then the first frame
    assert "64x48 processed at 64x48 (max side 320), flow DIS medium (auto)" in said[1]


def test_parameter_overrides_files_and_errors(tmp_path):
    p = NodeParams.load(overrides={"window_stride": "2", "use_compressed": "true",
                                   "min_confidence": "0.25", "model": "random:tiny"})
    assert (p.window_stride, p.use_compressed, p.min_confidence) == (2, True, 0.25)
    assert p.image_input_topic == "image/compressed"
    assert p.effective_live_mode
    assert not p.replace(use_sim_time=True).effective_live_mode  # bag replay never drops
    assert p.reconstructor_config().pose_solver == "pnp"
    assert p.replace(pose_solver="procrustes").reconstructor_config().pose_solver == "procrustes"
    with pytest.raises(ValueError, match="pose_solver must be one of pnp, procrustes"):
        p.replace(pose_solver="icp")
    from unihoi_ros.pipeline.config import POSE_SOLVERS
    from unihoi_ros.ros.params import POSE_SOLVERS as PARAM_SOLVERS
    assert PARAM_SOLVERS == POSE_SOLVERS
    with pytest.raises(ValueError, match="did you mean 'window_stride'"):
        NodeParams.load(overrides={"window_strid": 2})
    with pytest.raises(ValueError, match="must be int"):
        NodeParams.load(overrides={"point_stride": "two"})
    with pytest.raises(ValueError, match="process_height and process_width"):
        NodeParams.load(overrides={"process_height": 60})
    with pytest.raises(ValueError, match="QoS profile"):
        NodeParams.load(overrides={"input_qos": "FAST"})
    f = tmp_path / "p.yaml"
    f.write_text(
        "/**:\n  ros__parameters:\n    point_stride: 4\n    diagnostic_updater.period: 2.0\n"
        "unihoi_node:\n  ros__parameters:\n    point_stride: 3\n    world_frame: map\n"
        "other_node:\n  ros__parameters:\n    point_stride: 9\n"
    )
    p = NodeParams.load([f], {"world_frame": "world"})
    assert (p.point_stride, p.world_frame) == (3, "world")
    assert p.reconstructor_config().point_stride == 3


# --------------------------------------------------------------------------- building blocks
def test_frame_queue_live_replaces_pending_and_replay_keeps_order():
    live = FrameQueue(live=True, capacity=100)
    assert live.put(InputFrame(None, 1, 0)) is None
    displaced = live.put(InputFrame(None, 2, 0))
    assert displaced.stamp_ns == 1
    displaced = live.put(InputFrame(None, 3, 0))
    assert displaced.stamp_ns == 2
    frame = live.get(0.1)
    assert frame.stamp_ns == 3
    assert live.get(0.01) is None
    replay = FrameQueue(live=False, capacity=3)
    dropped = [replay.put(InputFrame(None, s, 0)) for s in range(5)]
    assert [d.stamp_ns for d in dropped if d] == [0, 1]
    assert [replay.get(0.1).stamp_ns for _ in range(3)] == [2, 3, 4]


def test_approximate_pairer_pairs_closest_within_slop():
    pairs = []
    pairer = ApproximatePairer(lambda a, b: pairs.append((a, b)), slop_s=0.01, queue_size=3)

    def info(ns):
        return M.camera_info_msg(np.eye(3), 4, 4, ns, "c")

    img = [M.rgb_to_image(np.zeros((2, 2, 3), np.uint8), T0 + i * DT, "c") for i in range(4)]
    pairer.add_first(img[0])
    pairer.add_second(info(T0 + 2_000_000))   # 2 ms off: paired
    pairer.add_second(info(T0 + DT + 20_000_000))  # 20 ms off: not paired
    pairer.add_first(img[1])
    pairer.add_first(img[2])
    pairer.add_second(info(T0 + 2 * DT))  # exact
    assert [(M.stamp_to_ns(a.header.stamp), M.stamp_to_ns(b.header.stamp)) for a, b in pairs] \
        == [(T0, T0 + 2_000_000), (T0 + 2 * DT, T0 + 2 * DT)]


@pytest.mark.parametrize("frame_id", ["odom", "map", "a_long_world_frame"])
def test_path_serializer_equals_rosbags(frame_id):
    ts = M.get_typestore()
    rng = np.random.default_rng(0)
    path = PathSerializer(ts, frame_id, max_poses=5)
    for i in range(8):  # more than the cap: oldest poses are evicted (phases shift)
        T = np.eye(4)
        T[:3, 3] = rng.normal(size=3)
        T[:3, :3] = M.quaternion_to_rotation(rng.normal(size=4))
        path.append(T0 + i * 1_700_000_001, T)
        stamp = T0 + 10 * i
        msg = path.message(stamp)
        ref = bytes(ts.serialize_cdr(msg, M.PATH))
        assert path.cdr(stamp) == ref, f"pose {i}"
        expected = M.pose_stamped_msg(T, T0 + i * 1_700_000_001, frame_id, ts)
        assert bytes(ts.serialize_cdr(msg.poses[-1], M.POSE_STAMPED)) == bytes(
            ts.serialize_cdr(expected, M.POSE_STAMPED))
    assert len(path) == 5
    msg = ts.deserialize_cdr(path.cdr(T0), M.PATH)
    assert [M.stamp_to_ns(p.header.stamp) for p in msg.poses] == [
        T0 + i * 1_700_000_001 for i in range(3, 8)]
    path.clear()
    assert len(path) == 0 and path.cdr(T0) == bytes(ts.serialize_cdr(path.message(T0), M.PATH))


def test_scale_intrinsics_keeps_pixel_centres():
    K = np.array([[100.0, 0, 79.5], [0, 100.0, 59.5], [0, 0, 1]])
    half = scale_intrinsics(K, (120, 160), (60, 80))
    np.testing.assert_allclose(half, [[50, 0, 39.5], [0, 50, 29.5], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(scale_intrinsics(K, (120, 160), (120, 160)), K)


def test_rate_limited_log(caplog):
    now = [100.0]  # a clock of the test's own: no dependence on how fast this machine is
    rl = RateLimitedLog(logging.getLogger("unihoi_test"), period_s=0.2, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="unihoi_test"):
        logged = []
        for i in range(50):
            logged.append(rl(logging.WARNING, "k", "bad %d", i))
            now[0] += 0.001  # 50 in 0.05 s: within one period
        assert rl(logging.WARNING, "other", "another kind")
        now[0] += 0.2
        assert rl(logging.WARNING, "k", "bad again")
    assert logged.count(True) == 1
    assert "49 similar message(s) suppressed" in caplog.records[-1].getMessage()


# --------------------------------------------------------------------------- outputs
def test_every_output_carries_the_input_stamp_and_frame_ids():
    seq = clip()
    node, tp = make_node(seq, subscribers=1)
    try:
        feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb)])
        stamps = [T0 + i * DT for i in range(len(seq.rgb))]
        for topic in ("depth/image", "depth/camera_info", "confidence/image", "points",
                      "trajectory"):
            assert stamps_of(tp, topic) == stamps, topic
            assert {m.header.frame_id for m in tp.messages(topic)} == (
                {ODOM} if topic == "trajectory" else {CAMERA}), topic
        tf = [t for msg in tp.tf for t in msg.transforms]
        assert [M.stamp_to_ns(t.header.stamp) for t in tf] == stamps
        assert {(t.header.frame_id, t.child_frame_id) for t in tf} == {(ODOM, CAMERA)}
        depth = tp.messages("depth/image")[-1]
        assert (depth.encoding, depth.height, depth.width) == ("32FC1", 48, 64)
        np.testing.assert_allclose(M.image_to_array(depth), seq.depth[-1], rtol=1e-5)
        info = tp.messages("depth/camera_info")[-1]
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), seq.K, rtol=1e-9)
        path = tp.messages("trajectory")[-1]
        assert len(path.poses) == len(seq.rgb)
        stats = node.stats()
        assert (stats["received"], stats["published"], stats["missed"]) == (12, 12, 0)
    finally:
        node.stop()


def test_points_and_trajectory_only_while_subscribed_and_path_capped():
    seq = clip()
    node, tp = make_node(seq, subscribers=0, trajectory_max_poses=4)
    try:
        feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb[:6])])
        assert tp.messages("points") == [] and tp.messages("trajectory") == []
        assert "points" not in node.reconstructor.stats()["stages_ms"]  # not even built
        for name in ("points", "trajectory"):
            tp.publishers[tp.resolve(name)].subscribers = 1
        feed(node, tp, [image(rgb, i + 6) for i, rgb in enumerate(seq.rgb[6:])])
        assert len(tp.messages("points")) == 6
        cloud = tp.messages("points")[-1]
        pts, cols = M.cloud_to_points(cloud)
        assert len(pts) > 0 and cols is not None and np.isfinite(pts).all()
        assert [len(p.poses) for p in tp.messages("trajectory")] == [4] * 6
    finally:
        node.stop()


class GatedOracle(MultiOracle):
    """Ground truth whose ``encode`` waits for :attr:`release` (set: runs freely) and says
    when the worker is inside it (:attr:`entered`): "inference is busy" without timing."""

    def __init__(self, *sequences):
        super().__init__(*sequences)
        self.entered, self.release = threading.Event(), threading.Event()

    def encode(self, rgb):
        self.entered.set()
        assert self.release.wait(30), "the test never released the backend"
        return super().encode(rgb)


def test_live_mode_replaces_the_pending_frame_and_counts_it():
    seq = clip()
    backend = GatedOracle(seq)
    node, tp = make_node(seq, backend=backend, live_mode=True)
    try:
        assert node.live
        tp.inject("image", image(seq.rgb[0], 0))
        assert backend.entered.wait(30), "the worker never took the first frame"
        for i in range(1, 6):  # a burst while inference is busy with frame 0
            tp.inject("image", image(seq.rgb[i], i))
        backend.release.set()
        assert node.wait_idle(30)
        published = stamps_of(tp, "depth/image")
        stats = node.stats()
        # frame 0 (busy), then the newest: the four between replaced one another
        assert published == [T0, T0 + 5 * DT], "the newest frame is processed"
        assert stats["drops"][BUSY] == 4
        rep = tp.spin_diagnostics()
        assert rep.values["# of Missed Frames (busy)"] == stats["drops"][BUSY]
        assert rep.level == M.DIAG_WARN and "missed" in rep.message
    finally:
        node.stop()


def test_replay_mode_processes_every_frame():
    seq = clip()
    node, tp = make_node(seq, backend=MultiOracle(seq, delay_s=0.05), live_mode=True,
                         use_sim_time=True)
    try:
        assert not node.live, "use_sim_time forces replay"
        feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb[:8])])
        assert stamps_of(tp, "depth/image") == [T0 + i * DT for i in range(8)]
        assert node.stats()["missed"] == 0
    finally:
        node.stop()


def test_diagnostics_use_ros2_benchmark_names():
    seq = clip()
    node, tp = make_node(seq)
    try:
        tp.spin_diagnostics()  # reset the period
        feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb[:5])])
        rep = tp.spin_diagnostics()
        v = rep.values
        for key in ("Mean Input Frame Rate (fps)", "Mean Frame Rate (fps)",
                    "# of Missed Frames", "Mean End-to-End Latency (ms)",
                    "Max. End-to-End Latency (ms)", "Mean Frame-to-Frame Jitter (ms)",
                    "Max. Frame-to-Frame Jitter (ms)", "# of Frames Received",
                    "# of Frames Published", "Mean Inference Time (ms)"):
            assert key in v, key
        assert v["# of Frames Published"] == 5 and v["# of Missed Frames"] == 0
        assert v["Mean Frame Rate (fps)"] > 0 and v["Mean End-to-End Latency (ms)"] > 0
        assert rep.level == M.DIAG_OK
        msg = M.diagnostic_status_msg("unihoi_node: x", rep.level, rep.message, rep.values)
        assert len(msg.values) == len(v)
    finally:
        node.stop()


def test_diagnostics_count_the_subscribers_of_each_output():
    """Who listens, per output topic (what a peer waits for before sending frames)."""
    seq = clip()
    node, tp = make_node(seq)
    try:
        tp.publishers[tp.resolve("points")].subscribers = 2
        tp.subscribe("depth/image", M.IMAGE, tp.publishers[tp.resolve("points")].qos,
                     lambda m: None)  # an in-process subscriber counts too
        v = tp.spin_diagnostics().values
    finally:
        node.stop()
    counts = {k[len("# of Subscribers ("):-1]: n for k, n in v.items()
              if k.startswith("# of Subscribers (")}
    assert set(counts) == set(tp.publishers) - {"/diagnostics"}, counts
    assert counts["/unihoi/points"] == 2 and counts["/unihoi/depth/image"] == 1
    assert all(n == 0 for t, n in counts.items() if t not in ("/unihoi/points",
                                                               "/unihoi/depth/image"))


def test_camera_info_k_is_used_scaled_to_the_processed_size():
    seq = clip()
    node, tp = make_node(seq, use_camera_info=True, camera_info_timeout_s=5.0)
    try:
        K_full = np.array([[80.0, 0, 63.5], [0, 80.0, 47.5], [0, 0, 1]])  # for 96x128
        msgs = []
        for i, rgb in enumerate(seq.rgb[:5]):
            msgs.append(("image", image(rgb, i)))
            # camera_info 3 ms later (within the slop), for the camera's full resolution
            msgs.append(("camera_info", M.camera_info_msg(K_full, 128, 96, T0 + i * DT + 3_000_000,
                                                           "camera")))
        for topic, m in msgs:
            tp.inject(topic, m)
        assert node.wait_idle(30)
        assert stamps_of(tp, "depth/image") == [T0 + i * DT for i in range(5)]
        info = tp.messages("depth/camera_info")[-1]
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3),
                                   scale_intrinsics(K_full, (96, 128), (48, 64)), atol=1e-9)
        assert node.stats()["frames_without_camera_info"] == 0
        assert tp.spin_diagnostics().values["Camera Info"] == "paired with images"
    finally:
        node.stop()


# --------------------------------------------------------------------------- factory
def test_factory_random_model_is_loud_and_deterministic(caplog):
    import torch

    from unihoi_ros.backends.factory import load_backend

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with caplog.at_level(logging.WARNING):
        a = load_backend("random:tiny", device="cpu")
    assert torch.rand(1) == before, "the caller's RNG is untouched"
    b = load_backend("random:tiny")
    assert a.untrained and a.name == "torch" and a.device == "cpu"
    assert "UNTRAINED" in caplog.text
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.model_source.startswith("random:tiny")


def test_factory_errors_are_clear(tmp_path):
    from unihoi_ros.backends.factory import load_backend

    with pytest.raises(FileNotFoundError, match="random:tiny"):
        load_backend("no-such-bundled-model")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_backend(str(tmp_path / "missing.ckpt"))
    with pytest.raises(RuntimeError, match="no usable backend for 'tensorrt'"):
        load_backend("random:tiny", backend="tensorrt")  # no TensorRT and no engine here
    with pytest.raises(RuntimeError, match="no ONNX file"):
        load_backend("random:tiny", backend="onnxruntime")
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend("random:tiny", backend="openvino")
    with pytest.raises(ValueError, match="needs onnx_file_path"):
        load_backend("random:tiny", engine_path=str(tmp_path / "m.engine"),
                     force_engine_update=True)
    with pytest.raises(ValueError, match="CUDA"):
        load_backend("random:tiny", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="unknown model size"):
        load_backend("random:huge")


def test_factory_auto_prefers_onnxruntime_when_a_graph_is_given(tmp_path):
    pytest.importorskip("onnxruntime")
    from unihoi_ros.backends.factory import load_backend, load_network
    from unihoi_ros.model.export import export_onnx

    net, _, _ = load_network("random:tiny")
    onnx = export_onnx(net, tmp_path / "tiny.onnx", 48, 64)
    backend = load_backend("random:tiny", "auto", "cpu", onnx_path=str(onnx))
    assert backend.name == "onnxruntime" and backend.selection.choice == "onnxruntime-cpu"
    assert "torch-cuda" in backend.selection.skipped or "tensorrt" in backend.selection.skipped
    assert load_backend("random:tiny", "torch", "cpu", onnx_path=str(onnx)).name == "torch"
    # A forced engine rebuild only happens if TensorRT is chosen: here auto falls back.
    forced = load_backend("random:tiny", "auto", "cpu", onnx_path=str(onnx),
                          engine_path=str(tmp_path / "m.engine"), force_engine_update=True)
    assert forced.name == "onnxruntime" and not (tmp_path / "m.engine").exists()


def test_factory_loads_our_weights_file(tmp_path):
    from unihoi_ros.backends.factory import load_backend, load_network
    from unihoi_ros.model.checkpoint import save_pretrained

    net, _, _ = load_network("random:tiny")
    weights = save_pretrained(net, tmp_path / "tiny", provenance="test")
    for ref in (weights, weights.with_suffix(".json")):
        backend = load_backend(str(ref))
        assert not backend.untrained and "size tiny" in backend.model_source


# --------------------------------------------------------------------------- command line
def test_run_command_is_registered_and_maps_flags():
    from unihoi_ros.cli import build_parser
    from unihoi_ros.commands.run import overrides_from_args

    args = build_parser().parse_args([
        "run", "--input-topic", "/cam/image_raw", "--compressed", "--replay", "--model",
        "random:tiny", "--process-height", "60", "--process-width", "80", "-p",
        "window_stride:=2", "--domain-id", "7",
    ])
    assert args.transport == "dds" and args.namespace == "/unihoi" and args.domain_id == 7
    over = overrides_from_args(args)
    assert over == {"image_topic": "/cam/image_raw", "model": "random:tiny",
                    "process_height": 60, "process_width": 80, "use_compressed": True,
                    "live_mode": False, "window_stride": "2"}
    p = NodeParams.load(overrides=over)
    assert p.image_input_topic == "/cam/image_raw/compressed" and not p.effective_live_mode


def test_run_rclpy_without_ros_says_so(capsys):
    from unihoi_ros.optional import available

    if available("rclpy"):
        pytest.skip("rclpy is installed here")
    from unihoi_ros.cli import main

    assert main(["run", "--transport", "rclpy"]) == 1
    assert "rclpy" in capsys.readouterr().err


def test_threads_are_stopped():
    seq = clip()
    before = threading.active_count()
    node, _ = make_node(seq)
    node.stop()
    time.sleep(0.2)
    assert threading.active_count() <= before
