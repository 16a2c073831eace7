"""CLI subcommands, one module each (registered in :mod:`unihoi_ros.cli`)."""

from __future__ import annotations

import argparse
import sys


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a bad value exits 2 with argparse's usage line)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """argparse type: ``HxW`` -> ``(height, width)``
    (:func:`unihoi_ros.pipeline.settings.parse_size`)."""
    from unihoi_ros.errors import ConfigError
    from unihoi_ros.pipeline.settings import parse_size

    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def usage_error(command: str, exc: BaseException) -> int:
    """A command line the subcommand cannot run (a value out of range, flags that exclude
    each other): one line on stderr and exit status 2, as argparse does."""
    from unihoi_ros.errors import one_line

    print(f"unihoi {command}: error: {one_line(exc)}", file=sys.stderr, flush=True)
    return 2


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
