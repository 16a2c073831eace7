"""``unihoi demo``: the README's main job on the bundled default (no ROS, no GPU, no downloads).

Current scope: render a synthetic head-camera clip with exact ground truth, write a
contact sheet (RGB / depth / dynamic mask) and a JSON summary, and print where they are.
The streaming reconstruction over DDS is added on top of this as the pipeline lands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the synthetic-world demo (no ROS, no GPU needed)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory")
    p.add_argument("--seed", type=int, default=0, help="synthetic clip seed")
    p.add_argument("--frames", type=int, default=60, help="number of frames")
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--width", type=int, default=160)
    p.set_defaults(func=run)


def clip_summary(seq, render_s: float) -> dict:
    """Numbers a person checks first: motion, field of view, dynamic coverage, depth range."""
    from scipy.spatial.transform import Rotation

    positions = seq.T_world_cam[:, :3, 3]
    path_m = float(np.linalg.norm(np.diff(positions, axis=0), axis=1).sum())
    rel = np.einsum("nji,njk->nik", seq.T_world_cam[:-1, :3, :3], seq.T_world_cam[1:, :3, :3])
    rot_deg = np.degrees(Rotation.from_matrix(rel).magnitude())
    n, h, w = seq.depth.shape
    fov_deg = float(np.degrees(2 * np.arctan(w / (2 * seq.K[0, 0]))))
    dyn = seq.dynamic.reshape(n, -1).mean(axis=1)
    return {
        "frames": int(n),
        "height": int(h),
        "width": int(w),
        "fps": float(seq.fps),
        "horizontal_fov_deg": round(fov_deg, 2),
        "trajectory_length_m": round(path_m, 4),
        "max_rotation_speed_deg_s": round(float(rot_deg.max() * seq.fps), 2),
        "dynamic_fraction_min_max": [round(float(dyn.min()), 3), round(float(dyn.max()), 3)],
        "depth_range_m": [round(float(seq.depth.min()), 3), round(float(seq.depth.max()), 3)],
        "render_frames_per_s": round(n / render_s, 1),
    }


def contact_sheet(seq, num: int = 6) -> np.ndarray:
    """``(3*H, num*W, 3)`` uint8 RGB: rows RGB, colour-mapped depth, dynamic mask overlay."""
    import cv2

    idx = np.linspace(0, len(seq.rgb) - 1, num).round().astype(int)
    lo, hi = float(seq.depth.min()), float(seq.depth.max())
    rows = [[], [], []]
    for i in idx:
        rgb = seq.rgb[i]
        d8 = (255 * (seq.depth[i] - lo) / max(hi - lo, 1e-6)).astype(np.uint8)
        depth_rgb = cv2.applyColorMap(d8, cv2.COLORMAP_TURBO)[..., ::-1]
        overlay = rgb.copy()
        overlay[seq.dynamic[i]] = (0.5 * overlay[seq.dynamic[i]] + [127, 0, 0]).astype(np.uint8)
        for row, img in zip(rows, (rgb, depth_rgb, overlay)):
            row.append(img)
    return np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)


def run(args) -> int:
    import cv2

    from unihoi_ros.sim import make_sequence

    t0 = time.perf_counter()
    seq = make_sequence(args.seed, args.frames, args.height, args.width)
    render_s = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    summary = clip_summary(seq, render_s)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    sheet = contact_sheet(seq)
    cv2.imwrite(str(args.out / "synthetic_clip.png"), sheet[..., ::-1])
    print("unihoi demo — synthetic egocentric clip (exact ground truth)")
    for key, value in summary.items():
        print(f"  {key:28s} {value}")
    print(f"wrote {args.out / 'synthetic_clip.png'} and {args.out / 'summary.json'}")
    return 0
