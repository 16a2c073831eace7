"""``unihoi_record``: record ROS 2 topics into a rosbag2 MCAP bag, without ``ros2 bag``.

rosbag2 is not among the PyPI wheels, so where the ``ros2 bag`` verb is missing the launch
file's ``record:=true`` runs this node instead (same topics). It is an rclpy node that

- waits for each requested topic to have a publisher, takes its type from the graph, and
  subscribes with ``raw=True`` (CDR bytes, no message objects), adapting its QoS to the
  publishers' as ``ros2 bag record`` does: reliable when every publisher offers reliable,
  transient local when every one does (``/tf_static``); logs ``subscribed every topic``
  once none is left (what a script playing a short clip can wait for);
- writes each message's bytes with the receive time (the node's clock) as log time into a
  :class:`~unihoi_ros.io.bag_writer.BagRecorder` (rosbags; metadata version 8, what Humble
  reads), with the publishers' ``offered_qos_profiles``;
- writes MCAP chunks as they fill (``--chunk-bytes``, default rosbag2's 768 KiB) or age
  (``--chunk-seconds``, default 1 s), flushed to the file, so after ``kill -9`` the bag is
  readable up to its last complete chunk;
- on SIGINT or SIGTERM closes the bag (summary, ``metadata.yaml``) and logs one line.

Usage::

    unihoi_record -o my_bag /unihoi/depth/image /unihoi/pose /tf [--ros-args ...]
    ros2 run unihoi_ros unihoi_record -o my_bag /camera/image_raw
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from typing import Any

from unihoi_ros.errors import UnihoiError, one_line
from unihoi_ros.optional import MissingDependencyError
from unihoi_ros.ros.qos import (
    SENSOR_DATA,
    TRANSIENT_LOCAL,
    VOLATILE,
    QosProfile,
    adapt_to_offers,
)

log = logging.getLogger("unihoi_ros.record")

NODE_NAME = "unihoi_record"
#: rosbag2's MCAP chunk size (``ros2 bag record -s mcap`` default), bytes.
DEFAULT_CHUNK_BYTES = 768 * 1024
#: Oldest a pending chunk may get before it is written, seconds.
DEFAULT_CHUNK_SECONDS = 1.0
#: History of the recording subscriptions (messages waiting for the writer).
RECORD_DEPTH = 100


def recording_qos(offered: list[QosProfile]) -> QosProfile:
    """The subscription profile that records the publishers offering ``offered``.

    ``ros2 bag record``'s rule: reliable when every publisher offers reliable (the
    package's :func:`~unihoi_ros.ros.qos.adapt_to_offers`), transient local when every one
    offers transient local (latched topics such as ``/tf_static``), keep last
    :data:`RECORD_DEPTH`; otherwise best effort and volatile, which match any publisher.
    """
    base = replace(SENSOR_DATA, name="RECORD", depth=RECORD_DEPTH, match_publishers=True)
    profile = adapt_to_offers(base, [p.reliability for p in offered])
    latched = bool(offered) and all(p.durability == TRANSIENT_LOCAL for p in offered)
    return replace(profile, durability=TRANSIENT_LOCAL if latched else VOLATILE,
                   match_publishers=False)


class TopicRecorder:
    """Subscribes each wanted topic once it has a publisher and writes what arrives.

    Args:
        node: the rclpy node.
        bag: the :class:`~unihoi_ros.io.bag_writer.BagRecorder`.
        topics: topic names (relative ones are resolved in the node's namespace).
    """

    def __init__(self, node: Any, bag: Any, topics: list[str]) -> None:
        self.node, self.bag = node, bag
        self.wanted = [node.resolve_topic_name(t) for t in topics]
        self.subscribed: dict[str, str] = {}  # topic -> type
        self._refused: set[str] = set()
        self._keep: list[Any] = []
        self.complete = False  # every wanted topic subscribed (or refused), said once

    def refresh(self) -> None:
        """Subscribe the wanted topics that have a publisher now (call it periodically);
        once none is left, log it once (what waits for the recording to start can read)."""
        for topic in self.wanted:
            if topic in self.subscribed or topic in self._refused:
                continue
            infos = self.node.get_publishers_info_by_topic(topic)
            if infos:
                self._subscribe(topic, infos)
        if not self.complete and len(self.subscribed) + len(self._refused) == len(set(self.wanted)):
            self.complete = True
            log.info("subscribed every topic (%d recorded%s)", len(self.subscribed),
                     f", {len(self._refused)} refused" if self._refused else "")

    def _subscribe(self, topic: str, infos: list[Any]) -> None:
        from unihoi_ros.ros.rclpy_node import qos_from_rclpy, rclpy_message_class, to_rclpy_qos

        types = sorted({i.topic_type for i in infos})
        if len(types) != 1:
            self._refuse(topic, f"its publishers disagree on the type ({', '.join(types)})")
            return
        msgtype = types[0]
        try:
            cls = rclpy_message_class(msgtype)
        except MissingDependencyError:
            self._refuse(topic, f"{msgtype}'s Python message package is not installed")
            return
        offered = [qos_from_rclpy(i.qos_profile) for i in infos]
        try:
            self.bag.add_topic(topic, msgtype, offered)
        except Exception as exc:  # e.g. a type the rosbags typestore does not know
            self._refuse(topic, f"the bag cannot take {msgtype} ({one_line(exc)})")
            return
        qos = recording_qos(offered)
        clock = self.node.get_clock()

        def write(data: bytes, topic: str = topic) -> None:
            self.bag.write(topic, data, clock.now().nanoseconds)

        self._keep.append(self.node.create_subscription(cls, topic, write, to_rclpy_qos(qos),
                                                        raw=True))
        self.subscribed[topic] = msgtype
        log.info("recording %s (%s, %s)", topic, msgtype, qos.reliability.replace("_", " ")
                 + (", transient local" if qos.durability == TRANSIENT_LOCAL else ""))

    def _refuse(self, topic: str, why: str) -> None:
        self._refused.add(topic)
        log.warning("not recording %s: %s", topic, why)

    def summary_line(self) -> str:
        """One line: messages per topic, the bag, topics never seen."""
        counts = self.bag.counts
        total = sum(counts.values())
        missing = [t for t in self.wanted if t not in self.subscribed]
        return (f"{NODE_NAME} summary: {total} message(s) on {len(self.subscribed)} topic(s) "
                f"in {self.bag.path} ("
                + ", ".join(f"{t} {counts.get(t, 0)}" for t in self.subscribed) + ")"
                + (f"; not recorded: {', '.join(missing)}" if missing else ""))


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=NODE_NAME, description=__doc__.split("\n\n")[0])
    ap.add_argument("topics", nargs="+", help="topics to record")
    ap.add_argument("-o", "--output", default="",
                    help="bag directory to create (default unihoi_bag_<date>_<time>)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    ap.add_argument("--chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES,
                    help=f"write an MCAP chunk at this size (default {DEFAULT_CHUNK_BYTES})")
    ap.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
                    help="write an MCAP chunk once its first message is this old (default "
                         f"{DEFAULT_CHUNK_SECONDS:g})")
    ap.add_argument("--version", type=int, default=8, choices=(8, 9),
                    help="rosbag2 metadata version (8: Humble and later; 9: Jazzy and later)")
    return ap.parse_args(argv)


def default_bag_path(now: float | None = None) -> str:
    """``unihoi_bag_<date>_<time>`` (local time), the launch file's default too."""
    return f"unihoi_bag_{time.strftime('%Y%m%d_%H%M%S', time.localtime(now))}"


def main(argv: list[str] | None = None) -> int:
    """Run ``unihoi_record`` (see module docstring). Returns 0 after a clean close; 2 when
    the bag cannot be created (one line on stderr)."""
    import rclpy
    from rclpy.utilities import remove_ros_args

    from unihoi_ros.io.bag_writer import BagRecorder
    from unihoi_ros.ros.rclpy_node import forward_logging, init_rclpy, spin_until_interrupted

    argv = list(sys.argv if argv is None else argv)
    args = _parse(remove_ros_args(argv)[1:])
    try:
        bag = BagRecorder(args.output or default_bag_path(), version=args.version,
                          overwrite=args.overwrite, chunk_bytes=args.chunk_bytes,
                          chunk_seconds=args.chunk_seconds)
    except (FileExistsError, ValueError, UnihoiError) as exc:
        print(f"{NODE_NAME}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 2
    init_rclpy(argv)
    node = rclpy.create_node(NODE_NAME)
    try:
        with forward_logging(node):
            recorder = TopicRecorder(node, bag, args.topics)
            try:
                log.info("recording to %s: %s", bag.path, ", ".join(recorder.wanted))
                recorder.refresh()
                node.create_timer(0.25, recorder.refresh)
                node.create_timer(0.25, bag.flush_due)
                spin_until_interrupted(node)
            finally:
                bag.close()
                log.info("%s", recorder.summary_line())
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
