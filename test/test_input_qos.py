"""The input subscription's QoS follows its publishers (``input_qos_match_publishers``), as
``ros2 bag record`` adapts: reliable when every publisher offers reliable, best effort as
soon as one does not. Pure rule always; the rclpy transport where rclpy is installed (in
this process, loopback, the test run's domain)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from unihoi_ros.ros.qos import BEST_EFFORT, RELIABLE, SENSOR_DATA, adapt_to_offers

from conftest import REPO_ROOT


def test_adapt_to_offers():
    adaptive = replace(SENSOR_DATA, match_publishers=True)
    assert adapt_to_offers(adaptive, [RELIABLE]).reliability == RELIABLE
    assert adapt_to_offers(adaptive, [RELIABLE, RELIABLE]).depth == SENSOR_DATA.depth
    assert adapt_to_offers(adaptive, [RELIABLE, BEST_EFFORT]) == adaptive  # one BE publisher
    assert adapt_to_offers(adaptive, []) == adaptive  # nobody yet: best effort matches all
    assert adapt_to_offers(SENSOR_DATA, [RELIABLE]) == SENSOR_DATA  # not asked to adapt


def test_node_parameter_sets_the_profile():
    pytest.importorskip("yaml")
    from unihoi_ros.ros.params import NodeParams

    assert NodeParams.load().input_qos_profile.match_publishers  # the default
    off = NodeParams.load(overrides={"input_qos_match_publishers": False})
    assert not off.input_qos_profile.match_publishers
    assert off.input_qos_profile.reliability == BEST_EFFORT


def test_fastdds_profiles_use_only_schema_elements():
    """The shipped Fast DDS profiles name only elements of Fast DDS's own XSD (shipped with
    the ros-fastdds wheel), and the large-buffer one asks for 4 MiB both ways."""
    import sys

    xsd = next(Path(sys.prefix).glob("share/fastdds/fastdds_profiles.xsd"), None)
    if xsd is None:
        pytest.skip("Fast DDS's XSD is not installed (no ros-fastdds wheel)")
    known = {el.get("name") for el in ET.parse(xsd).iter("{http://www.w3.org/2001/XMLSchema}"
                                                          "element")}
    large = REPO_ROOT / "config" / "fastdds_large_buffers.xml"
    for path in (large, REPO_ROOT / "unihoi_ros" / "ros" / "fastdds_loopback.xml"):
        tags = {el.tag.split("}")[-1] for el in ET.parse(path).iter()}
        assert tags <= known, (path.name, tags - known)
    root = ET.parse(large).getroot()
    ns = {"f": "http://www.eprosima.com"}
    udp = [d for d in root.iterfind(".//f:transport_descriptor", ns)
           if d.findtext("f:type", namespaces=ns) == "UDPv4"]
    assert [int(d.findtext(f"f:{k}", namespaces=ns)) for d in udp
            for k in ("sendBufferSize", "receiveBufferSize")] == [4 * 1024 * 1024] * 2


# --------------------------------------------------------------------------- rclpy
@pytest.fixture
def rclpy_nodes():
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed")
    pytest.importorskip("sensor_msgs.msg")
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    node = rclpy.create_node("unihoi_qos_test_node", namespace="/qos_test")
    peer = rclpy.create_node("unihoi_qos_test_peer", namespace="/qos_test")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(peer)
    try:
        yield rclpy, node, peer, ex
    finally:
        ex.shutdown()
        node.destroy_node()
        peer.destroy_node()
        rclpy.try_shutdown()


def _spin_until(ex, cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        ex.spin_once(timeout_sec=0.05)
    return cond()


def test_rclpy_input_follows_its_publishers(rclpy_nodes):
    """No publisher: best effort. A reliable camera appears: reliable (within the graph
    check period), and a burst of 30 large frames from it arrives complete. A best-effort
    publisher joins: best effort again (a reliable reader would not match it)."""
    _, node, peer, ex = rclpy_nodes
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unihoi_ros.ros import messages as M
    from unihoi_ros.ros.rclpy_node import RclpyTransport

    tp = RclpyTransport(node)
    got = []
    tp.subscribe("image", M.IMAGE, replace(SENSOR_DATA, match_publishers=True), got.append)
    assert tp.input_qos("image").reliability == BEST_EFFORT

    def reader():
        infos = peer.get_subscriptions_info_by_topic("/qos_test/image")
        return [i.qos_profile.reliability for i in infos]

    camera = peer.create_publisher(Image, "image", QoSProfile(
        depth=30, reliability=ReliabilityPolicy.RELIABLE))
    assert _spin_until(ex, lambda: reader() == [ReliabilityPolicy.RELIABLE]), reader()
    assert tp.input_qos("image").reliability == RELIABLE
    assert _spin_until(ex, lambda: camera.get_subscription_count() == 1)

    msg = Image(height=256, width=456, encoding="rgb8", step=456 * 3)
    msg.data = bytes(456 * 256 * 3)
    for i in range(30):  # 50 Hz, 350 KB frames
        msg.header.stamp.nanosec = i
        camera.publish(msg)
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.005)
    assert _spin_until(ex, lambda: len(got) == 30, timeout=30), len(got)
    assert [m.header.stamp.nanosec for m in got] == list(range(30))

    peer.create_publisher(Image, "image", QoSProfile(
        depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert _spin_until(ex, lambda: reader() == [ReliabilityPolicy.BEST_EFFORT]), reader()
    assert tp.input_qos("image").reliability == BEST_EFFORT


def test_recording_qos_follows_ros2_bag_rules():
    """unihoi_record subscribes as ros2 bag record does: reliable only when every publisher
    is reliable, transient local only when every one is (latched /tf_static), deep history."""
    from unihoi_ros.ros.qos import DEFAULT, TRANSIENT_LOCAL, VOLATILE
    from unihoi_ros.ros.recorder import RECORD_DEPTH, recording_qos

    latched = replace(DEFAULT, durability=TRANSIENT_LOCAL)
    q = recording_qos([DEFAULT, DEFAULT])
    assert (q.reliability, q.durability, q.depth) == (RELIABLE, VOLATILE, RECORD_DEPTH)
    assert recording_qos([DEFAULT, SENSOR_DATA]).reliability == BEST_EFFORT
    q = recording_qos([latched])
    assert (q.reliability, q.durability) == (RELIABLE, TRANSIENT_LOCAL)
    assert recording_qos([latched, DEFAULT]).durability == VOLATILE
    assert not recording_qos([DEFAULT]).match_publishers
