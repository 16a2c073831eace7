"""Analytic primitives of the synthetic world: ray intersection and surface normals.

Every primitive lives in its own frame (attached rigidly to a body) in a canonical
position: centred at the origin, symmetric about the axes, with its axis along z.

- ``ELLIPSOID``: semi-axes ``size`` (m).
- ``BOX``: half extents ``size`` (m).
- ``CYLINDER``: radius ``size[0]`` and half height ``size[2]`` (m), capped, axis z.
- ``CAPSULE``: radius ``size[0]``, segment from ``z = -size[2]`` to ``+size[2]`` (m).
- ``ROOM``: the *inside* of a box with half extents ``size``: a ray from inside always
  leaves it, which closes the world so that every pixel hits something.

Rays are ``o + t d`` with a shared origin ``o`` (3,) and directions ``d`` (3, M); they are
not normalised (camera rays have unit optical-axis component, so ``t`` is z-depth, and
rigid transforms preserve ``t``). Intersections return the smallest ``t > T_MIN`` or
``inf``. All functions are pure and vectorised over rays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .texture import Material

ELLIPSOID, BOX, CYLINDER, CAPSULE, ROOM = range(5)
KIND_NAMES = ("ellipsoid", "box", "cylinder", "capsule", "room")

#: Hits closer than this ray parameter (m for camera rays) are ignored.
T_MIN = 1e-6


@dataclass(frozen=True)
class Primitive:
    """One analytic surface rigidly attached to a body.

    Attributes:
        kind: one of ``ELLIPSOID, BOX, CYLINDER, CAPSULE, ROOM``.
        size: ``(3,)`` float64 shape parameters in metres (see the module docstring).
        body: index of the body it belongs to (0 = the static world).
        T_body_prim: ``(4, 4)`` float64 pose of the primitive frame in the body frame.
        materials: textures; a box or room picks ``materials[face % len(materials)]`` per
            face (``face`` = 2 * axis + (1 if the outward normal is positive)), other kinds
            use ``materials[0]``.
        name: label for debugging.
    """

    kind: int
    size: np.ndarray
    body: int
    T_body_prim: np.ndarray
    materials: tuple[Material, ...]
    name: str = ""

    @property
    def bound_radius(self) -> float:
        """Radius (m) of a sphere around the primitive origin that contains it (inf: room)."""
        r, h = float(self.size[0]), float(self.size[2])
        if self.kind == ROOM:
            return float("inf")
        if self.kind in (ELLIPSOID,):
            return float(np.max(self.size))
        if self.kind == BOX:
            return float(np.linalg.norm(self.size))
        if self.kind == CYLINDER:
            return float(np.hypot(r, h))
        return r + h  # capsule


def _nearest_positive(t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Smallest of two roots above ``T_MIN`` (inf when neither; NaN counts as none)."""
    t0 = np.where(t0 > T_MIN, t0, np.inf)
    t1 = np.where(t1 > T_MIN, t1, np.inf)
    return np.minimum(t0, t1)


def _quadric_roots(
    a: np.ndarray, b: np.ndarray, c: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Roots ``t0 <= t1`` of ``a t^2 + 2 b t + c = 0`` (NaN where none), stable form."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(b * b - a * c)
        # Avoid cancellation: q = -(b + sign(b) sqrt(disc)), roots q / a and c / q.
        q = -(b + np.copysign(sq, b))
        r0 = q / a
        r1 = c / q
    return np.fmin(r0, r1), np.fmax(r0, r1)


def intersect_ellipsoid(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters of the first hit with an ellipsoid of semi-axes ``size``."""
    inv2 = 1.0 / (size * size)
    a = inv2 @ (d * d)
    b = (o * inv2) @ d
    c = float(o @ (o * inv2)) - 1.0
    t0, t1 = _quadric_roots(a, b, c)
    return _nearest_positive(t0, t1)


def _slabs(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit ray parameters of the axis-aligned slab box ``|x| <= size``.

    Per axis the far plane is the one on the side the ray moves to; a zero direction
    component gives +-inf, i.e. the slab is all or nothing, as it should.
    """
    tnear = tfar = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for ax in range(3):
            da = d[ax]
            s = np.copysign(size[ax], da)
            near = (-s - o[ax]) / da
            far = (s - o[ax]) / da
            # fmax/fmin ignore the NaN of 0/0 (a ray lying in a face plane).
            tnear = near if tnear is None else np.fmax(tnear, near)
            tfar = far if tfar is None else np.fmin(tfar, far)
    return tnear, tfar


def intersect_box(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters of the first hit with the box of half extents ``size``."""
    tnear, tfar = _slabs(size, o, d)
    hit = tfar >= np.maximum(tnear, T_MIN)
    t = np.where(tnear > T_MIN, tnear, tfar)
    return np.where(hit, t, np.inf)


def intersect_room(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters where rays starting inside the box ``|x| <= size`` leave it."""
    tfar = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for ax in range(3):
            far = (np.copysign(size[ax], d[ax]) - o[ax]) / d[ax]
            tfar = far if tfar is None else np.fmin(tfar, far)
    return np.where(tfar > T_MIN, tfar, np.inf)


def _side(r: float, h: float, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """First hit with the open cylinder side of radius ``r``, ``|z| <= h``."""
    a = d[0] * d[0] + d[1] * d[1]
    b = d[0] * o[0] + d[1] * o[1]
    t0, t1 = _quadric_roots(a, b, o[0] ** 2 + o[1] ** 2 - r * r)
    with np.errstate(invalid="ignore"):
        t0 = np.where(np.abs(o[2] + t0 * d[2]) <= h, t0, np.nan)
        t1 = np.where(np.abs(o[2] + t1 * d[2]) <= h, t1, np.nan)
    return _nearest_positive(t0, t1)


def intersect_cylinder(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters of the first hit with a capped cylinder (axis z)."""
    r, h = float(size[0]), float(size[2])
    t = _side(r, h, o, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        for zc in (-h, h):
            tc = (zc - o[2]) / d[2]
            x = o[0] + tc * d[0]
            y = o[1] + tc * d[1]
            ok = (x * x + y * y <= r * r) & (tc > T_MIN) & (tc < t)
            t = np.where(ok, tc, t)
    return t


def intersect_capsule(size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters of the first hit with a capsule (axis z)."""
    r, h = float(size[0]), float(size[2])
    t = _side(r, h, o, d)
    sphere = np.array([r, r, r])
    for zc in (-h, h):
        oc = o - np.array([0.0, 0.0, zc])
        t = np.minimum(t, intersect_ellipsoid(sphere, oc, d))
    return t


_INTERSECT = {
    ELLIPSOID: intersect_ellipsoid,
    BOX: intersect_box,
    CYLINDER: intersect_cylinder,
    CAPSULE: intersect_capsule,
    ROOM: intersect_room,
}


def intersect(kind: int, size: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """First-hit ray parameters ``(M,)`` (inf = miss) of rays in the primitive's frame.

    ``o`` (3,) is the shared origin, ``d`` (3, M) the directions, component-major so that
    per-axis arithmetic is contiguous.
    """
    return _INTERSECT[kind](size, o, d)


def normals_and_faces(kind: int, size: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return unit normals ``(M, 3)`` and face indices ``(M,)`` of surface points.

    ``p`` ``(M, 3)`` are in the primitive frame; normals point outwards (inwards for
    ``ROOM``, i.e. towards the viewer).

    Faces are ``2 * axis + (outward normal positive)`` for boxes and rooms, 0 otherwise.
    """
    m = p.shape[0]
    faces = np.zeros(m, dtype=np.int64)
    if kind == ELLIPSOID:
        n = p / (size * size)
    elif kind in (BOX, ROOM):
        rel = np.abs(p) / size
        axis = np.argmax(rel, axis=1)
        sign = np.sign(p[np.arange(m), axis])
        n = np.zeros_like(p)
        n[np.arange(m), axis] = sign if kind == BOX else -sign
        faces = 2 * axis + (sign > 0)
    elif kind == CYLINDER:
        r, h = size[0], size[2]
        rho = np.hypot(p[:, 0], p[:, 1])
        cap = np.abs(h - np.abs(p[:, 2])) < np.abs(rho - r)
        n = np.where(
            cap[:, None],
            np.stack([np.zeros(m), np.zeros(m), np.sign(p[:, 2])], axis=1),
            np.stack([p[:, 0], p[:, 1], np.zeros(m)], axis=1),
        )
        faces = cap.astype(np.int64)
    else:  # capsule: direction from the nearest axis point
        h = size[2]
        n = p - np.stack([np.zeros(m), np.zeros(m), np.clip(p[:, 2], -h, h)], axis=1)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    return n, faces
