"""Offline readers, `unihoi process` / `unihoi eval` outputs, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.cli import main as cli_main
from unihoi_ros.evaluation import evaluate
from unihoi_ros.flow import GroundTruthFlow
from unihoi_ros.geometry import metrics
from unihoi_ros.io import load_run, write_run
from unihoi_ros.io.ground_truth import (
    load_ground_truth,
    read_tum_trajectory,
    write_sequence_npz,
    write_sequence_tum,
    write_tum_trajectory,
)
from unihoi_ros.io.ply import read_ply, write_ply
from unihoi_ros.io.predictions import Predictions
from unihoi_ros.io.sources import SourceError, open_source
from unihoi_ros.offline import OutputExistsError, prepare_output_dir, process_source
from unihoi_ros.pipeline import OracleBackend, Reconstructor
from unihoi_ros.pipeline.fusion import voxel_downsample
from unihoi_ros.sim import make_sequence


@pytest.fixture(scope="module")
def clip():
    return make_sequence(seed=11, num_frames=12, height=48, width=64)


def write_image_bag(path: Path, seq, topic="/cam/image_raw", compressed=False, sizes=None):
    """A rosbag2 MCAP written with rosbags from a synthetic clip (independent of our writer)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from unihoi_ros.ros import messages as m

    ts = m.get_typestore()
    msgtype = m.COMPRESSED_IMAGE if compressed else m.IMAGE
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, msgtype, typestore=ts)
        for i, (stamp, rgb) in enumerate(zip(seq.stamps_ns, seq.rgb)):
            if sizes is not None:
                rgb = cv2.resize(rgb, sizes[i % len(sizes)])
            msg = (m.rgb_to_compressed(rgb, int(stamp), "cam", fmt="png") if compressed
                   else m.rgb_to_image(rgb, int(stamp), "cam"))
            w.write(conn, int(stamp), ts.serialize_cdr(msg, msgtype))


def stream_directly(seq):
    rec = Reconstructor(OracleBackend(seq), GroundTruthFlow(seq))
    for s, f in zip(seq.stamps_ns, seq.rgb):
        rec.push(int(s), f)
    return rec.flush()


# ---------------------------------------------------------------------------- readers
def test_tum_round_trip(tmp_path, clip):
    write_sequence_tum(clip, tmp_path / "tum")
    src = open_source(tmp_path / "tum")
    assert src.kind == "tum" and src.num_frames == len(clip.rgb)
    frames = list(src)
    np.testing.assert_array_equal(np.stack([f for _, f in frames]), clip.rgb)
    assert [s for s, _ in frames] == [int(s) for s in clip.stamps_ns]
    gt = load_ground_truth(tmp_path / "tum")
    np.testing.assert_allclose(gt.T_world_cam, clip.T_world_cam, atol=1e-8)
    np.testing.assert_allclose(gt.depth, clip.depth, atol=0.5 / 5000)  # 16-bit quantisation
    np.testing.assert_allclose(gt.K, clip.K)


def test_tum_trajectory_format(tmp_path):
    rng = np.random.default_rng(1)
    from scipy.spatial.transform import Rotation

    T = np.tile(np.eye(4), (5, 1, 1))
    T[:, :3, :3] = Rotation.random(5, random_state=2).as_matrix()
    T[:, :3, 3] = rng.normal(size=(5, 3))
    stamps = np.arange(5, dtype=np.int64) * 33_333_333 + 1_700_000_000_000_000_000
    write_tum_trajectory(tmp_path / "t.txt", stamps, T)
    line = (tmp_path / "t.txt").read_text().splitlines()[1].split()
    assert len(line) == 8  # timestamp tx ty tz qx qy qz qw
    s2, T2 = read_tum_trajectory(tmp_path / "t.txt")
    np.testing.assert_allclose(T2, T, atol=1e-8)
    np.testing.assert_array_equal(s2, stamps)  # exact, also at epoch scale


def test_seven_scenes_reader(shared_dir):
    path = shared_dir / "data" / "7scenes_redkitchen_440_469"
    src = open_source(path)
    assert src.kind == "7scenes" and src.num_frames == 30
    stamp, rgb = next(iter(src))
    assert rgb.shape == (480, 640, 3) and stamp == round(440 * 1e9 / 30)
    ref = cv2.cvtColor(cv2.imread(str(path / "frame-000440.color.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(rgb, ref)
    gt = load_ground_truth(path)
    assert gt.T_world_cam.shape == (30, 4, 4) and gt.depth.shape == (30, 480, 640)
    # the colour camera's ground truth: poses, depth registered into it, its K
    from unihoi_ros.io.registration import SEVEN_SCENES

    T_depth = np.loadtxt(path / "frame-000440.pose.txt")
    np.testing.assert_allclose(gt.T_world_cam[0] @ SEVEN_SCENES.T_color_depth, T_depth,
                               atol=1e-12)
    raw = cv2.imread(str(path / "frame-000440.depth.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(gt.depth[0], SEVEN_SCENES.register(raw / 1000.0))
    np.testing.assert_array_equal(gt.K, SEVEN_SCENES.K_color)
    np.testing.assert_array_equal(src.K, SEVEN_SCENES.K_color)  # the frames' K, not 585
    motion = np.linalg.norm(gt.T_world_cam[-1, :3, 3] - gt.T_world_cam[0, :3, 3])
    assert 0.2 < motion < 0.6  # README: about 0.39 m over the 30 frames


def test_folder_and_video_readers(tmp_path, clip):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(clip.rgb[:5]):
        cv2.imwrite(str(folder / f"img_{i * 10}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    src = open_source(folder, fps=10)
    got = list(src)
    np.testing.assert_array_equal(np.stack([f for _, f in got]), clip.rgb[:5])
    assert [s for s, _ in got] == [i * 100_000_000 for i in range(5)]
    video = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for f in clip.rgb:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    vsrc = open_source(video)
    frames = [f for _, f in vsrc]
    assert vsrc.kind == "video" and len(frames) == len(clip.rgb)
    assert np.abs(frames[3].astype(int) - clip.rgb[3]).mean() < 12  # MJPG is lossy


def test_bag_reader_autodetects_topic(tmp_path, clip):
    write_image_bag(tmp_path / "bag", clip)
    src = open_source(tmp_path / "bag")
    assert src.kind == "rosbag2" and "/cam/image_raw" in src.description
    np.testing.assert_array_equal(np.stack([f for _, f in src]), clip.rgb)
    write_image_bag(tmp_path / "cbag", clip, compressed=True)
    frames = [f for _, f in open_source(tmp_path / "cbag")]
    np.testing.assert_array_equal(np.stack(frames), clip.rgb)  # PNG is lossless


# ---------------------------------------------------------------------------- process
def test_process_bag_reproduces_streaming_results(tmp_path, clip):
    write_image_bag(tmp_path / "in", clip)
    out = tmp_path / "out"
    prepare_output_dir(out, force=False)
    rec = Reconstructor(OracleBackend(clip), GroundTruthFlow(clip))
    results = process_source(open_source(tmp_path / "in"), rec, out, progress=False)
    direct = stream_directly(clip)
    assert len(results) == len(direct) == len(clip.rgb)
    for a, b in zip(results, direct):
        assert a.stamp_ns == b.stamp_ns
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.T_world_cam, b.T_world_cam)
    for name in ("cloud.ply", "trajectory_tum.txt", "frames.json", "summary.png",
                 "report.json", "tracks.npz", "tracks.csv", "tracks.png",
                 "depth/000000.png", "confidence/000011.png"):
        assert (out / name).is_file(), name
    assert not (out / "predictions.npz").exists()
    stored = load_run(out)  # what unihoi eval reads: the results, depth to the millimetre
    np.testing.assert_array_equal(stored.T_world_cam, np.stack([r.T_world_cam for r in direct]))
    np.testing.assert_array_equal(stored.K, np.stack([r.K for r in direct]))
    assert np.nanmax(np.abs(stored.depth - np.stack([r.depth for r in direct]))) <= 5e-4 + 1e-6
    # Tracks: the CSV a planner reads holds what the npz holds; ids persist over frames.
    from unihoi_ros.io.tracks_io import CSV_HEADER, load_tracks

    tracks = load_tracks(out / "tracks.npz")
    lines = (out / "tracks.csv").read_text().splitlines()
    assert lines[0] == CSV_HEADER and len(lines) - 1 == len(tracks["id"]) > 0
    row = lines[1].split(",")
    assert int(row[2]) == tracks["id"][0] and float(row[3]) == pytest.approx(
        tracks["xyz"][0, 0], abs=1e-6)
    assert set(tracks["frame"].tolist()) == set(range(len(clip.rgb)))
    first, last = (set(tracks["id"][tracks["frame"] == f].tolist())
                   for f in (0, len(clip.rgb) - 1))
    assert len(first & last) >= 0.3 * len(first), (len(first), len(first & last))
    # The output bag opens with rosbags and with the mcap reader and holds every frame.
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    with AnyReader([out / "bag"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        depth_conn = [c for c in reader.connections if c.topic == "/unihoi/depth/image"]
        stamps = [reader.deserialize(raw, c.msgtype).header.stamp
                  for c, _, raw in reader.messages(connections=depth_conn)]
    n = len(clip.rgb)
    for topic in ("/unihoi/image/compressed", "/unihoi/depth/image", "/unihoi/depth/camera_info",
                  "/unihoi/confidence/image", "/unihoi/points", "/unihoi/pose",
                  "/unihoi/tracks", "/tf"):
        assert counts[topic] == n, topic
    assert counts["/unihoi/trajectory"] == 1  # the whole Path once, at the end
    assert [s.sec * 10**9 + s.nanosec for s in stamps] == [int(s) for s in clip.stamps_ns]
    mcap_file = next((out / "bag").glob("*.mcap"))
    with open(mcap_file, "rb") as f:
        msgs = sum(1 for _ in make_reader(f).iter_messages())
    assert msgs == sum(counts.values())
    report = json.loads((out / "report.json").read_text())
    assert report["frames_out"] == n and report["reconstructor"]["counts"]["frames_in"] == n


def test_summary_png_is_a_real_picture(tmp_path, clip):
    out = tmp_path / "o"
    out.mkdir()
    rec = Reconstructor(OracleBackend(clip), GroundTruthFlow(clip))
    process_source(open_source(_tum(tmp_path, clip)), rec, out, progress=False,
                   write_bag=False)
    img = cv2.imread(str(out / "summary.png"))
    assert img is not None and img.shape[0] >= 500 and img.shape[1] >= 1000
    # Every column band of the figure (the sampled frames and the top view) has content.
    bands = np.array_split(img, 7, axis=1)
    assert all(b.std() > 10 for b in bands), [round(float(b.std()), 1) for b in bands]


def _tum(tmp_path, seq) -> Path:
    path = tmp_path / "tum"
    if not path.exists():
        write_sequence_tum(seq, path)
    return path


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("data")
    with pytest.raises(OutputExistsError):
        prepare_output_dir(out, force=False)
    prepare_output_dir(out, force=True)
    assert not (out / "keep.txt").exists()


def test_ply_round_trip_and_voxel_downsample(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    write_ply(tmp_path / "c.ply", pts, cols)
    p2, c2 = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(p2, pts)
    np.testing.assert_array_equal(c2, cols)
    down, _dcol = voxel_downsample(pts.astype(np.float64), cols, 0.5)
    keys = np.unique(np.floor(pts / 0.5).astype(int), axis=0)
    assert len(down) == len(keys) <= 8
    for k in keys:  # each output is the mean of its voxel's points
        inside = (np.floor(pts / 0.5).astype(int) == k).all(axis=1)
        assert np.isclose(down, pts[inside].mean(axis=0), atol=1e-5).all(axis=1).any()


# ---------------------------------------------------------------------------- eval
def test_eval_equals_metrics_module(tmp_path, clip, capsys):
    out = tmp_path / "pred"
    out.mkdir()
    seq = make_sequence(seed=12, num_frames=10, height=48, width=64)
    rec = Reconstructor(OracleBackend(seq), GroundTruthFlow(seq))
    # Perturb the oracle so the numbers are not trivially zero.
    results = process_source(open_source(_tum(tmp_path, seq)), rec, out, progress=False,
                             write_bag=False)
    pred = load_run(out)
    pred.depth *= 1.1
    pred.T_world_cam[:, :3, 3] += np.linspace(0, 0.01, len(results))[:, None]
    write_run(out, pred)
    pred = load_run(out)  # what eval reads (depth to the millimetre)
    write_sequence_npz(seq, tmp_path / "gt.npz")
    assert cli_main(["eval", str(out), str(tmp_path / "gt.npz")]) == 0
    got = json.loads((out / "eval.json").read_text())
    assert got["trajectory"]["ate"] == pytest.approx(
        metrics.ate(pred.T_world_cam, seq.T_world_cam, align="sim3"), rel=1e-9)
    assert got["trajectory"]["rpe_rot_deg"] == pytest.approx(
        metrics.rpe(pred.T_world_cam, seq.T_world_cam, align="sim3").rot_deg, rel=1e-9)
    assert got["depth"]["abs_rel"] == pytest.approx(
        metrics.abs_rel(pred.depth, seq.depth), rel=1e-6)
    assert got["depth"]["abs_rel"] == pytest.approx(0.1, abs=1e-3)  # stored to the mm
    assert got["depth"]["delta1"] == pytest.approx(metrics.delta1(pred.depth, seq.depth))
    assert (out / "eval.png").is_file()
    printed = capsys.readouterr().out
    assert "ATE" in printed
    assert "median-scaled" in printed and "constant-velocity baseline" in printed
    assert "K fx, fy" in printed and "K principal pt" in printed
    # The oracle's K is exact: the K lines report zero error.
    assert got["intrinsics"]["fx_rel_err"] == pytest.approx(0.0, abs=1e-9)
    assert got["baseline_constant_velocity"]["ate_pct_path"] > 0
    direct = evaluate(pred, load_ground_truth(tmp_path / "gt.npz"))
    assert direct.to_dict()["trajectory"] == got["trajectory"]  # eval.json is to_dict()


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_fail_clearly(tmp_path, clip, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(tmp_path / "junk.mp4")
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "missing")
    # A bag without image topics.
    from rosbags.rosbag2 import StoragePlugin, Writer

    from unihoi_ros.ros import messages as m

    ts = m.get_typestore()
    with Writer(tmp_path / "noimg", version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/tf", m.TF_MESSAGE, typestore=ts)
        w.write(conn, 1, ts.serialize_cdr(m.tf_msg([]), m.TF_MESSAGE))
    with pytest.raises(SourceError, match=r"no sensor_msgs/Image"):
        open_source(tmp_path / "noimg")
    # Mixed resolutions: process stops with a clear error, the partial bag is closed.
    write_image_bag(tmp_path / "mixed", clip, sizes=[(64, 48), (80, 60)])
    out = tmp_path / "mixed_out"
    out.mkdir()
    rec = Reconstructor(OracleBackend(clip), GroundTruthFlow(clip))
    with pytest.raises(SourceError, match="mixed resolutions"):
        process_source(open_source(tmp_path / "mixed"), rec, out, progress=False)
    from rosbags.highlevel import AnyReader

    with AnyReader([out / "bag"]) as reader:  # readable: metadata written on close
        assert any(c.topic == "/unihoi/depth/image" for c in reader.connections)
    # CLI: clear message and a non-zero exit.
    assert cli_main(["process", str(tmp_path / "junk.mp4"), "-o", str(tmp_path / "o2")]) == 1
    assert "cannot open video" in capsys.readouterr().err


class ConstantBackend(Backend):
    """Constant depth, a 60-degree K and full confidence: for inputs the oracle cannot know."""

    name, device, num_frames = "constant", "cpu", 4

    def encode(self, rgb):
        return rgb.shape[:2]

    def infer_window(self, features, rgbs, flows):
        h, w = features[0]
        f = w / (2 * np.tan(np.radians(30)))
        K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
        return WindowPrediction(np.ones((4, h, w), np.float32), K,
                                np.ones((3, h, w), np.float32))


def test_video_that_ends_early(tmp_path, clip):
    video = tmp_path / "v.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for _ in range(4):
        for f in clip.rgb:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3])  # header still claims every frame
    src = open_source(video)
    out = tmp_path / "o"
    out.mkdir()
    from unihoi_ros.flow import DISFlow

    rec = Reconstructor(ConstantBackend(), DISFlow())
    with pytest.raises(SourceError, match=r"ended early|no decodable"):
        process_source(src, rec, out, progress=False, write_bag=False)


def test_pointcloud_metrics_are_similarity_invariant():
    """Exact geometry up to a Sim(3) (scaled depth and poses) scores a perfect cloud."""
    seq = make_sequence(seed=13, num_frames=6, height=48, width=64)
    s = 1.7
    T = np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam
    T[:, :3, 3] *= s
    pred = Predictions(seq.stamps_ns, seq.depth * s, np.repeat(seq.K[None], 6, 0), T,
                       np.ones_like(seq.depth))
    gt = load_ground_truth_from_seq(seq)
    out = evaluate(pred, gt)
    assert out.pointcloud.alignment_scale == pytest.approx(1 / s, rel=1e-6)
    assert out.pointcloud.chamfer < 2e-3
    assert out.pointcloud.fscore[0.01] > 0.95
    assert out.baseline_pointcloud.chamfer > 5 * out.pointcloud.chamfer


def test_evaluate_reports_intrinsics_unscaled_depth_and_constant_velocity():
    """Exact poses, depth 1.3x too far and a perturbed K: known numbers in every block."""
    seq = make_sequence(seed=13, num_frames=6, height=48, width=64)
    T = np.linalg.inv(seq.T_world_cam[0]) @ seq.T_world_cam
    K = np.repeat(seq.K[None], 6, 0)
    K[:, 0, 0] *= 0.8  # fx 20 % short
    K[:, 1, 2] += 3.0  # cy 3 px low
    pred = Predictions(seq.stamps_ns, seq.depth * 1.3, K, T, np.ones_like(seq.depth))
    out = evaluate(pred, load_ground_truth_from_seq(seq))
    k = out.intrinsics
    assert k.fx_rel_err == pytest.approx(0.2, abs=1e-12)
    assert k.fx_ratio == pytest.approx(0.8, abs=1e-12)
    assert k.fy_rel_err == pytest.approx(0.0, abs=1e-12)
    assert k.cx_err_px == pytest.approx(0.0, abs=1e-12)
    assert k.cy_err_px == pytest.approx(3.0, abs=1e-12)
    assert k.pp_err_frac == pytest.approx(3.0 / 48, abs=1e-12)
    assert not k.gt_size_assumed
    centred = out.baseline_centred_principal_point
    assert centred.cx_err_px == pytest.approx(abs(seq.K[0, 2] - 31.5), abs=1e-12)
    # Unscaled depth is judged as predicted; median scaling hides the 1.3x.
    assert out.depth.abs_rel == pytest.approx(0.3, rel=1e-5)
    assert out.depth.median_scaled.abs_rel < 1e-5
    # Exact poses: zero ATE; the constant-velocity line does not follow the sim's path.
    tr, cv = out.trajectory, out.baseline_constant_velocity
    assert tr.ate_pct_path < 1e-6
    assert cv.ate_pct_path == pytest.approx(100 * cv.ate / out.gt_path_length_m)
    assert cv.ate_pct_path > 1.0
    # A prediction at half the size: K is rescaled to the ground truth's pixels first.
    small = np.repeat(np.array([[seq.K[0, 0] / 2, 0, (seq.K[0, 2] + 0.5) / 2 - 0.5],
                                [0, seq.K[1, 1] / 2, (seq.K[1, 2] + 0.5) / 2 - 0.5],
                                [0, 0, 1]])[None], 6, 0)
    half = Predictions(seq.stamps_ns, seq.depth[:, ::2, ::2], small, T,
                       np.ones_like(seq.depth[:, ::2, ::2]))
    k = evaluate(half, load_ground_truth_from_seq(seq)).intrinsics
    assert k.fx_rel_err < 1e-12 and k.pp_err_frac < 1e-12


def load_ground_truth_from_seq(seq):
    from unihoi_ros.io.ground_truth import GroundTruth

    return GroundTruth(seq.stamps_ns, seq.T_world_cam, seq.depth, seq.K)


def test_sqlite3_bag_is_read_too(tmp_path, clip):
    """rosbag2's older default storage (Humble bags recorded without -s mcap)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from unihoi_ros.ros import messages as m

    ts = m.get_typestore()
    with Writer(tmp_path / "db", version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection("/cam/image", m.IMAGE, typestore=ts)
        for stamp, rgb in zip(clip.stamps_ns, clip.rgb):
            w.write(conn, int(stamp), ts.serialize_cdr(m.rgb_to_image(rgb, int(stamp), "c"),
                                                       m.IMAGE))
    assert any((tmp_path / "db").glob("*.db3"))
    frames = list(open_source(tmp_path / "db"))
    np.testing.assert_array_equal(np.stack([f for _, f in frames]), clip.rgb)
    assert [s for s, _ in frames] == [int(s) for s in clip.stamps_ns]
