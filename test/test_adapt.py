"""``unihoi adapt`` (issue #25): the teacher's maps and schedule, a tiny end-to-end run
with resume, its output loading with ``--model``, bad arguments, and the start-up lines
naming what a model was trained on (the teacher's multi-view maths:
test_geometry_multiview.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unihoi_ros.cli import main as cli_main
from unihoi_ros.sim import make_sequence
from unihoi_ros.train.adapt import (
    mixed_step,
    schedule_fraction,
    synthetic_seeds,
    teacher_maps,
)


def test_teacher_maps_take_the_geometry_where_it_is_and_the_base_elsewhere():
    base = np.full((10, 10), 2.0, np.float32)
    metric = np.full((10, 10), np.nan, np.float32)
    metric[:6] = 2.5  # triangulated, already at its metric scale
    depth, weight = teacher_maps(metric, base, 0.1, min_pixels=10)
    np.testing.assert_allclose(depth[:6], 2.5)
    np.testing.assert_allclose(depth[6:], 2.0)
    assert (weight[:6] == 1).all() and np.allclose(weight[6:], 0.1)
    # Too few geometric pixels: the base alone, at the base's weight.
    d2, w2 = teacher_maps(metric, base, 0.1, min_pixels=61)
    assert np.allclose(w2, 0.1) and np.allclose(d2, base)


def test_schedule_fraction_ends_with_whichever_limit_ends_the_run():
    assert schedule_fraction(300.0, 1200.0, 10, None) == pytest.approx(0.25)
    assert schedule_fraction(300.0, 1200.0, 50, 100) == pytest.approx(0.5)  # steps lead
    assert schedule_fraction(900.0, 1200.0, 50, 100) == pytest.approx(0.75)  # time leads
    assert schedule_fraction(5000.0, 1200.0, 500, 100) == 1.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A synthetic recording as an image folder (96x128) and its K; a tiny base model
    trained on nothing (48x64 frames) so a step takes a fraction of a second."""
    import torch

    from unihoi_ros.model import UniHOI, save_pretrained
    from unihoi_ros.model.config import ModelConfig, get_config

    root = tmp_path_factory.mktemp("adapt")
    seq = make_sequence(7, 28, 96, 128, motion_speed=3.0, dynamic_fraction=(0.02, 0.05))
    folder = root / "frames"
    folder.mkdir()
    for i, rgb in enumerate(seq.rgb):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({**get_config("tiny").to_dict(), "token_bounds": [24, 48],
                                 "image_shape": [48, 64]})
    base = save_pretrained(UniHOI(cfg), root / "base", provenance="test: synthetic clips")
    return folder, seq.K, base


def _adapt_args(folder, K, base, out, *extra):
    k = ",".join(f"{v:.4f}" for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    return ["adapt", str(folder), "-o", str(out), "--K", k, "--model", str(base),
            "--no-progress", "--threads", "1", "--holdout", "0.3", "--augment", "--flip",
            "--zoom", "1.3", "--seed", "3", *extra]


def test_adapt_runs_resumes_and_loads(recording, tmp_path):
    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.model import UniHOI
    from unihoi_ros.model_info import model_lines

    folder, K, base = recording
    out = tmp_path / "mine.safetensors"
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "2")) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["steps"] == 2 and report["clip_pairs"] >= 4
    assert report["settings"]["seed"] == 3 and report["settings"]["flip"]
    assert report["settings"]["zoom"] == 1.3
    assert set(report["held_out_losses"]) == {"before", "after"}
    assert np.isfinite(report["held_out_losses"]["after"]["total"])
    rec = report["recordings"][0]
    assert rec["train_frames"] == 20 and rec["teacher_hw"] == [96, 128]
    # K recorded at the training size: the given K halved (96x128 -> 48x64).
    assert rec["K_train_size"][0][0] == pytest.approx(K[0, 0] / 2, rel=1e-3)
    assert out.with_suffix(".losses.png").is_file()
    # Again without --resume: refused (exit 2), the run's checkpoints are kept.
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "4")) == 2
    # --resume continues from step 2 and reuses the teacher (no new teacher file).
    teacher = next((out.with_suffix(".adapt")).glob("teacher_*.npz"))
    mtime = teacher.stat().st_mtime_ns
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "4", "--resume")) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["steps"] == 4 and teacher.stat().st_mtime_ns == mtime
    # The result loads as the node and `unihoi process` load a --model.
    model = UniHOI.from_pretrained(out)
    assert tuple(model.config.image_shape) == (48, 64)
    backend = load_backend(str(out), "torch", "cpu")
    assert not backend.untrained
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["adapted_from"] == str(base) and str(folder) in meta["trained_on"]
    assert "adapted by `unihoi adapt`" in model_lines(str(out))[0]
    assert len(model_lines(str(out))) == 1  # no real-camera hint for an adapted model
    run = tmp_path / "run"
    assert cli_main(["process", str(folder), "-o", str(run), "--model", str(out),
                     "--backend", "torch", "--device", "cpu", "--no-progress", "--threads",
                     "1", "--max-frames", "6", "--no-bag"]) == 0
    assert (run / "frames.json").is_file()


def test_mixed_step_walks_each_leg_without_gaps():
    for every in (2, 3, 5):
        legs = [mixed_step(s, every) for s in range(60)]
        syn = [i for flag, i in legs if flag]
        real = [i for flag, i in legs if not flag]
        assert [flag for flag, _ in legs] == [s % every == every - 1 for s in range(60)]
        assert syn == list(range(60 // every)) and real == list(range(60 - 60 // every))
    from unihoi_ros.errors import ConfigError

    assert synthetic_seeds(5, 2) == range(3) and synthetic_seeds(20000, 2) == range(10000)
    with pytest.raises(ConfigError, match="evaluation"):
        synthetic_seeds(20001, 2)


def _csv_rows(path) -> list[dict]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def _weights(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_adapt_synthetic_leg_trains_on_both_caches(recording, tmp_path):
    """--synthetic-pairs 3: 4 pairs (2 clips x 2) of training seeds 0-1 labelled as the
    world-2 leg, every other step synthetic with that leg's weights, both legs' losses in
    the CSV; --resume reuses the cache and continues the alternation."""
    import yaml

    from unihoi_ros.train.adapt import SYNTHETIC_LEG_CONFIG

    folder, K, base = recording
    out = tmp_path / "mix.safetensors"
    mix = ("--synthetic-pairs", "3", "--synthetic-every", "2")
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "3", *mix)) == 0
    work = out.with_suffix(".adapt")
    cache = work / "cache_synthetic"
    names = json.loads((cache / "index.json").read_text())["samples"]
    assert sorted(names) == [f"sim00000{s}_{k}.npz" for s in (0, 1) for k in (0, 1)]
    assert all(int(n[3:9]) < 10000 for n in names)
    # The clips are the synthetic world's seeds at the model's input size (48x64 here).
    with np.load(cache / "sim000001_1.npz") as z:
        rgb, idx = z["rgb"], z["indices"]
        assert "gt_depth" in z.files
    seq = make_sequence(1, 16, 48, 64)
    np.testing.assert_array_equal(rgb, seq.rgb[idx])
    rows = _csv_rows(work / "train.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r, syn in zip(rows, (False, True, False)):
        assert (r["synthetic_total"] != "") == syn and (r["total"] != "") == (not syn)
        value = float(r["synthetic_total"] if syn else r["total"])
        assert np.isfinite(value) and value > 0
    assert float(rows[1]["synthetic_dynamic_area"]) >= 0  # on: the clips have hand masks
    assert "dynamic_area" not in rows[0]  # off for the recordings (no hand masks)
    report = json.loads(out.with_suffix(".report.json").read_text())
    syn = report["synthetic"]
    leg = yaml.safe_load(SYNTHETIC_LEG_CONFIG.read_text())
    assert syn["clip_pairs"] == 4 and syn["steps"] == 1 and syn["seeds"] == [0, 2]
    assert syn["weights"] == {k: float(v) for k, v in leg["losses"].items()}
    assert syn["priors"] == leg["priors"] and syn["hw"] == [48, 64]
    assert np.isfinite(syn["last_losses"]["total"])
    assert np.isfinite(report["held_out_losses"]["after"]["total"])
    assert "synthetic clip pairs" in json.loads(out.with_suffix(".json").read_text())[
        "trained_on"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    assert cli_main(_adapt_args(folder, K, base, out, "--max-steps", "4", "--resume",
                                *mix)) == 0
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")} == mtimes
    rows = _csv_rows(work / "train.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and rows[3]["total"] == ""
    assert np.isfinite(float(rows[3]["synthetic_total"]))
    assert json.loads(out.with_suffix(".report.json").read_text())["synthetic"]["steps"] == 2


def test_adapt_synthetic_pairs_zero_is_the_plain_run(recording, tmp_path):
    """--synthetic-pairs 0 gives the very weights of a run without the option (same seed,
    same steps); a mixed run's differ (its second step is synthetic)."""
    import torch

    folder, K, base = recording
    outs = {}
    for name, extra in (("plain", ()), ("zero", ("--synthetic-pairs", "0")),
                        ("mixed", ("--synthetic-pairs", "2"))):
        outs[name] = tmp_path / f"{name}.safetensors"
        assert cli_main(_adapt_args(folder, K, base, outs[name], "--max-steps", "2",
                                    "--no-truth", *extra)) == 0
    plain, zero, mixed = (_weights(outs[n]) for n in ("plain", "zero", "mixed"))
    assert plain.keys() == zero.keys()
    for key in plain:
        assert torch.equal(plain[key], zero[key]), key
    assert not all(torch.equal(plain[key], mixed[key]) for key in plain)
    header = (tmp_path / "plain.adapt" / "train.csv").read_text().splitlines()[0]
    assert (tmp_path / "zero.adapt" / "train.csv").read_text().splitlines()[0] == header
    assert not (tmp_path / "zero.adapt" / "cache_synthetic").exists()


def test_adapt_bad_arguments_exit_2(recording, tmp_path, capsys):
    folder, _K, _base = recording
    out = tmp_path / "m.safetensors"
    assert cli_main(["adapt", str(tmp_path / "missing"), "-o", str(out)]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(tmp_path / "m.onnx")]) == 2
    yaml_path = tmp_path / "cam.yaml"
    yaml_path.write_text("image_width: 128\nimage_height: 96\n")
    assert cli_main(["adapt", str(folder), "-o", str(out), "--K", "1,1,1,1",
                     "--camera-info", str(yaml_path)]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--holdout", "0.7"]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--K", "1,2"]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--minutes", "0"]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--synthetic-pairs", "-1"]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--synthetic-every", "1"]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--raft-weights",
                     str(tmp_path / "raft-small.pth")]) == 2
    assert cli_main(["adapt", str(folder), "-o", str(out), "--zoom", "0.9"]) == 2
    err = capsys.readouterr().err
    assert err.count("unihoi adapt: error:") == 10
    assert "raft-small.pth: no such file" in err


def test_bundled_models_say_what_they_saw_and_point_at_adapt():
    """The default model says it was adapted on 7-Scenes frames and under which terms; the
    synthetic-only one says so; both point real-camera users at `unihoi adapt`."""
    from unihoi_ros.model_info import REAL_CAMERA_HINT, model_lines

    synthetic = model_lines("unihoi-tiny-synthetic")
    assert "synthetic clips only" in synthetic[0] and synthetic[1:] == [REAL_CAMERA_HINT]
    default = model_lines("unihoi-tiny")
    assert "unihoi adapt" in default[0] and "7scenes_redkitchen" in default[0]
    assert "research" in default[1] and default[2] == REAL_CAMERA_HINT
    assert "unihoi adapt" in REAL_CAMERA_HINT and "authors'" in REAL_CAMERA_HINT
    assert model_lines("random:tiny") == ["model random:tiny: untrained (random weights)",
                                          REAL_CAMERA_HINT]


def test_teacher_weight_in_the_shape_loss():
    """``teacher_weight`` scales the shape loss per pixel: all ones equals no weight, and
    a zero-weight region's teacher depth does not matter."""
    import torch

    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.config import ModelConfig, get_config
    from unihoi_ros.train.objective import compute_losses

    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({**get_config("tiny").to_dict(), "token_bounds": [24, 48],
                                 "image_shape": [48, 64]})
    model = UniHOI(cfg).eval()
    g = torch.Generator().manual_seed(1)
    b, c, f, h, w = 1, 2, 4, 48, 64
    batch = {
        "rgb": torch.rand(b, c, f, 3, h, w, generator=g),
        "flow_fwd": torch.zeros(b, c, f - 1, h, w, 2),
        "flow_bwd": torch.zeros(b, c, f - 1, h, w, 2),
        "valid_fwd": torch.ones(b, c, f - 1, h, w, dtype=torch.bool),
        "valid_bwd": torch.ones(b, c, f - 1, h, w, dtype=torch.bool),
        "teacher_depth": 1.0 + torch.rand(b, c, f, h, w, generator=g),
        "teacher_K": torch.tensor([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]).expand(b, c, 3, 3),
        "tracks_uv": torch.zeros(b, c, f, 4, 2),
        "tracks_visible": torch.zeros(b, c, f, 4, dtype=torch.bool),
        "static": torch.ones(b, c, f, h, w),
    }
    weights = {"shape": 1.0}
    with torch.no_grad():
        plain = compute_losses(model, batch, weights)["shape"]
        ones = compute_losses(model, {**batch, "teacher_weight": torch.ones(b, c, f, h, w)},
                              weights)["shape"]
        half = torch.ones(b, c, f, h, w)
        half[..., : h // 2, :] = 0.0
        a = compute_losses(model, {**batch, "teacher_weight": half}, weights)["shape"]
        moved = batch["teacher_depth"].clone()
        moved[..., : h // 2, :] *= 3.0
        a2 = compute_losses(model, {**batch, "teacher_depth": moved, "teacher_weight": half},
                            weights)["shape"]
        b2 = compute_losses(model, {**batch, "teacher_depth": moved}, weights)["shape"]
    torch.testing.assert_close(plain, ones)
    torch.testing.assert_close(a, a2, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(plain, b2, rtol=1e-3)
