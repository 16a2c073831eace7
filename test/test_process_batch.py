"""`unihoi process` over many inputs: sharding, completion markers, the index, and torchrun.

The integration tests run the bundled tiny model on six 48x64 synthetic videos of 8-16
frames (one corrupt) with one thread per process, so that every rank computes exactly what
one process does; all rendezvous traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from unihoi_ros.batch import (
    DONE_MARKER,
    FAILED_MARKER,
    INDEX_METRICS,
    STARTED_MARKER,
    BatchError,
    BatchItem,
    check_output,
    done_marker,
    expand_inputs,
    index_csv_text,
    index_rows,
    input_signature,
    is_batch,
    list_files,
    output_names,
    shard_lpt,
    summarize,
    write_index,
    write_json_atomic,
)
from unihoi_ros.cli import build_parser
from unihoi_ros.cli import main as cli_main
from unihoi_ros.offline_batch import batch_settings
from unihoi_ros.pipeline.settings import StreamSettings

REPO = Path(__file__).resolve().parents[1]
VIDEOS = {f"clip{k}": 8 + 2 * k for k in range(5)}  # name -> frames
# report.json's measured timings differ from run to run; everything else must not.
TIMING_KEYS = ("wall_time_s", "frames_per_s", "frames_per_s_reconstruction")


# ---------------------------------------------------------------------------- pure parts
def test_expand_inputs_list_glob_manifest(tmp_path):
    for n in ("a.mp4", "b.mp4", "c.avi"):
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "bag").mkdir()
    sub = tmp_path / "lists"
    sub.mkdir()
    (sub / "m.txt").write_text("# corpus of monday\n\n../a.mp4\t../gt.npz\n"
                               f"{tmp_path / 'bag'}\n../missing.mp4\n")
    got = expand_inputs([str(sub / "m.txt"), str(tmp_path / "*.mp4"), str(tmp_path / "c.avi")])
    assert [b.path for b in got] == [tmp_path / "a.mp4", tmp_path / "bag",
                                     tmp_path / "missing.mp4", tmp_path / "b.mp4",
                                     tmp_path / "c.avi"]  # manifest order, a.mp4 once
    assert got[0].ground_truth == tmp_path / "gt.npz" and got[1].ground_truth is None
    with pytest.raises(BatchError, match="matches nothing"):
        expand_inputs([str(tmp_path / "*.mkv")])
    (tmp_path / "bad.txt").write_text("a\tb\tc\n")
    with pytest.raises(BatchError, match="INPUT<TAB>GROUND_TRUTH"):
        expand_inputs([str(tmp_path / "bad.txt")])
    assert not is_batch([tmp_path / "a.mp4"])  # one plain input: today's layout
    assert is_batch([tmp_path / "a.mp4", tmp_path / "b.mp4"])
    assert is_batch([sub / "m.txt"]) and is_batch([str(tmp_path / "*.mp4")])


def test_output_names_are_stems_and_duplicates_get_a_path_hash(tmp_path):
    (tmp_path / "rec_0412").mkdir()
    paths = [tmp_path / "day1" / "cam.mp4", tmp_path / "x.mcap", tmp_path / "day2" / "cam.mp4",
             tmp_path / "rec_0412", tmp_path / "day3" / "CAM.avi"]
    names = output_names(paths)
    assert names[1] == "x" and names[3] == "rec_0412"
    assert all(n.lower().startswith("cam-") and len(n) == 12 for n in (names[0], names[2],
                                                                         names[4]))
    assert len(set(names)) == 5
    # Deterministic and independent of the order and of the other (unique) inputs.
    rev = output_names(paths[::-1])[::-1]
    assert rev == names
    assert output_names([paths[2], paths[0]]) == [names[2], names[0]]
    assert output_names([paths[0]]) == ["cam"]


def test_shard_lpt_is_deterministic_and_balanced():
    lengths = [10, 9, 8, 7, 6, 5]
    names = [f"in{i}" for i in range(6)]
    assert shard_lpt(lengths, names, 2) == [[0, 3, 4], [1, 2, 5]]  # 23 vs 22 frames
    assert shard_lpt(lengths, names, 1) == [[0, 1, 2, 3, 4, 5]]
    assert shard_lpt(lengths, names, 8)[6:] == [[], []]
    # Ties are broken by name, so the share of each input does not depend on input order.
    assert shard_lpt([5, 5, 5], ["c", "a", "b"], 2) == [[1, 0], [2]]
    rng = np.random.default_rng(0)
    for world in (2, 3, 5):
        lens = rng.integers(0, 500, 40).tolist()
        nm = [f"n{i:02d}" for i in range(40)]
        shares = shard_lpt(lens, nm, world)
        assert sorted(i for s in shares for i in s) == list(range(40))  # each input once
        loads = [sum(max(lens[i], 1) for i in s) for s in shares]
        assert max(loads) - min(loads) <= max(lens)  # greedy LPT bound
        perm = rng.permutation(40)
        again = shard_lpt([lens[p] for p in perm], [nm[p] for p in perm], world)
        assert [sorted(nm[perm[i]] for i in s) for s in again] == \
            [sorted(nm[i] for i in s) for s in shares]
    with pytest.raises(ValueError):
        shard_lpt([1], ["a"], 0)


def _finished_output(out: Path, src: Path, settings: dict) -> dict:
    out.mkdir(parents=True)
    (out / "bag").mkdir()
    (out / "bag" / "bag.mcap").write_bytes(b"m" * 100)
    (out / "predictions.npz").write_bytes(b"p" * 50)
    write_json_atomic(out / STARTED_MARKER, {"input": str(src)})
    marker = done_marker(input_path=src, signature=input_signature(src), model_hash="h1",
                         settings=settings, files=list_files(out), frames=3)
    write_json_atomic(out / DONE_MARKER, marker)
    return marker


def test_completion_marker_decides_skip_or_redo(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"video bytes")
    settings = {"model": "unihoi-tiny", "stride": 1}
    out = tmp_path / "out"

    def state(**over):
        kw = {"input_path": src, "signature": input_signature(src), "model_hash": "h1",
              "settings": settings, **over}
        return check_output(out, **kw)[0]

    assert state() == "absent"
    marker = _finished_output(out, src, settings)
    assert marker["files"] == {"bag/bag.mcap": 100, "predictions.npz": 50}
    assert not list(out.glob(".*.tmp"))  # the atomic write leaves nothing behind
    assert state() == "complete"
    assert state(model_hash="h2") == "redo"
    assert state(settings={**settings, "stride": 2}) == "redo"
    assert state(input_path=tmp_path / "other.mp4") == "redo"
    src.write_bytes(b"video bytes, re-recorded")
    assert state() == "redo"  # the input changed since
    src.write_bytes(b"video bytes")
    assert state() == "complete"
    (out / "predictions.npz").write_bytes(b"p" * 20)  # truncated after the marker
    assert state() == "redo"
    (out / "predictions.npz").write_bytes(b"p" * 50)
    (out / DONE_MARKER).write_text('{"format": 1, "sta')  # torn marker (not ours: atomic)
    assert state() == "redo"
    (out / DONE_MARKER).unlink()
    assert state() == "redo"  # started, never finished: half-written
    shutil.rmtree(out)
    out.mkdir()
    (out / f".{STARTED_MARKER}.123.tmp").write_text("{")  # killed in the first write
    assert state() == "redo"
    (out / f".{STARTED_MARKER}.123.tmp").unlink()
    (out / "notes.txt").write_text("someone else's")
    assert check_output(out, input_path=src, signature=input_signature(src), model_hash="h1",
                        settings=settings) == ("foreign", "exists and was not written by "
                                               "`unihoi process`; pass --force")


def test_markers_written_before_a_setting_existed_are_still_reused(tmp_path):
    """A corpus processed before a setting was added (its marker lacks the key) is not
    redone after the upgrade while the setting is at its default; it is once the setting
    changes, and markers that hold the key at its default match too."""
    from unihoi_ros.offline_batch import LATER_KEYS

    src = tmp_path / "in.mp4"
    src.write_bytes(b"video bytes")
    current = batch_settings(build_parser().parse_args(["process", str(src), "-o", "o"]),
                             StreamSettings())
    assert not set(LATER_KEYS) & set(current)  # new markers leave them out at the default
    before = {k: v for k, v in current.items() if k not in ("past_refinement",
                                                             "mirror_average")}
    out = tmp_path / "out"
    _finished_output(out, src, before)

    def state(settings, later=LATER_KEYS):
        return check_output(out, input_path=src, signature=input_signature(src),
                            model_hash="h1", settings=settings, later_defaults=later)[0]

    assert state(current) == "complete"
    assert state({**current, "mirror_average": False}) == "complete"  # written at default
    assert state({**current, "mirror_average": True}) == "redo"
    assert state({**current, "stride": 2}) == "redo"
    assert state({**current, "mirror_average": False}, later=None) == "redo"


def test_index_rows_summary_and_files(tmp_path):
    items = [BatchItem(tmp_path / n) for n in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")]
    names = ["a", "b", "c", "d"]
    records = [
        {"status": "done", "run_id": "now", "frames": 10, "wall_time_s": 2.0, "rank": 1,
         "metrics": {"trajectory.ate": 0.25, "depth.abs_rel": 0.5}, "ground_truth": "gt.npz"},
        {"status": "done", "run_id": "before", "frames": 4, "wall_time_s": 1.0, "rank": 0},
        {"status": "failed", "run_id": "now", "error": "SourceError: no frames", "rank": 0},
        None,
    ]
    rows = index_rows(names, items, records, "now")
    assert [r["status"] for r in rows] == ["done", "done", "failed", "missing"]
    assert [r["this_run"] for r in rows] == [True, False, True, False]
    assert rows[0]["fps"] == 5.0
    assert summarize(rows) == {"inputs": 4, "done": 2, "failed": 1, "missing": 1,
                               "processed_this_run": 1, "skipped_complete": 1, "frames": 14}
    table = list(csv.DictReader(io.StringIO(index_csv_text(rows))))
    assert list(table[0])[-2:] == ["trajectory.ate", "depth.abs_rel"]  # INDEX_METRICS order
    assert table[0]["trajectory.ate"] == "0.25" and table[1]["trajectory.ate"] == ""
    assert table[2]["error"] == "SourceError: no frames" and table[2]["frames"] == ""
    csv_path, json_path = write_index(tmp_path, rows, summarize(rows))
    assert json.loads(json_path.read_text())["inputs"][2]["error"] == "SourceError: no frames"
    assert csv_path.read_text() == index_csv_text(rows)


# ---------------------------------------------------------------------------- end to end
def _write_video(path: Path, seed: int, frames: int) -> None:
    from unihoi_ros.sim import make_sequence

    seq = make_sequence(seed=seed, num_frames=frames, height=48, width=64)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), seq.fps, (64, 48))
    for f in seq.rgb:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    if seed == 0:
        from unihoi_ros.io.ground_truth import write_sequence_npz

        write_sequence_npz(seq, path.with_name("clip0_gt.npz"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Five synthetic videos, a corrupt one, and a manifest (clip0 with ground truth)."""
    root = tmp_path_factory.mktemp("corpus")
    lines = []
    for k, (name, frames) in enumerate(VIDEOS.items()):
        _write_video(root / f"{name}.avi", k, frames)
        lines.append(f"{name}.avi" + ("\tclip0_gt.npz" if k == 0 else ""))
    (root / "corrupt.avi").write_bytes(b"this is not a video")
    lines.insert(2, "corrupt.avi")
    (root / "manifest.txt").write_text("\n".join(lines) + "\n")
    return root


def _args(corpus: Path, out: Path) -> list[str]:
    return ["process", str(corpus / "manifest.txt"), "-o", str(out), "--threads", "1",
            "--no-progress"]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """The same batch in this one process (the reference the ranks must reproduce)."""
    out = tmp_path_factory.mktemp("single") / "out"
    threads = torch.get_num_threads()
    try:
        assert cli_main(_args(corpus, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str]) -> tuple[list[str], dict]:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    unihoi = shutil.which("unihoi", path=str(Path(sys.executable).parent))
    entry = ["--no-python", unihoi] if unihoi else ["-m", "unihoi_ros.cli"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
           str(_free_port()), *entry, *args]
    return cmd, env


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (torchrun starts its ranks in sessions of their own, so
    killing torchrun's process group would leave them running)."""
    kids = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:  # it has exited
        pass
    return kids


def _wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # a zombie until torchrun's death hands it to init


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "index.csv") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def _strip_timings(obj):
    if isinstance(obj, dict):
        return {k: _strip_timings(v) for k, v in obj.items()
                if k not in TIMING_KEYS and k != "stages_ms"}
    return obj


def assert_same_outputs(a: Path, b: Path) -> None:
    """Every output file of every input equal: bytes, except the ``.npz`` files (arrays
    equal: a zip stores its write time), ``report.json`` (measured timings left out) and
    the markers (times, rank, run id)."""
    for name in VIDEOS:
        fa = list_files(a / name)
        assert set(fa) == set(list_files(b / name)), name  # the same files
        assert {"bag/bag.mcap", "cloud.ply", "trajectory_tum.txt", "summary.png",
                "frames.json", "depth/000000.png", "confidence/000000.png",
                "report.json"} <= set(fa)
        for rel in fa:
            pa, pb = a / name / rel, b / name / rel
            if rel.endswith(".npz"):  # predictions, tracks
                with np.load(pa) as za, np.load(pb) as zb:
                    assert sorted(za) == sorted(zb)
                    for k in za:
                        np.testing.assert_array_equal(za[k], zb[k], err_msg=f"{name} {k}")
            elif rel == "report.json":
                ra, rb = (json.loads(p.read_text()) for p in (pa, pb))
                assert _strip_timings(ra) == _strip_timings(rb), name
            else:
                assert pa.read_bytes() == pb.read_bytes(), f"{name}/{rel}"


def _check_index(out: Path, corpus: Path) -> dict[str, dict]:
    rows = _rows(out)
    assert list(rows) == ["clip0", "clip1", "corrupt", "clip2", "clip3", "clip4"]
    bad = rows["corrupt"]
    assert bad["status"] == "failed" and "cannot open video" in bad["error"]
    assert json.loads((out / "corrupt" / FAILED_MARKER).read_text())["error"] == bad["error"]
    for name, frames in VIDEOS.items():
        assert rows[name]["status"] == "done" and int(rows[name]["frames"]) == frames
        assert float(rows[name]["fps"]) == pytest.approx(   # frames/s per input, recorded
            frames / float(rows[name]["wall_time_s"]), rel=1e-4)
    assert rows["clip0"]["ground_truth"] == str(corpus / "clip0_gt.npz")
    assert float(rows["clip0"]["trajectory.ate"]) >= 0 and rows["clip1"]["trajectory.ate"] == ""
    assert (out / "clip0" / "eval.json").is_file() and not (out / "clip1" / "eval.json").exists()
    return rows


@pytest.mark.slow
def test_single_input_keeps_todays_layout(corpus, tmp_path):
    out = tmp_path / "one"
    assert cli_main(["process", str(corpus / "clip0.avi"), "-o", str(out), "--threads", "1",
                     "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == {"bag", "cloud.ply", "trajectory_tum.txt",
                                               "frames.json", "depth", "confidence",
                                               "summary.png", "report.json",
                                               "tracks.npz", "tracks.csv", "tracks.png"}


@pytest.mark.slow
def test_batch_in_one_process(reference, corpus):
    rows = _check_index(reference, corpus)
    assert {r["rank"] for r in rows.values()} == {"0"}
    index = json.loads((reference / "index.json").read_text())
    assert index["summary"]["done"] == 5 and index["summary"]["failed"] == 1
    assert set(INDEX_METRICS) <= set(index["inputs"][0]["metrics"])


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(reference, corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd, env = _torchrun(_args(corpus, out))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _check_index(out, corpus)
    assert {r["rank"] for r in rows.values()} == {"0", "1"}  # both ranks worked
    assert "5 done (5 now, 0 already complete), 1 failed" in proc.stdout
    from unihoi_ros.model_info import model_lines

    # Rank 0 says once which model serves the corpus and what it was trained on.
    first = model_lines("unihoi-tiny")[0]
    assert proc.stderr.count(first) == 1, proc.stderr[-3000:]
    assert_same_outputs(reference, out)


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_inputs(reference, corpus, tmp_path):
    out = tmp_path / "resumed"
    cmd, env = _torchrun(_args(corpus, out))
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not list(out.glob(f"*/{DONE_MARKER}")):
                assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no input finished in time"
                time.sleep(0.02)
        finally:  # a hard kill of the whole job: both ranks, then torchrun
            workers = _children(proc.pid)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            _wait_gone(workers)
    assert len(workers) == 2
    done_before = {p.parent.name: (p.stat().st_mtime_ns, p.read_text())
                   for p in out.glob(f"*/{DONE_MARKER}")}
    assert 1 <= len(done_before) < len(VIDEOS), done_before.keys()
    assert not (out / "index.csv").exists()  # killed before the end
    # One unfinished input is certainly half-written (started, partial files, no marker).
    half = next(n for n in VIDEOS if n not in done_before)
    (out / half).mkdir(exist_ok=True)
    write_json_atomic(out / half / STARTED_MARKER, {"input": str(corpus / f"{half}.avi")})
    (out / half / "cloud.ply").write_bytes(b"partial")
    (out / half / "junk.bin").write_bytes(b"left over")
    (out / ".unihoi_trash_clip9_0123abcd" / "bag").mkdir(parents=True)  # killed mid-delete

    cmd, env = _torchrun(_args(corpus, out))
    proc2 = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=180)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    for name, (mtime, text) in done_before.items():  # finished inputs were not redone
        marker = out / name / DONE_MARKER
        assert marker.stat().st_mtime_ns == mtime and marker.read_text() == text, name
    rows = _check_index(out, corpus)
    redone = {n for n in VIDEOS if rows[n]["this_run"] == "True"}
    assert redone == set(VIDEOS) - set(done_before)
    summary = json.loads((out / "index.json").read_text())["summary"]
    assert summary["skipped_complete"] == len(done_before)
    assert summary["processed_this_run"] == len(VIDEOS) - len(done_before)
    assert_same_outputs(reference, out)  # the half-written one was redone from scratch
    assert not list(out.glob(".unihoi_trash_*"))

    # Run again: everything complete is skipped (the corrupt input is retried, and fails).
    threads = torch.get_num_threads()
    try:
        assert cli_main(_args(corpus, out)) == 0
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((out / "index.json").read_text())["summary"]
    assert summary["skipped_complete"] == len(VIDEOS) and summary["failed"] == 1


@pytest.mark.slow
def test_bad_inputs_and_foreign_folders_are_recorded(corpus, tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    from unihoi_ros.ros import messages as m

    ts = m.get_typestore()
    with Writer(tmp_path / "noimg", version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/tf", m.TF_MESSAGE, typestore=ts)
        w.write(conn, 1, ts.serialize_cdr(m.tf_msg([]), m.TF_MESSAGE))
    out = tmp_path / "out"
    (out / "clip1").mkdir(parents=True)
    (out / "clip1" / "notes.txt").write_text("not ours")
    args = ["process", str(tmp_path / "noimg"), str(tmp_path / "missing.mp4"),
            str(corpus / "clip1.avi"), "-o", str(out), "--threads", "1", "--no-progress",
            "--max-frames", "5"]
    threads = torch.get_num_threads()
    try:
        assert cli_main(args) == 0
        rows = _rows(out)
        assert rows["noimg"]["status"] == "failed"
        assert "no sensor_msgs/Image" in rows["noimg"]["error"]
        assert "does not exist" in rows["missing"]["error"]
        assert rows["clip1"]["status"] == "failed" and "--force" in rows["clip1"]["error"]
        assert {p.name for p in (out / "clip1").iterdir()} == {"notes.txt"}  # untouched
        assert cli_main([*args, "--force"]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = _rows(out)
    assert rows["clip1"]["status"] == "done" and rows["clip1"]["frames"] == "5"
    assert not (out / "clip1" / "notes.txt").exists()
    marker = json.loads((out / "clip1" / DONE_MARKER).read_text())
    assert marker["settings"]["max_frames"] == 5 and marker["frames"] == 5
