"""The mirrored camera (:mod:`unihoi_ros.geometry.mirror`) and mirror averaging
(:mod:`unihoi_ros.backends.mirror`): the mirror rules give the mirrored world's flow and
rays, computed independently, and the average of a network's output with its mirror's
cancels an error that is odd under mirroring, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from unihoi_ros.backends.base import Backend, WindowPrediction
from unihoi_ros.backends.mirror import MirrorAveragedBackend, average_with_mirrored
from unihoi_ros.geometry.camera import project, transform_points, unproject
from unihoi_ros.geometry.mirror import (
    mirror_flow,
    mirror_image,
    mirror_intrinsics,
    mirror_points,
)

#: The mirror of the camera frame: x -> -x.
M = np.diag([-1.0, 1.0, 1.0])


def flow_of(depth: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` pixel motion of a static scene of ``depth`` (metres) seen by a camera
    that moves by ``X -> R X + t``."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    uv, _ = project(transform_points(T, unproject(depth, K)), K)
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return uv - np.stack([u, v], axis=-1)


def test_mirror_rules_are_the_mirrored_world_with_skew():
    """Flow, K (skew included) and pixel points of the mirrored frames are those of the
    mirrored world (``x -> -x``, motion ``M R M, M t``), computed from scratch."""
    import cv2

    h, w = 12, 16
    K = np.array([[14.0, 0.7, 7.1], [0, 13.0, 5.6], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    depth = 1.5 + 0.03 * u + 0.02 * v  # a tilted plane, asymmetric left-right
    R = cv2.Rodrigues(np.array([0.2, 1.0, 0.1]) * 0.05)[0]
    t = np.array([0.03, -0.01, 0.02])
    K_m = mirror_intrinsics(K, w)
    expected = flow_of(mirror_image(depth), K_m, M @ R @ M, M @ t)
    assert np.allclose(mirror_flow(flow_of(depth, K, R, t)), expected, atol=1e-9)
    # a pixel's ray in the mirrored camera is the mirrored ray
    uv = np.array([[3.0, 4.0], [10.5, 2.25]])
    uv_m = mirror_points(uv, w)
    rays = np.linalg.inv(K) @ np.c_[uv, np.ones(2)].T
    rays_m = np.linalg.inv(K_m) @ np.c_[uv_m, np.ones(2)].T
    assert np.allclose(rays_m, M @ rays, atol=1e-12)
    # every rule is its own inverse, and the input is not touched
    assert np.array_equal(mirror_intrinsics(K_m, w), K) and K[0, 2] == 7.1
    assert np.array_equal(mirror_points(uv_m, w), uv)


class _BiasedNetwork(Backend):
    """A stand-in network that knows each frame's true depth and K (``truth``: frame bytes ->
    ``(depth, K)``) and reads them with an
    error that is odd under mirroring: depth too far on the right (x ``exp(a (u / (W-1) -
    1/2))``), cx 5 px too far right, confidence rising to the right."""

    name = "biased"

    def __init__(self, truth: dict[bytes, tuple], tilt: float) -> None:
        self.truth, self.tilt = truth, tilt

    def encode(self, rgb):
        return self.truth[np.ascontiguousarray(rgb).tobytes()]

    def infer_window(self, features, rgbs, flows_bwd, decode_last=None):
        depth = np.stack([d for d, _ in features])
        w = depth.shape[-1]
        ramp = np.linspace(0.0, 1.0, w, dtype=np.float64)
        biased = depth * np.exp(self.tilt * (ramp - 0.5))
        K = features[0][1].copy()
        K[0, 2] += 5.0
        confidence = np.broadcast_to(ramp, depth[1:].shape)
        return WindowPrediction(depth=biased.astype(np.float32), K=K,
                                confidence=confidence.astype(np.float32))


def test_mirror_average_cancels_an_error_odd_under_mirroring():
    rng = np.random.default_rng(0)
    h, w = 10, 14
    K = np.array([[12.0, 0.0, 6.0], [0.0, 12.0, 4.5], [0.0, 0.0, 1.0]])
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    depths = [rng.uniform(0.5, 3.0, (h, w)) for _ in range(4)]
    truth = {}
    for rgb, d in zip(frames, depths):  # a frame's mirror image shows the mirrored depth
        truth[rgb.tobytes()] = (d, K)
        truth[mirror_image(rgb, -2).tobytes()] = (mirror_image(d), mirror_intrinsics(K, w))
    net = _BiasedNetwork(truth, tilt=0.4)
    flows = rng.normal(size=(3, h, w, 2)).astype(np.float32)

    plain = net.infer_window([net.encode(f) for f in frames], frames, flows)
    mirror = MirrorAveragedBackend(net)
    averaged = mirror.infer_window([mirror.encode(f) for f in frames], frames, flows)

    truth_depth = np.stack(depths)
    assert np.abs(plain.depth / truth_depth - 1).max() > 0.15  # the network alone is off
    assert np.abs(averaged.depth / truth_depth - 1).max() < 1e-6
    assert np.allclose(averaged.K, K, atol=1e-12)  # cx: +5 px and -5 px
    assert np.allclose(averaged.confidence, 0.5, atol=1e-6)  # the ramp and its mirror
    assert averaged.depth.dtype == np.float32 and averaged.first_frame == 0
    assert mirror.name == "biased+mirror" and mirror.num_frames == 4


def test_mirror_average_keeps_the_frames_both_runs_decoded():
    """A backend may switch paths between the two runs (the ONNX router when a graph gets
    ready): one decodes the whole window, the other its last 2 frames. The average is of
    the last 2, their confidence rows with them; different image sizes are refused."""
    rng = np.random.default_rng(3)
    depth = rng.uniform(1.0, 2.0, (4, 6, 8)).astype(np.float32)
    confidence = rng.uniform(0.0, 1.0, (3, 6, 8)).astype(np.float32)
    K = np.array([[5.0, 0.0, 3.5], [0.0, 5.0, 2.5], [0.0, 0.0, 1.0]])
    whole = WindowPrediction(depth, K, confidence)
    last2 = WindowPrediction(depth[2:], K, confidence[2:], first_frame=2)

    def mirrored(p: WindowPrediction) -> WindowPrediction:  # what the mirror run returns
        return WindowPrediction(mirror_image(p.depth), mirror_intrinsics(p.K, 8),
                                mirror_image(p.confidence), p.first_frame)

    for direct, mirror in ((whole, mirrored(last2)), (last2, mirrored(whole))):
        out = average_with_mirrored(direct, mirror)
        assert out.first_frame == 2 and out.depth.shape == (2, 6, 8)
        assert np.allclose(out.depth, depth[2:], rtol=1e-6)
        assert np.allclose(out.confidence, confidence[2:]) and np.allclose(out.K, K)
    other_size = WindowPrediction(np.ones((4, 6, 9), np.float32), K,
                                  np.ones((3, 6, 9), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        average_with_mirrored(whole, other_size)


def test_mirror_average_of_the_network_is_mirror_symmetric_and_decodes_the_last_frames():
    """With the real (untrained) network: the averaged output of a mirrored window is the
    mirror of the averaged output, to the last bit; ``decode_last`` passes through."""
    import torch

    from unihoi_ros.backends.torch_backend import TorchBackend
    from unihoi_ros.model import UniHOI, get_config

    torch.manual_seed(0)
    backend = MirrorAveragedBackend(TorchBackend(UniHOI(get_config("tiny"))))
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (56, 70, 3), dtype=np.uint8) for _ in range(4)]
    flows = rng.normal(size=(3, 56, 70, 2)).astype(np.float32)
    out = backend.infer_window([backend.encode(f) for f in frames], frames, flows)
    frames_m = [mirror_image(f, -2) for f in frames]
    out_m = backend.infer_window([backend.encode(f) for f in frames_m], frames_m,
                                 mirror_flow(flows))
    assert np.array_equal(mirror_image(out_m.depth), out.depth)
    assert np.allclose(mirror_intrinsics(out_m.K, 70), out.K, atol=1e-9)
    last = backend.infer_window([backend.encode(f) for f in frames], frames, flows,
                                decode_last=2)
    assert last.first_frame == 2 and last.depth.shape == (2, 56, 70)
    assert np.allclose(last.depth, out.depth[2:], rtol=1e-5)
