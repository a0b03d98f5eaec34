"""The ``s2sim`` command line: one module per command, each with ``register(subparsers)``.

A command module adds its own sub-parser and sets ``func`` on it; this file only dispatches, so commands stay
independent and their heavy imports happen only when that command runs. Options every command has (``--strict``,
``--memory-budget``) are added here.

Exit status: 0 success, 1 a negative result (e.g. a conformance mismatch), 2 an error (bad input, an unreadable
file, a refused resource, a warning under ``--strict``), 3 an internal error (a bug in s2sim), 130 Ctrl-C.
Warnings (:class:`~s2sim.errors.S2SimWarning`) are printed as ``s2sim CMD: warning: ...``, once per subject.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import sysconfig
import traceback
import warnings
from typing import Any, Sequence

from ..errors import S2SimError, S2SimWarning

#: Command modules in the order ``s2sim --help`` lists them.
COMMANDS = ("demo", "convert", "run", "plot", "conform", "execute")

EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_UNSET = object()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2sim", description="Bit-exact SpiNNaker2 simulator and deployment SDK.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for command in sub.choices.values():
        _add_common_options(command)
    return parser


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("checks")
    group.add_argument("--strict", action="store_true",
                       help="fail (exit 2) on any s2sim warning: weights that all round to zero, time constants "
                            "shorter than dt, a graph without dt metadata, ...")
    group.add_argument("--memory-budget", metavar="SIZE", default=None,
                       help="refuse steps whose estimated memory exceeds SIZE (bytes, or e.g. 512M, 4G); default: "
                            "the memory available on this machine")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    from .. import memory

    printer = _WarningPrinter(args.command)
    restore: Any = _UNSET
    try:
        with warnings.catch_warnings(), printer:
            warnings.simplefilter("error" if args.strict else "always", S2SimWarning)
            if args.memory_budget is not None:
                restore = memory.set_budget(args.memory_budget)
            return int(args.func(args) or EXIT_OK)
    except S2SimError as exc:
        return _fail(args.command, f"error: {exc}", EXIT_ERROR)
    except S2SimWarning as exc:  # --strict
        return _fail(args.command, f"error: {exc} [{type(exc).__name__}, an error in strict mode]", EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: say so plainly, with the details a report needs
        detail = "".join(traceback.format_exception(exc)) if os.environ.get("S2SIM_TRACEBACK") else \
            "set S2SIM_TRACEBACK=1 to see the traceback"
        return _fail(args.command, f"internal error (a bug in s2sim; please report it): {type(exc).__name__}: "
                                   f"{exc}\n{detail}", EXIT_BUG)
    finally:
        if restore is not _UNSET:
            memory.set_budget(restore)


def _fail(command: str, message: str, code: int) -> int:
    print(f"s2sim {command}: {message}", file=sys.stderr)
    return code


class _WarningPrinter:
    """While active, s2sim warnings are printed as ``s2sim CMD: warning: [file:line: ]message [Category]``, once
    per (category, subject): the conversion and the lowering of the same projection report the same problem. The
    file and line are shown when they are the user's (a script run by ``s2sim exec``), not s2sim's or Python's.
    Other warnings are shown as Python shows them."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.seen: set[tuple[type, str]] = set()
        paths = sysconfig.get_paths()  # the console script that calls main() is no user's line either
        self._hidden = tuple(os.path.abspath(p) + os.sep for p in (os.path.dirname(os.path.dirname(__file__)),
                                                                   paths["stdlib"], paths["scripts"]))

    def __enter__(self) -> "_WarningPrinter":
        self._show = warnings.showwarning
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc: Any) -> None:
        warnings.showwarning = self._show

    def show(self, message: Any, category: type, filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if not issubclass(category, S2SimWarning):
            self._show(message, category, filename, lineno, file, line)
            return
        _hand_on(warnings.WarningMessage(message, category, filename, lineno, file, line))
        key = (category, getattr(message, "subject", "") or str(message))
        if key in self.seen:
            return
        self.seen.add(key)
        where = "" if filename.startswith("<") or os.path.abspath(filename).startswith(self._hidden) else \
            f"{filename}:{lineno}: "
        print(f"s2sim {self.command}: warning: {where}{message} [{category.__name__}]", file=sys.stderr)


def _hand_on(msg: warnings.WarningMessage) -> None:
    """Give the warning to whoever records warnings around main() (``catch_warnings(record=True)``,
    ``pytest.warns``): a replaced ``showwarning`` would otherwise hide it from them. CPython keeps the recorder in
    ``warnings._showwarnmsg_impl``; the default there is the warnings module's own printer, which is skipped."""
    impl = getattr(warnings, "_showwarnmsg_impl", None)
    if impl is not None and getattr(impl, "__module__", None) != "warnings":
        impl(msg)
