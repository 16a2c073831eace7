"""Offline depth refinement from a recording's own multi-view geometry, on a synthetic
clip with exact depth: a network depth with a wrong shape is corrected where the geometry
measures it, and keeps its metric scale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from unihoi_ros.geometry.camera import scale_intrinsics
from unihoi_ros.geometry.multiview import RefineSettings
from unihoi_ros.multiview_depth import refine_depths
from unihoi_ros.sim import make_sequence


@pytest.fixture(scope="module")
def clip():
    # Three times the usual head motion and few hands: parallax between frames 6 apart.
    return make_sequence(3, 13, 240, 320, motion_speed=3.0, dynamic_fraction=(0.02, 0.05))


def _half(images, interpolation):
    return np.stack([cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2),
                                interpolation=interpolation) for x in images])


def _abs_rel(est, true, mask, scaled):
    s = np.median(true[mask] / est[mask]) if scaled else 1.0
    return float(np.mean(np.abs(s * est[mask] - true[mask]) / true[mask]))


def test_refinement_corrects_shape_and_keeps_the_scale(clip):
    """Depth at 120x160, triangulated at 240x320 (as ``geometry_frames``). Measured: 75 %
    of the static pixels measured, their median-scaled abs_rel 0.038 against the
    network's 0.130, the scale 1.24x the truth's against the network's 1.3x."""
    frames = _half(clip.rgb, cv2.INTER_AREA)
    truth = _half(clip.depth, cv2.INTER_NEAREST)
    static = ~_half(clip.dynamic.astype(np.uint8), cv2.INTER_NEAREST).astype(bool) & (truth > 0)
    K = scale_intrinsics(clip.K, clip.depth.shape[1:], truth.shape[1:])
    n, _, w = truth.shape
    # A "network" depth 1.3x too far, with a shape error: a ramp of +-25 % across the image.
    ramp = 1.0 + 0.25 * np.linspace(-1, 1, w)[None, None, :]
    network = (1.3 * truth * ramp).astype(np.float32)
    refined, geometric = refine_depths(frames, network, K, clip.rgb,
                                       settings=RefineSettings(offset=6, fuse_radius=1))
    assert refined.shape == network.shape and refined.dtype == np.float32
    # Where the geometry measured, its depth is the truth's shape; elsewhere the network's.
    np.testing.assert_array_equal(refined[~geometric], network[~geometric])
    assert geometric[static].mean() > 0.6
    before = np.mean([_abs_rel(network[i], truth[i], static[i], True) for i in range(n)])
    after = np.mean([_abs_rel(refined[i], truth[i], static[i] & geometric[i], True)
                     for i in range(n)])
    assert before > 0.1 and after < 0.4 * before
    # The scale is anchored to the network's: the refined depth is ~1.3x the truth too.
    ratio = np.median(refined[static & geometric] / truth[static & geometric])
    assert ratio == pytest.approx(1.3, rel=0.1)


def test_refinement_shares_its_flows_with_the_pose_graph(clip):
    """``unihoi process --refine-depth`` gives one :class:`PairFlows` to the refinement and
    the graph: the same depth and poses to the bit as each with its own, and the graph's
    pairs one frame apart come from the refinement's cache."""
    from unihoi_ros.geometry.multiview import PairFlows
    from unihoi_ros.geometry.pose_graph import pose_graph_poses

    frames, K = clip.rgb[:8], clip.K
    network = (1.3 * clip.depth[:8]).astype(np.float32)
    settings = RefineSettings(offset=3, fuse_radius=1)
    alone, geo_alone = refine_depths(frames, network, K, settings=settings)
    shared = PairFlows(frames)
    depth, geometric = refine_depths(frames, network, K, settings=settings, flows=shared)
    np.testing.assert_array_equal(depth, alone)
    np.testing.assert_array_equal(geometric, geo_alone)
    cached = {i: f for i, f in shared._cache.items()}
    assert sorted(cached) == list(range(1, len(frames)))  # every consecutive flow
    confidence = np.ones_like(depth)
    poses, placed = pose_graph_poses(frames, depth, K, confidence, flows=shared)
    own_poses, own_placed = pose_graph_poses(frames, depth, K, confidence)
    np.testing.assert_array_equal(poses, own_poses)
    np.testing.assert_array_equal(placed, own_placed)
    assert all(shared._cache[i] is f for i, f in cached.items())  # read, not recomputed
    with pytest.raises(ValueError, match="flows are of frames"):
        refine_depths(frames, network, K, settings=settings, flows=PairFlows(frames[:4]))


def test_refinement_rejects_mismatched_inputs(clip):
    with pytest.raises(ValueError, match="differ in size"):
        refine_depths(clip.rgb, clip.depth[:, :-1], clip.K)
    with pytest.raises(ValueError, match="differ in length"):
        refine_depths(clip.rgb, clip.depth, clip.K, geometry_frames=clip.rgb[:-1])


def test_process_refine_depth_end_to_end(tmp_path, shared_dir):
    """``unihoi process --refine-depth --K dataset`` on 30 real 7-Scenes frames: the run
    says what it refined, keeps the known K, and its depth is closer to the registered true
    depth than the plain run's where the geometry measured it (median-scaled abs_rel;
    measured 0.079 against 0.122 on 65 % of the pixels, with the pairs 14 apart on 30
    frames; whole frames 0.108 against 0.132), and draws what it changed. These frames
    are in the bundled model's training part, so the network is at its best here."""
    from unihoi_ros.cli import main as cli_main
    from unihoi_ros.io.ground_truth import load_seven_scenes
    from unihoi_ros.io.run_layout import load_run

    data = shared_dir / "data" / "7scenes_redkitchen_440_469"
    common = [str(data), "--K", "dataset", "--no-bag", "--no-progress"]  # at 320x240
    assert cli_main(["process", *common, "-o", str(tmp_path / "plain")]) == 0
    assert cli_main(["process", *common, "-o", str(tmp_path / "refined"),
                     "--refine-depth"]) == 0
    import json

    report = json.loads((tmp_path / "refined" / "report.json").read_text())
    refinement = report["depth_refinement"]
    assert refinement["pairs"] == "DIS medium" and refinement["geometry_size"] == [480, 640]
    assert refinement["poses"] == "pose graph, pairs 1, 4, 16 frames apart"
    assert refinement["measured_fraction"] > 0.05
    plain, refined = load_run(tmp_path / "plain"), load_run(tmp_path / "refined")
    np.testing.assert_allclose(refined.K, plain.K, rtol=1e-6)  # the known K, both runs
    gt = load_seven_scenes(data)
    truth = np.stack([cv2.resize(d, (320, 240), interpolation=cv2.INTER_NEAREST)
                      for d in gt.depth])
    changed = np.abs(refined.depth - plain.depth) > 1e-3
    assert 0.05 < changed.mean() < 0.9
    errors = {}
    for name, run in (("plain", plain), ("refined", refined)):
        errors[name] = np.mean([_abs_rel(run.depth[i], truth[i],
                                         changed[i] & (truth[i] > 0) & np.isfinite(truth[i]),
                                         True)
                                for i in range(len(truth)) if changed[i].sum() > 100])
    assert errors["refined"] < 0.8 * errors["plain"], errors
    assert refinement["offset"] == 14  # 30 frames: (30 - 1) // 2
    outputs = report["outputs"]  # the picture is one of the run's pictures, not per frame
    pictures = sum(outputs["by_entry"][p] for p in ("summary.png", "tracks.png",
                                                    "refinement.png"))
    assert outputs["bytes_per_frame_without_pictures"] * report["frames_out"] == \
        pytest.approx(outputs["bytes"] - pictures)
    picture = cv2.imread(str(tmp_path / "refined" / "refinement.png"))
    assert picture is not None and picture.shape[1] >= 1000
    # Every sampled frame's column band has content.
    assert all(b.std() > 10 for b in np.array_split(picture, 5, axis=1))


def test_process_refine_depth_bad_arguments(tmp_path, shared_dir, capsys):
    """``--raft-weights`` or ``--no-pose-graph`` without ``--refine-depth`` is a usage
    error; a missing checkpoint
    stops one input and a batch before any output folder exists (no marker, no work)."""
    from unihoi_ros.cli import main as cli_main

    data = str(shared_dir / "data" / "7scenes_redkitchen_440_469")
    other = tmp_path / "other"  # a second input: a batch
    other.mkdir()
    (other / "frame-000000.color.jpg").symlink_to(Path(data) / "frame-000440.color.jpg")
    missing = str(tmp_path / "raft-small.pth")
    assert cli_main(["process", data, "-o", str(tmp_path / "a"), "--raft-weights",
                     missing]) == 2
    assert "needs --refine-depth" in capsys.readouterr().err
    assert cli_main(["process", data, "-o", str(tmp_path / "b"), "--no-pose-graph"]) == 2
    assert "--no-pose-graph needs --refine-depth" in capsys.readouterr().err
    for inputs, out in (([data], tmp_path / "c"), ([data, str(other)], tmp_path / "d")):
        assert cli_main(["process", *inputs, "-o", str(out), "--refine-depth",
                         "--raft-weights", missing, "--no-progress"]) == 1
        assert "not found" in capsys.readouterr().err
        assert not out.exists()


# Two real inputs, small and short (the refinement at 240x320, 12 frames each) with the
# dataset K. One thread: torch's default two spin against each other and anything else on
# a loaded 2-core machine (10x slower measured).
FAST_REFINE = ["--K", "dataset", "--no-bag", "--no-progress", "--process-size", "120x160",
               "--max-frames", "12", "--threads", "1"]


def _process(argv: list[str]) -> int:
    """``unihoi process ...`` in this process, torch's and OpenCV's threads kept (a batch
    sets both for the process)."""
    import torch

    from unihoi_ros.cli import main as cli_main

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        return cli_main(["process", *argv])
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


@pytest.fixture(scope="module")
def refine_batch(tmp_path_factory, shared_dir):
    """``unihoi process A B -o OUT --refine-depth``: A the shared frames 440-469, B frames
    300-329 of the longer recording (symlinked into a 7-Scenes folder of its own).

    Returns:
        ``(inputs, OUT, bars)``: ``bars`` the rank's progress bars, as recorded.
    """
    import tqdm

    made = []

    class RecordedBar:  # tqdm's interface as the batch uses it, recording what it is told
        def __init__(self, total=None, **_):
            self.total, self.n, self.descriptions, self.n_at_description = total, 0, [], []
            made.append(self)

        def update(self, n=1):
            self.n += n

        def set_description(self, text):
            self.descriptions.append(text)
            self.n_at_description.append(self.n)

        def set_postfix_str(self, text):
            pass

        def close(self):
            pass

    root = tmp_path_factory.mktemp("refine_batch")
    long = shared_dir / "data" / "7scenes_redkitchen_300_699"
    second = root / "kitchen_300"
    second.mkdir()
    for n in range(300, 330):
        name = f"frame-{n:06d}.color.jpg"
        (second / name).symlink_to(long / name)
    inputs = [str(shared_dir / "data" / "7scenes_redkitchen_440_469"), str(second)]
    out = root / "out"
    real_tqdm = tqdm.tqdm

    def bars(*args, **kwargs):  # the rank's bar recorded; the stages' own bars are real
        if args or not str(kwargs.get("desc", "")).startswith("rank "):
            return real_tqdm(*args, **kwargs)
        return RecordedBar(**kwargs)

    tqdm.tqdm = bars
    try:
        assert _process([*inputs, "-o", str(out), *FAST_REFINE, "--refine-depth"]) == 0
    finally:
        tqdm.tqdm = real_tqdm
    return inputs, out, made


def test_refined_batch_progress_counts_both_passes(refine_batch):
    """The rank's bar counts each input's frames twice (the network pass, then the pass on
    the refined depth), says which stage runs, and ends exactly at its total."""
    *_, bars = refine_batch
    assert len(bars) == 1
    bar = bars[0]
    assert bar.total == 2 * 2 * 12 and bar.n == bar.total
    assert bar.descriptions == ["rank 0: network pass and refinement", "rank 0: refined pass",
                                "rank 0"] * 2
    # the refined pass starts after each input's 12 network-pass frames (and the
    # triangulation), its 12 frames follow
    assert bar.n_at_description == [0, 12, 24, 24, 36, 48]


def _batch_rows(out):
    """``{name: index row}`` of a batch's ``index.json`` (input order)."""
    import json

    return {r["name"]: r for r in json.loads((out / "index.json").read_text())["inputs"]}


def test_process_refine_depth_batch_equals_single_runs(refine_batch, tmp_path):
    """Each input of a refined batch says what was refined (measured 89 % and 82 % of the
    pixels) and writes what a single ``--refine-depth`` run writes for it."""
    import json

    from unihoi_ros.batch import DONE_MARKER
    from unihoi_ros.io.run_layout import load_run

    inputs, out, _ = refine_batch
    names = ["7scenes_redkitchen_440_469", "kitchen_300"]
    rows = _batch_rows(out)
    assert [rows[n]["status"] for n in names] == ["done", "done"]
    for name in names:
        report = json.loads((out / name / "report.json").read_text())
        assert report["frames_out"] == 12
        refinement = report["depth_refinement"]
        assert refinement["geometry_size"] == [240, 320]
        assert refinement["measured_fraction"] > 0.3, (name, refinement)
        assert report["intrinsics"]["used"] == "network pass; the refined depth's K"
        settings = json.loads((out / name / DONE_MARKER).read_text())["settings"]
        assert settings["refine_depth"] is True and "raft_weights" not in settings  # default
    single = tmp_path / "single"
    assert _process([inputs[0], "-o", str(single), *FAST_REFINE, "--refine-depth"]) == 0
    one, batch = load_run(single), load_run(out / names[0])
    np.testing.assert_allclose(batch.depth, one.depth, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch.K, one.K, rtol=1e-9)
    np.testing.assert_allclose(batch.T_world_cam, one.T_world_cam, atol=1e-6)
    single_report = json.loads((single / "report.json").read_text())["depth_refinement"]
    batch_report = json.loads((out / names[0] / "report.json").read_text())["depth_refinement"]
    assert batch_report["measured_fraction"] == single_report["measured_fraction"]


def test_process_refine_depth_batch_resume(refine_batch, tmp_path, monkeypatch):
    """A resumed batch reuses outputs made with the same ``--refine-depth``,
    ``--no-pose-graph`` and ``--raft-weights`` only: the same flags skip both inputs,
    without it both are redone plain, with it again both are redone refined; refined
    outputs without the pose graph (as made before it existed) are redone; with a
    checkpoint both are redone and the checkpoint is loaded once for the batch; the
    checkpoint counts by its content, not its path."""
    import hashlib
    import json
    import shutil

    from unihoi_ros import offline_refine
    from unihoi_ros.batch import DONE_MARKER

    inputs, done, _ = refine_batch
    out = tmp_path / "out"
    shutil.copytree(done, out)
    plain = [*inputs, "-o", str(out), *FAST_REFINE]
    refined = [*plain, "--refine-depth"]

    def run(argv):
        assert _process(argv) == 0
        rows = _batch_rows(out)
        reports = [json.loads((out / n / "report.json").read_text()) for n in rows]
        return ([r["this_run"] for r in rows.values()],
                ["depth_refinement" in r for r in reports])

    assert run(refined) == ([False, False], [True, True])  # the markers vouch: skipped
    assert run(plain) == ([True, True], [False, False])  # refined outputs not reused
    # A plain run's marker names neither flag, as markers written before they existed: such
    # outputs are reused by plain runs.
    for name in _batch_rows(out):
        assert "refine_depth" not in json.loads((out / name / DONE_MARKER).read_text())[
            "settings"]
    assert run(plain) == ([False, False], [False, False])
    assert run(refined) == ([True, True], [True, True])  # plain outputs not reused
    for name in _batch_rows(out):
        assert json.loads((out / name / DONE_MARKER).read_text())["settings"]["pose_graph"]
    # Without the graph the marker has no pose_graph key, as refined markers made before
    # the graph existed: a run with the graph does not reuse such outputs.
    assert run([*refined, "--no-pose-graph"]) == ([True, True], [True, True])
    for name in _batch_rows(out):
        assert "pose_graph" not in json.loads((out / name / DONE_MARKER).read_text())[
            "settings"]
    assert run(refined) == ([True, True], [True, True])  # those are not reused
    # A checkpoint (a stand-in loader: RAFT costs seconds per frame here; DIS's flow).
    weights = tmp_path / "raft-small.pth"
    weights.write_bytes(b"stand-in")
    loads = []
    monkeypatch.setattr(offline_refine, "load_pair_flow", lambda path: loads.append(path))
    assert run([*refined, "--raft-weights", str(weights)]) == ([True, True], [True, True])
    assert loads == [weights]  # once, not per input
    for name in _batch_rows(out):
        marker = json.loads((out / name / DONE_MARKER).read_text())
        assert marker["settings"]["raft_weights"] == (
            "sha256:" + hashlib.sha256(b"stand-in").hexdigest())
    # The same weights under another path are the same; new bytes at the path are not.
    copy = tmp_path / "elsewhere" / "raft.pth"
    copy.parent.mkdir()
    copy.write_bytes(b"stand-in")
    assert run([*refined, "--raft-weights", str(copy)]) == ([False, False], [True, True])
    weights.write_bytes(b"retrained")
    assert run([*refined, "--raft-weights", str(weights)]) == ([True, True], [True, True])


def test_refined_backend_answers_repeated_frames_in_order():
    """Byte-identical frames (a repeated video frame) get their own depth each, in order."""
    from unihoi_ros.multiview_depth import RefinedDepthBackend

    a, b = np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 7, np.uint8)
    depth = np.arange(1, 4, dtype=np.float32)[:, None, None] * np.ones((3, 4, 6), np.float32)
    backend = RefinedDepthBackend(np.stack([a, b, a]), depth, np.eye(3), np.ones_like(depth))
    assert [backend.encode(f) for f in (a, b, a)] == [0, 1, 2]
    window = backend.infer_window([0, 1, 2], None, None)
    np.testing.assert_array_equal(window.depth[:, 0, 0], [1, 2, 3])
    assert window.confidence.shape == (2, 4, 6)


def test_network_pass_reads_every_depth_with_the_one_stream_K():
    """A predicted K that moves along the stream: each frame's depth is re-read with the
    stream's median K (depth scales with fx), as the node reads depth with a known K."""
    from unihoi_ros.multiview_depth import network_pass
    from unihoi_ros.pipeline.config import ReconstructorConfig
    from unihoi_ros.pipeline.outcome import FeedOutcome
    from unihoi_ros.pipeline.results import FrameResult

    class Stub:
        config = ReconstructorConfig()

        def feed(self, stamp, rgb, K=None, build_points=False):
            fx = {0: 100.0, 1: 200.0, 2: 150.0}[stamp]
            K = np.array([[fx, 0, 3], [0, fx, 2], [0, 0, 1]])
            return FeedOutcome(results=[FrameResult(
                stamp, rgb, np.full((4, 6), fx / 100, np.float32), K, np.eye(4),
                np.ones((4, 6), np.float32), np.zeros((0, 3), np.float32),
                np.zeros((0, 3), np.uint8))])

        def flush(self):
            return []

    frames = [(i, np.full((4, 6, 3), i, np.uint8), None) for i in range(3)]
    first = network_pass(Stub(), frames)
    assert first.K[0, 0] == 150.0
    np.testing.assert_allclose(first.depth, 1.5)
    assert first.geometry_hw == (4, 6)  # input not 2x the processing size


def test_kept_frames_reads_again_what_the_pass_kept():
    """The recording read again gives the frames of the pass's stamps, in order, resized;
    a frame the pass dropped (a repeated stamp) is skipped; a shorter stream raises."""
    from unihoi_ros.multiview_depth import kept_frames

    stream = [(10, np.full((4, 6, 3), 1, np.uint8)), (20, np.full((4, 6, 3), 2, np.uint8)),
              (20, np.full((4, 6, 3), 9, np.uint8)), (30, np.full((4, 6, 3), 3, np.uint8))]
    again = list(kept_frames(iter(stream), [10, 20, 30], (2, 3)))
    assert [f.shape for f in again] == [(2, 3, 3)] * 3
    assert [int(f[0, 0, 0]) for f in again] == [1, 2, 3]
    with pytest.raises(ValueError, match="stamped 40"):
        list(kept_frames(iter(stream), [10, 20, 30, 40], (2, 3)))
