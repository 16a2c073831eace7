"""Many inputs, one output folder each, sharded over ``torchrun`` ranks.

``unihoi process A B C -o OUT`` (or a glob, or a manifest) runs here; started with
``torchrun --nproc_per_node N --no-python unihoi process ...`` (any ``--nnodes`` /
rendezvous) every rank runs it too:

1. Rank 0 plans: expands the inputs, names their folders, checks which are already
   complete (done marker with the same model hash and settings), measures the length of
   the others and splits them into length-balanced shares (:func:`unihoi_ros.batch.
   shard_lpt`). The plan goes to the other ranks by a gloo broadcast.
2. Each rank processes its share, one input after another, with one backend loaded once
   (on GPU ``LOCAL_RANK`` when there are GPUs): ``OUT/<name>/`` gets the single-run layout
   (:func:`unihoi_ros.offline.process_source`; with ``--refine-depth`` after pass 1 and
   the refinement, :func:`unihoi_ros.offline_refine.prepare_refined_pass`, one input's
   frames held at a time, the ``--raft-weights`` flow loaded once per rank before
   planning),
   ``eval.json`` where ground truth exists, and ``unihoi_done.json`` last; a bad input
   gets ``unihoi_failed.json`` with its error, and the rank goes on.
3. After a barrier, rank 0 reads every input's marker and writes ``OUT/index.csv`` and
   ``OUT/index.json`` and prints the summary.

Nothing but the markers coordinates the ranks, so a run that is killed is resumed by
running the same command again: complete inputs are skipped, half-written ones redone.
Process-group traffic is gloo (control only: the plan and one barrier), also on GPUs.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from unihoi_ros.batch import (
    DONE_MARKER,
    FAILED_MARKER,
    STARTED_MARKER,
    BatchError,
    BatchItem,
    check_output,
    done_marker,
    expand_inputs,
    flat_metrics,
    index_rows,
    input_signature,
    list_files,
    output_names,
    read_json,
    settled,
    shard_lpt,
    summarize,
    write_index,
    write_json_atomic,
)
from unihoi_ros.evaluation_result import EvaluationResult
from unihoi_ros.offline_refine import uses_pose_graph
from unihoi_ros.pipeline.settings import StreamSettings

log = logging.getLogger("unihoi.process")

#: How long a rank waits for the others (plan broadcast, final barrier): a rank with a long
#: share may finish hours after the others.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(days=7)
#: Name prefix of output folders being deleted (see :func:`discard`).
TRASH_PREFIX = ".unihoi_trash_"
#: The flags besides the stream settings that change what is computed; a done marker must
#: match them and :meth:`StreamSettings.as_dict` (less :data:`PLACEMENT_KEYS`) to be reused.
#: ``refine_depth`` / ``raft_weights``: a refined output is not a plain one, nor the reverse
#: (``raft_weights`` compared by the file's content, :func:`weights_identity`).
INPUT_KEYS = ("topic", "fps", "max_frames", "K", "camera_info", "ignore_camera_info",
              "no_bag", "bag_max_side", "no_bag_image", "refine_depth", "raft_weights")
#: Marker keys (:data:`INPUT_KEYS` and stream settings) added after done markers were
#: first written, with their defaults: at the default they are left out of new markers and
#: of the comparison, so an output made before the key existed (necessarily at its default)
#: is still reused after an upgrade. A new setting that changes results goes here.
LATER_KEYS = {"refine_depth": False, "raft_weights": None, "past_refinement": False,
              "mirror_average": False, "pose_graph": False}
#: Stream settings that say where the work runs, not what it computes (not compared).
PLACEMENT_KEYS = ("backend", "device", "force_engine_update")


@dataclass(frozen=True)
class RankInfo:
    """This process's place in a ``torchrun`` job (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_env(cls) -> RankInfo:
        """From ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` (torchrun)."""
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        return cls(int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")),
                   int(env.get("LOCAL_WORLD_SIZE", str(world))))


@dataclass
class Plan:
    """What every rank does (built on rank 0, broadcast to the others).

    Attributes:
        items, names: the inputs and their output folder names, in input order.
        lengths: frames per input (0: unknown or unreadable), ``max_frames`` applied.
        model_hash, settings: what a done marker must match (:func:`batch_settings`).
        run_id: this run's id (markers written now carry it).
        complete: indices of inputs found complete (skipped).
        refused: ``{index: error}`` of inputs not processed (a foreign output folder).
        shares: per rank, the input indices it processes, in order.
    """

    out_dir: Path
    items: list[BatchItem]
    names: list[str]
    lengths: list[int]
    model_hash: str
    settings: dict
    run_id: str
    complete: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    shares: list[list[int]] = field(default_factory=list)


# ---------------------------------------------------------------------------- planning
def batch_settings(args, settings: StreamSettings) -> dict:
    """What a done marker must match (JSON-friendly): the stream ``settings`` that change
    the result (:data:`PLACEMENT_KEYS` aside) and the command line's :data:`INPUT_KEYS`."""
    out = {k: v for k, v in settings.as_dict().items() if k not in PLACEMENT_KEYS}
    for k in INPUT_KEYS:
        v = getattr(args, k, LATER_KEYS.get(k))  # a flag the caller lacks: its default
        # Paths as the JSON marker reads back (a Path never equals its string).
        out[k] = str(v) if isinstance(v, Path) else v
    if out.get("raft_weights") is not None:  # the weights, not how their path was typed
        out["raft_weights"] = weights_identity(out["raft_weights"])
    # Refined outputs made before the pose graph (no key: False) are not reused.
    out["pose_graph"] = uses_pose_graph(args)
    return settled(out, LATER_KEYS)


def weights_identity(path: str) -> str:
    """``"sha256:<hex>"`` of the weights file at ``path`` (the same weights under another
    path or spelling are the same; new bytes at the same path are not); ``path`` itself
    where no file is there (loading it fails with its own error)."""
    from unihoi_ros.backends.engine_record import file_sha256

    return f"sha256:{file_sha256(path)}" if Path(path).is_file() else path


def probe_length(item: BatchItem, topic: str | None, fps: float, max_frames: int | None) -> int:
    """Frames ``item`` will give (0 when unknown or unreadable), for balancing only."""
    from unihoi_ros.io.sources import open_source

    try:
        n = int(open_source(item.path, topic=topic, fps=fps).num_frames or 0)
    except Exception:  # a bad input fails (and is recorded) when processed
        return 0
    return min(n, max_frames) if max_frames else n


def make_plan(args, settings: StreamSettings, world_size: int) -> Plan:
    """Rank 0's plan for ``args.input`` with ``settings`` (see module doc).

    Raises:
        BatchError: the inputs cannot be expanded (e.g. a glob that matches nothing).
        FileNotFoundError: the model does not exist.
    """
    items = expand_inputs(args.input)
    names = output_names([b.path for b in items])
    for trash in Path(args.out).glob(f"{TRASH_PREFIX}*"):  # a kill during a deletion
        shutil.rmtree(trash, ignore_errors=True)
    from unihoi_ros.backends.factory import model_files_sha256

    model_hash = model_files_sha256(settings.model, settings.onnx_file, settings.engine_file)
    marker_settings = batch_settings(args, settings)
    plan = Plan(Path(args.out), items, names, [0] * len(items), model_hash, marker_settings,
                uuid.uuid4().hex)
    pending = []
    for i, (item, name) in enumerate(zip(items, names)):
        state, reason = "absent", ""
        if not args.force:
            state, reason = check_output(plan.out_dir / name, input_path=item.path,
                                         signature=input_signature(item.path),
                                         model_hash=model_hash, settings=marker_settings,
                                         later_defaults=LATER_KEYS)
        if state == "complete":
            plan.complete.append(i)
        elif state == "foreign":
            plan.refused[i] = f"{plan.out_dir / name} {reason}"
        else:
            if state == "redo":
                log.info("%s: redoing (%s)", name, reason)
            pending.append(i)
            plan.lengths[i] = probe_length(item, args.topic, args.fps, args.max_frames)
    shares = shard_lpt([plan.lengths[i] for i in pending], [names[i] for i in pending],
                       world_size)
    plan.shares = [[pending[j] for j in share] for share in shares]
    return plan


# ---------------------------------------------------------------------------- one input
def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _auto_ground_truth(path: Path) -> bool:
    """True for a TUM folder with poses or depth, or a 7-Scenes folder with poses."""
    if not path.is_dir():
        return False
    if (path / "rgb.txt").is_file():
        return (path / "groundtruth.txt").is_file() or (path / "depth.txt").is_file()
    return any(path.glob("frame-*.pose.txt"))


def evaluate_output(out_dir: Path, item: BatchItem, fps: float
                    ) -> tuple[EvaluationResult | None, str | None]:
    """Metrics of the run in ``out_dir`` (:func:`unihoi_ros.io.load_run`) against the item's
    ground truth (the manifest's, else the input folder's own), written to
    ``out_dir/eval.json``.

    Returns:
        ``(evaluate() result, ground-truth path)``, or ``(None, None)`` without ground truth.
    """
    import json

    from unihoi_ros.evaluation import evaluate
    from unihoi_ros.io import load_run
    from unihoi_ros.io.ground_truth import load_ground_truth, load_seven_scenes

    gt_path = item.ground_truth
    if gt_path is None and _auto_ground_truth(item.path):
        gt_path = item.path
    if gt_path is None:
        return None, None
    if gt_path.is_dir() and not (gt_path / "rgb.txt").is_file():
        gt = load_seven_scenes(gt_path, fps)  # stamps at the rate the frames were read with
    else:
        gt = load_ground_truth(gt_path)
    result = evaluate(load_run(out_dir), gt)
    (out_dir / "eval.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result, str(gt_path)


class _CountingSource:
    """Wraps a frame source so every frame read advances a progress bar."""

    def __init__(self, source, bar) -> None:
        self.source, self.bar, self.count = source, bar, 0

    def wrap(self):
        def frames():
            for stamp, rgb in self.source:
                self.count += 1
                self.bar.update(1)
                yield stamp, rgb

        return dataclasses.replace(self.source, _iter=frames)


def discard(path: Path) -> None:
    """Delete an output folder so that a kill midway leaves no half-deleted folder behind:
    it is first renamed to a ``.unihoi_trash_*`` name (removed by the next plan)."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}_{uuid.uuid4().hex[:8]}"
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def bar_frames(args, length: int) -> int:
    """Frames a rank's progress bar counts for an input of ``length`` frames: each pass's
    (the network pass and, with ``--refine-depth``, the pass on the refined depth)."""
    return length * (2 if getattr(args, "refine_depth", False) else 1)


def process_item(plan: Plan, i: int, backend, args, settings: StreamSettings, info: RankInfo,
                 bar, pair_flow=None) -> dict:
    """Process input ``i`` of ``plan`` into ``OUT/<name>/`` with ``settings`` and write its
    marker; with ``args.refine_depth`` in two passes (``pair_flow``: the refinement's,
    :func:`~unihoi_ros.offline_refine.load_pair_flow`).

    Returns:
        the done or failed marker written (never raises for a bad input).
    """
    from unihoi_ros.io.sources import open_source
    from unihoi_ros.offline import process_source
    from unihoi_ros.offline_options import choose_camera_for, first_frame_size, output_options

    item, name = plan.items[i], plan.names[i]
    out = plan.out_dir / name
    if out.exists():  # ours (the plan refused foreign folders): unfinished, stale or --force
        discard(out)
    out.mkdir(parents=True)
    common = {"input": str(item.path), "run_id": plan.run_id, "rank": info.rank,
              "host": socket.gethostname()}
    write_json_atomic(out / STARTED_MARKER, {**common, "started_utc": _utc_now()})
    t0 = time.perf_counter()
    counters: list[_CountingSource] = []
    try:
        signature = input_signature(item.path)
        source = open_source(item.path, topic=args.topic, fps=args.fps)
        camera = choose_camera_for(args, source)
        counters.append(_CountingSource(source, bar))
        rec = settings.make_reconstructor(backend)
        size = first_frame_size(source)
        stream, max_frames = counters[0].wrap(), args.max_frames
        report = {"model": settings.model, "settings": settings.effective(size)}
        pictures, drawn = getattr(args, "pictures", True), []
        if getattr(args, "refine_depth", False):
            from unihoi_ros.offline_refine import REFINEMENT_PICTURE, prepare_refined_pass

            # No bars of its own: the rank's bar is the one on screen, and says the stage.
            bar.set_description(f"rank {info.rank}: network pass and refinement")
            stream, rec, camera, max_frames = prepare_refined_pass(
                stream, rec, settings, camera, max_frames, progress=False,
                pair_flow=pair_flow, info=report, reread=source,
                picture_dir=out if pictures else None, pose_graph=uses_pose_graph(args))
            bar.set_description(f"rank {info.rank}: refined pass")
            counters.append(_CountingSource(stream, bar))
            stream = counters[1].wrap()  # pass 2 counts on the same bar
            drawn = [REFINEMENT_PICTURE] if pictures else []
        results = process_source(stream, rec, out, max_frames=max_frames, progress=False,
                                 camera=camera, info=report, pictures=pictures,
                                 pictures_drawn=drawn, **output_options(args))
        wall = time.perf_counter() - t0
        try:
            metrics, gt = evaluate_output(out, item, args.fps)
            metrics_error = None
        except Exception as exc:  # metrics are extra; the output stands
            metrics, gt = None, str(item.ground_truth or item.path)
            metrics_error = f"{type(exc).__name__}: {exc}"
        marker = done_marker(
            input_path=item.path, signature=signature, model_hash=plan.model_hash,
            settings=plan.settings, files=list_files(out), **common,
            frames=len(results), wall_time_s=wall, frames_per_s=len(results) / wall,
            eval_time_s=time.perf_counter() - t0 - wall,
            finished_utc=_utc_now(), ground_truth=gt, metrics=flat_metrics(metrics),
            metrics_error=metrics_error, backend={"name": backend.name,
                                                  "device": str(backend.device)})
        write_json_atomic(out / DONE_MARKER, marker)
        return marker
    except Exception as exc:  # one bad input must not stop the others
        log.error("%s: %s", item.path, exc)
        marker = {"status": "failed", **common, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(), "wall_time_s":
                  time.perf_counter() - t0, "finished_utc": _utc_now()}
        write_json_atomic(out / FAILED_MARKER, marker)
        return marker
    finally:  # keep the bar's total consistent when an input ends early or fails
        read, expected = sum(c.count for c in counters), bar_frames(args, plan.lengths[i])
        if expected > read:
            bar.update(expected - read)
        if getattr(args, "refine_depth", False):
            bar.set_description(f"rank {info.rank}")


# ---------------------------------------------------------------------------- ranks
def rank_device(device: str, local_rank: int) -> str:
    """The device of this rank: ``auto``/``cuda`` become ``cuda:<LOCAL_RANK mod GPUs>``
    where torch sees GPUs; ``cpu`` and an explicit ``cuda:N`` stay."""
    import torch

    from unihoi_ros.backends.factory import resolve_device

    dev = resolve_device(device)
    if dev == "cuda":
        return f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}"
    return dev


def default_threads(info: RankInfo) -> int | None:
    """CPU threads per rank: the cores shared among this machine's ranks under torchrun
    (None in one process: torch's default)."""
    if info.world_size == 1:
        return None
    return max(1, (os.cpu_count() or 1) // max(info.local_world_size, 1))


def _collect(plan: Plan) -> list[dict | None]:
    """Per input, what its folder's markers say (after every rank is done)."""
    records: list[dict | None] = []
    for i, name in enumerate(plan.names):
        if i in plan.refused:
            records.append({"status": "failed", "error": plan.refused[i]})
            continue
        out = plan.out_dir / name
        done = read_json(out / DONE_MARKER)
        failed = read_json(out / FAILED_MARKER)
        records.append(done if done is not None else failed)
    return records


def format_summary(summary: dict, rows: list[dict], wall_s: float, world_size: int) -> str:
    """The end-of-run lines rank 0 prints: counts, throughput, per-rank work, failures."""
    lines = [
        f"{summary['inputs']} inputs: {summary['done']} done ({summary['processed_this_run']} "
        f"now, {summary['skipped_complete']} already complete), {summary['failed']} failed"
        + (f", {summary['missing']} missing" if summary["missing"] else ""),
    ]
    now = summary["processed_this_run"]
    if now:
        frames_now = sum(int(r["frames"] or 0) for r in rows
                         if r["status"] == "done" and r["this_run"])
        lines.append(f"{wall_s:.1f} s on {world_size} rank(s): {now / wall_s * 3600:.1f} "
                     f"inputs/h, {frames_now / wall_s:.1f} frames/s")
    per_rank: dict[int, list[dict]] = {}
    for r in rows:
        if r["this_run"] or r["status"] == "failed":
            if r["rank"] is not None:
                per_rank.setdefault(int(r["rank"]), []).append(r)
    for rank in sorted(per_rank):
        rs = per_rank[rank]
        busy = sum(float(r["wall_time_s"] or 0) for r in rs)
        lines.append(f"  rank {rank}: {len(rs)} inputs, "
                     f"{sum(int(r['frames'] or 0) for r in rs)} frames, {busy:.1f} s busy")
    for r in rows:
        if r["status"] != "done":
            lines.append(f"  {r['status'].upper()} {r['name']}: {r['error']}")
    return "\n".join(lines)


def _broadcast(obj, info: RankInfo):
    if info.world_size == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_batch(args, settings: StreamSettings | None = None) -> int:
    """``unihoi process`` over several inputs (module doc) with ``settings`` (default: those
    of ``args``' model flags). Returns the exit status: 0 when
    every input was processed or recorded as failed in the index, 1 when the batch could
    not be planned."""
    import cv2
    import torch
    import torch.distributed as dist
    from tqdm import tqdm

    if settings is None:
        from unihoi_ros.offline_options import settings_from_args

        settings = settings_from_args(args)
    info = RankInfo.from_env()
    pair_flow = None
    if getattr(args, "refine_depth", False):
        from unihoi_ros.errors import ModelError
        from unihoi_ros.offline_refine import load_pair_flow

        try:  # once per rank, before planning: a bad checkpoint stops the run before work
            pair_flow = load_pair_flow(getattr(args, "raft_weights", None))
        except ModelError as exc:
            print(f"unihoi process: error: {exc}", file=sys.stderr)
            return 1
    threads = args.threads or default_threads(info)
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    joined = False
    if info.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)
        joined = True
    t0 = time.perf_counter()
    try:
        plan, error = None, None
        if info.rank == 0:
            try:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                plan = make_plan(args, settings, info.world_size)
            except (BatchError, FileNotFoundError, OSError, ValueError) as exc:
                error = str(exc)
        plan, error = _broadcast((plan, error), info)
        if error is not None:
            if info.rank == 0:
                print(f"unihoi process: error: {error}", file=sys.stderr)
            return 1
        share = plan.shares[info.rank]
        if info.rank == 0:
            log.info("%d inputs, %d already complete, %d to process on %d rank(s)",
                     len(plan.items), len(plan.complete),
                     sum(len(s) for s in plan.shares), info.world_size)
            # What serves the whole corpus, as `unihoi process` and the node say it.
            from unihoi_ros.model_info import model_lines

            for line in model_lines(settings.model):
                log.info("%s", line)
        if share:
            _run_share(plan, share, args, settings, info, tqdm, pair_flow)
        if info.world_size > 1:
            dist.barrier()
        if info.rank == 0:
            rows = index_rows(plan.names, plan.items, _collect(plan), plan.run_id)
            summary = {**summarize(rows), "run_id": plan.run_id,
                       "world_size": info.world_size, "wall_time_s": time.perf_counter() - t0,
                       "model": settings.model, "model_hash": plan.model_hash,
                       "settings": plan.settings, "finished_utc": _utc_now()}
            csv_path, _ = write_index(plan.out_dir, rows, summary)
            print(format_summary(summary, rows, summary["wall_time_s"], info.world_size))
            print(f"index: {csv_path} and {csv_path.with_suffix('.json')}")
        return 0
    finally:
        if joined:
            dist.destroy_process_group()


def _run_share(plan: Plan, share: list[int], args, settings: StreamSettings, info: RankInfo,
               tqdm, pair_flow=None) -> None:
    """Load the backend once and process this rank's inputs in order (``pair_flow``: the
    refinement's, loaded once by :func:`run_batch`)."""
    backend = settings.load_backend(device=rank_device(settings.device, info.local_rank))
    backend.prepare_before_first_frame(settings.process_size, settings.stride + 1)
    log.info("rank %d/%d: %d inputs on %s", info.rank, info.world_size, len(share),
             backend.describe())
    bar = tqdm(total=sum(bar_frames(args, plan.lengths[i]) for i in share), unit="frame",
               desc=f"rank {info.rank}", position=info.local_rank,
               disable=args.no_progress, dynamic_ncols=True)
    try:
        for n, i in enumerate(share, 1):
            bar.set_postfix_str(f"{n}/{len(share)} {plan.names[i]}")
            process_item(plan, i, backend, args, settings, info, bar, pair_flow)
    finally:
        bar.close()
