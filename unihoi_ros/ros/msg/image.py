"""``sensor_msgs/Image`` and ``CompressedImage`` <-> numpy, and the depth/confidence outputs.

Conventions (docs/conventions.md): depth is ``32FC1`` metres along the optical z axis with
NaN where invalid (REP-118); confidence is ``32FC1`` in [0, 1]; images this package writes
are little endian and unpadded; compressed images are written the way
compressed_image_transport writes them. OpenCV is imported lazily (colour conversion of
yuv422 and compressed images only).

An encoder copies nothing when its input is already contiguous with the message's dtype:
the Image's ``data`` is then a view of the caller's array (shared memory).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from unihoi_ros.optional import require
from unihoi_ros.ros.msg.types import (
    COMPRESSED_IMAGE,
    IMAGE,
    MalformedImageError,
    UnsupportedEncodingError,
    as_u8,
    make_header,
    msg_class,
)

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

__all__ = [
    "ARRAY_ENCODINGS",
    "RGB_ENCODINGS",
    "array_to_image",
    "compressed_to_rgb",
    "confidence_image_msg",
    "depth_image_msg",
    "image_to_array",
    "image_to_rgb",
    "rgb_to_compressed",
    "rgb_to_image",
]


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
    buf = as_u8(msg.data)
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
    return _image_msg(
        px.reshape(-1), h, w, encoding, w * px.shape[2], stamp_ns, frame_id, typestore
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
    return _image_msg(
        le.reshape(-1).view(np.uint8),
        h,
        w,
        encoding,
        w * le.dtype.itemsize,
        stamp_ns,
        frame_id,
        typestore,
    )


def _image_msg(
    data: np.ndarray,
    height: int,
    width: int,
    encoding: str,
    step: int,
    stamp_ns: int,
    frame_id: str,
    typestore: Any | None,
) -> Any:
    """A little-endian ``sensor_msgs/Image`` holding ``data`` (flat, not copied)."""
    return msg_class(IMAGE, typestore)(
        header=make_header(stamp_ns, frame_id, typestore),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=data,
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
    buf = as_u8(msg.data)
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
