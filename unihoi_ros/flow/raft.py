"""RAFT-small optical flow (Teed & Deng, ECCV 2020) on the authors' released ``raft-small``
checkpoint, as a :class:`~unihoi_ros.flow.base.FlowProvider`.

A learned flow for real video, where OpenCV DIS (the default) loses accuracy on blur,
weak texture and larger motions. No weights ship with the package and none are
downloaded: pass the path of the authors' ``raft-small.pth`` (princeton-vl/RAFT,
BSD-3-Clause; 0.99 M parameters). The network is written here from the paper's
description and computes the released model's function: the conformance test compares it
with the official code's output on a real frame pair (``../shared/weights/raft_small``).

Shapes: images ``(B, 3, H, W)`` float RGB in 0-255 with ``H`` and ``W`` multiples of 8
(:class:`RAFTFlow` pads); features at 1/8 resolution ``(B, C, H/8, W/8)``; flow
``(B, 2, H, W)`` in pixels, x then y, from image 1 to image 2 (``image1(p) ~ image2(p +
flow(p))``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unihoi_ros.errors import ModelError, ModelNotFoundError
from unihoi_ros.geometry.camera import pixel_grid

#: The small model's sizes (the paper's RAFT-S).
HIDDEN_DIM = 96        # GRU state
CONTEXT_DIM = 64       # context features fed to every update
FEATURE_DIM = 128      # matching features
CORR_LEVELS = 4        # correlation pyramid levels (1/8 ... 1/64)
CORR_RADIUS = 3        # lookup window (2r+1)^2 per level
DEFAULT_ITERS = 12     # the authors' evaluation setting


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 residual block; ``instance`` or no normalisation."""

    def __init__(self, c_in: int, c_out: int, stride: int, instance_norm: bool) -> None:
        super().__init__()
        mid = c_out // 4
        self.conv1 = nn.Conv2d(c_in, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(mid, c_out, 1)
        self.instance_norm = instance_norm
        # The checkpoint's key is ``downsample.0``: keep the Sequential.
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride))
                           if stride != 1 else None)

    def _norm(self, x: Tensor) -> Tensor:
        return F.instance_norm(x) if self.instance_norm else x

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self._norm(self.conv1(x)))
        y = F.relu(self._norm(self.conv2(y)))
        y = F.relu(self._norm(self.conv3(y)))
        if self.downsample is not None:
            x = self._norm(self.downsample(x))
        return F.relu(x + y)


class SmallEncoder(nn.Module):
    """``(B, 3, H, W)`` in [-1, 1] -> ``(B, out, H/8, W/8)``: a 7x7 stride-2 stem and three
    pairs of bottleneck blocks (32, 64, 96 channels; strides 1, 2, 2)."""

    def __init__(self, out_dim: int, instance_norm: bool) -> None:
        super().__init__()
        self.instance_norm = instance_norm
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=3)
        layers, c_in = [], 32
        for c_out, stride in ((32, 1), (64, 2), (96, 2)):
            layers.append(nn.Sequential(Bottleneck(c_in, c_out, stride, instance_norm),
                                        Bottleneck(c_out, c_out, 1, instance_norm)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = layers
        self.conv2 = nn.Conv2d(96, out_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = F.relu(F.instance_norm(x) if self.instance_norm else x)
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class MotionEncoder(nn.Module):
    """Correlation ``(B, L*(2r+1)^2, h, w)`` and flow ``(B, 2, h, w)`` -> 82 channels (80
    features and the flow itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.convc1 = nn.Conv2d(CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2, 96, 1)
        self.convf1 = nn.Conv2d(2, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv = nn.Conv2d(128, 80, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        c = F.relu(self.convc1(corr))
        f = F.relu(self.convf2(F.relu(self.convf1(flow))))
        return torch.cat([F.relu(self.conv(torch.cat([c, f], 1))), flow], 1)


class ConvGRU(nn.Module):
    """A 3x3 convolutional GRU: state ``h`` (B, 96, h, w), input ``x`` (B, 146, h, w)."""

    def __init__(self, hidden: int, inputs: int) -> None:
        super().__init__()
        self.convz = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)
        self.convr = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)
        self.convq = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], 1)
        z = torch.sigmoid(self.convz(hx))
        r = torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q


class FlowHead(nn.Module):
    """GRU state -> flow update ``(B, 2, h, w)`` in 1/8-resolution pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(HIDDEN_DIM, 128, 3, padding=1)
        self.conv2 = nn.Conv2d(128, 2, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(h)))


class UpdateBlock(nn.Module):
    """One refinement step: motion features + context -> GRU -> flow update."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MotionEncoder()
        self.gru = ConvGRU(HIDDEN_DIM, 82 + CONTEXT_DIM)
        self.flow_head = FlowHead()

    def forward(self, h: Tensor, context: Tensor, corr: Tensor, flow: Tensor
                ) -> tuple[Tensor, Tensor]:
        h = self.gru(h, torch.cat([context, self.encoder(flow, corr)], 1))
        return h, self.flow_head(h)


def sample_at(img: Tensor, xy: Tensor) -> Tensor:
    """Bilinear samples of ``img`` (N, C, H, W) at pixel positions ``xy`` (N, h, w, 2)
    (x then y; corners at pixel centres; zero outside) -> (N, C, h, w)."""
    h, w = img.shape[-2:]
    scale = xy.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    return F.grid_sample(img, xy * scale - 1, align_corners=True)


class CorrelationPyramid:
    """All-pairs correlation of two feature maps ``(B, C, h, w)`` and its average-pooled
    pyramid; :meth:`lookup` reads a ``(2r+1)^2`` window around each pixel's estimate at
    every level."""

    def __init__(self, f1: Tensor, f2: Tensor) -> None:
        b, c, h, w = f1.shape
        corr = torch.matmul(f1.flatten(2).transpose(1, 2), f2.flatten(2)) / c ** 0.5
        corr = corr.reshape(b * h * w, 1, h, w)  # one h x w map per pixel of image 1
        self.levels = [corr]
        for _ in range(CORR_LEVELS - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.levels.append(corr)
        r = torch.arange(-CORR_RADIUS, CORR_RADIUS + 1, dtype=torch.float32,
                         device=f1.device)
        # The checkpoint's channel order: x offset varies slowest, then y.
        dx, dy = torch.meshgrid(r, r, indexing="ij")
        self.offsets = torch.stack([dx, dy], -1)  # (2r+1, 2r+1, 2)

    def lookup(self, coords: Tensor) -> Tensor:
        """``coords`` (B, 2, h, w) 1/8-resolution positions in image 2 -> correlation
        features (B, L*(2r+1)^2, h, w)."""
        b, _, h, w = coords.shape
        centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
        out = []
        for i, corr in enumerate(self.levels):
            window = sample_at(corr, centre / 2 ** i + self.offsets)  # (bhw, 1, 2r+1, 2r+1)
            out.append(window.reshape(b, h, w, -1))
        return torch.cat(out, -1).permute(0, 3, 1, 2).contiguous()


class RaftSmall(nn.Module):
    """RAFT-S: parameter names as in the authors' checkpoint (without ``module.``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fnet = SmallEncoder(FEATURE_DIM, instance_norm=True)
        self.cnet = SmallEncoder(HIDDEN_DIM + CONTEXT_DIM, instance_norm=False)
        self.update_block = UpdateBlock()

    def forward(self, image1: Tensor, image2: Tensor, iters: int = DEFAULT_ITERS) -> Tensor:
        """Flow ``(B, 2, H, W)`` from ``image1`` to ``image2`` (both ``(B, 3, H, W)`` RGB
        0-255, ``H``, ``W`` multiples of 8), after ``iters`` refinements."""
        x1, x2 = image1 / 127.5 - 1.0, image2 / 127.5 - 1.0
        f1, f2 = self.fnet(torch.cat([x1, x2])).chunk(2)
        corr = CorrelationPyramid(f1, f2)
        h, context = self.cnet(x1).split([HIDDEN_DIM, CONTEXT_DIM], 1)
        h, context = torch.tanh(h), F.relu(context)
        b, _, h8, w8 = f1.shape
        coords0 = pixel_grid(h8, w8, device=f1.device).permute(2, 0, 1)[None].expand(
            b, 2, h8, w8)  # (B, 2, h, w), x then y
        coords1 = coords0.clone()
        for _ in range(iters):
            flow = coords1 - coords0
            h, delta = self.update_block(h, context, corr.lookup(coords1), flow)
            coords1 = coords1 + delta
        # RAFT-S upsamples bilinearly (no learned mask), corners aligned.
        return 8 * F.interpolate(coords1 - coords0, scale_factor=8, mode="bilinear",
                                 align_corners=True)


def load_raft_small(path: str | Path) -> RaftSmall:
    """A :class:`RaftSmall` with the weights at ``path`` (the authors' ``raft-small.pth``,
    with or without DataParallel's ``module.`` prefix), in eval mode.

    Raises:
        ModelNotFoundError: no file at ``path``.
        ModelError: the file is not a readable checkpoint, or not RAFT-small's (the
            message names the offending keys).
    """
    from unihoi_ros.model.checkpoint import load_network_state

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"RAFT-small checkpoint {path} not found (the authors' "
                                 "raft-small.pth from princeton-vl/RAFT; nothing is "
                                 "downloaded)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"RAFT-small checkpoint {path} cannot be read: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"RAFT-small checkpoint {path} holds a {type(raw).__name__}, "
                         "not a state dict")
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    model = RaftSmall()
    load_network_state(model, state, source=str(path))
    return model.eval()


def pad_to_multiple(image: Tensor, multiple: int = 8) -> tuple[Tensor, tuple[int, int]]:
    """Replicate-pad ``image`` (B, C, H, W) at the bottom and right to multiples of
    ``multiple``; returns the padded image and the original ``(H, W)``."""
    h, w = image.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph), mode="replicate")
    return image, (h, w)


class RAFTFlow:
    """Backward flow from RAFT-small (see the module docstring for the weights).

    Args:
        weights: path of the authors' ``raft-small.pth``.
        iters: refinement iterations (the authors evaluate with 12; fewer is faster and
            coarser).
        device: torch device.
    """

    name = "raft-small"

    def __init__(self, weights: str | Path, iters: int = DEFAULT_ITERS,
                 device: str = "cpu") -> None:
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        self.iters = iters
        self.device = torch.device(device)
        self.model = load_raft_small(weights).to(self.device)

    def describe(self) -> str:
        return f"RAFT-small ({self.iters} iterations)"

    @torch.inference_mode()
    def flow(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        """``(H, W, 2)`` float32 flow from ``image1`` to ``image2`` (``(H, W, 3)`` uint8 RGB)."""
        pair = torch.from_numpy(np.stack([image1, image2])).to(self.device)
        pair = pair.permute(0, 3, 1, 2).float()
        pair, (h, w) = pad_to_multiple(pair)
        out = self.model(pair[:1], pair[1:], self.iters)[0, :, :h, :w]
        return out.permute(1, 2, 0).contiguous().cpu().numpy().astype(np.float32)

    def backward(self, curr: np.ndarray, prev: np.ndarray, curr_stamp_ns: int = 0,
                 prev_stamp_ns: int = 0) -> np.ndarray:
        """``(H, W, 2)`` float32 pixels from ``curr`` to ``prev`` (see
        :class:`~unihoi_ros.flow.base.FlowProvider`)."""
        return self.flow(curr, prev)
