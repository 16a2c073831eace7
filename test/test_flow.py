"""Flow providers against the synthetic world's exact flow."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.flow import DISFlow, FlowProvider, GroundTruthFlow
from unihoi_ros.sim import make_sequence


@pytest.fixture(scope="module")
def seq():
    return make_sequence(seed=21, num_frames=4, height=120, width=160)


def static_epe(seq, flow, t):
    ok = ~seq.dynamic[t] & ~seq.flow_bwd_occluded[t - 1]
    return float(np.median(np.linalg.norm(flow - seq.flow_bwd[t - 1], axis=-1)[ok]))


@pytest.mark.parametrize("preset,max_side", [("medium", None), ("fast", None), ("medium", 80)])
def test_dis_backward_flow_is_accurate(seq, preset, max_side):
    dis = DISFlow(preset, max_side=max_side)
    assert isinstance(dis, FlowProvider)
    for t in range(1, 4):
        flow = dis.backward(seq.rgb[t], seq.rgb[t - 1])
        assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
        motion = float(np.median(np.linalg.norm(seq.flow_bwd[t - 1], axis=-1)))
        # Sub-pixel on static, unoccluded pixels, and far better than assuming no motion.
        assert static_epe(seq, flow, t) < 0.3
        assert static_epe(seq, flow, t) < 0.5 * motion
        # Direction matters: the forward flow would be the negative, not this.
        assert static_epe(seq, -flow, t) > static_epe(seq, flow, t)


def test_ground_truth_flow_lookup(seq):
    gt = GroundTruthFlow(seq)
    s = [int(x) for x in seq.stamps_ns]
    np.testing.assert_array_equal(gt.backward(seq.rgb[2], seq.rgb[1], s[2], s[1]),
                                  seq.flow_bwd[1])
    assert not gt.backward(seq.rgb[0], seq.rgb[0], s[0], s[0]).any()
    with pytest.raises(KeyError):
        gt.backward(seq.rgb[3], seq.rgb[1], s[3], s[1])
    with pytest.raises(ValueError, match="preset"):
        DISFlow("slowest")


def test_dis_auto_preset_is_medium_when_small_and_fast_when_large(seq):
    from unihoi_ros.flow.dis import auto_preset

    assert auto_preset(120, 160) == auto_preset(240, 320) == "medium"
    assert auto_preset(480, 640) == "fast"
    auto, medium = DISFlow("auto"), DISFlow("medium")
    assert "medium up to 320x240" in auto.describe()
    np.testing.assert_array_equal(auto.backward(seq.rgb[1], seq.rgb[0]),
                                  medium.backward(seq.rgb[1], seq.rgb[0]))
    assert auto.describe() == "auto (medium)"
    big = np.repeat(np.repeat(seq.rgb[:2], 4, axis=1), 4, axis=2)  # 480x640
    np.testing.assert_array_equal(auto.backward(big[1], big[0]),
                                  DISFlow("fast").backward(big[1], big[0]))
    assert auto.describe() == "auto (fast)"


def test_squared_norm_is_the_summed_squares_bit_for_bit():
    # NumPy sums a 2-long axis left to right; should a release change that order, this
    # fails on the last bit while both stay right: then loosen it to rtol 1e-7.
    from unihoi_ros.flow.consistency import squared_norm

    flow = (np.random.default_rng(0).normal(size=(48, 64, 2)) * 20).astype(np.float32)
    assert np.array_equal(squared_norm(flow), (flow ** 2).sum(-1))
    assert squared_norm(flow).dtype == np.float32
