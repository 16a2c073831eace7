"""``UnihoiNode``: the node's logic over any :class:`~unihoi_ros.ros.transport.Transport`.

Frames arrive on transport threads (callbacks only check stamps and queue); one inference
worker thread decodes, runs the streaming :class:`~unihoi_ros.pipeline.Reconstructor` and
publishes, so callbacks never block:

- live mode (default): one pending slot. When inference is busy, a newer frame replaces
  the pending one and the replaced frame is counted as missed (reason ``busy``): latency
  stays bounded by about two inference times.
- replay mode (``live_mode: false`` or ``use_sim_time``): a FIFO of up to
  ``replay_queue_size`` frames; every frame is processed while the queue has room.

Per processed frame (DESIGN.md §3), every header stamped with the input frame's stamp:
``depth/image`` (32FC1), ``depth/camera_info``, ``confidence/image``, ``points`` (only while
someone subscribes), ``trajectory`` (nav_msgs/Path, at most ``trajectory_max_poses``; only
while someone subscribes), ``pose`` (geometry_msgs/PoseStamped: what to record) and TF
``world_frame -> camera frame``; ``/diagnostics`` periodically. Frames: outputs carry the
input's ``header.frame_id`` unless ``camera_frame`` is set; the world frame has REP-103
body axes (:mod:`unihoi_ros.geometry.frames`).

Bad input never stops the node: an unsupported encoding, a malformed or corrupt (compressed)
frame, a duplicate or out-of-order stamp, a NaN image, a failing inference are dropped,
counted by reason and logged (first time, then at most every ``LOG_PERIOD_S`` per reason);
a resolution change or a jump back in time resets the stream (counted) and goes on.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from unihoi_ros.errors import ConfigError
from unihoi_ros.geometry.frames import body_world_pose
from unihoi_ros.pipeline.rectify import Rectifier, has_distortion
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.params import NODE_NAME, NodeParams
from unihoi_ros.ros.transport import DiagnosticReport, Transport

log = logging.getLogger("unihoi_ros.node")

#: Minimum seconds between two log lines of the same kind (the first is always logged).
LOG_PERIOD_S = 10.0
#: A stamp this much older than the previous one is a jump back in time (bag loop, clock
#: reset): the stream is reset instead of every later frame being dropped as out of order.
TIME_JUMP_NS = 1_000_000_000
#: Output frame id when neither ``camera_frame`` nor the input header names one.
DEFAULT_CAMERA_FRAME = "camera_optical_frame"
#: Name of the diagnostic task (published as "unihoi_node: <task>").
DIAGNOSTIC_TASK = "UniHOI reconstruction"

# Drop reasons (diagnostics keys "# of Missed Frames (<reason>)").
BUSY = "busy"
QUEUE_FULL = "queue_full"
DUPLICATE = "duplicate_stamp"
OUT_OF_ORDER = "out_of_order"
UNSUPPORTED = "unsupported_encoding"
MALFORMED = "malformed_image"
CORRUPT_COMPRESSED = "corrupt_compressed"
INFERENCE_ERROR = "inference_error"
NO_PAIR = "no_camera_info_pair"
SHUTDOWN = "shutdown"


# --------------------------------------------------------------------------- small helpers
class RateLimitedLog:
    """Log each kind of message the first time, then at most once per ``period_s``,
    saying how many were suppressed in between."""

    def __init__(self, logger: logging.Logger, period_s: float = LOG_PERIOD_S) -> None:
        self._log = logger
        self._period = period_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        """Log ``msg % args`` under ``key`` unless throttled; True when it was logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._suppressed[key] += 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg += f" ({skipped} similar message(s) suppressed)"
        self._log.log(level, msg, *args, exc_info=exc_info)
        return True


@dataclass
class _Frame:
    """One received input frame waiting for inference.

    Attributes:
        msg: the rosbags Image or CompressedImage.
        stamp_ns: its header stamp, nanoseconds.
        recv_ns: monotonic receive time, nanoseconds (latency reference).
        info: the paired CameraInfo, or None.
        reset: reset the stream before this frame (time jumped back).
    """

    msg: Any
    stamp_ns: int
    recv_ns: int
    info: Any | None = None
    reset: bool = False


class FrameQueue:
    """Frames waiting for the worker: one pending slot (live) or a bounded FIFO (replay).

    :meth:`put` returns the frame it displaced (a missed frame), if any. A frame taken with
    :meth:`get` counts as in flight until :meth:`done`, so :attr:`idle` has no gap between
    taking a frame and processing it.
    """

    def __init__(self, live: bool, capacity: int) -> None:
        self.live = live
        self._items: deque[_Frame] = deque()
        self._capacity = 1 if live else max(1, int(capacity))
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = False

    def put(self, frame: _Frame) -> _Frame | None:
        with self._cond:
            dropped = None
            if len(self._items) >= self._capacity:
                dropped = self._items.popleft()  # live: the pending frame; replay: oldest
                frame.reset = frame.reset or dropped.reset  # keep a pending reset request
            self._items.append(frame)
            self._cond.notify()
            return dropped

    def get(self, timeout: float) -> _Frame | None:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None
            self._in_flight = True
            return self._items.popleft()

    def done(self) -> None:
        """The frame from the last :meth:`get` is finished (published or dropped)."""
        with self._cond:
            self._in_flight = False

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        with self._cond:
            return not self._items and not self._in_flight

    def clear(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def scale_intrinsics(K: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """``(3, 3)`` intrinsics of an image of size ``from_hw`` rescaled to ``to_hw``.

    Pixel centres stay pixel centres (``c' = (c + 0.5) * s - 0.5``), as when the image is
    resized with OpenCV.
    """
    if tuple(from_hw) == tuple(to_hw):
        return np.asarray(K, np.float64).copy()
    import torch

    from unihoi_ros.geometry.camera import denormalize_intrinsics, normalize_intrinsics

    k = torch.as_tensor(np.asarray(K, np.float64))
    kn = normalize_intrinsics(k, from_hw[0], from_hw[1], pixel_offset=0.5)
    return denormalize_intrinsics(kn, to_hw[0], to_hw[1], pixel_offset=0.5).numpy()


class KnownIntrinsicsBackend:
    """Wraps a backend so that a window's K is a known one (from camera_info) when set.

    The reconstructor then uses that K for poses, points and the published CameraInfo;
    depth stays the network's. ``K`` is set by the worker thread before each push.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.K: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, rgb: np.ndarray) -> Any:
        return self.inner.encode(rgb)

    def infer_window(self, features, rgbs, flows_bwd):
        pred = self.inner.infer_window(features, rgbs, flows_bwd)
        if self.K is not None:
            pred.K = np.array(self.K, dtype=np.float64)
        return pred


class PathSerializer:
    """``nav_msgs/Path`` of the newest ``max_poses`` poses, kept compactly and serialised fast.

    Poses live in preallocated arrays (stamp, position, quaternion): memory does not grow
    with the trajectory. Re-serialising a long Path with rosbags costs tens of
    milliseconds per frame (10 000 poses: about 40 ms); here the CDR is assembled with
    ``struct`` from a per-pose template taken from rosbags (stamp, the constant frame-id
    bytes with their alignment padding, seven doubles). A pose's padding depends on its
    8-byte alignment phase, so a template is kept per phase. Equality with
    ``serialize_cdr`` is tested.
    """

    _DOUBLES = struct.Struct("<7d")
    _STAMP = struct.Struct("<iI")

    def __init__(self, typestore: Any, frame_id: str, max_poses: int) -> None:
        self._ts = typestore
        self.frame_id = frame_id
        self._cap = int(max_poses)
        self._stamps = np.zeros(self._cap, np.int64)
        self._poses = np.zeros((self._cap, 7), np.float64)  # x y z qx qy qz qw
        self._start = 0
        self._len = 0
        # Per-phase middle bytes (frame id + padding) from serialised templates.
        probe = M.pose_stamped_msg(np.eye(4), 1_500_000_002, frame_id, typestore)
        sizes = [len(self._ser([probe] * k)) for k in range(3)]
        full = self._ser([probe] * 2)
        self._middle: dict[int, bytes] = {}
        for k in range(2):
            chunk = full[sizes[k]:sizes[k + 1]]
            if chunk[:8] != self._STAMP.pack(1, 500_000_002) or chunk[-56:] != \
                    self._DOUBLES.pack(0, 0, 0, 0, 0, 0, 1):
                raise RuntimeError("unexpected PoseStamped CDR layout")  # rosbags changed
            self._middle[self._phase(sizes[k])] = chunk[8:-56]

    def _ser(self, poses: list[Any], stamp_ns: int = 0) -> bytes:
        msg = M.path_msg(poses, stamp_ns, self.frame_id, self._ts)
        return bytes(self._ts.serialize_cdr(msg, M.PATH))

    @staticmethod
    def _phase(offset: int) -> int:
        return (offset - 4) % 8  # alignment counts from after the 4-byte encapsulation

    def append(self, stamp_ns: int, T_frame_body: np.ndarray) -> None:
        """Add the ``(4, 4)`` pose ``T_frame_body`` (in ``frame_id``) stamped ``stamp_ns``;
        the oldest pose goes when ``max_poses`` are held."""
        T = np.asarray(T_frame_body, np.float64)
        slot = (self._start + self._len) % self._cap
        if self._len == self._cap:
            self._start = (self._start + 1) % self._cap
        else:
            self._len += 1
        self._stamps[slot] = int(stamp_ns)
        self._poses[slot, :3] = T[:3, 3]
        self._poses[slot, 3:] = M.rotation_to_quaternion(T)

    def clear(self) -> None:
        self._start = self._len = 0

    def __len__(self) -> int:
        return self._len

    def _order(self) -> np.ndarray:
        return (self._start + np.arange(self._len)) % self._cap

    def message(self, stamp_ns: int) -> Any:
        """The Path (rosbags message) with header stamp ``stamp_ns``."""
        ts, fid = self._ts, self.frame_id
        point, quat = M.msg_class(M.POINT, ts), M.msg_class(M.QUATERNION, ts)
        pose_cls, stamped = M.msg_class(M.POSE, ts), M.msg_class(M.POSE_STAMPED, ts)
        poses = []
        for i in self._order():
            x, y, z, qx, qy, qz, qw = (float(v) for v in self._poses[i])
            poses.append(stamped(
                header=M.make_header(int(self._stamps[i]), fid, ts),
                pose=pose_cls(position=point(x=x, y=y, z=z),
                              orientation=quat(x=qx, y=qy, z=qz, w=qw)),
            ))
        return M.path_msg(poses, stamp_ns, fid, ts)

    def cdr(self, stamp_ns: int) -> bytes:
        """The Path's CDR bytes, equal to ``serialize_cdr(self.message(stamp_ns))``."""
        head = self._ser([], stamp_ns)[:-4]  # header and encapsulation, without the count
        parts = [head, struct.pack("<I", self._len)]
        offset = len(head) + 4
        stamp_pack, doubles_pack, middle = self._STAMP.pack, self._DOUBLES.pack, self._middle
        order = self._order()
        secs, nsecs = np.divmod(self._stamps[order], 1_000_000_000)
        for sec, nsec, pose in zip(secs.tolist(), nsecs.tolist(), self._poses[order].tolist()):
            mid = middle[self._phase(offset)]
            parts += (stamp_pack(sec, nsec), mid, doubles_pack(*pose))
            offset += 64 + len(mid)
        return b"".join(parts)


def _header_frame_id(msg: Any) -> str:
    """The input's ``header.frame_id``, or :data:`DEFAULT_CAMERA_FRAME` when empty."""
    frame_id = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
    return frame_id or DEFAULT_CAMERA_FRAME


# --------------------------------------------------------------------------- the node
class UnihoiNode:
    """The node's logic (see module docstring).

    Args:
        params: the node's parameters.
        backend: inference backend (:func:`unihoi_ros.backends.factory.load_backend`).
        transport: middleware (DDS, rclpy, memory).
        flow: backward-flow provider; default OpenCV DIS with the ``flow_preset`` parameter.
        typestore: rosbags typestore of the messages (default Humble's).

    Call :meth:`start`, feed frames through the transport, :meth:`stop` at the end.
    """

    def __init__(
        self,
        params: NodeParams,
        backend: Any,
        transport: Transport,
        *,
        flow: Any | None = None,
        typestore: Any | None = None,
    ) -> None:
        from unihoi_ros.pipeline import Reconstructor

        if flow is None:
            from unihoi_ros.flow import DISFlow

            flow = DISFlow(params.flow_preset)
        self.params = params
        self.transport = transport
        self.backend = KnownIntrinsicsBackend(backend)
        self.typestore = typestore if typestore is not None else M.get_typestore()
        self.reconstructor = Reconstructor(self.backend, flow, params.reconstructor_config())
        self.live = params.effective_live_mode
        self._queue = FrameQueue(self.live, params.replay_queue_size)
        self._ratelog = RateLimitedLog(log)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()  # received, published, resets, ...
        self._drops: Counter[str] = Counter()
        self._rec_drops: Counter[str] = Counter()  # drops seen inside the reconstructor
        self._last_stamp: int | None = None
        self._input_size: tuple[int, int] | None = None
        self._recv_ns: OrderedDict[int, int] = OrderedDict()  # stamp -> receive time
        self._period = _PeriodStats()
        self._infer_ms: deque[float] = deque(maxlen=200)
        self._path: PathSerializer | None = None
        self._pubs: dict[str, Any] = {}
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._accepting = False
        self._wants_cdr = bool(getattr(transport, "wants_cdr", False))
        self._tf_enabled = False
        self._rectifier = Rectifier()
        self._last_input_mono: float | None = None
        self._drops_reported: Counter[str] = Counter()  # drops at the previous report
        self._frame_id = params.camera_frame or DEFAULT_CAMERA_FRAME
        # camera_info state
        self._start_mono = time.monotonic()
        self._last_pair_mono: float | None = None
        self._fallback = False
        self._awaiting: OrderedDict[int, None] = OrderedDict()
        self._fallback_stamps: deque[int] = deque(maxlen=64)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Warm the backend up, create publishers, start the worker, subscribe."""
        p = self.params
        out_qos = p.output_qos_profile
        tp = self.transport
        self._warm_up()  # before any endpoint exists: matched endpoints mean "ready"
        self._pubs = {
            "depth": tp.create_publisher("depth/image", M.IMAGE, out_qos),
            "camera_info": tp.create_publisher("depth/camera_info", M.CAMERA_INFO, out_qos),
            "confidence": tp.create_publisher("confidence/image", M.IMAGE, out_qos),
            "points": tp.create_publisher("points", M.POINT_CLOUD2, out_qos),
            "trajectory": tp.create_publisher("trajectory", M.PATH, out_qos),
            "pose": tp.create_publisher("pose", M.POSE_STAMPED, out_qos),
        }
        self._tf_enabled = p.publish_tf and self._start_tf()
        self._path = PathSerializer(self.typestore, p.world_frame, p.trajectory_max_poses)
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="unihoi-inference", daemon=True)
        self._worker.start()
        tp.start_diagnostics(DIAGNOSTIC_TASK, str(getattr(self.backend, "device", "")),
                             p.diagnostics_period_s, self.diagnostics_report)
        self._accepting = True
        self._start_mono = time.monotonic()
        msgtype = M.COMPRESSED_IMAGE if p.use_compressed else M.IMAGE
        in_qos = p.input_qos_profile
        if p.use_camera_info:
            tp.subscribe_synchronized(
                p.image_input_topic, msgtype, p.camera_info_topic, M.CAMERA_INFO, in_qos,
                self.on_image_pair, slop_s=p.camera_info_slop_s, queue_size=10,
                unpaired_callback=self.on_image_unpaired,
            )
        else:
            tp.subscribe(p.image_input_topic, msgtype, in_qos, self.on_image)
        log.info("%s", self.startup_summary())

    def _start_tf(self) -> bool:
        """Create the TF broadcaster; False (TF off, said once) where the transport cannot."""
        try:
            self.transport.start_tf()
        except ImportError as exc:  # MissingDependencyError included
            log.warning("TF disabled: %s. Costs: no %s -> %s transform on /tf; depth, "
                        "camera_info, confidence, points, trajectory and diagnostics are "
                        "still published", exc, self.params.world_frame,
                        self.params.camera_frame or "<input frame_id>")
            return False
        return True

    def _warm_up(self) -> None:
        """Run two throwaway frames at the processing size (when fixed) so the first real
        frame does not pay for allocations and kernel selection (live mode would drop
        the frames arriving meanwhile)."""
        size = self.reconstructor.config.process_size
        if size is None:
            return
        from unihoi_ros.pipeline import Reconstructor

        rng = np.random.default_rng(0)
        rec = Reconstructor(self.backend.inner, self.reconstructor.flow,
                            self.params.reconstructor_config())
        t0 = time.perf_counter()
        try:
            for i in range(2):
                rec.push(i + 1, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        except Exception as exc:  # noise input may give degenerate poses; only timing matters
            log.debug("warm-up raised %r (ignored)", exc)
        log.info("warm-up at %dx%d: %.0f ms", size[0], size[1], (time.perf_counter() - t0) * 1e3)

    def startup_summary(self) -> str:
        """One line: model, backend, device, precision, resolution, mode, topics."""
        p, b = self.params, self.backend
        fixed = self.reconstructor.config.process_size
        size = (f"{fixed[1]}x{fixed[0]} (width x height; frames resized)" if fixed
                else "input resolution (no resize)")
        untrained = (" [UNTRAINED: outputs are meaningless]"
                     if getattr(b, "untrained", False) else "")
        cam = (f", K from {self.transport.resolve(p.camera_info_topic)}" if p.use_camera_info
               else ", K predicted")
        return (
            f"{NODE_NAME} ready: model {getattr(b, 'model_source', '?')}{untrained}; backend "
            f"{getattr(b, 'name', '?')} on {getattr(b, 'device', '?')} "
            f"({getattr(b, 'precision', 'fp32')}); processing at {size}; window stride "
            f"{p.window_stride}; {'live (drop when busy)' if self.live else 'replay (every frame)'}"
            f" mode; input {self.transport.resolve(p.image_input_topic)}"
            f" ({'CompressedImage' if p.use_compressed else 'Image'}){cam}; outputs under "
            f"{self.transport.namespace} via {self.transport.name}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking input, let the worker finish its frame (published), join it.

        Frames still queued are discarded and counted (reason ``shutdown``).
        """
        self._accepting = False
        self._stopping.set()
        left = self._queue.clear()
        if left:
            self._drop(SHUTDOWN, left)
        self._queue.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.warning("inference worker did not finish within %.0f s", timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no frame is queued or being processed; False on timeout (s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.idle:
                return True
            time.sleep(0.005)
        return False

    # ------------------------------------------------------------------ input callbacks
    def on_image(self, msg: Any, info: Any | None = None) -> None:
        """Image or CompressedImage received (transport thread): check stamp, queue."""
        if not self._accepting:
            return
        recv = time.monotonic_ns()
        self._last_input_mono = time.monotonic()
        self._period.received(recv)
        try:
            stamp = M.stamp_to_ns(msg.header.stamp)
        except Exception:  # a message without a usable header
            self._drop(MALFORMED)
            self._ratelog(logging.WARNING, MALFORMED, "dropped a frame without a valid header")
            return
        with self._lock:
            self._counts["received"] += 1
            reset = False
            last = self._last_stamp
            if last is not None and stamp == last:
                reason = DUPLICATE
            elif last is not None and stamp < last and last - stamp <= TIME_JUMP_NS:
                reason = OUT_OF_ORDER
            else:
                reason = None
                reset = last is not None and stamp < last
                self._last_stamp = stamp
        if reason is not None:
            self._drop(reason)
            self._ratelog(logging.WARNING, reason, "dropped frame %s: stamp %d after %d",
                          reason.replace("_", " "), stamp, last)
            return
        if reset:
            self._count("time_jumps")
            self._ratelog(logging.WARNING, "time_jump", "input stamps jumped back %.3f s (bag "
                          "loop or clock reset): resetting the stream", (last - stamp) / 1e9)
        displaced = self._queue.put(_Frame(msg, stamp, recv, info, reset))
        if displaced is not None:
            self._drop(BUSY if self.live else QUEUE_FULL)
            if not self.live:
                self._ratelog(logging.WARNING, QUEUE_FULL, "replay queue full (%d frames): "
                              "dropped the oldest; play the input slower",
                              self.params.replay_queue_size)

    def on_image_pair(self, msg: Any, info: Any) -> None:
        """An image paired with its CameraInfo (synchroniser callback)."""
        now = time.monotonic()
        stamp = M.stamp_to_ns(msg.header.stamp)
        with self._lock:
            self._last_pair_mono = now
            self._awaiting.pop(stamp, None)
            was_fallback, self._fallback = self._fallback, False
            taken = stamp in self._fallback_stamps
        if was_fallback:
            log.info("camera_info is arriving again: using its intrinsics")
        if not taken:
            self.on_image(msg, info)

    def on_image_unpaired(self, msg: Any) -> None:
        """Every image when ``use_camera_info`` (paired or not): after
        ``camera_info_timeout_s`` without any pair, process it with the predicted K."""
        now = time.monotonic()
        stamp = M.stamp_to_ns(msg.header.stamp)
        ref = self._last_pair_mono if self._last_pair_mono is not None else self._start_mono
        if now - ref <= self.params.camera_info_timeout_s:
            with self._lock:  # wait for its pair; forget (and count) it if none comes
                self._awaiting[stamp] = None
                evicted = 0
                while len(self._awaiting) > 20:
                    self._awaiting.popitem(last=False)
                    evicted += 1
            if evicted:
                self._drop(NO_PAIR, evicted)
            return
        with self._lock:
            entering = not self._fallback
            self._fallback = True
            self._fallback_stamps.append(stamp)
            self._awaiting.clear()
        if entering:
            self._count("camera_info_timeouts")
        self._ratelog(
            logging.WARNING, "camera_info_timeout",
            "no camera_info on %s paired with the images for %.1f s: going on with the "
            "predicted intrinsics", self.transport.resolve(self.params.camera_info_topic),
            self.params.camera_info_timeout_s,
        )
        self._count("frames_without_camera_info")
        self.on_image(msg, None)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stopping.is_set():
            frame = self._queue.get(timeout=0.1)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception:  # the worker must survive anything
                self._drop(INFERENCE_ERROR)
                self._ratelog(logging.ERROR, "worker", "unexpected error while processing "
                              "frame %d", frame.stamp_ns, exc_info=True)
            finally:
                self._queue.done()

    def _decode(self, frame: _Frame) -> np.ndarray | None:
        compressed = self.params.use_compressed
        try:
            if compressed:
                return M.compressed_to_rgb(frame.msg)
            return M.image_to_rgb(frame.msg)
        except M.UnsupportedEncodingError as exc:
            reason, text = UNSUPPORTED, str(exc)
        except M.MalformedImageError as exc:
            reason, text = (CORRUPT_COMPRESSED if compressed else MALFORMED), str(exc)
        except Exception as exc:  # anything a decoder may raise
            reason, text = (CORRUPT_COMPRESSED if compressed else MALFORMED), repr(exc)
        self._drop(reason)
        self._ratelog(logging.WARNING, reason, "dropped frame %d (%s): %s", frame.stamp_ns,
                      reason.replace("_", " "), text)
        return None

    def _process(self, frame: _Frame) -> None:
        if frame.reset:  # before decoding: a bad frame must not swallow the reset
            self._reset_stream()
        rgb = self._decode(frame)
        if rgb is None:
            return
        info = frame.info
        if info is not None and has_distortion(info.d):
            rgb, info = self._undistort(rgb, info)
        size = tuple(rgb.shape[:2])
        if self._input_size is not None and size != self._input_size:
            self._count("resolution_changes")
            self._ratelog(logging.WARNING, "resolution", "input resolution changed %s -> %s: "
                          "resetting the stream (new world frame)", self._input_size, size)
            self._reset_stream()
        self._input_size = size
        self._frame_id = self.params.camera_frame or _header_frame_id(frame.msg)
        self.backend.K = self._known_K(info, size)
        self.reconstructor.config.build_points = self._pubs["points"].subscription_count > 0
        with self._lock:
            self._recv_ns[frame.stamp_ns] = frame.recv_ns
            while len(self._recv_ns) > 16:
                self._recv_ns.popitem(last=False)
        t0 = time.perf_counter()
        try:
            self.reconstructor.push(frame.stamp_ns, rgb)
        except Exception as exc:  # a failed window must not stop the stream
            self._drop(INFERENCE_ERROR)
            self._ratelog(logging.ERROR, INFERENCE_ERROR, "inference failed on frame %d "
                          "(%s): resetting the stream", frame.stamp_ns, exc, exc_info=True)
            self._reset_stream()
            return
        self._infer_ms.append((time.perf_counter() - t0) * 1e3)
        results = self.reconstructor.drain()
        if not results:
            self._sync_reconstructor_drops()
        for result in results:
            self._publish(result)

    def _sync_reconstructor_drops(self) -> None:
        """Count frames the reconstructor refused (non-finite, bad shape, stamps).

        Worker thread only: the reconstructor's statistics are not thread-safe.
        """
        drops = self.reconstructor.stats()["drops"]
        with self._lock:
            for reason, n in drops.items():
                new = n - self._rec_drops[reason]
                if new > 0:
                    self._drops[reason] += new
                    self._rec_drops[reason] = n

    def _undistort(self, rgb: np.ndarray, info: Any) -> tuple[np.ndarray, Any | None]:
        """Rectify a frame whose camera_info has distortion (OpenCV, to the same K), or
        keep it and drop the camera's K (predicted K) where the model cannot be undone."""
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        info_hw = (int(info.height), int(info.width))
        if info_hw[0] > 0 and info_hw[1] > 0:
            K = scale_intrinsics(K, info_hw, tuple(rgb.shape[:2]))
        try:
            out = self._rectifier.rectify(rgb, K, np.asarray(info.d), info.distortion_model)
        except ConfigError as exc:
            self._count("distortion_refused")
            self._ratelog(logging.WARNING, "distortion", "camera_info distortion cannot be "
                          "undone (%s): the camera's K is not used for these frames (predicted "
                          "K instead; pixels are not labelled as a pinhole camera)", exc)
            return rgb, None
        self._count("rectified_frames")
        self._ratelog(logging.INFO, "rectify", "input has %s distortion: frames are rectified "
                      "(OpenCV) before inference; outputs describe the rectified image (D = 0)",
                      info.distortion_model)
        return out, info

    def _reset_stream(self) -> None:
        self.reconstructor.reset()
        if self._path is not None:
            self._path.clear()
        self._count("stream_resets")

    def _known_K(self, info: Any | None, input_hw: tuple[int, int]) -> np.ndarray | None:
        """The camera_info K scaled to the processed size, or None (use the predicted K)."""
        if info is None:
            return None
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
            self._ratelog(logging.WARNING, "bad_camera_info", "camera_info has no valid K "
                          "(%s): using the predicted intrinsics", K.ravel().tolist())
            return None
        info_hw = (int(info.height), int(info.width))
        if info_hw[0] <= 0 or info_hw[1] <= 0:
            info_hw = input_hw
        out_hw = self.reconstructor.config.process_size or input_hw
        return scale_intrinsics(K, info_hw, out_hw)

    # ------------------------------------------------------------------ publishing
    def _ser(self, msg: Any, msgtype: str) -> memoryview | None:
        return self.typestore.serialize_cdr(msg, msgtype) if self._wants_cdr else None

    def _publish(self, result: Any) -> None:
        """Publish every output of ``result``; one output failing (logged, counted under
        ``publish_errors``) does not keep the others from being published."""
        p, ts = self.params, self.typestore
        frame_id = self._frame_id

        def depth() -> None:
            msg = M.depth_image_msg(result, frame_id, ts)
            self._pubs["depth"].publish(msg, self._ser(msg, M.IMAGE))

        def camera_info() -> None:
            msg = M.camera_info_from_result(result, frame_id, ts)
            self._pubs["camera_info"].publish(msg, self._ser(msg, M.CAMERA_INFO))

        def confidence() -> None:
            msg = M.confidence_image_msg(result, frame_id, ts)
            self._pubs["confidence"].publish(msg, self._ser(msg, M.IMAGE))

        def tf() -> None:
            msg = M.tf_from_result(result, p.world_frame, frame_id, ts)
            self.transport.publish_tf(msg, self._ser(msg, M.TF_MESSAGE))

        def points() -> None:
            pub = self._pubs["points"]
            if pub.subscription_count > 0 and self.reconstructor.config.build_points:
                msg = M.point_cloud_msg(result, frame_id, ts)
                pub.publish(msg, self._ser(msg, M.POINT_CLOUD2))

        def trajectory() -> None:
            traj = self._pubs["trajectory"]
            if traj.subscription_count > 0:
                if self._wants_cdr:  # bytes only: no message objects for a long path
                    traj.publish(None, self._path.cdr(result.stamp_ns))
                else:
                    traj.publish(self._path.message(result.stamp_ns))

        T_world_cam = body_world_pose(result.T_world_cam)

        def pose() -> None:
            msg = M.pose_stamped_msg(T_world_cam, result.stamp_ns, p.world_frame, ts)
            self._pubs["pose"].publish(msg, self._ser(msg, M.POSE_STAMPED))

        self._path.append(result.stamp_ns, T_world_cam)
        outputs = [depth, camera_info, confidence, points, trajectory, pose]
        if self._tf_enabled:
            outputs.insert(3, tf)
        for output in outputs:
            try:
                output()
            except Exception as exc:  # one output's failure must not skip the others
                self._count("publish_errors")
                self._ratelog(logging.ERROR, f"publish_{output.__name__}", "publishing %s "
                              "of frame %d failed: %r", output.__name__, result.stamp_ns, exc)
        now = time.monotonic_ns()
        with self._lock:
            self._counts["published"] += 1
            recv = self._recv_ns.pop(result.stamp_ns, None)
        age_ms = (self.transport.now_ns() - result.stamp_ns) / 1e6
        self._period.published(now, None if recv is None else (now - recv) / 1e6, age_ms)

    # ------------------------------------------------------------------ accounting
    def _drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._drops[reason] += n

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> dict[str, Any]:
        """Totals since start: ``received``, ``published``, ``missed`` (all drops),
        ``drops`` by reason, events (``stream_resets``, ``resolution_changes``,
        ``time_jumps``, ``camera_info_timeouts``, ``frames_without_camera_info``,
        ``publish_errors``), whether TF is published, and the mean inference time in
        milliseconds."""
        with self._lock:
            counts = dict(self._counts)
            drops = dict(self._drops)
        out: dict[str, Any] = {
            "received": counts.pop("received", 0),
            "published": counts.pop("published", 0),
            "missed": sum(drops.values()),
            "drops": drops,
        }
        for key in ("stream_resets", "resolution_changes", "time_jumps",
                    "camera_info_timeouts", "frames_without_camera_info", "publish_errors",
                    "rectified_frames", "distortion_refused"):
            out[key] = counts.get(key, 0)
        out["mean_inference_ms"] = float(np.mean(self._infer_ms)) if self._infer_ms else None
        out["live_mode"] = self.live
        out["tf"] = self._tf_enabled
        return out

    def diagnostics_report(self) -> DiagnosticReport:
        """The periodic status (ros2_benchmark metric names), since the previous report."""
        totals = self.stats()
        period = self._period.take()
        drops = totals["drops"]
        values: dict[str, Any] = {
            "Mean Input Frame Rate (fps)": period["input_fps"],
            "Mean Frame Rate (fps)": period["output_fps"],
            "# of Frames Received": totals["received"],
            "# of Frames Published": totals["published"],
            "# of Missed Frames": totals["missed"],
        }
        for reason in sorted(drops):
            values[f"# of Missed Frames ({reason})"] = drops[reason]
        values.update({
            "Mean End-to-End Latency (ms)": period["mean_latency_ms"],
            "Max. End-to-End Latency (ms)": period["max_latency_ms"],
            "Mean Stamp Age at Publish (ms)": period["mean_age_ms"],
            "Mean Frame-to-Frame Jitter (ms)": period["mean_jitter_ms"],
            "Max. Frame-to-Frame Jitter (ms)": period["max_jitter_ms"],
            "Mean Inference Time (ms)": totals["mean_inference_ms"] or 0.0,
            "# of Stream Resets": totals["stream_resets"],
            "# of Resolution Changes": totals["resolution_changes"],
            "# of Publish Errors": totals["publish_errors"],
            "TF": ("published" if totals["tf"] else
                   "off (publish_tf false)" if not self.params.publish_tf else
                   "disabled: TF broadcaster unavailable (see start-up log)"),
            "Mode": "live" if self.live else "replay",
            "Model": getattr(self.backend, "model_source", "?"),
            "Backend": f"{getattr(self.backend, 'name', '?')} on "
                       f"{getattr(self.backend, 'device', '?')}",
        })
        if self.params.use_camera_info:
            values["Camera Info"] = ("missing: using predicted K" if self._fallback
                                     else "paired with images")
            values["# of Camera Info Timeouts"] = totals["camera_info_timeouts"]
            values["# of Frames Without Camera Info"] = totals["frames_without_camera_info"]
        new_drops = self._period.new_missed(totals["missed"])
        period_drops = Counter(drops) - self._drops_reported
        self._drops_reported = Counter(drops)
        level, message = M.DIAG_OK, (
            f"{period['output_fps']:.1f} fps out of {period['input_fps']:.1f} fps in")
        if self._fallback:
            level, message = M.DIAG_WARN, "no camera_info: using predicted intrinsics"
        if new_drops:
            level = M.DIAG_WARN
            message = f"missed {new_drops} frame(s) since the last report; " + message
        stale = self._input_problem()
        if stale:
            level, message = M.DIAG_WARN, stale
        if period["input_fps"] > 0 and period["output_fps"] == 0:
            if period_drops:
                reasons = ", ".join(f"{r} x{n}" for r, n in period_drops.most_common())
                level, message = M.DIAG_ERROR, ("frames arrive but nothing is published: "
                                                f"every frame dropped ({reasons})")
            else:  # nothing dropped: the first inference (or a slow one) is still running
                level, message = M.DIAG_WARN, "frames arrive but none published yet"
        return DiagnosticReport(level, message, values)

    def _input_problem(self) -> str | None:
        """Why no input arrives, naming the topic (no publisher / silent), or None."""
        p = self.params
        topic = self.transport.resolve(p.image_input_topic)
        publishers = self.transport.input_publisher_count(p.image_input_topic)
        if publishers == 0:
            return f"no publisher on the input topic {topic}"
        last = self._last_input_mono if self._last_input_mono is not None else self._start_mono
        idle = time.monotonic() - last
        if idle > p.input_timeout_s:
            return f"no input on {topic} for {idle:.0f} s"
        return None


class _PeriodStats:
    """Rates, latencies and jitter since the previous :meth:`take` (thread-safe)."""

    #: Samples kept per period at most (bounded memory when nobody reads diagnostics).
    MAX_SAMPLES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t0 = time.monotonic_ns()
        self._received = 0
        self._pub_times: deque[int] = deque(maxlen=self.MAX_SAMPLES)
        self._latencies: deque[float] = deque(maxlen=self.MAX_SAMPLES)
        self._ages: deque[float] = deque(maxlen=self.MAX_SAMPLES)
        self._last_missed = 0

    def received(self, now_ns: int) -> None:
        with self._lock:
            self._received += 1

    def published(self, now_ns: int, latency_ms: float | None, age_ms: float) -> None:
        with self._lock:
            self._pub_times.append(now_ns)
            if latency_ms is not None:
                self._latencies.append(latency_ms)
            self._ages.append(age_ms)

    def take(self) -> dict[str, Any]:
        now = time.monotonic_ns()
        with self._lock:
            dt = max((now - self._t0) / 1e9, 1e-9)
            received, pubs = self._received, np.asarray(self._pub_times, np.float64) / 1e6
            lat, ages = list(self._latencies), list(self._ages)
            self._t0, self._received = now, 0
            for samples in (self._pub_times, self._latencies, self._ages):
                samples.clear()
        jitter = np.abs(np.diff(np.diff(pubs))) if pubs.size > 2 else np.zeros(0)
        return {
            "input_fps": received / dt,
            "output_fps": pubs.size / dt,
            "mean_latency_ms": float(np.mean(lat)) if lat else 0.0,
            "max_latency_ms": float(np.max(lat)) if lat else 0.0,
            "mean_age_ms": float(np.mean(ages)) if ages else 0.0,
            "mean_jitter_ms": float(jitter.mean()) if jitter.size else 0.0,
            "max_jitter_ms": float(jitter.max()) if jitter.size else 0.0,
        }

    def new_missed(self, total: int) -> int:
        """Missed frames since the previous call, given the running total."""
        with self._lock:
            new, self._last_missed = total - self._last_missed, total
        return new
