"""Long-term 3D point tracks of hands, objects and scene from a stream's results.

2D tracking by dense optical flow (DIS both ways: the default, :mod:`unihoi_ros.tracks.dense`)
or, with ``TrackerConfig.method``, pyramidal Lucas-Kanade (:mod:`unihoi_ros.tracks.klt`) or
both, with forward-backward checks, lifted
with each frame's depth, K and pose into the stream's world frame; points held at their
anchor, or followed by their lifts where the confidence is low; flagged dynamic only when
seen to move against the scene beyond the measured noise (:mod:`unihoi_ros.tracks.motion`).
Rules in :mod:`unihoi_ros.tracks.state`.
"""

from unihoi_ros.tracks.config import TrackerConfig
from unihoi_ros.tracks.evaluate import evaluate_tracks, ground_truth_tracks, hold_baseline
from unihoi_ros.tracks.queries import track_queries
from unihoi_ros.tracks.tracker import PointTracker, TrackSet

__all__ = [
    "PointTracker",
    "TrackSet",
    "TrackerConfig",
    "evaluate_tracks",
    "ground_truth_tracks",
    "hold_baseline",
    "track_queries",
]
