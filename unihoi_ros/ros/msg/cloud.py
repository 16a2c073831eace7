"""``sensor_msgs/PointCloud2`` <-> numpy points and colours.

Conventions (docs/conventions.md): unorganised clouds (height 1) of x, y, z FLOAT32 and
``rgb`` (FLOAT32 holding the bytes B, G, R, 0, the realsense-ros / depth_image_proc layout),
little endian, ``is_dense`` True; points are in the camera's optical frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unihoi_ros.ros.msg.types import (
    POINT_CLOUD2,
    POINT_FIELD,
    MalformedImageError,
    as_u8,
    make_header,
    msg_class,
)

if TYPE_CHECKING:
    from unihoi_ros.pipeline.results import FrameResult

__all__ = [
    "CLOUD_DTYPE",
    "POINTFIELD_FLOAT32",
    "TRACKS_DTYPE",
    "cloud_fields",
    "cloud_to_points",
    "point_cloud_msg",
    "points_to_cloud",
    "tracks_msg",
    "tracks_to_cloud",
]

# sensor_msgs/PointField datatypes.
POINTFIELD_FLOAT32 = 7

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


POINTFIELD_UINT8 = 2
POINTFIELD_UINT32 = 6

#: Point layout of the ``tracks`` PointCloud2: x, y, z float32 (world, metres), ``id``
#: uint32, ``dynamic`` uint8 (1 on hands / moving objects), ``rgb`` like ``points``.
TRACKS_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "id", "dynamic", "rgb"],
        "formats": ["<f4", "<f4", "<f4", "<u4", "u1", "<u4"],
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 24,
    }
)
_FIELD_TYPES = {"id": POINTFIELD_UINT32, "dynamic": POINTFIELD_UINT8}


def cloud_fields(dtype: np.dtype, typestore: Any | None = None) -> list[Any]:
    """PointFields of a structured point ``dtype`` (``rgb`` and floats as FLOAT32)."""
    field_cls = msg_class(POINT_FIELD, typestore)
    return [field_cls(name=n, offset=int(dtype.fields[n][1]),
                      datatype=_FIELD_TYPES.get(n, POINTFIELD_FLOAT32), count=1)
            for n in dtype.names]


def _packed_rgb(colors: np.ndarray) -> np.ndarray:
    c32 = np.asarray(colors, dtype=np.uint8).reshape(-1, 3).astype(np.uint32)
    return (c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]


def tracks_to_cloud(xyz: np.ndarray, ids: np.ndarray, dynamic: np.ndarray,
                    colors: np.ndarray, stamp_ns: int, frame_id: str,
                    typestore: Any | None = None) -> Any:
    """The ``tracks`` PointCloud2 (layout :data:`TRACKS_DTYPE`, ``point_step`` 24).

    Args:
        xyz: ``(M, 3)`` metres in ``frame_id`` (the world frame), finite.
        ids: ``(M,)`` track ids (stable for a track's life).
        dynamic: ``(M,)`` bool.
        colors: ``(M, 3)`` uint8 RGB.
    """
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    m = xyz.shape[0]
    cloud = np.zeros(m, dtype=TRACKS_DTYPE)
    for k, name in enumerate("xyz"):
        cloud[name] = xyz[:, k]
    cloud["id"] = np.asarray(ids, dtype=np.uint32).reshape(-1)
    cloud["dynamic"] = np.asarray(dynamic, dtype=bool).reshape(-1)
    cloud["rgb"] = _packed_rgb(colors)
    return msg_class(POINT_CLOUD2, typestore)(
        header=make_header(stamp_ns, frame_id, typestore), height=1, width=m,
        fields=cloud_fields(TRACKS_DTYPE, typestore), is_bigendian=False,
        point_step=TRACKS_DTYPE.itemsize, row_step=TRACKS_DTYPE.itemsize * m,
        data=cloud.view(np.uint8).reshape(-1), is_dense=True,
    )


def tracks_msg(tracks: Any, world_frame: str, typestore: Any | None = None) -> Any:
    """The ``tracks`` PointCloud2 of a :class:`~unihoi_ros.tracks.TrackSet`: tracks seen
    in the frame, and anchored ones (static points held at their anchor), in the
    body-axes world frame (:func:`unihoi_ros.geometry.frames.body_world_points`)."""
    from unihoi_ros.geometry.frames import body_world_points

    keep = np.asarray(tracks.visible, bool) | ~np.asarray(tracks.following, bool)
    return tracks_to_cloud(body_world_points(tracks.xyz[keep]), tracks.ids[keep],
                           tracks.dynamic[keep], tracks.rgb[keep], tracks.stamp_ns,
                           world_frame, typestore)


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
    buf = as_u8(msg.data)
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
