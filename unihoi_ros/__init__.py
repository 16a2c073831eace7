"""unihoi_ros: monocular egocentric RGB -> metric depth, intrinsics, poses and point clouds.

Implements UniHOI / EgoMono4D (arXiv 2411.09145) as a ROS 2 package. The package imports
without ROS 2, TensorRT or a GPU; those are loaded lazily where needed
(see :mod:`unihoi_ros.optional`).
"""

import os

__version__ = "0.1.0"

# With this set, PyTorch's CPU allocator (c10 ``alloc_cpu``) 2 MB-aligns tensors of 2 MB and
# more and advises the kernel to back them with transparent huge pages: the network's
# full-resolution maps then take 512x fewer page faults, about 15 % of a ViT window on the
# CPU (bench/RESULTS.md), with no change in results or peak memory. It only takes effect if
# set before torch's first large allocation; export THP_MEM_ALLOC_ENABLE=0 to opt out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
