"""The record kept beside every TensorRT engine, and the check run before loading one.

Stale engines (built by another TensorRT version, for another GPU, or from another ONNX
file) are the most common failure of TensorRT deployments: an engine is only valid for
the exact TensorRT version and GPU it was built on. So ``<engine>.json`` records what the
engine was built from and on, and :func:`check_engine` refuses a mismatch with an error
that names every difference (rebuilding only when asked).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unihoi_ros.errors import BackendError

RECORD_VERSION = 1


class EngineError(BackendError):
    """An engine file that cannot be used (missing, corrupt, or not matching its record)."""


class EngineMismatchError(EngineError):
    """The engine was built for another TensorRT, GPU, model or input size."""

    def __init__(self, differences: list[str], engine_path: Path) -> None:
        self.differences = differences
        lines = "\n  - ".join(differences)
        super().__init__(
            f"TensorRT engine {engine_path} does not match this system or model:\n  - {lines}\n"
            "Rebuild it (`unihoi build-engine --rebuild ...` or the node parameter "
            "force_engine_update:=true)."
        )


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class EngineRecord:
    """What an engine was built from and on.

    Attributes:
        tensorrt_version: ``tensorrt.__version__`` at build time.
        gpu_name: CUDA device name (e.g. ``"NVIDIA H100 80GB HBM3"``, ``"Orin"``).
        compute_capability: ``"8.7"`` style string.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        input_size: ``[height, width]`` of the frames the engine takes.
        model_config: the network configuration (``ModelConfig.to_dict()``).
        onnx_sha256: hash of the ONNX file the engine was built from.
        engine_sha256: hash of the serialized engine (detects truncated/replaced files).
        created: build time (UTC, ISO 8601).
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_size: list[int]
    model_config: dict
    onnx_sha256: str
    engine_sha256: str = ""
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime()))
    record_version: int = RECORD_VERSION

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> EngineRecord:
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise EngineError(f"engine record {path} is unreadable: {exc}") from exc


def record_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return Path(str(engine_path) + ".json")


@dataclass
class RuntimeInfo:
    """The running system as it matters for engine compatibility."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


def compare(record: EngineRecord, runtime: RuntimeInfo, *, model_config: dict | None = None,
            input_size: list[int] | None = None, precision: str | None = None,
            onnx_sha256: str | None = None) -> list[str]:
    """Human-readable differences between an engine's record and what is wanted now.

    ``None`` arguments are not checked (e.g. no ONNX file at hand).
    """
    diffs = []

    def check(name: str, built, now) -> None:
        if now is not None and built != now:
            diffs.append(f"{name}: engine has {built!r}, running/requested {now!r}")

    check("TensorRT version", record.tensorrt_version, runtime.tensorrt_version)
    check("GPU", record.gpu_name, runtime.gpu_name)
    check("compute capability", record.compute_capability, runtime.compute_capability)
    check("precision", record.precision, precision)
    check("input size [H, W]", list(record.input_size),
          None if input_size is None else list(input_size))
    check("ONNX file sha256", record.onnx_sha256, onnx_sha256)
    if model_config is not None:
        # Through JSON both sides hold lists where configs hold tuples.
        built, now = _as_json(record.model_config), _as_json(model_config)
        keys = sorted(set(built) | set(now))
        changed = [k for k in keys if built.get(k) != now.get(k)]
    if model_config is not None and changed:
        diffs.append(f"model config differs in {', '.join(changed)}")
    return diffs


def _as_json(d: dict) -> dict:
    return json.loads(json.dumps(d))


def check_engine(engine_path: str | Path, runtime: RuntimeInfo, **wanted) -> EngineRecord:
    """Validate ``engine_path`` against its record and the running system.

    Raises:
        EngineError: engine or record missing/unreadable, or the engine file's bytes do not
            match the record (truncated, corrupt or replaced).
        EngineMismatchError: built for another TensorRT/GPU/model/size (every difference
            is named).
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise EngineError(f"TensorRT engine {engine_path} does not exist")
    rpath = record_path(engine_path)
    if not rpath.is_file():
        raise EngineError(f"{engine_path} has no record {rpath.name}: it was not built by "
                          "`unihoi build-engine`; rebuild it so it can be checked")
    record = EngineRecord.load(rpath)
    if record.engine_sha256 and file_sha256(engine_path) != record.engine_sha256:
        raise EngineError(f"{engine_path} does not match its record (truncated, corrupt or "
                          "replaced): rebuild it")
    diffs = compare(record, runtime, **wanted)
    if diffs:
        raise EngineMismatchError(diffs, engine_path)
    return record
