"""ROS 2 naming rules, pure: topic names, namespaces, DDS topic and type names, domain ids.

No middleware is imported here, so :class:`~unihoi_ros.ros.transport.MemoryTransport`, the
rclpy transport's fallback and the Cyclone DDS transport (:mod:`unihoi_ros.ros.dds`) share
one set of rules without the ``[dds]`` extra.

ROS 2 topic ``/unihoi/depth/image`` of type ``sensor_msgs/msg/Image`` is the DDS topic
``rt/unihoi/depth/image`` of type ``sensor_msgs::msg::dds_::Image_``.
"""

from __future__ import annotations

import os
import re

from unihoi_ros.ros.params import DEFAULT_NAMESPACE as PARAMS_DEFAULT_NAMESPACE

#: Namespace relative names resolve under by default (the node's).
DEFAULT_NAMESPACE = PARAMS_DEFAULT_NAMESPACE
#: Prefix ROS 2 puts in front of topic names on DDS ("ROS topic").
ROS_TOPIC_PREFIX = "rt"
#: Largest valid ROS_DOMAIN_ID with the default port mapping.
MAX_DOMAIN_ID = 232

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_tokens(path: str, what: str) -> None:
    for tok in path.strip("/").split("/"):
        if tok and not _TOKEN.fullmatch(tok):
            raise ValueError(f"invalid ROS {what} {path!r}: token {tok!r}")
    if "//" in path:
        raise ValueError(f"invalid ROS {what} {path!r}: empty token")


def normalize_namespace(namespace: str | None) -> str:
    """``"unihoi/"`` -> ``"/unihoi"``; ``None``, ``""`` and ``"/"`` -> ``"/"``."""
    ns = "/" + (namespace or "").strip().strip("/")
    _check_tokens(ns, "namespace")
    return ns


def resolve_topic_name(
    name: str, namespace: str | None = DEFAULT_NAMESPACE, node_name: str | None = None
) -> str:
    """Resolve a ROS 2 topic name to its fully qualified form.

    Absolute names (``/tf``) are kept; relative names (``depth/image``) go under
    ``namespace``; private names (``~/x``) under ``namespace/node_name``.

    Raises:
        ValueError: an invalid name, or a private name without ``node_name``.
    """
    name = name.strip()
    if not name or name.endswith("/"):
        raise ValueError(f"invalid ROS topic name {name!r}")
    ns = normalize_namespace(namespace)
    if name.startswith("~"):
        if not node_name:
            raise ValueError(f"private topic name {name!r} needs a node name")
        base = ns.rstrip("/") + "/" + node_name
        full = base + "/" + name[1:].lstrip("/") if name != "~" else base
    elif name.startswith("/"):
        full = name
    else:
        full = ns.rstrip("/") + "/" + name
    _check_tokens(full, "topic name")
    return full


def dds_topic_name(
    name: str, namespace: str | None = DEFAULT_NAMESPACE, node_name: str | None = None
) -> str:
    """ROS 2 topic name -> DDS topic name: ``depth/image`` -> ``rt/unihoi/depth/image``."""
    return ROS_TOPIC_PREFIX + resolve_topic_name(name, namespace, node_name)


def ros_topic_name(dds_name: str) -> str:
    """DDS topic name -> ROS 2 topic name: ``rt/unihoi/points`` -> ``/unihoi/points``.

    Raises:
        ValueError: not a ROS topic (no ``rt/`` prefix).
    """
    if not dds_name.startswith(ROS_TOPIC_PREFIX + "/"):
        raise ValueError(f"{dds_name!r} is not a ROS 2 topic on DDS (no 'rt/' prefix)")
    return dds_name[len(ROS_TOPIC_PREFIX) :]


def dds_type_name(ros_type: str) -> str:
    """``"sensor_msgs/msg/Image"`` -> ``"sensor_msgs::msg::dds_::Image_"``."""
    pkg, kind, name = ros_type.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


def domain_id_from_env(default: int = 0) -> int:
    """``ROS_DOMAIN_ID`` from the environment (``default`` when unset or empty).

    Raises:
        ValueError: not an integer in ``[0, 232]``.
    """
    raw = os.environ.get("ROS_DOMAIN_ID", "").strip()
    value = int(raw) if raw else default
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise ValueError(f"ROS_DOMAIN_ID must be in [0, {MAX_DOMAIN_ID}], got {value}")
    return value
