"""Evaluation on real RGB-D layouts: 7-Scenes (official and tsdf-fusion copies; depth
registered into the colour camera) and TUM RGB-D (timestamps, 5000 per metre, Freiburg K)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unihoi_ros.cli import main as cli_main
from unihoi_ros.geometry import metrics
from unihoi_ros.geometry.registration import edge_alignment_cost, edge_points, project_depth_points
from unihoi_ros.io.ground_truth import (
    load_ground_truth,
    load_seven_scenes,
    match_repeated_streams,
    write_tum_trajectory,
)
from unihoi_ros.io.predictions import Predictions
from unihoi_ros.io.registration import SEVEN_SCENES, TUM_FREIBURG_K
from unihoi_ros.io.sources import SourceError, open_source

FIRST, COUNT = 300, 6


@pytest.fixture(scope="module")
def redkitchen(shared_dir):
    return shared_dir / "data" / "7scenes_redkitchen_300_699"


def official_layout(src, root, first=FIRST, count=COUNT):
    """``root/seq-01/frame-00000N.{color.png,depth.png,pose.txt}`` (the official 7-Scenes
    layout: colour as .png, numbering from 0, no camera-intrinsics.txt), symlinked."""
    seq = root / "seq-01"
    seq.mkdir(parents=True)
    for i in range(count):
        n = first + i
        # cv2 decodes by content: a JPEG behind a .png name reads the same
        (seq / f"frame-{i:06d}.color.png").symlink_to(src / f"frame-{n:06d}.color.jpg")
        (seq / f"frame-{i:06d}.depth.png").symlink_to(src / f"frame-{n:06d}.depth.png")
        (seq / f"frame-{i:06d}.pose.txt").symlink_to(src / f"frame-{n:06d}.pose.txt")
    return seq


def test_official_seven_scenes_layout_reads_as_the_colour_camera(redkitchen, tmp_path):
    seq = official_layout(redkitchen, tmp_path / "redkitchen")
    gt = load_ground_truth(seq)
    ref = load_seven_scenes(redkitchen, frames=slice(0, COUNT))
    # no intrinsics file: the published depth K (585, 320, 240) gives the same registration
    np.testing.assert_array_equal(gt.depth, ref.depth)
    np.testing.assert_allclose(gt.T_world_cam, ref.T_world_cam)
    np.testing.assert_array_equal(gt.K, SEVEN_SCENES.K_color)
    # colour poses: the depth camera's moved by the rig's baseline, 3 cm
    T_depth = np.loadtxt(redkitchen / f"frame-{FIRST:06d}.pose.txt")
    offset = np.linalg.norm(gt.T_world_cam[0, :3, 3] - T_depth[:3, 3])
    # (the files' rotations are orthonormal to about 1e-4)
    assert offset == pytest.approx(np.linalg.norm(SEVEN_SCENES.T_color_depth[:3, 3]), rel=1e-3)
    src = open_source(seq)
    assert src.kind == "7scenes" and src.num_frames == COUNT
    np.testing.assert_array_equal(src.K, SEVEN_SCENES.K_color)
    with pytest.raises(SourceError, match="seq-01"):  # the scene folder names its sequences
        load_ground_truth(tmp_path / "redkitchen")


def test_eval_scores_a_perfect_colour_camera_prediction_as_perfect(redkitchen, tmp_path):
    """``unihoi eval`` on the official layout: a prediction equal to the colour camera's
    truth scores 0, where the raw (unregistered) depth would have cost it several per cent
    abs_rel, and K is scored against the colour camera's (not the depth camera's 585)."""
    seq = official_layout(redkitchen, tmp_path / "redkitchen")
    gt = load_ground_truth(seq)
    n = len(gt.stamps_ns)
    pred = Predictions(gt.stamps_ns, gt.depth, np.repeat(gt.K[None], n, axis=0),
                       gt.T_world_cam, np.ones_like(gt.depth))
    (tmp_path / "run").mkdir()
    pred.save(tmp_path / "run" / "predictions.npz")
    assert cli_main(["eval", str(tmp_path / "run"), str(seq)]) == 0
    res = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert res["depth"]["abs_rel"] == 0.0 and res["depth"]["delta1"] == 1.0
    assert res["intrinsics"]["fx_rel_err"] == 0.0 and res["intrinsics"]["fy_rel_err"] == 0.0
    assert res["trajectory"]["ate"] < 1e-9
    # the raw depth image is another camera's: pixel by pixel it is off by several per cent
    raw = np.stack([cv2.imread(str(seq / f"frame-{i:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
                    for i in range(n)]) / 1000.0
    both = np.isfinite(gt.depth) & (raw > 0)
    assert metrics.abs_rel(gt.depth[both], raw[both]) > 0.03


def test_match_repeated_streams_pairs_frames_showing_the_same_moment():
    """Run starts (:func:`repeat_run_starts`) of two streams to colour -> depth indices."""
    n = np.arange(8)
    assert (match_repeated_streams(n, n) == n).all()  # no repeats: own index
    both = np.array([0, 1, 1, 3, 4, 5, 6, 7])  # both repeat frame 1 at index 2
    assert match_repeated_streams(both, both).tolist() == [0, 1, 1, 3, 4, 5, 6, 7]
    # colour repeats at 2, depth at 3: colour 2 shows moment 1, colour 3 shows depth 2's
    colour, depth = np.array([0, 1, 1, 3, 4, 5, 6, 7]), np.array([0, 1, 2, 2, 4, 5, 6, 7])
    assert match_repeated_streams(colour, depth).tolist() == [0, 1, 1, 2, 4, 5, 6, 7]
    # depth repeats first (2), colour at 3: colour 2 is ahead and shows depth 3's moment
    assert match_repeated_streams(depth, colour).tolist() == [0, 1, 3, 3, 4, 5, 6, 7]
    # a colour stream at half the rate: each repeat shows the frame before's moment
    half = np.array([0, 0, 2, 2, 4, 4, 6, 6])
    assert match_repeated_streams(half, n).tolist() == half.tolist()
    # a depth repeat with no colour partner: nothing to pair differently, own indices
    assert (match_repeated_streams(n, np.array([0, 1, 1, 3, 4, 5, 6, 7])) == n).all()
    with pytest.raises(ValueError, match="shapes"):
        match_repeated_streams(n, n[:-1])


def _contours_to_colour_edges(data, depth_n, colour_n):
    """Mean distance (px, cap 8) of depth frame ``depth_n``'s occluding contours, projected
    into the colour camera, to colour frame ``colour_n``'s Canny edges."""
    raw = cv2.imread(str(data / f"frame-{depth_n:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
    uv, z = edge_points(np.where(raw == 65535, 0, raw).astype(np.float32) / 1000.0)
    grey = cv2.cvtColor(cv2.imread(str(data / f"frame-{colour_n:06d}.color.jpg")),
                        cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.0), 40, 120)
    dist = cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 5)
    uv_c = project_depth_points(uv, z, SEVEN_SCENES.K_depth, SEVEN_SCENES.K_color,
                                SEVEN_SCENES.T_color_depth)[0]
    return edge_alignment_cost(uv_c, dist)


def test_seven_scenes_repeated_frames_get_the_truth_of_the_moment_they_show(redkitchen):
    """Colour 453 is byte-identical to 452 while depth 453 is new (depth repeats at 454):
    colour 453 gets frame 452's depth and pose. Colour 515 is new while depth 515 repeats
    514 (colour repeats at 516): colour 515 shows depth 516's moment. The depth contours
    chosen so lie closer to each image's colour edges than the frame's own (poses play
    no part in that check)."""
    for colour_n, depth_n in ((453, 452), (515, 516)):
        seg = slice(colour_n - 302, colour_n - 297)  # colour_n is the third of five
        gt = load_seven_scenes(redkitchen, frames=seg)
        own = load_seven_scenes(redkitchen, frames=seg, match_repeats=False)
        assert "frames given the depth and pose" in gt.source
        j = 2 + depth_n - colour_n
        np.testing.assert_array_equal(gt.depth[2], own.depth[j])
        np.testing.assert_array_equal(gt.T_world_cam[2], own.T_world_cam[j])
        assert (_contours_to_colour_edges(redkitchen, depth_n, colour_n)
                < _contours_to_colour_edges(redkitchen, colour_n, colour_n) - 0.5)
        # two frames on, both streams are in step again: the frame's own truth
        np.testing.assert_array_equal(gt.T_world_cam[4], own.T_world_cam[4])
        np.testing.assert_array_equal(gt.depth[4], own.depth[4])


def _write_png16(path, depth_m, scale):
    cv2.imwrite(str(path), np.round(depth_m * scale).astype(np.uint16))


def test_tum_rgbd_layout(tmp_path):
    """A tiny TUM RGB-D folder as the dataset lays it out: rgb.txt / depth.txt /
    groundtruth.txt with their own timestamps (motion capture at 100 Hz, depth a few ms off
    the colour frames), depth PNG at 5000 per metre, no intrinsics file: K is the Freiburg
    camera's named by the folder."""
    root = tmp_path / "rgbd_dataset_freiburg1_xyz"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    t0 = 1305031102.175304
    rgb_lines, depth_lines, depths = [], [], []
    for i in range(4):
        tr, td = t0 + i / 30, t0 + i / 30 + 0.004
        img = rng.integers(0, 255, (12, 16, 3), np.uint8)
        cv2.imwrite(str(root / "rgb" / f"{tr:.6f}.png"), img)
        d = rng.uniform(0.5, 3.0, (12, 16))
        d[0, 0] = 0.0
        depths.append(np.round(d * 5000) / 5000)
        _write_png16(root / "depth" / f"{td:.6f}.png", d, 5000)
        rgb_lines.append(f"{tr:.6f} rgb/{tr:.6f}.png")
        depth_lines.append(f"{td:.6f} depth/{td:.6f}.png")
    head = "# color images\n# file: 'rgbd_dataset_freiburg1_xyz.bag'\n# timestamp filename\n"
    (root / "rgb.txt").write_text(head + "\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text(head + "\n".join(depth_lines) + "\n")
    mocap = t0 - 0.05 + np.arange(30) / 100.0
    T = np.tile(np.eye(4), (30, 1, 1))
    T[:, 0, 3] = np.arange(30) * 0.01
    write_tum_trajectory(root / "groundtruth.txt", np.round(mocap * 1e9).astype(np.int64), T)
    gt = load_ground_truth(root)
    assert gt.depth.shape == (4, 12, 16)
    np.testing.assert_allclose(gt.depth, np.stack(depths), atol=1e-6)
    assert gt.depth[0, 0, 0] == 0.0
    np.testing.assert_array_equal(gt.K, TUM_FREIBURG_K[1])
    # nearest motion-capture pose: frame i at t0 + i/30 -> sample round((0.05 + i/30) * 100)
    expect = [round((0.05 + i / 30) * 100) for i in range(4)]
    np.testing.assert_allclose(gt.T_world_cam[:, 0, 3], np.array(expect) * 0.01, atol=1e-9)
    src = open_source(root)
    assert src.kind == "tum" and src.num_frames == 4
    np.testing.assert_array_equal(src.K, TUM_FREIBURG_K[1])


# ---------------------------------------------------------------------------- benchmark
@pytest.fixture
def one_thread():
    """torch on one thread (two oversubscribe a shared 2-core machine: 5x slower here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_real_benchmark_core(redkitchen, one_thread):
    """evaluate_real on two 6-frame segments at 60x80: the oracle variant's depth is the
    registered truth (abs_rel near 0) and its K the colour camera's (fx error 0); the model
    with the colour K scores fx 0 too; every number of the table is there; a model compared
    with itself has no regression, and a worse one is named."""
    from unihoi_ros.backends.factory import load_backend
    from unihoi_ros.evaluation_real import (
        COLUMNS,
        RealBenchConfig,
        evaluate_real,
        format_real_table,
        real_regressions,
        segment_starts,
    )

    cfg = RealBenchConfig(data=redkitchen, segments=2, segment_frames=6, process_size=(60, 80))
    res = evaluate_real(lambda: load_backend("random:tiny", "torch", "cpu"), cfg,
                        progress=False)
    assert res["settings"]["start_frames"] == [300, 694]
    oracle = res["variants"]["oracle"]["mean"]
    assert oracle["abs_rel"] < 0.05 and oracle["fx_rel"] == 0.0 and oracle["fy_rel"] == 0.0
    assert res["variants"]["model_known_K"]["mean"]["fx_rel"] == 0.0
    assert res["variants"]["model"]["mean"]["fx_rel"] > 0.0  # predicted by an untrained net
    for v in res["variants"].values():
        assert len(v["segments"]) == 2
        for key, _, _ in COLUMNS:
            assert np.isfinite(v["mean"][key]), key
        assert 0.0 <= v["mean"]["dynamic_rows"] <= 1.0
        m = v["mean"]
        assert m["ate_vs_line"] == pytest.approx(
            np.mean([s["ate_pct"] / s["line_ate_pct"] for s in v["segments"]]))
    table = format_real_table(res)
    assert "| 300-305 |" in table and "| mean |" in table and "**oracle**" in table
    assert real_regressions(res, res) == []
    worse = json.loads(json.dumps(res))
    worse["variants"]["model"]["mean"]["ate_pct"] *= 1.2
    assert len(real_regressions(worse, res)) == 1
    # Held-out segments alone: the others are not run, the ones run score the same.
    tail = evaluate_real(None, RealBenchConfig(data=redkitchen, segments=2, segment_frames=6,
                                               process_size=(60, 80), segments_from=1,
                                               variants=("oracle",)), progress=False)
    assert tail["settings"]["start_frames"] == [694]
    for key in ("ate_pct", "abs_rel", "rpe_trans_mm"):
        assert tail["variants"]["oracle"]["segments"][0][key] == pytest.approx(
            res["variants"]["oracle"]["segments"][1][key], rel=1e-9), key
    assert segment_starts(400, 8, 50) == list(range(0, 400, 50))
    assert segment_starts(10, 3, 4) == [0, 3, 6]


def test_release_refuses_a_model_worse_on_real_video(tmp_path, monkeypatch):
    """release(): the real-video gate runs before anything is copied and refuses a
    regression (the gate itself is monkeypatched: its core is tested above)."""
    from unihoi_ros.model import UniHOI, save_pretrained
    from unihoi_ros.model.bundled import WEIGHTS_DIR
    from unihoi_ros.train import release as rel

    run = tmp_path / "run"
    run.mkdir()
    save_pretrained(UniHOI.from_size("tiny"), run / "model", provenance="test")
    # The provenance is read first: a run without its record fails before the gate.
    (run / "summary.json").write_text(json.dumps({"steps": 1, "wall_time_s": 1.0}))
    (run / "config.yaml").write_text("")
    calls = []

    def fake_check(model, reference, *a, **k):
        calls.append(reference)
        return {"regressions": ["model ate_pct: 5.0 vs previous 4.0"],
                "previous_weights": str(reference)}

    monkeypatch.setattr(rel, "real_check", fake_check)
    name = "unihoi-test-refused"
    with pytest.raises(rel.ReleaseRefused, match="ate_pct"):
        rel.release(run, name, previous=tmp_path / "prev.safetensors")
    assert calls == [tmp_path / "prev.safetensors"]
    assert not (WEIGHTS_DIR / f"{name}.safetensors").exists()
    assert rel.main([str(run), "--name", name, "--previous", str(tmp_path / "p.st")]) == 2


def test_held_out_segments_of_a_model_trained_on_the_recording(tmp_path):
    """``frames_trained_on`` reads an adapted model's recordings; ``segments_from_frame``
    keeps the segments from a file frame number on and recomputes their means."""
    from unihoi_ros.evaluation_real import frames_trained_on, segments_from_frame

    recs = [{"path": str(tmp_path / "other"), "train_frames": [0, 9]},
            {"path": str(tmp_path / "."), "train_frames": [0, 300]}]
    assert frames_trained_on(recs, tmp_path) == 300
    assert frames_trained_on(recs[:1], tmp_path) is None
    # a record without the split: all its frames count as trained on (nothing held out)
    assert frames_trained_on([{"path": str(tmp_path), "frames": 400}], tmp_path) == 400
    rows = [{"start_frame": f, "ate_pct": a} for f, a in ((500, 9.0), (600, 2.0), (650, 4.0))]
    result = {"settings": {}, "variants": {"model": {"segments": rows, "mean": {}}}}
    held = segments_from_frame(result, 600)["variants"]["model"]
    assert [r["start_frame"] for r in held["segments"]] == [600, 650]
    assert held["mean"]["ate_pct"] == pytest.approx(3.0)
    assert segments_from_frame(result, 700)["variants"] == {}
