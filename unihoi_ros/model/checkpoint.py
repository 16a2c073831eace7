"""Checkpoints: the authors' release, official UniDepth V2, and our safetensors format.

- :func:`load_egomono4d` reads the authors' PyTorch Lightning checkpoint (``state_dict``
  with keys prefixed ``model.``), strictly: every network key used, every parameter filled,
  and a clear error naming missing, unexpected or mis-shaped keys. Keys of the wrapper
  (``flow_predictor.``, the GMFlow weights) and of modules the authors build but never run
  (``backbone.camera_token_projector_list.``) are ignored with a log line.
- :func:`load_unidepth_encoder` initialises the encoder from an official UniDepth V2
  checkpoint (``pixel_encoder.`` keys; the same DINOv2 layout).
- :func:`save_pretrained` / :func:`load_pretrained`: safetensors weights plus a JSON config
  (size, input size, version, provenance), also stored in the safetensors metadata.
- :func:`rule_weights`: the deterministic weights of the conformance fixtures
  (``../shared/reference/egomono4d/README.md``), vectorised per tensor.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from unihoi_ros.errors import ModelError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Built by the authors, never used in their forward pass (their camera tokens go through
# ``token_projector_list``; see ``backbone_nvds_unidepth.py``).
IGNORED_NETWORK_PREFIXES = ("backbone.camera_token_projector_list.",)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class CheckpointError(ModelError):
    """A checkpoint does not match the network: the message names the offending keys."""


# --------------------------------------------------------------------------- weight rule
_SMALL_SUFFIXES = ("cls_token", "pos_embed", "register_tokens", "mask_token", "latents_pos",
                   "level_embeds")


def rule_tensor(name: str, shape: Iterable[int], dtype: str = "float32") -> np.ndarray:
    """One tensor of the conformance weight rule (``../shared/reference/egomono4d/README.md``).

    Integer buffers (``num_batches_tracked``) are zeros, as constructed.
    """
    shape = tuple(int(s) for s in shape)
    if not dtype.startswith("float"):
        return np.zeros(shape, dtype=np.int64)
    if name.endswith("gamma"):
        return np.full(shape, 0.1, dtype=np.float32)
    n = int(np.prod(shape)) if shape else 1
    draw = np.random.default_rng(zlib.crc32(name.encode())).standard_normal(n)
    draw = draw.reshape(shape)
    if name.endswith("running_var"):
        out = 1.0 + 0.1 * np.abs(draw)
    elif name.endswith("running_mean"):
        out = 0.02 * draw
    elif name.endswith(_SMALL_SUFFIXES):
        out = 0.02 * draw
    elif len(shape) <= 1:
        out = 1.0 + 0.02 * draw if name.endswith(".weight") else 0.02 * draw
    else:
        out = draw / np.sqrt(float(np.prod(shape[1:])))
    return out.astype(np.float32)


def rule_weights(
    shapes: Mapping[str, Iterable[int]] | Iterable[tuple[str, Iterable[int], str]],
) -> dict[str, np.ndarray]:
    """Rule weights for a layout: ``{name: shape}`` or ``[(name, shape, dtype), ...]``."""
    items = (
        [(k, v, "float32") for k, v in shapes.items()]
        if isinstance(shapes, Mapping)
        else [tuple(x) for x in shapes]
    )
    return {name: rule_tensor(name, shape, dtype) for name, shape, dtype in items}


def fill_rule_weights(model: nn.Module, prefix: str = "") -> None:
    """Overwrite every parameter and buffer of ``model`` in place with the rule weights.

    Names are the model's own state-dict keys with ``prefix`` prepended (the layout files'
    names); one tensor is generated at a time, so no second copy of the model is held.
    """
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            dtype = "float32" if t.is_floating_point() else "int64"
            t.copy_(torch.from_numpy(rule_tensor(prefix + name, t.shape, dtype)))


# --------------------------------------------------------------------------- strict load
def _load_file(path: str | Path) -> dict:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", mmap=True, weights_only=True)


def load_network_state(
    model: nn.Module, state: Mapping[str, Tensor], *, source: str, assign: bool = False
) -> None:
    """Copy ``state`` into ``model`` strictly; raise :class:`CheckpointError` naming keys.

    ``assign=True`` adopts the checkpoint tensors instead of copying them (no second copy
    of the weights; the model may then live on the ``meta`` device until loaded).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"checkpoint {source} does not match the network:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected),
                            ("mis-shaped", shapes)):
            if keys:
                shown = ", ".join(keys[:20]) + (f" ... (+{len(keys) - 20})" if len(keys) > 20
                                                else "")
                parts.append(f"{len(keys)} {title} key(s): {shown}")
        raise CheckpointError("\n".join(parts))
    ordered = {k: state[k] for k in own}
    model.load_state_dict(ordered, strict=True, assign=assign)


def egomono4d_network_state(raw: Mapping) -> dict[str, Tensor]:
    """Network tensors of an authors' Lightning checkpoint, ``model.`` prefix removed.

    Wrapper entries (other prefixes) and never-used modules are dropped with a log line.
    """
    sd = raw.get("state_dict", raw) if isinstance(raw, Mapping) else raw
    net: dict[str, Tensor] = {}
    skipped: dict[str, int] = {}
    for key, value in sd.items():
        if not key.startswith("model."):
            head = key.split(".", 1)[0] + "."
            skipped[head] = skipped.get(head, 0) + 1
            continue
        name = key[len("model."):]
        ignored = next((p for p in IGNORED_NETWORK_PREFIXES if name.startswith(p)), None)
        if ignored:
            skipped["model." + ignored] = skipped.get("model." + ignored, 0) + 1
            continue
        net[name] = value
    for head, n in sorted(skipped.items()):
        log.info("ignoring %d checkpoint key(s) under %r (not part of the network)", n, head)
    return net


def load_egomono4d(model: nn.Module, path: str | Path) -> None:
    """Load the authors' released Lightning checkpoint into a ``vitl14``/``vits14`` model.

    Strict: raises :class:`CheckpointError` naming any missing, unexpected or mis-shaped
    network key. The file is memory-mapped and its tensors adopted (no second copy).
    """
    raw = _load_file(path)
    net = egomono4d_network_state(raw)
    load_network_state(model, net, source=str(path), assign=_on_meta(model))


def load_unidepth_encoder(model: nn.Module, path: str | Path) -> None:
    """Initialise ``model``'s encoder from an official UniDepth V2 checkpoint.

    Accepts a plain state dict, ``{"model": ...}`` or ``{"state_dict": ...}``, with keys
    ``pixel_encoder.*`` (``module.`` prefixes removed); decoder keys are ignored with a log
    line (the authors' decoder is an older UniDepth design).
    """
    raw = _load_file(path)
    if isinstance(raw, Mapping):
        for wrap in ("model", "state_dict"):
            if wrap in raw and isinstance(raw[wrap], Mapping):
                raw = raw[wrap]
    enc: dict[str, Tensor] = {}
    other = 0
    for key, value in raw.items():
        name = key.removeprefix("module.")
        if name.startswith("pixel_encoder."):
            enc[name[len("pixel_encoder."):]] = value
        else:
            other += 1
    if other:
        log.info("load_unidepth_encoder: ignoring %d non-encoder key(s)", other)
    encoder = model.encoder if hasattr(model, "encoder") else model
    load_network_state(encoder, enc, source=str(path))


def _on_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


# --------------------------------------------------------------------------- our format
def save_pretrained(model: nn.Module, path: str | Path, provenance: str = "") -> Path:
    """Write ``model`` as ``<path>.safetensors`` plus ``<path>.json``; return the weights path.

    ``path`` may name an existing directory (files ``model.safetensors`` / ``config.json``
    inside) or a file stem. The JSON (also embedded as safetensors metadata
    ``unihoi_config``) holds the size, full config, default input size, format version and
    ``provenance``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir():
        weights, cfg_path = path / "model.safetensors", path / "config.json"
    else:
        stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
        weights, cfg_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        weights.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": "unihoi",
        "version": FORMAT_VERSION,
        "size": model.config.size,
        "config": model.config.to_dict(),
        "input_size": list(model.config.image_shape),
        "provenance": provenance,
    }
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(weights), metadata={"unihoi_config": json.dumps(meta)})
    cfg_path.write_text(json.dumps(meta, indent=2) + "\n")
    return weights


def resolve_pretrained(path_or_name: str | Path) -> Path:
    """Weights file for a path (file or directory) or a bundled name like ``unihoi-tiny``."""
    p = Path(path_or_name)
    if p.is_dir():
        p = p / "model.safetensors"
    if p.is_file():
        return p
    name = str(path_or_name)
    if "/" not in name and not p.suffix:
        bundled = WEIGHTS_DIR / f"{name}.safetensors"
        if bundled.is_file():
            return bundled
        known = sorted(x.stem for x in WEIGHTS_DIR.glob("*.safetensors"))
        raise FileNotFoundError(
            f"unknown pretrained model name {name!r}: no bundled file {bundled}; "
            f"bundled names: {known or 'none yet'}; pass a path to a .safetensors file"
        )
    raise FileNotFoundError(f"pretrained weights not found: {p}")


def read_pretrained_meta(weights: Path) -> dict:
    """Config dictionary of one of our weight files (sidecar JSON, else embedded metadata)."""
    from safetensors import safe_open

    for sidecar in (weights.with_suffix(".json"), weights.parent / "config.json"):
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text())
            if meta.get("format") == "unihoi":
                return meta
    with safe_open(str(weights), framework="pt") as f:
        md = f.metadata() or {}
    if "unihoi_config" not in md:
        raise CheckpointError(f"{weights} is not a unihoi weight file (no config found)")
    return json.loads(md["unihoi_config"])
