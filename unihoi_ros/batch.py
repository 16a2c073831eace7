"""Planning and bookkeeping of a batch of offline runs (``unihoi process A B C -o OUT``).

Pure functions, no torch and no process group: the runner
(:mod:`unihoi_ros.offline_batch`) calls them on one rank or on every ``torchrun`` rank.

- :func:`expand_inputs`: command-line items (paths, glob patterns, manifest files) to an
  ordered, de-duplicated list of :class:`BatchItem`.
- :func:`output_names`: one output folder name per input (its stem; equal stems are
  disambiguated by a hash of the path, so the name never depends on the input order).
- :func:`shard_lpt`: the deterministic share of each rank, balanced by input length
  (greedy longest-processing-time).
- completion markers: ``unihoi_done.json`` is written last (atomically) into an input's
  output folder and records the model hash and the settings; :func:`check_output` tells a
  complete output from a half-written, stale or foreign one.
- the index: :func:`index_rows`, :func:`write_index` (``index.csv`` and ``index.json``).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unihoi_ros.errors import UnihoiError
from unihoi_ros.evaluation_result import EvaluationResult, MetricPath

#: Marker written last into a finished input's output folder.
DONE_MARKER = "unihoi_done.json"
#: Marker written first when an input starts (an output folder of ours, maybe unfinished).
STARTED_MARKER = "unihoi_started.json"
#: Marker of an input that failed (its error); the input is retried on the next run.
FAILED_MARKER = "unihoi_failed.json"
MARKERS = (DONE_MARKER, STARTED_MARKER, FAILED_MARKER)
#: Version of the marker layout; markers of another version are not trusted.
MARKER_FORMAT = 1
#: File suffixes that make a command-line item a manifest (one input per line).
MANIFEST_SUFFIXES = (".txt", ".lst", ".list")
_GLOB_CHARS = "*?["


class BatchError(UnihoiError, ValueError):
    """The batch itself cannot be planned (e.g. a glob that matches nothing)."""


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch.

    Attributes:
        path: the input (absolute, normalised; symlinks are kept as given).
        ground_truth: ground truth for metrics (TUM/7-Scenes folder or ``.npz``), from the
            manifest's second column, else None (folders carrying their own are detected by
            the runner).
    """

    path: Path
    ground_truth: Path | None = None


# ---------------------------------------------------------------------------- inputs
def _absolute(path: str | Path, base: Path | None = None) -> Path:
    p = Path(path).expanduser()
    if base is not None and not p.is_absolute():
        p = base / p
    return Path(os.path.normpath(os.path.abspath(p)))


def is_manifest(item: str | Path) -> bool:
    """True for an existing regular file whose suffix is one of :data:`MANIFEST_SUFFIXES`."""
    p = Path(item)
    return p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file()


def is_glob(item: str | Path) -> bool:
    """True for a pattern with glob characters that does not name an existing path."""
    text = str(item)
    return any(c in text for c in _GLOB_CHARS) and not Path(text).exists()


def read_manifest(path: Path) -> list[BatchItem]:
    """Items of a manifest: one input per line, ``INPUT`` or ``INPUT<TAB>GROUND_TRUTH``.

    Blank lines and lines starting with ``#`` are skipped; relative paths are relative to
    the manifest's folder.
    """
    base = Path(path).parent
    items = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t") if f.strip()]
        if len(fields) > 2:
            raise BatchError(f"{path}: expected INPUT or INPUT<TAB>GROUND_TRUTH, got {line!r}")
        gt = _absolute(fields[1], base) if len(fields) == 2 else None
        items.append(BatchItem(_absolute(fields[0], base), gt))
    return items


def expand_inputs(items: Iterable[str | Path]) -> list[BatchItem]:
    """Command-line items to batch inputs, in order, each input once.

    Each item is a manifest file (:func:`read_manifest`), a glob pattern (sorted matches;
    ``**`` recurses) or a path. A path that does not exist is kept: it fails when processed
    and the index says why.

    Raises:
        BatchError: a glob that matches nothing, a malformed manifest, or no input at all.
    """
    out: list[BatchItem] = []
    seen: set[Path] = set()
    for item in items:
        if is_manifest(item):
            found = read_manifest(Path(item))
        elif is_glob(item):
            matches = sorted(glob.glob(os.path.expanduser(str(item)), recursive=True))
            if not matches:
                raise BatchError(f"{item}: the pattern matches nothing")
            found = [BatchItem(_absolute(m)) for m in matches]
        else:
            found = [BatchItem(_absolute(item))]
        for b in found:
            if b.path not in seen:
                seen.add(b.path)
                out.append(b)
    if not out:
        raise BatchError("no input to process")
    return out


def is_batch(items: Sequence[str | Path]) -> bool:
    """True when the command line asks for the batch layout (OUT/<name>/ + index): several
    items, or one manifest or glob. One plain input keeps the single-run layout."""
    return len(items) != 1 or is_manifest(items[0]) or is_glob(items[0])


def input_stem(path: Path) -> str:
    """Output folder name of one input: a file's name without its suffix, a folder's name."""
    name = path.name if path.is_dir() or not path.suffix else path.stem
    return name or "input"


def output_names(paths: Sequence[Path]) -> list[str]:
    """One output folder name per input: its :func:`input_stem`; stems that occur more than
    once (compared case-insensitively) become ``<stem>-<first 8 hex of sha1(path)>``, which
    depends only on the path, not on the order or on the other inputs' names."""
    stems = [input_stem(p) for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s.lower()] = counts.get(s.lower(), 0) + 1
    names = []
    for p, s in zip(paths, stems):
        if counts[s.lower()] > 1:
            s = f"{s}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"
        names.append(s)
    if len({n.lower() for n in names}) != len(names):  # the same path twice, or a hash clash
        raise BatchError(f"output names collide: {names}")
    return names


def input_signature(path: Path) -> dict:
    """What identifies an input's content cheaply: ``{"bytes", "files"}`` (total size and
    file count; a folder is walked). Modification times are left out, so copying a corpus
    to another machine does not invalidate finished outputs. ``{}`` when it is missing."""
    path = Path(path)
    if path.is_file():
        return {"bytes": path.stat().st_size, "files": 1}
    if not path.is_dir():
        return {}
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                total += os.stat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                continue
    return {"bytes": total, "files": files}


# ---------------------------------------------------------------------------- sharding
def shard_lpt(lengths: Sequence[int], names: Sequence[str], world_size: int) -> list[list[int]]:
    """Deterministic, length-balanced shares: greedy longest-processing-time.

    Inputs are taken by decreasing length (ties by name) and each goes to the rank with
    the least total so far (ties: the lowest rank). An input of unknown or zero length
    counts as 1.

    Args:
        lengths: ``(N,)`` frames per input.
        names: ``(N,)`` unique names (the tie-break).
        world_size: number of ranks.

    Returns:
        ``world_size`` lists of input indices, each longest first (its processing order).
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if len(lengths) != len(names):
        raise ValueError("lengths and names differ in length")
    order = sorted(range(len(lengths)), key=lambda i: (-max(int(lengths[i] or 0), 1), names[i]))
    loads = [0] * world_size
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for i in order:
        r = min(range(world_size), key=lambda k: (loads[k], k))
        shares[r].append(i)
        loads[r] += max(int(lengths[i] or 0), 1)
    return shares


# ---------------------------------------------------------------------------- markers
def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` so that a reader sees the old file or the whole new
    one, never a part: temporary file in the same folder, fsync, ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def list_files(out_dir: Path) -> dict[str, int]:
    """``{relative path: size in bytes}`` of the files under ``out_dir``, markers and
    temporary files excluded (what a done marker vouches for)."""
    out = {}
    for root, _dirs, names in os.walk(out_dir):
        for n in names:
            if n in MARKERS or n.endswith(".tmp"):
                continue
            full = Path(root) / n
            out[full.relative_to(out_dir).as_posix()] = full.stat().st_size
    return dict(sorted(out.items()))


def done_marker(*, input_path: Path, signature: dict, model_hash: str, settings: dict,
                files: dict[str, int], **extra) -> dict:
    """Content of a done marker (``extra``: frames, timings, metrics, rank, run id, ...)."""
    return {"format": MARKER_FORMAT, "status": "done", "input": str(input_path),
            "input_signature": signature, "model_hash": model_hash, "settings": settings,
            "files": files, **extra}


def settled(settings: dict, later_defaults: Mapping[str, Any]) -> dict:
    """``settings`` without the keys of ``later_defaults`` that are at their default there:
    what a marker written before those keys existed (necessarily at the default) holds."""
    return {k: v for k, v in settings.items()
            if not (k in later_defaults and v == later_defaults[k])}


def marker_problem(marker: dict | None, out_dir: Path, *, input_path: Path, signature: dict,
                   model_hash: str, settings: dict,
                   later_defaults: Mapping[str, Any] | None = None) -> str | None:
    """Why ``marker`` does not vouch for ``out_dir`` as the finished output of this input
    with this model and these settings; None when it does. ``later_defaults``: settings
    added after markers were first written, with their defaults (absent = default, so an
    upgrade does not redo a corpus)."""
    if marker is None:
        return "no completion marker"
    if marker.get("format") != MARKER_FORMAT or marker.get("status") != "done":
        return "marker of another format"
    if marker.get("input") != str(input_path):
        return f"marker is for another input ({marker.get('input')})"
    if marker.get("input_signature") != signature:
        return "the input changed since"
    if marker.get("model_hash") != model_hash:
        return "made with another model"
    later = later_defaults or {}
    if settled(marker.get("settings") or {}, later) != settled(settings, later):
        return "made with other settings"
    files = marker.get("files") or {}
    for rel, size in files.items():
        p = out_dir / rel
        if not p.is_file() or p.stat().st_size != size:
            return f"output file {rel} is missing or changed"
    return None


def check_output(out_dir: Path, *, input_path: Path, signature: dict, model_hash: str,
                 settings: dict, later_defaults: Mapping[str, Any] | None = None,
                 ) -> tuple[str, str]:
    """State of an input's output folder and why (``later_defaults``: as
    :func:`marker_problem`).

    Returns:
        ``(state, reason)``; state is ``"absent"`` (nothing there: process it),
        ``"complete"`` (valid done marker: skip it), ``"redo"`` (ours but unfinished,
        failed, stale or of another model/settings: delete and process again) or
        ``"foreign"`` (a non-empty folder without any marker of ours: not touched).
    """
    out_dir = Path(out_dir)
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return "absent", ""
    if not out_dir.is_dir():
        return "foreign", "exists and was not written by `unihoi process`; pass --force"
    if not any((out_dir / m).exists() for m in MARKERS):
        # Killed while its first marker was being written: only our temporary file is there.
        if all(_is_marker_tmp(p.name) for p in out_dir.iterdir()):
            return "redo", "started, no marker yet"
        return "foreign", "exists and was not written by `unihoi process`; pass --force"
    problem = marker_problem(read_json(out_dir / DONE_MARKER), out_dir, input_path=input_path,
                             signature=signature, model_hash=model_hash, settings=settings,
                             later_defaults=later_defaults)
    return ("complete", "") if problem is None else ("redo", problem)


def _is_marker_tmp(name: str) -> bool:
    """True for the temporary file of :func:`write_json_atomic` writing a marker."""
    return name.startswith(".") and name.endswith(".tmp") and any(
        name.startswith(f".{m}.") for m in MARKERS)


# ---------------------------------------------------------------------------- index
INDEX_COLUMNS = ("name", "input", "status", "this_run", "frames", "wall_time_s", "fps",
                 "rank", "host", "finished_utc", "error")


#: The metrics the index lists (``eval.json`` beside each output has all of them).
INDEX_METRICS = ("trajectory.ate", "trajectory.rpe_trans", "trajectory.rpe_rot_deg",
                 "depth.abs_rel", "depth.rmse", "depth.delta1", "pointcloud.chamfer",
                 "pointcloud.fscore@0.01", "pointcloud.fscore@0.025", "pointcloud.fscore@0.05",
                 "pointcloud.fscore@0.1")


#: Each index column's number (checked against the result records at import).
_INDEX_PATHS = {key: MetricPath.parse(key) for key in INDEX_METRICS}


def flat_metrics(result: EvaluationResult | dict | None) -> dict[str, float]:
    """The :data:`INDEX_METRICS` of an :func:`unihoi_ros.evaluation.evaluate` result (a
    record or its ``eval.json`` layout) that it has, as ``{"trajectory.ate": m,
    "depth.abs_rel": ..., "pointcloud.chamfer": m, ...}`` (a block that was not evaluated
    is left out)."""
    record = EvaluationResult.coerce(result)
    out = {}
    for key, path in _INDEX_PATHS.items():
        if getattr(record, path.block) is not None:
            out[key] = path.read(record)
    return out


def index_rows(names: Sequence[str], items: Sequence[BatchItem], records: Sequence[dict | None],
               run_id: str) -> list[dict]:
    """One index row per input, in input order.

    Args:
        records: per input, its done or failed marker (or a synthetic failure record with
            ``status`` and ``error``), None when nothing is known (a rank did not finish).
        run_id: this run's id; a done marker of another run is reported with
            ``this_run = False`` (skipped: finished earlier).
    """
    rows = []
    for name, item, rec in zip(names, items, records):
        rec = rec or {}
        status = rec.get("status", "missing")
        frames = rec.get("frames")
        wall = rec.get("wall_time_s")
        row = {"name": name, "input": str(item.path), "status": status,
               "this_run": rec.get("run_id") == run_id, "frames": frames,
               "wall_time_s": wall,
               "fps": frames / wall if frames and wall else None,
               "rank": rec.get("rank"), "host": rec.get("host"),
               "finished_utc": rec.get("finished_utc"), "error": rec.get("error"),
               "ground_truth": rec.get("ground_truth"), "metrics": rec.get("metrics") or {}}
        rows.append(row)
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """Counts and totals over index rows (``done``, ``failed``, ``skipped``, frames, ...)."""
    done = [r for r in rows if r["status"] == "done"]
    return {"inputs": len(rows), "done": len(done),
            "failed": sum(r["status"] == "failed" for r in rows),
            "missing": sum(r["status"] == "missing" for r in rows),
            "processed_this_run": sum(bool(r["this_run"]) for r in done),
            "skipped_complete": sum(not r["this_run"] for r in done),
            "frames": sum(int(r["frames"] or 0) for r in done)}


def index_csv_text(rows: Sequence[dict]) -> str:
    """The index as CSV: :data:`INDEX_COLUMNS`, ``ground_truth``, then one column per
    metric of :data:`INDEX_METRICS` that some input has (empty where an input has none)."""
    present = {k for r in rows for k in r["metrics"]}
    metric_keys = [k for k in INDEX_METRICS if k in present]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*INDEX_COLUMNS, "ground_truth", *metric_keys])
    for r in rows:
        cells = [r.get(c) for c in (*INDEX_COLUMNS, "ground_truth")]
        cells += [r["metrics"].get(k) for k in metric_keys]
        w.writerow(["" if c is None else _cell(c) for c in cells])
    return buf.getvalue()


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_index(out_dir: Path, rows: Sequence[dict], summary: dict) -> tuple[Path, Path]:
    """Write ``out_dir/index.csv`` and ``out_dir/index.json`` (``{"summary", "inputs"}``),
    each atomically. Returns both paths."""
    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / "index.csv", out_dir / "index.json"
    write_json_atomic(json_path, {"summary": summary, "inputs": list(rows)})
    tmp = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
    tmp.write_text(index_csv_text(rows))
    os.replace(tmp, csv_path)
    return csv_path, json_path
