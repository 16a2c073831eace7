"""TF of the node in-process (memory transport, ground-truth backend): ``world -> camera``
by default, ``world -> base_frame`` through the camera -> base transform with
``base_frame`` (the camera keeps the robot's parent), and the maths under it checked
against scipy. The same over real ROS 2 (tf2 Buffer, /tf_static): ``test_ros2_tf.py``."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pytest.importorskip("rosbags")

from test_node_logic import CAMERA, ODOM, MultiOracle, clip, feed, image, make_node, play_clip

from unihoi_ros.errors import ConfigError
from unihoi_ros.geometry.frames import T_BODY_OPTICAL, base_world_pose, body_world_pose
from unihoi_ros.geometry.quaternions import rigid_from_quaternion
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.node import UnihoiNode
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.transport import MemoryTransport, Transport

BASE = "base_link"


def _camera_to_base() -> np.ndarray:
    """``T_camera_base``: a head camera 1.2 m above the base, looking ahead and down."""
    T_base_cam = np.eye(4)  # camera (optical axes) in the base frame (REP-103 body axes)
    tilt = Rotation.from_euler("y", 20, degrees=True).as_matrix()  # pitched down 20 deg
    T_base_cam[:3, :3] = tilt @ T_BODY_OPTICAL[:3, :3]
    T_base_cam[:3, 3] = [0.15, -0.02, 1.2]
    return np.linalg.inv(T_base_cam)


def _tf_by_stamp(transport) -> dict[int, tuple[str, str, np.ndarray]]:
    out = {}
    for msg in transport.tf:
        (t,) = msg.transforms
        out[M.stamp_to_ns(t.header.stamp)] = (t.header.frame_id, t.child_frame_id,
                                              M.transform_matrix(t.transform))
    return out


def _poses_by_stamp(transport) -> dict[int, np.ndarray]:
    out = {}
    for m in transport.messages("pose"):
        p, q = m.pose.position, m.pose.orientation
        out[M.stamp_to_ns(m.header.stamp)] = rigid_from_quaternion([p.x, p.y, p.z],
                                                                   [q.x, q.y, q.z, q.w])
    return out


# --------------------------------------------------------------------------- maths
def test_rigid_from_quaternion_and_base_pose_against_scipy():
    rng = np.random.default_rng(4)
    for _ in range(20):
        q, t = Rotation.random(random_state=rng).as_quat(), rng.normal(size=3)
        T = rigid_from_quaternion(t, q)
        np.testing.assert_allclose(T[:3, :3], Rotation.from_quat(q).as_matrix(), atol=1e-12)
        np.testing.assert_allclose(T[:3, 3], t)
    # world <- camera <- base, composed by scipy's rotations: the same pose.
    r_wc, r_cb = Rotation.random(random_state=rng), Rotation.random(random_state=rng)
    t_wc, t_cb = rng.normal(size=3), rng.normal(size=3)
    T_wb = base_world_pose(rigid_from_quaternion(t_wc, r_wc.as_quat()),
                           rigid_from_quaternion(t_cb, r_cb.as_quat()))
    np.testing.assert_allclose(T_wb[:3, :3], (r_wc * r_cb).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(T_wb[:3, 3], r_wc.apply(t_cb) + t_wc, atol=1e-12)


# --------------------------------------------------------------------------- node
def test_default_tf_is_world_to_camera_and_equals_pose():
    seq = clip()
    node, tp = make_node(seq)
    try:
        feed(node, tp, [image(rgb, i) for i, rgb in enumerate(seq.rgb)])
    finally:
        node.stop()
    tf, poses = _tf_by_stamp(tp), _poses_by_stamp(tp)
    assert len(tf) == len(seq.rgb) and sorted(tf) == sorted(poses)
    for stamp, (parent, child, T) in tf.items():
        assert (parent, child) == (ODOM, CAMERA)
        np.testing.assert_allclose(T, poses[stamp], atol=1e-9)
    first = tf[min(tf)][2]  # REP-103: the first camera's optical axes in the body world
    np.testing.assert_allclose(first, T_BODY_OPTICAL, atol=1e-6)


def test_base_frame_publishes_world_to_base_through_camera_to_base():
    seq = clip()
    T_cam_base = _camera_to_base()
    node, tp = make_node(seq, base_frame=BASE)
    tp.transforms[(CAMERA, BASE)] = T_cam_base
    stats = play_clip(node, tp, seq)
    tf, poses = _tf_by_stamp(tp), _poses_by_stamp(tp)
    assert len(tf) == len(seq.rgb) == len(poses) and stats["tf_lookup_failures"] == 0
    for stamp, (parent, child, T_world_base) in tf.items():
        assert (parent, child) == (ODOM, BASE)  # the camera frame gets no second parent
        # base -> camera from the robot, then the camera's pose: the world pose of the camera.
        np.testing.assert_allclose(T_world_base @ np.linalg.inv(T_cam_base), poses[stamp],
                                   atol=1e-9)
    # The ground-truth camera path, carried to the base: the first base pose is the
    # camera's mounting seen from the first camera (body axes).
    np.testing.assert_allclose(tf[min(tf)][2], T_BODY_OPTICAL @ T_cam_base, atol=1e-6)
    T_first_last = np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam[-1]
    gt = body_world_pose(T_first_last) @ T_cam_base
    np.testing.assert_allclose(tf[max(tf)][2], gt, atol=0.03)  # the estimate: ~1 cm off


def test_base_frame_without_the_transform_skips_tf_counts_and_warns_once(caplog):
    seq = clip()
    node, tp = make_node(seq, base_frame=BASE, subscribers=1)
    with caplog.at_level(logging.WARNING, logger="unihoi_ros"):
        stats = play_clip(node, tp, seq)
    n = len(seq.rgb)
    assert tp.tf == [] and stats["tf_lookup_failures"] == n
    for topic in ("depth/image", "pose", "points", "trajectory"):  # the rest goes on
        assert len(tp.messages(topic)) == n, topic
    notes = [r.getMessage() for r in caplog.records if "transform at frame" in r.getMessage()]
    assert len(notes) == 1 and BASE in notes[0] and CAMERA in notes[0], notes


def test_base_frame_where_the_transport_keeps_no_tf_buffer_disables_tf_once(caplog):
    class NoBufferTransport(MemoryTransport):  # the Cyclone DDS transport's case
        start_transform_lookup = Transport.start_transform_lookup

    seq = clip()
    params = NodeParams.load(overrides={"live_mode": False, "camera_frame": CAMERA,
                                        "base_frame": BASE})
    tp = NoBufferTransport()
    node = UnihoiNode(params, MultiOracle(seq), tp)
    with caplog.at_level(logging.WARNING, logger="unihoi_ros"):
        node.start()
        stats = play_clip(node, tp, seq)
    notes = [r.getMessage() for r in caplog.records if "TF disabled" in r.getMessage()]
    assert len(notes) == 1 and "base_frame" in notes[0] and BASE in notes[0], notes
    assert tp.tf == [] and stats["tf"] is False and stats["published"] == len(seq.rgb)


@pytest.mark.parametrize("frame", ["unihoi_world", "cam_opt"])
def test_base_frame_must_differ_from_world_and_camera(frame):
    with pytest.raises(ConfigError, match="base_frame"):
        NodeParams.load(overrides={"camera_frame": "cam_opt", "base_frame": frame})
