"""The ``unihoi`` command line.

Each subcommand lives in the module that owns its work and registers itself through a
``register(subparsers)`` function; this file only wires them together, importing each
lazily so that ``unihoi --help`` stays fast and works without optional dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules providing ``register(subparsers)``; each adds one or more subcommands.
COMMAND_MODULES = (
    "unihoi_ros.commands.demo",
    "unihoi_ros.commands.model",
    "unihoi_ros.commands.run",
    "unihoi_ros.commands.process",
    "unihoi_ros.commands.evaluate",
    "unihoi_ros.commands.engine",
    "unihoi_ros.commands.train",
    "unihoi_ros.commands.adapt",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unihoi",
        description="UniHOI egocentric 4D reconstruction: demo, run, process, eval, train, "
        "adapt, export, build-engine.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(levelname)s] %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
