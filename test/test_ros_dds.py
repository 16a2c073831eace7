"""Cyclone DDS transport: QoS mapping, and real exchanges over loopback (the naming rules:
``test_ros_names.py``).

Every participant here is created with the loopback-only configuration (``dds_helpers``
sets it at import) on a fresh domain id; the peer process gets the same environment.
"""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")

import dds_helpers  # sets CYCLONEDDS_URI before any participant exists

from unihoi_ros.ros import dds, loopback
from unihoi_ros.ros import messages as M
from unihoi_ros.ros import qos as Q

TS = M.get_typestore()


def _ref_bytes(msg, typename=M.IMAGE) -> bytes:
    return bytes(TS.serialize_cdr(msg, typename))


# --------------------------------------------------------------------------- loopback
def test_loopback_configuration_is_exactly_the_designed_one():
    assert loopback.LOOPBACK_CYCLONEDDS_URI == (
        '<CycloneDDS><Domain Id="any"><General><Interfaces><NetworkInterface name="lo"/>'
        "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
        "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40"
        '</MaxAutoParticipantIndex><Peers><Peer address="127.0.0.1"/></Peers>'
        "<SPDPInterval>1s</SPDPInterval></Discovery></Domain></CycloneDDS>"
    )
    env: dict[str, str] = {}
    assert loopback.use_loopback(env) is env and loopback.is_loopback(env)
    assert loopback.is_loopback()  # set by dds_helpers for this process
    assert 1 <= loopback.unique_domain_id(3) <= loopback.MAX_DOMAIN_ID


# --------------------------------------------------------------------------- QoS
def test_qos_profiles_and_overrides():
    assert Q.qos_profile("sensor_data") == Q.SENSOR_DATA
    assert (
        Q.SENSOR_DATA.reliability,
        Q.SENSOR_DATA.history,
        Q.SENSOR_DATA.depth,
        Q.SENSOR_DATA.durability,
    ) == ("best_effort", "keep_last", 5, "volatile")
    assert (Q.DEFAULT.reliability, Q.DEFAULT.depth, Q.DEFAULT.durability) == (
        "reliable",
        10,
        "volatile",
    )
    assert Q.qos_profile("DEFAULT", depth=3).depth == 3
    assert Q.qos_profile("DEFAULT", depth=0).depth == 10
    sd = Q.qos_profile("SYSTEM_DEFAULT", depth=4)
    assert (sd.history, sd.depth, sd.reliability) == ("keep_last", 4, "system_default")
    with pytest.raises(ValueError, match="SENSOR_DATA"):
        Q.qos_profile("FAST")
    with pytest.raises(ValueError):
        Q.qos_profile("DEFAULT", depth=-1)
    assert Q.compatible(Q.DEFAULT, Q.SENSOR_DATA)
    assert Q.compatible(Q.SENSOR_DATA, Q.SENSOR_DATA)
    assert not Q.compatible(Q.SENSOR_DATA, Q.DEFAULT)


def test_cyclone_qos_mapping():
    from cyclonedds.qos import Policy
    from cyclonedds.util import duration

    q = list(Q.to_cyclone_qos("SENSOR_DATA", user_data=b"typehash=x;"))
    assert Policy.Reliability.BestEffort in q
    assert Policy.History.KeepLast(5) in q
    assert Policy.Durability.Volatile in q
    assert Policy.DataRepresentation(use_cdrv0_representation=True) in q
    assert Policy.Userdata(data=b"typehash=x;") in q
    q = list(Q.to_cyclone_qos(Q.qos_profile("DEFAULT", 7)))
    assert Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)) in q
    assert Policy.History.KeepLast(7) in q
    q = list(Q.to_cyclone_qos("SYSTEM_DEFAULT"))
    assert q == [Policy.DataRepresentation(use_cdrv0_representation=True)]


def test_rosbag2_offered_qos_profiles(tmp_path):
    from rosbags.interfaces import QosDurability, QosHistory, QosReliability
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.rosbag2.metadata import parse_qos
    from ruamel.yaml import YAML

    text = Q.offered_qos_profiles_yaml(["DEFAULT", "SENSOR_DATA"])
    items = YAML(typ="safe").load(text)
    assert items[0] == {
        "history": 1,
        "depth": 10,
        "reliability": 1,
        "durability": 2,
        "deadline": {"sec": 0, "nsec": 0},
        "lifespan": {"sec": 0, "nsec": 0},
        "liveliness": 1,
        "liveliness_lease_duration": {"sec": 0, "nsec": 0},
        "avoid_ros_namespace_conventions": False,
    }
    assert items[1]["reliability"] == 2 and items[1]["depth"] == 5
    parsed = parse_qos(text)
    assert parsed[0].reliability == QosReliability.RELIABLE
    assert parsed[1].history == QosHistory.KEEP_LAST
    assert parsed[1].durability == QosDurability.VOLATILE
    v9 = YAML(typ="safe").load(Q.offered_qos_profiles_yaml("SENSOR_DATA", version=9))
    assert v9[0]["reliability"] == "best_effort" and v9[0]["history"] == "keep_last"

    # a Humble-readable MCAP bag (version 8) carries the profile through
    bag = tmp_path / "bag"
    msg = dds_helpers.expected_image(0)
    with Writer(bag, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(
            "/unihoi/image",
            M.IMAGE,
            typestore=TS,
            offered_qos_profiles=[Q.to_rosbags_qos("DEFAULT")],
        )
        writer.write(conn, 5, _ref_bytes(msg))
    with Reader(bag) as reader:
        (c,) = reader.connections
        assert c.ext.offered_qos_profiles == [Q.to_rosbags_qos("DEFAULT")]
        ((_, _, raw),) = list(reader.messages())
        assert bytes(raw) == _ref_bytes(msg)


# --------------------------------------------------------------------------- DDS, one process
def test_in_process_pub_sub_conversion_raw_and_typehash():
    participant = dds_helpers.loopback_participant(dds_helpers.fresh_domain_id())
    got: list = []
    event = threading.Event()

    def on_msg(m):
        got.append(m)
        event.set()

    sub = dds.Subscriber(participant, "depth/image", M.IMAGE, on_msg, qos="SENSOR_DATA")
    raw = dds.Subscriber(participant, "depth/image", M.IMAGE, raw=True)
    pub = dds.Publisher(participant, "depth/image", M.IMAGE)
    try:
        assert pub.dds_topic_name == "rt/unihoi/depth/image"
        assert pub.wait_for_subscribers(2, timeout=5)
        assert sub.wait_for_publishers(1, timeout=5)
        fr_depth = np.random.default_rng(0).uniform(0.5, 2, (12, 16)).astype(np.float32)
        msg = M.array_to_image(fr_depth, 99, "cam_optical_frame")
        pub.publish(msg)
        assert event.wait(5)
        assert _ref_bytes(got[0]) == _ref_bytes(msg)
        np.testing.assert_array_equal(M.image_to_array(got[0]), fr_depth)
        wire = raw.get(timeout=5)
        ref = _ref_bytes(msg)
        assert wire[: len(ref)] == ref and set(wire[len(ref) :]) <= {0} and len(wire) % 4 == 0

        # raw publishing (e.g. bag replay) reaches the converting subscriber unchanged
        event.clear()
        other = dds_helpers.expected_image(3)
        pub.publish_raw(_ref_bytes(other))
        assert event.wait(5)
        assert _ref_bytes(got[1]) == _ref_bytes(other)
        with pytest.raises(ValueError):
            pub.publish_raw(b"\x00\x00\x00\x00")

        # ROS 2 (Iron+) type hash in the writer's USER_DATA, as seen by the reader side
        (handle,) = raw._reader.get_matched_publications()
        ep = raw._reader.get_matched_publication_data(handle)
        from cyclonedds.qos import Policy

        userdata = ep.qos[Policy.Userdata].data
        assert userdata == f"typehash={TS.hash_rihs01(M.IMAGE)};".encode()
        assert userdata.startswith(b"typehash=RIHS01_") and len(userdata) == 9 + 7 + 64 + 1
        assert ep.type_name == "sensor_msgs::msg::dds_::Image_"
    finally:
        sub.close()  # joins the receive thread (bounded wait, warns if it did not stop)
        raw.close()
        pub.close()
        assert not sub._thread.is_alive() and not raw._thread.is_alive()
        sub.close()  # idempotent


def test_incompatible_qos_does_not_match():
    """A reliable subscriber does not match a best-effort publisher (DDS request/offer)."""
    participant = dds_helpers.loopback_participant(dds_helpers.fresh_domain_id())
    with (
        dds.Subscriber(participant, "points", M.POINT_CLOUD2, qos="DEFAULT") as sub,
        dds.Publisher(participant, "points", M.POINT_CLOUD2, qos="SENSOR_DATA") as pub,
    ):
        assert not sub.wait_for_publishers(1, timeout=0.5)
        assert pub.subscription_count == 0
    with pytest.raises(RuntimeError):
        pub.publish(M.points_to_cloud(np.zeros((1, 3)), None, 0, "c"))


# --------------------------------------------------------------------------- DDS, two processes
def _receive_from_child(sub_qos: str, count: int, raw: bool) -> tuple[list, str]:
    domain = dds_helpers.fresh_domain_id()
    participant = dds_helpers.loopback_participant(domain)
    sub = dds.Subscriber(participant, "image", M.IMAGE, qos=sub_qos, raw=raw, queue_size=64)
    child = dds_helpers.spawn_image_publisher(domain, "image", "DEFAULT", count)
    received: list = []
    try:
        assert sub.wait_for_publishers(1, timeout=120.0), child.communicate(timeout=10)
        child.stdin.write("GO\n")  # both sides matched: the child may publish
        child.stdin.flush()
        deadline = time.monotonic() + 120.0
        idle_after_exit = 0
        while len(received) < count and time.monotonic() < deadline:
            m = sub.get(timeout=0.2)
            if m is not None:
                received.append(m)
            elif child.poll() is not None:
                idle_after_exit += 1  # publisher gone: stop after ~0.6 s without data
                if idle_after_exit >= 3:
                    break
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # pragma: no cover - never hang the suite
        child.kill()
        out, err = child.communicate()
    finally:
        if child.poll() is None:  # pragma: no cover
            child.kill()
            child.wait(5)
        sub.close()
    assert child.returncode == 0, f"publisher failed: {out}\n{err}"
    return received, out


def test_second_process_images_arrive_byte_identical_reliable():
    count = 6
    received, out = _receive_from_child("DEFAULT", count, raw=True)
    assert "published 6" in out
    assert len(received) == count  # reliable, keep last 10 >= count: nothing may be lost
    for i, wire in enumerate(received):
        ref = _ref_bytes(dds_helpers.expected_image(i))
        assert wire[:4] == b"\x00\x01\x00\x00"
        assert wire[: len(ref)] == ref and len(wire) - len(ref) < 4


def test_sensor_data_subscriber_matches_reliable_publisher():
    count = 5
    received, _ = _receive_from_child("SENSOR_DATA", count, raw=False)
    assert 1 <= len(received) <= count  # best effort may lose some; loopback rarely does
    for msg in received:
        index = int(msg.header.frame_id.split("_")[1])
        expected = dds_helpers.expected_image(index)
        assert _ref_bytes(msg) == _ref_bytes(expected)
        assert M.stamp_to_ns(msg.header.stamp) == 1_000_000_000 + index
        np.testing.assert_array_equal(M.image_to_rgb(msg), M.image_to_rgb(expected))
