"""The stream's gate: which frames enter the reconstructor, by stamp and by size.

Pure bookkeeping (no frames, no backend), shared by every caller through
:meth:`Reconstructor.feed <unihoi_ros.pipeline.reconstructor.Reconstructor.feed>`:

- a stamp equal to the newest one seen: dropped (``duplicate_stamp``);
- older by up to :data:`~unihoi_ros.pipeline.outcome.TIME_JUMP_NS`: dropped
  (``out_of_order``);
- older by more: a jump back in time (bag loop, clock reset): the stream is reset;
- a frame of another ``(height, width)`` than the stream's: the stream is reset.

A stamp counts as seen once its frame is admitted, or as soon as it is checked with
``record=True`` (the node checks before decoding, so a frame that cannot be decoded still
takes its stamp).
"""

from __future__ import annotations

from dataclasses import dataclass

from unihoi_ros.pipeline.outcome import TIME_JUMP_NS, DropReason, FeedOutcome, ResetReason


@dataclass
class StreamGate:
    """Stamp and size rules of one stream (module docstring).

    Attributes:
        last_stamp: the newest stamp seen, nanoseconds (None before the first frame).
        size: the stream's camera ``(height, width)``, None until a frame is admitted and
            after a reset.
    """

    last_stamp: int | None = None
    size: tuple[int, int] | None = None
    _checked: int | None = None  # recorded by check_stamp, its frame not offered yet

    def check_stamp(self, stamp_ns: int, record: bool = True) -> FeedOutcome:
        """The verdict on a frame's stamp: dropped (duplicate, out of order), a time-jump
        reset, or neither (an empty :class:`FeedOutcome`). With ``record`` an admitted
        stamp counts as seen now, whatever happens to its frame."""
        stamp, last = int(stamp_ns), self.last_stamp
        if last is not None and stamp == last:
            return FeedOutcome(dropped=DropReason.DUPLICATE_STAMP,
                               message=f"stamp {stamp} after {last}")
        if last is not None and last - TIME_JUMP_NS <= stamp < last:
            return FeedOutcome(dropped=DropReason.OUT_OF_ORDER,
                               message=f"stamp {stamp} after {last}")
        if record:
            self.last_stamp = self._checked = stamp
        if last is not None and stamp < last:
            return FeedOutcome(reset=ResetReason.TIME_JUMP, message=(
                f"input stamps jumped back {(last - stamp) / 1e9:.3f} s (bag loop or clock "
                "reset): resetting the stream"))
        return FeedOutcome()

    def checked(self, stamp_ns: int) -> bool:
        """True when ``stamp_ns`` passed :meth:`check_stamp` with ``record`` and its frame
        has not been offered yet (the rules are not applied twice)."""
        return self._checked == int(stamp_ns)

    def check_size(self, size: tuple[int, int]) -> FeedOutcome:
        """The verdict on a frame of camera ``size`` ``(height, width)``: a reset when it
        differs from the stream's (empty :class:`FeedOutcome` otherwise)."""
        size = (int(size[0]), int(size[1]))
        if self.size is not None and size != self.size:
            return FeedOutcome(reset=ResetReason.RESOLUTION_CHANGE, message=(
                f"input resolution changed {self.size} -> {size}: resetting the stream"))
        return FeedOutcome()

    def admit(self, stamp_ns: int, size: tuple[int, int]) -> None:
        """A frame entered the stream: its stamp is seen, its size the stream's."""
        self.last_stamp = int(stamp_ns)
        self.size = (int(size[0]), int(size[1]))
        self._checked = None

    def offered(self) -> None:
        """A frame was offered and dropped: a recorded stamp stays seen, nothing else."""
        self._checked = None
