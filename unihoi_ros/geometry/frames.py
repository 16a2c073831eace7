"""Frame conventions of the published outputs (REP-103 / REP-105).

The pipeline's world is the stream's first camera with OpenCV / REP-103 *optical* axes
(x right, y down, z forward): that is what :class:`~unihoi_ros.pipeline.FrameResult`'s
``T_world_cam`` holds and what the evaluation uses. What the node publishes as its world
frame has REP-103 *body* axes (x forward, y left, z up), so RViz shows the scene upright
and a robot's tools read it like any other fixed frame: the same origin, rotated.

On a robot the camera frame already has a parent (``base_link`` -> ... -> camera, from the
robot's description); TF allows one parent per frame, so there the world becomes the
parent of the base instead (:func:`base_world_pose`).
"""

from __future__ import annotations

import numpy as np

#: ``(3, 3)`` rotation taking optical-axes coordinates to body-axes coordinates:
#: optical z (forward) -> body x, optical x (right) -> body -y, optical y (down) -> body -z.
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

#: ``(4, 4)`` the same as a rigid transform (no translation).
T_BODY_OPTICAL = np.eye(4)
T_BODY_OPTICAL[:3, :3] = R_BODY_OPTICAL


def body_world_points(xyz: np.ndarray) -> np.ndarray:
    """``(..., 3)`` world points (optical-axes world) in the body-axes world, metres."""
    return np.asarray(xyz, dtype=np.float64) @ R_BODY_OPTICAL.T


def body_world_pose(T_world_cam: np.ndarray) -> np.ndarray:
    """Camera pose in the body-axes world frame.

    Args:
        T_world_cam: ``(..., 4, 4)`` camera-to-world poses, world = first camera with
            optical axes; metres.

    Returns:
        ``(..., 4, 4)`` float64 camera(optical)-to-world poses, world with body axes
        (x forward, y left, z up) and the same origin. The first frame's pose (identity
        in) is :data:`T_BODY_OPTICAL`.
    """
    return T_BODY_OPTICAL @ np.asarray(T_world_cam, dtype=np.float64)


def base_world_pose(T_world_cam: np.ndarray, T_cam_base: np.ndarray) -> np.ndarray:
    """The robot base's pose in the world from the camera's and the camera -> base transform.

    ``T_world_base = T_world_cam · T_cam_base``.

    Args:
        T_world_cam: ``(..., 4, 4)`` camera-to-world poses (the camera frame as published:
            optical axes; world as published: body axes, :func:`body_world_pose`); metres.
        T_cam_base: ``(..., 4, 4)`` the base's pose in the camera frame (base-to-camera:
            what tf2's ``lookup_transform(camera, base, t)`` returns); metres.

    Returns:
        ``(..., 4, 4)`` float64 base-to-world poses.
    """
    return np.asarray(T_world_cam, dtype=np.float64) @ np.asarray(T_cam_base, dtype=np.float64)
