"""Degrade, don't fail: a missing optional ROS package or one failing output costs only
itself; and the Cyclone configuration merge of the Fast DDS 3 compatibility setting."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("rosbags")
pytest.importorskip("cyclonedds")

from test_node_logic import CAMERA, MultiOracle, clip, image, play_clip, stamps_of

from unihoi_ros.optional import MissingDependencyError
from unihoi_ros.ros import dds
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.node import UnihoiNode
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.transport import MemoryTransport

OUTPUTS = ("depth/image", "depth/camera_info", "confidence/image", "points", "trajectory")


class NoTfTransport(MemoryTransport):
    """A transport whose TF broadcaster cannot be created (tf2_ros missing)."""

    def start_tf(self) -> None:
        raise MissingDependencyError("tf2_ros is not importable (test): install tf2_ros")

    def publish_tf(self, tf_message, cdr=None) -> None:
        raise AssertionError("publish_tf must not be called once TF is disabled")


def _start(transport, **overrides):
    params = NodeParams.load(overrides={"live_mode": False, "camera_frame": CAMERA,
                                        **overrides})
    node = UnihoiNode(params, MultiOracle(clip()), transport)
    node.start()
    for name in ("points", "trajectory"):
        transport.publishers[transport.resolve(name)].subscribers = 1
    return node


def test_without_tf_every_other_output_arrives_and_it_is_said_once(caplog):
    seq = clip()
    transport = NoTfTransport()
    with caplog.at_level(logging.WARNING, logger="unihoi_ros"):
        node = _start(transport)
        stats = play_clip(node, transport, seq)
    sent = [image(rgb, i) for i, rgb in enumerate(seq.rgb)]
    expected = [M.stamp_to_ns(m.header.stamp) for m in sent]
    for topic in OUTPUTS:
        assert stamps_of(transport, topic) == expected, topic
    notes = [r.getMessage() for r in caplog.records if "TF disabled" in r.getMessage()]
    assert len(notes) == 1 and "tf2_ros" in notes[0] and "still published" in notes[0]
    assert stats["tf"] is False and stats["published"] == len(seq.rgb)
    assert node.diagnostics_report().values["TF"].startswith("disabled")


def test_one_failing_output_does_not_skip_the_ones_after_it():
    seq = clip()
    transport = MemoryTransport()
    node = _start(transport)
    confidence = transport.publishers[transport.resolve("confidence/image")]

    def broken(msg, cdr=None):
        raise RuntimeError("middleware refused the message")

    confidence.publish = broken
    stats = play_clip(node, transport, seq)
    n = len(seq.rgb)
    for topic in ("depth/image", "depth/camera_info", "points", "trajectory"):
        assert len(transport.messages(topic)) == n, topic
    assert len(transport.tf) == n
    assert stats["publish_errors"] == n and stats["published"] == n
    assert node.diagnostics_report().values["# of Publish Errors"] == n


def test_cyclone_config_merges_the_users_uri():
    user = "file:///etc/my_cyclone.xml,<CycloneDDS><Domain><Id>3</Id></Domain></CycloneDDS>"
    merged = dds.merged_config(user, True)
    assert merged.startswith(user + ",") and merged.endswith(dds.FASTDDS_COMPAT_CONFIG)
    assert "<IgnoreTypeInformation>1.15</IgnoreTypeInformation>" in dds.FASTDDS_COMPAT_CONFIG
    assert dds.merged_config(user, False) == user
    assert dds.merged_config(None, True) == dds.FASTDDS_COMPAT_CONFIG


def test_compat_default_follows_the_environment(monkeypatch):
    monkeypatch.delenv(dds.FASTDDS_COMPAT_ENV, raising=False)
    assert dds.fastdds_compat_default()
    for off in ("0", "false", "No"):
        monkeypatch.setenv(dds.FASTDDS_COMPAT_ENV, off)
        assert not dds.fastdds_compat_default()
