"""``sensor_msgs/CameraInfo`` of the depth image.

Conventions (docs/conventions.md): a pinhole camera without distortion, ``k`` = K row-major,
``P = [K | 0]`` (monocular), ``R = I`` and ``plumb_bob`` with five zeros; the size is the
depth image's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unihoi_ros.ros.msg.types import CAMERA_INFO, REGION_OF_INTEREST, make_header, msg_class

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

__all__ = ["camera_info_from_result", "camera_info_msg"]


def camera_info_msg(
    K: np.ndarray,
    width: int,
    height: int,
    stamp_ns: int,
    frame_id: str,
    typestore: Any | None = None,
) -> Any:
    """``sensor_msgs/CameraInfo`` of a pinhole camera without distortion.

    Args:
        K: ``(3, 3)`` intrinsics in pixels of an image ``width`` x ``height``.

    ``k`` is K row-major, ``p = [K | 0]`` (monocular: Tx = Ty = 0), ``r = I``,
    ``distortion_model = "plumb_bob"`` with ``d = [0, 0, 0, 0, 0]``.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4), dtype=np.float64)
    P[:, :3] = K
    roi = msg_class(REGION_OF_INTEREST, typestore)(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return msg_class(CAMERA_INFO, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5, dtype=np.float64),
        k=K.reshape(-1).copy(),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def camera_info_from_result(
    result: FrameResult, frame_id: str, typestore: Any | None = None
) -> Any:
    """CameraInfo for the depth image's size with the frame's K (see :func:`camera_info_msg`)."""
    return camera_info_msg(
        result.K, result.width, result.height, result.stamp_ns, frame_id, typestore
    )
