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
