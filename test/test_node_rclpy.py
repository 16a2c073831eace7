"""The rclpy node: message conversion (always; with stand-ins for rclpy's generated
classes), and start-up, parameters and the launch file (only where ROS 2 is installed)."""

from __future__ import annotations

import array
import importlib.util
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")

from unihoi_ros.ros import messages as M
from unihoi_ros.ros.rclpy_node import from_rclpy, ros_type_name, to_rclpy

from conftest import REPO_ROOT

TS = M.get_typestore()

# rosbags base type -> rclpy's get_fields_and_field_types() spelling
_RCLPY_BASE = {"float64": "double", "float32": "float", "bool": "boolean", "byte": "octet",
               "char": "uint8"}
_CODES = {"uint8": "B", "octet": "B", "int8": "b", "uint16": "H", "int16": "h", "uint32": "I",
          "int32": "i", "uint64": "Q", "int64": "q", "float": "f", "double": "d"}
_FAKES: dict[str, type] = {}


def _type_string(spec) -> str:
    from rosbags.interfaces import Nodetype

    kind, detail = spec
    if kind == Nodetype.BASE:
        name, bound = detail
        name = _RCLPY_BASE.get(name, name)
        return f"string<={bound}" if name == "string" and bound else name
    if kind == Nodetype.NAME:
        pkg, _, typ = detail.split("/")
        return f"{pkg}/{typ}"
    inner, n = detail
    if kind == Nodetype.ARRAY:
        return f"{_type_string(inner)}[{n}]"
    return f"sequence<{_type_string(inner)}" + (f", {n}>" if n else ">")


def fake_rclpy_class(msgtype: str) -> type:
    """A stand-in with the API of rclpy's generated message classes that matters here:
    ``get_fields_and_field_types()`` and default-constructed attributes of the right kind
    (``array.array`` for numeric sequences, numpy arrays for fixed-size numeric arrays)."""
    if msgtype in _FAKES:
        return _FAKES[msgtype]
    fields = {name: _type_string(spec) for name, spec in TS.fielddefs[msgtype][1]}

    def default(ftype: str):
        if ftype.startswith("sequence<"):
            elem = ftype[9:-1].split(",")[0].strip()
            return array.array(_CODES[elem]) if elem in _CODES else []
        if ftype.endswith("]"):
            elem, n = ftype[:-1].split("[")
            return np.zeros(int(n), dtype=np.float64 if elem == "double" else np.int64)
        if ftype == "boolean":
            return False
        if ftype in _CODES:
            return 0
        if ftype.startswith("string"):
            return ""
        return fake_rclpy_class(ros_type_name(ftype))()

    def __init__(self):
        for name, ftype in fields.items():
            setattr(self, name, default(ftype))

    cls = type(msgtype.replace("/", "_"), (), {
        "__init__": __init__,
        "get_fields_and_field_types": classmethod(lambda c: dict(fields)),
    })
    _FAKES[msgtype] = cls
    return cls


def _resolve(elem: str) -> type:
    return fake_rclpy_class(ros_type_name(elem))


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
def test_generic_conversion_round_trip(msgtype):
    msg = _samples()[msgtype]
    cls = fake_rclpy_class(msgtype)
    ros = to_rclpy(msg, cls, _resolve)
    assert isinstance(ros, cls)
    back = from_rclpy(ros, msgtype, TS)
    assert bytes(TS.serialize_cdr(back, msgtype)) == bytes(TS.serialize_cdr(msg, msgtype))


def test_conversion_uses_fast_containers():
    ros = to_rclpy(_samples()[M.IMAGE], fake_rclpy_class(M.IMAGE), _resolve)
    assert isinstance(ros.data, array.array) and ros.data.typecode == "B"
    assert isinstance(ros.header, fake_rclpy_class(M.HEADER))
    info = to_rclpy(_samples()[M.CAMERA_INFO], fake_rclpy_class(M.CAMERA_INFO), _resolve)
    assert isinstance(info.k, np.ndarray) and info.k.dtype == np.float64 and info.k.shape == (9,)
    assert isinstance(info.d, array.array) and info.d.typecode == "d"
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
def test_conversion_matches_real_rclpy_serialisation(msgtype):
    """Our rosbags message -> the real rclpy class -> rclpy's own CDR -> rosbags: the same
    message (catches fields rclpy's C layer reads differently, e.g. octets)."""
    _need("rclpy")
    from rclpy.serialization import serialize_message

    from unihoi_ros.optional import MissingDependencyError
    from unihoi_ros.ros.rclpy_node import rclpy_message_class

    try:
        cls = rclpy_message_class(msgtype)
    except MissingDependencyError:
        pytest.skip(f"{msgtype}: its message package is not installed here")
    msg = _samples()[msgtype]
    wire = serialize_message(to_rclpy(msg, cls))
    # Compared after rosbags reads rclpy's bytes back: Fast CDR leaves alignment padding
    # uninitialised, so the raw bytes may differ where no field is.
    back = TS.deserialize_cdr(wire, msgtype)
    assert bytes(TS.serialize_cdr(back, msgtype)) == bytes(TS.serialize_cdr(msg, msgtype))
