"""Streaming reconstruction: frames in, :class:`FrameResult` out. Knows no ROS, no training."""

from unihoi_ros.pipeline.results import FrameResult

__all__ = ["FrameResult"]
