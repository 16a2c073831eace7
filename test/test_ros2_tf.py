"""TF on the real ROS 2 stack (Kilted wheels) with tf2 built from source
(``../shared/ros2-python/build-tf2.sh``: tf2_msgs, tf2, tf2_py, tf2_ros_py; cached by
:func:`ros2_builds.tf2_workspace`), checked by an rclpy peer with a tf2_ros ``Buffer``:

- ``/tf`` for every frame: parent ``world_frame``, child the camera frame, the REP-103
  first rotation (the optical -> body axes), equal to ``pose`` at every stamp, and what the
  peer's ``Buffer.lookup_transform`` gives at each stamp;
- the same with ``tf2_msgs`` alone (``tf2_ros`` not importable): a plain TFMessage
  publisher;
- ``base_frame``: a static base -> camera transform on ``/tf_static`` (tf2_ros'
  StaticTransformBroadcaster); the node publishes world -> base, and the peer's Buffer,
  chaining it with the static transform, finds the camera exactly at ``pose``.

Runs are lossless (replay, reliable input): every frame sent must come back.
Skips where the wheels cannot exist, ``../shared`` is absent, or cmake/g++ are missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ros2_support as R
from scipy.spatial.transform import Rotation
from test_ros2_stack import (
    LOSSLESS,
    NODE_FRAME,
    check_outputs,
    installed,
    lossless_yaml,
    ros_args,
)

from unihoi_ros.geometry.frames import R_BODY_OPTICAL
from unihoi_ros.geometry.quaternions import rigid_from_quaternion

pytestmark = pytest.mark.slow

WORLD = "unihoi_world"
BASE = "base_link"


@pytest.fixture(scope="module")
def tf2() -> Path:
    return R.tf2_setup()


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    R.require_rclpy()
    return installed(R.KILTED, tmp_path_factory)


def _T(rec: dict) -> np.ndarray:
    return rigid_from_quaternion(rec["t"], rec["q"])


def _node(install: Path, env: dict[str, str], log: Path, ns: str, *params: str,
          blocker: Path | None = None) -> R.Background:
    exe = install / "unihoi_ros" / "lib" / "unihoi_ros" / "unihoi_node"
    argv = [str(exe), "--ros-args", "-r", f"__ns:=/{ns}", *ros_args(LOSSLESS), *params]
    if blocker is None:
        return R.Background(R.sourced(install, argv), log, env)
    setup = install / "setup.bash"
    return R.Background(["bash", "-c", f'. "{setup}" && export PYTHONPATH="{blocker}:$PYTHONPATH"'
                         f' && exec {subprocess.list2cmdline(argv)}'], log, env)


def _check_tf(res: dict, child: str) -> tuple[list[int], dict[int, np.ndarray],
                                               dict[int, np.ndarray]]:
    """One /tf per processed frame, parent -> child, same stamps as depth; returns the
    stamps and the /tf and ``pose`` transforms by stamp."""
    stamps = check_outputs(res)
    tf, poses = res["got"]["tf"], res["got"]["pose"]
    assert [m["stamp"] for m in tf] == stamps, "one /tf per processed frame, same stamp"
    assert {(m["parent"], m["child"]) for m in tf} == {(WORLD, child)}
    assert [m["stamp"] for m in poses] == stamps and {m["frame_id"] for m in poses} == {WORLD}
    return stamps, {m["stamp"]: _T(m) for m in tf}, {m["stamp"]: _T(m) for m in poses}


def _check_lookups(res: dict, expected: dict[int, np.ndarray]) -> None:
    """The peer's tf2 Buffer, looked up at every stamp, gives ``expected``."""
    lookups = res["got"]["lookup"]
    assert [m["stamp"] for m in lookups] == sorted(expected)
    failed = [m for m in lookups if "error" in m]
    assert not failed, failed[:3]
    for m in lookups:
        np.testing.assert_allclose(_T(m), expected[m["stamp"]], atol=1e-6)


def test_tf_every_frame_equals_pose_and_a_buffer_lookup(install, tf2, tmp_path):
    env = R.ros_env(setup=(tf2,))
    node = _node(install, env, tmp_path / "node.log", "tfnode")
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/tfnode/image", ns="tfnode",
                         frames=16, rate=10, tf=True, lookup=f"{WORLD},{NODE_FRAME}")
    finally:
        rc = node.stop()
    stamps, tf, poses = _check_tf(res, NODE_FRAME)
    for s in stamps:
        np.testing.assert_allclose(tf[s], poses[s], atol=1e-6)
    # REP-103: the first camera's optical axes (x right, y down, z forward) in the body-axes
    # world (x forward, y left, z up), at the origin.
    first = tf[stamps[0]]
    np.testing.assert_allclose(first[:3, :3], R_BODY_OPTICAL, atol=1e-6)
    np.testing.assert_allclose(first[:3, 3], 0.0, atol=1e-9)
    assert not np.allclose(tf[stamps[-1]], first, atol=1e-4), "the camera moves in the clip"
    _check_lookups(res, tf)
    assert rc == 0 and "TF disabled" not in node.output, node.output[-3000:]


def test_tf_with_tf2_msgs_alone(install, tf2, tmp_path):
    """tf2_ros not importable (a blocker first on PYTHONPATH), tf2_msgs there: /tf goes on."""
    blocker = tmp_path / "block" / "tf2_ros"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('tf2_ros blocked by the test')")
    env = R.ros_env(setup=(tf2,))
    probe = ("import importlib.util as u, tf2_msgs.msg; "
             "print(u.find_spec('tf2_ros').origin)")
    seen = subprocess.run([sys.executable, "-c", probe], env={
        **env, "PYTHONPATH": f"{blocker.parent}:{env['PYTHONPATH']}"}, capture_output=True,
        text=True, timeout=60)
    assert seen.returncode == 0 and str(blocker) in seen.stdout, seen.stderr
    node = _node(install, env, tmp_path / "node.log", "msgsonly", blocker=blocker.parent)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/msgsonly/image", ns="msgsonly",
                         frames=12, rate=10, tf=True)
    finally:
        rc = node.stop()
    stamps, tf, poses = _check_tf(res, NODE_FRAME)
    for s in stamps:
        np.testing.assert_allclose(tf[s], poses[s], atol=1e-6)
    assert rc == 0 and "TF disabled" not in node.output, node.output[-3000:]


def test_base_frame_world_to_base_through_a_static_transform(install, tf2, tmp_path):
    """The robot's TF has base_link -> head_camera_optical (static); with base_frame the
    node publishes unihoi_world -> base_link, so the camera keeps one parent and the
    chain world -> base -> camera is the camera's pose."""
    rot = Rotation.from_euler("y", 25, degrees=True) * Rotation.from_matrix(R_BODY_OPTICAL)
    T_base_cam = rigid_from_quaternion([0.12, 0.03, 1.45], rot.as_quat())
    static = ",".join([BASE, NODE_FRAME, *(str(float(v)) for v in T_base_cam[:3, 3]),
                       *(str(float(v)) for v in rot.as_quat())])
    env = R.ros_env(setup=(tf2,))
    node = R.Background(R.sourced(install, [
        sys.executable, str(R.LAUNCH), "namespace:=robot", "image_topic:=/robot/image",
        f"base_frame:={BASE}", f"params_file:={lossless_yaml(tmp_path)}"]),
        tmp_path / "launch.log", env)
    try:
        res = R.run_peer(tmp_path, env, node, image_topic="/robot/image", ns="robot",
                         frames=12, rate=10, tf=True, static_tf=static,
                         lookup=f"{WORLD},{NODE_FRAME}")
    finally:
        rc = node.stop()
    stamps, tf, poses = _check_tf(res, BASE)
    for s in stamps:  # T_world_base · T_base_camera = T_world_camera
        np.testing.assert_allclose(tf[s] @ T_base_cam, poses[s], atol=1e-6)
    _check_lookups(res, poses)  # tf2 chains the node's /tf with the robot's /tf_static
    assert rc == 0 and f"TF: {WORLD} -> {BASE}" in node.output, node.output[-3000:]
    assert "transform at frame" not in node.output  # no lookup failed
