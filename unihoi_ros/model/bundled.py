"""Models shipped inside the package (``unihoi_ros/model/weights/``), resolved by name.

``UniHOI.from_pretrained("unihoi-tiny")`` finds the bundled weights through
:func:`bundled_model_path`. Each bundled model is ``<name>.safetensors`` plus its
``<name>.json`` config (our format, see :mod:`unihoi_ros.model.checkpoint`); how it was
trained and how well it does is in ``weights/MODEL_CARD.md``.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Bundled models: name -> one-line description (the model card has the details).
BUNDLED_MODELS: dict[str, str] = {
    "unihoi-tiny": "UniHOI 'tiny' size (1.3 M parameters): unihoi-tiny-synthetic adapted "
                   "self-supervised (`unihoi adapt`) on real frames of 7-Scenes RedKitchen "
                   "(research-only terms) mixed with synthetic clips; input 120x160.",
    "unihoi-tiny-synthetic": "UniHOI 'tiny' size (1.3 M parameters) trained self-supervised "
                             "on the synthetic egocentric world only with unihoi_ros.train "
                             "(unihoi_ros/train/configs/unihoi_tiny*.yaml; no real images, "
                             "no data terms); input 120x160.",
}


def bundled_model_path(name: str) -> Path | None:
    """Weights file of the bundled model ``name`` (``"unihoi-tiny"``), or None when no such
    model is bundled (or its file is missing from this installation).

    Accepts the name with or without a ``.safetensors`` suffix.
    """
    stem = str(name).removesuffix(".safetensors")
    if stem not in BUNDLED_MODELS:
        return None
    path = WEIGHTS_DIR / f"{stem}.safetensors"
    return path if path.is_file() else None
