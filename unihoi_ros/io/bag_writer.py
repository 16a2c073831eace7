"""Record ROS 2 messages into a rosbag2 bag (MCAP by default), thread-safely.

:class:`BagRecorder` wraps ``rosbags.rosbag2.Writer``: topics are added with their message
type and the QoS their publisher offers (written as ``offered_qos_profiles``, which
``ros2 bag play`` uses to re-create publishers), and messages are written either as rosbags
messages (serialised here) or as CDR bytes already serialised by the caller. Version 8
metadata is what ROS 2 Humble reads (newer versions only Jazzy and later).

The bag is complete once :meth:`BagRecorder.close` has run (the MCAP summary and
``metadata.yaml`` are written then): use it as a context manager, or close it from a
signal-driven shutdown path.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unihoi_ros.optional import require
from unihoi_ros.ros.qos import QosProfile, to_rosbags_qos


class BagRecorder:
    """A rosbag2 writer that many threads may write to.

    Args:
        path: the bag directory to create (it must not exist unless ``overwrite``).
        typestore: rosbags typestore of the messages (default: Humble's).
        version: rosbag2 metadata version: 8 (Humble and later) or 9 (Jazzy and later).
        storage: ``"mcap"`` (default) or ``"sqlite3"``.
        overwrite: delete an existing ``path`` first.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """

    def __init__(
        self,
        path: str | Path,
        typestore: Any | None = None,
        version: int = 8,
        *,
        storage: str = "mcap",
        overwrite: bool = False,
    ) -> None:
        rosbag2 = require("rosbags.rosbag2")
        if typestore is None:
            from unihoi_ros.ros.messages import get_typestore

            typestore = get_typestore()
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise FileExistsError(
                    f"bag path {self.path} already exists (choose another path or pass "
                    "overwrite=True / --overwrite)"
                )
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        plugins = {"mcap": rosbag2.StoragePlugin.MCAP, "sqlite3": rosbag2.StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
        self.typestore = typestore
        self.version = int(version)
        self.storage = storage
        self._writer = rosbag2.Writer(self.path, version=self.version,
                                      storage_plugin=plugins[storage])
        self._writer.open()
        self._connections: dict[str, tuple[Any, str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        #: Messages written per topic.
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ topics
    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos_profile: QosProfile | str | Sequence[QosProfile | str] = "DEFAULT",
    ) -> None:
        """Declare ``topic`` (fully qualified, e.g. ``/unihoi/depth/image``) of ``msgtype``.

        Args:
            qos_profile: the QoS its publisher offers (profile, profile name, or several
                for several publishers); stored as ``offered_qos_profiles``.

        Raises:
            ValueError: the topic was added before with another type.
        """
        if isinstance(qos_profile, (str, QosProfile)):
            qos_profile = [qos_profile]
        with self._lock:
            self._check_open()
            known = self._connections.get(topic)
            if known is not None:
                if known[1] != msgtype:
                    raise ValueError(f"topic {topic} was added as {known[1]}, not {msgtype}")
                return
            conn = self._writer.add_connection(
                topic,
                msgtype,
                typestore=self.typestore,
                serialization_format="cdr",
                offered_qos_profiles=[to_rosbags_qos(q) for q in qos_profile],
            )
            self._connections[topic] = (conn, msgtype)

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type of every added topic."""
        return {t: m for t, (_, m) in self._connections.items()}

    # ------------------------------------------------------------------ messages
    def write(self, topic: str, msg_or_cdr: Any, stamp_ns: int) -> None:
        """Write one message.

        Args:
            topic: an added topic.
            msg_or_cdr: a rosbags message of the topic's type, or its CDR bytes (with the
                4-byte encapsulation header, as ``serialize_cdr`` returns).
            stamp_ns: the bag's log time (receive or publish time), nanoseconds.

        Raises:
            KeyError: the topic was not added; RuntimeError: the recorder is closed.
        """
        entry = self._connections.get(topic)
        if entry is None:
            raise KeyError(f"topic {topic} was not added to the bag (add_topic first)")
        conn, msgtype = entry
        if isinstance(msg_or_cdr, (bytes, bytearray, memoryview)):
            data = msg_or_cdr
        else:
            data = self.typestore.serialize_cdr(msg_or_cdr, msgtype)
        with self._lock:
            self._check_open()
            self._writer.write(conn, int(stamp_ns), bytes(data))
            self.counts[topic] += 1

    # ------------------------------------------------------------------ closing
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Finish the bag (summary, metadata.yaml); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"bag recorder {self.path} is closed")

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"BagRecorder({str(self.path)!r}, {self.storage}, v{self.version}, {state})"
