"""Poses as messages: ``TransformStamped``, ``TFMessage``, ``PoseStamped``, ``Path``.

Conventions (docs/conventions.md): TF goes from the world frame (:data:`WORLD_FRAME` by
default; REP-103 body axes, see :mod:`unihoi_ros.geometry.frames`; a frame's pose is
converted once, in :class:`unihoi_ros.ros.msg.bundle.FrameMessages`) to the camera's optical
frame; quaternions are ordered x, y, z, w with ``w >= 0``
(:func:`unihoi_ros.geometry.quaternions.quaternion_from_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unihoi_ros.geometry.quaternions import quaternion_from_matrix, rigid_from_quaternion
from unihoi_ros.ros.msg.types import (
    PATH,
    POINT,
    POSE,
    POSE_STAMPED,
    QUATERNION,
    TF_MESSAGE,
    TRANSFORM,
    TRANSFORM_STAMPED,
    VECTOR3,
    WORLD_FRAME,
    make_header,
    msg_class,
)

__all__ = [
    "path_msg",
    "pose_stamped_msg",
    "tf_msg",
    "transform_matrix",
    "transform_stamped_msg",
]


def _quat_msg(T: np.ndarray, typestore: Any | None) -> Any:
    x, y, z, w = quaternion_from_matrix(T)
    return msg_class(QUATERNION, typestore)(x=float(x), y=float(y), z=float(z), w=float(w))


def transform_stamped_msg(
    T_parent_child: np.ndarray,
    stamp_ns: int,
    parent_frame: str,
    child_frame: str,
    typestore: Any | None = None,
) -> Any:
    """``geometry_msgs/TransformStamped`` parent -> child from a ``(4, 4)`` pose.

    ``T_parent_child`` maps child coordinates to parent coordinates (the child's pose in the
    parent frame), which is what TF's ``header.frame_id -> child_frame_id`` transform holds.
    """
    T = np.asarray(T_parent_child, dtype=np.float64)
    t = T[:3, 3]
    vec = msg_class(VECTOR3, typestore)(x=float(t[0]), y=float(t[1]), z=float(t[2]))
    transform = msg_class(TRANSFORM, typestore)(translation=vec, rotation=_quat_msg(T, typestore))
    return msg_class(TRANSFORM_STAMPED, typestore)(
        header=make_header(stamp_ns, parent_frame, typestore),
        child_frame_id=str(child_frame),
        transform=transform,
    )


def transform_matrix(transform: Any) -> np.ndarray:
    """``(4, 4)`` float64 of a ``geometry_msgs/Transform`` (rosbags or rclpy message, or
    anything with ``translation.{x,y,z}`` and ``rotation.{x,y,z,w}``): the child's pose in
    the parent frame, metres."""
    t, r = transform.translation, transform.rotation
    return rigid_from_quaternion([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])


def tf_msg(transforms: Sequence[Any], typestore: Any | None = None) -> Any:
    """``tf2_msgs/TFMessage`` holding the given TransformStamped messages."""
    return msg_class(TF_MESSAGE, typestore)(transforms=list(transforms))


def pose_stamped_msg(
    T_frame_body: np.ndarray, stamp_ns: int, frame_id: str, typestore: Any | None = None
) -> Any:
    """``geometry_msgs/PoseStamped`` of a ``(4, 4)`` pose expressed in ``frame_id``."""
    T = np.asarray(T_frame_body, dtype=np.float64)
    t = T[:3, 3]
    pose = msg_class(POSE, typestore)(
        position=msg_class(POINT, typestore)(x=float(t[0]), y=float(t[1]), z=float(t[2])),
        orientation=_quat_msg(T, typestore),
    )
    return msg_class(POSE_STAMPED, typestore)(
        header=make_header(stamp_ns, frame_id, typestore), pose=pose
    )


def path_msg(
    poses: Sequence[Any], stamp_ns: int, frame_id: str = WORLD_FRAME, typestore: Any | None = None
) -> Any:
    """``nav_msgs/Path`` of the trajectory so far.

    Args:
        poses: PoseStamped messages (see :func:`pose_stamped_msg`), oldest first; the list is
            copied (callers keep appending to theirs).
        stamp_ns: header stamp (the newest frame's).
    """
    return msg_class(PATH, typestore)(
        header=make_header(stamp_ns, frame_id, typestore), poses=list(poses)
    )
