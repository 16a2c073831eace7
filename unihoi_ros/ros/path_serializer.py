"""``nav_msgs/Path`` of a stream's poses, kept in fixed arrays and serialised fast."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from unihoi_ros.ros import messages as M


class PathSerializer:
    """``nav_msgs/Path`` of the newest ``max_poses`` poses, kept compactly and serialised fast.

    Poses live in preallocated arrays (stamp, position, quaternion): memory does not grow
    with the trajectory. Re-serialising a long Path with rosbags costs tens of
    milliseconds per frame (10 000 poses: about 40 ms); here the CDR is assembled with
    ``struct`` from a per-pose template taken from rosbags (stamp, the constant frame-id
    bytes with their alignment padding, seven doubles). A pose's padding depends on its
    8-byte alignment phase, so a template is kept per phase. Equality with
    ``serialize_cdr`` is tested.
    """

    _DOUBLES = struct.Struct("<7d")
    _STAMP = struct.Struct("<iI")

    def __init__(self, typestore: Any, frame_id: str, max_poses: int) -> None:
        self._ts = typestore
        self.frame_id = frame_id
        self._cap = int(max_poses)
        self._stamps = np.zeros(self._cap, np.int64)
        self._poses = np.zeros((self._cap, 7), np.float64)  # x y z qx qy qz qw
        self._start = 0
        self._len = 0
        # Per-phase middle bytes (frame id + padding) from serialised templates.
        probe = M.pose_stamped_msg(np.eye(4), 1_500_000_002, frame_id, typestore)
        sizes = [len(self._ser([probe] * k)) for k in range(3)]
        full = self._ser([probe] * 2)
        self._middle: dict[int, bytes] = {}
        for k in range(2):
            chunk = full[sizes[k]:sizes[k + 1]]
            if chunk[:8] != self._STAMP.pack(1, 500_000_002) or chunk[-56:] != \
                    self._DOUBLES.pack(0, 0, 0, 0, 0, 0, 1):
                raise RuntimeError("unexpected PoseStamped CDR layout")  # rosbags changed
            self._middle[self._phase(sizes[k])] = chunk[8:-56]

    def _ser(self, poses: list[Any], stamp_ns: int = 0) -> bytes:
        msg = M.path_msg(poses, stamp_ns, self.frame_id, self._ts)
        return bytes(self._ts.serialize_cdr(msg, M.PATH))

    @staticmethod
    def _phase(offset: int) -> int:
        return (offset - 4) % 8  # alignment counts from after the 4-byte encapsulation

    def append(self, stamp_ns: int, T_frame_body: np.ndarray) -> None:
        """Add the ``(4, 4)`` pose ``T_frame_body`` (in ``frame_id``) stamped ``stamp_ns``;
        the oldest pose goes when ``max_poses`` are held."""
        T = np.asarray(T_frame_body, np.float64)
        slot = (self._start + self._len) % self._cap
        if self._len == self._cap:
            self._start = (self._start + 1) % self._cap
        else:
            self._len += 1
        self._stamps[slot] = int(stamp_ns)
        self._poses[slot, :3] = T[:3, 3]
        self._poses[slot, 3:] = M.rotation_to_quaternion(T)

    def clear(self) -> None:
        self._start = self._len = 0

    def __len__(self) -> int:
        return self._len

    def _order(self) -> np.ndarray:
        return (self._start + np.arange(self._len)) % self._cap

    def message(self, stamp_ns: int) -> Any:
        """The Path (rosbags message) with header stamp ``stamp_ns``."""
        ts, fid = self._ts, self.frame_id
        point, quat = M.msg_class(M.POINT, ts), M.msg_class(M.QUATERNION, ts)
        pose_cls, stamped = M.msg_class(M.POSE, ts), M.msg_class(M.POSE_STAMPED, ts)
        poses = []
        for i in self._order():
            x, y, z, qx, qy, qz, qw = (float(v) for v in self._poses[i])
            poses.append(stamped(
                header=M.make_header(int(self._stamps[i]), fid, ts),
                pose=pose_cls(position=point(x=x, y=y, z=z),
                              orientation=quat(x=qx, y=qy, z=qz, w=qw)),
            ))
        return M.path_msg(poses, stamp_ns, fid, ts)

    def cdr(self, stamp_ns: int) -> bytes:
        """The Path's CDR bytes, equal to ``serialize_cdr(self.message(stamp_ns))``."""
        head = self._ser([], stamp_ns)[:-4]  # header and encapsulation, without the count
        parts = [head, struct.pack("<I", self._len)]
        offset = len(head) + 4
        stamp_pack, doubles_pack, middle = self._STAMP.pack, self._DOUBLES.pack, self._middle
        order = self._order()
        secs, nsecs = np.divmod(self._stamps[order], 1_000_000_000)
        for sec, nsec, pose in zip(secs.tolist(), nsecs.tolist(), self._poses[order].tolist()):
            mid = middle[self._phase(offset)]
            parts += (stamp_pack(sec, nsec), mid, doubles_pack(*pose))
            offset += 64 + len(mid)
        return b"".join(parts)
