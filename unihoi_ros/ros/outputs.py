"""The node's per-frame outputs: publishers, and one FrameResult turned into messages.

Topics (relative to the node's namespace): ``depth/image``, ``depth/camera_info``,
``confidence/image``, ``points``, ``tracks``, ``trajectory``, ``pose``, and TF on ``/tf``
(``world_frame`` -> camera frame; with ``base_frame``, ``world_frame`` -> ``base_frame``
through tf2's camera -> base transform, so the camera keeps the robot's parent).
Each output is published on its own: one failing (logged, counted) does not keep the
others back. ``points`` and ``tracks`` are built only while someone subscribes.

``tracks``: the long-term 3D point tracks (:class:`unihoi_ros.tracks.PointTracker`) as a
PointCloud2 in the world frame: x, y, z (metres), ``id`` (uint32, stable for a track's
life), ``dynamic`` (uint8: hands, moving objects) and ``rgb``; only tracks seen in the
frame or static ones (held at their anchor) are included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from unihoi_ros.errors import TransformUnavailableError, one_line
from unihoi_ros.geometry.frames import base_world_pose, body_world_pose
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.path_serializer import PathSerializer
from unihoi_ros.ros.ratelog import RateLimitedLog
from unihoi_ros.ros.transport import Transport

#: Output name -> (topic relative to the namespace, message type).
OUTPUT_TOPICS = {
    "depth": ("depth/image", M.IMAGE),
    "camera_info": ("depth/camera_info", M.CAMERA_INFO),
    "confidence": ("confidence/image", M.IMAGE),
    "points": ("points", M.POINT_CLOUD2),
    "tracks": ("tracks", M.POINT_CLOUD2),
    "trajectory": ("trajectory", M.PATH),
    "pose": ("pose", M.POSE_STAMPED),
}


class FrameOutputs:
    """Publishers of the per-frame outputs on ``transport``.

    Args:
        params: the node's parameters (frames, QoS, trajectory length).
        transport: the middleware.
        typestore: rosbags typestore.
        count: ``count(key, n)`` for ``publish_errors``.
        ratelog: rate-limited logger.
    """

    def __init__(self, params: NodeParams, transport: Transport, typestore: Any,
                 count: Callable[[str, int], None], ratelog: RateLimitedLog) -> None:
        self.params, self.transport, self.typestore = params, transport, typestore
        self._count, self._ratelog = count, ratelog
        self._wants_cdr = transport.wants_cdr
        self.path = PathSerializer(typestore, params.world_frame, params.trajectory_max_poses)
        self.pubs: dict[str, Any] = {}
        self.tf_enabled = False
        self._tracker: Any | None = None  # created when someone subscribes to tracks

    def create(self, tf_enabled: bool) -> None:
        """Create the publishers (``tf_enabled``: TF broadcaster available and wanted)."""
        qos = self.params.output_qos_profile
        self.pubs = {name: self.transport.create_publisher(topic, msgtype, qos)
                     for name, (topic, msgtype) in OUTPUT_TOPICS.items()}
        self.tf_enabled = tf_enabled

    @property
    def points_wanted(self) -> bool:
        """Someone subscribes to ``points`` (clouds are built only then)."""
        return self.pubs["points"].subscription_count > 0

    def reset(self) -> None:
        """A new stream (world frame): forget the trajectory and the tracks."""
        self.path.clear()
        if self._tracker is not None:
            self._tracker.reset()

    def _tracks(self, result: Any, stamp: int) -> Any | None:
        """The ``tracks`` message of ``result``, or None while nobody subscribes."""
        if self.pubs["tracks"].subscription_count == 0:
            return None
        if self._tracker is None:
            from unihoi_ros.tracks import PointTracker

            self._tracker = PointTracker()
        return M.tracks_msg(self._tracker.update(result), self.params.world_frame,
                            self.typestore)

    def _tf_message(self, T_world_cam: Any, stamp: int, frame_id: str) -> Any | None:
        """``/tf`` of one frame: ``world_frame -> frame_id`` (the camera pose
        ``T_world_cam``, ``(4, 4)`` with body-axes world), or with ``base_frame``
        ``world_frame -> base_frame`` through tf2's camera -> base transform at ``stamp``;
        None (counted as ``tf_lookup_failures``, logged) when that transform is unknown."""
        p = self.params
        if not p.base_frame:
            child, T = frame_id, T_world_cam
        else:
            try:
                T_cam_base = self.transport.lookup_transform(frame_id, p.base_frame, stamp)
            except TransformUnavailableError as exc:
                self._count("tf_lookup_failures", 1)
                self._ratelog(logging.WARNING, "tf_lookup", "no %s -> %s transform at frame "
                              "%d, so no %s -> %s on /tf for it: %s", frame_id, p.base_frame,
                              stamp, p.world_frame, p.base_frame, one_line(exc))
                return None
            child, T = p.base_frame, base_world_pose(T_world_cam, T_cam_base)
        return M.tf_msg([M.transform_stamped_msg(T, stamp, p.world_frame, child,
                                                 self.typestore)], self.typestore)

    def _ser(self, msg: Any, msgtype: str) -> memoryview | None:
        return self.typestore.serialize_cdr(msg, msgtype) if self._wants_cdr else None

    def publish(self, result: Any, frame_id: str, points_built: bool) -> None:
        """Publish every output of ``result`` (a FrameResult) with ``frame_id``."""
        p, ts, stamp = self.params, self.typestore, result.stamp_ns
        T_world_cam = body_world_pose(result.T_world_cam)
        self.path.append(stamp, T_world_cam)

        def send(name: str, msg: Any) -> None:
            self.pubs[name].publish(msg, self._ser(msg, OUTPUT_TOPICS[name][1]))

        def trajectory() -> None:
            traj = self.pubs["trajectory"]
            if traj.subscription_count > 0:
                if self._wants_cdr:  # bytes only: no message objects for a long path
                    traj.publish(None, self.path.cdr(stamp))
                else:
                    traj.publish(self.path.message(stamp))

        def points() -> None:
            if points_built and self.points_wanted:
                send("points", M.point_cloud_msg(result, frame_id, ts))

        def tracks() -> None:
            msg = self._tracks(result, stamp)
            if msg is not None:
                send("tracks", msg)

        def tf() -> None:
            msg = self._tf_message(T_world_cam, stamp, frame_id)
            if msg is not None:
                self.transport.publish_tf(msg, self._ser(msg, M.TF_MESSAGE))

        outputs = {
            "depth": lambda: send("depth", M.depth_image_msg(result, frame_id, ts)),
            "camera_info": lambda: send("camera_info",
                                        M.camera_info_from_result(result, frame_id, ts)),
            "confidence": lambda: send("confidence", M.confidence_image_msg(result, frame_id, ts)),
            "tf": tf if self.tf_enabled else None,
            "points": points,
            "tracks": tracks,
            "trajectory": trajectory,
            "pose": lambda: send("pose", M.pose_stamped_msg(T_world_cam, stamp, p.world_frame,
                                                            ts)),
        }
        for name, output in outputs.items():
            if output is None:
                continue
            try:
                output()
            except Exception as exc:  # one output's failure must not skip the others
                self._count("publish_errors", 1)
                self._ratelog(logging.ERROR, f"publish_{name}", "publishing %s of frame %d "
                              "failed: %r", name, stamp, exc)
