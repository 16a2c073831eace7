"""Typed evaluation records: the eval.json layout round trip, checked metric paths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unihoi_ros.batch import INDEX_METRICS, flat_metrics
from unihoi_ros.evaluation import evaluate
from unihoi_ros.evaluation_result import EvaluationResult, MetricPath
from unihoi_ros.geometry import metrics
from unihoi_ros.io.ground_truth import GroundTruth
from unihoi_ros.io.predictions import Predictions
from unihoi_ros.sim import make_sequence


def _result(with_depth: bool = True) -> tuple[EvaluationResult, Predictions, GroundTruth]:
    seq = make_sequence(seed=21, num_frames=6, height=36, width=48)
    rng = np.random.default_rng(0)
    T = seq.T_world_cam.copy()
    T[:, :3, 3] = 1.2 * T[:, :3, 3] + rng.normal(0, 0.01, (6, 3))
    depth = (seq.depth * rng.uniform(0.9, 1.1, seq.depth.shape)).astype(np.float32)
    pred = Predictions(seq.stamps_ns, depth, np.repeat(seq.K[None], 6, 0), T,
                       np.ones_like(depth))
    gt = GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth if with_depth else None, seq.K)
    return evaluate(pred, gt), pred, gt


def test_record_numbers_and_json_round_trip():
    res, pred, gt = _result()
    # The record holds what the metric functions compute.
    assert res.trajectory.ate == metrics.ate(pred.T_world_cam, gt.T_world_cam)
    assert res.depth.abs_rel == metrics.depth_metrics(pred.depth, gt.depth)["abs_rel"]
    assert res.trajectory.ate_pct_path == pytest.approx(
        100 * res.trajectory.ate / metrics.path_length(gt.T_world_cam))
    layout = json.loads(json.dumps(res.to_dict()))
    assert list(layout)[:3] == ["frames_evaluated", "frames_predicted", "trajectory"]
    assert "fscore@0.05" in layout["pointcloud"] and "median_scaled" in layout["depth"]
    assert "median_scaled" not in layout["baseline_constant_depth"]
    assert EvaluationResult.from_dict(layout).to_dict() == layout


def test_blocks_not_evaluated_are_absent_and_read_as_nan():
    res, _, _ = _result(with_depth=False)
    assert res.depth is None and res.pointcloud is None and res.trajectory is not None
    assert "depth" not in res.to_dict()
    assert math.isnan(MetricPath("depth", "abs_rel").read(res))
    flat = flat_metrics(res)
    assert "depth.abs_rel" not in flat and flat["trajectory.ate"] == res.trajectory.ate
    assert flat == flat_metrics(res.to_dict())


def test_metric_paths_are_checked_when_made():
    assert [str(MetricPath.parse(k)) for k in INDEX_METRICS] == list(INDEX_METRICS)
    assert MetricPath.parse("pointcloud.fscore@0.05").keys == (0.05,)
    for bad in ("trajectory.atee", "depths.abs_rel", "pointcloud.fscor@0.05"):
        with pytest.raises(ValueError):
            MetricPath.parse(bad)
    with pytest.raises(ValueError):
        MetricPath("tracks", "trackers", ("dynamic", "5cm"))
