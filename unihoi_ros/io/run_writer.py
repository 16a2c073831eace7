"""Writing a run's per-frame outputs in a background thread (:class:`RunWriter`).

The reconstructor hands each :class:`~unihoi_ros.pipeline.results.FrameResult` to
:meth:`RunWriter.add` and goes on; one writer thread encodes and writes the frame's depth
and confidence PNGs (:mod:`unihoi_ros.io.run_layout`) and its messages into the bag, in
stream order. The queue between them is bounded, so a writer slower than the
reconstructor slows it down (back-pressure) and nothing is dropped. :meth:`RunWriter.close`
(also on error: call it in a ``finally``) writes every queued frame, joins the thread,
closes the bag and writes ``frames.json`` for the frames written, so a run stopped by a
bad input or Ctrl-C is still a loadable run up to its last frame.

OpenCV's PNG / JPEG encoders and Zstandard release the GIL: on two cores the writing
overlaps the network.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np

from unihoi_ros.errors import UnihoiError
from unihoi_ros.io.run_layout import DEPTH_MAX_M, write_frame_maps, write_frames_json

log = logging.getLogger(__name__)

__all__ = ["RunWriter", "RunWriterError"]

_STOP = object()


class RunWriterError(UnihoiError, RuntimeError):
    """Writing a frame's outputs failed (disk full, a bag error); names the frame."""


class RunWriter:
    """Writes frames in the run layout (and into a bag) on a background thread.

    Args:
        out_dir: the run's folder (exists).
        bag: optional sink with ``write(result, tracks)`` and ``close()`` (e.g.
            :class:`unihoi_ros.offline.BagOutputs`), called on the writer thread in order;
            closed by :meth:`close`.
        queue_size: frames waiting at most; :meth:`add` blocks while it is full.

    Attributes:
        written: frames whose outputs are written.
        depth_saturated: depth pixels stored as 65.535 m (beyond it, or ``+inf``).
    """

    def __init__(self, out_dir: str | Path, bag: Any | None = None, queue_size: int = 8) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.out_dir = Path(out_dir)
        self.bag = bag
        self.written = 0
        self.depth_saturated = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._error_frame: int | None = None
        self._meta: list[tuple[int, np.ndarray, np.ndarray, bool]] = []
        self._size: tuple[int, int] | None = None
        self._closed = False
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="unihoi-run-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producer side
    def add(self, result, tracks=None) -> None:
        """Queue one frame (in stream order); blocks while ``queue_size`` frames wait.

        Raises:
            RunWriterError: an earlier frame could not be written (the writer stopped).
            ValueError: the frame's depth size differs from the first frame's.
            RuntimeError: the writer is closed.
        """
        if self._closed:
            raise RuntimeError(f"run writer {self.out_dir} is closed")
        self._raise_if_failed()
        size = tuple(np.shape(result.depth))
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise ValueError(f"frame {len(self._meta)} has depth {size[1]}x{size[0]} but the "
                             f"run started at {self._size[1]}x{self._size[0]}")
        index = len(self._meta)
        self._meta.append((int(result.stamp_ns), np.array(result.K, np.float64),
                           np.array(result.T_world_cam, np.float64), bool(result.pose_ok)))
        while True:  # wake up now and then: a writer that died must not block us forever
            try:
                self._queue.put((index, result, tracks), timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RunWriterError(f"writing frame {self._error_frame} to {self.out_dir} failed: "
                                 f"{type(self._error).__name__}: {self._error}") from self._error

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain what is queued after a failure; it is not written
            index, result, tracks = item
            try:
                self.depth_saturated += write_frame_maps(self.out_dir, index, result.depth,
                                                         result.confidence)
                if self.bag is not None:
                    self.bag.write(result, tracks)
                self.written = index + 1
            except BaseException as exc:  # reported to the producer at add() / close()
                self._error, self._error_frame = exc, index

    # ------------------------------------------------------------------ closing
    def close(self, raise_error: bool = True) -> int:
        """Write every queued frame, join the thread, close the bag, write ``frames.json``
        (the frames written); idempotent.

        Args:
            raise_error: raise a writing failure (False: log it, e.g. while another
                exception is on its way out).

        Returns:
            The frames written.

        Raises:
            RunWriterError: a frame could not be written (``frames.json`` then lists the
                frames before it).
        """
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
            try:
                if self.bag is not None:
                    self.bag.close()
            except Exception as exc:
                if self._error is None:
                    self._error, self._error_frame = exc, self.written
            n = self.written
            if n and self._size is not None:
                stamps, K, T, ok = zip(*self._meta[:n])
                write_frames_json(self.out_dir, stamps, np.stack(K), np.stack(T),
                                  *self._size, pose_ok=ok)
            if self.depth_saturated:
                log.warning("%d depth pixels beyond %.3f m (or +inf) were stored as %.3f m "
                            "(16-bit millimetre PNGs)", self.depth_saturated, DEPTH_MAX_M,
                            DEPTH_MAX_M)
        if self._error is not None:
            if raise_error:
                self._raise_if_failed()
            if not self._reported:
                self._reported = True
                log.error("writing frame %s to %s failed: %s", self._error_frame,
                          self.out_dir, self._error)
        return self.written

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        self.close(raise_error=exc_type is None)
