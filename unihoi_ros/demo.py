"""The one-command demo: a synthetic head-camera clip through the real node over DDS.

Three DDS participants in one process, all on the loopback interface: a publisher plays the
clip as ``sensor_msgs/Image`` on ``/unihoi/image``; the node (:class:`UnihoiNode` over the
Cyclone DDS transport, replay mode so no frame is dropped) reconstructs it and records its
inputs and outputs to a rosbag2 MCAP; a subscriber receives depth, camera_info, confidence
and TF as any ROS 2 node would. What the subscriber received is then evaluated against
the clip's exact ground truth.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unihoi_ros.ros.params import DEFAULT_NAMESPACE

log = logging.getLogger(__name__)

NAMESPACE = DEFAULT_NAMESPACE
RECEIVED_TOPICS = ("depth/image", "depth/camera_info", "confidence/image", "/tf")


@dataclass
class DemoConfig:
    out: Path = Path("demo_out")
    model: str = "unihoi-tiny"
    seed: int = 10_000  # a held-out seed: never seen in training
    frames: int = 60
    height: int = 120
    width: int = 160
    rate_hz: float = 15.0
    timeout_s: float = 120.0
    force: bool = False


@dataclass
class _Inbox:
    """Messages received per topic, keyed by stamp (ns)."""

    msgs: dict[str, dict[int, object]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    expected: int = 0

    def add(self, topic: str, stamp: int, msg) -> None:
        with self.lock:
            self.msgs.setdefault(topic, {})[stamp] = msg
            if all(len(self.msgs.get(t, {})) >= self.expected for t in RECEIVED_TOPICS):
                self.done.set()


def _stamp(msg) -> int:
    from unihoi_ros.ros.messages import stamp_to_ns

    if hasattr(msg, "transforms"):
        return stamp_to_ns(msg.transforms[0].header.stamp)
    return stamp_to_ns(msg.header.stamp)


def _results_from_messages(inbox: _Inbox, seq) -> list:
    """FrameResults rebuilt from what the subscriber received (one per received stamp)."""
    from unihoi_ros.geometry.frames import T_BODY_OPTICAL
    from unihoi_ros.geometry.quaternions import matrix_from_quaternion
    from unihoi_ros.pipeline.results import FrameResult
    from unihoi_ros.ros.messages import image_to_array

    by_stamp = {int(s): i for i, s in enumerate(seq.stamps_ns)}
    stamps = sorted(set.intersection(*(set(inbox.msgs.get(t, {})) for t in RECEIVED_TOPICS)))
    results = []
    for s in stamps:
        tf = inbox.msgs["/tf"][s].transforms[0].transform
        T = np.eye(4)
        T[:3, :3] = matrix_from_quaternion([tf.rotation.x, tf.rotation.y, tf.rotation.z,
                                            tf.rotation.w])
        T[:3, 3] = [tf.translation.x, tf.translation.y, tf.translation.z]
        T = T_BODY_OPTICAL.T @ T  # world with the first camera's optical axes, as the sim's
        info = inbox.msgs["depth/camera_info"][s]
        depth = image_to_array(inbox.msgs["depth/image"][s])
        rgb = seq.rgb[by_stamp[s]]
        if depth.shape != rgb.shape[:2]:
            import cv2

            rgb = cv2.resize(rgb, (depth.shape[1], depth.shape[0]), interpolation=cv2.INTER_AREA)
        results.append(FrameResult(
            stamp_ns=s, rgb=rgb, depth=depth, K=np.asarray(info.k, np.float64).reshape(3, 3),
            T_world_cam=T, confidence=image_to_array(inbox.msgs["confidence/image"][s]),
            points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8)))
    return results


def run_demo(cfg: DemoConfig) -> dict:
    """Run the demo; return the summary (also written to ``<out>/demo.json``)."""
    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.io.bag_writer import BagRecorder
    from unihoi_ros.io.ground_truth import GroundTruth, write_sequence_npz
    from unihoi_ros.io.pictures import evaluation_png, pictures_enabled, summary_png
    from unihoi_ros.io.ply import write_ply
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.io.run_layout import write_run
    from unihoi_ros.offline import prepare_output_dir
    from unihoi_ros.pipeline.fusion import CloudFuser
    from unihoi_ros.ros import dds
    from unihoi_ros.ros import messages as m
    from unihoi_ros.ros.dds_transport import DdsTransport
    from unihoi_ros.ros.loopback import unique_domain_id, use_loopback
    from unihoi_ros.ros.node import UnihoiNode
    from unihoi_ros.ros.params import NodeParams
    from unihoi_ros.ros.qos import qos_profile
    from unihoi_ros.sim import make_sequence

    t0 = time.perf_counter()
    pictures = pictures_enabled(["summary.png", "eval.png"])  # said before the work
    use_loopback(os.environ)  # the demo's DDS traffic never leaves this machine
    domain = unique_domain_id(cfg.seed)
    prepare_output_dir(cfg.out, cfg.force)
    seq = make_sequence(cfg.seed, cfg.frames, cfg.height, cfg.width)
    write_sequence_npz(seq, cfg.out / "ground_truth.npz")
    # Lossless on any machine: replay mode, and reliable input and output histories that
    # hold the whole clip (a reliable keep-last endpoint drops only when its history is full).
    depth = max(10, cfg.frames)
    params = NodeParams.load([], {"live_mode": False, "image_topic": "image",
                                  "input_qos": "DEFAULT", "input_qos_depth": depth,
                                  "output_qos_depth": depth}, namespace=NAMESPACE)
    backend = params.load_backend(cfg.model)  # as `unihoi run` loads it
    recorder = BagRecorder(cfg.out / "bag")
    transport = DdsTransport(domain, NAMESPACE, recorder=recorder)
    node = UnihoiNode(params, backend, transport)
    inbox = _Inbox(expected=cfg.frames)
    listener = dds.create_participant(domain)
    player = dds.create_participant(domain)
    subs, pub = [], None
    try:
        node.start()
        for topic in RECEIVED_TOPICS:
            subs.append(dds.Subscriber(
                listener, topic, m.DEFAULT_OUTPUT_TOPICS[topic],
                callback=lambda msg, t=topic: inbox.add(t, _stamp(msg), msg),
                qos=qos_profile("DEFAULT", depth), namespace=NAMESPACE))
        pub = dds.Publisher(player, "image", m.IMAGE, qos_profile("DEFAULT", depth),
                            namespace=NAMESPACE)
        if not pub.wait_for_subscribers(1, timeout=20.0):
            raise RuntimeError("the node's image subscription did not match within 20 s")
        for sub in subs:
            sub.wait_for_publishers(1, timeout=20.0)
        t_stream = time.perf_counter()
        for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
            pub.publish(m.rgb_to_image(rgb, int(stamp), "camera_optical_frame"))
            time.sleep(1.0 / cfg.rate_hz)
        complete = inbox.done.wait(cfg.timeout_s)
        stream_s = time.perf_counter() - t_stream
    finally:
        for sub in subs:
            sub.close()
        if pub is not None:
            pub.close()
        node.stop()
        node_stats = node.stats()
        transport.close()
        recorder.close()
    results = _results_from_messages(inbox, seq)
    if not results:
        raise RuntimeError("no output was received from the node")
    preds = Predictions.from_results(results)
    write_run(cfg.out, preds)  # depth/, confidence/, frames.json: unihoi_ros.io.load_run
    gt = GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth, seq.K, f"synthetic seed {cfg.seed}")
    metrics = evaluate(preds, gt)
    (cfg.out / "eval.json").write_text(json.dumps(metrics.to_dict(), indent=2))
    from unihoi_ros.evaluation import associate
    from unihoi_ros.geometry.metrics import align_trajectory

    ip, ig = associate(preds.stamps_ns, gt.stamps_ns)
    aligned = np.asarray(align_trajectory(preds.T_world_cam[ip], gt.T_world_cam[ig], "sim3"))
    if pictures:
        evaluation_png(cfg.out / "eval.png", aligned, gt.T_world_cam[ig],
                       metrics.per_frame_translation_error_m,
                       metrics.depth.per_frame_abs_rel, title=f"demo vs ground truth "
                       f"({cfg.model})")
    fuser = CloudFuser(voxel=0.005)
    for r in results:
        fuser.add(r)
    cloud, colors = fuser.cloud()
    write_ply(cfg.out / "cloud.ply", cloud, colors)
    if pictures:
        summary_png(cfg.out / "summary.png", results, cloud, colors,
                    title=f"unihoi demo: {cfg.model}, synthetic clip seed {cfg.seed}")
    summary = {
        "pictures": pictures,
        "model": cfg.model, "backend": node.backend.name, "seed": cfg.seed,
        "frames_published": cfg.frames, "frames_received": len(results),
        "complete": bool(complete), "stream_s": round(stream_s, 2),
        "wall_s": round(time.perf_counter() - t0, 2), "dds_domain": domain,
        "node": node_stats, "bag_counts": dict(recorder.counts),
        "metrics": {k: v for k, v in metrics.to_dict().items() if k in (
            "trajectory", "baseline_identity_pose", "depth", "baseline_constant_depth",
            "pointcloud", "baseline_pointcloud")},
    }
    summary["metrics"]["depth"] = {k: v for k, v in summary["metrics"]["depth"].items()
                                   if k != "per_frame_abs_rel"}
    (cfg.out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
