"""Checkpoint loaders and our safetensors format: round trips and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from unihoi_ros.commands.model import model_info, part_counts
from unihoi_ros.model import CheckpointError, UniHOI, load_egomono4d, save_pretrained
from unihoi_ros.model.checkpoint import load_unidepth_encoder, rule_tensor


def _lightning(model: UniHOI) -> dict:
    sd = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    sd["model.backbone.camera_token_projector_list.0.layers.0.0.norm.weight"] = torch.ones(3)
    sd["flow_predictor.conv.weight"] = torch.zeros(1)
    return {"state_dict": sd}


@pytest.fixture(scope="module")
def tiny() -> UniHOI:
    torch.manual_seed(0)
    return UniHOI.from_size("tiny").eval()


def test_lightning_round_trip_ignores_wrapper_keys(tiny, tmp_path, caplog):
    path = tmp_path / "tiny.ckpt"
    torch.save(_lightning(tiny), path)
    other = UniHOI.from_size("tiny")
    with caplog.at_level("INFO"):
        load_egomono4d(other, path)
    assert "flow_predictor." in caplog.text and "camera_token_projector_list" in caplog.text
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_lightning_errors_name_the_keys(tiny, tmp_path, damage):
    ckpt = _lightning(tiny)
    sd = ckpt["state_dict"]
    key = "model.backbone.dino_projector.0.weight"
    if damage == "missing":
        del sd[key]
    elif damage == "unexpected":
        sd["model.backbone.extra_head.weight"] = torch.zeros(2)
        key = "backbone.extra_head.weight"
    else:
        sd[key] = torch.zeros(3, 3)
    path = tmp_path / "bad.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as err:
        load_egomono4d(UniHOI.from_size("tiny"), path)
    msg = str(err.value)
    assert key.removeprefix("model.") in msg
    assert {"missing": "missing", "unexpected": "unexpected", "shape": "mis-shaped"}[damage] in msg


def test_unidepth_encoder_loader(tiny, tmp_path):
    sd = {f"module.pixel_encoder.{k}": v for k, v in tiny.encoder.state_dict().items()}
    sd["module.pixel_decoder.whatever.weight"] = torch.zeros(1)
    torch.save({"model": sd}, tmp_path / "ud.pth")
    other = UniHOI.from_size("tiny")
    load_unidepth_encoder(other, tmp_path / "ud.pth")
    for k, v in tiny.encoder.state_dict().items():
        assert torch.equal(v, other.encoder.state_dict()[k])
    del sd["module.pixel_encoder.norm.bias"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"norm\.bias"):
        load_unidepth_encoder(other, tmp_path / "bad.pth")


def test_safetensors_round_trip(tiny, tmp_path):
    path = save_pretrained(tiny, tmp_path / "unihoi-tiny", provenance="unit test")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["size"] == "tiny" and meta["provenance"] == "unit test"
    assert meta["input_size"] == [120, 160] and meta["version"] == 1
    loaded = UniHOI.from_pretrained(path)
    path.with_suffix(".json").unlink()  # the embedded metadata suffices
    loaded2 = UniHOI.from_pretrained(str(path))
    frames, flows = torch.rand(1, 4, 3, 64, 80), torch.zeros(1, 3, 2, 64, 80)
    with torch.inference_mode():
        a, b, c = tiny(frames, flows), loaded(frames, flows), loaded2(frames, flows)
    assert torch.equal(a.depth, b.depth) and torch.equal(a.depth, c.depth)
    (tmp_path / "dir").mkdir()
    d = save_pretrained(tiny, tmp_path / "dir")
    assert d.name == "model.safetensors"
    assert UniHOI.from_pretrained(tmp_path / "dir").config.size == "tiny"


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="unknown pretrained model name 'unihoi-nope'"):
        UniHOI.from_pretrained("unihoi-nope")


def test_rule_tensor_follows_the_readme():
    assert (rule_tensor("a.ls1.gamma", (4,)) == 0.1).all()
    v = rule_tensor("x.running_var", (5,))
    assert (v >= 1).all()
    w = rule_tensor("x.weight", (3,))
    assert abs(float(w.mean()) - 1) < 0.1
    m = rule_tensor("x.weight", (64, 32))
    assert abs(float(m.std()) * 32**0.5 - 1) < 0.1
    assert rule_tensor("x.num_batches_tracked", (), "int64").dtype.kind == "i"


def test_model_info_matches_layouts(shared_dir):
    for size, name in (("vitl14", "large"), ("vits14", "small")):
        layout = json.loads(
            (shared_dir / "reference" / "egomono4d" / f"egomono4d-{name}-layout.json").read_text()
        )
        ref = part_counts([(k, tuple(s)) for k, s, _ in layout["params"]])
        info = model_info(size)
        for part, n in info["parts"].items():
            assert n == ref[part], (size, part)
        assert (
            info["left_out_unused"]["camera_token_projector_list"]
            == ref["camera_token_projector_list"]
        )
        assert info["total_numbers"] + ref["camera_token_projector_list"] == layout["total_params"]
