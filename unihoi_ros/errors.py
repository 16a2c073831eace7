"""The package's exception hierarchy: every error it raises on purpose derives from
:class:`UnihoiError`, so an entry point can tell a user's problem (one clear line, exit
code 2) from a bug (a traceback).

Each class also derives from the built-in exception callers caught before the hierarchy
existed (``ValueError``, ``FileNotFoundError``, ...), so ``except ValueError`` still works.
"""

from __future__ import annotations


class UnihoiError(Exception):
    """Root of the errors the package raises on purpose (a problem with the input, the
    configuration or the installation, not a bug)."""


class ConfigError(UnihoiError, ValueError):
    """A parameter, option or parameter file is invalid (names the parameter)."""


class ModelError(UnihoiError, RuntimeError):
    """A model or checkpoint cannot be loaded (missing, corrupt, wrong layout)."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model file or bundled model name does not exist."""


class BackendError(UnihoiError, RuntimeError):
    """No usable inference backend, or an engine that does not match its model."""


class InferenceError(BackendError):
    """The backend failed on one frame or window (``encode`` / ``infer_window`` raised):
    the reconstructor resets the stream and drops the frame; anything else that fails in
    the pipeline is a bug and propagates with its traceback."""


class TransformUnavailableError(UnihoiError, LookupError):
    """A transform the node needs (``base_frame``: camera -> base) is not known at a
    frame's stamp (not broadcast yet, or outside the tf2 buffer's time range)."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (multi-line messages joined with ``"; "``)."""
    text = str(exc).strip() or type(exc).__name__
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())
