"""The node's per-frame outputs on a transport: publishers, and one FrameResult published.

What is published, on which topic, with which type, and how each message is built from a
FrameResult is defined once, in :mod:`unihoi_ros.ros.msg.bundle` (:data:`OUTPUTS`,
:class:`FrameMessages`), which the bag of ``unihoi process`` uses too; here are only the
live node's rules: ``points``, ``tracks`` and ``trajectory`` are built only while someone
subscribes; the trajectory is kept compactly (:class:`PathSerializer`); the tracks come
from the stream's :class:`~unihoi_ros.tracks.stage.TrackingStage`; TF goes
``world_frame`` -> camera frame, or with ``base_frame`` ``world_frame`` -> ``base_frame``
through tf2's camera -> base transform, so the camera keeps the robot's parent. Each
output is published on its own: one failing (logged, counted) does not keep the others
back.

``tracks``: the long-term 3D point tracks as a PointCloud2 in the world frame: x, y, z
(metres), ``id`` (uint32, stable for a track's life), ``dynamic`` (uint8: hands, moving
objects) and ``rgb``; only tracks seen in the frame or static ones (held at their anchor)
are included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from unihoi_ros.errors import TransformUnavailableError, one_line
from unihoi_ros.geometry.frames import base_world_pose
from unihoi_ros.ros import wire
from unihoi_ros.ros.msg.bundle import OUTPUTS, FrameMessages
from unihoi_ros.ros.params import NodeParams
from unihoi_ros.ros.path_serializer import PathSerializer
from unihoi_ros.ros.ratelog import RateLimitedLog
from unihoi_ros.ros.transport import Transport
from unihoi_ros.tracks.stage import TrackingStage


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
        self.path = PathSerializer(typestore, params.world_frame, params.trajectory_max_poses)
        self.pubs: dict[str, Any] = {}
        self.tf_enabled = False
        self.tracking = TrackingStage()  # fed while someone subscribes to tracks

    def create(self, tf_enabled: bool) -> None:
        """Create the publishers (``tf_enabled``: TF broadcaster available and wanted; the
        transport's own ``/tf`` broadcaster publishes it)."""
        qos = self.params.output_qos_profile
        self.pubs = {o.name: self.transport.create_publisher(o.topic, o.msgtype, qos)
                     for o in OUTPUTS if o.name != "tf"}
        self.tf_enabled = tf_enabled

    def wanted(self, name: str) -> bool:
        """Someone subscribes to output ``name`` (on-demand outputs are built only then)."""
        return self.pubs[name].subscription_count > 0

    def subscriber_counts(self) -> dict[str, int]:
        """Subscriptions matched by each output's publisher right now, by fully qualified
        topic (``/tf`` too once its broadcaster exists): who listens, so who would miss a
        frame published now (volatile outputs are not resent to later subscribers)."""
        counts = {pub.topic: pub.subscription_count for pub in self.pubs.values()}
        tf = self.transport.tf_subscription_count() if self.tf_enabled else None
        if tf is not None:
            counts["/tf"] = tf
        return counts

    @property
    def points_wanted(self) -> bool:
        """Someone subscribes to ``points`` (clouds are built only then)."""
        return self.wanted("points")

    def reset(self) -> None:
        """A new stream (world frame): forget the trajectory and the tracks."""
        self.path.clear()
        self.tracking.reset()

    def _tf_message(self, msgs: FrameMessages) -> Any | None:
        """``/tf`` of one frame: ``world_frame -> frame_id``, or with ``base_frame``
        ``world_frame -> base_frame`` through tf2's camera -> base transform at the frame's
        stamp; None (counted as ``tf_lookup_failures``, logged) when that transform is
        unknown."""
        p, stamp, frame_id = self.params, msgs.stamp_ns, msgs.frame_id
        if not p.base_frame:
            return msgs.tf()
        try:
            T_cam_base = self.transport.lookup_transform(frame_id, p.base_frame, stamp)
        except TransformUnavailableError as exc:
            self._count("tf_lookup_failures", 1)
            self._ratelog(logging.WARNING, "tf_lookup", "no %s -> %s transform at frame "
                          "%d, so no %s -> %s on /tf for it: %s", frame_id, p.base_frame,
                          stamp, p.world_frame, p.base_frame, one_line(exc))
            return None
        return msgs.tf(p.base_frame, base_world_pose(msgs.T_world_cam, T_cam_base))

    def _ser(self, msg: Any, msgtype: str) -> memoryview | None:
        return wire.serialize(msg, msgtype, self.typestore) if self.transport.wants_cdr else None

    def _publish_one(self, name: str, msgtype: str, msgs: FrameMessages,
                     points_built: bool) -> None:
        """Build and publish output ``name`` of the frame (or skip it: see module doc)."""
        if name == "tf":
            if self.tf_enabled:
                msg = self._tf_message(msgs)
                if msg is not None:
                    self.transport.publish_tf(msg, self._ser(msg, msgtype))
            return
        pub = self.pubs[name]
        if name == "trajectory":
            if self.wanted(name):
                if self.transport.wants_cdr:  # bytes only: no message objects for a long path
                    pub.publish(None, self.path.cdr(msgs.stamp_ns))
                else:
                    pub.publish(self.path.message(msgs.stamp_ns))
            return
        if name == "tracks":
            track_set = self.tracking.update(msgs.result, wanted=self.wanted(name))
            if track_set is None:
                return
            msg = msgs.build(name, track_set)
        elif name == "points":
            if not (points_built and self.wanted(name)):
                return
            msg = msgs.build(name)
        else:
            msg = msgs.build(name)
        pub.publish(msg, self._ser(msg, msgtype))

    def publish(self, result: Any, frame_id: str, points_built: bool) -> None:
        """Publish every output of ``result`` (a FrameResult) with ``frame_id``."""
        msgs = FrameMessages(result, frame_id, self.params.world_frame, self.typestore)
        self.path.append(msgs.stamp_ns, msgs.T_world_cam)
        for o in OUTPUTS:
            try:
                self._publish_one(o.name, o.msgtype, msgs, points_built)
            except Exception as exc:  # one output's failure must not skip the others
                self._count("publish_errors", 1)
                self._ratelog(logging.ERROR, f"publish_{o.name}", "publishing %s of frame %d "
                              "failed: %r", o.name, msgs.stamp_ns, exc)
