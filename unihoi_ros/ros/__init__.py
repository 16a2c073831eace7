"""ROS 2 side of unihoi_ros: messages, QoS, transports.

Submodules (import the one you need; this package imports none of them eagerly):

- :mod:`unihoi_ros.ros.messages`: numpy/FrameResult <-> ROS 2 messages (rosbags classes);
  needs rosbags (and OpenCV for colour/compressed images), no transport.
- :mod:`unihoi_ros.ros.qos`: ``SENSOR_DATA`` / ``DEFAULT`` / ``SYSTEM_DEFAULT`` profiles,
  mapped to Cyclone DDS and rosbag2.
- :mod:`unihoi_ros.ros.wire`: the one CDR codec (rosbags) every transport uses.
- :mod:`unihoi_ros.ros.names`: ROS 2 topic-name rules (pure: no middleware needed).
- :mod:`unihoi_ros.ros.idl`: Cyclone DDS topic types named as ROS 2 names them, carrying
  CDR bytes.
- :mod:`unihoi_ros.ros.dds`: Cyclone DDS publisher/subscriber over ``rt/`` topics.
- :mod:`unihoi_ros.ros.loopback`: the loopback-only ``CYCLONEDDS_URI`` for tests and demos.
"""

from __future__ import annotations

__all__ = ["dds", "idl", "loopback", "messages", "names", "qos", "wire"]
