"""Pick and build an inference backend from a model reference.

``model`` is one of

- a path to our weights (``.safetensors``, its ``.json`` sidecar, or a directory holding
  ``model.safetensors``), loaded with :meth:`UniHOI.from_pretrained`;
- a path to the authors' PyTorch Lightning checkpoint (``.ckpt``/``.pth``/``.pt``), loaded
  strictly with :func:`unihoi_ros.model.checkpoint.load_egomono4d` into the ViT size its
  encoder width names (1024: ``vitl14``, 384: ``vits14``);
- a bundled name such as ``unihoi-tiny`` (``unihoi_ros/model/weights/<name>.safetensors``);
- ``random:<size>`` (``random:tiny``, ``random:vits14``): an untrained network with a fixed
  seed, for tests and benchmarks. Its outputs are meaningless; a warning says so.

:func:`load_backend` returns a typed :class:`~unihoi_ros.backends.base.LoadedBackend`: the
backend plus ``model_source`` (what was loaded, for the start-up line), ``untrained``
(True for ``random:``), ``precision`` and ``selection``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from unihoi_ros.backends.base import LoadedBackend, torch_dtype
from unihoi_ros.errors import ConfigError, ModelError, ModelNotFoundError, one_line
from unihoi_ros.options import BackendName, parse

log = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"
#: Seed of ``random:<size>`` networks (same weights in every process).
RANDOM_SEED = 0
_CKPT_SUFFIXES = (".ckpt", ".pth", ".pt")
# Encoder width -> our size name, for the authors' checkpoints.
_SIZE_OF_WIDTH = {1024: "vitl14", 384: "vits14"}
_CLS_TOKEN = "model.backbone.unidepth.pixel_encoder.cls_token"


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others unchanged.

    Raises:
        ValueError: a CUDA device was asked for but torch has none.
    """
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch sees no CUDA GPU; use cpu")
    return device


def _dtype(precision: str, device: str):
    """:func:`~unihoi_ros.backends.base.torch_dtype` of ``precision`` (None for fp32),
    checked against ``device`` (reduced precision needs CUDA)."""
    precision = (precision or "fp32").lower()
    dtype = torch_dtype(precision)
    if dtype is not None and not device.startswith("cuda"):
        raise ConfigError(f"precision {precision} needs a CUDA device (got {device}); use fp32")
    return dtype


@dataclass(frozen=True)
class ModelSpec:
    """What a ``model`` string names (module docstring), parsed once for every user.

    Attributes:
        text: the string as given (stripped).
        kind: ``"random"``, ``"checkpoint"`` (the authors' ``.ckpt``/``.pth``/``.pt``),
            ``"weights"`` (a path to our safetensors) or ``"bundled"`` (a bundled name).
        path: the file (``.json`` sidecars name their ``.safetensors``); for a bundled name
            the name itself (resolved by :meth:`weights_file`); None for ``random:``.
        size: the ``random:`` network's size (default ``tiny``), else None.
    """

    text: str
    kind: str
    path: Path | str | None = None
    size: str | None = None

    def weights_file(self) -> Path | None:
        """The file holding the network's weights (None for ``random:``).

        Raises:
            ModelNotFoundError: the file, or the bundled name, does not exist.
        """
        if self.kind == "random":
            return None
        if self.kind == "checkpoint":
            if not Path(self.path).is_file():
                raise ModelNotFoundError(f"checkpoint not found: {self.path}")
            return Path(self.path)
        from unihoi_ros.model.checkpoint import resolve_pretrained

        try:
            return resolve_pretrained(self.path)
        except FileNotFoundError as exc:
            raise ModelNotFoundError(str(exc)) from None


def parse_model_spec(model: str) -> ModelSpec:
    """The :class:`ModelSpec` of a ``model`` string (no file is read).

    Raises:
        ModelNotFoundError: a path (it has a suffix or a ``/``) that does not exist.
    """
    spec = str(model).strip()
    if spec.startswith(RANDOM_PREFIX):
        return ModelSpec(spec, "random", size=spec[len(RANDOM_PREFIX):] or "tiny")
    path = Path(spec).expanduser()
    if path.suffix.lower() in _CKPT_SUFFIXES:
        return ModelSpec(spec, "checkpoint", path)
    if path.suffix.lower() == ".json":
        path = path.with_suffix(".safetensors")
    if path.suffix != "" or "/" in spec or path.exists():
        if not path.exists():
            raise ModelNotFoundError(f"model file not found: {path}")
        return ModelSpec(spec, "weights", path)
    return ModelSpec(spec, "bundled", spec)


def model_files_sha256(model: str, onnx_file: str | None = None,
                       engine_file: str | None = None) -> str:
    """Hex sha256 of what defines the network's function: the weights file (and its
    sidecar config) for a path or a bundled name, the name and seed for ``random:<size>``,
    plus the ONNX graph and TensorRT engine when given. (Not
    :func:`~unihoi_ros.backends.onnx_graph_cache.model_fingerprint`, which hashes a loaded
    network's tensors.)

    Raises:
        FileNotFoundError: the model (or a given graph/engine file) does not exist.
    """
    import hashlib

    from unihoi_ros.backends.engine_record import file_sha256

    h = hashlib.sha256()
    parsed = parse_model_spec(model)
    path = parsed.weights_file()
    if path is None:
        h.update(f"{parsed.text}|seed={RANDOM_SEED}".encode())
    else:
        h.update(file_sha256(path).encode())
        sidecar = path.with_suffix(".json")
        if sidecar.is_file() and sidecar != path:
            h.update(file_sha256(sidecar).encode())
    for extra in (onnx_file, engine_file):
        if extra:
            h.update(file_sha256(Path(extra)).encode())
    return h.hexdigest()


def load_network(model: str):
    """The UniHOI network ``model`` names (see module docstring) and a description.

    Returns:
        ``(network, description, untrained)``.

    Raises:
        FileNotFoundError: a path that does not exist, or an unknown bundled name.
        ValueError: an unknown ``random:`` size.
        unihoi_ros.model.checkpoint.CheckpointError: the file does not fit the network.
    """
    import torch

    from unihoi_ros.model import UniHOI

    parsed = parse_model_spec(model)
    spec = parsed.text
    if parsed.kind == "random":
        with torch.random.fork_rng(devices=[]):  # fixed weights, caller's RNG untouched
            torch.manual_seed(RANDOM_SEED)
            net = UniHOI.from_size(parsed.size)
        log.warning(
            "MODEL %s IS UNTRAINED: random weights (seed %d); depth, poses and confidence "
            "are meaningless - use it for tests and timing only", spec, RANDOM_SEED,
        )
        return net.eval(), f"{spec} (untrained, size {parsed.size})", True
    if parsed.kind == "checkpoint":
        path = parsed.weights_file()
        return (_read_model_file(path, _load_authors_checkpoint), f"{path} (authors' checkpoint)",
                False)
    try:
        net = _read_model_file(parsed.path, UniHOI.from_pretrained)
    except FileNotFoundError as exc:
        raise ModelNotFoundError(
            f"{exc}. Pass --model PATH (our .safetensors or the authors' .ckpt), or "
            f"random:tiny for an untrained network (tests and timing only)."
        ) from None
    return net, f"{spec} ({parsed.kind}, size {net.config.size})", False


def _read_model_file(path, loader):
    """``loader(path)``; a file that exists but cannot be read (truncated, not a model,
    wrong layout) raises :class:`ModelError` naming it and what was wrong."""
    try:
        return loader(path)
    except (FileNotFoundError, ModelError):
        raise
    except Exception as exc:  # safetensors, torch.load, json: each has its own errors
        raise ModelError(f"cannot read model {path}: {one_line(exc)} (corrupt or not a "
                         "unihoi / authors' checkpoint?)") from exc


def _load_authors_checkpoint(path: Path):
    import torch

    from unihoi_ros.model import UniHOI
    from unihoi_ros.model.checkpoint import CheckpointError, load_egomono4d

    raw = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    sd = raw.get("state_dict", raw) if isinstance(raw, dict) else {}
    cls = sd.get(_CLS_TOKEN)
    width = int(cls.shape[-1]) if cls is not None else None
    if width not in _SIZE_OF_WIDTH:
        raise CheckpointError(
            f"{path}: cannot tell the encoder size ({_CLS_TOKEN} width {width}; expected "
            f"one of {sorted(_SIZE_OF_WIDTH)})"
        )
    del raw, sd
    with torch.device("meta"):
        net = UniHOI.from_size(_SIZE_OF_WIDTH[width])
    load_egomono4d(net, path)
    return net.eval()


def load_backend(
    model: str, backend: str = "auto", device: str = "auto", precision: str = "fp32",
    onnx_path: str | None = None, engine_path: str | None = None,
    force_engine_update: bool = False, threads: int = 0, mirror_average: bool = False,
) -> LoadedBackend:
    """Build the inference backend for ``model`` (see module docstring).

    Args:
        model: path, bundled name or ``random:<size>`` (the torch network; also the model
            configuration a TensorRT engine's record must match).
        backend: ``auto`` (TensorRT > ONNX Runtime CUDA > torch CUDA > ONNX Runtime CPU >
            ONNX Runtime CPU on the model's cached export (small model) > torch CPU, by what
            is given and present: :func:`~unihoi_ros.backends.select.select_backend` logs
            the choice and why), ``tensorrt``, ``onnxruntime`` or ``torch``.
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``fp32``, or ``fp16``/``bf16`` on CUDA.
        onnx_path: graph from ``unihoi export`` (ONNX Runtime; TensorRT builds from it).
        engine_path: TensorRT engine (built from ``onnx_path`` when missing).
        force_engine_update: rebuild the engine from ``onnx_path`` even if it exists.
        threads: ONNX Runtime intra-op threads on the CPU (the node passes its thread
            policy's; 0: ONNX Runtime's default for a given graph, torch's thread count for
            the cached export).
        mirror_average: run the network on each window and on its mirror image and
            average the two (:class:`~unihoi_ros.backends.mirror.MirrorAveragedBackend`;
            twice the network's cost).

    Returns:
        a :class:`~unihoi_ros.backends.base.LoadedBackend`: the backend and what was
        loaded (``model_source``, ``untrained``, ``precision``, ``selection``).

    Raises:
        ValueError: an unknown backend, device or precision.
        FileNotFoundError: the model cannot be found (the message says what to pass).
        RuntimeError: no requested backend is usable here (the message says why).
    """
    from unihoi_ros.backends.select import BACKENDS, select_backend

    name = (backend or "auto").strip().lower()
    if parse(BackendName, name) is None:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    _dtype(precision, dev)  # validates the precision for the device
    net, description, untrained = load_network(model)
    selection = select_backend(name, model=net, onnx_path=onnx_path or None,
                               engine_path=engine_path or None, device=dev,
                               precision=(precision or "fp32").lower(),
                               force_engine_update=force_engine_update, threads=threads)
    serving = selection.backend
    if mirror_average:
        from unihoi_ros.backends.mirror import MirrorAveragedBackend

        serving = MirrorAveragedBackend(serving)
    return LoadedBackend(serving, description, untrained, (precision or "fp32").lower(),
                         selection)
