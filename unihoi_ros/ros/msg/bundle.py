"""Every per-frame output of one :class:`~unihoi_ros.pipeline.results.FrameResult`.

Conventions (docs/conventions.md): keys are the default relative topic names of
:data:`~unihoi_ros.ros.msg.types.DEFAULT_OUTPUT_TOPICS`; every header carries the frame's
stamp; camera outputs use the frame id ``<camera>_optical_frame``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unihoi_ros.ros.msg.camera_info import camera_info_from_result
from unihoi_ros.ros.msg.cloud import point_cloud_msg
from unihoi_ros.ros.msg.image import confidence_image_msg, depth_image_msg
from unihoi_ros.ros.msg.tf import tf_from_result
from unihoi_ros.ros.msg.types import WORLD_FRAME, optical_frame_id

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

__all__ = ["frame_result_messages"]


def frame_result_messages(
    result: FrameResult,
    camera: str = "camera",
    parent_frame: str = WORLD_FRAME,
    *,
    points: bool = True,
    typestore: Any | None = None,
) -> dict[str, Any]:
    """All per-frame outputs of one FrameResult, keyed by default relative topic name.

    Keys: ``depth/image``, ``depth/camera_info``, ``confidence/image``, ``points`` (only
    when ``points``) and ``/tf``; frame id ``<camera>_optical_frame``; every stamp is
    ``result.stamp_ns``. The trajectory (Path) needs history and is built by the caller.
    """
    frame = optical_frame_id(camera)
    out = {
        "depth/image": depth_image_msg(result, frame, typestore),
        "depth/camera_info": camera_info_from_result(result, frame, typestore),
        "confidence/image": confidence_image_msg(result, frame, typestore),
        "/tf": tf_from_result(result, parent_frame, frame, typestore),
    }
    if points:
        out["points"] = point_cloud_msg(result, frame, typestore)
    return out
