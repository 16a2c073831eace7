"""Per-pixel Procrustes confidence for frames 1..F-1, computed cheaply but exactly.

The authors (``backbone_nvds_unidepth.py``, ``compute_correspondence_weights``) upsample
two token-grid feature maps (decoder latents and projected U-Net features, ``C`` channels
each) to full resolution, sample frame t-1's maps at the backward-flow targets, and run an
MLP ``Linear(4C + 2, 512) -> ReLU -> Linear(512, 64) -> ReLU -> Linear(64, 1) -> sigmoid``
on the concatenation ``[dpt(t-1)∘flow, dpt(t), dino(t-1)∘flow, dino(t), conf(t-1)∘flow,
conf(t)]``: 2050 channels per pixel at ViT sizes, about 11 s and 2.7 GB per window.

The first layer is linear, so it splits into one linear map per part; resizing (bilinear,
align_corners=True) and bilinear sampling (zeros padding) are linear per channel, so each
map commutes with them. We therefore project the token-grid maps first (1200 tokens instead
of 110,592 pixels), sum the parts that share a frame and a resampling, and only then
upsample and sample: the first layer's output is the same to float rounding, at a small
fraction of the cost. The rest of the MLP runs over pixel rows in chunks to bound memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import Linear, linear
from .resample import resize_matrix


def make_confidence_mlp(channels: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """``Linear(4C+2, h0) -> ReLU -> ... -> Linear(h_last, 1)`` (keys ``0``, ``2``, ``4``)."""
    dims = [4 * channels + 2, *hidden, 1]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers += [Linear(dims[i], dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _split_first_layer(mlp: nn.Sequential, c: int) -> tuple[Tensor, ...]:
    w = mlp[0].weight  # (h0, 4C + 2), column order of the authors' concatenation
    return (w[:, :c], w[:, c:2 * c], w[:, 2 * c:3 * c], w[:, 3 * c:4 * c],
            w[:, 4 * c], w[:, 4 * c + 1], mlp[0].bias)


def _tail(mlp: nn.Sequential, hidden: Tensor) -> Tensor:
    """Layers after the first ReLU, applied to ``hidden (B, h0, P)`` -> ``(B, P)``."""
    x = hidden
    for layer in list(mlp)[2:]:
        if isinstance(layer, nn.Linear):
            x = torch.matmul(layer.weight, x) + layer.bias.view(1, -1, 1)
        else:
            x = layer(x)
    return torch.sigmoid(x[:, 0])


def dense_confidence(
    mlp: nn.Sequential,
    dpt: Tensor,
    dino: Tensor,
    conf: Tensor,
    grid: Tensor,
    chunk_rows: int | None = 48,
) -> Tensor:
    """Confidence ``(B, F-1, H, W)`` in [0, 1] for frames 1..F-1.

    ``dpt``, ``dino``: ``(B, F, h, w, C)`` token-grid maps (decoder latents, projected U-Net
    features); ``conf``: ``(B, F, H, W)`` UniDepth confidence at output size; ``grid``:
    ``(B, F-1, H, W, 2)`` where each pixel of frame t lands in frame t-1, in
    ``grid_sample`` units ([-1, 1], align_corners=False). ``chunk_rows`` bounds the
    full-resolution working set (``None``: all rows at once, used for export).
    """
    b, f, h, w, c = dpt.shape
    hh, ww = conf.shape[-2:]
    w_de, w_dl, w_pe, w_pl, w_ce, w_cl, bias = _split_first_layer(mlp, c)
    # Token-grid projections: "earlier" parts of frames 0..F-2, "later" parts of 1..F-1.
    earlier = linear(dpt[:, :-1], w_de) + linear(dino[:, :-1], w_pe)
    later = linear(dpt[:, 1:], w_dl) + linear(dino[:, 1:], w_pl)
    h0 = earlier.shape[-1]
    earlier = earlier.permute(0, 1, 4, 2, 3).reshape(b * (f - 1), h0, h, w)
    later = later.permute(0, 1, 4, 2, 3).reshape(b * (f - 1), h0, h, w)
    grid = grid.reshape(b * (f - 1), hh, ww, 2)
    conf_e = conf[:, :-1].reshape(b * (f - 1), 1, hh, ww)
    conf_l = conf[:, 1:].reshape(b * (f - 1), 1, hh, ww)
    # The per-pixel terms (two confidences and the bias) as one (h0, 3) @ (3, pixels) product.
    w_pix = torch.stack((w_ce, w_cl, bias), dim=1)
    # The later frame is upsampled row block by row block (bilinear, align_corners=True,
    # separable): rows ry[r0:r1] @ (later @ rx.T), never the whole full-resolution map.
    # Whole frames (chunk_rows None, the export): plain interpolation, whose output size
    # follows the frames' size in a graph; in row blocks: rows of the resampling matrices.
    whole = chunk_rows is None
    if not whole:
        ry = resize_matrix(h, hh, align_corners=True, device=dpt.device, dtype=dpt.dtype)
        rx = resize_matrix(w, ww, align_corners=True, device=dpt.device, dtype=dpt.dtype)
    step = hh if whole else max(1, int(chunk_rows))
    inplace = not torch.is_grad_enabled()

    out = []
    for i in range(b * (f - 1)):
        up_e = F.interpolate(earlier[i:i + 1], (hh, ww), mode="bilinear", align_corners=True)
        if not whole:
            later_x = torch.matmul(later[i], rx.T)  # (h0, h, W)
        rows = []
        for r0 in range(0, hh, step):
            r1 = min(hh, r0 + step)
            g = grid[i:i + 1, r0:r1]
            sampled = F.grid_sample(up_e, g, mode="bilinear", padding_mode="zeros",
                                    align_corners=False)
            ce = F.grid_sample(conf_e[i:i + 1], g, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
            pix = torch.cat((ce.reshape(1, -1), conf_l[i, :, r0:r1].reshape(1, -1),
                             torch.ones_like(ce).reshape(1, -1)), dim=0)  # (3, rows*W)
            if whole:
                up_l = F.interpolate(later[i:i + 1], (hh, ww), mode="bilinear",
                                     align_corners=True)[0]  # (h0, H, W)
            else:
                up_l = torch.matmul(ry[r0:r1], later_x)  # (h0, rows, W)
            if inplace:  # inference: reuse the grid_sample output, no temporaries
                hid = sampled.view(h0, -1).add_(up_l.view(h0, -1)).addmm_(w_pix, pix)
                hid = hid.relu_()
            else:
                hid = torch.relu(torch.addmm(sampled.reshape(h0, -1) + up_l.reshape(h0, -1),
                                             w_pix, pix))
            rows.append(_tail(mlp, hid.unsqueeze(0)).reshape(1, r1 - r0, ww))
        out.append(torch.cat(rows, dim=1))
    return torch.cat(out, dim=0).reshape(b, f - 1, hh, ww)


def dense_confidence_reference(
    mlp: nn.Sequential, dpt: Tensor, dino: Tensor, conf: Tensor, grid: Tensor
) -> Tensor:
    """The authors' formulation (full-resolution 4C+2 concatenation), for tests only."""
    b, f, h, w, c = dpt.shape
    hh, ww = conf.shape[-2:]

    def up(x: Tensor) -> Tensor:
        x = x.permute(0, 1, 4, 2, 3).reshape(b * f, c, h, w)
        x = F.interpolate(x, (hh, ww), mode="bilinear", align_corners=True)
        return x.reshape(b, f, c, hh, ww)

    def sample(x: Tensor) -> Tensor:
        n = x.shape[2]
        s = F.grid_sample(x[:, :-1].reshape(-1, n, hh, ww), grid.reshape(-1, hh, ww, 2),
                          mode="bilinear", padding_mode="zeros", align_corners=False)
        return s.reshape(b, f - 1, n, hh, ww)

    d, p, cf = up(dpt), up(dino), conf.unsqueeze(2)
    feats = torch.cat((sample(d), d[:, 1:], sample(p), p[:, 1:], sample(cf), cf[:, 1:]), dim=2)
    return mlp(feats.permute(0, 1, 3, 4, 2)).sigmoid()[..., 0]
