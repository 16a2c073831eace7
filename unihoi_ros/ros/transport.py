"""What :class:`~unihoi_ros.ros.node.UnihoiNode` needs from a middleware, and helpers.

A :class:`Transport` creates publishers and subscriptions on ROS 2 topic names (relative
names resolve under its namespace), broadcasts TF, publishes diagnostics periodically and
tells the time. Messages are always rosbags typestore messages
(:mod:`unihoi_ros.ros.messages`); a publisher may also be handed the message's CDR bytes
(serialised once by the node, shared with a bag recorder) so the transport need not
convert it again.

Implementations: :class:`~unihoi_ros.ros.dds_transport.DdsTransport` (Cyclone DDS, no
ROS 2 needed), the rclpy one in :mod:`unihoi_ros.ros.rclpy_node`, and
:class:`MemoryTransport` here (in-process, for tests and offline use).

Callbacks run on the transport's threads and must return quickly; the node only queues.
"""

from __future__ import annotations

import abc
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from unihoi_ros.optional import MissingDependencyError
from unihoi_ros.ros.messages import stamp_to_ns
from unihoi_ros.ros.names import DEFAULT_NAMESPACE, normalize_namespace, resolve_topic_name
from unihoi_ros.ros.qos import QosProfile

Callback = Callable[[Any], None]
PairCallback = Callable[[Any, Any], None]

#: QoS of ``/tf`` (tf2_ros' dynamic broadcaster: reliable, keep last 100, volatile).
TF_QOS = QosProfile("TF", "reliable", "keep_last", 100, "volatile")
#: QoS of ``/diagnostics`` (diagnostic_updater: reliable, keep last 1, volatile).
DIAGNOSTICS_QOS = QosProfile("DIAGNOSTICS", "reliable", "keep_last", 1, "volatile")


@dataclass
class DiagnosticReport:
    """One diagnostic status (what ``diagnostic_updater`` task functions fill in).

    Attributes:
        level: 0 OK, 1 WARN, 2 ERROR, 3 STALE.
        message: one-line summary.
        values: key -> value, shown in order (values are stringified by the transport).
    """

    level: int
    message: str
    values: dict[str, Any] = field(default_factory=dict)


class OutputPublisher(Protocol):
    """A publisher made by :meth:`Transport.create_publisher`."""

    #: Fully qualified ROS topic name.
    topic: str

    def publish(self, msg: Any, cdr: bytes | memoryview | None = None) -> None:
        """Publish ``msg``; ``cdr`` (optional) is its serialised form (rosbags CDR).

        Transports with :attr:`Transport.wants_cdr` may be given ``msg=None`` with ``cdr``.
        """
        ...

    @property
    def subscription_count(self) -> int:
        """Matched subscriptions right now (0: nobody listens)."""
        ...


class Transport(abc.ABC):
    """Middleware interface of the node (see module docstring)."""

    #: Short name for logs ("dds", "rclpy", "memory").
    name: str = "transport"
    #: Namespace relative names resolve under (``/unihoi``).
    namespace: str = "/"
    #: The middleware moves serialised messages: publishers are best handed the CDR bytes
    #: (:func:`unihoi_ros.ros.wire.serialize`, made once by the node and shared with a bag
    #: recorder), and accept ``msg=None`` with them. False: message objects are kept
    #: (in-process), and bytes would be made for nothing.
    wants_cdr: bool = False

    @abc.abstractmethod
    def resolve(self, topic: str) -> str:
        """Fully qualified name of ``topic`` (relative names go under the namespace)."""

    @abc.abstractmethod
    def create_publisher(self, topic: str, msgtype: str, qos: QosProfile) -> OutputPublisher:
        """A publisher of ``msgtype`` (e.g. ``"sensor_msgs/msg/Image"``) on ``topic``."""

    @abc.abstractmethod
    def subscribe(self, topic: str, msgtype: str, qos: QosProfile, callback: Callback) -> None:
        """Call ``callback(msg)`` for every message on ``topic``."""

    @abc.abstractmethod
    def subscribe_synchronized(
        self,
        topic: str,
        msgtype: str,
        info_topic: str,
        info_type: str,
        qos: QosProfile,
        callback: PairCallback,
        *,
        slop_s: float,
        queue_size: int = 10,
        unpaired_callback: Callback | None = None,
    ) -> None:
        """Approximate time synchronisation of two topics (message_filters semantics).

        ``callback(msg, info)`` gets pairs whose header stamps differ by less than
        ``slop_s``; ``unpaired_callback(msg)`` (optional) additionally gets every message of
        ``topic`` as it arrives, paired or not (so the node can go on without ``info``).
        """

    def input_publisher_count(self, topic: str) -> int | None:
        """Publishers matched on the subscribed input ``topic`` (as given to
        :meth:`subscribe`), or None where the middleware cannot tell."""
        return None

    def tf_subscription_count(self) -> int | None:
        """Subscriptions matched by the ``/tf`` broadcaster right now, or None where there
        is none yet (or the middleware cannot tell)."""
        return None

    def start_tf(self) -> None:  # noqa: B027 - optional hook
        """Create the ``/tf`` broadcaster now (else on the first :meth:`publish_tf`), so
        listeners can match before the first frame."""

    @abc.abstractmethod
    def publish_tf(self, tf_message: Any, cdr: bytes | memoryview | None = None) -> None:
        """Broadcast a ``tf2_msgs/TFMessage`` on ``/tf``."""

    def start_transform_lookup(self) -> None:
        """Start listening to ``/tf`` and ``/tf_static`` (a tf2 Buffer) for
        :meth:`lookup_transform`.

        Raises:
            MissingDependencyError: this transport keeps no transform buffer (or tf2_ros
                is missing).
        """
        raise MissingDependencyError(
            f"the {self.name} transport keeps no tf2 Buffer: base_frame needs unihoi_node "
            "(rclpy) with tf2_ros")

    def lookup_transform(self, target_frame: str, source_frame: str, stamp_ns: int):
        """``(4, 4)`` float64 ``T_target_source`` (the source frame's pose in the target
        frame, metres) at ``stamp_ns``, as tf2's ``Buffer.lookup_transform(target, source,
        time)`` gives it.

        Raises:
            TransformUnavailableError: not known at that stamp (the message says why).
        """
        from unihoi_ros.errors import TransformUnavailableError

        raise TransformUnavailableError(f"the {self.name} transport keeps no tf2 Buffer")

    @abc.abstractmethod
    def start_diagnostics(
        self, task: str, hardware_id: str, period_s: float, report: Callable[[], DiagnosticReport]
    ) -> None:
        """Publish ``report()`` on ``/diagnostics`` every ``period_s`` seconds, as
        diagnostic_updater does (status name ``"<node name>: <task>"``)."""

    @abc.abstractmethod
    def now_ns(self) -> int:
        """The node's clock (ROS time: simulated with ``use_sim_time``), nanoseconds."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release middleware resources (idempotent)."""


# --------------------------------------------------------------------------- pairing
class ApproximatePairer:
    """Pair two streams by header stamp, as message_filters' ApproximateTimeSynchronizer
    does for two inputs: each side keeps its ``queue_size`` newest messages; a new message
    is paired with the closest-stamped message of the other side within ``slop_s``, and
    both are removed.

    Thread-safe; ``callback`` is called outside the lock.
    """

    def __init__(self, callback: PairCallback, slop_s: float, queue_size: int = 10) -> None:
        self._callback = callback
        self._slop_ns = round(slop_s * 1e9)
        self._size = max(1, int(queue_size))
        self._queues: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
        self._lock = threading.Lock()

    def add(self, side: int, msg: Any) -> None:
        """Add ``msg`` to side 0 (the image) or 1 (the camera info)."""
        stamp = stamp_to_ns(msg.header.stamp)
        with self._lock:
            mine, other = self._queues[side], self._queues[1 - side]
            mine[stamp] = msg
            while len(mine) > self._size:
                del mine[min(mine)]
            if not other:
                return
            best = min(other, key=lambda s: abs(s - stamp))
            if abs(best - stamp) > self._slop_ns:
                return
            partner = other.pop(best)
            del mine[stamp]
        pair = (msg, partner) if side == 0 else (partner, msg)
        self._callback(*pair)

    def add_first(self, msg: Any) -> None:
        self.add(0, msg)

    def add_second(self, msg: Any) -> None:
        self.add(1, msg)


# --------------------------------------------------------------------------- in memory
class MemoryPublisher:
    """Publisher of :class:`MemoryTransport`: keeps what was published."""

    def __init__(self, transport: MemoryTransport, topic: str, msgtype: str, qos: QosProfile):
        self._transport = transport
        self.topic = topic
        self.msgtype = msgtype
        self.qos = qos
        self.messages: list[Any] = []
        #: Pretend subscribers (tests set it to exercise "only while subscribed").
        self.subscribers = 0

    def publish(self, msg: Any, cdr: bytes | memoryview | None = None) -> None:
        self.messages.append(msg)
        self._transport.deliver(self.topic, msg)

    @property
    def subscription_count(self) -> int:
        return self.subscribers + len(self._transport.callbacks.get(self.topic, ()))


class MemoryTransport(Transport):
    """In-process transport: published messages are kept per topic and delivered to
    in-process subscribers; :meth:`inject` plays the role of a remote publisher.

    Args:
        namespace: namespace for relative names (default ``/unihoi``).
        clock_ns: the clock (default ``time.time_ns``).
    """

    name = "memory"

    def __init__(self, namespace: str = DEFAULT_NAMESPACE,
                 clock_ns: Callable[[], int] = time.time_ns):
        self.namespace = normalize_namespace(namespace)
        self._clock = clock_ns
        self.publishers: dict[str, MemoryPublisher] = {}
        self.callbacks: dict[str, list[Callback]] = defaultdict(list)
        self.diagnostics: list[DiagnosticReport] = []
        self._report: Callable[[], DiagnosticReport] | None = None
        self.tf: list[Any] = []
        #: ``(target, source) -> (4, 4) T_target_source``: fixed transforms
        #: :meth:`lookup_transform` knows at every stamp (a test's /tf_static).
        self.transforms: dict[tuple[str, str], Any] = {}
        self.closed = False

    def resolve(self, topic: str) -> str:
        return resolve_topic_name(topic, self.namespace)

    def create_publisher(self, topic: str, msgtype: str, qos: QosProfile) -> MemoryPublisher:
        name = self.resolve(topic)
        pub = MemoryPublisher(self, name, msgtype, qos)
        self.publishers[name] = pub
        return pub

    def subscribe(self, topic: str, msgtype: str, qos: QosProfile, callback: Callback) -> None:
        self.callbacks[self.resolve(topic)].append(callback)

    def subscribe_synchronized(self, topic, msgtype, info_topic, info_type, qos, callback, *,
                               slop_s, queue_size=10, unpaired_callback=None) -> None:
        pairer = ApproximatePairer(callback, slop_s, queue_size)
        self.subscribe(topic, msgtype, qos, pairer.add_first)
        if unpaired_callback is not None:
            self.subscribe(topic, msgtype, qos, unpaired_callback)
        self.subscribe(info_topic, info_type, qos, pairer.add_second)

    def publish_tf(self, tf_message: Any, cdr: bytes | memoryview | None = None) -> None:
        self.tf.append(tf_message)

    def start_transform_lookup(self) -> None:
        """Nothing to start: :attr:`transforms` holds what the lookups return."""

    def lookup_transform(self, target_frame: str, source_frame: str, stamp_ns: int):
        from unihoi_ros.errors import TransformUnavailableError

        try:
            return self.transforms[(target_frame, source_frame)]
        except KeyError:
            raise TransformUnavailableError(f"no transform {target_frame} <- {source_frame} "
                                            "in the memory transport") from None

    def start_diagnostics(self, task, hardware_id, period_s, report) -> None:
        self._report = report

    def spin_diagnostics(self) -> DiagnosticReport:
        """Produce one diagnostics report now (what the timer would publish)."""
        if self._report is None:
            raise RuntimeError("start_diagnostics was not called")
        rep = self._report()
        self.diagnostics.append(rep)
        return rep

    def now_ns(self) -> int:
        return int(self._clock())

    # ---------------------------------------------------------------- test hooks
    def inject(self, topic: str, msg: Any) -> None:
        """Deliver ``msg`` on ``topic`` to this transport's subscribers (caller's thread)."""
        self.deliver(self.resolve(topic), msg)

    def deliver(self, resolved: str, msg: Any) -> None:
        for cb in list(self.callbacks.get(resolved, ())):
            cb(msg)

    def messages(self, topic: str) -> list[Any]:
        """Everything published on ``topic`` so far (empty list if never created)."""
        pub = self.publishers.get(self.resolve(topic))
        return list(pub.messages) if pub else []

    def close(self) -> None:
        self.closed = True
