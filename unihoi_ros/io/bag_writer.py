"""Record ROS 2 messages into a rosbag2 bag (MCAP by default), thread-safely.

:class:`BagRecorder` wraps ``rosbags.rosbag2.Writer``: topics are added with their message
type and the QoS their publisher offers (written as ``offered_qos_profiles``, which
``ros2 bag play`` uses to re-create publishers), and messages are written either as rosbags
messages (serialised here) or as CDR bytes already serialised by the caller. Version 8
metadata is what ROS 2 Humble reads (newer versions only Jazzy and later).

The bag is complete once :meth:`BagRecorder.close` has run (the MCAP summary and
``metadata.yaml`` are written then): use it as a context manager, or close it from a
signal-driven shutdown path. For a process that may be killed (``kill -9``, power), give
``chunk_bytes`` / ``chunk_seconds``: each MCAP chunk is then written and flushed to the
file as soon as it holds that many bytes or its first message is that old, so the file is
readable (by a linear MCAP reader, e.g. ``mcap``'s) up to its last complete chunk; no
``metadata.yaml`` exists then (``ros2 bag reindex`` writes one).

``compression="zstd"`` compresses each MCAP chunk with Zstandard (rosbags' storage-level
compression): the MCAP chunk records say ``zstd``, which every MCAP reader decodes
(rosbag2_storage_mcap from Humble on, Foxglove, ``mcap``, rosbags), while
``metadata.yaml`` declares no rosbag2-level (file or message) compression.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from unihoi_ros.optional import require
from unihoi_ros.ros import wire
from unihoi_ros.ros.qos import QosProfile, to_rosbags_qos


class BagRecorder:
    """A rosbag2 writer that many threads may write to.

    Args:
        path: the bag directory to create (it must not exist unless ``overwrite``).
        typestore: rosbags typestore of the messages (default: Humble's).
        version: rosbag2 metadata version: 8 (Humble and later) or 9 (Jazzy and later).
        storage: ``"mcap"`` (default) or ``"sqlite3"``.
        overwrite: delete an existing ``path`` first.
        chunk_bytes: MCAP: close and flush the pending chunk once it holds this many bytes
            (rosbags' own limit, 1 MiB, applies too); None: only rosbags' limit, unflushed.
        chunk_seconds: MCAP: close and flush the pending chunk once its first message is
            this old (checked at each write and by :meth:`flush_due`); None: no age limit.
        compression: MCAP: ``"zstd"`` compresses every chunk (module doc); None: none.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: chunk options or compression with sqlite3 storage, an unknown
            compression, or a rosbags whose MCAP writer does not expose its chunks.
    """

    def __init__(
        self,
        path: str | Path,
        typestore: Any | None = None,
        version: int = 8,
        *,
        storage: str = "mcap",
        overwrite: bool = False,
        chunk_bytes: int | None = None,
        chunk_seconds: float | None = None,
        compression: str | None = None,
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
        if compression not in (None, "zstd"):
            raise ValueError(f"compression must be None or 'zstd', got {compression!r}")
        if compression is not None and storage != "mcap":
            raise ValueError("chunk compression applies to MCAP storage only")
        self.compression = compression
        self._writer = rosbag2.Writer(self.path, version=self.version,
                                      storage_plugin=plugins[storage])
        if compression == "zstd":
            storage_mode = getattr(rosbag2.enums.CompressionMode, "STORAGE", None)
            if storage_mode is None:
                raise ValueError("this rosbags version cannot compress MCAP chunks "
                                 "(no CompressionMode.STORAGE): upgrade rosbags or pass "
                                 "compression=None")
            self._writer.set_compression(storage_mode, rosbag2.enums.CompressionFormat.ZSTD)
        self._writer.open()
        self._chunk_bytes, self._chunk_seconds = chunk_bytes, chunk_seconds
        self._progressive = chunk_bytes is not None or chunk_seconds is not None
        if self._progressive:
            self._check_progressive()
        self._chunk_started: float | None = None  # monotonic time of the pending chunk's start
        self._chunks_written = 0
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
            data = wire.serialize(msg_or_cdr, msgtype, self.typestore)
        with self._lock:
            self._check_open()
            self._writer.write(conn, int(stamp_ns), bytes(data))
            self.counts[topic] += 1
            if self._progressive:
                self._chunk_written_or_due()

    # ------------------------------------------------------------------ progressive chunks
    def _check_progressive(self) -> None:
        storage = getattr(self._writer, "storage", None)
        if self.storage != "mcap":
            raise ValueError("chunk_bytes / chunk_seconds apply to MCAP storage only")
        if not all(hasattr(storage, a) for a in ("close_chunk", "chunk", "chunks", "bio")):
            raise ValueError("this rosbags version's MCAP writer does not expose its chunks: "
                             "progressive chunks (chunk_bytes / chunk_seconds) are unavailable")

    def _chunk_written_or_due(self, now: float | None = None) -> None:
        """Close and flush the pending chunk when it is due; flush one rosbags closed."""
        st = self._writer.storage
        now = time.monotonic() if now is None else now
        if len(st.chunks) != self._chunks_written:  # rosbags closed one (its 1 MiB limit)
            self._flushed(st)
        pending = st.chunk.bio.tell()
        if not st.chunk.msgs:
            return  # schemas and channels only: they go with the first message's chunk
        if self._chunk_started is None:
            self._chunk_started = now
        full = self._chunk_bytes is not None and pending >= self._chunk_bytes
        old = (self._chunk_seconds is not None
               and now - self._chunk_started >= self._chunk_seconds)
        if full or old:
            st.close_chunk()
            self._flushed(st)

    def _flushed(self, st: Any) -> None:
        st.bio.flush()
        self._chunks_written = len(st.chunks)
        self._chunk_started = None

    def flush_due(self) -> None:
        """Write the pending chunk if its first message is ``chunk_seconds`` old (call it
        from a timer: a quiet topic does not trigger :meth:`write`)."""
        if not self._progressive:
            return
        with self._lock:
            if not self._closed:
                self._chunk_written_or_due()

    @property
    def chunks_written(self) -> int:
        """MCAP chunks written and flushed so far (progressive chunks only)."""
        return self._chunks_written

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


def messages_in_complete_chunks(mcap_file: str | Path) -> Iterator[tuple[str, str, int, bytes]]:
    """Every message of an MCAP file that was never closed (its writer killed), read
    linearly up to the file's truncated end: what its complete chunks hold.

    Yields:
        ``(topic, message type, log time ns, CDR bytes)`` in file order.

    Raises:
        MissingDependencyError: the ``mcap`` package is not installed.
    """
    reader_mod = require("mcap.reader")
    errors = (require("mcap.exceptions").McapError,
              require("mcap.stream_reader").CRCValidationError)
    with open(mcap_file, "rb") as fh:
        messages = reader_mod.NonSeekingReader(fh).iter_messages(log_time_order=False)
        while True:
            try:
                schema, channel, message = next(messages)
            except StopIteration:
                return
            except errors:  # the truncated end: an incomplete record or no footer
                return
            yield (channel.topic, schema.name if schema is not None else "", message.log_time,
                   bytes(message.data))
