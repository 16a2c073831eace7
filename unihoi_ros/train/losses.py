"""The self-supervised losses of UniHOI / EgoMono4D, as pure functions.

Facts from the authors' ``egomono4d/loss/loss_*.py`` and ``config/pretrain.yaml`` (our own
code). Every function returns one value **per sample** ``(B,)`` (each sample normalised by
its own valid count), so that the batch loss is the plain mean over samples: a data-parallel
run that averages gradients over ranks then computes exactly the single-process gradient.

- :func:`shape_loss` (weight 4.0): per frame, a weighted Sim(3) fit of the predicted
  camera-space points to the teacher's (UniDepth's), then the weighted MSE.
- :func:`flow_3d_loss` (5.0): forward and backward 3D consistency of optical-flow
  correspondences under the predicted relative poses, distances divided by the point
  cloud's scale (largest principal standard deviation), static pixels only (mask >= 0.9 at
  every bilinear tap).
- :func:`tracking_3d_loss` (5.0): the same over point tracks, between all ordered frame
  pairs of the window.
- :func:`dynamic_area_loss` (0.005): BCE between the predicted confidence of frame t and
  the static mask of frame t times frame t-1's static mask warped by the backward flow.
- :func:`cc_loss` (1.0): L1 between the normalised intrinsics (``fx/W, fy/H, cx/W, cy/H``)
  of two clips of the same video.
- :func:`scale_loss` (ours, not in the paper; 0 in the paper's weights): ``|log mean
  depth - log mean teacher depth|`` per frame. The paper's network inherits metric scale
  from its UniDepth initialisation and every loss above is scale-invariant; a network
  trained from scratch needs this anchor to the teacher's metric scale.
- :func:`intrinsics_loss` (ours, not in the paper; 0 in the paper's weights): L1 between the
  predicted and the teacher's intrinsics (``log fx``, ``log fy``, ``cx/W``, ``cy/H``). The
  paper's camera head starts from UniDepth's, which was trained with camera supervision, and
  ``cc`` only keeps two clips consistent; from scratch nothing else pins K (``shape`` fits a
  Sim(3), whose rotation absorbs a principal-point shift), and without it the bundled model's
  K collapsed to one wrong constant (issue #16).

Conventions: points ``(B, F, H, W, 3)`` metres in each frame's camera (OpenCV axes), poses
``(B, F, 4, 4)`` camera-to-world, pixels ``(u, v)`` with centres at integers, flows in
pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unihoi_ros.geometry.camera import pixel_grid, pixel_to_grid
from unihoi_ros.geometry.poses import invert_se3
from unihoi_ros.geometry.procrustes import weighted_sim3

#: The paper's weights (``config/pretrain.yaml``) plus ours (``scale``, off in the paper).
PAPER_WEIGHTS: dict[str, float] = {
    "shape": 4.0,
    "flow_3d": 5.0,
    "tracking_3d": 5.0,
    "dynamic_area": 0.005,
    "cc": 1.0,
    "scale": 0.0,
    "intrinsics": 0.0,
}
#: Static-mask threshold of the 3D consistency losses (the authors' ``conf_threshold``).
STATIC_THRESHOLD = 0.9


# --------------------------------------------------------------------------- helpers
def sample_at(maps: Tensor, uv: Tensor, padding_mode: str = "border") -> Tensor:
    """Bilinear samples of ``maps (N, C, H, W)`` at pixels ``uv (N, P, 2)`` -> ``(N, P, C)``.

    Pixel centres at integer coordinates (``align_corners=False`` with a half-pixel shift).
    """
    h, w = maps.shape[-2:]
    gx = pixel_to_grid(uv[..., 0], w)
    gy = pixel_to_grid(uv[..., 1], h)
    grid = torch.stack((gx, gy), dim=-1)[:, :, None]  # (N, P, 1, 2)
    out = F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", padding_mode=padding_mode,
                        align_corners=False)
    return out[..., 0].transpose(1, 2)


def in_image(uv: Tensor, height: int, width: int) -> Tensor:
    """``(...)`` bool: the pixel lies inside the image (between the outer pixel centres)."""
    return ((uv[..., 0] >= 0) & (uv[..., 0] <= width - 1)
            & (uv[..., 1] >= 0) & (uv[..., 1] <= height - 1))


def all_static_at(static: Tensor, uv: Tensor, threshold: float = STATIC_THRESHOLD) -> Tensor:
    """``(N, P)`` bool: every bilinear tap of ``static (N, H, W)`` at ``uv`` is >= threshold.

    The authors set non-static points to 1e12 and drop samples that moved; this is the
    same test without the sentinel.
    """
    ok = (static >= threshold).to(uv.dtype)[:, None]
    return sample_at(ok, uv)[..., 0] > 1.0 - 1e-4


def cloud_scale(points: Tensor) -> Tensor:
    """Scale ``(...)`` of point maps ``(..., H, W, 3)``: the largest principal standard
    deviation (the authors' ``calculate_scale_torch``), metres."""
    flat = points.reshape(*points.shape[:-3], -1, 3)
    centred = flat - flat.mean(dim=-2, keepdim=True)
    cov = centred.mT @ centred / flat.shape[-2]
    return torch.linalg.eigvalsh(cov)[..., -1].clamp_min(1e-12).sqrt()


def _mean_per_sample(values: Tensor) -> Tensor:
    """``(B,)`` mean of ``(B, ...)`` values (``(B,)`` as it is)."""
    return values.flatten(1).mean(dim=1) if values.ndim > 1 else values


def _masked_mean(values: Tensor, mask: Tensor, dims: tuple[int, ...]) -> Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim=dims) / mask.sum(dim=dims).clamp_min(1.0)


# --------------------------------------------------------------------------- losses
def shape_loss(points: Tensor, teacher_points: Tensor, weights: Tensor) -> Tensor:
    """Sim(3)-aligned MSE to the teacher's point maps, per sample ``(B,)`` (m²).

    Args:
        points: ``(B, F, H, W, 3)`` predicted camera-space points, metres.
        teacher_points: ``(B, F, H, W, 3)`` the teacher's points, metres.
        weights: ``(B, F, H, W)`` non-negative (0 where the teacher is invalid).
    """
    b, f, h, w, _ = points.shape
    p = points.reshape(b * f, h * w, 3)
    q = teacher_points.reshape(b * f, h * w, 3)
    wt = weights.reshape(b * f, h * w).to(points.dtype)
    q = torch.where(wt[..., None] > 0, q, torch.zeros_like(q))
    T, s = weighted_sim3(p, q, wt)
    moved = s[:, None, None] * (p @ T[:, :3, :3].mT) + T[:, None, :3, 3]
    err = ((moved - q) ** 2).sum(dim=-1) * wt
    return err.reshape(b, -1).sum(dim=1) / wt.reshape(b, -1).sum(dim=1).clamp_min(1e-12)


def _flow_direction(
    src_points: Tensor, dst_points: Tensor, T_dst_src: Tensor, flow: Tensor, valid: Tensor,
    src_static: Tensor, dst_static: Tensor, scale: Tensor,
) -> tuple[Tensor, Tensor]:
    """Squared normalised distances ``(N, P)`` and their mask for one flow direction.

    ``src_points``/``dst_points`` ``(N, H, W, 3)``; ``T_dst_src (N, 4, 4)``; ``flow``
    ``(N, H, W, 2)`` from src to dst pixels; ``valid``/``src_static`` ``(N, H, W)``;
    ``scale (N,)``.
    """
    n, h, w, _ = src_points.shape
    uv = pixel_grid(h, w, dtype=flow.dtype, device=flow.device).reshape(1, h * w, 2)
    target = uv + flow.reshape(n, h * w, 2)
    sampled = sample_at(dst_points.permute(0, 3, 1, 2), target)  # (N, P, 3)
    src = src_points.reshape(n, h * w, 3)
    moved = src @ T_dst_src[:, :3, :3].mT + T_dst_src[:, None, :3, 3]
    dist2 = (((sampled - moved) / scale[:, None, None]) ** 2).sum(dim=-1)
    mask = (valid.reshape(n, -1).bool() & in_image(target, h, w)
            & (src_static.reshape(n, -1) >= STATIC_THRESHOLD)
            & all_static_at(dst_static, target))
    return dist2, mask


def flow_3d_loss(
    points: Tensor, poses: Tensor, flow_fwd: Tensor, flow_bwd: Tensor, valid_fwd: Tensor,
    valid_bwd: Tensor, static: Tensor,
) -> Tensor:
    """3D flow consistency under the predicted poses, per sample ``(B,)`` (unitless).

    Args:
        points: ``(B, F, H, W, 3)`` camera-space points, metres.
        poses: ``(B, F, 4, 4)`` camera-to-world.
        flow_fwd: ``(B, F-1, H, W, 2)`` pixels, frame t-1 -> t (t = 1..F-1).
        flow_bwd: ``(B, F-1, H, W, 2)`` pixels, frame t -> t-1.
        valid_fwd, valid_bwd: ``(B, F-1, H, W)`` flow validity (forward-backward check).
        static: ``(B, F, H, W)`` static probability in [0, 1].
    """
    b, f = points.shape[:2]
    scale = cloud_scale(points)  # (B, F)
    inv = invert_se3(poses)
    earlier, later = (slice(None), slice(0, f - 1)), (slice(None), slice(1, f))

    def flat(x: Tensor) -> Tensor:
        return x.reshape(b * (f - 1), *x.shape[2:])

    T_later_earlier = flat(inv[later] @ poses[earlier])
    T_earlier_later = flat(inv[earlier] @ poses[later])
    d_f, m_f = _flow_direction(flat(points[earlier]), flat(points[later]), T_later_earlier,
                               flat(flow_fwd), flat(valid_fwd), flat(static[earlier]),
                               flat(static[later]), flat(scale[earlier]))
    d_b, m_b = _flow_direction(flat(points[later]), flat(points[earlier]), T_earlier_later,
                               flat(flow_bwd), flat(valid_bwd), flat(static[later]),
                               flat(static[earlier]), flat(scale[later]))
    d = torch.cat([d_f.reshape(b, -1), d_b.reshape(b, -1)], dim=1)
    m = torch.cat([m_f.reshape(b, -1), m_b.reshape(b, -1)], dim=1)
    return _masked_mean(d, m, (1,))


def tracking_3d_loss(
    points: Tensor, poses: Tensor, tracks_uv: Tensor, tracks_visible: Tensor, static: Tensor,
) -> Tensor:
    """3D consistency of point tracks between all ordered frame pairs, per sample ``(B,)``.

    Args:
        points: ``(B, F, H, W, 3)`` camera-space points, metres.
        poses: ``(B, F, 4, 4)`` camera-to-world.
        tracks_uv: ``(B, F, P, 2)`` track positions, pixels.
        tracks_visible: ``(B, F, P)`` bool.
        static: ``(B, F, H, W)`` static probability in [0, 1].
    """
    b, f, h, w, _ = points.shape
    p = tracks_uv.shape[2]
    scale = cloud_scale(points)  # (B, F)
    uv = tracks_uv.reshape(b * f, p, 2)
    finite = torch.isfinite(uv).all(dim=-1)
    uv = torch.where(finite[..., None], uv, torch.zeros_like(uv))
    xyz = sample_at(points.reshape(b * f, h, w, 3).permute(0, 3, 1, 2), uv).reshape(b, f, p, 3)
    ok = (tracks_visible.reshape(b * f, p).bool() & finite & in_image(uv, h, w)
          & all_static_at(static.reshape(b * f, h, w), uv)).reshape(b, f, p)
    # T_t_s = inv(P_t) P_s for every (s, t): (B, S, T, 4, 4).
    T = invert_se3(poses)[:, None, :] @ poses[:, :, None]
    moved = xyz[:, :, None] @ T[..., :3, :3].mT + T[..., None, :3, 3]  # (B, S, T, P, 3)
    diff = (moved - xyz[:, None]) / scale[:, :, None, None, None]
    err = (diff ** 2).sum(dim=-1)
    off_diag = ~torch.eye(f, dtype=torch.bool, device=points.device)
    mask = ok[:, :, None] & ok[:, None] & off_diag[None, :, :, None]
    return _masked_mean(err, mask, (1, 2, 3))


def warped_static_target(static: Tensor, flow_bwd: Tensor) -> Tensor:
    """``(B, F-1, H, W)`` target of the confidence: frame t's static mask times frame t-1's
    warped to t by the backward flow (zero outside the image)."""
    b, f, h, w = static.shape
    uv = pixel_grid(h, w, dtype=flow_bwd.dtype, device=flow_bwd.device).reshape(1, h * w, 2)
    target = uv + flow_bwd.reshape(b * (f - 1), h * w, 2)
    prev = sample_at(static[:, :-1].reshape(b * (f - 1), 1, h, w).to(flow_bwd.dtype), target,
                     padding_mode="zeros")
    return static[:, 1:].to(flow_bwd.dtype) * prev.reshape(b, f - 1, h, w)


def dynamic_area_loss(confidence: Tensor, static: Tensor, flow_bwd: Tensor) -> Tensor:
    """BCE of the confidence against the warped static mask, per sample ``(B,)``.

    Args:
        confidence: ``(B, F-1, H, W)`` in [0, 1] for frames 1..F-1.
        static: ``(B, F, H, W)`` static probability in [0, 1].
        flow_bwd: ``(B, F-1, H, W, 2)`` pixels, frame t -> t-1.
    """
    target = warped_static_target(static, flow_bwd).clamp(0.0, 1.0).to(confidence.dtype)
    bce = F.binary_cross_entropy(confidence.clamp(0.0, 1.0), target, reduction="none")
    return bce.flatten(1).mean(dim=1)


def normalized_intrinsics(K: Tensor, height: int, width: int) -> Tensor:
    """``(..., 4)`` ``(fx/W, fy/H, cx/W, cy/H)`` of ``K (..., 3, 3)`` pixels."""
    return torch.stack([K[..., 0, 0] / width, K[..., 1, 1] / height, K[..., 0, 2] / width,
                        K[..., 1, 2] / height], dim=-1)


def cc_loss(K_a: Tensor, K_b: Tensor, height: int, width: int) -> Tensor:
    """L1 clip consistency of intrinsics, per sample ``(B,)`` (unitless).

    Args:
        K_a, K_b: ``(B, 3, 3)`` or per-frame ``(B, F, 3, 3)`` intrinsics (pixels) of two
            clips of the same video.
        height, width: image size, pixels.
    """
    diff = (normalized_intrinsics(K_a, height, width)
            - normalized_intrinsics(K_b, height, width)).abs().sum(dim=-1)
    return _mean_per_sample(diff)


def scale_loss(depth: Tensor, teacher_depth: Tensor, valid: Tensor) -> Tensor:
    """Metric-scale anchor: ``|log mean(depth) - log mean(teacher)|`` per frame, per
    sample ``(B,)``. ``depth``/``teacher_depth`` ``(B, F, H, W)`` metres; ``valid`` mask."""
    m = valid.to(depth.dtype)
    n = m.sum(dim=(-2, -1)).clamp_min(1.0)
    pred = (depth * m).sum(dim=(-2, -1)) / n
    ref = (torch.where(valid.bool(), teacher_depth, 0.0) * m).sum(dim=(-2, -1)) / n
    return (pred.clamp_min(1e-6).log() - ref.clamp_min(1e-6).log()).abs().mean(dim=1)


def intrinsics_loss(K: Tensor, teacher_K: Tensor, height: int, width: int) -> Tensor:
    """Camera anchor: L1 of ``(log fx, log fy, cx/W, cy/H)`` to the teacher's, per sample
    ``(B,)`` (unitless: focal errors as log ratios, principal point in image fractions).

    Args:
        K: ``(B, 3, 3)`` or per-frame ``(B, F, 3, 3)`` predicted intrinsics, pixels.
        teacher_K: ``(B, 3, 3)`` the teacher's intrinsics, pixels.
        height, width: image size, pixels.
    """
    if K.ndim == 4:
        teacher_K = teacher_K[:, None].expand_as(K)
    focal = (K[..., [0, 1], [0, 1]].clamp_min(1e-6).log()
             - teacher_K[..., [0, 1], [0, 1]].clamp_min(1e-6).log()).abs().sum(dim=-1)
    size = torch.tensor([width, height], dtype=K.dtype, device=K.device)
    centre = ((K[..., :2, 2] - teacher_K[..., :2, 2]) / size).abs().sum(dim=-1)
    diff = focal + centre
    return _mean_per_sample(diff)


def weighted_total(terms: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """``sum_k weights[k] * terms[k]`` over the terms with a non-zero weight ``(B,)``."""
    total = None
    for name, value in terms.items():
        wgt = float(weights.get(name, 0.0))
        if wgt:
            total = wgt * value if total is None else total + wgt * value
    if total is None:
        raise ValueError("no loss term has a non-zero weight")
    return total
