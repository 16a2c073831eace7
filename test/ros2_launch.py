"""What ``ros2 launch unihoi_ros egocentric.launch.py NAME:=VALUE ...`` does, for the test
tier (ros2cli is not among the PyPI wheels): find the launch file in the package's share
directory through the ament index, include it with the launch arguments, and run a
``launch.LaunchService`` until SIGINT/SIGTERM (which it forwards to the node)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    from launch import LaunchDescription, LaunchService

    path = os.path.join(get_package_share_directory("unihoi_ros"), "launch",
                        "egocentric.launch.py")
    arguments = [tuple(a.split(":=", 1)) for a in argv]
    service = LaunchService(argv=argv)
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(path), launch_arguments=arguments)]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
