"""Correspondence providers: dense backward optical flow between consecutive frames.

OpenCV DIS is the default (real, CPU); :class:`GroundTruthFlow` serves synthetic clips;
:class:`unihoi_ros.flow.raft.RAFTFlow` runs RAFT-small on the authors' checkpoint (a path
the user gives; imported from its module, it loads torch). Other learned providers
(GMFlow) plug in behind the same :class:`FlowProvider` interface.
"""

from unihoi_ros.flow.base import FlowProvider
from unihoi_ros.flow.dis import DISFlow
from unihoi_ros.flow.ground_truth import GroundTruthFlow

__all__ = ["DISFlow", "FlowProvider", "GroundTruthFlow"]
