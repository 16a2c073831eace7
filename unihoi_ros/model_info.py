"""What a model was trained on, for the start-up lines of the node and ``unihoi process``.

Read from the model's JSON / safetensors metadata (:func:`unihoi_ros.model.checkpoint.
read_pretrained_meta`): an adapted model (``unihoi adapt``, the bundled ``unihoi-tiny``
too) records ``trained_on`` and ``adapted_from``, and ``terms`` where its training data
restrict use; ``unihoi-tiny-synthetic`` records its training ``provenance`` (synthetic
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


def model_metadata(model: str | Path) -> dict:
    """The metadata of our weights named by ``model`` (bundled name or path); empty when
    there is none or it cannot be read (``random:<size>``, an authors' checkpoint)."""
    try:
        from unihoi_ros.model.checkpoint import read_pretrained_meta, resolve_pretrained

        return dict(read_pretrained_meta(resolve_pretrained(str(model))))
    except Exception:
        return {}


def data_terms(model: str | Path) -> str:
    """The ``terms`` recorded with the model's weights (e.g. research-only training data);
    empty when none are recorded or the metadata cannot be read."""
    return str(model_metadata(model).get("terms", ""))


def model_lines(model: str | Path) -> list[str]:
    """One line saying which model serves and what it was trained on, the terms of its
    training data where recorded, and the real-camera hint for a model that never saw
    real images or is a bundled one (which saw none of the user's camera)."""
    from unihoi_ros.model.bundled import bundled_model_path

    desc, synthetic = trained_on(model)
    lines = [f"model {model}: {desc}"]
    terms = data_terms(model)
    if terms:
        lines.append(f"model {model} terms: {terms}")
    if synthetic or bundled_model_path(str(model)) is not None:
        lines.append(REAL_CAMERA_HINT)
    return lines
