"""Typestore, message type names, stamps and headers shared by every message family.

The canonical in-memory message is the ``rosbags`` typestore class (for example
``get_typestore().types['sensor_msgs/msg/Image']``); :func:`msg_class` looks one up.

Conventions (docs/conventions.md): every header carries the input frame's stamp (never
``now()``); frame ids of camera outputs are ``<camera>_optical_frame``
(:func:`optical_frame_id`); the published world frame is :data:`WORLD_FRAME`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.optional import require

#: ROS distribution whose message definitions are used by default.
DEFAULT_DISTRO = "humble"
#: Default name of the published world frame (not ``odom``/``map``: a robot has those).
WORLD_FRAME = "unihoi_world"

# Message type names (rosbags / ROS 2 interface names).
TIME = "builtin_interfaces/msg/Time"
HEADER = "std_msgs/msg/Header"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
REGION_OF_INTEREST = "sensor_msgs/msg/RegionOfInterest"
POINT_FIELD = "sensor_msgs/msg/PointField"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
VECTOR3 = "geometry_msgs/msg/Vector3"
QUATERNION = "geometry_msgs/msg/Quaternion"
TRANSFORM = "geometry_msgs/msg/Transform"
TRANSFORM_STAMPED = "geometry_msgs/msg/TransformStamped"
POINT = "geometry_msgs/msg/Point"
POSE = "geometry_msgs/msg/Pose"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
PATH = "nav_msgs/msg/Path"
KEY_VALUE = "diagnostic_msgs/msg/KeyValue"
DIAGNOSTIC_STATUS = "diagnostic_msgs/msg/DiagnosticStatus"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"

#: Every message type this package builds or reads.
MESSAGE_TYPES: tuple[str, ...] = (
    TIME,
    HEADER,
    IMAGE,
    COMPRESSED_IMAGE,
    CAMERA_INFO,
    REGION_OF_INTEREST,
    POINT_FIELD,
    POINT_CLOUD2,
    VECTOR3,
    QUATERNION,
    TRANSFORM,
    TRANSFORM_STAMPED,
    POINT,
    POSE,
    POSE_STAMPED,
    TF_MESSAGE,
    PATH,
    KEY_VALUE,
    DIAGNOSTIC_STATUS,
    DIAGNOSTIC_ARRAY,
)

_NS_PER_S = 1_000_000_000


# --------------------------------------------------------------------------- errors
class ImageConversionError(UnihoiError, ValueError):
    """An image message could not be converted (base of the specific errors below)."""


class UnsupportedEncodingError(ImageConversionError):
    """The image's ``encoding`` (or compressed ``format``) is not one this package reads."""


class MalformedImageError(ImageConversionError):
    """The image's size, ``step`` and data length disagree, or compressed data is corrupt."""


# --------------------------------------------------------------------------- typestore
def get_typestore(distro: str = DEFAULT_DISTRO) -> Any:
    """The rosbags typestore of a ROS 2 distribution (``"humble"``, ``"jazzy"``, ...).

    Cached: every call naming the same distro (any case) returns the same object.

    Raises:
        ValueError: rosbags knows no such distribution.
    """
    return _typestore(distro.strip().upper())


@functools.cache
def _typestore(distro: str) -> Any:
    typesys = require("rosbags.typesys")
    key = f"ROS2_{distro}"
    store = getattr(typesys.Stores, key, None)
    if store is None:
        known = sorted(s.name[5:].lower() for s in typesys.Stores if s.name.startswith("ROS2_"))
        raise ValueError(f"unknown ROS 2 distribution {distro.lower()!r}; rosbags knows {known}")
    return typesys.get_typestore(store)


def msg_class(typename: str, typestore: Any | None = None) -> type:
    """The rosbags message class of ``typename`` (e.g. ``"sensor_msgs/msg/Image"``).

    ``typestore`` None means :func:`get_typestore` of the default distribution.
    """
    return (get_typestore() if typestore is None else typestore).types[typename]


# --------------------------------------------------------------------------- time, header
def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int, typestore: Any | None = None) -> Any:
    """Integer nanoseconds -> ``builtin_interfaces/Time`` (``0 <= nanosec < 1e9``).

    Raises:
        ValueError: the seconds do not fit ``int32``.
    """
    sec, nanosec = divmod(int(ns), _NS_PER_S)
    if not -(2**31) <= sec < 2**31:
        raise ValueError(f"stamp {ns} ns is out of the int32 seconds range of builtin Time")
    return msg_class(TIME, typestore)(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str, typestore: Any | None = None) -> Any:
    """``std_msgs/Header`` with the given stamp (nanoseconds) and frame id."""
    return msg_class(HEADER, typestore)(
        stamp=ns_to_stamp(stamp_ns, typestore), frame_id=str(frame_id)
    )


def optical_frame_id(camera: str = "camera") -> str:
    """REP-105/REP-103 optical frame name of a camera: ``<camera>_optical_frame``."""
    return f"{camera}_optical_frame"


# --------------------------------------------------------------------------- data fields
def as_u8(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's ``data`` (numpy array, bytes, memoryview, list)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)
