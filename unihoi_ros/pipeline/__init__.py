"""Streaming reconstruction: frames in, :class:`FrameResult` out. Knows no ROS, no training."""

from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.pipeline.oracle import OracleBackend
from unihoi_ros.pipeline.reconstructor import Reconstructor
from unihoi_ros.pipeline.results import FrameResult

__all__ = ["FrameResult", "OracleBackend", "Reconstructor", "ReconstructorConfig"]
