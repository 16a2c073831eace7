"""Process-wide CPU memory settings for running the network on the CPU.

Neither setting changes what is computed; both change how the large activations get memory.

- ``THP_MEM_ALLOC_ENABLE=1`` (set by ``unihoi_ros/__init__.py`` on import, because PyTorch
  reads it once, at its first large allocation): PyTorch's CPU allocator 2 MB-aligns tensors
  of 2 MB and more and advises transparent huge pages, so fresh full-resolution maps take
  512x fewer page faults.
- A fixed glibc mmap threshold (:func:`limit_heap_retention`): by default glibc raises the
  threshold after each large free, up to 32 MiB, so the network's many 2-32 MB activations
  end up on the heap, whose freed holes it rarely returns. Resident memory then creeps up by
  hundreds of MB over a window. With the threshold fixed at 1 MiB they are mapped and
  unmapped, and huge pages keep the extra page faults cheap.

``bench/RESULTS.md`` has the measured effect (time and peak memory, each setting on and off).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
_state: dict[str, object] = {}


def thp_enabled() -> bool:
    """Whether PyTorch's CPU allocator was told to use transparent huge pages."""
    return os.environ.get("THP_MEM_ALLOC_ENABLE", "0") == "1"


def limit_heap_retention(mmap_threshold_bytes: int = 1 << 20) -> int | None:
    """Fix glibc's mmap threshold (bytes); returns it, or None where this is not glibc or
    ``UNIHOI_MALLOC_TUNING=0``. Idempotent; affects allocations made afterwards."""
    if os.environ.get("UNIHOI_MALLOC_TUNING", "1") == "0":
        return None
    if "mmap_threshold" in _state:
        return _state["mmap_threshold"]  # type: ignore[return-value]
    value: int | None = None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if hasattr(libc, "gnu_get_libc_version") and libc.mallopt(
            _M_MMAP_THRESHOLD, int(mmap_threshold_bytes)
        ):
            value = int(mmap_threshold_bytes)
    except OSError as exc:  # no C library to talk to: keep the defaults
        log.debug("mallopt unavailable: %s", exc)
    _state["mmap_threshold"] = value
    return value


def allocator_settings() -> dict[str, object]:
    """What is in effect, for benchmark records: ``{"thp": bool, "mmap_threshold": int|None}``."""
    return {"thp": thp_enabled(), "mmap_threshold": _state.get("mmap_threshold")}
