"""What a model was trained on, for the start-up lines of the node and ``unihoi process``.

Read from the model's JSON / safetensors metadata (:func:`unihoi_ros.model.checkpoint.
read_pretrained_meta`): an adapted model (``unihoi adapt``) records ``trained_on`` and
``adapted_from``; the bundled ``unihoi-tiny`` records its training ``provenance`` (synthetic
clips only). Other inputs: ``random:<size>`` (untrained) and the authors' checkpoints
(``.ckpt`` / ``.pt`` / ``.pth``). Never raises: a model whose metadata cannot be read is
described as such.
"""

from __future__ import annotations

from pathlib import Path

#: The line that points real-camera users at adaptation and the authors' weights.
REAL_CAMERA_HINT = (
    "on a real camera: `unihoi adapt VIDEO... -o mine.safetensors --K fx,fy,cx,cy` "
    "fine-tunes this model on your own unlabeled recordings (README, \"Adapting to your "
    "camera\"), or load the authors' released ViT-L weights with --model PATH.ckpt")

_AUTHORS_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def trained_on(model: str | Path) -> tuple[str, bool]:
    """``(description, synthetic_only)`` of the model ``model`` names (bundled name,
    weights path, ``random:<size>``, an authors' checkpoint)."""
    text = str(model)
    if text.startswith("random:"):
        return "untrained (random weights)", True
    if Path(text).suffix in _AUTHORS_SUFFIXES:
        return "the authors' released weights (trained on real egocentric video)", False
    try:
        from unihoi_ros.model.checkpoint import read_pretrained_meta, resolve_pretrained

        meta = read_pretrained_meta(resolve_pretrained(text))
    except Exception as exc:
        return f"unknown (metadata unreadable: {exc})", False
    if meta.get("trained_on"):
        return str(meta["trained_on"]), False
    provenance = str(meta.get("provenance", ""))
    if "synthetic" in provenance:
        return ("trained self-supervised on synthetic clips only (the package's synthetic "
                "egocentric world; no real images)"), True
    return (f"provenance: {provenance}" if provenance else "unknown (no provenance "
            "recorded)"), False


def model_lines(model: str | Path) -> list[str]:
    """One line saying which model serves and what it was trained on, plus the
    real-camera hint when it never saw real images."""
    desc, synthetic = trained_on(model)
    lines = [f"model {model}: {desc}"]
    if synthetic:
        lines.append(REAL_CAMERA_HINT)
    return lines
