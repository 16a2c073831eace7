"""Priors on a synthetic clip, the synthetic benchmark, and bundled-model resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unihoi_ros.model.bundled import BUNDLED_MODELS, WEIGHTS_DIR, bundled_model_path
from unihoi_ros.train.benchmark import (
    BASELINE,
    HEADLINE,
    evaluate_on_synthetic,
    format_table,
    headline,
)
from unihoi_ros.train.dataset import label_pair, synthetic_videos
from unihoi_ros.train.priors import PriorError, make_priors


@pytest.fixture(autouse=True)
def _fresh_resize_cache():
    """Inference runs (TorchBackend, inference_mode) fill ``model.resample``'s lru_cache with
    inference tensors, which autograd later refuses: clear it so training tests that run
    after these in the same process are unaffected (reported to the model's owner)."""
    yield
    from unihoi_ros.model import resample

    resample._matrix_cpu.cache_clear()


def test_priors_on_a_synthetic_clip():
    video = next(synthetic_videos([5], 8, 48, 64))
    labels = label_pair(video, np.array([[0, 1, 2, 3], [1, 3, 5, 7]]), make_priors())
    assert labels["rgb"].shape == (2, 4, 48, 64, 3)
    assert labels["flow_fwd"].shape == labels["flow_bwd"].shape == (2, 3, 48, 64, 2)
    assert labels["valid_fwd"].mean() > 0.5
    assert labels["tracks_visible"][:, 0].all() and labels["tracks_visible"].mean() > 0.5
    # Teacher: ground truth with a per-clip scale error of a few per cent.
    ratio = np.median(labels["teacher_depth"] / labels["gt_depth"], axis=(2, 3))
    assert np.all(np.abs(np.log(ratio)) < 0.4) and not np.allclose(ratio, 1.0)
    static = labels["static"]
    assert set(np.unique(static)) <= {0.0, 1.0} and static.mean() > 0.5
    # DIS flow agrees with the exact flow on most static pixels.
    with pytest.raises(PriorError):
        make_priors({"depth": "precomputed"})
    with pytest.raises(PriorError):
        make_priors({"masks": "magic"})


def test_no_masks_and_lk_on_real_looking_frames():
    spec = {"depth": "synthetic", "masks": "none"}
    video = next(synthetic_videos([6], 6, 48, 64))
    labels = label_pair(video, np.array([[0, 1, 2, 3], [2, 3, 4, 5]]), make_priors(spec))
    assert (labels["static"] == 1).all()


@pytest.mark.slow
def test_benchmark_runs_and_reports_every_metric():
    from unihoi_ros.model import UniHOI

    torch.manual_seed(0)
    res = evaluate_on_synthetic(UniHOI.from_size("tiny"), seeds=[10_000], num_frames=6,
                                height=48, width=64)
    assert len(res["clips"]) == 1 and res["settings"]["tracks"]
    for name, _, _ in HEADLINE:
        assert np.isfinite(res["mean"][name]), name
        # Rows without a baseline (fx / fy) are NaN there, every other one is measured.
        assert np.isfinite(res["baseline_mean"][name]) == (BASELINE[name] is not None), name
    clip = res["clips"][0]
    for who in ("tracker", "hold"):  # the hold (no tracking) baseline is computed too
        for kind in ("dynamic", "static"):
            fractions = [clip["tracks"][who][kind][d] for d in ("2cm", "5cm", "10cm")]
            assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions)
            assert clip["tracks"][who][kind]["count"] > 0
    assert clip["metrics"]["dyn_5cm"] == clip["tracks"]["tracker"]["dynamic"]["5cm"]
    assert clip["baseline"]["static_10cm"] == clip["tracks"]["hold"]["static"]["10cm"]
    # Rows read the evaluate() blocks they name.
    k = clip["full"]["intrinsics"]
    assert clip["metrics"]["fx_rel"] == pytest.approx(k["fx_rel_err"])
    assert res["mean"]["ate_pct"] == pytest.approx(
        100 * clip["full"]["trajectory"]["ate"] / clip["full"]["gt_path_length_m"])
    table = format_table({"model": res["mean"], "base": res["baseline_mean"]})
    assert "abs_rel_scaled" in table and "dyn_5cm" in table and "nan" not in table


def test_headline_rows_and_table_cells():
    """Every row has a baseline entry; NaN cells print as "–"; tracking rows read the
    tracker and the hold baseline."""
    assert {n for n, _, _ in HEADLINE} == set(BASELINE)
    result = {"depth": {"abs_rel": 0.3, "median_scaled": {"abs_rel": 0.05}},
              "baseline_constant_depth": {"abs_rel": 0.2},
              "intrinsics": {"fx_rel_err": 0.4},
              "trajectory": {"ate_pct_path": 2.0},
              "baseline_constant_velocity": {"ate_pct_path": 8.0},
              "tracks": {"tracker": {"dynamic": {"5cm": 0.7}},
                         "hold": {"dynamic": {"5cm": 0.3}}}}
    model, base = headline(result)
    assert (model["abs_rel"], model["abs_rel_scaled"], base["abs_rel_scaled"]) == (0.3, 0.05, 0.2)
    assert model["fx_rel"] == 0.4 and np.isnan(base["fx_rel"])
    assert (model["ate_pct"], base["ate_pct"]) == (2.0, 8.0)
    assert (model["dyn_5cm"], base["dyn_5cm"]) == (0.7, 0.3)
    assert np.isnan(model["static_2cm"]) and np.isnan(model["rmse_m"])
    table = format_table({"model": model, "baseline": base})
    row = next(line for line in table.splitlines() if line.startswith("| fx_rel "))
    assert row == "| fx_rel ↓ | 0.4000 | – |"
    assert "nan" not in table.lower() and "constant velocity" in table
    assert "constant velocity" not in format_table({"model": model}, legend=False)


def test_bundled_name_resolution():
    assert "unihoi-tiny" in BUNDLED_MODELS
    assert bundled_model_path("no-such-model") is None


@pytest.mark.slow
@pytest.mark.skipif(bundled_model_path("unihoi-tiny") is None,
                    reason="bundled weights not built yet")
def test_bundled_model_loads_and_reproduces_its_card():
    from unihoi_ros.model import UniHOI

    path = bundled_model_path("unihoi-tiny")
    assert path.stat().st_size < 20e6
    model = UniHOI.from_pretrained(path)
    assert model.config.size == "tiny"
    card = json.loads((WEIGHTS_DIR / "unihoi-tiny.eval.json").read_text())
    clip = card["quick_check"]["clips"][0]
    s = card["quick_check"]["settings"]
    res = evaluate_on_synthetic(model, seeds=[clip["seed"]], num_frames=s["num_frames"],
                                height=s["height"], width=s["width"])
    for name, value in clip["metrics"].items():
        assert res["clips"][0]["metrics"][name] == pytest.approx(
            value, rel=0.05, abs=1e-4, nan_ok=True), name
