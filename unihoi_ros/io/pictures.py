"""Pictures of results: the processing summary and the evaluation plots (matplotlib, Agg).

matplotlib is optional (the ``viz`` extra): a command that draws pictures calls
:func:`pictures_enabled` before its work, and without matplotlib does the work, says in
one line which pictures it skips, and succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unihoi_ros.optional import available, require

log = logging.getLogger(__name__)


def pictures_enabled(files: Sequence[str]) -> bool:
    """Whether matplotlib is importable; when it is not, one warning line names the
    pictures ``files`` that will be skipped and how to get them. Call it at the start of a
    command, so the user knows before the work."""
    if available("matplotlib"):
        return True
    log.warning("matplotlib is not installed: %s skipped (the other outputs are written; "
                "pip install 'unihoi_ros[viz]' for them)", " and ".join(files))
    return False


def _plt():
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: A top view draws at most this many of the cloud's points: at the pictures' size (under
#: 800x700 pixels) more only cost drawing time (99k points took 0.5 s per picture).
MAX_DRAWN_POINTS = 20000


def thinned(cloud: np.ndarray, colors=None, max_points: int = MAX_DRAWN_POINTS):
    """Every k-th point of ``cloud`` ``(M, 3)`` (and of ``colors`` ``(M, 3)``, if given),
    the smallest k leaving at most ``max_points``; the arrays themselves when they fit."""
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    k = -(-len(cloud) // max_points)  # ceil
    if k <= 1:
        return cloud, colors
    return cloud[::k], (None if colors is None else np.asarray(colors)[::k])


def _scatter_cloud(ax, cloud: np.ndarray, colors=None) -> None:
    cloud, colors = thinned(cloud, colors)
    c = None if colors is None else np.asarray(colors) / 255.0
    ax.scatter(cloud[:, 0], cloud[:, 2], s=0.5, c=c, alpha=0.6, linewidths=0)


def _top_view(ax, positions: np.ndarray, cloud: np.ndarray | None, colors=None,
              label: str = "camera", color: str = "tab:red") -> None:
    """Plot x (right) against z (forward) of the first camera's frame: a view from above
    for a head camera looking ahead."""
    if cloud is not None and len(cloud):
        _scatter_cloud(ax, cloud, colors)
    ax.plot(positions[:, 0], positions[:, 2], "-", color=color, lw=1.5, label=label)
    ax.plot(positions[:1, 0], positions[:1, 2], "o", color=color, ms=4)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("z [m]")
    ax.set_aspect("equal", adjustable="datalim")


def summary_png(path: str | Path, results, cloud=None, cloud_colors=None,
                num_samples: int = 5, title: str = "") -> None:
    """Strip of RGB / depth / confidence for sampled frames and a top view of the
    trajectory and the fused cloud.

    Args:
        results: list of :class:`unihoi_ros.pipeline.FrameResult` (all frames).
        cloud, cloud_colors: fused world cloud ``(M, 3)`` metres and ``(M, 3)`` uint8.
    """
    plt = _plt()
    n = min(num_samples, len(results))
    idx = np.linspace(0, len(results) - 1, n).round().astype(int)
    depths = np.concatenate([results[i].depth[np.isfinite(results[i].depth)] for i in idx])
    vmin, vmax = (np.percentile(depths, [2, 98]) if depths.size else (0.0, 1.0))
    fig = plt.figure(figsize=(3 * n + 5, 7.5), dpi=100)
    grid = fig.add_gridspec(3, n + 2)
    for col, i in enumerate(idx):
        r = results[i]
        for row, (img, kw, name) in enumerate((
            (r.rgb, {}, "rgb"),
            (r.depth, {"cmap": "turbo", "vmin": vmin, "vmax": vmax}, "depth [m]"),
            (r.confidence, {"cmap": "viridis", "vmin": 0, "vmax": 1}, "confidence"),
        )):
            ax = fig.add_subplot(grid[row, col])
            im = ax.imshow(img, **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {i}  t={r.stamp_ns / 1e9:.2f}s", fontsize=9)
            if col == 0:
                ax.set_ylabel(name)
            if col == n - 1 and row > 0:
                fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(grid[:, n:])
    positions = np.stack([r.T_world_cam[:3, 3] for r in results])
    _top_view(ax, positions, cloud, cloud_colors)
    ax.set_title("trajectory and fused cloud (top view)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def refinement_png(path: str | Path, frames: np.ndarray, network_depth: np.ndarray,
                   refined_depth: np.ndarray, geometric: np.ndarray, num_samples: int = 5,
                   title: str = "") -> None:
    """What ``--refine-depth`` changed, for sampled frames: RGB with the pixels the geometry
    measured tinted, the network's depth, the refined depth (one colour scale) and their
    ratio (refined / network; 1 where the network's depth was kept).

    Args:
        frames: ``(N, h, w, 3)`` uint8 RGB.
        network_depth, refined_depth: ``(N, h, w)`` metres.
        geometric: ``(N, h, w)`` bool, where the refined depth is the triangulated one.
    """
    plt = _plt()
    n = min(num_samples, len(frames))
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    both = np.concatenate([network_depth[idx].ravel(), refined_depth[idx].ravel()])
    both = both[np.isfinite(both) & (both > 0)]
    vmin, vmax = np.percentile(both, [2, 98]) if both.size else (0.0, 1.0)
    fig = plt.figure(figsize=(3 * n + 1, 9.5), dpi=100)
    grid = fig.add_gridspec(4, n)
    for col, i in enumerate(idx):
        tint = frames[i].astype(np.float32)
        tint[geometric[i]] = 0.5 * tint[geometric[i]] + 0.5 * np.array([0, 255, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = refined_depth[i] / network_depth[i]
        for row, (img, kw, name) in enumerate((
            (tint.astype(np.uint8), {}, "measured (green)"),
            (network_depth[i], {"cmap": "turbo", "vmin": vmin, "vmax": vmax}, "network [m]"),
            (refined_depth[i], {"cmap": "turbo", "vmin": vmin, "vmax": vmax}, "refined [m]"),
            (ratio, {"cmap": "coolwarm", "vmin": 0.5, "vmax": 1.5}, "refined / network"),
        )):
            ax = fig.add_subplot(grid[row, col])
            im = ax.imshow(img, **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {i}: {100 * geometric[i].mean():.0f} % measured",
                             fontsize=9)
            if col == 0:
                ax.set_ylabel(name)
            if col == n - 1 and row > 0:
                fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def tracks_png(path: str | Path, tracks: dict[str, np.ndarray], cloud=None, cloud_colors=None,
               camera_positions: np.ndarray | None = None, title: str = "") -> None:
    """Top view of the dynamic tracks' 3D paths (one colour per track) over the fused
    scene, beside the static tracks.

    Args:
        tracks: :meth:`unihoi_ros.io.tracks_io.TracksRecorder.arrays` (world frame, metres).
        cloud, cloud_colors: fused world cloud ``(M, 3)`` and ``(M, 3)`` uint8.
        camera_positions: ``(N, 3)`` camera centres, drawn for orientation.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    if camera_positions is not None and len(camera_positions):
        _top_view(ax, camera_positions, cloud, cloud_colors)
    elif cloud is not None and len(cloud):
        _scatter_cloud(ax, cloud, cloud_colors)
    static = ~tracks["dynamic"] & tracks["visible"]
    ax.scatter(tracks["xyz"][static, 0], tracks["xyz"][static, 2], s=2, c="0.4",
               label="static tracks")
    cmap = plt.get_cmap("tab20")
    dynamic_ids = np.unique(tracks["id"][tracks["dynamic"]])
    for k, tid in enumerate(dynamic_ids):
        sel = (tracks["id"] == tid) & tracks["visible"]
        if sel.sum() >= 2:
            p = tracks["xyz"][sel]
            ax.plot(p[:, 0], p[:, 2], "-", lw=1.2, color=cmap(k % 20))
            ax.plot(p[-1:, 0], p[-1:, 2], ".", color=cmap(k % 20))
    ax.set_xlabel("x [m]")
    ax.set_ylabel("z [m]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{len(dynamic_ids)} dynamic tracks (hands, objects), top view")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluation_png(path: str | Path, est_aligned: np.ndarray, gt: np.ndarray,
                   per_frame_trans: list[float], per_frame_abs_rel: list[float] | None,
                   title: str = "") -> None:
    """Aligned trajectories (top view) and per-frame translation / depth errors."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), dpi=100)
    _top_view(axes[0], gt[:, :3, 3], None, label="ground truth", color="k")
    axes[0].plot(est_aligned[:, 0, 3], est_aligned[:, 2, 3], "-", color="tab:red",
                 label="estimate (Sim(3)-aligned)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("trajectories")
    axes[1].plot(np.asarray(per_frame_trans) * 100, color="tab:red")
    axes[1].set_xlabel("frame")
    axes[1].set_ylabel("translation error [cm]")
    axes[1].set_title("per-frame position error")
    if per_frame_abs_rel is not None:
        axes[2].plot(per_frame_abs_rel, color="tab:blue")
    axes[2].set_xlabel("frame")
    axes[2].set_ylabel("depth abs_rel")
    axes[2].set_title("per-frame depth error")
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
