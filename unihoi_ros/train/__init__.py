"""Self-supervised training of UniHOI (EgoMono4D) from unlabeled video.

Modules, one responsibility each:

- :mod:`.priors`: pseudo-label interfaces and implementations (teacher depth + K, flow,
  tracks, static masks; real ones that run here and slots for the paper's models).
- :mod:`.losses`: the paper's losses as pure functions (``shape``, ``flow_3d``,
  ``tracking_3d``, ``dynamic_area``, ``cc``) plus the ``scale`` anchor; weights in
  :data:`.losses.PAPER_WEIGHTS`.
- :mod:`.objective`: network forward + Procrustes poses + every loss of a batch.
- :mod:`.dataset`: videos (synthetic, folders, video files, rosbag2), clip-pair sampling
  (4 frames, interval 1-4), the ``.npz`` prior cache, deterministic data order.
- :mod:`.config`: the YAML training config and its defaults.
- :mod:`.ddp`: ``torchrun`` / DistributedDataParallel plumbing (NCCL or gloo).
- :mod:`.trainer`: the loop (``unihoi train CONFIG``): progress bars, held-out evaluation,
  checkpoints in our safetensors format with resume, CSV log, loss-curve PNG.
- :mod:`.benchmark`: :func:`~.benchmark.evaluate_on_synthetic` through the streaming
  pipeline; :mod:`.release`: bundle a run as a shipped model and measure it.

Configs: ``unihoi_ros/train/configs/unihoi_tiny.yaml`` (the bundled ``unihoi-tiny``).
Heavy imports stay in the submodules; importing this package is cheap.
"""

from __future__ import annotations

__all__ = ["benchmark", "config", "dataset", "ddp", "losses", "objective", "priors",
           "release", "trainer"]
