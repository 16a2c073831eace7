"""ROS 2 message conversion (no transport): numpy <-> sensor_msgs, FrameResult -> outputs.

The canonical in-memory message is the ``rosbags`` typestore class (for example
``get_typestore().types['sensor_msgs/msg/Image']``): the bag writer uses rosbags directly,
``serialize_cdr`` is the byte reference, and the transports (Cyclone DDS, rclpy) convert
from and to it. Nothing here imports a transport; only numpy, rosbags and (lazily, for
colour conversion and compressed images) OpenCV.

Conventions (DESIGN.md §3): every header carries the input frame's stamp (never ``now()``);
depth is ``32FC1`` metres along the optical z axis with NaN where invalid (REP-118);
CameraInfo has ``P = [K | 0]``, ``R = I`` and ``plumb_bob`` with five zeros; PointCloud2
carries x, y, z and ``rgb`` (FLOAT32 holding the bytes B, G, R, 0); TF goes from the world
frame (:data:`WORLD_FRAME` by default; REP-103 body axes, see
:mod:`unihoi_ros.geometry.frames`) to the camera's optical frame; quaternions are ordered
x, y, z, w.

Arrays put into messages are not copied when they are already contiguous with the right
dtype: the message then shares memory with the caller's array.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.geometry.frames import body_world_pose
from unihoi_ros.optional import require

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

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

#: Default output topics (relative names resolve under the node namespace) and their types.
DEFAULT_OUTPUT_TOPICS: dict[str, str] = {
    "depth/image": IMAGE,
    "depth/camera_info": CAMERA_INFO,
    "confidence/image": IMAGE,
    "points": POINT_CLOUD2,
    "trajectory": PATH,
    "pose": POSE_STAMPED,
    "/tf": TF_MESSAGE,
    "/diagnostics": DIAGNOSTIC_ARRAY,
}

# sensor_msgs/PointField datatypes.
POINTFIELD_FLOAT32 = 7

# diagnostic_msgs/DiagnosticStatus levels.
DIAG_OK, DIAG_WARN, DIAG_ERROR, DIAG_STALE = 0, 1, 2, 3

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


def _ts(typestore: Any | None) -> Any:
    return get_typestore() if typestore is None else typestore


def msg_class(typename: str, typestore: Any | None = None) -> type:
    """The rosbags message class of ``typename`` (e.g. ``"sensor_msgs/msg/Image"``)."""
    return _ts(typestore).types[typename]


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


# --------------------------------------------------------------------------- raw images
# encoding -> (numpy base dtype, channels)
_LAYOUTS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "8UC1": ("u1", 1),
    "mono16": ("u2", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
    "64FC1": ("f8", 1),
    "yuv422": ("u1", 2),  # ROS "yuv422" is UYVY: U Y0 V Y1
    "uyvy": ("u1", 2),
    "yuv422_yuy2": ("u1", 2),  # Y0 U Y1 V
    "yuyv": ("u1", 2),
    "yuy2": ("u1", 2),
}
_UYVY = frozenset({"yuv422", "uyvy"})
_YUY2 = frozenset({"yuv422_yuy2", "yuyv", "yuy2"})
#: Encodings :func:`image_to_rgb` decodes.
RGB_ENCODINGS: frozenset[str] = frozenset(
    {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "mono16", "16UC1"} | _UYVY | _YUY2
)
#: Encodings :func:`image_to_array` decodes.
ARRAY_ENCODINGS: frozenset[str] = frozenset(_LAYOUTS)


def _as_u8(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's ``data`` (numpy array, bytes, memoryview, list)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def _pixel_view(msg: Any, supported: Iterable[str]) -> tuple[np.ndarray, str]:
    """Validate ``msg`` and return its pixels ``(H, W, C)`` (native byte order) and encoding.

    The result may be a strided view into ``msg.data`` (when ``step`` pads the rows).
    """
    encoding = str(msg.encoding)
    if encoding not in supported:
        raise UnsupportedEncodingError(
            f"image encoding {encoding!r} is not supported (supported: {sorted(supported)})"
        )
    base, channels = _LAYOUTS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(base)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    row = width * channels * dtype.itemsize
    if encoding in _UYVY or encoding in _YUY2:
        row = width * 2
        if width % 2:
            raise MalformedImageError(f"{encoding} image has odd width {width} (needs pairs)")
    if step < row:
        raise MalformedImageError(
            f"{encoding} image step {step} is smaller than width*bytes_per_pixel = {row} "
            f"(width {width})"
        )
    buf = _as_u8(msg.data)
    if buf.size != step * height:
        raise MalformedImageError(
            f"{encoding} image data has {buf.size} bytes but step*height = {step}*{height} = "
            f"{step * height}" + (" (truncated)" if buf.size < step * height else "")
        )
    if height == 0 or width == 0:
        return np.zeros((height, width, channels), dtype=dtype.newbyteorder("=")), encoding
    rows = buf.reshape(height, step)[:, :row]
    pixels = rows.view(dtype).reshape(height, width, channels)
    if not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder("="))
    return pixels, encoding


def image_to_rgb(msg: Any, copy: bool = False) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to RGB.

    Encodings: rgb8, bgr8, rgba8, bgra8, mono8/8UC1, mono16/16UC1 (top 8 bits), yuv422 and
    uyvy (UYVY: U Y0 V Y1), yuv422_yuy2/yuyv/yuy2 (Y0 U Y1 V). Row padding (``step``) and
    ``is_bigendian`` are honoured.

    Args:
        msg: the Image message (rosbags class, or anything with the same fields).
        copy: always return a fresh, writable array. By default an unpadded rgb8 image is
            returned as a view sharing memory with ``msg.data`` (read-only when the message
            was deserialised from immutable bytes).

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        UnsupportedEncodingError: the encoding is not one of the above.
        MalformedImageError: ``step``/size/data length are inconsistent.
    """
    pixels, enc = _pixel_view(msg, RGB_ENCODINGS)
    if pixels.size == 0:
        return np.zeros((*pixels.shape[:2], 3), dtype=np.uint8)
    if enc == "rgb8":
        out = pixels
    elif enc == "bgr8":
        out = pixels[..., ::-1]
    elif enc == "rgba8":
        out = pixels[..., :3]
    elif enc == "bgra8":
        out = pixels[..., 2::-1]
    elif enc in ("mono8", "8UC1"):
        out = np.repeat(pixels, 3, axis=2)
    elif enc in ("mono16", "16UC1"):
        out = np.repeat((pixels >> 8).astype(np.uint8), 3, axis=2)
    else:
        cv2 = require("cv2")
        code = cv2.COLOR_YUV2RGB_UYVY if enc in _UYVY else cv2.COLOR_YUV2RGB_YUY2
        return cv2.cvtColor(np.ascontiguousarray(pixels), code)
    if copy or not out.flags.c_contiguous:
        out = np.array(out, dtype=np.uint8, order="C", copy=True)
    return out


def image_to_array(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to its numeric array in native byte order.

    ``32FC1`` gives ``(H, W)`` float32 (e.g. depth in metres), ``64FC1`` float64,
    ``16UC1``/``mono16`` uint16, ``mono8``/``8UC1`` uint8; multi-channel encodings give
    ``(H, W, C)`` in the message's channel order (yuv422 variants: ``(H, W, 2)`` raw bytes).

    Raises:
        UnsupportedEncodingError, MalformedImageError: as :func:`image_to_rgb`.
    """
    pixels, _ = _pixel_view(msg, ARRAY_ENCODINGS)
    if pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return np.ascontiguousarray(pixels)


def rgb_to_image(
    rgb: np.ndarray,
    stamp_ns: int,
    frame_id: str,
    encoding: str = "rgb8",
    typestore: Any | None = None,
) -> Any:
    """Encode an RGB image as ``sensor_msgs/Image``.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        stamp_ns: header stamp, nanoseconds.
        frame_id: header frame id.
        encoding: ``rgb8`` (no copy when ``rgb`` is contiguous), ``bgr8``, ``rgba8``,
            ``bgra8`` (alpha 255) or ``mono8`` (BT.601 luma).

    Raises:
        ValueError: wrong shape/dtype; UnsupportedEncodingError: unknown ``encoding``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[..., ::-1]
    elif encoding in ("rgba8", "bgra8"):
        px = np.empty((h, w, 4), dtype=np.uint8)
        px[..., :3] = rgb if encoding == "rgba8" else rgb[..., ::-1]
        px[..., 3] = 255
    elif encoding == "mono8":
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        px = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    else:
        raise UnsupportedEncodingError(
            f"cannot encode RGB as {encoding!r} (use rgb8, bgr8, rgba8, bgra8 or mono8)"
        )
    px = np.ascontiguousarray(px)
    return msg_class(IMAGE, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * px.shape[2],
        data=px.reshape(-1),
    )


_ARRAY_ENCODING_OF = {
    np.dtype(np.float32): "32FC1",
    np.dtype(np.float64): "64FC1",
    np.dtype(np.uint16): "16UC1",
    np.dtype(np.uint8): "mono8",
}


def array_to_image(
    array: np.ndarray,
    stamp_ns: int,
    frame_id: str,
    typestore: Any | None = None,
) -> Any:
    """Encode a single-channel array as ``sensor_msgs/Image`` (little endian).

    Args:
        array: ``(H, W)`` float32 (-> ``32FC1``), float64 (``64FC1``), uint16 (``16UC1``)
            or uint8 (``mono8``).

    Raises:
        ValueError: not 2-D or an unsupported dtype.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"expected an (H, W) array, got shape {array.shape}")
    encoding = _ARRAY_ENCODING_OF.get(array.dtype.newbyteorder("="))
    if encoding is None:
        raise ValueError(f"no image encoding for dtype {array.dtype}")
    le = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    h, w = le.shape
    return msg_class(IMAGE, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * le.dtype.itemsize,
        data=le.reshape(-1).view(np.uint8),
    )


# --------------------------------------------------------------------------- compressed
def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG, anything OpenCV reads) to RGB.

    Returns:
        ``(H, W, 3)`` uint8 RGB (grayscale images are expanded to three channels).

    Raises:
        UnsupportedEncodingError: ``compressedDepth``/RVL depth formats.
        MalformedImageError: empty, truncated or corrupt data.
    """
    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt or "rvl" in fmt:
        raise UnsupportedEncodingError(
            f"compressed image format {msg.format!r} is a depth format; only colour "
            "JPEG/PNG images are supported"
        )
    buf = _as_u8(msg.data)
    if buf.size == 0:
        raise MalformedImageError(f"compressed image ({msg.format!r}) has no data")
    if buf.size >= 2 and buf[0] == 0xFF and buf[1] == 0xD8:
        # JPEG: some decoders return a partial image for a truncated stream; require EOI.
        if buf.tobytes().rfind(b"\xff\xd9") < 2:
            raise MalformedImageError(
                f"JPEG data ({buf.size} bytes) is truncated: no end-of-image marker"
            )
    cv2 = require("cv2")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise MalformedImageError(
            f"OpenCV could not decode the compressed image ({msg.format!r}, {buf.size} bytes):"
            " corrupt or unknown data"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_compressed(
    rgb: np.ndarray,
    stamp_ns: int,
    frame_id: str,
    fmt: str = "jpeg",
    quality: int = 90,
    typestore: Any | None = None,
) -> Any:
    """Encode RGB as ``sensor_msgs/CompressedImage`` the way image_transport does.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        fmt: ``"jpeg"`` (``quality`` 0-100) or ``"png"`` (lossless).

    The ``format`` field reads ``"rgb8; jpeg compressed bgr8"`` (or ``png``), as
    compressed_image_transport writes it.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    fmt = fmt.lower()
    cv2 = require("cv2")
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if fmt in ("jpeg", "jpg"):
        fmt = "jpeg"
        ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, enc = cv2.imencode(".png", bgr)
    else:
        raise UnsupportedEncodingError(f"cannot compress as {fmt!r} (use jpeg or png)")
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {rgb.shape} image as {fmt}")
    return msg_class(COMPRESSED_IMAGE, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        format=f"rgb8; {fmt} compressed bgr8",
        data=enc.reshape(-1),
    )


# --------------------------------------------------------------------------- FrameResult outputs
def depth_image_msg(result: FrameResult, frame_id: str, typestore: Any | None = None) -> Any:
    """Depth as ``32FC1`` Image: metres along the optical z axis, NaN where invalid.

    Values that are NaN or not positive become NaN (REP-118); ``+inf`` is kept.
    """
    depth = np.array(result.depth, dtype=np.float32, copy=True)
    depth[~(depth > 0)] = np.nan
    return array_to_image(depth, result.stamp_ns, frame_id, typestore)


def confidence_image_msg(result: FrameResult, frame_id: str, typestore: Any | None = None) -> Any:
    """Confidence as ``32FC1`` Image clipped to [0, 1] (NaN stays NaN)."""
    conf = np.clip(np.asarray(result.confidence, dtype=np.float32), 0.0, 1.0)
    return array_to_image(conf, result.stamp_ns, frame_id, typestore)


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


#: Point layout of our PointCloud2: x, y, z float32 and rgb (0x00RRGGBB) little endian.
CLOUD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "rgb"],
        "formats": ["<f4", "<f4", "<f4", "<u4"],
        "offsets": [0, 4, 8, 12],
        "itemsize": 16,
    }
)


def points_to_cloud(
    points: np.ndarray,
    colors: np.ndarray | None,
    stamp_ns: int,
    frame_id: str,
    typestore: Any | None = None,
) -> Any:
    """Build an unorganised ``sensor_msgs/PointCloud2`` (height 1) with x, y, z, rgb.

    Args:
        points: ``(M, 3)`` float metres in ``frame_id``; must be finite (is_dense).
        colors: ``(M, 3)`` uint8 RGB, or None for white.

    Fields: x, y, z FLOAT32 at offsets 0, 4, 8 and ``rgb`` FLOAT32 at 12 whose four bytes are
    B, G, R, 0 (``0x00RRGGBB`` little endian, the realsense-ros / depth_image_proc layout);
    ``point_step`` 16, little endian, ``is_dense`` True.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    m = points.shape[0]
    cloud = np.empty(m, dtype=CLOUD_DTYPE)
    cloud["x"] = points[:, 0]
    cloud["y"] = points[:, 1]
    cloud["z"] = points[:, 2]
    if colors is None:
        cloud["rgb"] = 0x00FFFFFF
    else:
        c = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        if c.shape[0] != m:
            raise ValueError(f"{m} points but {c.shape[0]} colors")
        c32 = c.astype(np.uint32)
        cloud["rgb"] = (c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]
    field_cls = msg_class(POINT_FIELD, typestore)
    fields = [
        field_cls(name=n, offset=o, datatype=POINTFIELD_FLOAT32, count=1)
        for n, o in (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))
    ]
    return msg_class(POINT_CLOUD2, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        height=1,
        width=m,
        fields=fields,
        is_bigendian=False,
        point_step=CLOUD_DTYPE.itemsize,
        row_step=CLOUD_DTYPE.itemsize * m,
        data=cloud.view(np.uint8).reshape(-1),
        is_dense=True,
    )


def point_cloud_msg(result: FrameResult, frame_id: str, typestore: Any | None = None) -> Any:
    """The frame's coloured points (camera optical frame) as PointCloud2."""
    return points_to_cloud(result.points, result.colors, result.stamp_ns, frame_id, typestore)


_POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def cloud_to_points(msg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a PointCloud2's x, y, z (and rgb, if present) without loops.

    Returns:
        ``points`` ``(M, 3)`` float32 and ``colors`` ``(M, 3)`` uint8 RGB (None without an
        ``rgb``/``rgba`` field); ``M = width * height``.

    Raises:
        MalformedImageError: missing x/y/z fields or data shorter than the layout.
    """
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.name in ("x", "y", "z", "rgb", "rgba") and int(f.count) == 1:
            base = "u4" if f.name in ("rgb", "rgba") else _POINTFIELD_DTYPES[int(f.datatype)]
            names.append(f.name)
            formats.append(order + base)
            offsets.append(int(f.offset))
    if not {"x", "y", "z"} <= set(names):
        raise MalformedImageError(f"PointCloud2 lacks x/y/z fields (has {names})")
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": int(msg.point_step)}
    )
    n_rows, n_cols, row_step = int(msg.height), int(msg.width), int(msg.row_step)
    buf = _as_u8(msg.data)
    if buf.size < row_step * n_rows or row_step < n_cols * dtype.itemsize:
        raise MalformedImageError(
            f"PointCloud2 data has {buf.size} bytes, layout needs {row_step}*{n_rows}"
        )
    rows = buf[: row_step * n_rows].reshape(n_rows, row_step)[:, : n_cols * dtype.itemsize]
    cloud = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    points = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float32)
    colors = None
    cname = "rgb" if "rgb" in names else ("rgba" if "rgba" in names else None)
    if cname is not None:
        packed = cloud[cname].astype(np.uint32)
        colors = np.stack(
            [(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=1
        ).astype(np.uint8)
    return points, colors


# --------------------------------------------------------------------------- poses, TF
def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0``.

    Bar-Itzhack's method (eigenvector of a symmetric 4x4): robust near 180 degrees and for
    slightly non-orthonormal input (gives the nearest rotation's quaternion).

    Args:
        R: ``(3, 3)`` (or the top-left of a ``(4, 4)``) rotation matrix.
    """
    R = np.asarray(R, dtype=np.float64)[:3, :3]
    (xx, xy, xz), (yx, yy, yz), (zx, zy, zz) = R
    K = (
        np.array(
            [
                [xx - yy - zz, yx + xy, zx + xz, zy - yz],
                [yx + xy, yy - xx - zz, zy + yz, xz - zx],
                [zx + xz, zy + yz, zz - xx - yy, yx - xy],
                [zy - yz, xz - zx, yx - xy, xx + yy + zz],
            ]
        )
        / 3.0
    )
    _, vecs = np.linalg.eigh(K)
    q = vecs[:, -1]
    if q[3] < 0:
        q = -q
    return q / np.linalg.norm(q)


def quaternion_to_rotation(q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` (normalised here) -> ``(3, 3)`` rotation matrix."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _quat_msg(T: np.ndarray, typestore: Any | None) -> Any:
    x, y, z, w = rotation_to_quaternion(T)
    return msg_class(QUATERNION, typestore)(x=float(x), y=float(y), z=float(z), w=float(w))


def transform_stamped_msg(
    T_parent_child: np.ndarray,
    stamp_ns: int,
    parent_frame: str,
    child_frame: str,
    typestore: Any | None = None,
) -> Any:
    """``geometry_msgs/TransformStamped`` parent -> child from a ``(4, 4)`` pose.

    ``T_parent_child`` maps child coordinates to parent coordinates (the child's pose in the
    parent frame), which is what TF's ``header.frame_id -> child_frame_id`` transform holds.
    """
    T = np.asarray(T_parent_child, dtype=np.float64)
    t = T[:3, 3]
    vec = msg_class(VECTOR3, typestore)(x=float(t[0]), y=float(t[1]), z=float(t[2]))
    transform = msg_class(TRANSFORM, typestore)(translation=vec, rotation=_quat_msg(T, typestore))
    return msg_class(TRANSFORM_STAMPED, typestore)(
        header=make_header(stamp_ns, parent_frame, typestore),
        child_frame_id=str(child_frame),
        transform=transform,
    )


def tf_msg(transforms: Sequence[Any], typestore: Any | None = None) -> Any:
    """``tf2_msgs/TFMessage`` holding the given TransformStamped messages."""
    return msg_class(TF_MESSAGE, typestore)(transforms=list(transforms))


def tf_from_result(
    result: FrameResult,
    parent_frame: str = WORLD_FRAME,
    child_frame: str = "camera_optical_frame",
    typestore: Any | None = None,
) -> Any:
    """TFMessage with the frame's camera pose ``parent_frame -> child_frame``; the parent
    has REP-103 body axes (:func:`unihoi_ros.geometry.frames.body_world_pose`)."""
    ts = transform_stamped_msg(
        body_world_pose(result.T_world_cam), result.stamp_ns, parent_frame, child_frame,
        typestore,
    )
    return tf_msg([ts], typestore)


def pose_stamped_msg(
    T_frame_body: np.ndarray, stamp_ns: int, frame_id: str, typestore: Any | None = None
) -> Any:
    """``geometry_msgs/PoseStamped`` of a ``(4, 4)`` pose expressed in ``frame_id``."""
    T = np.asarray(T_frame_body, dtype=np.float64)
    t = T[:3, 3]
    pose = msg_class(POSE, typestore)(
        position=msg_class(POINT, typestore)(x=float(t[0]), y=float(t[1]), z=float(t[2])),
        orientation=_quat_msg(T, typestore),
    )
    return msg_class(POSE_STAMPED, typestore)(
        header=make_header(stamp_ns, frame_id, typestore), pose=pose
    )


def path_msg(
    poses: Sequence[Any], stamp_ns: int, frame_id: str = WORLD_FRAME,
    typestore: Any | None = None
) -> Any:
    """``nav_msgs/Path`` of the trajectory so far.

    Args:
        poses: PoseStamped messages (see :func:`pose_stamped_msg`), oldest first; the list is
            copied (callers keep appending to theirs).
        stamp_ns: header stamp (the newest frame's).
    """
    return msg_class(PATH, typestore)(
        header=make_header(stamp_ns, frame_id, typestore), poses=list(poses)
    )


# --------------------------------------------------------------------------- diagnostics
def diagnostic_status_msg(
    name: str,
    level: int = DIAG_OK,
    message: str = "",
    values: Mapping[str, Any] | None = None,
    hardware_id: str = "",
    typestore: Any | None = None,
) -> Any:
    """``diagnostic_msgs/DiagnosticStatus``; values are stringified (floats with 6 digits)."""
    kv_cls = msg_class(KEY_VALUE, typestore)

    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    kvs = [kv_cls(key=str(k), value=fmt(v)) for k, v in (values or {}).items()]
    if not 0 <= int(level) <= 3:
        raise ValueError(f"diagnostic level must be 0..3 (OK/WARN/ERROR/STALE), got {level}")
    return msg_class(DIAGNOSTIC_STATUS, typestore)(
        level=int(level),
        name=str(name),
        message=str(message),
        hardware_id=str(hardware_id),
        values=kvs,
    )


def diagnostic_array_msg(
    stamp_ns: int, statuses: Sequence[Any], typestore: Any | None = None
) -> Any:
    """``diagnostic_msgs/DiagnosticArray`` (header frame id empty, as diagnostic_updater)."""
    return msg_class(DIAGNOSTIC_ARRAY, typestore)(
        header=make_header(stamp_ns, "", typestore), status=list(statuses)
    )


# --------------------------------------------------------------------------- bundle
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
