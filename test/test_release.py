"""``python -m unihoi_ros.train.release --adapted``: an ``unihoi adapt`` output released
through the same path as a trainer run (provenance from the adapt report, the real-video
gate first, the eval JSON with the history under ``earlier_legs``), and the never-trained
summary's per-clip spread. Tiny models, tiny clips (the release's own plan is the card's)."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
from test_adapt import _adapt_args, recording  # noqa: F401  (the tiny adapt input)

from unihoi_ros.cli import main as cli_main
from unihoi_ros.train import release as rel
from unihoi_ros.train.benchmark import clip_spread


def test_clip_spread_matches_the_statistics_module():
    rng = np.random.default_rng(3)
    fx = rng.uniform(0.0, 0.2, 13)
    clips = [{"metrics": {"fx_rel": float(v), "ate_pct": float("nan")}} for v in fx]
    clips[4]["metrics"]["fx_rel"] = float("nan")  # a clip without the number is skipped
    finite = [c["metrics"]["fx_rel"] for c in clips if np.isfinite(c["metrics"]["fx_rel"])]
    s = clip_spread(clips, ["fx_rel", "ate_pct"])
    deciles = statistics.quantiles(finite, n=10, method="inclusive")
    assert s["fx_rel"]["median"] == pytest.approx(statistics.median(finite))
    assert s["fx_rel"]["p10"] == pytest.approx(deciles[0])
    assert s["fx_rel"]["p90"] == pytest.approx(deciles[-1])
    assert (s["fx_rel"]["min"], s["fx_rel"]["max"]) == (min(finite), max(finite))
    assert s["fx_rel"]["clips"] == 12
    assert s["ate_pct"]["clips"] == 0 and np.isnan(s["ate_pct"]["median"])


def test_adapt_training_keeps_ranges_and_held_out_real_figures():
    """The adapt report's recordings become frame ranges (positions and, for a 7-Scenes
    folder, file numbers); the held-out real means before / after are carried."""
    mean = {"ate_pct": 4.9, "line_ate_pct": 5.3, "abs_rel_scaled": 0.49, "ms_flow": 3.0}
    report = {"base": "unihoi-tiny", "steps": 120, "clip_pairs": 180,
              "time": {"train_s": 1200.0, "total_s": 1500.0},
              "settings": {"holdout": 0.25, "lr": 2e-4, "inputs": ["x"], "progress": False},
              "recordings": [{"path": "/d/kitchen", "frames": 400, "train_frames": 300}],
              "held_out_losses": {"before": {"total": 2.0, "shape": 1.0},
                                  "after": {"total": 1.5}},
              "held_out_truth": {"rec00_kitchen": {
                  "frames": [300, 400], "before": {"segments": [], "mean": mean},
                  "after": {"segments": [], "mean": {**mean, "abs_rel_scaled": 0.24}}}}}
    t = rel.adapt_training(report, {"/d/kitchen": list(range(300, 700))})
    rec = t["recordings"][0]
    assert rec["train_frames"] == [0, 300] and rec["held_out_frames"] == [300, 400]
    assert rec["file_frames"] == {"train": [300, 599], "held_out": [600, 699]}
    assert t["train_minutes"] == pytest.approx(20.0) and t["steps"] == 120
    assert t["held_out_losses"] == {"before": 2.0, "after": 1.5}
    real = t["held_out_real"]["rec00_kitchen"]
    assert real["before"]["abs_rel_scaled"] == 0.49 and real["after"]["abs_rel_scaled"] == 0.24
    assert "ms_flow" not in real["after"] and t["synthetic"] is None
    assert t["settings"] == {"holdout": 0.25, "lr": 2e-4}
    assert "files 300-599" in rel._ranges(t) and "held out 300-399 (files 600-699)" in \
        rel._ranges(t)
    # An image folder (no file numbers): positions only.
    assert "file_frames" not in rel.adapt_training(report)["recordings"][0]


def test_held_out_gate_scores_only_frames_the_model_did_not_train_on(tmp_path):
    """A model adapted on the gate's recording is gated on the segments after its training
    frames; another recording leaves the gate as it is; all frames trained on is said."""
    from unihoi_ros.evaluation_real import RealBenchConfig, segment_starts

    gate = RealBenchConfig(data=tmp_path, segments=4, segment_frames=50)
    rec = {"path": str(tmp_path), "frames": 400, "train_frames": [0, 300]}
    held, note = rel.held_out_gate(gate, [rec])
    starts = segment_starts(400, held.segments, 50)[held.segments_from:]
    assert starts == [300, 350] and "segments 6-7" in note
    assert rel.held_out_gate(gate, [{**rec, "train_frames": [0, 301]}])[0].segments_from == 7
    assert rel.held_out_gate(gate, [{**rec, "path": str(tmp_path / "other")}]) == (gate, "")
    same, note = rel.held_out_gate(gate, [{**rec, "train_frames": [0, 400]}])
    assert same == gate and "every gate frame" in note


@pytest.fixture(scope="module")
def adapted(recording, tmp_path_factory):  # noqa: F811
    """A tiny adapt output (2 steps, one of them on the synthetic leg) whose base has a
    release record (``base.eval.json``) with one earlier leg."""
    folder, K, base = recording
    root = tmp_path_factory.mktemp("release")
    base_history = {"training": {"steps": 7, "config": {"seed": 5, "model": {"size": "tiny"}},
                                 "earlier_legs": [{"steps": 3}]}}
    base.with_suffix(".eval.json").write_text(json.dumps(base_history))
    from unihoi_ros.train.adapt import add_metadata

    add_metadata(base, {"terms": "base data: research only"})  # carried to what adapts it
    out = root / "adapted.safetensors"
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "2", "--no-truth",
                                "--synthetic-pairs", "2")) == 0
    return out, folder, base


def _tiny_plan():
    """One 8-frame held-out clip and two never-trained ones at 48x64; the real-video gate
    on one 6-frame segment at 60x80 (skipped where ../shared is absent)."""
    from unihoi_ros.evaluation_real import RealBenchConfig

    real = RealBenchConfig(segments=1, segment_frames=6, process_size=(60, 80),
                           variants=("model", "model_known_K"))
    return rel.ReleasePlan(seeds=(10_000,), num_frames=8, height=48, width=64,
                           unseen=(((48, 64), (20_000, 20_001)),), unseen_frames=8, real=real)


def test_release_adapted_bundles_weights_provenance_and_eval(adapted, tmp_path):
    """The release of an adapt output: the weights are the adapted ones, the JSON names the
    adapt base and the recording with its frame ranges, the eval JSON carries the adapt
    report's essentials, the base's history under earlier_legs, the never-trained spread
    and the previous release on the same clips."""
    from safetensors.torch import load_file

    from unihoi_ros.model.checkpoint import read_pretrained_meta
    from unihoi_ros.model_info import model_lines

    out, folder, base = adapted
    assert json.loads(out.with_suffix(".json").read_text())["terms"] == (
        f"from the base {base}: base data: research only")
    weights_dir = tmp_path / "weights"
    # allow_worse_real: a 2-step model against its base may go either way on the gate.
    report = rel.release_adapted(out, "unihoi-adapted", previous=base, plan=_tiny_plan(),
                                 allow_worse_real=True, weights_dir=weights_dir,
                                 terms="research use only (test)")
    weights = weights_dir / "unihoi-adapted.safetensors"
    released, source = load_file(str(weights)), load_file(str(out))
    assert released.keys() == source.keys()
    assert all(np.array_equal(released[k].numpy(), source[k].numpy()) for k in source)
    meta = json.loads((weights_dir / "unihoi-adapted.json").read_text())
    assert read_pretrained_meta(weights) == meta  # JSON and safetensors metadata agree
    assert meta["adapted_from"] == str(base)
    assert meta["provenance"].startswith(f"unihoi adapt from {base}: 2 steps")
    assert f"{folder} frames 0-19, held out 20-27" in meta["provenance"]
    assert "synthetic leg: 2 pairs labelled as unihoi_tiny_world2.yaml" in meta["provenance"]
    assert meta["recordings"][0]["train_frames"] == [0, 20]
    assert str(folder) in model_lines(str(weights))[0]
    assert meta["terms"] == "research use only (test)"
    assert model_lines(str(weights))[1].endswith("terms: research use only (test)")

    ev = json.loads((weights_dir / "unihoi-adapted.eval.json").read_text())
    adapt_report = json.loads(out.with_suffix(".report.json").read_text())
    t = ev["training"]
    assert t["kind"] == "unihoi adapt" and t["base"] == str(base) and t["steps"] == 2
    assert t["recordings"][0]["held_out_frames"] == [20, 28]
    assert t["synthetic"]["pairs"] == 2 and t["synthetic"]["seeds"] == [0, 1]
    assert t["held_out_losses"]["after"] == adapt_report["held_out_losses"]["after"]["total"]
    assert t["earlier_legs"] == [{"steps": 3}, {"steps": 7, "config": {
        "seed": 5, "model": {"size": "tiny"}}}]
    for key in ("unseen", "unseen_known_K"):
        summary = ev[key]["48x64"]
        fx = [c["metrics"]["fx_rel"] for c in summary["clips"]]
        assert [c["seed"] for c in summary["clips"]] == [20_000, 20_001]
        assert summary["spread"]["fx_rel"]["median"] == pytest.approx(np.median(fx))
        assert summary["mean"]["fx_rel"] == pytest.approx(np.mean(fx))
    assert ev["unseen_known_K"]["48x64"]["spread"]["fx_rel"]["max"] == 0.0  # K given
    prev = ev["previous_release"]
    assert prev["weights"] == str(base) and prev["unseen"]["48x64"]["spread"]["fx_rel"]
    assert ev["quick_check"]["clips"][0]["seed"] == 10_000
    assert set(ev["real"]) >= {"model", "previous"} or "skipped" in ev["real"]
    assert any("fx_rel per clip median" in line for line in rel.spread_lines(report))


def test_release_adapted_refused_by_the_gate_copies_nothing(adapted, tmp_path, monkeypatch):
    """The real-video gate runs on the adapted weights before anything is copied; a
    regression refuses the release (exit 2 from the command line), and an incomplete
    adapt output is an argument error."""
    out, _folder, base = adapted
    seen = []

    def fake_check(model, reference, *a, **k):
        seen.append((tuple(model.config.image_shape), reference))
        return {"regressions": ["model abs_rel: 0.7 vs previous 0.6"],
                "previous_weights": str(reference)}

    monkeypatch.setattr(rel, "real_check", fake_check)
    weights_dir = tmp_path / "weights"
    with pytest.raises(rel.ReleaseRefused, match="abs_rel"):
        rel.release_adapted(out, "unihoi-test-refused", previous=base, plan=_tiny_plan(),
                            weights_dir=weights_dir)
    assert seen == [((48, 64), base)]  # the adapted model (48x64), against --previous
    assert not weights_dir.exists() or not any(weights_dir.iterdir())
    from unihoi_ros.model.bundled import WEIGHTS_DIR

    assert rel.main(["--adapted", str(out), "--name", "unihoi-test-refused",
                     "--previous", str(base)]) == 2
    assert not (WEIGHTS_DIR / "unihoi-test-refused.safetensors").exists()
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(out.read_bytes())
    with pytest.raises(SystemExit) as exc:
        rel.main(["--adapted", str(lone), "--name", "unihoi-test-refused"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        rel.main([str(tmp_path), "--adapted", str(out)])  # two sources
    # The previous release may not be the file the release overwrites (measured after).
    weights_dir.mkdir(exist_ok=True)
    (weights_dir / "same.safetensors").write_bytes(b"")
    gates = len(seen)
    with pytest.raises(rel.ConfigError, match="overwrites"):
        rel.release_adapted(out, "same", previous=weights_dir / "same.safetensors",
                            plan=_tiny_plan(), weights_dir=weights_dir)
    assert len(seen) == gates  # refused before the gate
