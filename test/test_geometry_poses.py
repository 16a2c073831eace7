"""SE(3) helpers: inverse/compose identities, relative poses, chaining, quaternions, angles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from unihoi_ros.geometry.poses import (
    chain_relative,
    chain_relative_np,
    compose,
    invert_se3,
    matrices_from_quaternions,
    quaternions_from_matrices,
    relative_pose,
    rotation_angle,
    se3_from_rt,
    sim3_matrix,
)

F64 = torch.float64


def _poses(seed: int, *shape: int, dtype=F64) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    R = Rotation.random(n, random_state=rng).as_matrix().reshape(*shape, 3, 3)
    t = rng.normal(size=(*shape, 3))
    return se3_from_rt(torch.tensor(R, dtype=dtype), torch.tensor(t, dtype=dtype))


def _eye(*shape: int) -> torch.Tensor:
    return torch.eye(4, dtype=F64).expand(*shape, 4, 4)


def test_se3_from_rt_layout_and_broadcast():
    R = torch.eye(3, dtype=F64)
    t = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    T = se3_from_rt(R, t)
    assert T.shape == (2, 4, 4)
    assert T[1, :3, 3].tolist() == [4.0, 5.0, 6.0] and T[0, 3].tolist() == [0, 0, 0, 1]


def test_invert_and_compose_identities():
    T = _poses(0, 5)
    torch.testing.assert_close(compose(T, invert_se3(T)), _eye(5))
    torch.testing.assert_close(compose(invert_se3(T), T), _eye(5))
    torch.testing.assert_close(invert_se3(T), torch.linalg.inv(T))
    torch.testing.assert_close(invert_se3(invert_se3(T)), T)
    A, B, C = _poses(1, 5), _poses(2, 5), _poses(3, 5)
    torch.testing.assert_close(compose(A, B, C), A @ B @ C)
    torch.testing.assert_close(compose(compose(A, B), C), compose(A, compose(B, C)))
    torch.testing.assert_close(compose(A), A)
    torch.testing.assert_close(invert_se3(A @ B), invert_se3(B) @ invert_se3(A))
    with pytest.raises(ValueError):
        compose()


def test_relative_pose_definition():
    T_a, T_b = _poses(4, 6), _poses(5, 6)
    rel = relative_pose(T_a, T_b)
    torch.testing.assert_close(T_a @ rel, T_b)  # pose of b in a's frame
    torch.testing.assert_close(rel, torch.linalg.inv(T_a) @ T_b)
    torch.testing.assert_close(relative_pose(T_a, T_a), _eye(6))


def test_chain_relative_rebuilds_trajectory_from_frame_zero():
    T = _poses(6, 2, 7)  # batch 2, 7 frames
    rel = relative_pose(T[:, :-1], T[:, 1:])
    chained = chain_relative(rel)
    assert chained.shape == (2, 7, 4, 4)
    torch.testing.assert_close(chained[:, 0], _eye(2))
    torch.testing.assert_close(chained, relative_pose(T[:, :1], T))
    single = chain_relative(rel[:, :0])
    assert single.shape == (2, 1, 4, 4)


def test_chain_relative_np_is_the_numpy_twin():
    T = _poses(6, 2, 7)
    rel = relative_pose(T[:, :-1], T[:, 1:])
    chained = chain_relative_np(rel.numpy())
    assert isinstance(chained, np.ndarray) and chained.shape == (2, 7, 4, 4)
    np.testing.assert_allclose(chained, chain_relative(rel).numpy(), rtol=0, atol=1e-12)
    # The loop the streaming reconstructor writes: T_0 = I, T_{k+1} = T_k @ rel_k.
    loop = [np.eye(4)]
    for r in rel[0].numpy():
        loop.append(loop[-1] @ r)
    np.testing.assert_array_equal(chain_relative_np(rel[0].numpy()), np.stack(loop))
    assert chain_relative_np(np.zeros((0, 4, 4))).shape == (1, 4, 4)


def test_sim3_matrix():
    T = _poses(7, 3)
    s = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    S = sim3_matrix(T, s)
    p = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    ref = s[:, None] * (T[:, :3, :3] @ p) + T[:, :3, 3]
    torch.testing.assert_close((S[:, :3, :3] @ p) + S[:, :3, 3], ref)


def _special_rotations() -> np.ndarray:
    mats = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0])]
    mats.append(np.diag([-1.0, -1.0, 1.0]))
    for axis in np.eye(3):
        for angle in (1e-9, math.pi / 2, math.pi - 1e-9, math.pi):
            mats.append(Rotation.from_rotvec(axis * angle).as_matrix())
    mats.append(Rotation.from_rotvec(np.array([1.0, 1.0, 1.0]) / 3**0.5 * math.pi).as_matrix())
    return np.stack(mats)


def _same_quaternion(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    err = np.minimum(np.abs(a - b).max(-1), np.abs(a + b).max(-1))  # q and -q: same rotation
    assert err.max() < atol, err.max()


def test_quaternion_against_scipy_xyzw():
    R = np.concatenate([Rotation.random(200, random_state=8).as_matrix(), _special_rotations()])
    q = quaternions_from_matrices(torch.tensor(R)).numpy()
    assert (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    _same_quaternion(q, Rotation.from_matrix(R).as_quat(), 1e-12)  # scipy: (x, y, z, w)
    R_back = matrices_from_quaternions(torch.tensor(q)).numpy()
    np.testing.assert_allclose(R_back, R, atol=1e-12)
    q_rand = np.random.default_rng(9).normal(size=(50, 4))
    np.testing.assert_allclose(
        matrices_from_quaternions(torch.tensor(q_rand)).numpy(),
        Rotation.from_quat(q_rand).as_matrix(),
        atol=1e-12,
    )


def test_quaternion_order_is_xyzw():
    R = Rotation.from_rotvec([0.0, 0.0, math.pi / 2]).as_matrix()  # 90 deg about z
    q = quaternions_from_matrices(torch.tensor(R)).numpy()
    np.testing.assert_allclose(q, [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_quaternion_round_trip_property(seed):
    R = Rotation.random(random_state=seed).as_matrix()
    q = quaternions_from_matrices(torch.tensor(R))
    np.testing.assert_allclose(matrices_from_quaternions(q).numpy(), R, atol=1e-12)


def test_quaternion_float32_and_gradients():
    R = torch.tensor(Rotation.random(4, random_state=10).as_matrix(), dtype=torch.float32)
    assert quaternions_from_matrices(R).dtype == torch.float32
    R64 = torch.tensor(_special_rotations()).requires_grad_()
    quaternions_from_matrices(R64).sum().backward()
    assert torch.isfinite(R64.grad).all()


def test_rotation_angle_matches_scipy_everywhere():
    R = np.concatenate([Rotation.random(200, random_state=11).as_matrix(), _special_rotations()])
    ang = rotation_angle(torch.tensor(R)).numpy()
    ref = Rotation.from_matrix(R).magnitude()
    np.testing.assert_allclose(ang, ref, rtol=0, atol=1e-12)
    tiny = Rotation.from_rotvec([3e-10, 0, 0]).as_matrix()
    assert abs(float(rotation_angle(torch.tensor(tiny))) - 3e-10) < 1e-15  # relative accuracy


def test_rotation_angle_gradient_finite_at_identity_and_pi():
    R = torch.tensor(_special_rotations()).requires_grad_()
    rotation_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()
