"""Procedural solid textures: albedo as a pure function of a point in the body's frame.

Because the colour depends only on the surface point in the body's own coordinates, the
texture moves exactly with the body (ground-truth flow and tracks hold for the image
content, and static surfaces keep their colour from every viewpoint). Every pattern is
modulated by two octaves of value noise so that no surface is textureless (optical flow
needs gradients everywhere), and everything is band-limited to the pixel footprint so
that the images do not alias (aliased texture breaks brightness constancy under motion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHECKER, STRIPES, MARBLE, WOOD, PLAIN = range(5)
PATTERN_NAMES = ("checker", "stripes", "marble", "wood", "plain")

#: Side of the periodic noise lattice (power of two, cells).
LATTICE = 32


@dataclass(frozen=True)
class Material:
    """A procedural texture.

    Attributes:
        color_a: ``(3,)`` float64 RGB in [0, 1], first base colour.
        color_b: ``(3,)`` float64 RGB in [0, 1], second base colour.
        pattern: one of ``CHECKER, STRIPES, MARBLE, WOOD, PLAIN``.
        period: pattern period in metres (checker cell, stripe or ring spacing).
        axis: ``(3,)`` unit vector, stripe direction / wood grain axis (body frame).
        noise_cell: fine-noise lattice spacing in metres (the coarse octave is 4.3x).
        noise_amp: relative brightness modulation of the fine noise, in [0, 1).
        lattice: ``((LATTICE + 1) ** 3,)`` float32 random values in [0, 1] (value noise,
            see :func:`make_lattice`).
    """

    color_a: np.ndarray
    color_b: np.ndarray
    pattern: int
    period: float
    axis: np.ndarray
    noise_cell: float
    noise_amp: float
    lattice: np.ndarray


def value_noise(lattice: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Smooth periodic value noise in [0, 1] at lattice coordinates ``q`` ``(M, 3)``.

    Trilinear interpolation with smoothstep weights between random lattice values
    (period ``LATTICE`` cells in each axis). ``lattice`` is the padded
    ``(LATTICE + 1) ** 3`` table of :func:`make_lattice`, so the 8 corners of a cell are
    the base index plus constant offsets (no wrap-around arithmetic per corner).
    """
    f = np.floor(q)
    w = q - f
    w = w * w * (3.0 - 2.0 * w)
    i = f.astype(np.int64) & (LATTICE - 1)
    s1, s2 = LATTICE + 1, (LATTICE + 1) ** 2
    base = i[:, 0] + s1 * i[:, 1] + s2 * i[:, 2]
    wx, wy, wz = w[:, 0], w[:, 1], w[:, 2]
    corner = [lattice[base + off] for off in (0, 1, s1, s1 + 1, s2, s2 + 1, s2 + s1, s2 + s1 + 1)]
    c00 = corner[0] + wx * (corner[1] - corner[0])
    c10 = corner[2] + wx * (corner[3] - corner[2])
    c01 = corner[4] + wx * (corner[5] - corner[4])
    c11 = corner[6] + wx * (corner[7] - corner[6])
    c0 = c00 + wy * (c10 - c00)
    c1 = c01 + wy * (c11 - c01)
    return c0 + wz * (c1 - c0)


def make_lattice(rng: np.random.Generator) -> np.ndarray:
    """Random periodic noise lattice, padded by one cell: ``((LATTICE + 1) ** 3,)`` float32."""
    cube = rng.random((LATTICE, LATTICE, LATTICE), dtype=np.float32)
    # Index order (z, y, x) so that the flat index is x + (L+1) y + (L+1)^2 z.
    return np.pad(cube, ((0, 1), (0, 1), (0, 1)), mode="wrap").ravel()


def _fade(ratio: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothstep from 0 (``ratio <= lo``) to 1 (``ratio >= hi``)."""
    x = np.clip((ratio - lo) / (hi - lo), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _box_square(x: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Mean of the square wave ``(-1) ** floor(y)`` over ``[x - width/2, x + width/2]``.

    Its integral is the triangle wave ``1 - |(y mod 2) - 1|``, so the box filter is exact.
    """
    width = np.maximum(width, 1e-3)

    def tri(y: np.ndarray) -> np.ndarray:
        return 1.0 - np.abs(np.mod(y, 2.0) - 1.0)

    return (tri(x + 0.5 * width) - tri(x - 0.5 * width)) / width


def albedo(
    material: Material, p: np.ndarray, normal: np.ndarray, footprint: np.ndarray
) -> np.ndarray:
    """RGB albedo ``(M, 3)`` float64 in [0, 1] of body-frame surface points ``p`` (M, 3) m.

    The texture is band-limited to the pixel ``footprint`` ``(M,)`` (m, the side of a pixel
    on the surface), like mip-mapping: noise octaves and stripes fade to their mean before
    they alias, and the checker is box-filtered exactly in the surface plane (``normal``
    ``(M, 3)``, unit, body frame). The caller makes the footprint a function of the point
    alone (see :func:`unihoi_ros.sim.render.shade`), so the albedo stays a fixed function
    of the body-frame point and static surfaces keep their colour from every viewpoint.
    """
    m = material
    a_fine = _fade(m.noise_cell / footprint, 1.0, 3.0)
    a_coarse = _fade(4.3 * m.noise_cell / footprint, 1.0, 3.0)
    fine = 0.5 + a_fine * (value_noise(m.lattice, p / m.noise_cell) - 0.5)
    # Offset the coarse octave so it does not correlate with the fine one.
    coarse = 0.5 + a_coarse * (value_noise(m.lattice, p / (4.3 * m.noise_cell) + 11.37) - 0.5)
    a_pat = _fade(m.period / footprint, 2.0, 5.0)
    if m.pattern == CHECKER:
        # Footprint along each body axis within the surface plane.
        w = (footprint / m.period)[:, None] * np.sqrt(np.clip(1.0 - normal * normal, 0.0, 1.0))
        x = p / m.period
        parity = _box_square(x[:, 0], w[:, 0]) * _box_square(x[:, 1], w[:, 1])
        parity *= _box_square(x[:, 2], w[:, 2])
        s = 0.5 - 0.35 * parity + 0.3 * (coarse - 0.5)
    elif m.pattern == STRIPES:
        phase = (p @ m.axis) / m.period + 0.6 * coarse
        s = 0.5 + 0.5 * a_pat * np.sin(2.0 * np.pi * phase)
    elif m.pattern == MARBLE:
        s = 0.5 + 0.5 * a_pat * np.sin(2.0 * np.pi * (p @ m.axis) / m.period + 6.0 * coarse)
    elif m.pattern == WOOD:
        radial = p - np.outer(p @ m.axis, m.axis)
        rings = np.sqrt(np.einsum("ij,ij->i", radial, radial)) / m.period + 1.5 * coarse
        s = 0.5 + 0.5 * a_pat * np.sin(2.0 * np.pi * rings) ** 3
    else:
        s = coarse
    col = m.color_a + np.clip(s, 0.0, 1.0)[:, None] * (m.color_b - m.color_a)
    # Brightness detail at two scales (coarse-to-fine flow methods need both).
    gain = 1.0 + m.noise_amp * 2.5 * ((fine - 0.5) + (coarse - 0.5))
    return np.clip(col * gain[:, None], 0.0, 1.0)


def random_material(
    rng: np.random.Generator,
    pattern: int | None = None,
    period: tuple[float, float] = (0.03, 0.12),
    noise_cell: tuple[float, float] = (0.006, 0.015),
    base: np.ndarray | None = None,
    contrast: float = 0.6,
    scale: float = 1.0,
) -> Material:
    """Draw a material: random colours (around ``base`` if given), pattern and scales.

    ``period`` and ``noise_cell`` are ranges in metres; ``scale`` > 1 makes every spatial
    frequency higher (finer texture), i.e. lengths are divided by it.
    """
    if pattern is None:
        pattern = int(rng.integers(0, 4))
    if base is None:
        base = rng.uniform(0.15, 0.85, size=3)
    color_a = np.clip(base + rng.normal(0.0, 0.08, size=3), 0.03, 0.97)
    direction = rng.normal(size=3)
    other = np.clip(base + contrast * direction / np.linalg.norm(direction), 0.03, 0.97)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return Material(
        color_a=color_a,
        color_b=other,
        pattern=pattern,
        period=float(rng.uniform(*period)) / scale,
        axis=axis,
        noise_cell=float(rng.uniform(*noise_cell)) / scale,
        noise_amp=float(rng.uniform(0.18, 0.35)),
        lattice=make_lattice(rng),
    )
