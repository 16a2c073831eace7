"""Cyclone DDS transport primitives speaking ROS 2's wire conventions (no ROS 2 needed).

ROS 2 topic ``/unihoi/depth/image`` of type ``sensor_msgs/msg/Image`` is the DDS topic
``rt/unihoi/depth/image`` of type ``sensor_msgs::msg::dds_::Image_`` in plain little-endian
CDR (XCDR1). :class:`Publisher` and :class:`Subscriber` take and return rosbags messages
(:mod:`unihoi_ros.ros.messages`) or their CDR bytes; bytes are made and read by the wire
codec (:mod:`unihoi_ros.ros.wire`) and written and taken through Cyclone's public
``DataWriter.write`` / ``DataReader.take`` with topic types that carry CDR bytes
(:func:`unihoi_ros.ros.idl.wire_type`). ROS 2 nodes on the same domain (rmw_cyclonedds or
rmw_fastrtps) see them as ordinary ROS topics. The naming rules live in
:mod:`unihoi_ros.ros.names` (no cyclonedds needed).

Endpoints carry ROS 2's ``typehash=RIHS01_<hex>;`` USER_DATA (what Iron and later send;
Humble ignores it), computed by rosbags from the typestore's definitions.

Network: Cyclone DDS reads ``CYCLONEDDS_URI`` when the process creates its first participant.
Tests, demos and benchmarks call :func:`unihoi_ros.ros.loopback.use_loopback` first.

Fast DDS 3 (ROS 2 Kilted's default middleware) propagates XTypes type information that
Cyclone DDS rejects ("invalid type object"): endpoints report a match but no sample flows
in either direction. :func:`create_participant` therefore adds
:data:`FASTDDS_COMPAT_CONFIG` (type matching by name for eProsima endpoints, vendor id
1.15) to whatever ``CYCLONEDDS_URI`` holds — merged, never replacing the user's settings.
Fast DDS 2.x and Cyclone-based ROS 2 peers are unaffected. Opt out with
``fastdds_compat=False`` (``unihoi run --no-fastdds-compat``, or
``UNIHOI_DDS_FASTDDS_COMPAT=0``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unihoi_ros.optional import require
from unihoi_ros.ros import idl, wire
from unihoi_ros.ros.messages import get_typestore
from unihoi_ros.ros.names import (
    DEFAULT_NAMESPACE,
    MAX_DOMAIN_ID,
    ROS_TOPIC_PREFIX,
    domain_id_from_env,
    resolve_topic_name,
)
from unihoi_ros.ros.qos import DEFAULT, SENSOR_DATA, QosProfile, qos_profile, to_cyclone_qos

if TYPE_CHECKING:
    from cyclonedds.domain import DomainParticipant

_core = require("cyclonedds.core")
_domain = require("cyclonedds.domain")
_pub = require("cyclonedds.pub")
_sub = require("cyclonedds.sub")
_topic = require("cyclonedds.topic")
duration = require("cyclonedds.util").duration

log = logging.getLogger(__name__)

#: Samples taken per ``DataReader.take`` call.
_TAKE_BATCH = 32
_ANY_SAMPLE = _core.SampleState.Any | _core.ViewState.Any | _core.InstanceState.Any


# --------------------------------------------------------------------------- participant
#: Cyclone DDS configuration fragment that lets Fast DDS 3 endpoints match (module docstring).
FASTDDS_COMPAT_CONFIG = (
    "<CycloneDDS><Domain><Compatibility><IgnoreTypeInformation>1.15</IgnoreTypeInformation>"
    "</Compatibility></Domain></CycloneDDS>"
)
#: Environment switch of the compatibility setting ("0" / "false" turns it off).
FASTDDS_COMPAT_ENV = "UNIHOI_DDS_FASTDDS_COMPAT"

_domains: dict[int, Any] = {}  # domains this process created explicitly, kept alive
_domains_lock = threading.Lock()


def fastdds_compat_default() -> bool:
    """The compatibility setting's default: on unless ``UNIHOI_DDS_FASTDDS_COMPAT`` is off."""
    return os.environ.get(FASTDDS_COMPAT_ENV, "1").strip().lower() not in ("0", "false", "no")


def merged_config(user_uri: str | None, fastdds_compat: bool) -> str:
    """The Cyclone configuration string: the user's ``CYCLONEDDS_URI`` (files or XML,
    comma-separated, as Cyclone reads it), then the compatibility fragment (later sources
    add to and override earlier ones)."""
    parts = [p for p in [(user_uri or "").strip()] if p]
    if fastdds_compat:
        parts.append(FASTDDS_COMPAT_CONFIG)
    return ",".join(parts)


def _ensure_domain(domain_id: int, fastdds_compat: bool) -> None:
    """Create the process's domain ``domain_id`` with the merged configuration once.

    Cyclone creates a domain implicitly (from ``CYCLONEDDS_URI`` alone) with the first
    participant; creating it explicitly first is the only way to add settings. A domain
    that already exists in this process keeps the configuration it was created with.
    """
    if not fastdds_compat:
        return
    with _domains_lock:
        if domain_id in _domains:
            return
        config = merged_config(os.environ.get("CYCLONEDDS_URI"), True)
        try:
            _domains[domain_id] = _domain.Domain(domain_id, config)
        except Exception as exc:  # exists already, or an older Cyclone without the setting
            _domains[domain_id] = None
            log.warning("Cyclone DDS domain %d without the Fast DDS 3 compatibility setting "
                        "(%s): Kilted-era rmw_fastrtps peers may match but exchange no data",
                        domain_id, exc)


def create_participant(
    domain_id: int | None = None, *, fastdds_compat: bool | None = None
) -> DomainParticipant:
    """A Cyclone DDS participant on ``domain_id`` (default: ``ROS_DOMAIN_ID`` or 0).

    The participant's network configuration comes from ``CYCLONEDDS_URI`` (Cyclone's
    defaults when unset), plus :data:`FASTDDS_COMPAT_CONFIG` unless ``fastdds_compat`` is
    False (default: :func:`fastdds_compat_default`). Deleting the returned object (dropping
    its last reference) deletes every entity created under it.
    """
    if domain_id is None:
        domain_id = domain_id_from_env()
    if not 0 <= int(domain_id) <= MAX_DOMAIN_ID:
        raise ValueError(f"domain id must be in [0, {MAX_DOMAIN_ID}], got {domain_id}")
    if fastdds_compat is None:
        fastdds_compat = fastdds_compat_default()
    _ensure_domain(int(domain_id), fastdds_compat)
    return _domain.DomainParticipant(int(domain_id))


def type_hash_user_data(ros_type: str, typestore: Any | None = None) -> bytes:
    """ROS 2 (Iron+) endpoint USER_DATA: ``b"typehash=RIHS01_<64 hex>;"``."""
    ts = get_typestore() if typestore is None else typestore
    return f"typehash={ts.hash_rihs01(ros_type)};".encode()


class _Endpoint:
    """Shared set-up of Publisher and Subscriber: names, types, topic, QoS."""

    def __init__(
        self,
        participant: DomainParticipant,
        topic: str,
        ros_type: str,
        qos: QosProfile | str,
        namespace: str | None,
        typestore: Any | None,
        type_hash: bool,
    ) -> None:
        self.participant = participant
        self.typestore = get_typestore() if typestore is None else typestore
        self.ros_type = ros_type
        self.topic_name = resolve_topic_name(topic, namespace)
        self.dds_topic_name = ROS_TOPIC_PREFIX + self.topic_name
        self.wire_type = idl.wire_type(ros_type)
        self.qos = qos_profile(qos)
        user_data = type_hash_user_data(ros_type, self.typestore) if type_hash else None
        self._cyclone_qos = to_cyclone_qos(self.qos, user_data=user_data)
        self._topic = _topic.Topic(participant, self.dds_topic_name, self.wire_type)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.topic_name!r}, {self.ros_type!r}, "
            f"qos={self.qos.name}/{self.qos.depth})"
        )


class Publisher(_Endpoint):
    """Publish rosbags messages on a ROS 2 topic over Cyclone DDS.

    Args:
        participant: from :func:`create_participant`.
        topic: ROS topic name, relative (resolved under ``namespace``) or absolute.
        ros_type: interface name, e.g. ``"sensor_msgs/msg/Image"``.
        qos: profile or profile name (default ``DEFAULT``: reliable, keep last 10).
        namespace: namespace for relative names (default ``/unihoi``).
        typestore: rosbags typestore (default Humble).
        type_hash: add ROS 2's ``typehash=`` USER_DATA.
    """

    def __init__(
        self,
        participant: DomainParticipant,
        topic: str,
        ros_type: str,
        qos: QosProfile | str = DEFAULT,
        *,
        namespace: str | None = DEFAULT_NAMESPACE,
        typestore: Any | None = None,
        type_hash: bool = True,
    ) -> None:
        super().__init__(participant, topic, ros_type, qos, namespace, typestore, type_hash)
        self._writer: Any = _pub.DataWriter(participant, self._topic, self._cyclone_qos)
        self.published = 0

    def _live_writer(self) -> Any:
        if self._writer is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._writer

    def publish(self, msg: Any, timestamp_ns: int | None = None) -> None:
        """Serialise (:func:`unihoi_ros.ros.wire.serialize`) and write one rosbags message
        (its type must be ``ros_type``).

        Args:
            timestamp_ns: DDS source timestamp (default: now); message stamps are untouched.
        """
        self._write(wire.pad4(wire.serialize(msg, self.ros_type, self.typestore)), timestamp_ns)

    def publish_raw(self, data: bytes | bytearray | memoryview,
                    timestamp_ns: int | None = None) -> None:
        """Write one already serialised message (e.g. from a bag, or the node's outputs).

        ``data`` is plain CDR little endian with its 4-byte header (``00 01 00 00``), as
        rosbags' ``serialize_cdr`` and rosbag2 store it.

        Raises:
            CdrError: not little-endian plain CDR (a ValueError).
        """
        wire.check_le(data)
        self._write(wire.pad4(data), timestamp_ns)

    def _write(self, data: bytes, timestamp_ns: int | None) -> None:
        self._live_writer().write(self.wire_type.from_cdr(data), timestamp=timestamp_ns)
        self.published += 1

    @property
    def subscription_count(self) -> int:
        """Number of matched readers right now."""
        return int(self._live_writer().get_publication_matched_status().current_count)

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` readers are matched; False on timeout (seconds)."""
        deadline = time.monotonic() + timeout
        while self.subscription_count < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_for_acks(self, timeout: float = 5.0) -> bool:
        """Block until every matched reliable reader has acknowledged everything written
        (best-effort readers never acknowledge: they are not waited for); False on timeout
        (seconds)."""
        return bool(self._live_writer().wait_for_acks(int(timeout * 1e9)))

    def close(self) -> None:
        """Delete the writer (idempotent)."""
        self._writer = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber(_Endpoint):
    """Receive a ROS 2 topic over Cyclone DDS on a background thread.

    Each sample is converted to a rosbags message (or left as raw CDR bytes with
    ``raw=True``: the payload exactly as received, 4-byte header included, possibly followed
    by up to 3 padding bytes) and passed to ``callback`` from the receive thread. Without a
    callback, samples go to a bounded queue read with :meth:`get` (oldest dropped when full).

    Args:
        participant, topic, ros_type, namespace, typestore, type_hash: as :class:`Publisher`.
        callback: called with each message; exceptions are logged and counted
            (:attr:`errors`), never stop the thread.
        qos: default ``SENSOR_DATA`` (best effort, keep last 5; matches any publisher).
        raw: deliver ``bytes`` instead of rosbags messages.
        queue_size: bound of the queue used without a callback (default: the QoS depth).
    """

    def __init__(
        self,
        participant: DomainParticipant,
        topic: str,
        ros_type: str,
        callback: Callable[[Any], None] | None = None,
        qos: QosProfile | str = SENSOR_DATA,
        *,
        namespace: str | None = DEFAULT_NAMESPACE,
        typestore: Any | None = None,
        type_hash: bool = True,
        raw: bool = False,
        queue_size: int | None = None,
    ) -> None:
        super().__init__(participant, topic, ros_type, qos, namespace, typestore, type_hash)
        self.raw = raw
        self._callback = callback
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size or self.qos.depth))
        self.received = 0
        self.errors = 0
        self._stop = threading.Event()
        self._reader: Any = _sub.DataReader(participant, self._topic, self._cyclone_qos)
        self._condition = _core.ReadCondition(self._reader, _ANY_SAMPLE)
        self._waitset = _core.WaitSet(participant)
        self._waitset.attach(self._condition)
        self._thread = threading.Thread(
            target=self._run, name=f"dds-sub:{self.topic_name}", daemon=True
        )
        self._thread.start()

    # ----------------------------------------------------------------- receiving
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._waitset.wait(duration(milliseconds=200))
                if self._stop.is_set():
                    break
                self._drain()
            except Exception:  # pragma: no cover - DDS failure while running
                if self._stop.is_set():
                    break
                self.errors += 1
                log.exception("%r: receive loop error", self)
                time.sleep(0.05)

    def _drain(self) -> None:
        reader = self._reader
        if reader is None:
            return
        while True:
            samples = reader.take(_TAKE_BATCH)
            if not samples:
                return
            for sample in samples:
                if not sample.sample_info.valid_data:
                    continue  # a writer left or an instance changed state: no data
                data = sample.cdr
                try:
                    msg = data if self.raw else wire.deserialize(data, self.ros_type,
                                                                 self.typestore)
                except wire.CdrError:
                    self.errors += 1
                    log.exception("%r: could not deserialise a %d-byte sample", self, len(data))
                    continue
                self.received += 1
                self._deliver(msg)

    def _deliver(self, msg: Any) -> None:
        if self._callback is not None:
            try:
                self._callback(msg)
            except Exception:
                self.errors += 1
                log.exception("%r: callback raised", self)
            return
        while True:
            try:
                self._queue.put_nowait(msg)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> Any | None:
        """Next queued message (only without a callback); ``None`` after ``timeout`` s."""
        if self._callback is not None:
            raise RuntimeError("get() is only available when no callback was given")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def publisher_count(self) -> int:
        """Number of matched writers right now."""
        if self._reader is None:
            return 0
        return int(self._reader.get_subscription_matched_status().current_count)

    def wait_for_publishers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` writers are matched; False on timeout (seconds)."""
        deadline = time.monotonic() + timeout
        while self.publisher_count < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # ----------------------------------------------------------------- shutdown
    def close(self, timeout: float = 2.0) -> None:
        """Stop the receive thread and delete the reader (idempotent)."""
        if self._reader is None:
            return
        self._stop.set()
        try:
            self._waitset.set_trigger(True)
        except Exception:  # pragma: no cover - waitset already gone
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():  # pragma: no cover
                log.warning("%r: receive thread did not stop within %.1f s", self, timeout)
        try:
            self._waitset.detach(self._condition)
        except Exception:  # pragma: no cover
            pass
        # Dropping the last references deletes the DDS entities (reader, condition, waitset).
        self._reader = None
        self._condition = None
        self._waitset = None

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
