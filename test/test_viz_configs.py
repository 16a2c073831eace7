"""The RViz2 config and the Foxglove layout in config/ name what the node publishes."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

pytest.importorskip("rosbags")

from unihoi_ros.ros import messages as M
from unihoi_ros.ros.outputs import FrameOutputs
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.ratelog import RateLimitedLog
from unihoi_ros.ros.transport import MemoryTransport

from conftest import REPO_ROOT

NS = "/unihoi"


def _published() -> set[str]:
    """Topics the node's outputs create under the default namespace (what it publishes
    from), and its default input topic."""
    params = NodeParams.load()
    transport = MemoryTransport(NS)
    outputs = FrameOutputs(params, transport, M.get_typestore(), lambda key, n: None,
                           RateLimitedLog(logging.getLogger(__name__)))
    outputs.create(tf_enabled=True)
    topics = set(transport.publishers) | {"/tf", "/diagnostics"}  # TF, diagnostics: transport's
    assert topics == {transport.resolve(t) for t in M.DEFAULT_OUTPUT_TOPICS}  # one table
    return topics | {f"{NS}/{params.image_topic}"}


def _walk(node, key: str):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def test_rviz_config_names_the_node_topics_and_world_frame():
    cfg = yaml.safe_load((REPO_ROOT / "config" / "unihoi.rviz").read_text())
    manager = cfg["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == NodeParams.load().world_frame
    topics = {t["Value"] for t in _walk(manager["Displays"], "Topic")}
    assert topics <= _published(), topics - _published()
    for needed in ("image", "depth/image", "confidence/image", "points", "trajectory"):
        assert f"{NS}/{needed}" in topics, needed


def test_foxglove_layout_names_the_node_topics_and_world_frame():
    layout = json.loads((REPO_ROOT / "config" / "unihoi.foxglove.json").read_text())
    panels = layout["configById"]
    topics = set(_walk(panels, "imageTopic")) | set(panels["3D!unihoi"]["topics"])
    topics |= set(_walk(panels, "topicToRender"))
    assert topics <= _published(), topics - _published()
    for needed in ("image", "depth/image", "confidence/image", "points", "trajectory"):
        assert f"{NS}/{needed}" in topics, needed
    assert panels["3D!unihoi"]["followTf"] == NodeParams.load().world_frame
    # every panel the layout tree places is configured
    placed = [v for key in ("first", "second") for v in _walk(layout["layout"], key)]
    assert {p for p in placed if isinstance(p, str)} == set(panels)
