"""Helpers for tests that use Cyclone DDS: loopback only, unique domains, a peer process.

Importing this module sets ``CYCLONEDDS_URI`` to the loopback-only configuration
(docs/conventions.md) in this process, so import it before anything creates a participant.
:func:`spawn_image_publisher` starts a second Python process with the same configuration
that publishes deterministic Image messages (:func:`expected_image`) on a ROS topic.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from unihoi_ros.ros.loopback import MAX_DOMAIN_ID, is_loopback, use_loopback

use_loopback()

TEST_DIR = Path(__file__).resolve().parent
REPO_ROOT = TEST_DIR.parent
_salt = itertools.count(1)


def fresh_domain_id() -> int:
    """A domain id in [1, 232] from the pid and a per-process counter (unique per test)."""
    return 1 + (os.getpid() * 31 + next(_salt) * 17) % MAX_DOMAIN_ID


def loopback_participant(domain_id: int):
    """A participant on ``domain_id``, refusing to start unless the loopback config is set."""
    assert is_loopback(), "CYCLONEDDS_URI is not the loopback-only configuration"
    from unihoi_ros.ros.dds import create_participant

    return create_participant(domain_id)


def expected_image(index: int, height: int = 24, width: int = 32, pad: int = 4):
    """The ``index``-th test Image: rgb8, padded ``step``, stamp ``1e9 + index`` ns."""
    from unihoi_ros.ros.messages import IMAGE, make_header, msg_class

    rng = np.random.default_rng(1000 + index)
    step = width * 3 + pad
    data = rng.integers(0, 256, size=height * step, dtype=np.uint8)
    return msg_class(IMAGE)(
        header=make_header(1_000_000_000 + index, f"frame_{index}"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=step,
        data=data,
    )


def child_env() -> dict[str, str]:
    """Environment for a DDS child process: loopback config, repo importable."""
    env = use_loopback(dict(os.environ))
    env.pop("ROS_DOMAIN_ID", None)
    paths = [str(REPO_ROOT), str(TEST_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


_PUBLISHER = """
import sys, time
import dds_helpers  # sets the loopback configuration first
from unihoi_ros.ros import dds
from unihoi_ros.ros.messages import IMAGE
domain, topic, qos, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
participant = dds_helpers.loopback_participant(domain)
pub = dds.Publisher(participant, topic, IMAGE, qos=qos)
if not pub.wait_for_subscribers(1, timeout=120.0):
    sys.exit("no subscriber matched")
# The reader's side: the parent says when its reader has matched this writer too (a
# best-effort reader drops what comes from a writer it does not know yet).
if sys.stdin.readline().strip() != "GO":
    sys.exit("no go from the subscriber")
for i in range(count):
    pub.publish(dds_helpers.expected_image(i))
    time.sleep(0.02)
if not pub.wait_for_acks(120.0):  # reliable readers hold every sample before the writer goes
    sys.exit("the reliable reader did not acknowledge every sample")
pub.close()
print("published", count)
"""


def spawn_image_publisher(domain_id: int, topic: str, qos: str, count: int) -> subprocess.Popen:
    """Start a process publishing ``expected_image(0..count-1)`` on ``topic``.

    ``topic`` is a ROS name resolved under ``/unihoi``; publishing starts once a subscriber
    has matched and ``GO`` is written to the process's stdin (by the subscriber's side, once
    its reader has matched this writer).
    """
    return subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(domain_id), topic, qos, str(count)],
        env=child_env(),
        cwd=str(TEST_DIR),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
