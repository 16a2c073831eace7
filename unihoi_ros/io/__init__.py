"""I/O at the edges: frame sources (rosbag2, video, folders, TUM RGB-D, 7-Scenes), ground
truth, rosbag2 writing, PLY, predictions and pictures."""
