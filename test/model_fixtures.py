"""Helpers for the model tests: rule-weight checkpoints in the authors' and UniDepth's layouts.

The weights are the deterministic rule of ``reference/egomono4d/README.md`` (implemented in
:func:`unihoi_ros.model.checkpoint.rule_tensor`), generated one tensor at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from unihoi_ros.model.checkpoint import rule_tensor

LAYOUTS = {"vits14": "egomono4d-small", "vitl14": "egomono4d-large"}


def layout_params(shared: Path, size: str) -> list[tuple[str, list[int], str]]:
    """``[(key, shape, dtype), ...]`` of the authors' network (no ``model.`` prefix)."""
    path = shared / "reference" / "egomono4d" / f"{LAYOUTS[size]}-layout.json"
    return [tuple(p) for p in json.loads(path.read_text())["params"]]


def conformance_arrays(shared: Path, size: str) -> dict[str, np.ndarray]:
    """The fixture window and the authors' outputs for ``size``."""
    path = shared / "reference" / "egomono4d" / f"{LAYOUTS[size]}-conformance.npz"
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def write_lightning_checkpoint(shared: Path, size: str, out: Path) -> Path:
    """Rule weights saved like the authors' release: ``{"state_dict": {"model.<key>": ...}}``
    plus one wrapper key (``flow_predictor.``) that the loader must ignore."""
    sd = {
        f"model.{name}": torch.from_numpy(rule_tensor(name, shape, dtype))
        for name, shape, dtype in layout_params(shared, size)
    }
    sd["flow_predictor.backbone.conv1.weight"] = torch.zeros(2, 3)
    torch.save({"state_dict": sd, "epoch": 0, "global_step": 350000}, out)
    del sd
    return out


def write_unidepth_checkpoint(shared: Path, size: str, out: Path) -> Path:
    """Rule weights in the official UniDepth V2 layout (``pixel_encoder.`` + decoder)."""
    path = shared / "reference" / "unidepth_v2" / f"unidepth-v2-{size}.json"
    layout = json.loads(path.read_text())
    params = layout["params"] if isinstance(layout, dict) else layout
    sd = {p[0]: torch.from_numpy(rule_tensor(p[0], p[1])) for p in params}
    torch.save(sd, out)
    return out


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest element-wise ``|ours - ref| / |ref|`` (``ref`` bounded away from 0)."""
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - ref) / np.abs(ref)))
