"""The default CPU backend of the small model: the any-size ONNX graph per encoder input,
shipped for the bundled model or exported once and cached by weights, code and encoder
input, ONNX Runtime serving it for every frame size of that input (parity with torch
through the reconstructor), torch meanwhile and as the fallback."""

from __future__ import annotations

import copy
import logging
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from unihoi_ros.backends import onnx_graph_cache
from unihoi_ros.backends.base import LoadedBackend
from unihoi_ros.backends.factory import load_backend, load_network
from unihoi_ros.backends.onnx_router import OnnxRouterBackend, auto_status
from unihoi_ros.backends.select import select_backend
from unihoi_ros.backends.torch_backend import TorchBackend
from unihoi_ros.errors import BackendError
from unihoi_ros.flow import DISFlow
from unihoi_ros.pipeline import Reconstructor
from unihoi_ros.pipeline.config import ReconstructorConfig
from unihoi_ros.sim import make_sequence

H, W = 96, 128  # the smallest 4:3 size the any-size graph takes: tiny's encoder input
DT = 66_666_667


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the node's thread policy gives on two cores (two threads on a
    busy two-core machine spin against each other: 30x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    net, _, _ = load_network("random:tiny")
    return net


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One cache folder for the module (``<UNIHOI_CACHE_DIR>/onnx``): each graph is exported
    once (about 3 s)."""
    return tmp_path_factory.mktemp("cache") / "onnx"


@pytest.fixture(scope="module")
def exported(tiny, cache_dir):
    return onnx_graph_cache.ensure_graph(tiny, H, W, cache_dir)


@pytest.fixture(scope="module")
def clip():
    return make_sequence(3, 8, H, W)


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def stream(backend, rgb, **config):
    rec = Reconstructor(backend, DISFlow("medium"), ReconstructorConfig(**config))
    out = []
    for i, frame in enumerate(rgb):
        outcome = rec.feed(1_000_000_000 + i * DT, frame)
        assert outcome.dropped is None, outcome.message
        out.extend(outcome.results)
    return out


def assert_same_results(a, b, tol=1e-4):
    assert [r.stamp_ns for r in a] == [r.stamp_ns for r in b]
    for x, y in zip(a, b):
        assert rel_err(x.depth, y.depth) < tol
        assert rel_err(x.K, y.K) < tol
        assert rel_err(x.confidence, y.confidence) < tol


# --------------------------------------------------------------------------- parity
def test_cached_graph_matches_torch_through_the_reconstructor(tiny, cache_dir, exported, clip):
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    assert cached.prepare((H, W)) and cached.status((H, W)) == "ready"
    ours = stream(cached, clip.rgb)
    assert cached.name == "onnxruntime" and "ONNX Runtime" in cached.describe()
    ref = stream(TorchBackend(tiny, "cpu"), clip.rgb)
    assert len(ours) == len(clip.rgb)
    assert_same_results(ours, ref)
    for x, y in zip(ours, ref):  # poses follow from depth and flow
        assert np.abs(x.T_world_cam - y.T_world_cam).max() < 1e-3


def test_the_last_frames_graph_serves_a_stride_one_stream(tiny, cache_dir, exported, clip):
    """Both graphs of a size are prepared together; after the first window the stream asks
    for its last two frames only, and that graph's outputs equal torch's full decode."""
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    assert cached.prepare((H, W)) and cached.status((H, W), 2) == "ready"
    assert "last 2 frames" in cached.describe()
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    calls = []
    run = OnnxRuntimeBackend.infer_window

    def counted(self, features, rgbs, flows):
        if rgbs is not None:  # a frame's window, not a session's warm-up run
            calls.append((self.path.name.endswith(".last2.onnx"), self.input_size,
                          self.session.get_inputs()[0].shape[3:]))
        return run(self, features, rgbs, flows)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OnnxRuntimeBackend, "infer_window", counted)
        ours = stream(cached, clip.rgb)
    assert [c[0] for c in calls] == [False] + [True] * (len(clip.rgb) - 1)
    # every window ran on a session specialised to the frames' size (static H, W)
    assert all(c[2] == [H, W] for c in calls)
    full_decode = stream(TorchBackend(tiny, "cpu"), clip.rgb, decode_full_window=True)
    assert_same_results(ours, full_decode)
    path = onnx_graph_cache.ensure_graph(tiny, H, W, cache_dir, decode_last=2).path
    assert path.name.endswith(".last2.onnx") and path != exported.path
    assert (H, W) in onnx_graph_cache.cached_sizes(tiny, cache_dir)  # full-window graphs only
    assert all(n == tiny.network_input_shape(*n) for n in onnx_graph_cache.cached_sizes(tiny,
                                                                                 cache_dir))


def test_one_graph_serves_every_frame_size_of_its_encoder_input(tiny, cache_dir, exported):
    """No export for a new camera size: 192x256 frames run on the 96x128 frames' graph
    (the same encoder input), equal to torch; frames smaller than the encoder input, or of
    another aspect ratio's input, are not taken by it."""
    big = make_sequence(4, 6, 2 * H, 2 * W)
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    assert cached.prepare((H, W))
    assert cached.status((2 * H, 2 * W)) == "ready"  # prepared by the other size
    before = sorted(cache_dir.glob("*.onnx"))
    ours = stream(cached, big.rgb)
    assert cached.name == "onnxruntime" and sorted(cache_dir.glob("*.onnx")) == before
    assert_same_results(ours, stream(TorchBackend(tiny, "cpu"), big.rgb))
    from unihoi_ros.backends import window_graph as wg

    rule = tiny.network_input_shape
    assert wg.any_size_problem(rule, (H, W), (H, W)) is None
    assert "smaller than the encoder input" in wg.any_size_problem(rule, (64, 88), (48, 64))
    assert "map to the encoder input" in wg.any_size_problem(rule, (H, W), (H, H))


def test_frames_smaller_than_the_encoder_input_stay_with_torch(tiny, cache_dir, caplog):
    small = make_sequence(5, 5, 48, 64)  # encoder input 64x88: the graph would enlarge
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        ours = stream(cached, small.rgb)
    assert cached.name == "torch" and "64x48 frames: torch" in cached.describe()
    assert caplog.text.count("smaller than the encoder input") == 1  # said once
    assert_same_results(ours, stream(TorchBackend(tiny, "cpu"), small.rgb), tol=1e-6)


@pytest.mark.parametrize("size", [(120, 160), (256, 456)])
def test_the_bundled_models_graphs_ship_with_the_package(size):
    """A fresh install exports nothing for 4:3 and 16:9 cameras: the shipped graphs carry
    the key of today's weights and model code (after a change to unihoi_ros/model, run
    ``unihoi prepare --ship``), and equal torch."""
    from unihoi_ros.backends import window_graph as wg
    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    model, _, _ = load_network("unihoi-tiny")
    net = model.network_input_shape(*size)
    assert net in onnx_graph_cache.common_network_sizes(model)
    for n in (None, 2):
        graph = onnx_graph_cache.ensure_graph(model, *net, decode_last=n)
        assert graph.shipped and not graph.exported, (
            "the shipped graphs are stale: run `unihoi prepare --ship` and commit "
            "unihoi_ros/model/weights/")
        ort = OnnxRuntimeBackend(graph.path, threads=1)
        assert ort.network_input_size == net and ort.size_problem(size) is None
        rng = np.random.default_rng(0)
        frames = rng.random((4, 3, *size), dtype=np.float32)
        flows = rng.normal(0, 2, (3, *size, 2)).astype(np.float32)
        got = ort.infer_window(list(frames), None, flows)
        with torch.inference_mode():
            ref = model(torch.from_numpy(frames)[None],
                        torch.from_numpy(flows).permute(0, 3, 1, 2)[None], n)
        assert rel_err(got.depth, ref.depth[0].numpy()) < 1e-4
        assert rel_err(got.K, ref.K[0].numpy()) < 1e-4
        assert rel_err(got.confidence, ref.confidence[0].numpy()) < 1e-4
        assert wg.resize_inputs(*size, *net)["resize_y"].shape == (net[0], size[0])


def test_torch_serves_until_the_graph_is_ready_then_onnxruntime(tiny, cache_dir, exported,
                                                               clip, monkeypatch):
    """The first frame of a size starts the preparation in the background; the stream
    never waits, switches once the graph is ready, and its results stay torch's."""
    gate = threading.Event()
    real = onnx_graph_cache.open_cached

    def slow_open(*args, **kwargs):
        gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_graph_cache, "open_cached", slow_open)
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir, background=True)
    rec = Reconstructor(cached, DISFlow("medium"), ReconstructorConfig())
    results, names = [], []
    for i, frame in enumerate(clip.rgb):
        if i == 4:
            gate.set()
            assert cached.prepare((H, W), timeout=60)  # waits for the background thread
        results.extend(rec.feed(1_000_000_000 + i * DT, frame).results)
        names.append(cached.name)
    assert names[:4] == ["torch"] * 4 and names[4:] == ["onnxruntime"] * 4
    assert_same_results(results, stream(TorchBackend(tiny, "cpu"), clip.rgb))


def test_by_default_the_first_frame_of_a_size_waits_for_its_graph(tiny, cache_dir, exported,
                                                                  clip):
    """Offline runs: every window from the same backend, whatever the timing."""
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    assert cached.status((H, W)) == "new" and cached.name == "torch"
    rec = Reconstructor(cached, DISFlow("medium"), ReconstructorConfig())
    names = []
    for i, frame in enumerate(clip.rgb[:3]):
        rec.feed(1_000_000_000 + i * DT, frame)
        names.append(cached.name)
    assert names == ["onnxruntime"] * 3


# --------------------------------------------------------------------------- the cache
def test_second_load_hits_the_cache(tiny, cache_dir, exported, caplog):
    before = exported.path.read_bytes()
    with caplog.at_level(logging.INFO):
        again = onnx_graph_cache.ensure_graph(copy.deepcopy(tiny), H, W, cache_dir)
        backend, graph = onnx_graph_cache.open_cached(tiny, H, W, 1, cache_dir)
    assert not again.exported and not graph.exported and graph.seconds == 0.0
    assert again.path == graph.path == exported.path and again.key == exported.key
    assert exported.path.read_bytes() == before
    assert "from the cache" in caplog.text and "exported the ONNX graph" not in caplog.text
    assert onnx_graph_cache.graph_key(backend.session) == exported.key
    assert not list(cache_dir.glob(".*.tmp")), "no temporary file is left"


def test_key_follows_weights_size_and_code(tiny, monkeypatch):
    key = onnx_graph_cache.cache_key(tiny, H, W)
    assert onnx_graph_cache.cache_key(copy.deepcopy(tiny), H, W) == key
    changed = copy.deepcopy(tiny)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert onnx_graph_cache.cache_key(changed, H, W) != key
    assert onnx_graph_cache.cache_key(tiny, H, W + 16) != key
    assert onnx_graph_cache.cache_key(tiny, H, W, opset=18) != key
    monkeypatch.setattr(onnx_graph_cache, "code_fingerprint", lambda: "edited model code")
    assert onnx_graph_cache.cache_key(tiny, H, W) != key
    name = onnx_graph_cache.graph_path(tiny, H, W, "/x", key).name
    assert name.startswith(f"tiny_net{H}x{W}_") and name.endswith(".onnx")


@pytest.mark.parametrize("damage", ["truncated", "other key"])
def test_an_unusable_cache_file_is_replaced(tiny, cache_dir, exported, damage, caplog):
    import onnx

    if damage == "truncated":  # e.g. a full disk under an older, non-atomic writer
        good = exported.path.read_bytes()
        exported.path.write_bytes(good[: len(good) // 3])
    else:  # a valid graph under this key's name, recorded with another key (renamed file)
        proto = onnx.load(str(exported.path))
        for prop in proto.metadata_props:
            if prop.key == "unihoi_provenance":
                prop.value = "unihoi_ros onnx cache key 0123"
        onnx.save(proto, str(exported.path))
    with caplog.at_level(logging.WARNING):
        backend, graph = onnx_graph_cache.open_cached(tiny, H, W, 1, cache_dir)
    assert graph.exported and graph.path == exported.path
    assert "unusable" in caplog.text and str(exported.path) in caplog.text
    assert onnx_graph_cache.graph_key(backend.session) == exported.key


def test_export_failure_leaves_torch_serving(tiny, tmp_path, clip, monkeypatch, caplog):
    import unihoi_ros.model.export as export

    def broken(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::frobnicate' is not supported")

    monkeypatch.setattr(export, "export_any_size_onnx", broken)
    cached = OnnxRouterBackend(tiny, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        assert not cached.prepare((H, W))
    assert cached.status((H, W)) == "failed" and cached.name == "torch"
    assert "frobnicate" in cached.describe() and "frobnicate" in caplog.text
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*.tmp"))
    assert_same_results(stream(cached, clip.rgb[:5]), stream(TorchBackend(tiny, "cpu"),
                                                             clip.rgb[:5]), tol=1e-6)
    with pytest.raises(BackendError, match="frobnicate"):
        onnx_graph_cache.open_cached(tiny, H, W, directory=tmp_path)


def test_a_runtime_failure_falls_back_to_torch_for_that_size(tiny, cache_dir, exported, clip,
                                                             caplog):
    cached = OnnxRouterBackend(tiny, threads=1, cache_dir=cache_dir)
    assert cached.prepare((H, W))

    def boom(*args, **kwargs):
        raise RuntimeError("injected ONNX Runtime failure")

    from unihoi_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    with caplog.at_level(logging.ERROR), pytest.MonkeyPatch.context() as mp:
        # every session: the graphs' any-size ones and those specialised to the size
        mp.setattr(OnnxRuntimeBackend, "infer_window", boom)
        ours = stream(cached, clip.rgb[:5])  # frames encoded for ONNX Runtime: torch encodes
    assert cached.status((H, W)) == "failed" and cached.status((H, W), 2) == "failed"
    assert "injected" in caplog.text
    assert_same_results(ours, stream(TorchBackend(tiny, "cpu"), clip.rgb[:5]))


def test_prune_keeps_the_most_recent(tmp_path):
    import os
    import time

    for i in range(5):
        p = tmp_path / f"tiny_1x1_{i}.onnx"
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    stale = tmp_path / ".tiny_1x1_9.abc.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    removed = onnx_graph_cache.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_1x1_3.onnx", "tiny_1x1_4.onnx"]
    assert len(removed) == 4
    assert onnx_graph_cache.clear(tmp_path) == 2 and not list(tmp_path.iterdir())


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIHOI_CACHE_DIR", str(tmp_path / "c"))
    assert onnx_graph_cache.onnx_cache_dir() == tmp_path / "c" / "onnx"
    monkeypatch.delenv("UNIHOI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_graph_cache.onnx_cache_dir() == tmp_path / "xdg" / "unihoi_ros" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_graph_cache.onnx_cache_dir() == tmp_path / "home" / ".cache" / "unihoi_ros" / "onnx"


# --------------------------------------------------------------------------- selection
def test_auto_picks_the_cached_graph_on_the_cpu_unless_turned_off(tiny, monkeypatch, caplog):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: auto picks a CUDA backend")
    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    with caplog.at_level(logging.INFO):
        sel = select_backend("auto", model=tiny, device="cpu", threads=1)
    assert sel.choice == "onnxruntime-cpu-cached" and isinstance(sel.backend, OnnxRouterBackend)
    assert sel.backend.threads == 1 and "onnxruntime-cpu" in sel.skipped
    assert "backend: onnxruntime-cpu-cached" in caplog.text
    assert select_backend("torch", model=tiny).choice == "torch-cpu"
    with pytest.raises(RuntimeError, match="no ONNX file"):  # explicit: a given graph only
        select_backend("onnxruntime", model=tiny)
    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "0")
    sel = select_backend("auto", model=tiny, device="cpu")
    assert sel.choice == "torch-cpu"
    assert "UNIHOI_ONNX_CACHE=0" in sel.skipped["onnxruntime-cpu-cached"]
    loaded = LoadedBackend(sel.backend, "tiny", False, "fp32", sel)
    assert "not onnxruntime-cpu-cached: turned off by UNIHOI_ONNX_CACHE=0" in loaded.describe()


def test_auto_status_reasons(tiny, monkeypatch):
    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    assert auto_status(tiny, "cpu")[0]
    assert auto_status(tiny, "cuda")[1].startswith("device cuda")
    assert auto_status(None, "cpu")[1] == "no torch model to export"
    vit = SimpleNamespace(config=SimpleNamespace(size="vits14", frames=4))
    ok, reason = auto_status(vit, "cpu")
    assert not ok and "slower than torch for vits14" in reason


def test_load_backend_start_up_description(monkeypatch, exported, cache_dir):
    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    monkeypatch.setenv("UNIHOI_CACHE_DIR", str(cache_dir.parent))
    loaded = load_backend("random:tiny", "auto", "cpu", threads=1)
    assert loaded.selection.choice == "onnxruntime-cpu-cached"
    assert "at the first frame of each encoder input size" in loaded.describe()
    assert loaded.prepare((H, W), tail_frames=3) and loaded.name == "onnxruntime"
    for n in (4, 2, 3):  # full window, last 2 (stride 1), last 3 (the stride-2 tail asked)
        assert loaded.backend.status((H, W), n) == "ready"
    text = loaded.describe()
    assert "chosen: onnxruntime-cpu-cached" in text and "from the cache" in text
    assert loaded.model is not None  # the torch network stays available


# --------------------------------------------------------------------------- the node
@pytest.mark.parametrize("case", ["fixed size", "4:3 camera", "new aspect ratio"])
def test_node_runs_the_default_backend_and_says_which(monkeypatch, exported, cache_dir, case):
    """The node's default (auto, CPU). Before the node says "ready" the graphs are ready
    for a fixed processing size, and for every 4:3 and 16:9 camera; a camera of another
    aspect ratio prepares its graph at the first frame (replay: it waits; live: torch
    serves meanwhile). Every frame is published; the start-up line and the diagnostics
    name the backend that serves and why."""
    pytest.importorskip("rosbags")
    from unihoi_ros.ros import messages as M
    from unihoi_ros.ros.node import UnihoiNode
    from unihoi_ros.ros.params import NodeParams
    from unihoi_ros.ros.transport import MemoryTransport

    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    monkeypatch.setenv("UNIHOI_CACHE_DIR", str(cache_dir.parent))
    size = (H, H) if case == "new aspect ratio" else (H, W)
    clip = make_sequence(3, 5, *size)
    overrides = {"model": "random:tiny", "live_mode": False, "inference_threads": 1}
    if case == "fixed size":
        overrides.update(process_height=H, process_width=W)
    params = NodeParams.load(overrides=overrides)
    backend = load_backend(params.model, params.backend, params.device, threads=1)
    transport = MemoryTransport()
    node = UnihoiNode(params, backend, transport)
    node.start()
    try:
        summary = node.startup_summary()
        assert "chosen: onnxruntime-cpu-cached" in summary
        assert backend.backend.background is False  # replay: a new size waits for its graph
        assert "backend onnxruntime on cpu" in summary, summary
        ready_before = backend.backend.status(size) == "ready"
        assert ready_before == (case != "new aspect ratio")
        for i, rgb in enumerate(clip.rgb):
            transport.inject("image", M.rgb_to_image(rgb, 1_000_000_000 + i * DT, "cam"))
        assert node.wait_idle(60)
        assert backend.backend.status(size) == "ready" and backend.name == "onnxruntime"
        assert node.stats()["published"] == len(clip.rgb)
        assert "ONNX Runtime" in transport.spin_diagnostics().values["Backend"]
        assert tuple(backend.backend.model.network_input_shape(*size)) in backend.recent_sizes()
    finally:
        node.stop()


def test_a_fresh_install_serves_the_bundled_model_without_an_export(monkeypatch, tmp_path):
    """An empty cache (a lab's first launch): the node loads the shipped graphs before it
    says ready, names ONNX Runtime as the backend that serves, and writes no export."""
    pytest.importorskip("rosbags")
    from unihoi_ros.ros.node import UnihoiNode
    from unihoi_ros.ros.params import NodeParams
    from unihoi_ros.ros.transport import MemoryTransport

    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    monkeypatch.setenv("UNIHOI_CACHE_DIR", str(tmp_path))
    params = NodeParams.load(overrides={"live_mode": True, "inference_threads": 1})
    backend = load_backend(params.model, params.backend, params.device, threads=1)
    node = UnihoiNode(params, backend, MemoryTransport())
    node.start()
    try:
        summary = node.startup_summary()
        assert "backend onnxruntime on cpu" in summary and "shipped with the package" in summary
        for size in ((480, 640), (720, 1280), (120, 160), (256, 456)):
            assert backend.backend.status(size) == backend.backend.status(size, 2) == "ready"
        assert not list(tmp_path.rglob("*.onnx"))
    finally:
        node.stop()


def test_a_live_node_prepares_new_sizes_in_the_background(monkeypatch, cache_dir):
    pytest.importorskip("rosbags")
    from unihoi_ros.ros.node import UnihoiNode
    from unihoi_ros.ros.params import NodeParams
    from unihoi_ros.ros.transport import MemoryTransport

    monkeypatch.setenv("UNIHOI_ONNX_CACHE", "1")
    monkeypatch.setenv("UNIHOI_CACHE_DIR", str(cache_dir.parent))
    params = NodeParams.load(overrides={"model": "random:tiny", "live_mode": True})
    backend = load_backend(params.model, params.backend, params.device, threads=1)
    UnihoiNode(params, backend, MemoryTransport())  # not started: only the wiring
    assert backend.backend.background is True
