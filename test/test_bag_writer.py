"""BagRecorder: rosbag2 MCAP bags that rosbags and the mcap reader both open, with real
offered QoS profiles and Humble-readable (version 8) metadata."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mcap")

from unihoi_ros.io.bag_writer import BagRecorder
from unihoi_ros.ros import messages as M
from unihoi_ros.ros.qos import DEFAULT, SENSOR_DATA

TS = M.get_typestore()


def _depth(i: int):
    return M.array_to_image(np.full((4, 5), float(i), np.float32), 1_000 + i, "cam")


def test_bag_round_trip_with_rosbags_and_mcap(tmp_path):
    from mcap.reader import make_reader
    from rosbags.interfaces import QosReliability
    from rosbags.rosbag2 import Reader

    path = tmp_path / "bag"
    with BagRecorder(path) as rec:
        rec.add_topic("/unihoi/depth/image", M.IMAGE, DEFAULT)
        rec.add_topic("/unihoi/image", M.IMAGE, SENSOR_DATA)
        rec.add_topic("/unihoi/depth/image", M.IMAGE)  # idempotent
        for i in range(5):
            rec.write("/unihoi/depth/image", _depth(i), 10 + i)  # a message
            rec.write("/unihoi/image", TS.serialize_cdr(_depth(i), M.IMAGE), 20 + i)  # bytes
        assert rec.topics == {"/unihoi/depth/image": M.IMAGE, "/unihoi/image": M.IMAGE}
    assert rec.closed and rec.counts == {"/unihoi/depth/image": 5, "/unihoi/image": 5}
    meta = (path / "metadata.yaml").read_text()
    assert "version: 8" in meta and "offered_qos_profiles" in meta
    with Reader(path) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
        values = [(c.topic, t, float(M.image_to_array(TS.deserialize_cdr(raw, c.msgtype))[0, 0]))
                  for c, t, raw in reader.messages()]
    assert qos["/unihoi/depth/image"].reliability == QosReliability.RELIABLE
    assert qos["/unihoi/image"].reliability == QosReliability.BEST_EFFORT
    assert qos["/unihoi/image"].depth == 5
    assert sorted(v for v in values if v[0] == "/unihoi/depth/image") == [
        ("/unihoi/depth/image", 10 + i, float(i)) for i in range(5)]
    (mcap_file,) = path.glob("*.mcap")
    with open(mcap_file, "rb") as fh:
        reader = make_reader(fh)
        assert reader.get_summary() is not None
        msgs = list(reader.iter_messages())
    assert len(msgs) == 10
    assert {ch.topic for _, ch, _ in msgs} == {"/unihoi/depth/image", "/unihoi/image"}


def test_zstd_chunks_read_by_rosbags_and_mcap(tmp_path):
    """Chunk compression: the MCAP chunk records say zstd, both readers decode them, the
    rosbag2 metadata declares no file/message compression (what Humble's MCAP plugin
    expects of a bag it did not compress itself), and a compressible bag shrinks."""
    from mcap.reader import make_reader
    from rosbags.rosbag2 import Reader

    def write(path, compression):
        with BagRecorder(path, compression=compression) as rec:
            rec.add_topic("/unihoi/depth/image", M.IMAGE)
            for i in range(20):
                img = M.array_to_image(np.full((60, 80), i, np.uint16), 1_000 + i, "cam")
                rec.write("/unihoi/depth/image", img, 1_000 + i)
        (mcap_file,) = path.glob("*.mcap")
        return mcap_file

    packed, plain = write(tmp_path / "z", "zstd"), write(tmp_path / "p", None)
    assert packed.stat().st_size < plain.stat().st_size / 10
    with open(packed, "rb") as fh:
        reader = make_reader(fh)
        assert {c.compression for c in reader.get_summary().chunk_indexes} == {"zstd"}
        first = [int(M.image_to_array(TS.deserialize_cdr(bytes(msg.data), M.IMAGE))[0, 0])
                 for _, _, msg in reader.iter_messages()]
    with Reader(tmp_path / "z") as reader:
        second = [int(M.image_to_array(TS.deserialize_cdr(raw, c.msgtype))[5, 5])
                  for c, _, raw in reader.messages()]
        assert not reader.compression_mode  # '' in metadata.yaml: none at the rosbag2 level
    assert first == second == list(range(20))
    with pytest.raises(ValueError, match="MCAP"):
        BagRecorder(tmp_path / "s", storage="sqlite3", compression="zstd")
    with pytest.raises(ValueError, match="compression"):
        BagRecorder(tmp_path / "l", compression="lz4")


def test_bag_refuses_existing_path_and_misuse(tmp_path):
    path = tmp_path / "bag"
    BagRecorder(path).close()
    with pytest.raises(FileExistsError, match="overwrite"):
        BagRecorder(path)
    rec = BagRecorder(path, overwrite=True)
    rec.add_topic("/a", M.IMAGE)
    with pytest.raises(ValueError, match="was added as"):
        rec.add_topic("/a", M.CAMERA_INFO)
    with pytest.raises(KeyError, match="add_topic"):
        rec.write("/b", _depth(0), 1)
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        rec.write("/a", _depth(0), 1)


def test_bag_concurrent_writers(tmp_path):
    from rosbags.rosbag2 import Reader

    path = tmp_path / "bag"
    with BagRecorder(path) as rec:
        for k in range(4):
            rec.add_topic(f"/t{k}", M.IMAGE)

        def writer(k: int) -> None:
            for i in range(50):
                rec.write(f"/t{k}", _depth(i), 1_000 * k + i)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Reader(path) as reader:
        assert reader.message_count == 200


_KILLED_WRITER = """
import sys, time
import numpy as np
from unihoi_ros.io.bag_writer import BagRecorder
from unihoi_ros.ros import messages as M

rec = BagRecorder(sys.argv[1], chunk_bytes=int(sys.argv[2]))
rec.add_topic("/cam/image", M.IMAGE)
in_chunks, pending = 0, 0
for i in range(400):
    chunks = rec.chunks_written
    rec.write("/cam/image", M.rgb_to_image(np.full((40, 50, 3), i % 256, np.uint8), 1000 + i,
                                           "cam"), 1000 + i)
    if rec.chunks_written != chunks:  # a chunk closed after this message: 0..i on disk
        in_chunks = i + 1
    elif rec.chunks_written == 3:
        pending += 1
        if pending == 2:  # two messages wait in the next chunk
            print(in_chunks, flush=True)
            time.sleep(60)  # killed here
"""


def test_progressive_chunks_readable_after_sigkill(tmp_path):
    """A writer with chunk_bytes, killed with SIGKILL while a chunk is pending: the MCAP
    file (no summary, no metadata.yaml) holds exactly the messages of the chunks written
    before, in order and intact; the pending chunk's are lost."""
    import signal
    import subprocess
    import sys

    from unihoi_ros.io.bag_writer import messages_in_complete_chunks

    from conftest import REPO_ROOT

    path = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), "20000"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        written = int(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not (path / "metadata.yaml").exists()
    (mcap_file,) = path.glob("*.mcap")
    got = list(messages_in_complete_chunks(mcap_file))
    assert 3 <= written == len(got) < 400
    assert [t for _, _, t, _ in got] == [1000 + i for i in range(written)]
    for topic, msgtype, _, data in got:
        msg = TS.deserialize_cdr(data, msgtype)
        assert topic == "/cam/image" and M.image_to_rgb(msg).shape == (40, 50, 3)
    assert int(M.image_to_rgb(msg)[0, 0, 0]) == (written - 1) % 256


def test_progressive_chunks_by_age_and_refused_for_sqlite(tmp_path):
    with BagRecorder(tmp_path / "aged", chunk_seconds=0.05) as rec:
        rec.add_topic("/x", M.IMAGE)
        rec.write("/x", _depth(0), 1)
        assert rec.chunks_written == 0
        import time

        time.sleep(0.1)
        rec.flush_due()  # a quiet topic: the timer writes the chunk
        assert rec.chunks_written == 1
    with pytest.raises(ValueError, match="MCAP"):
        BagRecorder(tmp_path / "sq", storage="sqlite3", chunk_bytes=1000)
