"""Depth of a recording from its own multi-view geometry: triangulated per frame, one
scale along the recording, fused over time.

The pure maths shared by ``unihoi adapt``'s depth teacher (:mod:`unihoi_ros.train.adapt`),
the offline depth refinement (:mod:`unihoi_ros.multiview_depth`) and the live one from
past frames (:mod:`unihoi_ros.pipeline.past_refinement`):

- :func:`geometric_depths` (:class:`GeometricDepthStream` for frames that arrive one at a
  time): each frame's depth triangulated from its flow to the frames ``offset`` before and
  after (:mod:`unihoi_ros.geometry.two_view`), each frame at its own (unit-baseline) scale.
- :func:`scaled_geometry`: those depths at one metric scale along a run of consecutive
  frames — tied frame to frame (:func:`step_log_ratios`, :func:`consistent_log_scales`)
  and anchored weakly to a network's depth (:func:`base_log_scale`) — then fused over
  neighbouring frames (:func:`fuse_over_time`; one frame: :func:`fuse_views`).
- :class:`LogScaleFilter`: the same scale chain as frames arrive (each frame's scale from
  the frames so far), for a live stream.
- :class:`PairFlows`: the DIS flows those steps read, consecutive ones computed once.

Shapes: depth maps ``(H, W)`` / ``(N, H, W)`` metres (NaN: none), flows ``(H, W, 2)``
pixels ``(du, dv)`` from one frame into another (:meth:`unihoi_ros.flow.DISFlow.backward`
order); conventions of :mod:`unihoi_ros.geometry.camera`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from unihoi_ros.flow.consistency import consistency_mask
from unihoi_ros.geometry.reductions import nanmedian_first_axis
from unihoi_ros.geometry.two_view import TwoViewSettings, fuse_depths, two_view_depth


def block_median(depth: np.ndarray, size: tuple[int, int], min_valid: float = 0.5
                 ) -> np.ndarray:
    """``(H, W)`` depth (NaN invalid) reduced to ``size = (h, w)`` by the median of each
    block's valid pixels; NaN where fewer than ``min_valid`` of a block is valid. ``H, W``
    must be integer multiples of ``h, w``; otherwise nearest-neighbour resizing."""
    H, W = depth.shape
    h, w = size
    if (H, W) == (h, w):
        return depth.astype(np.float32)
    if H % h or W % w:
        return cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
    blocks = depth.reshape(h, H // h, w, W // w).transpose(1, 3, 0, 2).reshape(-1, h, w)
    valid = np.isfinite(blocks).mean(0)
    med = nanmedian_first_axis(blocks)
    return np.where(valid >= min_valid, med, np.nan).astype(np.float32)


def usable_pixels(geometric: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Pixels where both depths are finite and positive."""
    return np.isfinite(geometric) & (geometric > 0) & np.isfinite(base) & (base > 0)


def base_log_scale(geometric: np.ndarray, base: np.ndarray, min_pixels: int = 50) -> float:
    """``log median(base / geometric)`` over the pixels both have; NaN under
    ``min_pixels``. ``geometric``/``base`` ``(H, W)`` depth (any scale / metres)."""
    ok = usable_pixels(geometric, base)
    if ok.sum() < min_pixels:
        return float("nan")
    return float(np.log(np.median(base[ok] / geometric[ok])))


def sample_along_flow(depth: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``depth (H, W)`` read at ``pixel + flow`` (``flow (H, W, 2)`` pixels into it),
    nearest neighbour (no blending across depth edges); NaN outside."""
    h, w = depth.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(depth.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1],
                     cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=float("nan"))


def fuse_over_time(depths: np.ndarray, flow, radius: int, min_views: int = 2) -> np.ndarray:
    """Each frame's depth as the median of its own and its neighbours' depths warped into it.

    Every frame's triangulation is made from its own pairs, so its errors differ from the
    next frame's; the median over ``2 * radius + 1`` frames removes much of them and fills
    pixels a frame's own pairs left empty. On the shared 7-Scenes frames (radius 2, 120x160)
    against the registered truth: frame-to-frame scale steps 2.7 -> 1.3 %, median-scaled
    abs_rel 0.094 -> 0.087, pixels with a depth 62 -> 77 %.

    Args:
        depths: ``(N, H, W)`` metric depth, one consistent scale over the frames
            (:func:`consistent_log_scales`), NaN where none.
        flow: ``flow(i, j) -> (H, W, 2)`` pixels from frame ``i`` into frame ``j``.
        radius: neighbours on each side (0: the depths unchanged).
        min_views: fewer frames seeing a pixel than this: NaN there.

    Returns:
        ``(N, H, W)`` float32. The motion along the optical axis between neighbours (~1 %
        of the depth per frame here) is taken as none.
    """
    n = len(depths)
    if radius <= 0:
        return depths.astype(np.float32)
    out = np.full(depths.shape, np.nan, np.float32)
    for i in range(n):
        out[i] = fuse_views(depths[i], [
            sample_along_flow(depths[j], flow(i, j))
            for j in range(max(0, i - radius), min(n, i + radius + 1)) if j != i], min_views)
    return out


def fuse_views(own: np.ndarray, warped: list[np.ndarray], min_views: int = 2) -> np.ndarray:
    """``(H, W)`` float32: the median of a frame's depth ``own (H, W)`` and its neighbours'
    depths already warped into it (``warped``, each ``(H, W)``, NaN where none); NaN where
    fewer than ``min_views`` of them have a depth (:func:`fuse_over_time`'s rule)."""
    stack = np.stack([own.astype(np.float32), *warped])
    enough = np.isfinite(stack).sum(axis=0) >= min_views
    return np.where(enough, nanmedian_first_axis(stack), np.nan).astype(np.float32)


def step_log_ratios(depths: np.ndarray, flows: np.ndarray, min_pixels: int = 30
                    ) -> np.ndarray:
    """How each frame's depth scale relates to the previous frame's.

    Args:
        depths: ``(N, H, W)`` per-frame depth, each at its own scale, NaN where none.
        flows: ``(N - 1, H, W, 2)`` pixels; ``flows[i]`` maps frame ``i + 1``'s pixels
            into frame ``i`` (:meth:`~unihoi_ros.flow.DISFlow.backward` order).
        min_pixels: fewer corresponding pixels with depth in both: NaN (no tie).

    Returns:
        ``(N - 1,)`` median of ``log d[i + 1](p) - log d[i](p + flow)``: the log scale of
        frame ``i + 1`` relative to frame ``i`` (the motion along the optical axis between
        consecutive frames, ~1 % of the depth here, is taken as none).
    """
    n = len(depths)
    out = np.full(max(n - 1, 0), np.nan)
    for i in range(n - 1):
        prev = sample_along_flow(depths[i], flows[i])
        ok = usable_pixels(depths[i + 1], prev)
        if ok.sum() >= min_pixels:
            out[i] = float(np.median(np.log(depths[i + 1][ok]) - np.log(prev[ok])))
    return out


def consistent_log_scales(steps: np.ndarray, anchors: np.ndarray, anchor_weight: float
                          ) -> np.ndarray:
    """Per-frame log scales tied to each other by ``steps`` and weakly to ``anchors``.

    Least squares over ``x (N,)``: ``sum_i (x[i + 1] + steps[i] - x[i])^2 +
    anchor_weight * sum_i (x[i] - anchors[i])^2``, so that ``x[i] + log d[i]`` is one
    consistent scale along the chain (``steps`` from :func:`step_log_ratios`) while the
    anchors (the base model's ``log`` scale per frame, :func:`base_log_scale`) set it
    on average over about ``1 / sqrt(anchor_weight)`` frames. NaN steps tie nothing, NaN
    anchors anchor nothing; a frame with neither takes the mean anchor (a 1e-6 pull).

    Args:
        steps: ``(N - 1,)`` log ratios (NaN: none).
        anchors: ``(N,)`` log scales (NaN: none).
        anchor_weight: ``> 0``.

    Returns:
        ``(N,)`` log scales; NaN everywhere when no anchor is finite.
    """
    n = len(anchors)
    if not np.isfinite(anchors).any():
        return np.full(n, np.nan)
    A = np.zeros((n, n))
    b = np.zeros(n)
    for i, c in enumerate(steps):
        if np.isfinite(c):  # residual x[i+1] - x[i] + c
            A[i + 1, i + 1] += 1.0
            A[i, i] += 1.0
            A[i, i + 1] -= 1.0
            A[i + 1, i] -= 1.0
            b[i + 1] -= c
            b[i] += c
    ok = np.isfinite(anchors)
    A[ok, ok] += anchor_weight
    b[ok] += anchor_weight * anchors[ok]
    mean = float(np.mean(anchors[ok]))
    A[np.diag_indices(n)] += 1e-6
    b += 1e-6 * mean
    return np.linalg.solve(A, b)


class LogScaleFilter:
    """:func:`consistent_log_scales` as a recording arrives: frame ``i``'s log scale from
    frames ``0..i`` only, in O(1) per frame (a Kalman filter: a random walk of unit
    variance per step, anchors of variance ``1 / anchor_weight``). Its value at ``i`` is
    the last value of :func:`consistent_log_scales` on the frames so far (within its
    1e-6 regularisation; after a break, see below): what a live stream can know without
    waiting for later frames.

    A NaN step (no tie) breaks the chain: from the next anchor on it starts again, and
    until that anchor the frames take the mean of the anchors seen (NaN before any; the
    dense solve would also keep such frames' ties to each other around that mean).

    Args:
        anchor_weight: ``> 0``, as :func:`consistent_log_scales`'.
    """

    def __init__(self, anchor_weight: float) -> None:
        if not anchor_weight > 0:
            raise ValueError(f"anchor_weight {anchor_weight}: must be > 0")
        self.anchor_var = 1.0 / float(anchor_weight)
        self._x = float("nan")
        self._var = float("inf")  # inf: the chain holds no estimate
        self._anchor_sum, self._anchors = 0.0, 0
        self._frames = 0

    def update(self, step: float, anchor: float) -> float:
        """Add the next frame: ``step`` its log ratio to the previous frame
        (:func:`step_log_ratios`; ignored for the first frame), ``anchor`` its own log
        scale (:func:`base_log_scale`); NaN: none. Returns its log scale."""
        if self._frames and np.isfinite(step) and np.isfinite(self._var):
            x, var = self._x - float(step), self._var + 1.0  # predicted through the tie
        else:
            x, var = float("nan"), float("inf")
        self._frames += 1
        if np.isfinite(anchor):
            self._anchor_sum += float(anchor)
            self._anchors += 1
            if np.isfinite(var):
                gain = var / (var + self.anchor_var)
                x, var = x + gain * (float(anchor) - x), (1.0 - gain) * var
            else:
                x, var = float(anchor), self.anchor_var
        self._x, self._var = x, var
        if np.isfinite(var):
            return x
        return self._anchor_sum / self._anchors if self._anchors else float("nan")


def pair_offset(n: int, offset: int) -> int:
    """The frame distance of the triangulation pairs in a recording of ``n`` frames:
    ``offset``, shortened to ``(n - 1) // 2`` (at least 1) when ``n < 2 * offset + 1``, so
    every frame has at least one pair while ``n > 1``."""
    offset = max(1, int(offset))
    return offset if n >= 2 * offset + 1 else max(1, (n - 1) // 2)


def pair_distances(offset: int) -> tuple[int, ...]:
    """The frame distances a frame's pair on one side is tried at, longest first:
    ``offset, offset // 2, offset // 4, ..., 1`` (the longest that gives a depth is used:
    parallax is finer with a longer baseline, the flow holds better with a shorter one)."""
    out = [max(1, int(offset))]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return tuple(out)


def first_pair_depth(pairs, K: np.ndarray, settings: TwoViewSettings
                     ) -> tuple[np.ndarray | None, list[dict]]:
    """A frame's triangulated depth from the first of its ``pairs`` that gives one (the
    pairs come longest first, :func:`pair_distances`: parallax is finer with a longer
    baseline, the flow holds better with a shorter one).

    Args:
        pairs: iterable of ``(j, flow (H, W, 2) pixels into frame j, valid (H, W) bool)``,
            made lazily (a generator): the pairs after the first that gives a depth are
            never computed.
        K: ``(3, 3)`` intrinsics at ``(H, W)``, pixels.
        settings: the triangulation's thresholds.

    Returns:
        ``(depth (H, W) float32 at unit baseline or None, tried)``: ``tried`` one info
        per pair tried (:func:`~unihoi_ros.geometry.two_view.two_view_depth`'s, without
        ``R``, ``t``; with ``frame`` = ``j``).
    """
    tried = []
    for j, flow, valid in pairs:
        depth, info = two_view_depth(flow, valid, K, settings)
        tried.append({"frame": j, **{k: v for k, v in info.items() if k not in ("R", "t")}})
        if info["ok"]:
            return depth, tried
    return None, tried


class GeometricDepthStream:
    """:func:`geometric_depths` over frames pushed one at a time, in recording order.

    Frame ``i``'s depth is given once frame ``i + offset`` has arrived (the last frames'
    at :meth:`flush`), so only ``2 * offset + 1`` frames and the flows of ``offset``
    pairs are held, however long the recording. The offset rule for short recordings
    (:func:`pair_offset`) needs ``N``, so nothing is
    given before ``2 * offset + 1`` frames have arrived; a recording that ends sooner is
    done at :meth:`flush` with the shortened offset. The depths are those of
    :func:`geometric_depths` on the same frames, bit for bit.

    Args:
        K: ``(3, 3)`` intrinsics of the pushed frames, pixels.
        offset: frame distance of each frame's two pairs.
        settings: the triangulation's thresholds.
        flow: the pairs' flow provider (default OpenCV DIS ``medium``).
        reduce: applied to each ``(H, W)`` depth before it is given (e.g. a
            :func:`block_median` to a smaller size: the full size is never kept).
        shorter_pairs: on each side where the recording has a frame ``offset`` away but
            that pair gives no depth (the flow fails on a fast head turn), the next of
            ``offset // 2, offset // 4, ..., 1`` that does (:func:`pair_distances`); False:
            the pairs ``offset`` away only. Near the ends, where one side has no frame
            ``offset`` away, that side stays empty: shorter pairs there gave more pixels
            and worse poses on the 7-Scenes frames (bench/RESULTS.md).
    """

    def __init__(self, K: np.ndarray, offset: int, settings: TwoViewSettings | None = None,
                 flow=None, reduce=None, shorter_pairs: bool = True) -> None:
        from unihoi_ros.flow import DISFlow

        self.K = np.asarray(K, np.float64)
        self.offset = max(1, int(offset))
        self.settings = settings or TwoViewSettings()
        self._flow = DISFlow("medium") if flow is None else flow
        self._reduce = reduce
        self._shorter = shorter_pairs
        self._frames: dict[int, np.ndarray] = {}
        self._flows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._pushed = 0
        self._next = 0  # the next frame to give

    def push(self, frame: np.ndarray) -> list[tuple[int, np.ndarray, dict]]:
        """Add the next ``(H, W, 3)`` uint8 frame; returns the frames now complete as
        ``(index, depth (H, W) float32 at its own scale or reduced, info)``."""
        self._frames[self._pushed] = frame
        self._pushed += 1
        if self._pushed < 2 * self.offset + 1:
            return []
        return self._give(self._pushed - self.offset, self.offset, None)

    def flush(self) -> list[tuple[int, np.ndarray, dict]]:
        """The frames not given yet (the recording has ended)."""
        n = self._pushed
        return self._give(n, pair_offset(n, self.offset), n)

    def _pair(self, a: int, b: int, keep: bool) -> tuple[np.ndarray, np.ndarray]:
        """Flow a -> b and its validity, both directions computed together; ``keep``: kept
        for frame ``b``, which will ask for the same pair (the pairs ``offset`` apart; a
        shorter pair is asked again only if the longer ones fail there too, and keeping
        every one would hold 5x the flows)."""
        if (a, b) in self._flows:
            return self._flows[(a, b)]
        fa, fb = self._frames[a], self._frames[b]
        fab, fba = self._flow.backward(fa, fb), self._flow.backward(fb, fa)
        if keep:
            self._flows[(b, a)] = (fba, consistency_mask(fba, fab))
        return fab, consistency_mask(fab, fba)

    def _give(self, until: int, k: int, n: int | None) -> list[tuple[int, np.ndarray, dict]]:
        out = []
        while self._next < until:
            i = self._next
            maps, pinfo = [], []
            for side in (-1, 1):
                far = i + side * k
                if far < 0 or (n is not None and far >= n):
                    continue  # near the ends one side (shorter pairs there: worse poses)
                pairs = ((i + side * dist,
                          *self._pair(i, i + side * dist, keep=side > 0 and dist == k))
                         for dist in (pair_distances(k) if self._shorter else (k,)))
                d, tried = first_pair_depth(pairs, self.K, self.settings)
                pinfo += tried
                if d is not None:
                    maps.append(d)
            # A pair's flows are needed by both its frames; once the later one is done, drop.
            for key in [key for key in self._flows if max(key) <= i]:
                del self._flows[key]
            for old in [a for a in self._frames if a <= i - k]:  # no later frame pairs it
                del self._frames[old]
            depth = fuse_depths(maps)[0] if maps else np.full(self._frames[i].shape[:2],
                                                               np.nan, np.float32)
            info = {"pairs": pinfo, "kept": float(np.isfinite(depth).mean())}
            out.append((i, depth if self._reduce is None else self._reduce(depth), info))
            self._next += 1
        return out


def geometric_depths(frames, K: np.ndarray, offset: int,
                     settings: TwoViewSettings | None = None, progress: bool = False,
                     flow=None, reduce=None, total: int | None = None,
                     shorter_pairs: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Triangulated depth of every frame from its pairs with ``i - offset`` and
    ``i + offset`` (module docstring; :class:`GeometricDepthStream` over ``frames``).

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB of one recording, or an iterable of its
            ``(H, W, 3)`` frames in order (read once; e.g. decoded again from the file).
        K: ``(3, 3)`` intrinsics at ``(H, W)``, pixels.
        offset: frame distance of the pairs, shortened for recordings under ``2 * offset +
            1`` frames (:func:`pair_offset`; with ``offset`` itself the middle frames of a
            short clip had none).
        flow: the pairs' flow provider (:class:`~unihoi_ros.flow.FlowProvider`; default
            OpenCV DIS ``medium``).
        reduce: applied to each frame's ``(H, W)`` depth as it is made (e.g. a
            :func:`block_median`; None: kept at ``(H, W)``).
        total: frame count for the progress bar when ``frames`` is an iterable.
        shorter_pairs: see :class:`GeometricDepthStream`.

    Returns:
        ``(depth (N, H, W) float32 (or reduced), info)``: each frame's fused depth at its
        own scale (NaN where none), and per frame ``{"pairs": [...two_view_depth info of
        each pair tried, with its "frame"...], "kept": fraction}`` (before ``reduce``).
    """
    from tqdm import tqdm

    stream = GeometricDepthStream(K, offset, settings, flow, reduce, shorter_pairs)
    given = []
    total = len(frames) if hasattr(frames, "__len__") else total
    for frame in tqdm(frames, total=total, desc="triangulation", unit="frame",
                      disable=not progress):
        given += stream.push(frame)
    given += stream.flush()
    if not given:
        raise ValueError("no frames to triangulate")
    return np.stack([d for _, d, _ in given]), [info for _, _, info in given]


class PairFlows:
    """DIS flow (``medium``) between frames of one run of consecutive frames: the base
    model's windows, the teacher's scale chain and its fusion over time all read the flow
    of each frame into the one before, so those are computed once and kept (153 kB a
    frame at 120x160); other pairs are computed when asked.

    ``flows(i, j)`` is ``(H, W, 2)`` float32 pixels from frame ``i`` into frame ``j``
    (:meth:`unihoi_ros.flow.DISFlow.backward` ``(frames[i], frames[j])``).
    """

    def __init__(self, frames: np.ndarray) -> None:
        from unihoi_ros.flow import DISFlow

        self.frames = frames
        self._dis = DISFlow("medium")
        self._cache: dict[int, np.ndarray] = {}  # frame i -> its flow into frame i - 1

    def __call__(self, i: int, j: int) -> np.ndarray:
        if j != i - 1:
            return self._dis.backward(self.frames[i], self.frames[j])
        if i not in self._cache:
            self._cache[i] = self._dis.backward(self.frames[i], self.frames[j])
        return self._cache[i]

    def consecutive(self) -> np.ndarray:
        """``(N - 1, H, W, 2)``: ``[i]`` maps frame ``i + 1``'s pixels into frame ``i``."""
        n, h, w = self.frames.shape[:3]
        if n < 2:
            return np.zeros((0, h, w, 2), np.float32)
        return np.stack([self(i + 1, i) for i in range(n - 1)])


def chained_log_scales(flows: PairFlows, geometric: np.ndarray, base: np.ndarray,
                       anchor_weight: float) -> np.ndarray:
    """``(N,)`` log scales of one run of consecutive frames' geometric depth
    (:func:`consistent_log_scales`): ``flows`` of the run's frames, ``geometric`` and
    ``base`` ``(N, h, w)`` at the training size (the latter metres)."""
    anchors = np.array([base_log_scale(g, b) for g, b in zip(geometric, base)])
    return consistent_log_scales(step_log_ratios(geometric, flows.consecutive()), anchors,
                                 anchor_weight)


def scaled_geometry(geometric: np.ndarray, base: np.ndarray, flows: PairFlows,
                    scale_anchor: float | None, fuse_radius: int) -> np.ndarray:
    """One run of consecutive frames' triangulated depth at the base's metric scale: one
    scale along the run (:func:`chained_log_scales`; ``scale_anchor`` None: each frame's
    from the base alone, :func:`base_log_scale`), then fused over ``fuse_radius`` frames
    each side (:func:`fuse_over_time`; 0: not fused).

    Args:
        geometric: ``(N, h, w)`` triangulated depth, each frame at its own scale, NaN where
            none.
        base: ``(N, h, w)`` the base (network) depth, metres.
        flows: the run's :class:`PairFlows` at ``(h, w)``.

    Returns:
        ``(N, h, w)`` metres, NaN where the geometry has no depth.
    """
    if scale_anchor is not None:
        log_scales = chained_log_scales(flows, geometric, base, scale_anchor)
    else:
        log_scales = np.array([base_log_scale(g, b) for g, b in zip(geometric, base)])
    metric = geometric * np.exp(log_scales)[:, None, None]
    return fuse_over_time(metric, flows, fuse_radius) if fuse_radius else metric


def geometry_size(processed_hw: tuple[int, int], input_hw: tuple[int, int]
                  ) -> tuple[int, int]:
    """The triangulation's frame size: twice the processing size where the input has it
    (finer angles, as ``unihoi adapt``'s teacher at 640 px), else the processing size."""
    h, w = processed_hw
    return (2 * h, 2 * w) if input_hw[0] >= 2 * h and input_hw[1] >= 2 * w else (h, w)


def refined_confidence(network_confidence: np.ndarray, geometric: np.ndarray) -> np.ndarray:
    """``(..., h, w)`` confidence of refined depth: 1 where the geometry measured the depth,
    the network's own confidence elsewhere (measured the better pose weight on the 7-Scenes
    frames than 1 everywhere; bench/RESULTS.md)."""
    return np.where(geometric, 1.0, network_confidence).astype(np.float32)


@dataclass
class RefineSettings:
    """How a recording's own geometry refines its depth: ``unihoi process --refine-depth``
    (:func:`unihoi_ros.multiview_depth.refine_depths`; ``unihoi adapt``'s teacher's
    defaults) and the past-only refinement of a live stream
    (:class:`unihoi_ros.pipeline.past_refinement.PastRefinement`: the frames before).

    Attributes:
        offset: frame distance of each frame's triangulation pairs.
        scale_anchor: weight of the network's per-frame scale against the frame-to-frame
            ties (:func:`consistent_log_scales`).
        fuse_radius: neighbours on each side (past-only: before) fused into each frame
            (median).
        two_view: the triangulation's thresholds.
        shorter_pairs: try shorter pairs where the pair ``offset`` away gives no depth
            (:class:`GeometricDepthStream`).
    """

    offset: int = 16
    scale_anchor: float = 0.01
    fuse_radius: int = 2
    two_view: TwoViewSettings = field(default_factory=TwoViewSettings)
    shorter_pairs: bool = True
