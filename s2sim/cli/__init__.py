"""The ``s2sim`` command line: one module per command, each with ``register(subparsers)``.

A command module adds its own sub-parser and sets ``func`` on it; this file only dispatches, so commands stay
independent and their heavy imports happen only when that command runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import S2SimError

#: Command modules in the order ``s2sim --help`` lists them.
COMMANDS = ("demo", "convert", "run", "plot", "conform", "execute")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2sim", description="Bit-exact SpiNNaker2 simulator and deployment SDK.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # exit status: 0 success, 1 a negative result (e.g. a conformance mismatch), 2 an error
    try:
        return int(args.func(args) or 0)
    except S2SimError as exc:
        print(f"s2sim {args.command}: error: {exc}", file=sys.stderr)
        return 2

