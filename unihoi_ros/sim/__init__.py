"""Synthetic head-mounted hand-object-interaction world with exact ground truth.

``make_sequence(seed, num_frames, height, width, **options)`` ray-casts (numpy, one core)
a closed textured room with a table, static objects, one or two hands and an object that
they pick up, carry and put down, seen from a head-mounted camera, and returns RGB,
z-depth, intrinsics, camera and body poses, backward optical flow with its occlusion mask,
dynamic / instance masks, timestamps and long-term point tracks, all exact.

Modules: ``scene`` (primitives, intersections), ``texture`` (procedural solid textures),
``world`` (random scene construction), ``trajectory`` (hand, object and camera motion),
``render`` (ray casting, shading, visibility), ``flow`` (analytic flow),
``sequence`` (``make_sequence`` and the result dataclasses), ``camera`` / ``rigid``
(small sim-internal numpy helpers). It depends on numpy and the package's camera model
(:mod:`unihoi_ros.geometry.camera`, torch-free) only.
"""

from __future__ import annotations

from .sequence import Sequence, Tracks, make_sequence, raycast

__all__ = ["Sequence", "Tracks", "make_sequence", "raycast"]
