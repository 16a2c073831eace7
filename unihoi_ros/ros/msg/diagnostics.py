"""``diagnostic_msgs/DiagnosticStatus`` and ``DiagnosticArray``.

Conventions (docs/conventions.md): levels are :data:`DIAG_OK` .. :data:`DIAG_STALE`
(0..3, one octet on the wire); values are strings (floats with 6 significant digits); the
array's header has an empty frame id, as diagnostic_updater publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from unihoi_ros.ros.msg.types import (
    DIAGNOSTIC_ARRAY,
    DIAGNOSTIC_STATUS,
    KEY_VALUE,
    make_header,
    msg_class,
)

__all__ = [
    "DIAG_ERROR",
    "DIAG_OK",
    "DIAG_STALE",
    "DIAG_WARN",
    "diagnostic_array_msg",
    "diagnostic_status_msg",
    "report_array_msg",
]

# diagnostic_msgs/DiagnosticStatus levels.
DIAG_OK, DIAG_WARN, DIAG_ERROR, DIAG_STALE = 0, 1, 2, 3


def diagnostic_status_msg(
    name: str,
    level: int = DIAG_OK,
    message: str = "",
    values: Mapping[str, Any] | None = None,
    hardware_id: str = "",
    typestore: Any | None = None,
) -> Any:
    """``diagnostic_msgs/DiagnosticStatus``; values are stringified (floats with 6 digits)."""
    kv_cls = msg_class(KEY_VALUE, typestore)

    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    kvs = [kv_cls(key=str(k), value=fmt(v)) for k, v in (values or {}).items()]
    if not 0 <= int(level) <= 3:
        raise ValueError(f"diagnostic level must be 0..3 (OK/WARN/ERROR/STALE), got {level}")
    return msg_class(DIAGNOSTIC_STATUS, typestore)(
        level=int(level),
        name=str(name),
        message=str(message),
        hardware_id=str(hardware_id),
        values=kvs,
    )


def diagnostic_array_msg(
    stamp_ns: int, statuses: Sequence[Any], typestore: Any | None = None
) -> Any:
    """``diagnostic_msgs/DiagnosticArray`` (header frame id empty, as diagnostic_updater)."""
    return msg_class(DIAGNOSTIC_ARRAY, typestore)(
        header=make_header(stamp_ns, "", typestore), status=list(statuses)
    )


def report_array_msg(name: str, report: Any, hardware_id: str, stamp_ns: int,
                     typestore: Any | None = None) -> Any:
    """The DiagnosticArray of one status ``name`` from a report (``level``, ``message``,
    ``values``; :class:`unihoi_ros.ros.transport.DiagnosticReport`), as the transports
    publish it without diagnostic_updater."""
    status = diagnostic_status_msg(name, report.level, report.message, report.values,
                                   hardware_id or "none", typestore)
    return diagnostic_array_msg(stamp_ns, [status], typestore)
