"""Frame sources for offline processing: rosbag2, video files, image folders, TUM RGB-D and
7-Scenes layouts. Each yields ``(stamp_ns, rgb (H, W, 3) uint8)`` in stamp order.

:func:`open_source` picks the reader from what the path holds. Readers raise
:class:`SourceError` with a clear message for unreadable input (the CLI turns it into a
non-zero exit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from unihoi_ros.errors import UnihoiError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class SourceError(UnihoiError, RuntimeError):
    """Input that cannot be read as a frame stream (the message says why)."""


@dataclass
class FrameSource:
    """A finite stream of RGB frames.

    Attributes:
        path: what was opened.
        kind: ``"rosbag2"``, ``"video"``, ``"folder"``, ``"tum"`` or ``"7scenes"``.
        num_frames: frame count when known up front (for progress bars), else None.
        K: ``(3, 3)`` pixels when the format provides intrinsics, else None.
        description: one line for logs (topic, fps, ...).
        topic: the image topic of a rosbag2 source, else None.
    """

    path: Path
    kind: str
    num_frames: int | None = None
    K: np.ndarray | None = None
    description: str = ""
    _iter: object = field(default=None, repr=False)
    topic: str | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return iter(self._iter())


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"cannot decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------- folders
def _numeric_key(path: Path):
    nums = re.findall(r"\d+", path.stem)
    return (int(nums[-1]) if nums else -1, path.name)


def open_folder(path: Path, fps: float = 30.0) -> FrameSource:
    """Every image in ``path`` in natural order, stamped at ``fps`` from 0."""
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                   key=_numeric_key)
    if not files:
        raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")

    def frames():
        for i, f in enumerate(files):
            yield round(i * 1e9 / fps), _read_rgb(f)

    return FrameSource(path, "folder", len(files), None,
                       f"{len(files)} images at {fps:g} Hz", frames)


# ---------------------------------------------------------------------------- 7-Scenes
def seven_scenes_files(path: Path) -> list[tuple[int, Path]]:
    """``(frame_number, color_path)`` of a 7-Scenes sequence folder, sorted."""
    out = []
    for p in path.glob("frame-*.color.*"):
        m = re.match(r"frame-(\d+)\.color", p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def open_seven_scenes(path: Path, fps: float = 30.0) -> FrameSource:
    """7-Scenes layout: ``frame-N.color.{png,jpg}`` (+ depth/pose), stamps ``N / fps``.
    ``K``: the colour camera's (:data:`unihoi_ros.io.registration.SEVEN_SCENES`; a
    ``camera-intrinsics.txt`` is the *depth* camera's and is not the frames' K)."""
    from unihoi_ros.io.registration import SEVEN_SCENES

    files = seven_scenes_files(path)
    if not files:
        raise SourceError(f"no frame-N.color.* files in {path}")
    K = np.array(SEVEN_SCENES.K_color)

    def frames():
        for n, f in files:
            yield round(n * 1e9 / fps), _read_rgb(f)

    return FrameSource(path, "7scenes", len(files), K, f"7-Scenes, {len(files)} frames", frames)


# ---------------------------------------------------------------------------- TUM RGB-D
def seconds_text_to_ns(text: str) -> int:
    """Exact nanoseconds of a decimal seconds string (floats lose ns at epoch scale)."""
    whole, _, frac = text.strip().partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * 1_000_000_000 + int((frac + "0" * 9)[:9]))


def ns_to_seconds_text(ns: int) -> str:
    """``ns`` as decimal seconds with 9 digits, exactly."""
    ns = int(ns)
    sign = "-" if ns < 0 else ""
    return f"{sign}{abs(ns) // 1_000_000_000}.{abs(ns) % 1_000_000_000:09d}"


def read_tum_list(path: Path) -> list[tuple[int, str]]:
    """``(timestamp_ns, relative_path)`` rows of a TUM ``rgb.txt`` / ``depth.txt``."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise SourceError(f"{path}: malformed line {line!r}")
        rows.append((seconds_text_to_ns(parts[0]), parts[1]))
    return rows


def open_tum(path: Path) -> FrameSource:
    """TUM RGB-D layout: ``rgb.txt`` listing ``timestamp rgb/xxx.png``."""
    rows = read_tum_list(path / "rgb.txt")
    if not rows:
        raise SourceError(f"{path / 'rgb.txt'} lists no frames")
    from unihoi_ros.io.registration import tum_color_K

    # our synthetic export writes intrinsics.txt; TUM's folders name their Freiburg camera
    if (path / "intrinsics.txt").is_file():
        K = np.loadtxt(path / "intrinsics.txt").reshape(3, 3)
    else:
        K = tum_color_K(path)

    def frames():
        for t, rel in rows:
            yield t, _read_rgb(path / rel)

    return FrameSource(path, "tum", len(rows), K, f"TUM RGB-D, {len(rows)} frames", frames)


# ---------------------------------------------------------------------------- video
def open_video(path: Path) -> FrameSource:
    """A video file through OpenCV; stamps from the container's frame times."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"OpenCV cannot open video {path}")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()

    def frames():
        cap = cv2.VideoCapture(str(path))
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield round(i * 1e9 / fps), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
            if i == 0:
                raise SourceError(f"{path}: no decodable frame")
        finally:
            cap.release()

    return FrameSource(path, "video", count, None, f"video, {count} frames at {fps:g} Hz",
                       frames)


# ---------------------------------------------------------------------------- rosbag2
def _bag_image_topics(reader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections if c.msgtype in IMAGE_TYPES}


def open_rosbag(path: Path, topic: str | None = None) -> FrameSource:
    """A rosbag2 (MCAP or sqlite3) image or compressed-image topic.

    The topic is auto-detected when the bag holds exactly one camera stream (an Image
    topic and its ``/compressed`` twin count as one: the raw one is used). Frames are
    stamped with their header stamps, in bag order.
    """
    from rosbags.highlevel import AnyReader

    from unihoi_ros.ros.messages import compressed_to_rgb, image_to_rgb, stamp_to_ns

    try:
        with AnyReader([path]) as reader:
            topics = _bag_image_topics(reader)
            counts = {c.topic: c.msgcount for c in reader.connections}
    except Exception as exc:  # rosbags raises several types for broken bags
        raise SourceError(f"cannot read rosbag2 {path}: {exc}") from exc
    if not topics:
        raise SourceError(f"{path}: no sensor_msgs/Image or CompressedImage topic in the bag")
    if topic is None:
        raw = [t for t, ty in topics.items() if ty == IMAGE_TYPES[0]]
        streams = {t.removesuffix("/compressed") for t in topics}
        if len(streams) > 1:
            raise SourceError(f"{path}: several camera topics {sorted(topics)}; pick one "
                              "with --topic")
        topic = raw[0] if raw else next(iter(topics))
    elif topic not in topics:
        raise SourceError(f"{path}: topic {topic} not found; image topics: {sorted(topics)}")
    msgtype = topics[topic]

    def frames():
        with AnyReader([path]) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            for conn, _, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                rgb = (image_to_rgb(msg, copy=True) if msgtype == IMAGE_TYPES[0]
                       else compressed_to_rgb(msg))
                yield stamp_to_ns(msg.header.stamp), rgb

    return FrameSource(path, "rosbag2", counts.get(topic), None,
                       f"rosbag2 topic {topic} ({msgtype}), {counts.get(topic)} messages",
                       frames, topic=topic)


def is_rosbag(path: Path) -> bool:
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or path.suffix in (
        ".mcap", ".db3")


def open_source(path: str | Path, topic: str | None = None, fps: float = 30.0) -> FrameSource:
    """Open ``path`` as a frame stream, choosing the reader by its content."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if is_rosbag(path):
        return open_rosbag(path, topic)
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return open_video(path)
        raise SourceError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a bag")
    if (path / "rgb.txt").is_file():
        return open_tum(path)
    if seven_scenes_files(path):
        return open_seven_scenes(path, fps)
    return open_folder(path, fps)
