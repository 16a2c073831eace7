"""I/O at the edges: frame sources (rosbag2, video, folders, TUM RGB-D, 7-Scenes), ground
truth, rosbag2 writing, PLY, the run layout and its loader (:func:`load_run`), pictures."""

from unihoi_ros.io.predictions import Predictions
from unihoi_ros.io.run_layout import RunLayoutError, load_run, write_run

__all__ = ["Predictions", "RunLayoutError", "load_run", "write_run"]
