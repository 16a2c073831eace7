"""SE(3) / Sim(3) pose helpers on 4x4 homogeneous matrices.

Conventions:

- A pose ``T_a_b`` (``(..., 4, 4)``) maps points from frame b to frame a:
  ``p_a = R p_b + t``. Camera poses are camera-to-world (``T_world_cam``).
- :func:`relative_pose` ``(T_a, T_b) = inv(T_a) @ T_b``: the pose of b in a's frame
  (evo's ``relative_se3``; the authors' backward relative transform for ``a = t-1``,
  ``b = t``).
- Quaternions are ``(x, y, z, w)``, the order of ROS ``geometry_msgs/Quaternion`` and of
  scipy's ``Rotation.as_quat``; :func:`quaternions_from_matrices` returns unit quaternions
  with ``w >= 0``.
- A Sim(3) transform is stored as an SE(3) ``T`` plus a scale ``s``: ``p' = s R p + t``
  (see :func:`sim3_matrix` for the single 4x4 form ``[[s R, t], [0, 1]]``).

All functions are pure, differentiable, batched over ``...`` and keep the input dtype
(:func:`chain_relative_np`, the numpy twin of :func:`chain_relative`, is not
differentiable).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "chain_relative",
    "chain_relative_np",
    "compose",
    "invert_se3",
    "matrices_from_quaternions",
    "quaternions_from_matrices",
    "relative_pose",
    "rotation_angle",
    "se3_from_rt",
    "sim3_matrix",
]


def se3_from_rt(R: Tensor, t: Tensor) -> Tensor:
    """Assemble homogeneous transforms.

    Args:
        R: ``(..., 3, 3)`` rotation (or any 3x3 linear part).
        t: ``(..., 3)`` translation, metres; leading dims broadcast with ``R``'s.

    Returns:
        ``(..., 4, 4)`` ``[[R, t], [0, 0, 0, 1]]``.
    """
    batch = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    top = torch.cat([R.expand(*batch, 3, 3), t.expand(*batch, 3)[..., None]], dim=-1)
    bottom = torch.zeros(*batch, 1, 4, dtype=top.dtype, device=top.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def sim3_matrix(T: Tensor, scale: Tensor | float) -> Tensor:
    """Single-matrix form of a Sim(3) given as SE(3) ``T`` and scale.

    Args:
        T: ``(..., 4, 4)`` rigid part (rotation R, translation t).
        scale: ``(...)`` or float, unitless.

    Returns:
        ``(..., 4, 4)`` ``[[s R, t], [0, 1]]``, mapping ``p -> s R p + t``.
    """
    s = torch.as_tensor(scale, dtype=T.dtype, device=T.device)
    return se3_from_rt(T[..., :3, :3] * s[..., None, None], T[..., :3, 3])


def compose(*transforms: Tensor) -> Tensor:
    """Product of transforms, left to right: ``compose(A, B, C) = A @ B @ C``.

    Args:
        *transforms: one or more ``(..., 4, 4)`` transforms (leading dims broadcast).

    Returns:
        ``(..., 4, 4)`` the composition (``T_a_c = compose(T_a_b, T_b_c)``).
    """
    if not transforms:
        raise ValueError("compose() needs at least one transform")
    return functools.reduce(torch.matmul, transforms)


def invert_se3(T: Tensor) -> Tensor:
    """Closed-form inverse of rigid transforms (exact for SE(3) only).

    Args:
        T: ``(..., 4, 4)`` rigid transforms.

    Returns:
        ``(..., 4, 4)`` ``[[R^T, -R^T t], [0, 1]]``.
    """
    R_inv = T[..., :3, :3].mT
    t_inv = -(R_inv @ T[..., :3, 3:4])[..., 0]
    return se3_from_rt(R_inv, t_inv)


def relative_pose(T_a: Tensor, T_b: Tensor) -> Tensor:
    """Pose of frame b expressed in frame a: ``inv(T_a) @ T_b``.

    Args:
        T_a: ``(..., 4, 4)`` pose of a (e.g. camera-to-world).
        T_b: ``(..., 4, 4)`` pose of b in the same world.

    Returns:
        ``(..., 4, 4)`` ``T_a_b`` with ``T_a @ T_a_b == T_b``.
    """
    return invert_se3(T_a) @ T_b


def chain_relative(rel: Tensor) -> Tensor:
    """Absolute poses from consecutive relative poses, frame 0 = identity.

    Args:
        rel: ``(..., N-1, 4, 4)``; ``rel[..., k]`` is frame k+1's pose in frame k
            (``relative_pose(T_k, T_{k+1})``).

    Returns:
        ``(..., N, 4, 4)`` poses in frame 0: ``T_0 = I``, ``T_{k+1} = T_k @ rel_k``.
    """
    eye = torch.eye(4, dtype=rel.dtype, device=rel.device)
    poses = [eye.expand(*rel.shape[:-3], 4, 4)]
    for k in range(rel.shape[-3]):
        poses.append(poses[-1] @ rel[..., k, :, :])
    return torch.stack(poses, dim=-3)


def chain_relative_np(rel: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`chain_relative` (same products, same order).

    Args:
        rel: ``(..., N-1, 4, 4)`` array; ``rel[..., k]`` is frame k+1's pose in frame k.

    Returns:
        ``(..., N, 4, 4)`` float64 poses in frame 0: ``T_0 = I``, ``T_{k+1} = T_k @ rel_k``.
    """
    rel = np.asarray(rel)
    poses = [np.broadcast_to(np.eye(4), (*rel.shape[:-3], 4, 4))]
    for k in range(rel.shape[-3]):
        poses.append(poses[-1] @ rel[..., k, :, :])
    return np.stack(poses, axis=-3)


def matrices_from_quaternions(q: Tensor) -> Tensor:
    """Rotation matrices from quaternions in ``(x, y, z, w)`` order (batched tensors; one
    numpy rotation: :func:`unihoi_ros.geometry.quaternions.matrix_from_quaternion`).

    Args:
        q: ``(..., 4)`` quaternions ``(x, y, z, w)``; normalised here (a zero quaternion
            gives the identity).

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(1e-30)
    x, y, z, w = q.unbind(dim=-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(max(x, 0))`` with a zero (not infinite) gradient at 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), 0.0)


def quaternions_from_matrices(R: Tensor) -> Tensor:
    """Convert rotation matrices to unit quaternions ``(x, y, z, w)`` with ``w >= 0``
    (batched tensors; one numpy rotation:
    :func:`unihoi_ros.geometry.quaternions.quaternion_from_matrix`).

    Branch-free Shepperd method: of the four algebraically equivalent formulas, the one
    dividing by the largest quaternion component is used (stable for every rotation).

    Args:
        R: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 4)`` unit quaternions ``(x, y, z, w)``, ``w >= 0``.
    """
    m = R.unbind(dim=-1)  # m[j][..., i] = R[..., i, j]
    m00, m10, m20 = m[0].unbind(-1)
    m01, m11, m21 = m[1].unbind(-1)
    m02, m12, m22 = m[2].unbind(-1)
    # 4 q_k^2 for k = x, y, z, w.
    four_sq = torch.stack([
        1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22, 1 + m00 + m11 + m22,
    ], dim=-1)  # fmt: skip
    # Row k holds 4 q_k * (x, y, z, w).
    cands = torch.stack([
        torch.stack([four_sq[..., 0], m01 + m10, m02 + m20, m21 - m12], dim=-1),
        torch.stack([m01 + m10, four_sq[..., 1], m12 + m21, m02 - m20], dim=-1),
        torch.stack([m02 + m20, m12 + m21, four_sq[..., 2], m10 - m01], dim=-1),
        torch.stack([m21 - m12, m02 - m20, m10 - m01, four_sq[..., 3]], dim=-1),
    ], dim=-2)  # fmt: skip
    two_abs = _safe_sqrt(four_sq)  # 2 |q_k|
    cands = cands / (2 * two_abs.clamp_min(0.1))[..., None]
    pick = torch.nn.functional.one_hot(two_abs.argmax(dim=-1), 4).to(R.dtype)
    q = (cands * pick[..., None]).sum(dim=-2)
    q = torch.where(q[..., 3:4] < 0, -q, q)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def rotation_angle(R: Tensor) -> Tensor:
    """Rotation angle of rotation matrices (norm of the axis-angle vector).

    Uses ``atan2(|vee(R - R^T)| / 2, (trace(R) - 1) / 2)``, accurate near 0 and near pi
    (unlike ``acos`` of the trace); the gradient at exactly 0 is 0.

    Args:
        R: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(...)`` angles in radians, in ``[0, pi]``.
    """
    vee = torch.stack([
        R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1],
    ], dim=-1)  # fmt: skip
    sin2 = _safe_sqrt((vee * vee).sum(dim=-1))  # 2 sin(angle)
    cos2 = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1  # 2 cos(angle)
    return torch.atan2(sin2, cos2)
