"""ROS 2 message conversion by message family (no transport; rosbags typestore classes).

Modules (import the one you need; :mod:`unihoi_ros.ros.messages` re-exports them all):

- :mod:`~unihoi_ros.ros.msg.types`: typestore, type names, ``WORLD_FRAME``, stamps,
  headers, frame ids, image conversion errors.
- :mod:`~unihoi_ros.ros.msg.image`: raw and compressed images, depth/confidence outputs.
- :mod:`~unihoi_ros.ros.msg.camera_info`: CameraInfo.
- :mod:`~unihoi_ros.ros.msg.cloud`: PointCloud2.
- :mod:`~unihoi_ros.ros.msg.tf`: TransformStamped, TFMessage, PoseStamped, Path.
- :mod:`~unihoi_ros.ros.msg.diagnostics`: DiagnosticStatus/Array and the ``DIAG_*`` levels.
- :mod:`~unihoi_ros.ros.msg.bundle`: the node's outputs defined once (``OUTPUTS``,
  ``DEFAULT_OUTPUT_TOPICS``) and every per-frame message of a FrameResult
  (``FrameMessages``), for the live node and the bag writer alike.

Conventions: docs/conventions.md. The rotation maths lives in
:mod:`unihoi_ros.geometry.quaternions`.
"""

from __future__ import annotations

__all__ = ["bundle", "camera_info", "cloud", "diagnostics", "image", "tf", "types"]
