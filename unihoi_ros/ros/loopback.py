"""Loopback-only DDS configuration (Cyclone DDS and Fast DDS), kept in one place.

Tests, CI, demos and benchmarks confine DDS traffic to the loopback interface: no multicast,
unicast discovery to 127.0.0.1 only, automatic participant indices. Users' runs keep Cyclone
DDS's defaults (or their own ``CYCLONEDDS_URI``) unless they opt in.

Cyclone announces its participants every second (``SPDPInterval``): a Fast DDS 2.x
participant (Humble, Jazzy) that starts *after* a Cyclone one was otherwise never found
(checked here with Jazzy's rclpy: not within 75 s; with 1 s, within a second), while one
that starts first, or Fast DDS 3 (Kilted), is found either way. On loopback the extra
announcements cost nothing.

Cyclone DDS reads ``CYCLONEDDS_URI`` when the first participant of the process is created,
so :func:`use_loopback` must run before anything creates one (and before child processes
are started, which inherit the environment). It also points ``FASTDDS_DEFAULT_PROFILES_FILE``
at the package's Fast DDS profile (``fastdds_loopback.xml``: UDPv4 on 127.0.0.1, no
multicast, initial peer 127.0.0.1), which rclpy's rmw_fastrtps reads when its first
participant is created.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

#: The loopback configuration (docs/conventions.md; one line, as it is passed in the environment).
LOOPBACK_CYCLONEDDS_URI = (
    '<CycloneDDS><Domain Id="any"><General><Interfaces><NetworkInterface name="lo"/>'
    "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
    "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40"
    '</MaxAutoParticipantIndex><Peers><Peer address="127.0.0.1"/></Peers>'
    "<SPDPInterval>1s</SPDPInterval></Discovery></Domain></CycloneDDS>"
)

#: Fast DDS participant profile with the same confinement (rmw_fastrtps, rclpy).
LOOPBACK_FASTDDS_PROFILE = Path(__file__).resolve().with_name("fastdds_loopback.xml")

#: Largest domain id ROS 2 / DDS accept for the default port mapping (0-232).
MAX_DOMAIN_ID = 232


def use_loopback(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set ``CYCLONEDDS_URI`` to :data:`LOOPBACK_CYCLONEDDS_URI` and
    ``FASTDDS_DEFAULT_PROFILES_FILE`` to :data:`LOOPBACK_FASTDDS_PROFILE` in ``env``.

    Args:
        env: the environment to modify; ``os.environ`` by default (affects this process's
            future participants and every child started afterwards). Pass a copy of
            ``os.environ`` to prepare the environment of a subprocess only.

    Returns:
        ``env``, for chaining (``subprocess.run(..., env=use_loopback(dict(os.environ)))``).
    """
    if env is None:
        env = os.environ
    env["CYCLONEDDS_URI"] = LOOPBACK_CYCLONEDDS_URI
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(LOOPBACK_FASTDDS_PROFILE)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)  # the older name would take precedence
    return env


def is_loopback(env: MutableMapping[str, str] | None = None) -> bool:
    """True when ``env`` (default ``os.environ``) holds the loopback configuration of both
    middlewares."""
    if env is None:
        env = os.environ
    return (env.get("CYCLONEDDS_URI") == LOOPBACK_CYCLONEDDS_URI
            and env.get("FASTDDS_DEFAULT_PROFILES_FILE") == str(LOOPBACK_FASTDDS_PROFILE))


def unique_domain_id(salt: int = 0) -> int:
    """A domain id in ``[1, MAX_DOMAIN_ID]`` derived from the pid and ``salt``.

    Concurrent test processes on one machine rarely collide; combine with loopback so a
    collision could only ever mix this machine's own test traffic.
    """
    return 1 + (os.getpid() * 7 + salt * 13) % MAX_DOMAIN_ID
