"""``UnihoiNode``: the ROS adapter around the streaming reconstructor, over any
:class:`~unihoi_ros.ros.transport.Transport` (rclpy, Cyclone DDS, memory).

The node keeps the ROS concerns: subscriptions and QoS, queueing, decoding, camera_info
pairing and rectification, publishing, diagnostics. The stream rules (stamps, sizes,
resets, drops) belong to :meth:`Reconstructor.feed
<unihoi_ros.pipeline.reconstructor.Reconstructor.feed>`, whose outcome the node only
publishes and counts. Architecture and conventions: ``docs/architecture.md``,
``docs/conventions.md``.

Frames arrive on transport threads (callbacks only queue); one inference worker decodes,
feeds the reconstructor and publishes, so callbacks never block:

- live mode (default): one pending slot; a newer frame replaces the pending one (counted
  as ``busy``): latency stays bounded by about two inference times.
- replay mode (``live_mode: false`` or ``use_sim_time``): a FIFO of up to
  ``replay_queue_size`` frames; every frame is processed while the queue has room.

Per processed frame, every header stamped with the input frame's stamp and carrying the
input's ``frame_id`` (unless ``camera_frame`` is set): ``depth/image`` (32FC1),
``depth/camera_info``, ``confidence/image``, ``points`` (only while subscribed),
``trajectory`` (nav_msgs/Path, only while subscribed), ``pose`` (PoseStamped) and TF
``world_frame -> camera frame`` (REP-103 body axes, :mod:`unihoi_ros.geometry.frames`);
``/diagnostics`` periodically. Bad input never stops the node: it is dropped, counted by
reason and logged (first time, then rate-limited).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from typing import Any

import numpy as np

from unihoi_ros.backends.base import as_loaded
from unihoi_ros.pipeline.outcome import DropReason, FeedOutcome, ResetReason
from unihoi_ros.pipeline.stats import StreamStats
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.camera_info_pairing import CameraInfoPairing
from unihoi_ros.ros.camera_input import CameraInput
from unihoi_ros.ros.frame_queue import FrameQueue, InputFrame
from unihoi_ros.ros.input_loss import InputLossEstimator
from unihoi_ros.ros.node_diagnostics import build_report
from unihoi_ros.ros.outputs import FrameOutputs
from unihoi_ros.ros.params import NODE_NAME, NodeParams
from unihoi_ros.ros.period_stats import PeriodStats
from unihoi_ros.ros.ratelog import RateLimitedLog
from unihoi_ros.ros.transport import DiagnosticReport, Transport
from unihoi_ros.threads import apply_thread_policy

log = logging.getLogger("unihoi_ros.node")

#: Name of the diagnostic task (published as "unihoi_node: <task>").
DIAGNOSTIC_TASK = "UniHOI reconstruction"
#: Output frame id when neither ``camera_frame`` nor the input header names one.
DEFAULT_CAMERA_FRAME = "camera_optical_frame"
#: Event counters reported by :meth:`UnihoiNode.stats` (zero when nothing happened).
EVENTS = ("stream_resets", "resolution_changes", "time_jumps", "camera_info_timeouts",
          "frames_without_camera_info", "publish_errors", "rectified_frames",
          "distortion_refused", "tf_lookup_failures")
_RESET_EVENTS = {ResetReason.RESOLUTION_CHANGE: "resolution_changes",
                 ResetReason.TIME_JUMP: "time_jumps"}


def _header_frame_id(msg: Any) -> str:
    """The input's ``header.frame_id``, or :data:`DEFAULT_CAMERA_FRAME` when empty."""
    frame_id = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
    return frame_id or DEFAULT_CAMERA_FRAME


class UnihoiNode:
    """The node (see module docstring).

    Args:
        params: the node's parameters.
        backend: inference backend (:func:`unihoi_ros.backends.factory.load_backend`).
        transport: middleware (DDS, rclpy, memory).
        flow: backward-flow provider; default OpenCV DIS with the ``flow_preset`` parameter.
        typestore: rosbags typestore of the messages (default Humble's).

    Call :meth:`start`, feed frames through the transport, :meth:`stop` at the end.
    """

    def __init__(self, params: NodeParams, backend: Any, transport: Transport, *,
                 flow: Any | None = None, typestore: Any | None = None) -> None:
        from unihoi_ros.pipeline import Reconstructor

        self.settings = params.stream_settings()  # the stream's (as `unihoi process`)
        if flow is None:
            flow = self.settings.make_flow()
        self.params = params
        self.transport = transport
        self.backend = as_loaded(backend)  # the backend and what was loaded
        self.typestore = typestore if typestore is not None else M.get_typestore()
        self.reconstructor = Reconstructor(self.backend, flow,
                                           self.settings.reconstructor_config())
        self.live = params.effective_live_mode
        self.backend.prepare_in_background(self.live)  # a new input size never stalls live
        self.threads = params.thread_policy()
        self._queue = FrameQueue(self.live, params.replay_queue_size)
        self._ratelog = RateLimitedLog(log)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()  # received, published and EVENTS
        self._drops: Counter[str] = Counter()
        self._recv_ns: OrderedDict[int, int] = OrderedDict()  # stamp -> receive time
        self._period = PeriodStats()
        self._input_loss = InputLossEstimator()  # frames lost before arrival, from stamps
        self._lost_reported = 0
        self._infer_ms: deque[float] = deque(maxlen=200)
        self._times = StreamStats(200)  # the node's own per-frame stages (decode, publish)
        self._outputs = FrameOutputs(params, transport, self.typestore, self._count,
                                     self._ratelog)
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._accepting = False
        self._camera = CameraInput(self._count, self._ratelog)
        self._frame_id = params.camera_frame or DEFAULT_CAMERA_FRAME
        self._input_size: tuple[int, ...] | None = None  # the camera's, once seen
        self._start_mono = time.monotonic()
        self._last_input_mono: float | None = None
        self._drops_reported: Counter[str] = Counter()
        self._pairing = CameraInfoPairing(
            params.camera_info_timeout_s, self.on_image,
            transport.resolve(params.camera_info_topic), self._count, self._drop, self._ratelog)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Warm the backend up, create publishers, start the worker, subscribe."""
        p, tp = self.params, self.transport
        apply_thread_policy(self.threads)
        self._warm_up()  # before any endpoint exists: matched endpoints mean "ready"
        self._outputs.create(tf_enabled=p.publish_tf and self._start_tf())
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="unihoi-inference", daemon=True)
        self._worker.start()
        tp.start_diagnostics(DIAGNOSTIC_TASK, self.backend.device,
                             p.diagnostics_period_s, self.diagnostics_report)
        self._accepting = True
        self._start_mono = time.monotonic()
        self._pairing.start()
        msgtype = M.COMPRESSED_IMAGE if p.use_compressed else M.IMAGE
        if p.use_camera_info:
            tp.subscribe_synchronized(
                p.image_input_topic, msgtype, p.camera_info_topic, M.CAMERA_INFO,
                p.input_qos_profile, self._pairing.on_pair, slop_s=p.camera_info_slop_s,
                queue_size=10, unpaired_callback=self._pairing.on_unpaired)
        else:
            tp.subscribe(p.image_input_topic, msgtype, p.input_qos_profile, self.on_image)
        log.info("%s", self.startup_summary())
        log.info("%s", self.settings.describe())
        from unihoi_ros.model_info import model_lines

        for line in model_lines(p.model):  # what the model was trained on (issue #25)
            log.info("%s", line)

    def _start_tf(self) -> bool:
        """Create the TF broadcaster; False (TF off, said once) where the transport cannot."""
        p = self.params
        try:
            self.transport.start_tf()
            if p.base_frame:  # camera -> base from the robot's TF (a tf2 Buffer)
                self.transport.start_transform_lookup()
        except ImportError as exc:  # MissingDependencyError included
            log.warning("TF disabled: %s. Costs: no %s -> %s transform on /tf; depth, "
                        "camera_info, confidence, points, trajectory and diagnostics are "
                        "still published", exc, p.world_frame,
                        p.base_frame or p.camera_frame or "<input frame_id>")
            return False
        if p.base_frame:
            log.info("TF: %s -> %s (the camera's parent stays the robot's; camera -> base "
                     "from tf2 at each frame's stamp)", p.world_frame, p.base_frame)
        return True

    def _warm_up(self) -> None:
        """Get the backend ready before the first frame (live mode would drop meanwhile).

        At a fixed processing size: the backend's per-size preparation (the cached ONNX
        graph: loaded, or exported) and two throwaway frames, so the first real frame does
        not pay for allocations and kernel selection. At the input's size (not known yet):
        the backend's expected sizes (the cached ONNX backend: the graphs that serve every
        4:3 and 16:9 camera, and the most recently used size), so the first frame of a
        usual camera is served by the backend that serves the hundredth.
        """
        size = self.reconstructor.config.process_size
        tail = self.reconstructor.config.stride + 1  # frames a steady-state window decodes
        self.backend.prepare_before_first_frame(size, tail)
        if size is None:
            return
        from unihoi_ros.pipeline import Reconstructor

        rng = np.random.default_rng(0)
        rec = Reconstructor(self.backend, self.reconstructor.flow,
                            self.settings.reconstructor_config())
        t0 = time.perf_counter()
        for i in range(2):  # noise may give degenerate poses: only the timing matters
            rec.feed(i + 1, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        log.info("warm-up at %dx%d: %.0f ms", size[0], size[1], (time.perf_counter() - t0) * 1e3)

    def startup_summary(self) -> str:
        """One line: model, backend, device, precision, resolution, mode, topics."""
        p, b = self.params, self.backend
        fixed = self.reconstructor.config.process_size
        size = (f"{fixed[1]}x{fixed[0]} (width x height; frames resized)" if fixed
                else f"input resolution, longer side at most {self.settings.max_side} (larger "
                "frames downscaled)" if self.settings.max_side else "input resolution (no resize)")
        untrained = " [UNTRAINED: outputs are meaningless]" if b.untrained else ""
        cam = (f", K from {self.transport.resolve(p.camera_info_topic)}" if p.use_camera_info
               else ", K predicted (one per stream: running median)" if p.stream_intrinsics
               else ", K predicted (each window's own)")
        return (
            f"{NODE_NAME} ready: model {b.model_source}{untrained}; backend {b.describe()}; "
            f"{self.threads.describe()}; processing at {size}; "
            f"flow DIS {self._flow_name()}; window stride "
            f"{p.window_stride}; {'live (drop when busy)' if self.live else 'replay (every frame)'}"
            f" mode; input {self.transport.resolve(p.image_input_topic)}"
            f" ({'CompressedImage' if p.use_compressed else 'Image'}){cam}; outputs under "
            f"{self.transport.namespace} via {self.transport.name}"
        )

    def _flow_name(self) -> str:
        flow = self.reconstructor.flow
        return flow.describe() if hasattr(flow, "describe") else type(flow).__name__

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking input, let the worker finish its frame (published), join it.
        Frames still queued are discarded and counted (reason ``shutdown``). Logs
        :meth:`summary_line` once (a second call only stops)."""
        was_running = self._accepting or self._worker is not None
        self._accepting = False
        self._stopping.set()
        left = self._queue.clear()
        if left:
            self._drop(DropReason.SHUTDOWN, left)
        self._queue.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.warning("inference worker did not finish within %.0f s", timeout)
        self._worker = None
        if was_running:
            log.info("%s", self.summary_line())

    def summary_line(self) -> str:
        """One line of totals: frames received (and estimated lost before arrival),
        processed (fed to the reconstructor), published, and dropped by reason."""
        st = self.stats()
        drops = ", ".join(f"{reason} {n}" for reason, n in sorted(st["drops"].items()))
        return (f"{NODE_NAME} summary: received {st['received']} frame(s) "
                f"(about {st['input_lost_estimate']} lost before arrival, from the camera's "
                f"stamps), processed {st['processed']}, published {st['published']}, "
                f"dropped {st['missed']}" + (f" ({drops})" if drops else ""))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no frame is queued or being processed; False on timeout (s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.idle:
                return True
            time.sleep(0.005)
        return False

    # ------------------------------------------------------------------ input (transport threads)
    def on_image(self, msg: Any, info: Any | None = None) -> None:
        """Image or CompressedImage received (with its CameraInfo, if paired): queue it."""
        if not self._accepting:
            return
        recv = time.monotonic_ns()
        self._last_input_mono = time.monotonic()
        self._period.received(recv)
        try:
            stamp = M.stamp_to_ns(msg.header.stamp)
        except Exception:  # a message without a usable header
            self._drop(DropReason.MALFORMED_IMAGE)
            self._ratelog(logging.WARNING, "header", "dropped a frame without a valid header")
            return
        self._count("received")
        self._input_loss.add(stamp)
        displaced = self._queue.put(InputFrame(msg, stamp, recv, info))
        if displaced is not None:
            self._drop(DropReason.BUSY if self.live else DropReason.QUEUE_FULL)
            if not self.live:
                self._ratelog(logging.WARNING, "queue_full", "replay queue full (%d frames): "
                              "dropped the oldest; play the input slower",
                              self.params.replay_queue_size)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stopping.is_set():
            frame = self._queue.get(timeout=0.1)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception:  # the worker must survive anything
                self._drop(DropReason.INFERENCE_ERROR)
                self._ratelog(logging.ERROR, "worker", "unexpected error while processing "
                              "frame %d", frame.stamp_ns, exc_info=True)
            finally:
                self._queue.done()

    def _process(self, frame: InputFrame) -> None:
        checked = self.reconstructor.check_stamp(frame.stamp_ns)  # seen even if undecodable
        if checked.dropped is not None or checked.reset is not None:
            self._account(checked, frame.stamp_ns)
        if checked.dropped is not None:
            return
        with self._times.time("decode"):
            rgb = self._decode(frame)
        if rgb is None:
            return
        rgb, K = self._camera.prepare(rgb, frame.info)
        if rgb.shape[:2] != self._input_size:  # the first frame, or a new camera
            self._input_size = rgb.shape[:2]
            log.info("%s", self.settings.describe(self._input_size))
        self._frame_id = self.params.camera_frame or _header_frame_id(frame.msg)
        with self._lock:
            self._recv_ns[frame.stamp_ns] = frame.recv_ns
            while len(self._recv_ns) > 16:
                self._recv_ns.popitem(last=False)
        t0 = time.perf_counter()
        points = self._outputs.points_wanted  # build clouds only for someone
        self._count("processed")
        outcome = self.reconstructor.feed(frame.stamp_ns, rgb, K=K, build_points=points)
        self._account(outcome, frame.stamp_ns)
        if outcome.results:
            self._infer_ms.append((time.perf_counter() - t0) * 1e3)
        for result in outcome.results:
            self._publish(result, points)

    def _account(self, outcome: FeedOutcome, stamp_ns: int) -> None:
        """Count and log a feed's drop and reset (the reconstructor decided them)."""
        if outcome.reset is not None:
            self._count("stream_resets")
            if outcome.reset in _RESET_EVENTS:
                self._count(_RESET_EVENTS[outcome.reset])
            self._outputs.reset()
            failed = outcome.reset is ResetReason.INFERENCE_ERROR
            self._ratelog(logging.ERROR if failed else logging.WARNING, str(outcome.reset),
                          "frame %d: %s", stamp_ns, outcome.message,
                          exc_info=outcome.error)  # a backend failure: with its traceback
        elif outcome.dropped is not None:
            self._ratelog(logging.WARNING, str(outcome.dropped), "dropped frame %d (%s): %s",
                          stamp_ns, outcome.dropped.value.replace("_", " "), outcome.message)
        if outcome.dropped is not None:
            self._drop(outcome.dropped)

    def _decode(self, frame: InputFrame) -> np.ndarray | None:
        compressed = self.params.use_compressed
        try:
            return M.compressed_to_rgb(frame.msg) if compressed else M.image_to_rgb(frame.msg)
        except M.UnsupportedEncodingError as exc:
            reason, text = DropReason.UNSUPPORTED_ENCODING, str(exc)
        except Exception as exc:  # malformed, corrupt, or anything a decoder may raise
            reason = DropReason.CORRUPT_COMPRESSED if compressed else DropReason.MALFORMED_IMAGE
            text = str(exc) if isinstance(exc, M.MalformedImageError) else repr(exc)
        self._drop(reason)
        self._ratelog(logging.WARNING, str(reason), "dropped frame %d (%s): %s", frame.stamp_ns,
                      reason.value.replace("_", " "), text)
        return None

    # ------------------------------------------------------------------ publishing
    def _publish(self, result: Any, points_built: bool) -> None:
        with self._times.time("publish"):
            self._outputs.publish(result, self._frame_id, points_built)
        now = time.monotonic_ns()
        with self._lock:
            self._counts["published"] += 1
            recv = self._recv_ns.pop(result.stamp_ns, None)
        age_ms = (self.transport.now_ns() - result.stamp_ns) / 1e6
        self._period.published(now, None if recv is None else (now - recv) / 1e6, age_ms)

    # ------------------------------------------------------------------ accounting
    def _drop(self, reason: DropReason, n: int = 1) -> None:
        with self._lock:
            self._drops[str(reason)] += n

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> dict[str, Any]:
        """Totals since start: ``received``, ``processed`` (fed to the reconstructor),
        ``published``, ``missed`` (all drops), ``drops`` by reason,
        ``input_lost_estimate`` (frames lost before arrival, from the stamps' gaps), the
        :data:`EVENTS` counters, whether TF is published, and the mean inference time in
        milliseconds."""
        with self._lock:
            counts, drops = dict(self._counts), dict(self._drops)
        out: dict[str, Any] = {"received": counts.get("received", 0),
                               "processed": counts.get("processed", 0),
                               "published": counts.get("published", 0),
                               "missed": sum(drops.values()), "drops": drops,
                               "input_lost_estimate": self._input_loss.lost}
        out.update({key: counts.get(key, 0) for key in EVENTS})
        out["mean_inference_ms"] = float(np.mean(self._infer_ms)) if self._infer_ms else None
        out["live_mode"] = self.live
        out["tf"] = self._outputs.tf_enabled
        return out

    def input_publishers(self) -> dict[str, int]:
        """Publishers of each input topic now (image, and camera_info when used), by fully
        qualified topic: matched ones where the transport can tell (Cyclone DDS), else the
        graph's count (rclpy); topics whose count is unknown are left out."""
        p = self.params
        topics = [p.image_input_topic] + ([p.camera_info_topic] if p.use_camera_info else [])
        counts = {self.transport.resolve(t): self.transport.input_publisher_count(t)
                  for t in topics}
        return {t: n for t, n in counts.items() if n is not None}

    def output_subscribers(self) -> dict[str, int]:
        """Subscriptions matched by each output's publisher now, by topic
        (:meth:`FrameOutputs.subscriber_counts`)."""
        return self._outputs.subscriber_counts()

    def stage_times(self) -> dict[str, float]:
        """Median milliseconds per frame of each stage over the last 200 or so frames: the
        node's ``decode`` and ``publish`` (building and sending every output) and the
        reconstructor's (``preprocess``, ``encoder``, ``flow``, ``network``, ``poses``,
        ``points``). Read it after :meth:`stop` (the worker writes these timings)."""
        out = {f"node_{k}": v["median_ms"] for k, v in self._times.summary()["stages_ms"].items()}
        stages = self.reconstructor.stats()["stages_ms"]
        out.update({k: v["median_ms"] for k, v in stages.items()})
        return {k: round(float(v), 3) for k, v in out.items()}

    def diagnostics_report(self) -> DiagnosticReport:
        """The periodic status (ros2_benchmark metric names), since the previous report."""
        totals = self.stats()
        period_drops = Counter(totals["drops"]) - self._drops_reported
        self._drops_reported = Counter(totals["drops"])
        new_lost = totals["input_lost_estimate"] - self._lost_reported
        self._lost_reported = totals["input_lost_estimate"]
        return build_report(self, totals, self._period.take(), period_drops,
                            self._period.new_missed(totals["missed"]), self._input_problem(),
                            new_lost=new_lost, input_period_ms=self._input_loss.period_ms)

    def _input_problem(self) -> str | None:
        """Why no input arrives, naming the topic (no publisher / silent), or None."""
        p = self.params
        topic = self.transport.resolve(p.image_input_topic)
        if self.transport.input_publisher_count(p.image_input_topic) == 0:
            return f"no publisher on the input topic {topic}"
        last = self._last_input_mono if self._last_input_mono is not None else self._start_mono
        idle = time.monotonic() - last
        return f"no input on {topic} for {idle:.0f} s" if idle > p.input_timeout_s else None

    @property
    def camera_info_fallback(self) -> bool:
        """True while images go on without camera_info (``use_camera_info`` timeout)."""
        return self._pairing.fallback
