"""Typed records of an evaluation (:func:`unihoi_ros.evaluation.evaluate`) and their JSON.

One record per block of ``eval.json``; :meth:`EvaluationResult.to_dict` writes the layout
the files have always had (the same keys in the same order), :meth:`EvaluationResult.
from_dict` reads it back (an older or partial file: a number it lacks reads as NaN, a
block it lacks as None). Code that summarises results names a number by
:class:`MetricPath` (``"trajectory.ate"``, ``"pointcloud.fscore@0.05"``), checked against
these records when it is made, so a misspelt path fails at import instead of reading as
NaN; a block that was not evaluated (no ground truth of that kind) reads as NaN.

Units: metres, degrees, pixels of the ground truth's images, per cent where the name says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CloudScores",
    "DepthScores",
    "EvaluationResult",
    "IntrinsicsScores",
    "MetricPath",
    "PrincipalPointScores",
    "ScaledDepthScores",
    "TrajectoryScores",
]

_NAN = float("nan")


def _scalars(cls, d: dict) -> dict:
    """The scalar fields of record class ``cls`` from ``d``; missing ones NaN."""
    return {f.name: d.get(f.name, _NAN) for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


class _Record:
    """A block's record: its fields are its JSON keys (subclasses with nested or optional
    parts override the two methods)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**_scalars(cls, d))


@dataclass
class TrajectoryScores(_Record):
    """Trajectory errors after one alignment (:func:`unihoi_ros.geometry.metrics.
    trajectory_metrics`): ``ate``, ``rpe_trans`` (m), ``rpe_rot_deg``, the alignment's
    ``scale`` and ``align_ok``, ``num_poses``, and ``ate_pct_path`` (ATE in per cent of the
    true path length; NaN for a path of (nearly) zero length)."""

    ate: float
    rpe_trans: float
    rpe_rot_deg: float
    scale: float
    align_ok: bool
    num_poses: int
    ate_pct_path: float


@dataclass
class ScaledDepthScores(_Record):
    """Depth after per-frame median scaling: ``abs_rel``, ``rmse`` (m), ``delta1``."""

    abs_rel: float
    rmse: float
    delta1: float


@dataclass
class DepthScores(_Record):
    """Depth metrics (:func:`unihoi_ros.geometry.metrics.depth_metrics`): ``abs_rel``,
    ``rmse`` (m), ``delta1``, ``num_valid`` pixels, ``coverage``; for the model also the
    median-scaled ones and the per-frame abs_rel (None for a baseline)."""

    abs_rel: float
    rmse: float
    delta1: float
    num_valid: float
    coverage: float
    median_scaled: ScaledDepthScores | None = None
    per_frame_abs_rel: list[float] | None = None

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in ("abs_rel", "rmse", "delta1", "num_valid",
                                              "coverage")}
        if self.median_scaled is not None:
            out["median_scaled"] = self.median_scaled.to_dict()
        if self.per_frame_abs_rel is not None:
            out["per_frame_abs_rel"] = list(self.per_frame_abs_rel)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> DepthScores:
        ms = d.get("median_scaled")
        return cls(**_scalars(cls, d),
                   median_scaled=None if ms is None else ScaledDepthScores.from_dict(ms),
                   per_frame_abs_rel=d.get("per_frame_abs_rel"))


@dataclass
class IntrinsicsScores(_Record):
    """Intrinsics errors (:func:`unihoi_ros.geometry.metrics.intrinsics_errors`) and
    whether the ground truth's image size was assumed to be the prediction's."""

    fx_rel_err: float
    fy_rel_err: float
    fx_ratio: float
    fy_ratio: float
    cx_err_px: float
    cy_err_px: float
    pp_err_frac: float
    num_frames: int
    gt_size_assumed: bool | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.gt_size_assumed is None:
            del out["gt_size_assumed"]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> IntrinsicsScores:
        return cls(**_scalars(cls, d), gt_size_assumed=d.get("gt_size_assumed"))


@dataclass
class PrincipalPointScores(_Record):
    """Principal-point errors (pixels, and the larger as a fraction of the image)."""

    cx_err_px: float
    cy_err_px: float
    pp_err_frac: float


@dataclass
class CloudScores(_Record):
    """Point-cloud metrics after the Sim(3) alignment of the clouds: ``chamfer`` (m) and,
    per distance threshold (m), ``precision``, ``recall`` and ``fscore``; the alignment's
    ``alignment_scale`` and ``alignment_ok``. JSON: ``"fscore@0.05"`` and so on."""

    chamfer: float
    precision: dict[float, float] = field(default_factory=dict)
    recall: dict[float, float] = field(default_factory=dict)
    fscore: dict[float, float] = field(default_factory=dict)
    alignment_scale: float = _NAN
    alignment_ok: bool = False

    _PER_THRESHOLD = ("precision", "recall", "fscore")

    @classmethod
    def from_metrics(cls, flat: dict, scale: float, ok: bool) -> CloudScores:
        """From :func:`unihoi_ros.geometry.metrics.pointcloud_metrics`' flat dict."""
        return cls.from_dict({**flat, "alignment_scale": scale, "alignment_ok": ok})

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"chamfer": self.chamfer}
        for t in self.fscore:
            for name in self._PER_THRESHOLD:
                out[f"{name}@{t:g}"] = getattr(self, name)[t]
        out["alignment_scale"] = self.alignment_scale
        out["alignment_ok"] = self.alignment_ok
        return out

    @classmethod
    def from_dict(cls, d: dict) -> CloudScores:
        tables: dict[str, dict[float, float]] = {n: {} for n in cls._PER_THRESHOLD}
        for key, value in d.items():
            name, _, t = key.partition("@")
            if t and name in tables:
                tables[name][float(t)] = value
        return cls(d.get("chamfer", _NAN), **tables,
                   alignment_scale=d.get("alignment_scale", _NAN),
                   alignment_ok=bool(d.get("alignment_ok", False)))


#: The blocks of :class:`EvaluationResult` that hold records, and their record types.
_BLOCKS = {
    "trajectory": TrajectoryScores,
    "baseline_identity_pose": TrajectoryScores,
    "baseline_constant_velocity": TrajectoryScores,
    "baseline_straight_line": TrajectoryScores,
    "intrinsics": IntrinsicsScores,
    "baseline_centred_principal_point": PrincipalPointScores,
    "depth": DepthScores,
    "baseline_constant_depth": DepthScores,
    "pointcloud": CloudScores,
    "baseline_pointcloud": CloudScores,
}


@dataclass
class EvaluationResult:
    """Everything :func:`unihoi_ros.evaluation.evaluate` measured (see its module doc).

    Attributes:
        frames_evaluated: frames present in both the prediction and the ground truth.
        frames_predicted: frames of the prediction.
        trajectory: the estimate's trajectory errors (Sim(3)); None without true poses or
            with fewer than 3 shared frames, as are ``gt_path_length_m`` (m),
            ``per_frame_translation_error_m`` and the three pose baselines.
        intrinsics, baseline_centred_principal_point: None without a true K.
        depth, baseline_constant_depth: None without true depth.
        pointcloud, baseline_pointcloud: None without true depth, poses and K, or when
            the cloud metrics were not asked for.
        tracks: long-term tracking scores (:func:`unihoi_ros.tracks.evaluate_tracks`:
            ``{"tracker": ..., "hold": ...}``) where the benchmark added them, else None.
    """

    frames_evaluated: int
    frames_predicted: int
    trajectory: TrajectoryScores | None = None
    gt_path_length_m: float | None = None
    per_frame_translation_error_m: list[float] | None = None
    baseline_identity_pose: TrajectoryScores | None = None
    baseline_constant_velocity: TrajectoryScores | None = None
    baseline_straight_line: TrajectoryScores | None = None
    intrinsics: IntrinsicsScores | None = None
    baseline_centred_principal_point: PrincipalPointScores | None = None
    depth: DepthScores | None = None
    baseline_constant_depth: DepthScores | None = None
    pointcloud: CloudScores | None = None
    baseline_pointcloud: CloudScores | None = None
    tracks: dict | None = None

    def to_dict(self) -> dict:
        """The ``eval.json`` layout: the blocks that were evaluated, in this order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = value.to_dict() if f.name in _BLOCKS else value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> EvaluationResult:
        """Read an ``eval.json`` (or a part of one: what it lacks is NaN or None)."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            kwargs[f.name] = _BLOCKS[f.name].from_dict(value) if f.name in _BLOCKS else value
        kwargs.setdefault("frames_evaluated", 0)
        kwargs.setdefault("frames_predicted", 0)
        return cls(**kwargs)

    @classmethod
    def coerce(cls, result: EvaluationResult | dict | None) -> EvaluationResult:
        """``result`` as a record (a dict is read with :meth:`from_dict`; None: empty)."""
        if isinstance(result, EvaluationResult):
            return result
        return cls.from_dict(result or {})


@dataclass(frozen=True)
class MetricPath:
    """One number of an :class:`EvaluationResult`: a block, a field of the block's record
    and, for a table (a cloud's per-threshold scores, the tracking scores), the keys into
    it. Checked against the records when made (:class:`ValueError` on a misspelt path).

    Attributes:
        block: a field of :class:`EvaluationResult` (``"depth"``, ``"tracks"``, ...).
        name: a field of that block's record (``"abs_rel"``), or for ``tracks`` the first
            key (``"tracker"`` or ``"hold"``).
        keys: further keys into the value (a threshold in metres; tracking kind and
            distance).
    """

    block: str
    name: str
    keys: tuple = ()

    def __post_init__(self) -> None:
        if self.block == "tracks":
            if self.name not in ("tracker", "hold"):
                raise ValueError(f"tracks.{self.name}: tracks has 'tracker' and 'hold'")
            return
        record = _BLOCKS.get(self.block)
        if record is None:
            raise ValueError(f"no result block {self.block!r} (blocks: {sorted(_BLOCKS)})")
        names = {f.name for f in dataclasses.fields(record)}
        if self.name not in names:
            raise ValueError(f"{self.block}.{self.name}: {record.__name__} has "
                             f"{sorted(names)}")

    @classmethod
    def parse(cls, text: str) -> MetricPath:
        """``"trajectory.ate"``, ``"depth.median_scaled.abs_rel"``, ``"pointcloud.fscore@0.05"``
        (the index's column names, the JSON paths)."""
        block, _, rest = text.partition(".")
        rest, _, threshold = rest.partition("@")
        name, *keys = rest.split(".")
        return cls(block, name, tuple(keys) + ((float(threshold),) if threshold else ()))

    def read(self, result: EvaluationResult) -> float:
        """The number, as a float; NaN where its block was not evaluated (or a table lacks
        the key)."""
        value: Any = getattr(result, self.block)
        if value is None:
            return _NAN
        value = value[self.name] if self.block == "tracks" else getattr(value, self.name)
        for key in self.keys:
            if value is None:
                return _NAN
            value = (value.get(key) if isinstance(value, dict)
                     else getattr(value, key))
        return _NAN if value is None else float(value)

    def __str__(self) -> str:
        """The path as :meth:`parse` reads it (a threshold as ``@<metres>``)."""
        text = ".".join([self.block, self.name, *(k for k in self.keys if isinstance(k, str))])
        return text + "".join(f"@{k:g}" for k in self.keys if not isinstance(k, str))
