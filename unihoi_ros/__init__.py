"""unihoi_ros: monocular egocentric RGB -> metric depth, intrinsics, poses and point clouds.

Implements UniHOI / EgoMono4D (arXiv 2411.09145) as a ROS 2 package. The package imports
without ROS 2, TensorRT or a GPU; those are loaded lazily where needed
(see :mod:`unihoi_ros.optional`).
"""

__version__ = "0.1.0"
