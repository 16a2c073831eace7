"""String option enums: torch-free, equal to their strings, used where choices are checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unihoi_ros.options import (
    Alignment,
    BackendName,
    FlowPreset,
    PoseSolver,
    Precision,
    parse,
    values,
)


def test_values_and_parse():
    assert values(PoseSolver) == ("pnp", "procrustes")
    assert values(Alignment) == ("sim3", "se3", "none")
    assert values(BackendName) == ("auto", "tensorrt", "onnxruntime", "torch")
    assert values(FlowPreset) == ("ultrafast", "fast", "medium", "auto")
    assert values(Precision) == ("fp32", "fp16", "bf16")
    assert PoseSolver.PNP == "pnp" and isinstance(PoseSolver.PNP, str)
    assert parse(Precision, "bf16") is Precision.BF16
    assert parse(Precision, " FP16 ", normalise=True) is Precision.FP16
    assert parse(Precision, "FP16") is None and parse(PoseSolver, ["pnp"]) is None
    assert parse(PoseSolver, PoseSolver.PROCRUSTES) is PoseSolver.PROCRUSTES


def test_importable_without_torch():
    code = ("import sys, unihoi_ros.options as o; o.values(o.PoseSolver); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_callers_use_the_enums():
    from unihoi_ros.backends.base import torch_dtype
    from unihoi_ros.backends.select import BACKENDS
    from unihoi_ros.backends.tensorrt_build import PRECISIONS
    from unihoi_ros.errors import ConfigError
    from unihoi_ros.geometry.metrics import align_trajectory
    from unihoi_ros.pipeline.config import POSE_SOLVERS, ReconstructorConfig

    assert POSE_SOLVERS == values(PoseSolver) and BACKENDS == values(BackendName)
    assert PRECISIONS == values(Precision)
    assert ReconstructorConfig(pose_solver=PoseSolver.PROCRUSTES).pose_solver == "procrustes"
    with pytest.raises(ValueError, match="pose_solver"):
        ReconstructorConfig(pose_solver="icp")
    import numpy as np
    import torch

    assert torch_dtype("fp32") is None and torch_dtype(Precision.FP16) is torch.float16
    assert torch_dtype("bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match="fp32, fp16 or bf16"):
        torch_dtype("fp8")
    T = np.tile(np.eye(4), (3, 1, 1))
    np.testing.assert_array_equal(align_trajectory(T, T, Alignment.NONE), T)
    with pytest.raises(ValueError, match="align must be"):
        align_trajectory(T, T, "scale")
