"""The live node's thread policy: one core left to the transport on small machines."""

from __future__ import annotations

import pytest

from unihoi_ros.threads import available_cores, choose_thread_policy


@pytest.mark.parametrize(("cores", "inference"), [(1, 1), (2, 1), (4, 3), (8, 6), (32, 30)])
def test_auto_policy_leaves_cores_to_the_transport(cores, inference):
    p = choose_thread_policy(0, cores)
    assert (p.cores, p.inference, p.opencv) == (cores, inference, 1)
    assert "auto" in p.describe() and f"of {cores} core" in p.describe()
    # ONNX Runtime gets every core (measured: 51 vs 44 of 60 frames on 2 cores).
    assert p.onnxruntime_threads == cores


def test_requested_threads_override_and_machine_cores():
    assert choose_thread_policy(3, 2).inference == 3
    assert choose_thread_policy(3, 2).onnxruntime_threads == 3
    assert "inference_threads" in choose_thread_policy(3, 2).reason
    assert 1 <= available_cores() <= 4096
    assert choose_thread_policy().cores == available_cores()


def test_node_parameter_and_validation():
    from unihoi_ros.errors import ConfigError
    from unihoi_ros.ros.params import NodeParams

    assert NodeParams.load().inference_threads == 0  # auto by default
    with pytest.raises(ConfigError, match="inference_threads"):
        NodeParams.load(overrides={"inference_threads": -1})
