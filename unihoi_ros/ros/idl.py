"""Cyclone DDS wire types with ROS 2's DDS names, and rosbags <-> IDL conversion.

ROS 2 maps ``pkg/msg/Name`` to the DDS type ``pkg::msg::dds_::Name_`` on topic ``rt/<name>``;
the structs below spell out the ROS 2 IDL of every message this package exchanges (keyless,
final extensibility). On the wire they are plain CDR, little endian (XCDR1): writers and
readers must carry ``Policy.DataRepresentation(use_cdrv0_representation=True)`` (see
:func:`unihoi_ros.ros.qos.to_cyclone_qos`), and then the bytes equal rosbags'
``serialize_cdr`` of the same message (tested for the Humble and Jazzy typestores).

``sequence<uint8>`` fields (image and point-cloud payloads) keep their XTypes type identifier
(``sequence<uint8>``) but are (de)serialised by a fast machine installed here: it writes any
bytes-like object or numpy array in one copy and reads into a numpy ``uint8`` array, instead
of cyclonedds' element-wise ``struct`` packing of Python ints.

Importing this module needs ``cyclonedds``; :mod:`unihoi_ros.ros.messages` does not.

No ``from __future__ import annotations`` here: cyclonedds resolves the field annotations
of IdlStruct classes at run time and cannot evaluate postponed (string) annotations such as
``"types.sequence[PointField]"``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unihoi_ros.optional import require

_cdds_idl = require("cyclonedds.idl")
_mach = require("cyclonedds.idl._machinery")
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


def dds_type_name(ros_type: str) -> str:
    """``"sensor_msgs/msg/Image"`` -> ``"sensor_msgs::msg::dds_::Image_"``."""
    pkg, kind, name = ros_type.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


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


# --------------------------------------------------------------------------- fast uint8[]
class _FastU8SequenceMachine(_mach.PlainCdrV2SequenceOfPrimitiveMachine):
    """``sequence<uint8>`` in one copy: writes bytes-like/numpy, reads a numpy uint8 array."""

    def serialize(self, buffer, value, serialize_kind=None, key_enabled=None):
        if isinstance(value, np.ndarray):
            mv = memoryview(np.ascontiguousarray(value)).cast("B")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            mv = memoryview(value).cast("B")
        else:  # list of ints
            mv = memoryview(np.asarray(value, dtype=np.uint8))
        n = mv.nbytes
        if self.max_length is not None and n > self.max_length:
            raise ValueError(f"sequence of {n} bytes exceeds its bound {self.max_length}")
        buffer.align(4)
        buffer.write("I", 4, n)
        if n:
            buffer.ensure_size(n)
            buffer._bytes[buffer._pos : buffer._pos + n] = mv
            buffer._pos += n

    def deserialize(self, buffer, deserialize_kind=None, key_enabled=None):
        buffer.align(4)
        n = buffer.read("I", 4)
        out = np.frombuffer(buffer._bytes, dtype=np.uint8, count=n, offset=buffer._pos).copy()
        buffer._pos += n
        return out

    def default_initialize(self):
        return np.zeros(0, dtype=np.uint8)


def _install_fast_machines(cls: type[IdlStruct]) -> int:
    """Swap the ``sequence<uint8>`` machines of ``cls`` for the fast one; returns how many."""
    idl = cls.__idl__
    idl.populate()
    swapped = 0
    for machine in (idl.v1_machine, idl.v2_machine):
        members = getattr(machine, "members_machines", {})
        for sub in members.values():
            if type(sub) is _mach.PlainCdrV2SequenceOfPrimitiveMachine and sub.code == "B":
                sub.__class__ = _FastU8SequenceMachine
                swapped += 1
    return swapped


#: True when every uint8[] payload uses the fast machine (cyclonedds' internals as expected);
#: otherwise conversions fall back to Python lists (correct, slow for big images).
FAST_U8 = all(_install_fast_machines(c) == 2 for c in (Image, CompressedImage, PointCloud2))
for _cls in IDL_TYPES.values():
    _install_fast_machines(_cls)


# --------------------------------------------------------------------------- conversion
_NP_DTYPES = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}
_PY_SCALAR = {"bool": bool, "float32": float, "float64": float, "string": str, "wstring": str}

Converter = Callable[[Any], Any]
_TO_IDL: dict[tuple[int, str], Converter] = {}
_FROM_IDL: dict[tuple[int, str], Converter] = {}


def _nodetypes() -> Any:
    return require("rosbags.interfaces").Nodetype


def _build_to_idl(typestore: Any, ros_type: str) -> Converter:
    nt = _nodetypes()
    cls = idl_type(ros_type)
    convs: list[tuple[str, Converter]] = []
    for name, (kind, desc) in typestore.fielddefs[ros_type][1]:
        if kind == nt.NAME:
            convs.append((name, to_idl_converter(typestore, desc)))
        elif kind == nt.BASE:
            convs.append((name, _PY_SCALAR.get(desc[0], int)))
        else:  # ARRAY or SEQUENCE
            (sub_kind, sub_desc), _ = desc
            if sub_kind == nt.NAME:
                sub = to_idl_converter(typestore, sub_desc)
                convs.append((name, lambda v, sub=sub: [sub(x) for x in v]))
            elif kind == nt.SEQUENCE and sub_desc[0] in ("uint8", "byte", "char") and FAST_U8:
                convs.append((name, lambda v: v))  # fast machine takes bytes/numpy as is
            elif sub_desc[0] in ("string", "wstring"):
                convs.append((name, lambda v: [str(x) for x in v]))
            else:
                dt = _NP_DTYPES[sub_desc[0]]
                convs.append((name, lambda v, dt=dt: _to_numpy(v, dt).tolist()))

    def convert(msg: Any) -> Any:
        return cls(**{n: c(getattr(msg, n)) for n, c in convs})

    return convert


def _build_from_idl(typestore: Any, ros_type: str) -> Converter:
    nt = _nodetypes()
    cls = typestore.types[ros_type]
    convs: list[tuple[str, Converter]] = []
    for name, (kind, desc) in typestore.fielddefs[ros_type][1]:
        if kind == nt.NAME:
            convs.append((name, from_idl_converter(typestore, desc)))
        elif kind == nt.BASE:
            convs.append((name, _PY_SCALAR.get(desc[0], int)))
        else:
            (sub_kind, sub_desc), _ = desc
            if sub_kind == nt.NAME:
                sub = from_idl_converter(typestore, sub_desc)
                convs.append((name, lambda v, sub=sub: [sub(x) for x in v]))
            elif sub_desc[0] in ("string", "wstring"):
                convs.append((name, lambda v: [str(x) for x in v]))
            else:
                dt = _NP_DTYPES[sub_desc[0]]
                convs.append((name, lambda v, dt=dt: _to_numpy(v, dt)))

    def convert(sample: Any) -> Any:
        return cls(**{n: c(getattr(sample, n)) for n, c in convs})

    return convert


def _to_numpy(value: Any, dtype: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value if value.dtype == dtype else value.astype(dtype)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(value, dtype=np.uint8).astype(dtype, copy=False)
    return np.asarray(value, dtype=dtype)


def to_idl_converter(typestore: Any, ros_type: str) -> Converter:
    """A compiled function rosbags message -> IDL struct of ``ros_type`` (cached)."""
    key = (id(typestore), ros_type)
    conv = _TO_IDL.get(key)
    if conv is None:
        conv = _TO_IDL[key] = _build_to_idl(typestore, ros_type)
    return conv


def from_idl_converter(typestore: Any, ros_type: str) -> Converter:
    """A compiled function IDL struct -> rosbags message of ``ros_type`` (cached)."""
    key = (id(typestore), ros_type)
    conv = _FROM_IDL.get(key)
    if conv is None:
        conv = _FROM_IDL[key] = _build_from_idl(typestore, ros_type)
    return conv


def to_idl(msg: Any, ros_type: str | None = None, typestore: Any | None = None) -> Any:
    """Convert a rosbags message to its IDL struct (big ``uint8[]`` payloads: no copy).

    Args:
        msg: a rosbags message instance.
        ros_type: its interface name; default ``msg.__msgtype__``.
        typestore: rosbags typestore; default :func:`unihoi_ros.ros.messages.get_typestore`.
    """
    from unihoi_ros.ros.messages import get_typestore

    ts = get_typestore() if typestore is None else typestore
    return to_idl_converter(ts, ros_type or msg.__msgtype__)(msg)


def from_idl(sample: Any, ros_type: str, typestore: Any | None = None) -> Any:
    """Convert an IDL struct to a rosbags message (``uint8[]`` become numpy uint8 arrays)."""
    from unihoi_ros.ros.messages import get_typestore

    ts = get_typestore() if typestore is None else typestore
    return from_idl_converter(ts, ros_type)(sample)
