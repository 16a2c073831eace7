"""The node's outputs, defined once: the topic table and one FrameResult -> its messages.

:data:`OUTPUTS` names every per-frame output (topic relative to the node's namespace,
message type, built only on demand or always); :class:`FrameMessages` builds each of them
from one :class:`~unihoi_ros.pipeline.results.FrameResult`. The live node
(:class:`unihoi_ros.ros.outputs.FrameOutputs`) and the bag of ``unihoi process``
(:class:`unihoi_ros.offline.BagOutputs`) both publish from this table; the bag asks for its
compact encodings (``compact``: depth ``16UC1`` millimetres, confidence ``mono8``).

Conventions (docs/conventions.md): every header carries the frame's stamp; camera outputs
use the frame id ``<camera>_optical_frame``; poses (``pose``, ``/tf``, ``trajectory``) are
in the world frame with REP-103 body axes: the camera pose is converted from the
pipeline's optical-axes world here, once per frame (:attr:`FrameMessages.T_world_cam`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from unihoi_ros.geometry.frames import body_world_pose
from unihoi_ros.ros.msg.camera_info import camera_info_from_result
from unihoi_ros.ros.msg.cloud import point_cloud_msg, tracks_msg
from unihoi_ros.ros.msg.image import array_to_image, confidence_image_msg, depth_image_msg
from unihoi_ros.ros.msg.tf import pose_stamped_msg, tf_msg, transform_stamped_msg
from unihoi_ros.ros.msg.types import (
    CAMERA_INFO,
    DIAGNOSTIC_ARRAY,
    IMAGE,
    PATH,
    POINT_CLOUD2,
    POSE_STAMPED,
    TF_MESSAGE,
    WORLD_FRAME,
    optical_frame_id,
)

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

__all__ = ["DEFAULT_OUTPUT_TOPICS", "OUTPUTS", "FrameMessages", "Output",
           "frame_result_messages", "output"]


@dataclass(frozen=True)
class Output:
    """One per-frame output of the node.

    Attributes:
        name: the output's key (``"depth"``).
        topic: its topic relative to the node's namespace (``"depth/image"``; ``/tf``
            absolute).
        msgtype: ROS 2 interface name.
        on_demand: built only while someone subscribes (costly, or growing).
    """

    name: str
    topic: str
    msgtype: str
    on_demand: bool = False


#: Every per-frame output, in publishing order.
OUTPUTS: tuple[Output, ...] = (
    Output("depth", "depth/image", IMAGE),
    Output("camera_info", "depth/camera_info", CAMERA_INFO),
    Output("confidence", "confidence/image", IMAGE),
    Output("tf", "/tf", TF_MESSAGE),
    Output("points", "points", POINT_CLOUD2, on_demand=True),
    Output("tracks", "tracks", POINT_CLOUD2, on_demand=True),
    Output("trajectory", "trajectory", PATH, on_demand=True),
    Output("pose", "pose", POSE_STAMPED),
)
_BY_NAME = {o.name: o for o in OUTPUTS}

#: Every topic the node publishes (relative names resolve under its namespace) -> type:
#: the per-frame outputs and ``/diagnostics``.
DEFAULT_OUTPUT_TOPICS: dict[str, str] = {
    **{o.topic: o.msgtype for o in OUTPUTS},
    "/diagnostics": DIAGNOSTIC_ARRAY,
}


def output(name: str) -> Output:
    """The :class:`Output` called ``name``.

    Raises:
        KeyError: no such output.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no output {name!r}; known: {sorted(_BY_NAME)}") from None


class FrameMessages:
    """The messages of one FrameResult, each built when asked for (:meth:`build`).

    Args:
        result: the frame.
        frame_id: the camera's optical frame (``<camera>_optical_frame``).
        world_frame: frame of ``pose``, ``/tf`` and ``tracks``.
        typestore: rosbags typestore (default Humble's).
        compact: bag encodings: depth ``16UC1`` millimetres (0 invalid), confidence
            ``mono8`` (x 255); else ``32FC1`` metres (NaN invalid) and ``32FC1`` in [0, 1].

    Attributes:
        T_world_cam: ``(4, 4)`` camera pose in the world frame with REP-103 body axes
            (:func:`~unihoi_ros.geometry.frames.body_world_pose` of the pipeline's
            optical-axes pose): what ``pose``, ``/tf`` and the trajectory hold.
    """

    def __init__(self, result: FrameResult, frame_id: str, world_frame: str = WORLD_FRAME,
                 typestore: Any | None = None, *, compact: bool = False) -> None:
        self.result, self.frame_id, self.world_frame = result, frame_id, world_frame
        self.typestore, self.compact = typestore, compact
        self.stamp_ns = int(result.stamp_ns)
        self.T_world_cam = body_world_pose(result.T_world_cam)

    def build(self, name: str, tracks: Any | None = None) -> Any:
        """The message of output ``name`` (``trajectory`` needs the stream's history: the
        caller keeps it; ``tracks`` needs the frame's
        :class:`~unihoi_ros.tracks.TrackSet`).

        Raises:
            KeyError: not an output built per frame.
        """
        builders = {"depth": self._depth, "camera_info": self._camera_info,
                    "confidence": self._confidence, "tf": self.tf, "points": self._points,
                    "tracks": lambda: tracks_msg(tracks, self.world_frame, self.typestore),
                    "pose": self._pose}
        if name not in builders:
            raise KeyError(f"{name!r} is not built from one frame")
        return builders[name]()

    def _depth(self) -> Any:
        if self.compact:
            from unihoi_ros.io.run_layout import depth_to_mm

            return array_to_image(depth_to_mm(self.result.depth), self.stamp_ns, self.frame_id,
                                  self.typestore)
        return depth_image_msg(self.result, self.frame_id, self.typestore)

    def _camera_info(self) -> Any:
        return camera_info_from_result(self.result, self.frame_id, self.typestore)

    def _confidence(self) -> Any:
        if self.compact:
            from unihoi_ros.io.run_layout import confidence_to_u8

            return array_to_image(confidence_to_u8(self.result.confidence), self.stamp_ns,
                                  self.frame_id, self.typestore)
        return confidence_image_msg(self.result, self.frame_id, self.typestore)

    def _points(self) -> Any:
        return point_cloud_msg(self.result, self.frame_id, self.typestore)

    def _pose(self) -> Any:
        return pose_stamped_msg(self.T_world_cam, self.stamp_ns, self.world_frame,
                                self.typestore)

    def tf(self, child_frame: str | None = None, T_world_child: np.ndarray | None = None) -> Any:
        """``/tf`` of the frame: ``world_frame -> frame_id`` (the camera pose), or
        ``world_frame -> child_frame`` with the ``(4, 4)`` pose ``T_world_child`` (body-axes
        world, metres; e.g. a robot base through the camera's pose)."""
        child = self.frame_id if child_frame is None else child_frame
        T = self.T_world_cam if T_world_child is None else T_world_child
        return tf_msg([transform_stamped_msg(T, self.stamp_ns, self.world_frame, child,
                                             self.typestore)], self.typestore)


def frame_result_messages(
    result: FrameResult,
    camera: str = "camera",
    parent_frame: str = WORLD_FRAME,
    *,
    points: bool = True,
    typestore: Any | None = None,
) -> dict[str, Any]:
    """The outputs of one FrameResult that need no history, keyed by relative topic name.

    Keys: ``depth/image``, ``depth/camera_info``, ``confidence/image``, ``/tf``, ``pose``
    and ``points`` (only when ``points``); frame id ``<camera>_optical_frame``; every stamp
    is ``result.stamp_ns``. ``trajectory`` and ``tracks`` need the stream's history.
    """
    msgs = FrameMessages(result, optical_frame_id(camera), parent_frame, typestore)
    return {o.topic: msgs.build(o.name) for o in OUTPUTS
            if o.name not in ("trajectory", "tracks") and (points or o.name != "points")}
