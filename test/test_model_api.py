"""Window-network API on the ``tiny`` size: shapes, encoder caching, cheap confidence head."""

from __future__ import annotations

import pytest
import torch

from unihoi_ros.geometry.window_poses import poses_from_window
from unihoi_ros.model import ModelConfig, UniHOI, get_config
from unihoi_ros.model.confidence import (
    dense_confidence,
    dense_confidence_reference,
    make_confidence_mlp,
)


@pytest.fixture(scope="module")
def tiny() -> UniHOI:
    torch.manual_seed(0)
    return UniHOI.from_size("tiny").eval()


def _window(h: int = 120, w: int = 160, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 4, 3, h, w, generator=g), 2 * torch.randn(1, 3, 2, h, w, generator=g)


def test_output_shapes_and_ranges(tiny):
    frames, flows = _window()
    with torch.inference_mode():
        out = tiny(frames, flows)
    assert out.depth.shape == (1, 4, 120, 160)
    assert out.K.shape == (1, 3, 3)
    assert out.confidence.shape == (1, 3, 120, 160)
    assert (out.depth > 0).all()
    assert ((out.confidence >= 0) & (out.confidence <= 1)).all()
    assert torch.allclose(out.K[0, 2], torch.tensor([0.0, 0.0, 1.0]))
    poses = poses_from_window(out.depth, out.K, flows, out.confidence)
    assert poses.shape == (1, 4, 4, 4)
    assert torch.allclose(poses[:, 0], torch.eye(4))


def test_encoder_cache_path_equals_full_forward(tiny):
    frames, flows = _window(96, 128)
    with torch.inference_mode():
        full = tiny(frames, flows)
        cached = [tiny.encode(frames[:, i]) for i in range(4)]
        part = tiny.forward_window(cached, flows)
    for a, b in ((full.depth, part.depth), (full.K, part.K), (full.confidence, part.confidence)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [2, 3])
def test_decoding_the_last_frames_equals_the_tail_of_a_full_decode(tiny, n):
    """A stream needs only the new frames and their anchor: decoding those alone gives
    their depth and pair confidences exactly as a full decode does, and the same K (the
    camera head still sees all four frames)."""
    frames, flows = _window(seed=4)
    frames = torch.cat([frames, frames.flip(1)])  # batch of two: rows b * F + t
    flows = torch.cat([flows, -flows])
    with torch.inference_mode():
        full = tiny(frames, flows)
        tail = tiny(frames, flows, decode_last=n)
    assert tail.depth.shape == (2, n, 120, 160) and tail.confidence.shape == (2, n - 1, 120, 160)
    assert torch.allclose(tail.depth, full.depth[:, 4 - n:], rtol=1e-5, atol=1e-6)
    assert torch.allclose(tail.confidence, full.confidence[:, 4 - n:], rtol=1e-5, atol=1e-6)
    assert torch.equal(tail.K, full.K)
    with pytest.raises(ValueError, match="decode_last"):
        tiny(frames, flows, decode_last=1)


def test_batch_of_two_matches_single_windows(tiny):
    f1, fl1 = _window(seed=2)
    f2, fl2 = _window(seed=3)
    with torch.inference_mode():
        both = tiny(torch.cat([f1, f2]), torch.cat([fl1, fl2]))
        one = tiny(f2, fl2)
    assert torch.allclose(both.depth[1:], one.depth, rtol=1e-4, atol=1e-5)
    assert torch.allclose(both.confidence[1:], one.confidence, rtol=1e-4, atol=1e-5)


def test_dense_confidence_equals_authors_concatenation():
    torch.manual_seed(0)
    c = 8
    mlp = make_confidence_mlp(c, (32, 8))
    dpt, dino = torch.randn(2, 4, 5, 6, c), torch.randn(2, 4, 5, 6, c)
    conf = torch.rand(2, 4, 30, 40)
    grid = torch.rand(2, 3, 30, 40, 2) * 2.4 - 1.2  # some samples fall outside: zeros
    ref = dense_confidence_reference(mlp, dpt, dino, conf, grid)
    for rows in (7, None):
        ours = dense_confidence(mlp, dpt, dino, conf, grid, chunk_rows=rows)
        assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6)
        with torch.inference_mode():  # the in-place inference path
            fast = dense_confidence(mlp, dpt, dino, conf, grid, chunk_rows=rows)
        assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-6)
    # Same gradients as the authors' formulation (the training path).
    dpt.requires_grad_(True)
    g_ref, = torch.autograd.grad(dense_confidence_reference(mlp, dpt, dino, conf, grid).sum(),
                                 dpt)
    g_ours, = torch.autograd.grad(dense_confidence(mlp, dpt, dino, conf, grid, 7).sum(), dpt)
    assert torch.allclose(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_config_round_trip_and_sizes():
    cfg = get_config("tiny")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert get_config("vitl14").network_input_shape(288, 384) == (420, 560)
    with pytest.raises(ValueError, match="unknown model size"):
        get_config("vitx")


def test_tiny_is_small_and_trainable():
    model = UniHOI.from_size("tiny")
    n = sum(p.numel() for p in model.parameters())
    assert n * 4 < 20e6
    assert all(p.requires_grad for p in model.parameters())
    frames, flows = _window(64, 80)
    out = model(frames, flows)
    (out.depth.mean() + out.confidence.mean()).backward()
    assert model.encoder.patch_embed.proj.weight.grad is not None


def test_reference_sizes_freeze_the_encoder():
    with torch.device("meta"):
        model = UniHOI.from_size("vits14")
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())


def test_training_after_inference_in_the_same_process():
    """Cached resize matrices made under inference_mode must not break a later backward."""
    from unihoi_ros.model.resample import _matrix_cpu

    _matrix_cpu.cache_clear()
    m = UniHOI.from_size("tiny")
    x, f = torch.rand(1, 4, 3, 48, 64), torch.zeros(1, 3, 2, 48, 64)
    with torch.inference_mode():
        m(x, f)
    m(x, f).depth.mean().backward()
    grad = m.encoder.patch_embed.proj.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_few_query_attention_equals_projected_context():
    """The class-token heads skip projecting the context; the result must not change."""
    from unihoi_ros.model.decoder import AttentionBlock

    torch.manual_seed(0)
    block = AttentionBlock(32, num_heads=1, expansion=2)
    for p in block.parameters():  # non-trivial LayerNorms, biases and scales
        p.data.normal_(0.0, 0.5)
    x, ctx, pos = torch.randn(2, 4, 32), torch.randn(2, 64, 32), torch.randn(2, 4, 32)
    fast = block(x, context=ctx, pos_embed=pos)  # 4 queries over 64 keys: the short path
    # A zero context positional term forces the generic path (projected keys and values).
    generic = block(x, context=ctx, pos_embed=pos, pos_embed_context=torch.zeros_like(ctx))
    assert torch.allclose(fast, generic, rtol=1e-5, atol=1e-5)
    g_fast, = torch.autograd.grad(block(x, context=ctx, pos_embed=pos).sum(), block.kv.weight)
    g_gen, = torch.autograd.grad(generic.sum(), block.kv.weight)
    assert torch.allclose(g_fast, g_gen, rtol=1e-4, atol=1e-5)


def test_encoder_keeps_only_requested_blocks():
    model = UniHOI.from_size("tiny").eval()
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        every, every_cls = model.encoder(x)
        picked, picked_cls = model.encoder(x, keep=[4, 2])
    assert len(every) == 4 and len(picked) == 2
    assert torch.equal(picked[0], every[3]) and torch.equal(picked_cls[1], every_cls[1])
    with pytest.raises(ValueError, match="outside blocks"):
        model.encoder(x, keep=[5])


def test_cpu_memory_settings_are_reported():
    from unihoi_ros.model import cpu_memory

    threshold = cpu_memory.limit_heap_retention()
    assert threshold in (None, 1 << 20)  # None only off glibc
    assert cpu_memory.limit_heap_retention() == threshold  # idempotent
    assert cpu_memory.allocator_settings()["mmap_threshold"] == threshold


def test_onednn_linear_equals_f_linear_and_keeps_autograd():
    from unihoi_ros.model.linear import MIN_MACS, MIN_ROWS, Linear, linear

    torch.manual_seed(0)
    layer = Linear(256, 256)
    x = torch.randn(3, MIN_ROWS, 256)  # 768 rows: the oneDNN path at inference
    assert 3 * MIN_ROWS * 256 * 256 >= MIN_MACS
    with torch.inference_mode():
        fast = layer(x)
        small = layer(x[:, :4])  # few rows: plain F.linear
    ref = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert fast.shape == ref.shape and torch.allclose(fast, ref, rtol=1e-5, atol=1e-5)
    assert torch.allclose(small, ref[:, :4], rtol=1e-6, atol=1e-6)
    non_contiguous = x.transpose(0, 1)  # (rows, 3, 64) view
    with torch.inference_mode():
        assert torch.allclose(linear(non_contiguous, layer.weight, layer.bias),
                              ref.transpose(0, 1), rtol=1e-5, atol=1e-5)
    # Training takes the autograd path: gradients exist and equal F.linear's.
    g, = torch.autograd.grad(layer(x).square().sum(), layer.weight)
    g_ref, = torch.autograd.grad(ref.square().sum(), layer.weight)
    assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-4)
