"""Entry point of ``unihoi_node`` (``ros2 run unihoi_ros unihoi_node``): the rclpy node.

Needs a ROS 2 installation (rclpy). Without ROS 2, the same node logic runs over Cyclone
DDS with ``unihoi run --transport dds``.
"""

from __future__ import annotations

import sys

from unihoi_ros.errors import one_line
from unihoi_ros.optional import MissingDependencyError, require


def main(argv: list[str] | None = None) -> int:
    """Start the rclpy node; exit 2 with one clear line when rclpy is missing."""
    try:
        require("rclpy")
        from unihoi_ros.ros.rclpy_node import main as rclpy_main
    except (MissingDependencyError, ImportError) as exc:
        print(f"unihoi_node: error: {one_line(exc)}", file=sys.stderr)
        return 2
    return int(rclpy_main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
