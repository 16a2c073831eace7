"""Offline processing: a recording in, every output of the node written to a directory.

``process_source`` runs the streaming reconstructor on every frame (no drops: offline
input applies back-pressure by construction) and writes, into ``out_dir`` (about 0.3 MB
per 640x480 frame in all; see README, "Outputs of unihoi process"):

- ``depth/NNNNNN.png`` (16-bit, millimetres, 0 = invalid), ``confidence/NNNNNN.png``
  (8-bit, value / 255) and ``frames.json`` (stamps, K, camera-to-world poses): the run's
  predictions at full resolution (:mod:`unihoi_ros.io.run_layout`; read them back with
  :func:`unihoi_ros.io.load_run`, as ``unihoi eval`` does);
- ``bag/``: rosbag2 (MCAP with zstd chunks, Humble-readable) with the node's topics for
  viewing and replay, images at most ``bag_max_side`` pixels (:class:`BagOutputs`);
- ``cloud.ply``: the fused static cloud (every ``cloud_stride``-th frame,
  confidence-filtered, voxel-downsampled);
- ``trajectory_tum.txt``: camera-to-world poses in TUM format;
- ``summary.png``: RGB / depth / confidence strip and a top view of trajectory and cloud;
- ``tracks.npz``, ``tracks.csv``, ``tracks.png``: long-term 3D point tracks (hands,
  objects, scene; :mod:`unihoi_ros.tracks`) in the world frame, and their picture;
  (the two pictures need matplotlib: ``pictures=False`` leaves them out)
- ``report.json``: counts, frames per second, per-stage timings, input description, model,
  settings and the outputs' sizes.

The per-frame files and the bag are written by a background thread
(:class:`~unihoi_ros.io.run_writer.RunWriter`), and the tracks are followed on another
(:class:`~unihoi_ros.tracks.background.BackgroundTracker`, reusing the reconstructor's
backward flow), while the next frames are reconstructed.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.io.camera_info import CameraCalibration
from unihoi_ros.io.ground_truth import write_tum_trajectory
from unihoi_ros.io.ply import write_ply
from unihoi_ros.io.sources import FrameSource, SourceError
from unihoi_ros.pipeline.downscale import downscaled_result
from unihoi_ros.pipeline.fusion import CloudFuser
from unihoi_ros.pipeline.reconstructor import Reconstructor
from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.ros.params import DEFAULT_NAMESPACE

log = logging.getLogger(__name__)

NAMESPACE = DEFAULT_NAMESPACE


class OutputExistsError(UnihoiError, FileExistsError):
    """The output directory exists and ``force`` was not given."""


def prepare_output_dir(out_dir: Path, force: bool) -> None:
    """Create ``out_dir``; an existing non-empty one is replaced only with ``force``."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise OutputExistsError(f"{out_dir} exists and is not empty; pass --force to "
                                    "overwrite it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


class BagOutputs:
    """Writes a FrameResult stream as the node's topics into a compact rosbag2 MCAP.

    Every chunk is zstd-compressed (:class:`~unihoi_ros.io.bag_writer.BagRecorder`); the
    images are at most ``max_side`` pixels on the longer side (an integer divisor of the
    frame size: :func:`~unihoi_ros.pipeline.downscale.downscaled_result`); the full-size
    predictions are the run's PNG files. Topics (``/unihoi`` namespace):

    - ``image/compressed``: CompressedImage, JPEG of the frame as processed (unless
      ``image`` is False);
    - ``depth/image``: Image ``16UC1``, millimetres, 0 = invalid (REP-118);
    - ``depth/camera_info``: CameraInfo of the bag's image size;
    - ``confidence/image``: Image ``mono8``, confidence x 255;
    - ``points``: PointCloud2 (x, y, z, rgb) of every ``point_stride``-th bag pixel from
      the full-resolution depth, confidence >= ``min_point_confidence``;
    - ``pose`` (PoseStamped), ``tracks`` (PointCloud2), ``/tf``, and ``trajectory`` (the
      whole Path once, at :meth:`close`).

    The messages come from the node's table (:mod:`unihoi_ros.ros.msg.bundle`) with its
    compact encodings; the live node publishes ``32FC1`` depth and confidence.
    """

    def __init__(self, bag_dir: Path, camera: str = "camera", world_frame: str = "unihoi_world",
                 input_topic: str = f"{NAMESPACE}/image", max_path_poses: int = 10000, *,
                 max_side: int | None = 320, point_stride: int = 8,
                 min_point_confidence: float = 0.5, image: bool = True,
                 jpeg_quality: int = 90) -> None:
        from unihoi_ros.io.bag_writer import BagRecorder
        from unihoi_ros.ros import messages as m
        from unihoi_ros.ros.qos import qos_profile

        self._m = m
        self.camera, self.world_frame = camera, world_frame
        self.image_topic = f"{input_topic}/compressed" if image else None
        self.max_path_poses = max_path_poses
        self.max_side, self.point_stride = max_side, point_stride
        self.min_point_confidence, self.jpeg_quality = min_point_confidence, jpeg_quality
        self._poses: list = []
        self._last_stamp: int | None = None
        self._rec = BagRecorder(bag_dir, m.get_typestore(), compression="zstd")
        self._topics = {self.image_topic: m.COMPRESSED_IMAGE} if image else {}
        for rel, msgtype in m.DEFAULT_OUTPUT_TOPICS.items():
            if rel != "/diagnostics":
                self._topics[self._resolve(rel)] = msgtype
        for topic, msgtype in self._topics.items():
            self._rec.add_topic(topic, msgtype, qos_profile("DEFAULT"))

    @staticmethod
    def _resolve(rel: str) -> str:
        return rel if rel.startswith("/") else f"{NAMESPACE}/{rel}"

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type of the bag."""
        return dict(self._topics)

    def write(self, result: FrameResult, tracks=None) -> None:
        """One frame's outputs (and its :class:`~unihoi_ros.tracks.TrackSet`, if given), as
        the node's table builds them (:data:`~unihoi_ros.ros.msg.bundle.OUTPUTS`); the
        whole Path once at :meth:`close` (a Path per frame would grow the bag
        quadratically)."""
        m, stamp = self._m, result.stamp_ns
        small = downscaled_result(result, self.max_side, self.point_stride,
                                  self.min_point_confidence)
        msgs = m.FrameMessages(small, m.optical_frame_id(self.camera), self.world_frame,
                               compact=True)
        if self.image_topic is not None:
            self._rec.write(self.image_topic, m.rgb_to_compressed(
                small.rgb, stamp, msgs.frame_id, "jpeg", self.jpeg_quality), stamp)
        for o in m.OUTPUTS:
            if o.name == "trajectory" or (o.name == "tracks" and tracks is None):
                continue
            msg = msgs.build(o.name, tracks)
            self._rec.write(self._resolve(o.topic), msg, stamp)
            if o.name == "pose":
                self._poses.append(msg)
        self._poses = self._poses[-self.max_path_poses:]
        self._last_stamp = stamp

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic."""
        return dict(self._rec.counts)

    def close(self) -> None:
        if self._poses and not self._rec.closed:
            m = self._m
            self._rec.write(self._resolve("trajectory"),
                            m.path_msg(self._poses, self._last_stamp, self.world_frame),
                            self._last_stamp)
        self._rec.close()


def _frames_checked(source: FrameSource, max_frames: int | None):
    """The source's frames, refusing a change of resolution and a video that ends early."""
    size, count = None, 0
    for stamp, rgb in source:
        if size is None:
            size = rgb.shape
        elif rgb.shape != size:
            raise SourceError(f"{source.path}: frame {count} is {rgb.shape[1]}x{rgb.shape[0]} "
                              f"but the stream started at {size[1]}x{size[0]}; mixed "
                              "resolutions are not supported offline")
        yield stamp, rgb
        count += 1
        if max_frames is not None and count >= max_frames:
            return
    if count == 0:
        raise SourceError(f"{source.path}: no frames")
    if source.kind == "video" and source.num_frames and count < 0.9 * source.num_frames:
        raise SourceError(f"{source.path}: video ended early after {count} of "
                          f"{source.num_frames} frames")


def process_source(
    source: FrameSource,
    reconstructor: Reconstructor,
    out_dir: Path,
    *,
    max_frames: int | None = None,
    progress: bool = True,
    write_bag: bool = True,
    info: dict | None = None,
    pictures: bool = True,
    camera: CameraCalibration | None = None,
    bag_max_side: int | None = 320,
    bag_image: bool = True,
    cloud_stride: int = 5,
    pictures_drawn: Sequence[str] = (),
) -> list[FrameResult]:
    """Reconstruct every frame of ``source`` and write the outputs (module doc) to
    ``out_dir`` (which must exist). Returns the results (without per-frame ``points``:
    the bag's clouds are built from the depth). On a bad input (or any error)
    every frame reconstructed so far is written (PNGs, ``frames.json``, a readable bag)
    and the error (:class:`SourceError`, ...) propagates.

    ``camera``: a known camera (:func:`unihoi_ros.io.camera_info.choose_camera`): frames
    go through the node's :class:`~unihoi_ros.ros.camera_input.CameraInput` (rectified
    where it has distortion, K at the frame's size) and the reconstructor uses its K
    instead of the network's, as the node does with ``use_camera_info``; None predicts K.
    ``report.json`` records which (``intrinsics``).

    ``bag_max_side``: longest side of the bag's images (0 or None: full resolution);
    ``bag_image``: record the input frames (JPEG) in the bag. ``cloud_stride``: fuse every
    n-th frame into ``cloud.ply`` (consecutive frames see the same surfaces; with noisy
    depth each fused frame adds points, so the file grows with the frames fused: 5 keeps
    it under 30 kB per 640x480 frame). ``progress``: a bar with frames/s and, when the
    source knows its length, the time left. ``pictures_drawn``: pictures the caller already
    wrote into ``out_dir`` (e.g. ``--refine-depth``'s), counted with this run's own in
    ``report.json``'s sizes."""
    from tqdm import tqdm

    from unihoi_ros.io.run_writer import RunWriter
    from unihoi_ros.io.tracks_io import TracksRecorder
    from unihoi_ros.ros.camera_input import CameraInput
    from unihoi_ros.ros.ratelog import RateLimitedLog
    from unihoi_ros.tracks.background import BackgroundTracker
    from unihoi_ros.tracks.stage import TrackingStage

    if cloud_stride < 1:
        raise ValueError(f"cloud_stride must be >= 1, got {cloud_stride}")
    camera_counts: dict[str, int] = {}
    camera_input = CameraInput(
        lambda key, n: camera_counts.__setitem__(key, camera_counts.get(key, 0) + n),
        RateLimitedLog(log))

    t_start = time.perf_counter()
    total = source.num_frames if max_frames is None else min(max_frames,
                                                              source.num_frames or max_frames)
    if progress and not total:
        log.info("%s: frame count unknown up front: the progress bar shows frames/s, "
                 "no time left", source.path.name)
    results: list[FrameResult] = []
    fuser = CloudFuser()
    tracker, tracks = TrackingStage(), TracksRecorder()
    bar = tqdm(total=total or None, desc=f"process {source.path.name}", unit="frame",
               disable=not progress, dynamic_ncols=True)
    bag = (BagOutputs(out_dir / "bag", max_side=bag_max_side, image=bag_image,
                      min_point_confidence=reconstructor.config.min_point_confidence)
           if write_bag else None)
    writer = RunWriter(out_dir, bag=bag)  # from here on, closed in the finally below

    def track_and_write(r, track_set):  # on the tracker's thread, in stream order
        tracks.add(track_set)
        writer.add(r, track_set)

    # Frame t is tracked (its flow to t-1 reused) while t+1 is reconstructed.
    tracking = BackgroundTracker(tracker, track_and_write)

    def emit(batch):
        for r in batch:
            if len(results) % cloud_stride == 0:
                fuser.add(r)
            results.append(r)
            tracking.add(r, reconstructor.backward_flow(r.stamp_ns))

    finished = False
    try:
        for stamp, rgb in _frames_checked(source, max_frames):
            rgb, K = camera_input.prepare(rgb, camera)
            # No per-frame points: nothing offline reads them (the bag builds its own).
            emit(reconstructor.feed(stamp, rgb, K=K, build_points=False).results)
            bar.update(1)
        emit(reconstructor.flush())
        finished = True
    finally:
        bar.close()
        # every frame handed over is tracked and written, also on error (then without
        # masking it)
        try:
            tracking.close(raise_error=finished)
        finally:
            writer.close(raise_error=finished)
    t_frames = time.perf_counter() - t_start
    if not results:
        raise SourceError(f"{source.path}: no frame could be reconstructed "
                          f"(drops: {reconstructor.stats()['drops']})")
    stamps = np.array([r.stamp_ns for r in results], np.int64)
    T_world_cam = np.stack([r.T_world_cam for r in results])
    cloud, colors = fuser.cloud()
    write_ply(out_dir / "cloud.ply", cloud, colors)
    write_tum_trajectory(out_dir / "trajectory_tum.txt", stamps, T_world_cam)
    track_arrays = tracks.save(out_dir)
    picture_files = []
    if pictures:
        from unihoi_ros.io.pictures import summary_png, tracks_png

        summary_png(out_dir / "summary.png", results, cloud, colors,
                    title=f"{source.path.name}: {len(results)} frames")
        tracks_png(out_dir / "tracks.png", track_arrays, cloud, colors, T_world_cam[:, :3, 3],
                   title=f"{source.path.name}: dynamic tracks (hands, objects), top view")
        picture_files = ["summary.png", "tracks.png", *pictures_drawn]
    wall = time.perf_counter() - t_start
    report = {
        "input": {"path": str(source.path), "kind": source.kind,
                  "description": source.description},
        "frames_out": len(results),
        "wall_time_s": wall,
        "frames_per_s": len(results) / wall,
        "frames_per_s_reconstruction": len(results) / t_frames,
        "reconstructor": reconstructor.stats(),
        "config": asdict(reconstructor.config),
        "intrinsics": ({**camera.report(), **camera_counts} if camera is not None else
                       {"source": "predicted (network; one K per stream)"
                        if reconstructor.config.stream_intrinsics else "predicted (network)"}),
        "backend": {"name": reconstructor.backend.name, "device": reconstructor.backend.device},
        "flow": getattr(reconstructor.flow, "name", type(reconstructor.flow).__name__),
        "cloud_points": len(cloud),
        "cloud_frames_fused": (len(results) + cloud_stride - 1) // cloud_stride,
        "trajectory_length_m": float(np.linalg.norm(
            np.diff(T_world_cam[:, :3, 3], axis=0), axis=1).sum()),
        "outputs": output_sizes(out_dir, len(results), picture_files),
        "bag": ({"max_side": bag_max_side or None, "image": bag_image, "compression": "zstd",
                 "messages": bag.counts} if bag is not None else None),
        **(info or {}),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return results


def output_sizes(out_dir: Path, frames: int, pictures: list[str] = ()) -> dict:
    """Bytes under ``out_dir`` (``report.json`` aside): in all, per frame, per top-level
    entry, and per frame without the ``pictures`` (file names)."""
    sizes: dict[str, int] = {}
    for p in sorted(Path(out_dir).rglob("*")):
        if p.is_file() and p.name != "report.json":
            top = p.relative_to(out_dir).parts[0]
            sizes[top] = sizes.get(top, 0) + p.stat().st_size
    total = sum(sizes.values())
    no_pictures = total - sum(sizes.get(name, 0) for name in pictures)
    return {"bytes": total, "bytes_per_frame": total / max(frames, 1),
            "bytes_per_frame_without_pictures": no_pictures / max(frames, 1),
            "by_entry": sizes}
