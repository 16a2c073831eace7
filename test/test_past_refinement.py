"""The past-only refinement (:mod:`unihoi_ros.pipeline.past_refinement`) and the
reconstructor's ``past_refinement`` stage, on a synthetic clip whose "network" depth has a
known shape error: the stream's own geometry takes most of it out, from earlier frames
only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from unihoi_ros.flow import DISFlow
from unihoi_ros.geometry.multiview import block_median
from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.pipeline.oracle import OracleBackend
from unihoi_ros.pipeline.past_refinement import PAST_REFINE_SETTINGS, PastRefinement
from unihoi_ros.pipeline.reconstructor import Reconstructor
from unihoi_ros.sim import make_sequence

SETTINGS = dataclasses.replace(PAST_REFINE_SETTINGS, offset=8)  # a 24-frame clip


@pytest.fixture(scope="module")
def clip():
    # Three times the usual head motion and few hands: parallax enough 8 frames apart.
    return make_sequence(3, 24, 240, 320, motion_speed=3.0, dynamic_fraction=(0.02, 0.05))


def _shape_error(n: int, h: int, w: int) -> np.ndarray:
    """``(n, h, w)`` per-frame multiplicative error of a "network": a left-right tilt of
    +-20 % and a scale that jitters 5 % from frame to frame (what geometry can measure)."""
    rng = np.random.default_rng(0)
    tilt = 1.0 + 0.4 * (np.arange(w) / (w - 1) - 0.5)
    return (rng.uniform(0.95, 1.05, n)[:, None, None] * tilt[None, None, :]
            * np.ones((n, h, 1))).astype(np.float32)


def _scaled_abs_rel(est: np.ndarray, true: np.ndarray, mask: np.ndarray) -> float:
    s = np.median(true[mask] / est[mask])
    return float(np.mean(np.abs(s * est[mask] - true[mask]) / true[mask]))


def test_past_refinement_takes_out_the_network_shape_error(clip):
    """At 120x160 with frames twice that size for the triangulation: from the first frame
    with a pair on, most static pixels are measured and the per-frame median-scaled error
    falls well below the network's; the first frame (no earlier frame) is the network's."""
    h, w = 120, 160
    frames = clip.rgb[:, ::2, ::2].copy()
    truth = np.stack([block_median(d, (h, w)) for d in clip.depth])
    network = truth * _shape_error(len(frames), h, w)
    K = clip.K.copy()
    K[:2] /= 2.0
    K[:2, 2] -= 0.25  # pixel centres at integers: c' = (c + 0.5) / 2 - 0.5
    refiner, dis = PastRefinement(SETTINGS), DISFlow("medium")
    before, after, measured = [], [], []
    outputs = []
    for i in range(len(frames)):
        flow = dis.backward(frames[i], frames[i - 1]) if i else None
        depth, m = refiner.refine(frames[i], clip.rgb[i], network[i], K, flow)
        outputs.append(depth)
        if i == 0:
            assert np.array_equal(depth, network[0]) and not m.any()
            continue
        static = ~clip.dynamic[i, ::2, ::2]
        before.append(_scaled_abs_rel(network[i], truth[i], static))
        after.append(_scaled_abs_rel(depth, truth[i], static))
        measured.append(float(m[static].mean()))
        assert np.array_equal(depth[~m], network[i][~m])  # the network's where unmeasured
    late = slice(SETTINGS.offset - 1, None)  # frames with their full pair
    assert np.mean(measured[late]) > 0.7
    # 0.104 -> 0.06 here: the 20 % of pixels left unmeasured keep the network's error.
    assert np.mean(after[late]) < 0.7 * np.mean(before[late]), (after, before)
    # A reset forgets the stream: the same frames give the same depths again.
    refiner.reset()
    again = [refiner.refine(frames[i], clip.rgb[i], network[i], K,
                            dis.backward(frames[i], frames[i - 1]) if i else None)[0]
             for i in range(4)]
    for a, b in zip(again, outputs[:4]):
        assert np.array_equal(a, b, equal_nan=True)


def test_past_refinement_needs_an_anchor_and_no_window_chain():
    with pytest.raises(ValueError, match="scale_anchor"):
        PastRefinement(dataclasses.replace(SETTINGS, scale_anchor=None))
    # The chain would compare frames the refinement already gave their published depth.
    with pytest.raises(ValueError, match="do not combine"):
        ReconstructorConfig(past_refinement=True, window_scale_chain=0.5)


class _ShapedOracle(OracleBackend):
    """The oracle's depth times a known per-frame shape error (a "network")."""

    def __init__(self, sequence, error: np.ndarray) -> None:
        super().__init__(sequence)
        self._error = error

    def infer_window(self, features, rgbs, flows_bwd, decode_last=None):
        pred = super().infer_window(features, rgbs, flows_bwd, decode_last)
        idx = list(features)[pred.first_frame:]
        return dataclasses.replace(pred, depth=pred.depth * self._error[idx])


def test_reconstructor_publishes_the_refined_depth(clip):
    """The stage in the stream: every frame still comes out once, in order; the published
    depth is the refined one (closer to the truth than the "network's"), its confidence 1
    where measured; off by default (the network's depth published as it is)."""
    error = _shape_error(len(clip.rgb), *clip.rgb.shape[1:3])
    runs = {}
    for on in (False, True):
        cfg = ReconstructorConfig(past_refinement=on, build_points=False)
        rec = Reconstructor(_ShapedOracle(clip, error), DISFlow("medium"), cfg)
        results = []
        for stamp, rgb in zip(clip.stamps_ns, clip.rgb):
            rec.push(int(stamp), rgb)
            results += rec.drain()
        results += rec.flush()
        assert [r.stamp_ns for r in results] == [int(s) for s in clip.stamps_ns]
        runs[on] = results
        if on:
            assert "refinement" in rec.stats()["stages_ms"]
    late = range(SETTINGS.offset, len(clip.rgb))
    err = {on: np.mean([_scaled_abs_rel(runs[on][i].depth, clip.depth[i], ~clip.dynamic[i])
                        for i in late]) for on in runs}
    assert np.allclose(runs[False][5].depth, clip.depth[5] * error[5], rtol=1e-5)
    assert err[True] < 0.7 * err[False], err  # 0.104 -> 0.061 here
    measured_conf = np.mean([(runs[True][i].confidence == 1.0).mean() for i in late])
    assert measured_conf > 0.5
