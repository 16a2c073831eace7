"""Motion of the synthetic world: pick-and-place episodes and a head-mounted camera.

The hands pick up, carry and put down the object; each forearm pivots about a fixed elbow
point, following its wrist; the camera follows the action.

All motions are functions of continuous time (seconds) except the camera's
rate-limited gaze follower, which is integrated on a fine grid that contains every frame
time. The object only moves while a hand holds it, and then exactly rigidly with that
hand (``T_world_object = T_world_hand @ inv(T_object_hand)``), so contact is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rigid import (
    interp_pose,
    inv_pose,
    look_at,
    make_pose,
    min_jerk,
    rot_x,
    rot_y,
    rot_z,
    so3_exp,
    so3_log,
)
from .world import Layout, hand_body


@dataclass(frozen=True)
class Episode:
    """One pick-and-place by one hand. Times in seconds, poses ``(4, 4)`` world.

    Phases: reach ``[t0, t1)``, hold still ``[t1, t2)``, lift ``[t2, t3)``, carry
    ``[t3, t4)``, put down ``[t4, t5)``, release ``[t5, t6)``, retreat ``[t6, t7)``.
    """

    hand: int
    times: tuple[float, float, float, float, float, float, float, float]
    obj_a: np.ndarray
    obj_a_up: np.ndarray
    obj_b_up: np.ndarray
    obj_b: np.ndarray
    T_obj_hand: np.ndarray


@dataclass(frozen=True)
class MotionPlan:
    """Everything that determines the bodies' motion.

    Attributes:
        layout: the world's placement facts.
        episodes: pick-and-place episodes in time order (they never overlap).
        idle: per hand, ``(3, 2, 3)`` idle-drift amplitudes (m), frequencies (Hz) and
            phases (rad) of two sinusoids per axis (see ``idle_pose``).
        idle_angles: per hand ``(3,)`` mean finger pitch, roll and yaw offset (rad).
        obj_start: ``(4, 4)`` object pose at time 0 (before the first lift).
    """

    layout: Layout
    episodes: tuple[Episode, ...]
    idle: np.ndarray
    idle_angles: np.ndarray
    obj_start: np.ndarray


def hand_rotation(
    layout: Layout, hand: int, palm: np.ndarray, pitch: float, roll: float, yaw: float
) -> np.ndarray:
    """Hand orientation: fingers point away from the hand's elbow point (horizontally).

    The fingers are tipped down by ``pitch`` and rolled by ``roll`` about the finger axis,
    after a ``yaw`` about the vertical (rad).
    """
    x = palm - layout.elbows[hand]
    x[2] = 0.0
    x /= np.linalg.norm(x)
    z = np.array([0.0, 0.0, 1.0])
    r0 = np.stack([x, np.cross(z, x), z], axis=1)
    return r0 @ rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


def idle_pose(plan: MotionPlan, hand: int, t: float) -> np.ndarray:
    """Pose (4, 4) of a hand that is not manipulating: slow drift around its rest pose."""
    amp, freq, phase = plan.idle[hand]
    wave = np.sum(amp * np.sin(2.0 * np.pi * freq * t + phase), axis=0)  # (3,)
    # The vertical drift is offset by its amplitude: the palm never sinks into the table.
    lift = wave[2] + float(np.sum(amp[:, 2]))
    pos = plan.layout.palm_rest[hand] + np.array([wave[0], wave[1], lift])
    pitch, roll, yaw = plan.idle_angles[hand]
    side = plan.layout.hand_sides[hand]
    r = hand_rotation(plan.layout, hand, pos, pitch, roll + 0.5 * wave[1] * side, yaw + wave[0])
    return make_pose(r, pos)


def object_pose(plan: MotionPlan, t: float) -> np.ndarray:
    """World pose (4, 4) of the manipulated object at time ``t`` (s)."""
    for e in plan.episodes:
        _, _, t2, t3, t4, t5, _, _ = e.times
        if t < t2:
            return e.obj_a
        if t < t3:
            return interp_pose(e.obj_a, e.obj_a_up, min_jerk((t - t2) / (t3 - t2)))
        if t < t4:
            return interp_pose(e.obj_a_up, e.obj_b_up, min_jerk((t - t3) / (t4 - t3)))
        if t < t5:
            return interp_pose(e.obj_b_up, e.obj_b, min_jerk((t - t4) / (t5 - t4)))
    return plan.episodes[-1].obj_b if plan.episodes else plan.obj_start


def _arc(pose: np.ndarray, s: float, height: float = 0.05) -> np.ndarray:
    """Raise a pose by ``height * sin(pi s)``: the hand travels above the table."""
    out = pose.copy()
    out[2, 3] += height * np.sin(np.pi * s)
    return out


def hand_pose(plan: MotionPlan, hand: int, t: float) -> np.ndarray:
    """World pose (4, 4) of hand ``hand`` (0-based) at time ``t`` (s)."""
    for e in plan.episodes:
        t0, t1, t2, _, _, t5, t6, t7 = e.times
        if e.hand != hand or not t0 <= t < t7:
            continue
        grasp = e.obj_a @ e.T_obj_hand
        if t < t1:
            s = float(min_jerk((t - t0) / (t1 - t0)))
            return _arc(interp_pose(idle_pose(plan, hand, t), grasp, s), s)
        if t < t2:
            return grasp
        if t < t5:
            return object_pose(plan, t) @ e.T_obj_hand
        placed = e.obj_b @ e.T_obj_hand
        if t < t6:
            return placed
        s = float(min_jerk((t - t6) / (t7 - t6)))
        return _arc(interp_pose(placed, idle_pose(plan, hand, t), s), s)
    return idle_pose(plan, hand, t)


def _object_at(layout: Layout, xy: np.ndarray, yaw: float, lift: float = 0.0) -> np.ndarray:
    z = layout.table_z + layout.object_half_height + lift
    return make_pose(rot_z(yaw), np.array([xy[0], xy[1], z]))


def _grasp(layout: Layout, hand: int, obj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``T_obj_hand``: the palm rests on the object's top, fingers over its far edge."""
    top = obj[:3, 3] + np.array([0.0, 0.0, layout.object_half_height])
    toward = top - layout.elbows[hand]
    toward[2] = 0.0
    toward /= np.linalg.norm(toward)
    palm = top + np.array([0.0, 0.0, 0.9 * layout.palm_half_thickness]) - 0.012 * toward
    r = hand_rotation(layout, hand, palm, rng.uniform(0.05, 0.2), rng.uniform(-0.2, 0.2), 0.0)
    return inv_pose(obj) @ make_pose(r, palm)


def plan_motion(
    rng: np.random.Generator, layout: Layout, duration: float, speed: float = 1.0
) -> MotionPlan:
    """Draw pick-and-place episodes covering ``[0, duration]`` seconds.

    ``speed`` scales every hand/object motion (durations are divided by it). The first
    reach is already under way at time 0 so that even a 1 s clip sees the object move.
    """
    num_hands = len(layout.hand_sides)
    wc, wh = layout.work_center[:2], layout.work_half
    idle = np.stack(
        [
            np.stack(
                [
                    rng.uniform(0.005, 0.02, size=(2, 3)) * np.array([1.0, 1.0, 0.6]),
                    rng.uniform(0.1, 0.4, size=(2, 3)) * speed,
                    rng.uniform(0.0, 2 * np.pi, size=(2, 3)),
                ]
            )
            for _ in range(num_hands)
        ]
    )
    idle_angles = np.stack(
        [
            np.array([rng.uniform(0.1, 0.3), s * rng.uniform(0.05, 0.25), rng.uniform(-0.2, 0.2)])
            for s in layout.hand_sides
        ]
    )
    yaw = float(rng.uniform(-np.pi, np.pi))
    xy = wc + rng.uniform(-wh, wh)
    obj = _object_at(layout, xy, yaw)
    start = obj
    hand = int(rng.integers(num_hands))
    episodes: list[Episode] = []
    t = -rng.uniform(0.3, 0.8) * 0.7 / speed
    while t < duration:
        d = (
            rng.uniform(
                [0.55, 0.08, 0.3, 0.6, 0.3, 0.08, 0.45, 0.1],
                [0.9, 0.15, 0.45, 1.0, 0.45, 0.15, 0.7, 0.8],
            )
            / speed
        )
        times = tuple(float(v) for v in t + np.cumsum(np.concatenate([[0.0], d[:7]])))
        for _ in range(50):
            xy_b = wc + rng.uniform(-wh, wh)
            if np.linalg.norm(xy_b - xy) > 0.1:
                break
        yaw_b = yaw + float(rng.uniform(-0.7, 0.7))
        lift = float(rng.uniform(0.04, 0.1))
        obj_b = _object_at(layout, xy_b, yaw_b)
        episodes.append(
            Episode(
                hand=hand,
                times=times,  # type: ignore[arg-type]
                obj_a=obj,
                obj_a_up=_object_at(layout, xy, yaw, lift),
                obj_b_up=_object_at(layout, xy_b, yaw_b, lift),
                obj_b=obj_b,
                T_obj_hand=_grasp(layout, hand, obj, rng),
            )
        )
        obj, xy, yaw = obj_b, xy_b, yaw_b
        t = times[-1] + float(d[7])
        if num_hands > 1 and rng.random() < 0.6:
            hand = 1 - hand
    return MotionPlan(layout, tuple(episodes), idle, idle_angles, start)


def forearm_pose(layout: Layout, hand: int, T_world_hand: np.ndarray) -> np.ndarray:
    """Forearm pose (4, 4): origin at the wrist, z towards the hand's elbow point.

    x lies in the vertical plane through that axis (smooth: the forearm is never vertical).
    """
    wrist = T_world_hand[:3, :3] @ layout.wrists + T_world_hand[:3, 3]
    z = layout.elbows[hand] - wrist
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = up - (up @ z) * z
    x /= np.linalg.norm(x)
    return make_pose(np.stack([x, np.cross(z, x), z], axis=1), wrist)


def body_poses(plan: MotionPlan, times: np.ndarray) -> np.ndarray:
    """Body poses ``T_world_body`` ``(N, B, 4, 4)`` at ``times`` (s).

    Bodies: static (identity), then per hand the hand and its forearm, then the object.
    """
    num_hands = len(plan.layout.hand_sides)
    out = np.zeros((len(times), 2 * num_hands + 2, 4, 4))
    out[:, 0] = np.eye(4)
    for i, t in enumerate(times):
        for h in range(num_hands):
            hand = hand_pose(plan, h, float(t))
            out[i, hand_body(h)] = hand
            out[i, hand_body(h) + 1] = forearm_pose(plan.layout, h, hand)
        out[i, -1] = object_pose(plan, float(t))
    return out


def _sines(
    rng: np.random.Generator, n: int, amp: tuple[float, float], freq: tuple[float, float]
) -> np.ndarray:
    """``(3, n, 3)`` amplitudes, frequencies (Hz), phases of ``n`` sinusoids per axis."""
    return np.stack(
        [
            rng.uniform(*amp, size=(n, 3)),
            rng.uniform(*freq, size=(n, 3)),
            rng.uniform(0.0, 2 * np.pi, size=(n, 3)),
        ]
    )


def _eval_sines(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sum of sinusoids ``p`` (3, n, 3) at times ``t`` (T,) -> (T, 3)."""
    amp, freq, phase = p
    return np.sum(amp * np.sin(2.0 * np.pi * freq * t[:, None, None] + phase), axis=1)


def _sines_speed_bound(p: np.ndarray) -> float:
    """Upper bound of the norm of the time derivative of ``_eval_sines(p, t)``."""
    amp, freq, _ = p
    return float(np.linalg.norm(np.sum(amp * 2.0 * np.pi * freq, axis=0)))


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of ``x`` (T, 3) along time, ``sigma`` in samples, edge padded."""
    half = int(np.ceil(3.0 * sigma))
    if half < 1:
        return x.copy()
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(x, ((half, half), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, i], k, mode="valid") for i in range(3)], axis=1)


def camera_trajectory(
    rng: np.random.Generator,
    plan: MotionPlan,
    poses: np.ndarray,
    fps: float,
    max_rot_speed: float,
    speed: float = 1.0,
) -> np.ndarray:
    """Head-mounted camera ``T_world_cam`` ``(N, 4, 4)`` (OpenCV optical axes).

    The head drifts slowly around its base position and leans towards the action; the
    optical axis follows a smoothed gaze point (between the hands, the object and the
    workspace centre) through a first-order follower whose angular speed is clamped so
    that, with the small smooth jitter added on top, the camera never turns faster than
    ``max_rot_speed`` (rad/s). ``poses`` is ``body_poses`` at the frame times.
    """
    n = poses.shape[0]
    layout = plan.layout
    sub = int(np.ceil(120.0 / fps))  # fine steps per frame
    dt = 1.0 / (fps * sub)
    t_frames = np.arange(n) / fps
    t_fine = np.arange((n - 1) * sub + 1) * dt
    num_hands = len(layout.hand_sides)
    palms = poses[:, [hand_body(h) for h in range(num_hands)]][..., :3, 3].mean(axis=1)
    gaze_raw = 0.3 * layout.work_center + 0.35 * poses[:, -1, :3, 3] + 0.35 * palms
    gaze = np.stack([np.interp(t_fine, t_frames, gaze_raw[:, i]) for i in range(3)], axis=1)
    gaze = _gaussian_smooth(gaze, 0.3 / dt)

    drift = _sines(rng, 2, (0.01, 0.03), (0.05 * speed, 0.25 * speed))
    shake = _sines(rng, 3, (0.0004, 0.0012), (1.5, 5.0))
    wobble = _sines(rng, 2, (np.radians(0.04), np.radians(0.12)), (1.0, 3.0))
    roll = _sines(rng, 1, (0.0, np.radians(3.0)), (0.04, 0.12))
    head = (
        layout.head_base
        + 0.25 * (gaze - layout.work_center)
        + _eval_sines(drift, t_fine)
        + _eval_sines(shake, t_fine)
    )
    roll_t = _eval_sines(roll, t_fine)[:, 0]
    limit = max_rot_speed - _sines_speed_bound(wobble) - np.radians(0.5)
    if limit <= 0.2 * max_rot_speed:  # tiny speed budgets: drop the wobble
        wobble[0] = 0.0
        limit = max_rot_speed - np.radians(0.5)
    gain = 5.0  # 1/s: the gaze lags the target by about 0.2 s
    r = look_at(head[0], gaze[0]) @ rot_z(roll_t[0])
    rs = np.empty((len(t_fine), 3, 3))
    rs[0] = r
    for k in range(1, len(t_fine)):
        target = look_at(head[k], gaze[k]) @ rot_z(roll_t[k])
        w = gain * so3_log(r.T @ target)
        norm = float(np.linalg.norm(w))
        if norm > limit:
            w *= limit / norm
        r = r @ so3_exp(w * dt)
        rs[k] = r
    idx = np.arange(n) * sub
    r_cam = rs[idx] @ so3_exp(_eval_sines(wobble, t_frames))
    return make_pose(r_cam, head[idx])
