"""Cyclone DDS topic types with ROS 2's DDS names, carrying CDR bytes.

ROS 2 maps ``pkg/msg/Name`` to the DDS type ``pkg::msg::dds_::Name_`` on topic ``rt/<name>``;
the structs below spell out the ROS 2 IDL of every message this package exchanges (keyless,
final extensibility). Cyclone DDS announces a topic's type from them (XTypes type
information, matched by ROS 2 peers); their plain CDR (XCDR1) equals rosbags'
``serialize_cdr`` of the same message (tested for the Humble and Jazzy typestores).

Samples never go through these structs' fields: :func:`wire_type` gives, per message type,
a struct with the same IDL (same name, fields, type identifier) whose samples carry their
CDR bytes (``from_cdr(data)``, ``sample.cdr``): Cyclone's public
``DataWriter.write`` writes what ``serialize()`` returns and ``DataReader.take`` hands the
received bytes to ``deserialize()``. The bytes are made and read by the one codec,
:mod:`unihoi_ros.ros.wire` (rosbags).

Importing this module needs ``cyclonedds``; :mod:`unihoi_ros.ros.messages` does not.

No ``from __future__ import annotations`` here: cyclonedds resolves the field annotations
of IdlStruct classes at run time and cannot evaluate postponed (string) annotations such as
``"types.sequence[PointField]"``.
"""

import functools
from dataclasses import dataclass, field

from unihoi_ros.optional import require
from unihoi_ros.ros.names import dds_type_name

_cdds_idl = require("cyclonedds.idl")
types = require("cyclonedds.idl.types")
IdlStruct = _cdds_idl.IdlStruct

u8seq = types.sequence[types.uint8]


# --------------------------------------------------------------------------- builtin, std
@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    """``builtin_interfaces/Time``: seconds and nanoseconds."""

    sec: types.int32 = 0
    nanosec: types.uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    """``std_msgs/Header``."""

    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


# --------------------------------------------------------------------------- sensor_msgs
@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    """``sensor_msgs/Image``; ``data`` is bytes-like or a numpy uint8 array."""

    header: Header = field(default_factory=Header)
    height: types.uint32 = 0
    width: types.uint32 = 0
    encoding: str = ""
    is_bigendian: types.uint8 = 0
    step: types.uint32 = 0
    data: u8seq = field(default_factory=list)


@dataclass
class CompressedImage(IdlStruct, typename="sensor_msgs::msg::dds_::CompressedImage_"):
    """``sensor_msgs/CompressedImage``."""

    header: Header = field(default_factory=Header)
    format: str = ""
    data: u8seq = field(default_factory=list)


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    """``sensor_msgs/RegionOfInterest``."""

    x_offset: types.uint32 = 0
    y_offset: types.uint32 = 0
    height: types.uint32 = 0
    width: types.uint32 = 0
    do_rectify: bool = False


@dataclass
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    """``sensor_msgs/CameraInfo`` (``k``, ``r`` row-major 3x3, ``p`` row-major 3x4)."""

    header: Header = field(default_factory=Header)
    height: types.uint32 = 0
    width: types.uint32 = 0
    distortion_model: str = ""
    d: types.sequence[types.float64] = field(default_factory=list)
    k: types.array[types.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: types.array[types.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: types.array[types.float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: types.uint32 = 0
    binning_y: types.uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


@dataclass
class PointField(IdlStruct, typename="sensor_msgs::msg::dds_::PointField_"):
    """``sensor_msgs/PointField``."""

    name: str = ""
    offset: types.uint32 = 0
    datatype: types.uint8 = 0
    count: types.uint32 = 0


@dataclass
class PointCloud2(IdlStruct, typename="sensor_msgs::msg::dds_::PointCloud2_"):
    """``sensor_msgs/PointCloud2``; ``data`` is bytes-like or a numpy uint8 array."""

    header: Header = field(default_factory=Header)
    height: types.uint32 = 0
    width: types.uint32 = 0
    fields: types.sequence[PointField] = field(default_factory=list)
    is_bigendian: bool = False
    point_step: types.uint32 = 0
    row_step: types.uint32 = 0
    data: u8seq = field(default_factory=list)
    is_dense: bool = False


# --------------------------------------------------------------------------- geometry_msgs
@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    """``geometry_msgs/Vector3``."""

    x: types.float64 = 0.0
    y: types.float64 = 0.0
    z: types.float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    """``geometry_msgs/Quaternion`` (x, y, z, w)."""

    x: types.float64 = 0.0
    y: types.float64 = 0.0
    z: types.float64 = 0.0
    w: types.float64 = 1.0


@dataclass
class Transform(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    """``geometry_msgs/Transform``."""

    translation: Vector3 = field(default_factory=Vector3)
    rotation: Quaternion = field(default_factory=Quaternion)


@dataclass
class TransformStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TransformStamped_"):
    """``geometry_msgs/TransformStamped``."""

    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    transform: Transform = field(default_factory=Transform)


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    """``geometry_msgs/Point``."""

    x: types.float64 = 0.0
    y: types.float64 = 0.0
    z: types.float64 = 0.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    """``geometry_msgs/Pose``."""

    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    """``geometry_msgs/PoseStamped``."""

    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


# --------------------------------------------------------------------------- tf2, nav, diag
@dataclass
class TFMessage(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    """``tf2_msgs/TFMessage``."""

    transforms: types.sequence[TransformStamped] = field(default_factory=list)


@dataclass
class Path(IdlStruct, typename="nav_msgs::msg::dds_::Path_"):
    """``nav_msgs/Path``."""

    header: Header = field(default_factory=Header)
    poses: types.sequence[PoseStamped] = field(default_factory=list)


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    """``diagnostic_msgs/KeyValue``."""

    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    """``diagnostic_msgs/DiagnosticStatus`` (``level`` is IDL ``octet``: ROS ``byte``)."""

    level: types.byte = 0
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: types.sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    """``diagnostic_msgs/DiagnosticArray``."""

    header: Header = field(default_factory=Header)
    status: types.sequence[DiagnosticStatus] = field(default_factory=list)


#: ROS 2 interface name -> IDL struct.
IDL_TYPES: dict[str, type[IdlStruct]] = {
    "builtin_interfaces/msg/Time": Time,
    "std_msgs/msg/Header": Header,
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CompressedImage": CompressedImage,
    "sensor_msgs/msg/RegionOfInterest": RegionOfInterest,
    "sensor_msgs/msg/CameraInfo": CameraInfo,
    "sensor_msgs/msg/PointField": PointField,
    "sensor_msgs/msg/PointCloud2": PointCloud2,
    "geometry_msgs/msg/Vector3": Vector3,
    "geometry_msgs/msg/Quaternion": Quaternion,
    "geometry_msgs/msg/Transform": Transform,
    "geometry_msgs/msg/TransformStamped": TransformStamped,
    "geometry_msgs/msg/Point": Point,
    "geometry_msgs/msg/Pose": Pose,
    "geometry_msgs/msg/PoseStamped": PoseStamped,
    "tf2_msgs/msg/TFMessage": TFMessage,
    "nav_msgs/msg/Path": Path,
    "diagnostic_msgs/msg/KeyValue": KeyValue,
    "diagnostic_msgs/msg/DiagnosticStatus": DiagnosticStatus,
    "diagnostic_msgs/msg/DiagnosticArray": DiagnosticArray,
}


def idl_type(ros_type: str) -> type[IdlStruct]:
    """The IDL struct of a ROS 2 interface name.

    Raises:
        KeyError: the type is not one of :data:`IDL_TYPES`.
    """
    try:
        return IDL_TYPES[ros_type]
    except KeyError:
        raise KeyError(
            f"no Cyclone DDS type for {ros_type!r}; known: {sorted(IDL_TYPES)}"
        ) from None


@functools.cache
def wire_type(ros_type: str) -> type[IdlStruct]:
    """The topic type of ``ros_type`` for Cyclone DDS: the IDL of :func:`idl_type` (same
    type name, fields and type identifier, so peers see the ROS 2 type) whose samples are
    CDR bytes: ``serialize()`` returns them (``DataWriter.write``), ``deserialize(data)``
    keeps them (``DataReader.take``). A sample's ``cdr`` is plain CDR little endian with
    its 4-byte header (:func:`unihoi_ros.ros.wire.serialize`, padded to 4 bytes); a taken
    one also has Cyclone's ``sample_info``. Cached: one class per type. (IdlStruct must be
    the only base: Cyclone reads a struct's first base as its IDL base type.)

    Raises:
        KeyError: the type is not one of :data:`IDL_TYPES`.
    """
    decl = idl_type(ros_type)

    class Wire(IdlStruct, typename=decl.__idl_typename__):
        __annotations__ = dict(decl.__annotations__)
        __slots__ = ("cdr", "sample_info")

        @classmethod
        def from_cdr(cls, data: bytes) -> "Wire":
            """A sample holding ``data`` (plain CDR little endian, header included, its
            length a multiple of 4 as DDS samples are)."""
            sample = object.__new__(cls)
            sample.cdr = data
            return sample

        def serialize(self, buffer=None, endianness=None, use_version_2=None) -> bytes:
            return self.cdr

        @classmethod
        def deserialize(cls, data: bytes, has_header: bool = True,
                        use_version_2: bool | None = None) -> "Wire":
            return cls.from_cdr(data)

        @classmethod
        def deserialize_key(cls, data: bytes, has_header: bool = True,
                            use_version_2: bool | None = None) -> "Wire":
            return cls.from_cdr(data)  # keyless: an invalid sample's (dropped) key

    Wire.__name__ = Wire.__qualname__ = f"{decl.__name__}Cdr"
    return Wire


__all__ = ["IDL_TYPES", "dds_type_name", "idl_type", "wire_type"]
