"""Correspondence providers: dense backward optical flow between consecutive frames.

OpenCV DIS is the default (real, CPU); :class:`GroundTruthFlow` serves synthetic clips;
learned providers (RAFT, GMFlow) plug in behind the same :class:`FlowProvider` interface.
"""

from unihoi_ros.flow.base import FlowProvider
from unihoi_ros.flow.dis import DISFlow
from unihoi_ros.flow.ground_truth import GroundTruthFlow

__all__ = ["DISFlow", "FlowProvider", "GroundTruthFlow"]
