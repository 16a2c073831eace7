"""Weighted rigid (Kabsch) and similarity (Umeyama) fits between corresponding points.

Both solve ``min sum_i w_i || s R p_i + t - q_i ||^2`` over rotations R (proper, det +1)
and translations t (and a scale s > 0 for Sim(3)), in closed form from the weighted 3x3
cross-covariance ``C = sum_i w_i (q_i - mu_q)(p_i - mu_p)^T / sum_i w_i``:
``C = U S V^T``, ``R = U diag(1, 1, d) V^T`` with ``d = sign(det U det V)`` (the
determinant fix that forbids reflections), ``s = trace(diag(1, 1, d) S) / var_p``,
``t = mu_q - s R mu_p``.

Robustness rules (streams and training must never see NaN or an exception):

- A row i is *usable* when ``p_i``, ``q_i`` and ``w_i`` are all finite; other rows get
  weight 0 (so NaN / inf rows are simply ignored). Negative weights count as 0.
- The fit is *ok* when the usable weights sum to > 0, every intermediate is finite and the
  covariance has rank >= ``min_rank`` (default 2: the rotation is unique), tested as
  ``S[min_rank - 1] > rank_tol * sum(S)`` with ``rank_tol = 1000 * eps(dtype)`` by default.
  Fewer than 3 effectively weighted points, collinear points or all-zero weights fail it.
- Where not ok the result is the identity (scale 1) and ``ok`` is False. Degenerate
  entries never produce NaN values or NaN gradients (their gradients are 0).

Gradients: the rotation's backward pass uses the closed-form derivative of the polar
factor (denominators ``s_i + s_j`` of the signed singular values), not torch's generic
SVD backward, whose ``1 / (s_i^2 - s_j^2)`` terms make it wrong or infinite for
symmetric point sets (repeated singular values) although the solution is well defined.
Double backward is not supported.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .poses import se3_from_rt

__all__ = ["trimmed_weighted_rigid", "weighted_rigid", "weighted_sim3"]


def _reflection_fix(U: Tensor, Vh: Tensor) -> Tensor:
    """``(..., 3)`` diagonal ``(1, 1, d)``, ``d = sign(det U det V)``, never 0."""
    d = torch.where(torch.linalg.det(U) * torch.linalg.det(Vh) < 0, -1.0, 1.0).to(U.dtype)
    ones = torch.ones_like(d)
    return torch.stack([ones, ones, d], dim=-1)


class _RotationFromCovariance(torch.autograd.Function):
    """``R = argmax_{R in SO(3)} trace(R^T C)`` with a stable analytic backward."""

    @staticmethod
    def forward(ctx, C: Tensor) -> Tensor:
        U, S, Vh = torch.linalg.svd(C)
        D = _reflection_fix(U, Vh)
        R = U @ (D[..., :, None] * Vh)
        ctx.save_for_backward(R, Vh, S * D)
        return R

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_R: Tensor) -> Tensor:
        # dR = R V Omega V^T with Omega_ij = A_ij / (sig_i + sig_j), A = skew part of
        # V^T R^T dC V; the adjoint gives grad_C = R V [(B - B^T) / (sig_i + sig_j)] V^T
        # with B = V^T R^T grad_R V (sig: signed singular values).
        R, Vh, sig = ctx.saved_tensors
        V = Vh.mT
        B = Vh @ R.mT @ grad_R @ V
        den = sig[..., :, None] + sig[..., None, :]
        tiny = torch.finfo(sig.dtype).eps * sig.abs().amax(dim=-1)[..., None, None]
        usable = den.abs() > tiny  # 0 only where the rotation itself is not unique
        X = torch.where(usable, (B - B.mT) / torch.where(usable, den, 1.0), 0.0)
        return R @ V @ X @ Vh


def _clean(p: Tensor, q: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Cast to a common dtype and zero unusable rows (values and weights)."""
    dtype = torch.promote_types(p.dtype, q.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32  # SVD needs float32/64; half inputs are upcast
    p, q, w = p.to(dtype), q.to(dtype), w.to(dtype)
    usable = torch.isfinite(p).all(-1) & torch.isfinite(q).all(-1) & torch.isfinite(w)
    zero = torch.zeros((), dtype=dtype, device=p.device)
    w = torch.where(usable, w.clamp(min=0), zero)
    p = torch.where(usable[..., None], p, zero)
    q = torch.where(usable[..., None], q, zero)
    return p, q, w


def _moments(p: Tensor, q: Tensor, w: Tensor) -> tuple[Tensor, ...]:
    """Weighted centroids ``(..., 3)``, cross-covariance ``(..., 3, 3)``, var_p ``(...)``."""
    total = w.sum(dim=-1)
    has_weight = total > 0
    wn = (w / torch.where(has_weight, total, 1.0)[..., None])[..., None]  # (..., N, 1)
    mu_p = (wn * p).sum(dim=-2)
    mu_q = (wn * q).sum(dim=-2)
    pc = p - mu_p[..., None, :]
    qc = q - mu_q[..., None, :]
    cov = (wn * qc).mT @ pc  # sum_i wn_i qc_i pc_i^T
    var_p = (wn * pc * pc).sum(dim=(-2, -1))
    return mu_p, mu_q, cov, var_p, has_weight


def _is_ok(
    cov: Tensor, finite: Tensor, has_weight: Tensor, min_rank: int, rank_tol: float | None
) -> Tensor:
    """``(...)`` bool: enough weight, finite, covariance rank >= min_rank."""
    cov0 = torch.where(finite[..., None, None], cov, 0.0).detach()
    sv = torch.linalg.svdvals(cov0)  # (..., 3), descending
    tol = 1000 * torch.finfo(cov.dtype).eps if rank_tol is None else rank_tol
    total = sv.sum(dim=-1)
    return has_weight & finite & (total > 0) & (sv[..., min_rank - 1] > tol * total)


def _fit(
    p: Tensor, q: Tensor, w: Tensor, with_scale: bool, min_rank: int, rank_tol: float | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Shared solver: ``(R (..., 3, 3), t (..., 3), s (...), ok (...))``."""
    if min_rank not in (1, 2):
        raise ValueError(f"min_rank must be 1 or 2, got {min_rank}")
    out_dtype = torch.promote_types(p.dtype, q.dtype)
    p, q, w = _clean(p, q, w)
    mu_p, mu_q, cov, var_p, has_weight = _moments(p, q, w)
    finite = (
        torch.isfinite(cov).all(dim=(-2, -1)) & torch.isfinite(mu_p).all(-1)
        & torch.isfinite(mu_q).all(-1) & torch.isfinite(var_p)
    )  # fmt: skip
    ok = _is_ok(cov, finite, has_weight, min_rank, rank_tol)
    # Degenerate entries get a harmless covariance (distinct singular values): finite
    # values and gradients; they are replaced by the identity below.
    safe = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=cov.dtype, device=cov.device))
    cov = torch.where(ok[..., None, None], cov, safe)
    R = _RotationFromCovariance.apply(cov)
    one = torch.ones_like(var_p)
    if with_scale:
        s = (R * cov).sum(dim=(-2, -1)) / torch.where(ok, var_p, one)  # trace(R^T C) / var
        ok = ok & torch.isfinite(s) & (s > 0)
        s = torch.where(ok, s, one)
    else:
        s = one
    t = mu_q - s[..., None] * (R @ mu_p[..., None])[..., 0]
    ok = ok & torch.isfinite(t).all(dim=-1)
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    R = torch.where(ok[..., None, None], R, eye)
    t = torch.where(ok[..., None], t, 0.0)
    if out_dtype != R.dtype:
        R, t, s = R.to(out_dtype), t.to(out_dtype), s.to(out_dtype)
    return R, t, s, ok


def weighted_rigid(
    p: Tensor,
    q: Tensor,
    w: Tensor,
    return_ok: bool = False,
    *,
    min_rank: int = 2,
    rank_tol: float | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Weighted Kabsch: the rigid transform that best maps ``p`` onto ``q``.

    Minimises ``sum_i w_i || R p_i + t - q_i ||^2`` (see the module docstring for the
    robustness rules). Differentiable in ``p``, ``q`` and ``w``.

    Args:
        p: ``(..., N, 3)`` source points, metres.
        q: ``(..., N, 3)`` corresponding target points, metres.
        w: ``(..., N)`` non-negative weights (any scale; only ratios matter).
        return_ok: also return the ``ok`` flags.
        min_rank: covariance rank needed for ok: 2 (unique rotation) or 1 (accept
            collinear points: the rotation about the line is then arbitrary but still a
            least-squares minimiser, enough for e.g. aligning positions).
        rank_tol: relative singular-value threshold (default ``1000 * eps(dtype)``).

    Returns:
        ``T (..., 4, 4)`` with ``q ~= R p + t`` (identity where not ok), and with
        ``return_ok`` also ``ok (...)`` bool.
    """
    R, t, _, ok = _fit(p, q, w, False, min_rank, rank_tol)
    T = se3_from_rt(R, t)
    return (T, ok) if return_ok else T


def weighted_sim3(
    p: Tensor,
    q: Tensor,
    w: Tensor,
    return_ok: bool = False,
    *,
    min_rank: int = 2,
    rank_tol: float | None = None,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
    """Weighted Umeyama: the similarity transform that best maps ``p`` onto ``q``.

    Minimises ``sum_i w_i || s R p_i + t - q_i ||^2`` (see the module docstring for the
    robustness rules). With uniform weights this equals evo's ``umeyama_alignment``.

    Args:
        p: ``(..., N, 3)`` source points, metres (any unit: s converts it).
        q: ``(..., N, 3)`` corresponding target points, metres.
        w: ``(..., N)`` non-negative weights.
        return_ok: also return the ``ok`` flags.
        min_rank: 2 (default) or 1, as in :func:`weighted_rigid`.
        rank_tol: relative singular-value threshold (default ``1000 * eps(dtype)``).

    Returns:
        ``T (..., 4, 4)`` holding R and t (not scaled: ``q ~= s * (R p) + t``; see
        ``poses.sim3_matrix`` for the single-matrix form), ``scale (...)`` (> 0), and with
        ``return_ok`` also ``ok (...)`` bool. Where not ok: identity and scale 1.
    """
    R, t, s, ok = _fit(p, q, w, True, min_rank, rank_tol)
    T = se3_from_rt(R, t)
    return (T, s, ok) if return_ok else (T, s)


def trimmed_weighted_rigid(
    p: Tensor,
    q: Tensor,
    w: Tensor,
    return_ok: bool = False,
    *,
    iterations: int = 2,
    k_mad: float = 3.0,
) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`weighted_rigid` refitted after dropping correspondences that disagree.

    After each fit, rows whose relative residual ``||R p + t - q|| / ||p||`` exceeds
    ``median + k_mad * 1.4826 * MAD`` (over the weighted rows, per batch entry) get weight 0
    and the fit is repeated. This removes occlusions (a flow target hidden behind another
    surface samples the occluder's depth) and gross flow errors that a confidence map
    missed, while exact data keeps its exact solution.

    Args:
        p, q: ``(..., N, 3)`` metres. w: ``(..., N)`` weights.
        return_ok: also return the ``ok`` flags of the final fit.
        iterations: refits after the first fit.
        k_mad: threshold in robust standard deviations (1.4826 MAD).

    Returns:
        As :func:`weighted_rigid`; where a refit is degenerate the previous fit is kept.
    """
    T, ok = weighted_rigid(p, q, w, return_ok=True)
    for _ in range(iterations):
        res = (p @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3] - q).norm(dim=-1)
        res = res / p.norm(dim=-1).clamp_min(1e-12)
        active = (w > 0) & torch.isfinite(res)
        nan = torch.full_like(res, float("nan"))
        med = torch.nanmedian(torch.where(active, res, nan), dim=-1, keepdim=True).values
        mad = torch.nanmedian(torch.where(active, (res - med).abs(), nan), dim=-1,
                              keepdim=True).values
        keep = active & (res <= med + k_mad * 1.4826 * mad)
        T_new, ok_new = weighted_rigid(p, q, torch.where(keep, w, torch.zeros_like(w)),
                                       return_ok=True)
        use = ok_new & ok
        T = torch.where(use[..., None, None], T_new, T)
    return (T, ok) if return_ok else T
