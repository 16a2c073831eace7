"""Bytes per frame that ``unihoi process`` writes, on real 640x480 frames.

Runs :func:`unihoi_ros.offline.process_source` (the bundled model, as ``unihoi process``
loads it) on the first ``--frames`` frames of ``../shared/data/7scenes_redkitchen_300_699``
into a temporary folder, and reports the bytes per frame of each output (``report.json``'s
``outputs``), in all and without the two pictures. It then reads the run back with
:func:`unihoi_ros.io.load_run` and checks it against the in-memory results (depth within
0.5 mm, K / poses / stamps bit-exact). In the same run it writes, for the first
``--legacy-frames`` frames, what the previous layout wrote for them (``predictions.npz``
and the bag of raw ``rgb8`` / ``32FC1`` images and stride-2 points, uncompressed), for the
ratio.

Usage: ``python bench/output_size.py [--frames 100] [--legacy-frames 12]
[--json bench/results/output_size.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "7scenes_redkitchen_300_699"


def legacy_bytes(results, tracks, out: Path) -> dict:
    """What the previous layout wrote for ``results``: ``predictions.npz`` and the bag
    (raw input image, 32FC1 depth / confidence, every-2nd-pixel points, uncompressed)."""
    from unihoi_ros.geometry.frames import body_world_pose
    from unihoi_ros.io.bag_writer import BagRecorder
    from unihoi_ros.io.predictions import Predictions
    from unihoi_ros.ros import messages as m

    out.mkdir(parents=True)
    Predictions.from_results(results).save(out / "predictions.npz")
    frame = m.optical_frame_id("camera")
    with BagRecorder(out / "bag") as rec:
        topics = {"/unihoi/image": m.IMAGE, "/unihoi/pose": m.POSE_STAMPED,
                  "/unihoi/tracks": m.POINT_CLOUD2}
        for r, ts in zip(results, tracks):
            msgs = {("/unihoi/" + k if not k.startswith("/") else k): v
                    for k, v in m.frame_result_messages(r, "camera").items()}
            msgs["/unihoi/image"] = m.rgb_to_image(r.rgb, r.stamp_ns, frame)
            msgs["/unihoi/pose"] = m.pose_stamped_msg(body_world_pose(r.T_world_cam),
                                                      r.stamp_ns, "unihoi_world")
            msgs["/unihoi/tracks"] = m.tracks_msg(ts, "unihoi_world")
            for topic, msg in msgs.items():
                if topic not in topics:
                    topics[topic] = type(msg).__msgtype__
                if topic not in rec.topics:
                    rec.add_topic(topic, topics[topic])
                rec.write(topic, msg, r.stamp_ns)
    return {"predictions.npz": (out / "predictions.npz").stat().st_size,
            "bag": sum(p.stat().st_size for p in (out / "bag").rglob("*") if p.is_file())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--legacy-frames", type=int, default=12)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} not found (the shared real frames)")
        return 1

    from unihoi_ros.io import load_run
    from unihoi_ros.io.sources import open_source
    from unihoi_ros.offline import process_source
    from unihoi_ros.pipeline.settings import StreamSettings
    from unihoi_ros.tracks import PointTracker

    settings = StreamSettings(device="cpu", max_side=640, flow_preset="medium")
    with tempfile.TemporaryDirectory(prefix="unihoi_output_size_") as tmp:
        out = Path(tmp) / "run"
        out.mkdir()
        rec = settings.make_reconstructor(settings.load_backend())
        rec.backend.prepare_before_first_frame(None, 2)
        t0 = time.perf_counter()
        results = process_source(open_source(DATA), rec, out, max_frames=args.frames,
                                 progress=True, info={"model": settings.model})
        wall = time.perf_counter() - t0
        report = json.loads((out / "report.json").read_text())
        sizes = report["outputs"]
        n = len(results)
        t1 = time.perf_counter()
        back = load_run(out)
        load_s = time.perf_counter() - t1
        depth = np.stack([r.depth for r in results])
        both = np.isfinite(depth)
        assert np.array_equal(both, np.isfinite(back.depth))
        err_mm = float(np.abs(back.depth[both] - depth[both]).max() * 1000)
        exact = (np.array_equal(back.K, np.stack([r.K for r in results]))
                 and np.array_equal(back.T_world_cam, np.stack([r.T_world_cam for r in results]))
                 and back.stamps_ns.tolist() == [r.stamp_ns for r in results])
        k = min(args.legacy_frames, n)
        tracker = PointTracker()
        legacy = legacy_bytes(results[:k], [tracker.update(r) for r in results[:k]],
                              Path(tmp) / "legacy")
    legacy_per_frame = sum(legacy.values()) / k
    new_per_frame = (sizes["by_entry"].get("depth", 0) + sizes["by_entry"].get("confidence", 0)
                     + sizes["by_entry"].get("bag", 0) + sizes["by_entry"].get("frames.json", 0)
                     ) / n
    row = {
        "frames": n, "size": f"{depth.shape[2]}x{depth.shape[1]}",
        "bytes_per_frame": sizes["bytes_per_frame"],
        "bytes_per_frame_without_pictures": sizes["bytes_per_frame_without_pictures"],
        "by_entry_per_frame": {k_: v / n for k_, v in sizes["by_entry"].items()},
        "predictions_and_bag_per_frame": new_per_frame,
        "legacy_predictions_and_bag_per_frame": legacy_per_frame,
        "legacy_by_entry_per_frame": {k_: v / k for k_, v in legacy.items()},
        "legacy_frames": k,
        "ratio_legacy_over_new": legacy_per_frame / new_per_frame,
        "round_trip_depth_max_err_mm": err_mm, "round_trip_K_poses_stamps_exact": exact,
        "load_run_s": load_s, "process_wall_s": wall,
        "machine": platform.node(),
    }
    print(f"{n} real frames {row['size']}: {row['bytes_per_frame'] / 1e6:.3f} MB per frame "
          f"in all, {row['bytes_per_frame_without_pictures'] / 1e6:.3f} MB without the two "
          "pictures")
    for name, v in sorted(row["by_entry_per_frame"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:20s} {v / 1e3:8.1f} kB/frame")
    print(f"predictions + bag: {new_per_frame / 1e3:.1f} kB/frame; the previous layout "
          f"({k} frames, same run): {legacy_per_frame / 1e3:.1f} kB/frame "
          f"({row['ratio_legacy_over_new']:.1f}x)")
    print(f"load_run: {load_s:.2f} s for {n} frames; depth within {err_mm:.3f} mm; K, poses, "
          f"stamps exact: {exact}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
