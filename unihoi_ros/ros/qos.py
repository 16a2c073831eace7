"""ROS-style QoS profiles as string parameters, mapped to Cyclone DDS and rosbag2.

Parameters name a profile (``SENSOR_DATA``, ``DEFAULT``, ``SYSTEM_DEFAULT``) plus an optional
depth, as Isaac ROS does (docs/conventions.md). Subscriptions default to ``SENSOR_DATA`` (best
effort matches reliable and best-effort publishers, ``ros2 bag play`` included); publishers
default to ``DEFAULT`` (reliable) so ``ros2 bag record`` and RViz match.

The same :class:`QosProfile` maps to

- a Cyclone DDS ``Qos`` (:func:`to_cyclone_qos`), always with the XCDR1 data representation
  that ROS 2 uses on the wire;
- a rosbags ``Qos`` (:func:`to_rosbags_qos`) for ``Writer.add_connection(...,
  offered_qos_profiles=[...])``;
- the ``offered_qos_profiles`` text of rosbag2 ``metadata.yaml``
  (:func:`offered_qos_profiles_yaml`; version 8, what Humble writes and reads).

Importing this module needs neither cyclonedds nor rosbags; the mapping functions import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from unihoi_ros.optional import require

RELIABLE = "reliable"
BEST_EFFORT = "best_effort"
KEEP_LAST = "keep_last"
KEEP_ALL = "keep_all"
VOLATILE = "volatile"
TRANSIENT_LOCAL = "transient_local"
SYSTEM_DEFAULT = "system_default"

#: Writer blocking time on a full reliable history (Cyclone DDS's default), seconds.
RELIABLE_MAX_BLOCKING_S = 0.1


@dataclass(frozen=True)
class QosProfile:
    """A ROS 2 QoS profile (the policies this package sets).

    Attributes:
        name: profile name it came from (``"SENSOR_DATA"``, ...), for logs and bags.
        reliability: ``reliable`` | ``best_effort`` | ``system_default``.
        history: ``keep_last`` | ``keep_all`` | ``system_default``.
        depth: history depth (messages) for ``keep_last``; 0 for the others.
        durability: ``volatile`` | ``transient_local`` | ``system_default``.
        match_publishers: a subscription's reliability follows its publishers' offers
            (:func:`adapt_to_offers`), re-checked as publishers come and go; the rclpy
            transport honours it, the others subscribe with the profile as it is.
    """

    name: str
    reliability: str
    history: str
    depth: int
    durability: str
    match_publishers: bool = False


#: rclpy's ``qos_profile_sensor_data``: best effort, keep last 5, volatile.
SENSOR_DATA = QosProfile("SENSOR_DATA", BEST_EFFORT, KEEP_LAST, 5, VOLATILE)
#: rclpy's default (``QoSProfile(depth=10)``): reliable, keep last 10, volatile.
DEFAULT = QosProfile("DEFAULT", RELIABLE, KEEP_LAST, 10, VOLATILE)
#: Leave every policy to the middleware (``rmw_qos_profile_system_default``).
SYSTEM_DEFAULT_PROFILE = QosProfile(
    "SYSTEM_DEFAULT", SYSTEM_DEFAULT, SYSTEM_DEFAULT, 0, SYSTEM_DEFAULT
)

PROFILES: dict[str, QosProfile] = {
    "SENSOR_DATA": SENSOR_DATA,
    "DEFAULT": DEFAULT,
    "SYSTEM_DEFAULT": SYSTEM_DEFAULT_PROFILE,
}


def qos_profile(name: str | QosProfile = "DEFAULT", depth: int | None = None) -> QosProfile:
    """Resolve a profile parameter (case-insensitive) with an optional depth override.

    Args:
        name: ``SENSOR_DATA``, ``DEFAULT`` or ``SYSTEM_DEFAULT`` (or a QosProfile).
        depth: history depth override; ``None`` or 0 keeps the profile's. A depth given with
            ``SYSTEM_DEFAULT`` turns its history into ``keep_last`` of that depth.

    Raises:
        ValueError: unknown profile name or a negative depth.
    """
    if isinstance(name, QosProfile):
        profile = name
    else:
        key = str(name).strip().upper()
        if key not in PROFILES:
            raise ValueError(f"unknown QoS profile {name!r}; use one of {sorted(PROFILES)}")
        profile = PROFILES[key]
    if depth is None or int(depth) == 0:
        return profile
    if int(depth) < 0:
        raise ValueError(f"QoS depth must be positive, got {depth}")
    return replace(profile, history=KEEP_LAST, depth=int(depth))


def compatible(offered: QosProfile, requested: QosProfile) -> bool:
    """Whether a writer offering ``offered`` matches a reader requesting ``requested``.

    DDS request/offer rules for the policies here: a reliable reader needs a reliable writer;
    a transient-local reader needs a transient-local writer. ``system_default`` is treated as
    the DDS default (writer reliable, reader best effort; volatile).
    """
    w_rel = RELIABLE if offered.reliability == SYSTEM_DEFAULT else offered.reliability
    r_rel = BEST_EFFORT if requested.reliability == SYSTEM_DEFAULT else requested.reliability
    w_dur = VOLATILE if offered.durability == SYSTEM_DEFAULT else offered.durability
    r_dur = VOLATILE if requested.durability == SYSTEM_DEFAULT else requested.durability
    if r_rel == RELIABLE and w_rel != RELIABLE:
        return False
    return not (r_dur == TRANSIENT_LOCAL and w_dur != TRANSIENT_LOCAL)


def adapt_to_offers(requested: QosProfile, offered: Sequence[str]) -> QosProfile:
    """The subscription profile for publishers offering the reliabilities ``offered``.

    As ``ros2 bag record`` adapts its subscriptions: when ``requested.match_publishers`` and
    every publisher offers ``reliable`` (at least one), a best-effort request becomes
    reliable, so samples lost on the way are sent again (a best-effort reader loses a whole
    large image for one lost fragment); with no publisher, or any best-effort one (which a
    reliable reader would not match), the request stands.

    Args:
        requested: the configured profile.
        offered: each publisher's reliability (``reliable`` | ``best_effort``).
    """
    if (requested.match_publishers and offered and requested.reliability != RELIABLE
            and all(r == RELIABLE for r in offered)):
        return replace(requested, reliability=RELIABLE)
    return requested


def to_cyclone_qos(profile: QosProfile | str, user_data: bytes | None = None) -> Any:
    """Cyclone DDS ``Qos`` for a reader or writer of ``profile``.

    Always includes ``DataRepresentation(use_cdrv0_representation=True)``: plain CDR (XCDR1),
    what ROS 2 middlewares send and accept. ``system_default`` policies are left unset.

    Args:
        profile: a QosProfile or profile name.
        user_data: USER_DATA bytes (e.g. ROS 2's ``typehash=RIHS01_<hex>;``).
    """
    profile = qos_profile(profile)
    qos_mod = require("cyclonedds.qos")
    duration = require("cyclonedds.util").duration
    policy = qos_mod.Policy
    policies: list[Any] = [policy.DataRepresentation(use_cdrv0_representation=True)]
    if profile.reliability == RELIABLE:
        policies.append(
            policy.Reliability.Reliable(max_blocking_time=duration(seconds=RELIABLE_MAX_BLOCKING_S))
        )
    elif profile.reliability == BEST_EFFORT:
        policies.append(policy.Reliability.BestEffort)
    if profile.history == KEEP_LAST:
        policies.append(policy.History.KeepLast(max(1, profile.depth)))
    elif profile.history == KEEP_ALL:
        policies.append(policy.History.KeepAll)
    if profile.durability == VOLATILE:
        policies.append(policy.Durability.Volatile)
    elif profile.durability == TRANSIENT_LOCAL:
        policies.append(policy.Durability.TransientLocal)
    if user_data:
        policies.append(policy.Userdata(data=bytes(user_data)))
    return qos_mod.Qos(*policies)


def to_rosbags_qos(profile: QosProfile | str) -> Any:
    """The rosbags ``Qos`` (for ``offered_qos_profiles``) of a publisher of ``profile``.

    Liveliness is ``automatic`` (what every ROS 2 publisher offers); deadline, lifespan and
    lease duration are ``{sec: 0, nsec: 0}`` (unspecified = infinite).
    """
    profile = qos_profile(profile)
    itf = require("rosbags.interfaces")
    zero = itf.QosTime(0, 0)
    return itf.Qos(
        history=itf.QosHistory[profile.history.upper()],
        depth=int(profile.depth),
        reliability=itf.QosReliability[profile.reliability.upper()],
        durability=itf.QosDurability[profile.durability.upper()],
        deadline=zero,
        lifespan=zero,
        liveliness=itf.QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def offered_qos_profiles_yaml(
    profiles: QosProfile | str | Sequence[QosProfile | str], version: int = 8
) -> str:
    """``offered_qos_profiles`` text of rosbag2 metadata (a YAML list of dicts).

    Version 8 (Humble) uses integer enums (``history: 1``, ``reliability: 1``, ...);
    version 9 (Jazzy) uses lower-case names (``history: keep_last``).
    """
    if isinstance(profiles, (str, QosProfile)):
        profiles = [profiles]
    qos = [to_rosbags_qos(p) for p in profiles]
    meta = require("rosbags.rosbag2.metadata")
    if version >= 9:
        from io import StringIO

        yaml = require("ruamel.yaml").YAML(typ="safe")
        yaml.default_flow_style = False
        stream = StringIO()
        yaml.dump(meta.dump_qos_v9(qos), stream)
        return stream.getvalue().strip()
    return meta.dump_qos_v8(qos)
