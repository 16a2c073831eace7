"""Frame conventions of the published outputs (REP-103 / REP-105).

The pipeline's world is the stream's first camera with OpenCV / REP-103 *optical* axes
(x right, y down, z forward): that is what :class:`~unihoi_ros.pipeline.FrameResult`'s
``T_world_cam`` holds and what the evaluation uses. What the node publishes as its world
frame has REP-103 *body* axes (x forward, y left, z up), so RViz shows the scene upright
and a robot's tools read it like any other fixed frame: the same origin, rotated.
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
