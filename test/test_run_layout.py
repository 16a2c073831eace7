"""The run layout of ``unihoi process`` (depth / confidence PNGs, ``frames.json``), its one
loader ``unihoi_ros.io.load_run`` (also for runs stored as ``predictions.npz``), the
background writer, the compact bag, and the bytes per frame on real 640x480 frames."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from unihoi_ros.io import Predictions, RunLayoutError, load_run, write_run
from unihoi_ros.io.run_layout import (
    DEPTH_MAX_M,
    confidence_to_u8,
    depth_to_mm,
    write_frame_maps,
)
from unihoi_ros.io.run_writer import RunWriter, RunWriterError
from unihoi_ros.pipeline.results import FrameResult

#: The budget of issue #28: everything a run writes per 640x480 frame.
BYTES_PER_FRAME = 350_000


def _random_run(n=5, h=12, w=16, seed=0) -> Predictions:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 12.0, (n, h, w))
    depth[0, 0, :6] = [np.nan, 0.0, -1.0, np.inf, 70.0, 1e-4]  # invalid, far, tiny
    depth[1, 1, 1] = DEPTH_MAX_M
    conf = rng.uniform(0, 1, (n, h, w)).astype(np.float32)
    conf[0, 0, 0] = np.nan
    K = rng.normal(300, 50, (n, 3, 3))  # full float64 mantissas
    T = rng.normal(size=(n, 4, 4))
    stamps = 1_700_000_000_123_456_789 + np.arange(n, dtype=np.int64) * 33_333_333
    ok = np.array([True, False] + [True] * (n - 2))
    return Predictions(stamps, depth.astype(np.float32), K, T, conf, ok)


def test_round_trip_depth_within_half_mm_poses_K_stamps_exact(tmp_path):
    pred = _random_run()
    write_run(tmp_path / "run", pred)
    back = load_run(tmp_path / "run")
    np.testing.assert_array_equal(back.stamps_ns, pred.stamps_ns)  # epoch ns, exact
    np.testing.assert_array_equal(back.K, pred.K)  # bit-exact float64
    np.testing.assert_array_equal(back.T_world_cam, pred.T_world_cam)
    np.testing.assert_array_equal(back.pose_ok, pred.pose_ok)
    assert back.depth.dtype == np.float32 and back.depth.shape == pred.depth.shape
    d, b = pred.depth.astype(np.float64), back.depth.astype(np.float64)
    normal = np.isfinite(d) & (d >= 0.001) & (d <= DEPTH_MAX_M)
    assert np.abs(b[normal] - d[normal]).max() <= 0.0005 + 1e-6  # the nearest millimetre
    np.testing.assert_array_equal(np.isnan(b[0, 0, :3]), True)  # NaN, 0, negative: invalid
    np.testing.assert_allclose(b[0, 0, 3:5], DEPTH_MAX_M, rtol=1e-7)  # inf, 70 m: saturated
    assert b[0, 0, 5] == pytest.approx(0.001)  # 0.1 mm: still valid, 1 mm
    assert b[1, 1, 1] == pytest.approx(DEPTH_MAX_M)
    c = np.nan_to_num(pred.confidence)
    assert np.abs(back.confidence - c).max() <= 1 / 510 + 1e-6
    # The files are what the TUM / ScanNet convention says, read by another decoder.
    image = pytest.importorskip("PIL.Image")
    with image.open(tmp_path / "run" / "depth" / "000002.png") as im:
        mm = np.asarray(im, dtype=np.int64)
    np.testing.assert_array_equal(mm, np.round(d[2] * 1000))
    with image.open(tmp_path / "run" / "confidence" / "000002.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.round(c[2] * 255))
    meta = json.loads((tmp_path / "run" / "frames.json").read_text())  # standard JSON
    assert meta["depth"]["unit_m"] == 0.001 and len(meta["frames"]) == 5
    # A subset, by slice or indices.
    part = load_run(tmp_path / "run", frames=[3, 1])
    np.testing.assert_array_equal(part.T_world_cam, pred.T_world_cam[[3, 1]])
    np.testing.assert_array_equal(part.depth, back.depth[[3, 1]])
    assert len(load_run(tmp_path / "run" / "frames.json", frames=slice(1, 3)).stamps_ns) == 2


def test_encoders_are_the_documented_rules():
    d = np.array([[0.0004, 0.0005, 1.2344, 1.2346, 65.5354, np.nan, -0.0, np.inf]])
    np.testing.assert_array_equal(depth_to_mm(d), [[1, 1, 1234, 1235, 65535, 0, 0, 65535]])
    np.testing.assert_array_equal(confidence_to_u8(np.array([-1, 0.002, 0.5, 2, np.nan])),
                                  [0, 1, 128, 255, 0])


def test_legacy_predictions_npz_still_loads(tmp_path):
    pred = _random_run(n=4, seed=1)
    (tmp_path / "old").mkdir()
    pred.save(tmp_path / "old" / "predictions.npz")
    for where in (tmp_path / "old", tmp_path / "old" / "predictions.npz"):
        back = load_run(where)
        for name in ("stamps_ns", "depth", "K", "T_world_cam", "confidence"):
            np.testing.assert_array_equal(getattr(back, name), getattr(pred, name))
        assert back.pose_ok is None
    np.testing.assert_array_equal(load_run(tmp_path / "old", frames=slice(2, None)).K,
                                  pred.K[2:])


def test_not_a_run_fails_clearly(tmp_path):
    with pytest.raises(RunLayoutError, match="does not exist"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunLayoutError, match=r"frames\.json or predictions\.npz"):
        load_run(tmp_path / "empty")
    write_run(tmp_path / "run", _random_run(n=3))
    (tmp_path / "run" / "confidence" / "000001.png").unlink()
    with pytest.raises(RunLayoutError, match=r"confidence/000001\.png is missing"):
        load_run(tmp_path / "run")
    assert len(load_run(tmp_path / "run", frames=[0, 2]).stamps_ns) == 2  # others still read
    with pytest.raises(RunLayoutError, match="out of range"):
        load_run(tmp_path / "run", frames=[3])
    meta = json.loads((tmp_path / "run" / "frames.json").read_text())
    meta["version"] = 99
    (tmp_path / "run" / "frames.json").write_text(json.dumps(meta))
    with pytest.raises(RunLayoutError, match="version 99"):
        load_run(tmp_path / "run")


def _result(i: int, h=12, w=16) -> FrameResult:
    rng = np.random.default_rng(i)
    T = np.eye(4)
    T[:3, 3] = rng.normal(size=3)
    return FrameResult(stamp_ns=1000 + i, rgb=rng.integers(0, 255, (h, w, 3), np.uint8),
                       depth=rng.uniform(0.5, 3, (h, w)).astype(np.float32),
                       K=np.array([[20.0 + i, 0, 7.5], [0, 20, 5.5], [0, 0, 1]]),
                       T_world_cam=T, confidence=rng.uniform(0, 1, (h, w)).astype(np.float32),
                       points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8),
                       pose_ok=i != 2)


class _GatedBag:
    """A bag sink that waits for a gate before each frame and can fail on one."""

    def __init__(self, fail_at=None):
        self.gate, self.frames, self.closed, self.fail_at = threading.Event(), [], False, fail_at

    def write(self, result, tracks):
        self.gate.wait(30)
        if result.stamp_ns - 1000 == self.fail_at:
            raise OSError("disk full")
        self.frames.append((result.stamp_ns, tracks))

    def close(self):
        self.closed = True


def test_writer_applies_back_pressure_and_keeps_order(tmp_path):
    bag = _GatedBag()
    writer = RunWriter(tmp_path, bag=bag, queue_size=1)
    results = [_result(i) for i in range(5)]
    producer = threading.Thread(target=lambda: [writer.add(r, f"t{r.stamp_ns}")
                                                for r in results])
    producer.start()
    producer.join(0.3)
    assert producer.is_alive()  # blocked: one frame in the sink, one queued, the rest wait
    bag.gate.set()
    producer.join(30)
    assert writer.close() == 5 and bag.closed
    assert bag.frames == [(r.stamp_ns, f"t{r.stamp_ns}") for r in results]
    back = load_run(tmp_path)
    np.testing.assert_array_equal(back.K, np.stack([r.K for r in results]))
    assert back.pose_ok.tolist() == [True, True, False, True, True]
    assert abs(back.depth - np.stack([r.depth for r in results])).max() <= 0.0005 + 1e-6


def test_writer_failure_is_reported_and_earlier_frames_kept(tmp_path):
    bag = _GatedBag(fail_at=2)
    bag.gate.set()
    writer = RunWriter(tmp_path, bag=bag)
    with pytest.raises(RunWriterError, match=r"frame 2 .*disk full"):
        for i in range(50):
            writer.add(_result(i))
    with pytest.raises(RunWriterError, match="frame 2"):
        writer.close()
    assert bag.closed
    assert load_run(tmp_path).stamps_ns.tolist() == [1000, 1001]  # written before the failure
    other = RunWriter(tmp_path / "other")
    other.add(_result(0))
    with pytest.raises(ValueError, match="run started at 16x12"):
        other.add(_result(1, h=6, w=8))
    assert other.close() == 1


def test_frame_maps_report_saturation(tmp_path):
    d = np.full((2, 3), 2.0)
    d[0, 0], d[1, 2] = np.inf, 100.0
    assert write_frame_maps(tmp_path, 7, d, np.ones((2, 3))) == 2
    assert cv2.imread(str(tmp_path / "depth" / "000007.png"), cv2.IMREAD_UNCHANGED).max() == 65535


# ---------------------------------------------------------------------------- compact bag
def test_downscaled_result_is_an_area_resize_with_its_K():
    from unihoi_ros.geometry.camera import scale_intrinsics
    from unihoi_ros.pipeline.downscale import downscale_factor, downscaled_result
    from unihoi_ros.pipeline.points import colored_points

    assert [downscale_factor(480, 640, m) for m in (320, 300, 640, 0)] == [2, 3, 1, 1]
    r = _result(3, h=8, w=12)
    r.depth[0, 0] = np.nan  # a 2x2 block with 3 valid pixels: their mean
    r.depth[2:4, 2:4] = [[np.nan, np.inf], [-1.0, 2.0]]  # one valid of four: invalid
    small = downscaled_result(r, 6, point_stride=2, min_point_confidence=0.3)
    blocks = r.depth.reshape(4, 2, 6, 2).astype(np.float64)
    blocks = np.where(np.isfinite(blocks) & (blocks > 0), blocks, np.nan)
    with np.errstate(invalid="ignore"):
        expect = np.nanmean(blocks, axis=(1, 3))
    expect[np.isfinite(blocks).sum(axis=(1, 3)) < 2] = np.nan
    np.testing.assert_allclose(small.depth, expect, rtol=1e-6)
    assert np.isnan(small.depth[1, 1])
    np.testing.assert_allclose(small.confidence, r.confidence.reshape(4, 2, 6, 2).mean((1, 3)),
                               rtol=1e-5)
    np.testing.assert_array_equal(small.K, scale_intrinsics(r.K, (8, 12), (4, 6)))
    assert small.K[0, 0] == r.K[0, 0] / 2 and small.K[0, 2] == (r.K[0, 2] + 0.5) / 2 - 0.5
    pts, cols = colored_points(r.depth, r.K, r.rgb, r.confidence, 4, 0.3)  # full-size depth
    np.testing.assert_array_equal(small.points, pts)
    np.testing.assert_array_equal(small.colors, cols)
    assert small.stamp_ns == r.stamp_ns and small.pose_ok == r.pose_ok
    np.testing.assert_array_equal(small.T_world_cam, r.T_world_cam)


def test_progress_bar_has_a_total_for_every_source(tmp_path, capsys):
    """tqdm shows frames/s and the time left when it knows the total: every reader gives
    its length up front (folder, TUM, bag, video)."""
    from test_io_offline import ConstantBackend, write_image_bag

    from unihoi_ros.flow import DISFlow
    from unihoi_ros.io.ground_truth import write_sequence_tum
    from unihoi_ros.io.sources import open_source
    from unihoi_ros.offline import process_source
    from unihoi_ros.pipeline import Reconstructor
    from unihoi_ros.sim import make_sequence

    seq = make_sequence(seed=5, num_frames=6, height=48, width=64)
    inputs = {"tum": tmp_path / "tum", "bag": tmp_path / "bag", "folder": tmp_path / "frames",
              "video": tmp_path / "v.avi"}
    write_sequence_tum(seq, inputs["tum"])
    write_image_bag(inputs["bag"], seq)
    inputs["folder"].mkdir()
    vw = cv2.VideoWriter(str(inputs["video"]), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for i, f in enumerate(seq.rgb):
        cv2.imwrite(str(inputs["folder"] / f"{i:03d}.png"), f[..., ::-1])
        vw.write(f[..., ::-1])
    vw.release()
    for kind, path in inputs.items():
        src = open_source(path)
        assert src.num_frames == 6, kind
        out = tmp_path / f"out_{kind}"
        out.mkdir()
        process_source(src, Reconstructor(ConstantBackend(), DISFlow()), out,
                       write_bag=False, pictures=False, max_frames=5 if kind == "bag" else None)
        bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
        n = 5 if kind == "bag" else 6
        last = [ln for ln in bar if f"{n}/{n}" in ln]
        assert last and "frame/s" in last[-1] and "<00:00" in last[-1], (kind, bar[-3:])
        report = json.loads((out / "report.json").read_text())
        assert report["frames_per_s"] > 0 and report["outputs"]["bytes"] > 0


def test_real_frames_compact_outputs_and_bag(shared_dir, tmp_path):
    """Four real 640x480 frames through ``unihoi process``'s path with the bundled model:
    what grows with the frames (depth and confidence PNGs, frames.json, the bag, tracks,
    trajectory) stays under the issue's 0.35 MB per frame (bench/output_size.py measures
    the whole folder on 100 frames); ``load_run`` gives the results back; the bag is the
    documented compact one."""
    pytest.importorskip("mcap")
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    from unihoi_ros.io.sources import open_source
    from unihoi_ros.offline import process_source
    from unihoi_ros.pipeline.downscale import downscaled_result
    from unihoi_ros.pipeline.settings import StreamSettings
    from unihoi_ros.ros import messages as m

    settings = StreamSettings(device="cpu", max_side=640, flow_preset="medium")
    out = tmp_path / "run"
    out.mkdir()
    src = open_source(shared_dir / "data" / "7scenes_redkitchen_300_699")
    results = process_source(src, settings.make_reconstructor(settings.load_backend()), out,
                             max_frames=4, progress=False, pictures=False)
    n = len(results)
    assert n == 4 and results[0].depth.shape == (480, 640)
    sizes = json.loads((out / "report.json").read_text())["outputs"]["by_entry"]
    growing = sum(v for k, v in sizes.items() if k != "cloud.ply")
    print(f"bytes per 640x480 frame: {growing / n:.0f} (cloud.ply {sizes['cloud.ply'] / n:.0f}"
          f" for {n} frames); by entry: { {k: round(v / n) for k, v in sizes.items()} }")
    assert growing / n <= BYTES_PER_FRAME

    back = load_run(out)
    depth = np.stack([r.depth for r in results])
    np.testing.assert_array_equal(np.isnan(back.depth), np.isnan(depth))
    assert np.nanmax(np.abs(back.depth - depth)) <= 0.0005 + 1e-6
    np.testing.assert_array_equal(back.K, np.stack([r.K for r in results]))
    np.testing.assert_array_equal(back.T_world_cam, np.stack([r.T_world_cam for r in results]))
    assert back.stamps_ns.tolist() == [r.stamp_ns for r in results]

    (mcap_file,) = (out / "bag").glob("*.mcap")
    with open(mcap_file, "rb") as fh:
        summary = make_reader(fh).get_summary()
    assert {c.compression for c in summary.chunk_indexes} == {"zstd"}
    assert "compression_mode: ''" in (out / "bag" / "metadata.yaml").read_text()
    msgs: dict[str, list] = {}
    with AnyReader([out / "bag"]) as reader:
        for c, _, raw in reader.messages():
            msgs.setdefault(c.topic, []).append(reader.deserialize(raw, c.msgtype))
    assert "/unihoi/image" not in msgs and len(msgs["/unihoi/image/compressed"]) == n
    jpeg, depth_msg, info, conf = (msgs[t][2] for t in (
        "/unihoi/image/compressed", "/unihoi/depth/image", "/unihoi/depth/camera_info",
        "/unihoi/confidence/image"))
    small = downscaled_result(results[2], 320)
    assert jpeg.format == "rgb8; jpeg compressed bgr8"
    assert np.abs(m.compressed_to_rgb(jpeg).astype(int) - small.rgb).mean() < 4
    assert (depth_msg.encoding, depth_msg.width, depth_msg.height) == ("16UC1", 320, 240)
    bag_depth = m.image_to_array(depth_msg)
    np.testing.assert_array_equal(bag_depth, depth_to_mm(small.depth))
    assert np.nanmax(np.abs(np.where(bag_depth > 0, bag_depth / 1000, np.nan) - small.depth)
                     ) <= 0.0005 + 1e-6
    assert (info.width, info.height) == (320, 240)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), small.K)
    assert conf.encoding == "mono8"
    np.testing.assert_array_equal(m.image_to_array(conf), confidence_to_u8(small.confidence))
    cloud = m.cloud_to_points(msgs["/unihoi/points"][2])[0]
    assert 0 < len(cloud) <= (240 // 8) * (320 // 8)
    for topic in ("/tf", "/unihoi/pose", "/unihoi/tracks", "/unihoi/depth/camera_info"):
        assert len(msgs[topic]) == n, topic
    assert len(msgs["/unihoi/trajectory"]) == 1
