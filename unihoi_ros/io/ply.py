"""Binary PLY point clouds (x, y, z float32 + red, green, blue uchar), readable by
Open3D, MeshLab, CloudCompare and Foxglove."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                   ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Write ``points (N, 3)`` metres and ``colors (N, 3)`` uint8 RGB (grey if None)."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    data = np.empty(len(points), _DTYPE)
    data["x"], data["y"], data["z"] = points.T
    cols = np.full((len(points), 3), 200, np.uint8) if colors is None else np.asarray(colors)
    data["red"], data["green"], data["blue"] = cols.astype(np.uint8).T
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by unihoi_ros\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read what :func:`write_ply` writes: ``(points (N, 3) float32, colors (N, 3) uint8)``."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii")
    if "binary_little_endian" not in header:
        raise ValueError(f"{path}: only binary little-endian PLY is supported")
    n = int(next(line.split()[2] for line in header.splitlines()
                 if line.startswith("element vertex")))
    data = np.frombuffer(raw, _DTYPE, count=n, offset=end)
    pts = np.stack([data["x"], data["y"], data["z"]], axis=-1)
    cols = np.stack([data["red"], data["green"], data["blue"]], axis=-1)
    return pts, cols
