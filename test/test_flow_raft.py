"""RAFT-small: the authors' function on their checkpoint, and its provider's contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihoi_ros.errors import ModelError, ModelNotFoundError
from unihoi_ros.flow import FlowProvider
from unihoi_ros.flow.raft import RAFTFlow, RaftSmall, load_raft_small, pad_to_multiple


@pytest.fixture(scope="module")
def raft_dir(shared_dir):
    path = shared_dir / "weights" / "raft_small"
    if not (path / "raft-small.pth").is_file():
        pytest.skip("no RAFT-small checkpoint in ../shared/weights")
    return path


@pytest.fixture(scope="module")
def raft(raft_dir):
    torch.set_num_threads(2)
    return RAFTFlow(raft_dir / "raft-small.pth")


def test_matches_the_official_code_on_a_real_pair(raft, raft_dir):
    """The official RAFT code's flow (``raft_small_conformance.npz``: 7-Scenes frames
    450 -> 451 at 320x240, 12 iterations) to 1e-3 px."""
    ref = np.load(raft_dir / "raft_small_conformance.npz")
    flow = raft.flow(ref["image1"], ref["image2"])
    assert flow.shape == (240, 320, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow, ref["flow"], atol=1e-3)
    # Not trivially small: the pair moves by pixels.
    assert np.abs(ref["flow"]).mean() > 1.0


def test_backward_flow_of_a_known_shift(raft, raft_dir):
    """A real frame moved by a known sub-pixel shift ``s`` (OpenCV warp): the backward flow
    of the moved frame is ``-s`` inside the image, at a size that is not a multiple of 8
    (padding); the forward direction reads ``+s``."""
    import cv2

    prev = np.load(raft_dir / "raft_small_conformance.npz")["image1"][:236, :316]
    shift = np.array([3.25, -1.5], np.float32)
    curr = cv2.warpAffine(prev, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                          prev.shape[1::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
    assert isinstance(raft, FlowProvider)
    flow = raft.backward(curr, prev)
    assert flow.shape == (236, 316, 2)
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    err = np.linalg.norm(inner + shift, axis=1)
    assert np.median(err) < 0.2  # RAFT-S reads 0.10 px here, DIS medium 0.06
    forward = raft.backward(prev, curr)[16:-16, 16:-16].reshape(-1, 2)
    assert np.median(np.linalg.norm(forward - shift, axis=1)) < 0.2


def test_pad_to_multiple_replicates_the_border():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    padded, size = pad_to_multiple(x, 4)
    assert size == (3, 5) and padded.shape == (1, 2, 4, 8)
    torch.testing.assert_close(padded[..., :3, :5], x)
    torch.testing.assert_close(padded[..., 3, :5], x[..., 2, :])
    torch.testing.assert_close(padded[..., :3, 7], x[..., :, 4])


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_raft_small(tmp_path / "missing.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot be read"):
        load_raft_small(corrupt)
    wrong = tmp_path / "wrong.pth"
    state = RaftSmall().state_dict()
    state.pop("update_block.flow_head.conv2.bias")
    torch.save(state, wrong)
    with pytest.raises(ModelError, match="missing key"):
        load_raft_small(wrong)
    with pytest.raises(ValueError, match="iters"):
        RAFTFlow(wrong, iters=0)
