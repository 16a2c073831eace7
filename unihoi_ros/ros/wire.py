"""The wire codec: rosbags messages <-> CDR bytes, the one way bytes enter and leave.

Every transport moves serialised messages: the Cyclone DDS transport writes and takes
CDR samples (:mod:`unihoi_ros.ros.dds`), the rclpy transport publishes bytes and
subscribes in raw mode (:mod:`unihoi_ros.ros.rclpy_node`), the bag writer stores them
(:mod:`unihoi_ros.io.bag_writer`). This module is their codec: rosbags' typestore
``serialize_cdr`` / ``deserialize_cdr`` (4-byte encapsulation header, then plain CDR),
with the checks a wire needs (header, trailing alignment padding) and one error type.

Received numeric arrays (an image's ``data``) are read-only views into the received
bytes: no copy; code that changes them copies first.
"""

from __future__ import annotations

from typing import Any

from unihoi_ros.errors import UnihoiError
from unihoi_ros.ros.msg.types import get_typestore

#: Encapsulation header of plain CDR little endian (XCDR1), as ROS 2 writes it.
CDR_LE_HEADER = b"\x00\x01\x00\x00"

Buffer = bytes | bytearray | memoryview


class CdrError(UnihoiError, ValueError):
    """Bytes that are not a serialised message of the expected type."""


def serialize(msg: Any, msgtype: str, typestore: Any | None = None) -> memoryview:
    """``msg`` (a rosbags message of ``msgtype``) as plain CDR little endian, header
    included, unpadded (as rosbag2 stores it; :func:`pad4` gives a DDS sample).

    Raises:
        CdrError: a field rosbags cannot write (bytes or a list where it needs numpy).
    """
    ts = get_typestore() if typestore is None else typestore
    try:
        return ts.serialize_cdr(msg, msgtype, little_endian=True)
    except AttributeError as exc:  # e.g. bytes where rosbags needs a numpy array
        raise CdrError(f"cannot serialise this {msgtype}: {exc} (numeric arrays must be numpy "
                       "arrays: unihoi_ros.ros.msg.types.as_u8 makes one of bytes)") from None


def pad4(data: Buffer) -> bytes:
    """``data`` as ``bytes`` with zeros up to a multiple of 4 bytes (DDS sample size)."""
    pad = -len(data) % 4
    return bytes(data) + b"\0" * pad if pad else bytes(data)


def check_le(data: Buffer) -> None:
    """Refuse anything but plain CDR little endian (what ROS 2 and rosbag2 use).

    Raises:
        CdrError: shorter than the header, or another encapsulation.
    """
    if len(data) < 4 or bytes(data[:2]) != CDR_LE_HEADER[:2]:
        raise CdrError(f"not plain CDR little endian (header {bytes(data[:4]).hex() or 'none'}, "
                       "expected 0001....)")


def deserialize(data: Buffer, msgtype: str, typestore: Any | None = None) -> Any:
    """The rosbags message of ``msgtype`` in ``data`` (header included; up to 3 trailing
    padding bytes allowed; big-endian CDR is read too).

    Raises:
        CdrError: a wrong header, too few or too many bytes for ``msgtype``.
    """
    ts = get_typestore() if typestore is None else typestore
    try:
        return ts.deserialize_cdr(data, msgtype)
    except Exception as exc:  # rosbags' SerdeError, or a struct error it did not wrap
        raise CdrError(f"{len(data)} bytes are not a {msgtype}: {exc}") from None
