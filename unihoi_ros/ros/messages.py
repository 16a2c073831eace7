"""ROS 2 message conversion (no transport): numpy <-> sensor_msgs, FrameResult -> outputs.

A facade: every name is defined in a module of :mod:`unihoi_ros.ros.msg` (one per message
family) and re-exported here, so ``from unihoi_ros.ros import messages as M`` gives all of
them:

- :mod:`unihoi_ros.ros.msg.types`: ``get_typestore``, ``msg_class``, the type names
  (``IMAGE``, ``CAMERA_INFO``, ... and ``MESSAGE_TYPES``), ``DEFAULT_DISTRO``,
  ``WORLD_FRAME``, ``stamp_to_ns``, ``ns_to_stamp``,
  ``make_header``, ``optical_frame_id`` and the errors ``ImageConversionError``,
  ``UnsupportedEncodingError``, ``MalformedImageError``.
- :mod:`unihoi_ros.ros.msg.image`: ``image_to_rgb``, ``image_to_array``, ``rgb_to_image``,
  ``array_to_image``, ``RGB_ENCODINGS``, ``ARRAY_ENCODINGS``, ``compressed_to_rgb``,
  ``rgb_to_compressed``, ``depth_image_msg``, ``confidence_image_msg``.
- :mod:`unihoi_ros.ros.msg.camera_info`: ``camera_info_msg``, ``camera_info_from_result``.
- :mod:`unihoi_ros.ros.msg.cloud`: ``points_to_cloud``, ``point_cloud_msg``,
  ``cloud_to_points``, ``CLOUD_DTYPE``, ``POINTFIELD_FLOAT32``.
- :mod:`unihoi_ros.ros.msg.tf`: ``transform_stamped_msg``, ``tf_msg``,
  ``pose_stamped_msg``, ``path_msg``, ``transform_matrix``.
- :mod:`unihoi_ros.ros.msg.diagnostics`: ``diagnostic_status_msg``,
  ``diagnostic_array_msg``, ``DIAG_OK``, ``DIAG_WARN``, ``DIAG_ERROR``, ``DIAG_STALE``.
- :mod:`unihoi_ros.ros.msg.bundle`: the outputs' table (``OUTPUTS``, ``Output``,
  ``output``, ``DEFAULT_OUTPUT_TOPICS``) and one FrameResult -> its messages
  (``FrameMessages``, ``frame_result_messages``).
- :mod:`unihoi_ros.geometry.quaternions` (numpy): ``rotation_to_quaternion`` and
  ``quaternion_to_rotation`` are kept here as aliases of its ``quaternion_from_matrix`` and
  ``matrix_from_quaternion``; new code should import those.

The canonical in-memory message is the ``rosbags`` typestore class (for example
``get_typestore().types['sensor_msgs/msg/Image']``): the bag writer uses rosbags directly,
``serialize_cdr`` is the byte reference, and the transports (Cyclone DDS, rclpy) convert
from and to it. Nothing here imports a transport; only numpy, rosbags and (lazily, for
colour conversion and compressed images) OpenCV.

Conventions (docs/conventions.md): every header carries the input frame's stamp (never
``now()``); depth is ``32FC1`` metres along the optical z axis with NaN where invalid
(REP-118); CameraInfo has ``P = [K | 0]``, ``R = I`` and ``plumb_bob`` with five zeros;
PointCloud2 carries x, y, z and ``rgb`` (FLOAT32 holding the bytes B, G, R, 0); TF goes
from the world frame (:data:`WORLD_FRAME` by default; REP-103 body axes, see
:mod:`unihoi_ros.geometry.frames`) to the camera's optical frame; quaternions are ordered
x, y, z, w.

Arrays put into messages are not copied when they are already contiguous with the right
dtype: the message then shares memory with the caller's array.
"""

from __future__ import annotations

from unihoi_ros.geometry.quaternions import matrix_from_quaternion, quaternion_from_matrix
from unihoi_ros.ros.msg.bundle import (
    DEFAULT_OUTPUT_TOPICS,
    OUTPUTS,
    FrameMessages,
    Output,
    frame_result_messages,
    output,
)
from unihoi_ros.ros.msg.camera_info import camera_info_from_result, camera_info_msg
from unihoi_ros.ros.msg.cloud import (
    CLOUD_DTYPE,
    POINTFIELD_FLOAT32,
    TRACKS_DTYPE,
    cloud_fields,
    cloud_to_points,
    point_cloud_msg,
    points_to_cloud,
    tracks_msg,
    tracks_to_cloud,
)
from unihoi_ros.ros.msg.diagnostics import (
    DIAG_ERROR,
    DIAG_OK,
    DIAG_STALE,
    DIAG_WARN,
    diagnostic_array_msg,
    diagnostic_status_msg,
    report_array_msg,
)
from unihoi_ros.ros.msg.image import (
    ARRAY_ENCODINGS,
    RGB_ENCODINGS,
    array_to_image,
    compressed_to_rgb,
    confidence_image_msg,
    depth_image_msg,
    image_to_array,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)
from unihoi_ros.ros.msg.tf import (
    path_msg,
    pose_stamped_msg,
    tf_msg,
    transform_matrix,
    transform_stamped_msg,
)
from unihoi_ros.ros.msg.types import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    DEFAULT_DISTRO,
    DIAGNOSTIC_ARRAY,
    DIAGNOSTIC_STATUS,
    HEADER,
    IMAGE,
    KEY_VALUE,
    MESSAGE_TYPES,
    PATH,
    POINT,
    POINT_CLOUD2,
    POINT_FIELD,
    POSE,
    POSE_STAMPED,
    QUATERNION,
    REGION_OF_INTEREST,
    TF_MESSAGE,
    TIME,
    TRANSFORM,
    TRANSFORM_STAMPED,
    VECTOR3,
    WORLD_FRAME,
    ImageConversionError,
    MalformedImageError,
    UnsupportedEncodingError,
    get_typestore,
    make_header,
    msg_class,
    ns_to_stamp,
    optical_frame_id,
    stamp_to_ns,
)

#: Alias of :func:`unihoi_ros.geometry.quaternions.quaternion_from_matrix` (old name).
rotation_to_quaternion = quaternion_from_matrix
#: Alias of :func:`unihoi_ros.geometry.quaternions.matrix_from_quaternion` (old name).
quaternion_to_rotation = matrix_from_quaternion

__all__ = [
    "ARRAY_ENCODINGS",
    "CAMERA_INFO",
    "CLOUD_DTYPE",
    "COMPRESSED_IMAGE",
    "DEFAULT_DISTRO",
    "DEFAULT_OUTPUT_TOPICS",
    "DIAGNOSTIC_ARRAY",
    "DIAGNOSTIC_STATUS",
    "DIAG_ERROR",
    "DIAG_OK",
    "DIAG_STALE",
    "DIAG_WARN",
    "HEADER",
    "IMAGE",
    "KEY_VALUE",
    "MESSAGE_TYPES",
    "OUTPUTS",
    "PATH",
    "POINT",
    "POINTFIELD_FLOAT32",
    "POINT_CLOUD2",
    "POINT_FIELD",
    "POSE",
    "POSE_STAMPED",
    "QUATERNION",
    "REGION_OF_INTEREST",
    "RGB_ENCODINGS",
    "TF_MESSAGE",
    "TIME",
    "TRACKS_DTYPE",
    "TRANSFORM",
    "TRANSFORM_STAMPED",
    "VECTOR3",
    "WORLD_FRAME",
    "FrameMessages",
    "ImageConversionError",
    "MalformedImageError",
    "Output",
    "UnsupportedEncodingError",
    "array_to_image",
    "camera_info_from_result",
    "camera_info_msg",
    "cloud_fields",
    "cloud_to_points",
    "compressed_to_rgb",
    "confidence_image_msg",
    "depth_image_msg",
    "diagnostic_array_msg",
    "diagnostic_status_msg",
    "frame_result_messages",
    "get_typestore",
    "image_to_array",
    "image_to_rgb",
    "make_header",
    "msg_class",
    "ns_to_stamp",
    "optical_frame_id",
    "output",
    "path_msg",
    "point_cloud_msg",
    "points_to_cloud",
    "pose_stamped_msg",
    "quaternion_to_rotation",
    "report_array_msg",
    "rgb_to_compressed",
    "rgb_to_image",
    "rotation_to_quaternion",
    "stamp_to_ns",
    "tf_msg",
    "tracks_msg",
    "tracks_to_cloud",
    "transform_matrix",
    "transform_stamped_msg",
]
