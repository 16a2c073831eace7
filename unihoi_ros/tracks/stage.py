"""Long-term point tracking as a stage after the reconstructor, the same live and offline.

The live node (:class:`unihoi_ros.ros.outputs.FrameOutputs`, ``tracks`` topic) and
``unihoi process`` (``tracks.npz``, the bag's ``tracks``) both feed a stream's results
through one :class:`TrackingStage`: the tracker is made on first use, restarted with the
stream, and skipped while its tracks are not wanted (live: nobody subscribes), after which
it starts afresh, so no frame is ever linked to one from before a gap.
"""

from __future__ import annotations

from typing import Any

from unihoi_ros.pipeline.results import FrameResult
from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.tracker import PointTracker, TrackSet


class TrackingStage:
    """A stream's :class:`~unihoi_ros.tracks.PointTracker`, driven frame by frame.

    Args:
        config: the tracker's settings (default :class:`TrackerConfig`).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config
        self._tracker: PointTracker | None = None
        self._fresh = True  # no frame tracked since the last (re)start

    def update(self, result: FrameResult, *args: Any, wanted: bool = True) -> TrackSet | None:
        """Advance the tracks to ``result`` (the stream's next frame) and return them; None
        while not ``wanted`` (then the next wanted frame starts new tracks). Further
        arguments go to :meth:`PointTracker.update`."""
        if not wanted:
            self.reset()
            return None
        if self._tracker is None:
            self._tracker = PointTracker(self.config)
        self._fresh = False
        return self._tracker.update(result, *args)

    def reset(self) -> None:
        """A new stream (or a gap): drop every track; ids keep counting."""
        if self._tracker is not None and not self._fresh:
            self._tracker.reset()
        self._fresh = True
