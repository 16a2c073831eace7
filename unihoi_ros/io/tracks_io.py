"""A stream's long-term 3D point tracks on disk: ``tracks.npz`` and ``tracks.csv``.

One row per (frame, track) the tracker reported: frame index, stamp, track id, position in
the stream's world frame (metres; the first camera with optical axes, as
``frames.json`` and ``trajectory_tum.txt``), visible, dynamic, colour. A planner
reads the CSV; ``load_tracks`` gives the arrays back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: CSV header (one line; comma-separated; positions in metres).
CSV_HEADER = "frame,stamp_ns,id,x,y,z,visible,dynamic,r,g,b"


class TracksRecorder:
    """Collects a stream's :class:`~unihoi_ros.tracks.TrackSet` s (one per frame)."""

    def __init__(self) -> None:
        self._rows: list[dict[str, np.ndarray]] = []

    def add(self, tracks) -> None:
        """Append one frame's tracks (frame index = order of the calls)."""
        m = len(tracks)
        self._rows.append({
            "frame": np.full(m, len(self._rows), np.int32),
            "stamp_ns": np.full(m, tracks.stamp_ns, np.int64),
            "id": np.asarray(tracks.ids, np.uint32),
            "xyz": np.asarray(tracks.xyz, np.float64).reshape(m, 3),
            "visible": np.asarray(tracks.visible, bool),
            "dynamic": np.asarray(tracks.dynamic, bool),
            "rgb": np.asarray(tracks.rgb, np.uint8).reshape(m, 3),
        })

    def arrays(self) -> dict[str, np.ndarray]:
        """Every row, concatenated: ``frame (R,)``, ``stamp_ns``, ``id``, ``xyz (R, 3)``
        metres, ``visible``, ``dynamic``, ``rgb (R, 3)``."""
        keys = ("frame", "stamp_ns", "id", "xyz", "visible", "dynamic", "rgb")
        if not self._rows:
            empty = {"xyz": np.zeros((0, 3)), "rgb": np.zeros((0, 3), np.uint8)}
            return {k: empty.get(k, np.zeros(0)) for k in keys}
        return {k: np.concatenate([r[k] for r in self._rows]) for k in keys}

    def save(self, out_dir: str | Path) -> dict[str, np.ndarray]:
        """Write ``tracks.npz`` and ``tracks.csv`` into ``out_dir``; return the arrays."""
        out_dir = Path(out_dir)
        a = self.arrays()
        np.savez_compressed(out_dir / "tracks.npz", **a)
        table = np.column_stack([a["frame"], a["stamp_ns"], a["id"], a["xyz"],
                                 a["visible"].astype(int), a["dynamic"].astype(int), a["rgb"]])
        fmt = ["%d", "%d", "%d", "%.6f", "%.6f", "%.6f", "%d", "%d", "%d", "%d", "%d"]
        np.savetxt(out_dir / "tracks.csv", table.reshape(-1, 11), fmt=fmt, delimiter=",",
                   header=CSV_HEADER, comments="")
        return a


def load_tracks(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``tracks.npz`` (see :meth:`TracksRecorder.arrays`)."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
