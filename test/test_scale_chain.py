"""Window-to-window depth-scale chaining: the pure function and the reconstructor option."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.flow import GroundTruthFlow
from unihoi_ros.pipeline import OracleBackend, Reconstructor, ReconstructorConfig
from unihoi_ros.pipeline.scale_chain import chained_window_scale
from unihoi_ros.sim import make_sequence


def _maps(seed=0, shape=(2, 12, 16)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 3.0, shape)


def test_full_chaining_recovers_the_ratio_and_leak_takes_a_power():
    prev = _maps()
    cur = prev / 1.1  # the new window decodes the shared frames 10 % short
    valid = np.ones(prev.shape, bool)
    assert chained_window_scale(prev, cur, valid, 0.0) == pytest.approx(1.1, rel=1e-9)
    assert chained_window_scale(prev, cur, valid, 0.5) == pytest.approx(1.1 ** 0.5, rel=1e-9)
    assert chained_window_scale(prev, cur, valid, 1.0) == 1.0


def test_only_valid_finite_positive_pixels_count():
    prev = _maps(1)
    cur = prev / 1.2
    valid = np.ones(prev.shape, bool)
    # a moving object: 40 % of the pixels disagree wildly, but are masked out
    cur[:, :5] = prev[:, :5] * 7.0
    valid[:, :5] = False
    cur[0, 6, 6], prev[1, 7, 7], cur[1, 8, 8] = np.nan, 0.0, -1.0
    assert chained_window_scale(prev, cur, valid, 0.0) == pytest.approx(1.2, rel=1e-9)
    # too few comparable pixels: the window keeps its own scale
    assert chained_window_scale(prev, cur, np.zeros_like(valid), 0.0) == 1.0


def test_bad_arguments_raise():
    prev = _maps()
    with pytest.raises(ValueError, match="leak"):
        chained_window_scale(prev, prev, np.ones(prev.shape, bool), 1.5)
    with pytest.raises(ValueError, match="shapes"):
        chained_window_scale(prev, prev[:1], np.ones(prev.shape, bool), 0.5)


def test_a_constant_per_window_bias_drifts_unbounded_without_leak_and_bounded_with():
    """Each new window decodes the shared frame 2 % shorter than the previous window did
    (raw ratio q): full chaining compounds it (q ** w), a leak a bounds the published
    scale at q ** ((1 - a) / a)."""
    q, windows = 1.02, 200
    truth = _maps(2, (1, 8, 8))
    valid = np.ones(truth.shape, bool)
    for leak in (0.0, 0.1, 0.5):
        published = truth.copy()  # window 0: own scale
        for w in range(1, windows + 1):
            raw = truth * q ** -w  # window w's own prediction of the shared frame
            published = raw * chained_window_scale(published, raw, valid, leak)
        log_scale = np.log(np.median(published / truth * q ** windows))  # vs own scale
        if leak == 0.0:
            assert log_scale == pytest.approx(windows * np.log(q), rel=1e-9)
        else:
            assert log_scale == pytest.approx((1 - leak) / leak * np.log(q), rel=1e-6)


class WindowScaleJumps(Backend):
    """Oracle whose every window is scaled by its own random factor (0.85-1.15): scale
    jumps at window boundaries, as a network's metric depth shows on real frames."""

    def __init__(self, inner, seed=0):
        self.inner, self.rng = inner, np.random.default_rng(seed)
        self.name, self.device, self.num_frames = "jumps", "cpu", inner.num_frames

    def encode(self, rgb):
        return self.inner.encode(rgb)

    def infer_window(self, features, rgbs, flows):
        p = self.inner.infer_window(features, rgbs, flows)
        s = np.float32(self.rng.uniform(0.85, 1.15))
        return WindowPrediction(p.depth * s, p.K, p.confidence)


def _scale_steps(config) -> tuple[np.ndarray, list]:
    seq = make_sequence(seed=7, num_frames=24, height=48, width=64)
    rec = Reconstructor(WindowScaleJumps(OracleBackend(seq)), GroundTruthFlow(seq), config)
    for stamp, rgb in zip(seq.stamps_ns, seq.rgb):
        rec.push(int(stamp), rgb)
    res = rec.flush()
    log_ratio = np.array([np.log(np.nanmedian(r.depth / d)) for r, d in zip(res, seq.depth)])
    return np.abs(np.diff(log_ratio)), res


def test_chaining_removes_window_scale_jumps_from_the_published_depth():
    off, _ = _scale_steps(ReconstructorConfig())
    same, _ = _scale_steps(ReconstructorConfig(window_scale_chain=0.0))
    np.testing.assert_array_equal(off, same)  # 0 is off, bit for bit
    assert off.mean() > 0.05  # the jumps are there without chaining
    full, _ = _scale_steps(ReconstructorConfig(window_scale_chain=1e-9))
    assert full.max() < 1e-3, full  # the stream keeps its first window's scale
    leaky, res = _scale_steps(ReconstructorConfig(window_scale_chain=0.2))
    assert leaky.mean() < 0.35 * off.mean(), (leaky.mean(), off.mean())
    assert all(r.pose_ok for r in res)
