"""Cyclone DDS implementation of :class:`~unihoi_ros.ros.transport.Transport` (no ROS 2).

Topics appear on the wire exactly as a ROS 2 node's (``rt/<name>``, ROS 2 type names,
keyless, XCDR1; see :mod:`unihoi_ros.ros.dds`), so ROS 2 tools on the same domain see them.
Outputs handed over with their CDR bytes are written as they are (no second conversion).

With a :class:`~unihoi_ros.io.bag_writer.BagRecorder`, every received input and every
published output (``/tf`` and ``/diagnostics`` included) is also written to the bag, at the
moment it is received or published, with the QoS of its endpoint; a recorder counts as a
subscriber (so ``points`` and ``trajectory`` are built and recorded, as ``ros2 bag record``
would cause).

Network: Cyclone DDS reads ``CYCLONEDDS_URI`` when the participant is created; this module
never changes it (tests pass the loopback configuration through the environment).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from unihoi_ros.ros import dds, wire
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.names import (
    DEFAULT_NAMESPACE,
    domain_id_from_env,
    normalize_namespace,
    resolve_topic_name,
)
from unihoi_ros.ros.params import NODE_NAME
from unihoi_ros.ros.qos import QosProfile
from unihoi_ros.ros.transport import (
    DIAGNOSTICS_QOS,
    TF_QOS,
    ApproximatePairer,
    Callback,
    DiagnosticReport,
    PairCallback,
    Transport,
)

log = logging.getLogger(__name__)


class DdsOutput:
    """A DDS publisher that also records what it publishes (see module docstring)."""

    def __init__(self, publisher: dds.Publisher, recorder: Any | None) -> None:
        self._pub = publisher
        self._recorder = recorder
        self.topic = publisher.topic_name
        self.msgtype = publisher.ros_type

    def publish(self, msg: Any, cdr: bytes | memoryview | None = None) -> None:
        if cdr is None:
            cdr = wire.serialize(msg, self.msgtype, self._pub.typestore)
        self._pub.publish_raw(cdr)
        if self._recorder is not None:
            self._recorder.write(self.topic, cdr, time.time_ns())

    @property
    def subscription_count(self) -> int:
        recording = 1 if self._recorder is not None else 0
        return self._pub.subscription_count + recording

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> bool:
        return self._pub.wait_for_subscribers(count, timeout)

    def close(self) -> None:
        self._pub.close()


class DdsTransport(Transport):
    """The node's middleware over Cyclone DDS.

    Args:
        domain_id: DDS domain (default: ``ROS_DOMAIN_ID``, else 0).
        namespace: namespace of relative topic names (default ``/unihoi``).
        node_name: name used in diagnostics (``"<node_name>: <task>"``).
        recorder: optional bag recorder (inputs and outputs are recorded).
        typestore: rosbags typestore (default Humble's).
        fastdds_compat: add the Fast DDS 3 compatibility setting to Cyclone's configuration
            (:func:`unihoi_ros.ros.dds.create_participant`; default on).
    """

    name = "dds"
    wants_cdr = True

    def __init__(
        self,
        domain_id: int | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        node_name: str = NODE_NAME,
        recorder: Any | None = None,
        typestore: Any | None = None,
        fastdds_compat: bool | None = None,
    ) -> None:
        self.namespace = normalize_namespace(namespace)
        self.node_name = node_name
        self.recorder = recorder
        self.typestore = typestore if typestore is not None else M.get_typestore()
        self.domain_id = domain_id_from_env() if domain_id is None else int(domain_id)
        self.participant = dds.create_participant(self.domain_id, fastdds_compat=fastdds_compat)
        self._outputs: list[DdsOutput] = []
        self._subscribers: list[dds.Subscriber] = []
        self._tf: DdsOutput | None = None
        self._tf_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ endpoints
    def resolve(self, topic: str) -> str:
        return resolve_topic_name(topic, self.namespace)

    def create_publisher(self, topic: str, msgtype: str, qos: QosProfile) -> DdsOutput:
        pub = dds.Publisher(self.participant, topic, msgtype, qos=qos, namespace=self.namespace,
                            typestore=self.typestore)
        if self.recorder is not None:
            self.recorder.add_topic(pub.topic_name, msgtype, qos)
        out = DdsOutput(pub, self.recorder)
        self._outputs.append(out)
        return out

    def subscribe(self, topic: str, msgtype: str, qos: QosProfile, callback: Callback) -> None:
        self._subscribe(topic, msgtype, qos, [callback])

    def _subscribe(self, topic: str, msgtype: str, qos: QosProfile,
                   callbacks: list[Callback]) -> None:
        resolved = self.resolve(topic)
        recorder = self.recorder
        if recorder is not None:
            # The remote publisher's QoS is unknown here: the subscription's is recorded.
            recorder.add_topic(resolved, msgtype, qos)

        def deliver(msg: Any) -> None:
            if recorder is not None and not recorder.closed:
                try:
                    recorder.write(resolved, msg, time.time_ns())
                except RuntimeError:  # closed meanwhile (shutdown)
                    pass
            for cb in callbacks:
                cb(msg)

        self._subscribers.append(dds.Subscriber(
            self.participant, topic, msgtype, callback=deliver, qos=qos,
            namespace=self.namespace, typestore=self.typestore,
        ))

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
        pairer = ApproximatePairer(callback, slop_s, queue_size)
        first = [pairer.add_first] + ([unpaired_callback] if unpaired_callback else [])
        self._subscribe(topic, msgtype, qos, first)
        self._subscribe(info_topic, info_type, qos, [pairer.add_second])

    def input_publisher_count(self, topic: str) -> int | None:
        resolved = self.resolve(topic)
        for sub in self._subscribers:
            if sub.topic_name == resolved:
                return int(sub.publisher_count)
        return None

    @property
    def input_subscription_matched(self) -> int:
        """Writers matched by the first subscription (0 before any remote publisher)."""
        return self._subscribers[0].publisher_count if self._subscribers else 0

    def start_tf(self) -> None:
        with self._tf_lock:
            if self._tf is None:
                self._tf = self.create_publisher("/tf", M.TF_MESSAGE, TF_QOS)

    def publish_tf(self, tf_message: Any, cdr: bytes | memoryview | None = None) -> None:
        self.start_tf()
        self._tf.publish(tf_message, cdr)

    def tf_subscription_count(self) -> int | None:
        return None if self._tf is None else self._tf.subscription_count

    # ------------------------------------------------------------------ diagnostics
    def start_diagnostics(
        self, task: str, hardware_id: str, period_s: float, report: Callable[[], DiagnosticReport]
    ) -> None:
        pub = self.create_publisher("/diagnostics", M.DIAGNOSTIC_ARRAY, DIAGNOSTICS_QOS)
        name = f"{self.node_name}: {task}"

        def loop() -> None:
            while not self._stop.wait(period_s):
                try:
                    pub.publish(M.report_array_msg(name, report(), hardware_id, time.time_ns(),
                                                   self.typestore))
                except Exception:  # diagnostics must never take the node down
                    log.exception("diagnostics update failed")

        thread = threading.Thread(target=loop, name="dds-diagnostics", daemon=True)
        thread.start()
        self._threads.append(thread)

    def now_ns(self) -> int:
        return time.time_ns()

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """Stop timers and receive threads, delete endpoints and the participant."""
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        for sub in self._subscribers:
            sub.close()
        for out in self._outputs:
            out.close()
        self._subscribers.clear()
        self._outputs.clear()
        self._tf = None
        self.participant = None
