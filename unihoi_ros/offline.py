"""Offline processing: a recording in, every output of the node written to a directory.

``process_source`` runs the streaming reconstructor on every frame (no drops: offline
input applies back-pressure by construction) and writes, into ``out_dir``:

- ``bag/``: rosbag2 (MCAP, Humble-readable) with the input images and every output topic
  of the node (depth, camera_info, confidence, points, tf, trajectory);
- ``cloud.ply``: the fused static cloud (confidence-filtered, voxel-downsampled);
- ``trajectory_tum.txt``: camera-to-world poses in TUM format;
- ``predictions.npz``: stacked depth, K, poses, confidence (what ``unihoi eval`` reads);
- ``summary.png``: RGB / depth / confidence strip and a top view of trajectory and cloud;
- ``tracks.npz``, ``tracks.csv``, ``tracks.png``: long-term 3D point tracks (hands,
  objects, scene; :mod:`unihoi_ros.tracks`) in the world frame, and their picture;
  (the two pictures need matplotlib: ``pictures=False`` leaves them out)
- ``report.json``: counts, per-stage timings, input description, model and settings.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.io.camera_info import CameraCalibration
from unihoi_ros.io.ground_truth import write_tum_trajectory
from unihoi_ros.io.ply import write_ply
from unihoi_ros.io.predictions import Predictions
from unihoi_ros.io.sources import FrameSource, SourceError
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
    """Writes a FrameResult stream as the node's topics into a rosbag2 MCAP."""

    def __init__(self, bag_dir: Path, camera: str = "camera", world_frame: str = "unihoi_world",
                 input_topic: str = f"{NAMESPACE}/image", max_path_poses: int = 10000) -> None:
        from unihoi_ros.io.bag_writer import BagRecorder
        from unihoi_ros.ros import messages as m
        from unihoi_ros.ros.qos import qos_profile

        self._m = m
        self.camera, self.world_frame, self.input_topic = camera, world_frame, input_topic
        self.max_path_poses = max_path_poses
        self._poses: list = []
        self._last_stamp: int | None = None
        self._rec = BagRecorder(bag_dir, m.get_typestore())
        self._topics = {input_topic: m.IMAGE}
        for rel, msgtype in m.DEFAULT_OUTPUT_TOPICS.items():
            if rel != "/diagnostics":
                self._topics[self._resolve(rel)] = msgtype
        for topic, msgtype in self._topics.items():
            self._rec.add_topic(topic, msgtype, qos_profile("DEFAULT"))

    @staticmethod
    def _resolve(rel: str) -> str:
        return rel if rel.startswith("/") else f"{NAMESPACE}/{rel}"

    def write(self, result: FrameResult, tracks=None) -> None:
        """One frame's outputs (and its :class:`~unihoi_ros.tracks.TrackSet`, if given);
        the pose as a PoseStamped (``pose``), the whole Path once at :meth:`close` (a Path
        per frame would grow the bag quadratically)."""
        from unihoi_ros.geometry.frames import body_world_pose

        m, stamp = self._m, result.stamp_ns
        frame = m.optical_frame_id(self.camera)
        self._rec.write(self.input_topic, m.rgb_to_image(result.rgb, stamp, frame), stamp)
        for rel, msg in m.frame_result_messages(result, self.camera, self.world_frame).items():
            self._rec.write(self._resolve(rel), msg, stamp)
        pose = m.pose_stamped_msg(body_world_pose(result.T_world_cam), stamp, self.world_frame)
        self._rec.write(self._resolve("pose"), pose, stamp)
        if tracks is not None:
            self._rec.write(self._resolve("tracks"), m.tracks_msg(tracks, self.world_frame),
                            stamp)
        self._poses.append(pose)
        self._poses = self._poses[-self.max_path_poses:]
        self._last_stamp = stamp

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
) -> list[FrameResult]:
    """Reconstruct every frame of ``source`` and write the outputs (module doc) to
    ``out_dir`` (which must exist). Returns the results. On a bad input the partial bag
    is closed (readable) and the :class:`SourceError` propagates.

    ``camera``: a known camera (:func:`unihoi_ros.io.camera_info.choose_camera`): frames
    go through the node's :class:`~unihoi_ros.ros.camera_input.CameraInput` (rectified
    where it has distortion, K at the frame's size) and the reconstructor uses its K
    instead of the network's, as the node does with ``use_camera_info``; None predicts K.
    ``report.json`` records which (``intrinsics``)."""
    from tqdm import tqdm

    from unihoi_ros.ros.camera_input import CameraInput
    from unihoi_ros.ros.ratelog import RateLimitedLog

    camera_counts: dict[str, int] = {}
    camera_input = CameraInput(
        lambda key, n: camera_counts.__setitem__(key, camera_counts.get(key, 0) + n),
        RateLimitedLog(log))

    t_start = time.perf_counter()
    total = source.num_frames if max_frames is None else min(max_frames,
                                                              source.num_frames or max_frames)
    from unihoi_ros.io.tracks_io import TracksRecorder
    from unihoi_ros.tracks import PointTracker

    results: list[FrameResult] = []
    fuser = CloudFuser()
    bag = BagOutputs(out_dir / "bag") if write_bag else None
    tracker, tracks = PointTracker(), TracksRecorder()

    def emit(batch):
        for r in batch:
            results.append(r)
            fuser.add(r)
            track_set = tracker.update(r)
            tracks.add(track_set)
            if bag is not None:
                bag.write(r, track_set)

    try:
        bar = tqdm(total=total, desc=f"process {source.path.name}", unit="frame",
                   disable=not progress)
        for stamp, rgb in _frames_checked(source, max_frames):
            rgb, K = camera_input.prepare(rgb, camera)
            reconstructor.push(stamp, rgb, K=K)
            emit(reconstructor.drain())
            bar.update(1)
        emit(reconstructor.flush())
        bar.close()
    finally:
        if bag is not None:
            bag.close()
    if not results:
        raise SourceError(f"{source.path}: no frame could be reconstructed "
                          f"(drops: {reconstructor.stats()['drops']})")
    cloud, colors = fuser.cloud()
    write_ply(out_dir / "cloud.ply", cloud, colors)
    preds = Predictions.from_results(results)
    preds.save(out_dir / "predictions.npz")
    write_tum_trajectory(out_dir / "trajectory_tum.txt", preds.stamps_ns, preds.T_world_cam)
    track_arrays = tracks.save(out_dir)
    if pictures:
        from unihoi_ros.io.pictures import summary_png, tracks_png

        summary_png(out_dir / "summary.png", results, cloud, colors,
                    title=f"{source.path.name}: {len(results)} frames")
        tracks_png(out_dir / "tracks.png", track_arrays, cloud, colors,
                   preds.T_world_cam[:, :3, 3],
                   title=f"{source.path.name}: dynamic tracks (hands, objects), top view")
    report = {
        "input": {"path": str(source.path), "kind": source.kind,
                  "description": source.description},
        "frames_out": len(results),
        "wall_time_s": time.perf_counter() - t_start,
        "reconstructor": reconstructor.stats(),
        "config": asdict(reconstructor.config),
        "intrinsics": ({**camera.report(), **camera_counts} if camera is not None else
                       {"source": "predicted (network; one K per stream)"
                        if reconstructor.config.stream_intrinsics else "predicted (network)"}),
        "backend": {"name": reconstructor.backend.name, "device": reconstructor.backend.device},
        "flow": getattr(reconstructor.flow, "name", type(reconstructor.flow).__name__),
        "cloud_points": len(cloud),
        "trajectory_length_m": float(np.linalg.norm(
            np.diff(preds.T_world_cam[:, :3, 3], axis=0), axis=1).sum()),
        **(info or {}),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return results
