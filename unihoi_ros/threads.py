"""How many threads inference and OpenCV get in a live process (the node).

On a small machine the transport's threads (DDS receive and send, rclpy executor), the
inference worker and OpenCV's own pool compete for the same cores: measured on 2 cores,
torch with 2 threads beside the DDS transport took 85-102 ms per 120x160 frame in the node
against 44 ms alone. The policy keeps one core for the transport and the OS on machines
with up to 4 cores, two beyond; OpenCV (DIS flow, resizing, rectification runs between the
network's calls, in the same worker) gets one thread. ``inference_threads`` (node
parameter; ``unihoi run --threads``) overrides it. The inference threads are torch's
intra-op threads; ONNX Runtime's (``load_backend(threads=...)``) are :attr:`ThreadPolicy.
onnxruntime`: every core under ``auto``. Measured on 2 cores with the fused ONNX graph
(``bench/node_rate.py``, 60 frames at 15 Hz over DDS, 3 runs): 2 ONNX Runtime threads
brought back 51 of 60 depth images (p50 112 ms) against 44 (129 ms) with 1; torch is the
other way round (34 with 2 threads, 44 with 1), its many short parallel regions contend
with the transport's threads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadPolicy:
    """Threads for the inference worker.

    Attributes:
        cores: CPU cores this process may run on.
        inference: torch intra-op threads.
        opencv: OpenCV threads.
        reason: how the numbers were chosen (for the start-up line and diagnostics).
        onnxruntime: ONNX Runtime intra-op threads (0: same as ``inference``).
    """

    cores: int
    inference: int
    opencv: int
    reason: str
    onnxruntime: int = 0

    @property
    def onnxruntime_threads(self) -> int:
        """ONNX Runtime's intra-op threads under this policy."""
        return self.onnxruntime or self.inference

    def describe(self) -> str:
        ort = (f" ({self.onnxruntime_threads} for ONNX Runtime)"
               if self.onnxruntime_threads != self.inference else "")
        return (f"{self.inference} inference{ort} + {self.opencv} OpenCV thread(s) of "
                f"{self.cores} core(s) ({self.reason})")


def available_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_thread_policy(requested: int = 0, cores: int | None = None) -> ThreadPolicy:
    """The policy for ``cores`` (default: :func:`available_cores`).

    Args:
        requested: inference threads asked for (> 0 overrides the rule).
        cores: cores to plan for.
    """
    cores = available_cores() if cores is None else max(1, int(cores))
    if requested and requested > 0:
        return ThreadPolicy(cores, int(requested), 1, "set by inference_threads")
    spare = 1 if cores <= 4 else 2
    return ThreadPolicy(cores, max(1, cores - spare), 1,
                        f"auto: {spare} core(s) left to the transport and the OS", cores)


def apply_thread_policy(policy: ThreadPolicy) -> None:
    """Set torch's and OpenCV's thread counts for this process."""
    import cv2
    import torch

    torch.set_num_threads(policy.inference)
    cv2.setNumThreads(policy.opencv)
    log.debug("threads: %s", policy.describe())
