"""The rclpy node: messages through the wire codec (rclpy's own serialisation where rclpy
is installed), and start-up, parameters and the launch file (only where ROS 2 is
installed)."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")

from unihoi_ros.ros import messages as M
from unihoi_ros.ros import wire
from unihoi_ros.ros.rclpy_node import ros_type_name

from conftest import REPO_ROOT

TS = M.get_typestore()


def _samples():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.2, 0.3]
    pts = rng.normal(size=(5, 3)).astype(np.float32)
    pose = M.pose_stamped_msg(T, 7, "odom")
    return {
        M.IMAGE: M.rgb_to_image(rgb, 1_234_567_890, "cam"),
        M.COMPRESSED_IMAGE: M.rgb_to_compressed(rgb, 5, "cam", "png"),
        M.CAMERA_INFO: M.camera_info_msg(np.diag([50.0, 60.0, 1.0]), 8, 6, 9, "cam"),
        M.POINT_CLOUD2: M.points_to_cloud(pts, rng.integers(0, 256, (5, 3), np.uint8), 3, "c"),
        M.TF_MESSAGE: M.tf_msg([M.transform_stamped_msg(T, 11, "odom", "cam")]),
        M.PATH: M.path_msg([pose, pose], 12, "odom"),
        M.DIAGNOSTIC_ARRAY: M.diagnostic_array_msg(13, [M.diagnostic_status_msg(
            "n: t", 1, "warn", {"a": 1.5, "b": "x"})]),
    }


@pytest.mark.parametrize("msgtype", list(_samples()))
def test_codec_round_trip(msgtype):
    msg = _samples()[msgtype]
    back = wire.deserialize(wire.serialize(msg, msgtype, TS), msgtype, TS)
    assert type(back) is type(msg)
    assert bytes(TS.serialize_cdr(back, msgtype)) == bytes(TS.serialize_cdr(msg, msgtype))
    assert ros_type_name("std_msgs/Header") == "std_msgs/msg/Header"


# --------------------------------------------------------------------------- with ROS 2
def _need(module: str):
    return pytest.importorskip(module, reason=f"{module} not importable: needs a sourced ROS 2 "
                                               "installation (Humble/Jazzy)")


def test_rclpy_qos_profiles():
    _need("rclpy")
    from rclpy.qos import qos_profile_sensor_data

    from unihoi_ros.ros.qos import DEFAULT, SENSOR_DATA
    from unihoi_ros.ros.rclpy_node import to_rclpy_qos

    assert to_rclpy_qos(SENSOR_DATA) == qos_profile_sensor_data
    assert to_rclpy_qos(DEFAULT).depth == 10


@pytest.fixture
def rclpy_context():
    rclpy = _need("rclpy")
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


def test_rclpy_parameters_declared_with_descriptions(rclpy_context):
    from unihoi_ros.ros.params import NODE_NAME, param_descriptions
    from unihoi_ros.ros.rclpy_node import declare_parameters

    node = rclpy_context.create_node(NODE_NAME)
    try:
        params = declare_parameters(node)
        descriptions = param_descriptions()
        for name, value in params.as_dict().items():
            p = node.get_parameter(name)
            assert p.value == value, name
            if name != "use_sim_time":
                desc = node.describe_parameter(name)
                assert desc.description == descriptions[name] and desc.read_only
    finally:
        node.destroy_node()


def test_rclpy_node_start_up_and_outputs(rclpy_context):
    rclpy = rclpy_context
    from rclpy.executors import MultiThreadedExecutor
    from sensor_msgs.msg import Image

    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.ros.node import UnihoiNode
    from unihoi_ros.ros.params import NODE_NAME, NodeParams
    from unihoi_ros.ros.rclpy_node import RclpyTransport
    from unihoi_ros.sim import make_sequence

    node = rclpy.create_node(NODE_NAME, namespace="/unihoi_test")
    peer = rclpy.create_node("peer", namespace="/unihoi_test")
    params = NodeParams.load(overrides={"model": "random:tiny", "process_height": 60,
                                        "process_width": 80, "live_mode": False,
                                        "input_qos": "DEFAULT"})  # reliable: lossless
    unihoi = UnihoiNode(params, load_backend(params.model), RclpyTransport(node))
    unihoi.start()
    got = []
    peer.create_subscription(Image, "depth/image", got.append, 10)
    pub = peer.create_publisher(Image, "image", 10)
    ex = MultiThreadedExecutor()
    ex.add_node(node)
    ex.add_node(peer)
    try:
        seq = make_sequence(0, 5, 120, 160)
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        for i, rgb in enumerate(seq.rgb):
            pub.publish(bytes(TS.serialize_cdr(M.rgb_to_image(rgb, 10**9 + i, "c"), M.IMAGE)))
            ex.spin_once(timeout_sec=0.05)
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        assert [m.header.stamp.nanosec for m in got] == [i for i in range(5)]
        assert {m.header.frame_id for m in got} == {"c"}  # the input header's frame_id
    finally:
        unihoi.stop()
        ex.shutdown()
        node.destroy_node()
        peer.destroy_node()


def test_launch_file_parses(monkeypatch):
    _need("launch")
    _need("launch_ros")
    _need("launch_testing")
    import ament_index_python.packages as aip
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    from launch import LaunchContext

    monkeypatch.setattr(aip, "get_package_share_directory", lambda _pkg: str(REPO_ROOT))
    spec = importlib.util.spec_from_file_location(
        "egocentric_launch", REPO_ROOT / "launch" / "egocentric.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "get_package_share_directory", lambda _pkg: str(REPO_ROOT))
    ld = module.generate_launch_description()
    args = {e.name: e for e in ld.entities if isinstance(e, DeclareLaunchArgument)}
    for name in ("namespace", "image_topic", "model", "use_sim_time", "record"):
        assert name in args
    nodes = [e for e in ld.entities if isinstance(e, Node)]
    assert len(nodes) == 1
    ctx = LaunchContext()
    for a in args.values():
        a.visit(ctx)
    assert nodes[0].node_executable == "unihoi_node"


@pytest.mark.parametrize("msgtype", list(_samples()))
def test_codec_bytes_are_rclpys(msgtype):
    """Our bytes -> the real rclpy class (what a raw publish is to rclpy peers) -> rclpy's
    own CDR -> our codec (``from_rclpy``, the message_filters path): the same message
    (catches fields rclpy's C layer reads differently, e.g. octets)."""
    _need("rclpy")
    from rclpy.serialization import deserialize_message

    from unihoi_ros.optional import MissingDependencyError
    from unihoi_ros.ros.rclpy_node import from_rclpy, rclpy_message_class

    try:
        cls = rclpy_message_class(msgtype)
    except MissingDependencyError:
        pytest.skip(f"{msgtype}: its message package is not installed here")
    msg = _samples()[msgtype]
    ros = deserialize_message(bytes(wire.serialize(msg, msgtype, TS)), cls)
    assert isinstance(ros, cls)
    # Compared after the codec reads rclpy's bytes back: Fast CDR leaves alignment padding
    # uninitialised, so the raw bytes may differ where no field is.
    back = from_rclpy(ros, msgtype, TS)
    assert bytes(TS.serialize_cdr(back, msgtype)) == bytes(TS.serialize_cdr(msg, msgtype))
