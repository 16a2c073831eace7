"""Random construction of the synthetic world: room, table, static objects, hands, object.

World frame (REP-103): x forward (away from the person), y left, z up, metres; the floor
is ``z = 0`` and the table is centred on the origin. Body 0 is the static world (its
primitives are given in world coordinates); bodies ``1..`` are the hands and their
forearms (a forearm pivots about a fixed elbow point), then the manipulated object, each
with primitives in its own frame. Which geometry is drawn is
decided here; how it moves is :mod:`unihoi_ros.sim.trajectory`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rigid import make_pose, rot_y, rot_z
from .scene import BOX, CAPSULE, CYLINDER, ELLIPSOID, ROOM, Primitive
from .texture import CHECKER, MARBLE, PLAIN, STRIPES, WOOD, random_material

#: Version of the world a seed draws. Bumped whenever a seed's world changes, so that caches
#: of clips labelled from an older world are refused rather than mixed in (see
#: :func:`unihoi_ros.train.dataset.build_cache`). 2: the viewing distance no longer depends
#: on the field of view.
WORLD_VERSION = 2


@dataclass(frozen=True)
class Layout:
    """Where things are, for the motion planner (world frame, metres).

    Attributes:
        table_z: height of the table top.
        table_half: ``(2,)`` half extents of the table top in x and y.
        work_center: ``(3,)`` centre of the manipulation area, on the table top.
        work_half: ``(2,)`` half extents in x, y of where the object is picked and placed.
        view_dist: distance from the head to ``work_center``.
        view_pitch: angle of the head-to-work line below the horizontal (rad).
        head_base: ``(3,)`` mean head (camera) position.
        hand_sides: ``(num_hands,)`` +1 for a left hand, -1 for a right hand (world y sign).
        elbows: ``(num_hands, 3)`` fixed points the forearms point to (low, behind the
            hands, so that arms never come close to the head).
        wrists: ``(3,)`` wrist point in the hand frame (the forearm's origin).
        palm_rest: ``(num_hands, 3)`` resting palm centres.
        palm_half_thickness: half thickness of the palm (m), for resting and grasping.
        object_half_height: half height of the manipulated object (m).
        object_radius: horizontal radius of the object's footprint (m).
    """

    table_z: float
    table_half: np.ndarray
    work_center: np.ndarray
    work_half: np.ndarray
    view_dist: float
    view_pitch: float
    head_base: np.ndarray
    hand_sides: np.ndarray
    elbows: np.ndarray
    wrists: np.ndarray
    palm_rest: np.ndarray
    palm_half_thickness: float
    object_half_height: float
    object_radius: float


@dataclass(frozen=True)
class World:
    """Geometry, materials and lighting of one clip.

    Attributes:
        prims: all primitives; static ones (body 0) in world coordinates.
        body_names: ``(B,)`` names, index = body id: ``"static"``, then per hand
            ``"hand_<side>"`` and ``"forearm_<side>"`` (side ``right`` / ``left``), then
            ``"object"``.
        layout: placement facts for the motion planner.
        light_dirs: ``(L, 3)`` unit vectors towards the directional lights (world).
        light_gains: ``(L,)`` their intensities.
        ambient: ambient light level (shade = ambient + sum gains * max(0, n . l)).
    """

    prims: tuple[Primitive, ...]
    body_names: tuple[str, ...]
    layout: Layout
    light_dirs: np.ndarray
    light_gains: np.ndarray
    ambient: float

    @property
    def num_bodies(self) -> int:
        """Number of bodies B including the static world."""
        return len(self.body_names)


def _frame_z(direction: np.ndarray) -> np.ndarray:
    """Return a rotation whose z column is ``direction`` (normalised)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _capsule(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pose (in the parent frame) and size of a capsule between points ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    half = 0.5 * float(np.linalg.norm(b - a))
    return make_pose(_frame_z(b - a), 0.5 * (a + b)), np.array([radius, radius, half])


#: Forearm capsule length (m) from the wrist towards the elbow (long enough to leave view).
FOREARM_LENGTH = 0.42


def hand_body(hand: int) -> int:
    """Body id of hand ``hand`` (0-based); its forearm is the next body."""
    return 1 + 2 * hand


def _hand_prims(
    rng: np.random.Generator, hand: int, side: float, scale: float, tex: float
) -> list[Primitive]:
    """Build the primitives of one hand and its forearm.

    The mitten hand is in the hand frame (x fingers, y left, z back of the hand), the
    forearm in its own frame (origin at the wrist, z towards the elbow).

    ``side`` is -1 for a right hand (thumb on +y when the palm faces down), +1 for a left.
    """
    k = scale
    tone = rng.uniform(0.0, 1.0)
    skin_base = np.array([0.92, 0.72, 0.58]) * (1.0 - 0.45 * tone) + np.array([0.0, 0.02, 0.04])
    skin = random_material(
        rng,
        pattern=MARBLE,
        period=(0.02, 0.05),
        noise_cell=(0.003, 0.006),
        base=skin_base,
        contrast=0.12,
        scale=tex,
    )
    sleeve = random_material(
        rng,
        pattern=int(rng.choice([STRIPES, CHECKER])),
        period=(0.015, 0.04),
        noise_cell=(0.003, 0.008),
        contrast=0.45,
        scale=tex,
    )
    body = hand_body(hand)
    thumb_y = -side
    eye = np.eye(4)
    fingers_pose = make_pose(rot_y(0.3), np.array([0.078, 0.0, -0.006]) * k)
    thumb_pose, thumb_size = _capsule(
        np.array([0.0, 0.040 * thumb_y, -0.008]) * k,
        np.array([0.05, 0.068 * thumb_y, -0.016]) * k,
        0.011 * k,
    )
    arm_r = 0.031 * k
    arm_pose = make_pose(np.eye(3), np.array([0.0, 0.0, 0.5 * FOREARM_LENGTH]))
    arm_size = np.array([arm_r, arm_r, 0.5 * FOREARM_LENGTH - arm_r])
    return [
        Primitive(ELLIPSOID, np.array([0.052, 0.043, 0.018]) * k, body, eye, (skin,), "palm"),
        Primitive(
            ELLIPSOID, np.array([0.048, 0.040, 0.011]) * k, body, fingers_pose, (skin,), "fingers"
        ),
        Primitive(CAPSULE, thumb_size, body, thumb_pose, (skin,), "thumb"),
        Primitive(CAPSULE, arm_size, body + 1, arm_pose, (sleeve,), "forearm"),
    ]


def _table_objects(
    rng: np.random.Generator,
    table_half: np.ndarray,
    table_z: float,
    work: np.ndarray,
    tex: float,
) -> list[Primitive]:
    """2-5 static objects on the table, outside the manipulation area."""
    prims: list[Primitive] = []
    centers: list[np.ndarray] = []
    want = int(rng.integers(2, 6))
    for _ in range(60):
        if len(prims) == want:
            break
        kind = int(rng.choice([BOX, CYLINDER, ELLIPSOID]))
        half = rng.uniform(0.025, 0.08, size=3)
        if kind == CYLINDER:
            half[1] = half[0]
        if kind == ELLIPSOID:
            half[:2] = half[0]
            half[2] = min(half[2], half[0])
        foot = float(np.hypot(half[0], half[1]))
        xy = rng.uniform(-table_half + foot, table_half - foot)
        if abs(xy[0] - work[0]) < 0.24 + foot and abs(xy[1] - work[1]) < 0.36 + foot:
            continue  # keep the hands' workspace clear
        if any(np.linalg.norm(xy - c) < foot + 0.1 for c in centers):
            continue
        centers.append(xy)
        pose = make_pose(rot_z(rng.uniform(0, np.pi)), np.array([xy[0], xy[1], table_z + half[2]]))
        mat = random_material(rng, period=(0.01, 0.04), noise_cell=(0.002, 0.006), scale=tex)
        prims.append(Primitive(kind, half, 0, pose, (mat,), "table_object"))
    return prims


def build_world(
    rng: np.random.Generator,
    num_hands: int,
    hfov_rad: float,
    texture_scale: float = 1.0,
) -> World:
    """Draw a random world for a camera with horizontal FOV ``hfov_rad``.

    The head sits at arm's length from the work area (0.45-0.55 m) whatever the camera's
    field of view, as a person's does: a wide lens shows more of the room around the hands,
    a narrow one shows them larger. (World version 1 moved the head in as the FOV widened,
    which kept every image alike and made the focal length and the metric scale
    unobservable from the pixels.)
    """
    tex = texture_scale
    # --- table and room -------------------------------------------------------------
    table_z = float(rng.uniform(0.70, 0.78))
    table_half = np.array([rng.uniform(0.42, 0.55), rng.uniform(0.55, 0.8)])
    room_lo = np.array([-rng.uniform(1.6, 2.4), -rng.uniform(1.5, 2.5), 0.0])
    room_hi = np.array([rng.uniform(1.5, 2.5), rng.uniform(1.5, 2.5), rng.uniform(2.4, 3.0)])
    room_pose = make_pose(np.eye(3), 0.5 * (room_lo + room_hi))
    wall_a = random_material(
        rng,
        pattern=int(rng.choice([STRIPES, MARBLE, CHECKER])),
        period=(0.08, 0.3),
        noise_cell=(0.015, 0.04),
        scale=tex,
    )
    wall_b = random_material(
        rng,
        pattern=int(rng.choice([STRIPES, MARBLE, PLAIN])),
        period=(0.08, 0.3),
        noise_cell=(0.015, 0.04),
        scale=tex,
    )
    floor = random_material(
        rng,
        pattern=int(rng.choice([CHECKER, WOOD, MARBLE])),
        period=(0.15, 0.45),
        noise_cell=(0.01, 0.03),
        scale=tex,
    )
    ceiling = random_material(
        rng,
        pattern=PLAIN,
        period=(0.5, 1.0),
        noise_cell=(0.05, 0.1),
        base=np.array([0.85, 0.85, 0.82]),
        contrast=0.15,
        scale=tex,
    )
    prims = [
        Primitive(
            ROOM,
            0.5 * (room_hi - room_lo),
            0,
            room_pose,
            (wall_a, wall_b, wall_b, wall_a, floor, ceiling),
            "room",
        ),
    ]
    top = random_material(
        rng,
        pattern=int(rng.choice([WOOD, CHECKER, MARBLE, STRIPES])),
        period=(0.02, 0.08),
        noise_cell=(0.004, 0.01),
        scale=tex,
    )
    prims.append(
        Primitive(
            BOX,
            np.array([table_half[0], table_half[1], 0.02]),
            0,
            make_pose(np.eye(3), np.array([0.0, 0.0, table_z - 0.02])),
            (top,),
            "table_top",
        )
    )
    leg_mat = random_material(rng, pattern=WOOD, period=(0.01, 0.03), scale=tex)
    leg_h = 0.5 * (table_z - 0.04)
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = np.array([sx * (table_half[0] - 0.05), sy * (table_half[1] - 0.05), leg_h])
            prims.append(
                Primitive(
                    BOX,
                    np.array([0.025, 0.025, leg_h]),
                    0,
                    make_pose(np.eye(3), c),
                    (leg_mat,),
                    "table_leg",
                )
            )
    # --- layout of the person and the workspace ---------------------------------------
    work = np.array([-table_half[0] + 0.3, rng.uniform(-0.05, 0.05), table_z])
    prims += _table_objects(rng, table_half, table_z, work[:2], tex)
    # Floor furniture along the walls, for parallax and texture at a distance.
    for _ in range(int(rng.integers(1, 4))):
        half = np.array([rng.uniform(0.2, 0.45), rng.uniform(0.2, 0.45), rng.uniform(0.3, 0.9)])
        wall = int(rng.integers(0, 3))
        x_lo = table_half[0] + half[0] + 0.05  # side-wall furniture stays beyond the table
        if wall == 0 or x_lo > room_hi[0] - half[0]:
            c = np.array(
                [
                    room_hi[0] - half[0] - 0.02,
                    rng.uniform(room_lo[1] + half[1], room_hi[1] - half[1]),
                    half[2],
                ]
            )
        else:
            y = room_lo[1] + half[1] + 0.02 if wall == 1 else room_hi[1] - half[1] - 0.02
            c = np.array([rng.uniform(x_lo, room_hi[0] - half[0]), y, half[2]])
        mat = random_material(rng, period=(0.04, 0.15), noise_cell=(0.008, 0.02), scale=tex)
        prims.append(Primitive(BOX, half, 0, make_pose(np.eye(3), c), (mat,), "furniture"))

    view_dist = float(0.5 * rng.uniform(0.9, 1.1))
    pitch = float(rng.uniform(np.radians(52), np.radians(70)))
    head = work + view_dist * np.array([-np.cos(pitch), 0.0, np.sin(pitch)])
    head[1] += rng.uniform(-0.03, 0.03)
    if num_hands == 2:
        sides = np.array([-1.0, 1.0])
    else:
        sides = np.array([-1.0 if rng.random() < 0.7 else 1.0])
    hand_scale = float(rng.uniform(0.92, 1.1))
    palm_ht = 0.018 * hand_scale
    elbows = np.stack([work + np.array([-0.42, s * 0.2, 0.02]) for s in sides])
    palm_rest = np.stack(
        [work + np.array([-0.07, s * rng.uniform(0.13, 0.18), palm_ht + 0.004]) for s in sides]
    )
    names = ["static"]
    for i, s in enumerate(sides):
        name = "left" if s > 0 else "right"
        names += [f"hand_{name}", f"forearm_{name}"]
        prims += _hand_prims(rng, i, float(s), hand_scale, tex)
    # --- the manipulated object --------------------------------------------------------
    obj_body = len(names)
    names.append("object")
    if rng.random() < 0.5:
        half = np.array(
            [rng.uniform(0.03, 0.055), rng.uniform(0.03, 0.055), rng.uniform(0.03, 0.065)]
        )
        kind, radius = BOX, float(np.hypot(half[0], half[1]))
    else:
        r = rng.uniform(0.03, 0.048)
        half = np.array([r, r, rng.uniform(0.035, 0.07)])
        kind, radius = CYLINDER, float(r)
    obj_mat = random_material(
        rng,
        pattern=int(rng.choice([CHECKER, STRIPES, MARBLE])),
        period=(0.012, 0.035),
        noise_cell=(0.002, 0.005),
        contrast=0.7,
        scale=tex,
    )
    prims.append(Primitive(kind, half, obj_body, np.eye(4), (obj_mat,), "object"))

    key = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.0])
    phi = rng.uniform(0, 2 * np.pi)
    fill = np.array([np.cos(phi), np.sin(phi), 0.3])
    lights = np.stack([key / np.linalg.norm(key), fill / np.linalg.norm(fill)])
    layout = Layout(
        table_z=table_z,
        table_half=table_half,
        work_center=work,
        work_half=np.array([0.1, 0.17]),
        view_dist=view_dist,
        view_pitch=pitch,
        head_base=head,
        hand_sides=sides,
        elbows=elbows,
        wrists=np.array([-0.05, 0.0, 0.004]) * hand_scale,
        palm_rest=palm_rest,
        palm_half_thickness=palm_ht,
        object_half_height=float(half[2]),
        object_radius=radius,
    )
    return World(
        prims=tuple(prims),
        body_names=tuple(names),
        layout=layout,
        light_dirs=lights,
        light_gains=np.array([rng.uniform(0.4, 0.55), rng.uniform(0.15, 0.25)]),
        ambient=float(rng.uniform(0.35, 0.45)),
    )
