"""``unihoi model-info`` and ``unihoi export`` (owned by the model work; see unihoi_ros.model)."""

from __future__ import annotations


def register(sub) -> None:
    pass
