"""The ``s2sim`` command line: one module per command, each with ``register(subparsers)``.

A command module adds its own sub-parser and sets ``func`` on it; this file only dispatches, so commands stay
independent and their heavy imports happen only when that command runs. Options every command has (``--strict``,
``--memory-budget``) are added here.

Exit status: 0 success, 1 a negative result (e.g. a conformance mismatch), 2 an error (bad input, an unreadable
file, a refused resource, a warning under ``--strict``), 3 an internal error (a bug in s2sim), 130 Ctrl-C,
141 stdout's reader went away (128 + SIGPIPE, as a C tool stopped by the signal).
Warnings (:class:`~s2sim.errors.S2SimWarning`) are printed as ``s2sim CMD: warning: ...``, once per subject.

stdout carries the command's result only (text or ``--json``); progress bars, step messages (the ``s2sim``
logger) and warnings go to stderr, and ``--quiet`` leaves only warnings and errors there. A reader that stops
early (``s2sim convert m.nir | head``) ends the command quietly, as other Unix tools do.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import sysconfig
import traceback
import warnings
from typing import Any, Sequence

from ..errors import S2SimError, S2SimWarning

#: Command modules in the order ``s2sim --help`` lists them.
COMMANDS = ("demo", "convert", "run", "plot", "conform", "execute")

EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 3, 130, 141
_UNSET = object()


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="s2sim", description="Bit-exact SpiNNaker2 simulator and deployment SDK.")
    parser.add_argument("--version", action="version", version=f"s2sim {__version__}")
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
    out = parser.add_argument_group("messages (all on stderr; stdout holds only the result)")
    out.add_argument("--quiet", "-q", action="store_true",
                     help="no progress bars and no step messages; warnings and errors are still shown")
    out.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                     help="progress bars of long steps (auto: when stderr is a terminal)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a refused option (argparse has printed why, naming it): a status, as for any error
        if exc.code in (0, None):  # --help, --version
            raise
        return EXIT_ERROR
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    from .. import memory, progress

    printer = _WarningPrinter(args.command)
    restore: Any = _UNSET
    saved_mode = progress.set_mode("off" if args.quiet else args.progress)
    try:
        with warnings.catch_warnings(), printer, _StepMessages(args.command, args.quiet):
            warnings.simplefilter("error" if args.strict else "always", S2SimWarning)
            if args.memory_budget is not None:
                restore = memory.set_budget(args.memory_budget)
            code = int(args.func(args) or EXIT_OK)
            sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit where it cannot be handled
            return code
    except BrokenPipeError:
        return _reader_gone()
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
        progress.set_mode(saved_mode)
        if restore is not _UNSET:
            memory.set_budget(restore)


def _reader_gone() -> int:
    """Stop without a traceback when stdout's reader closed the pipe (``| head``).

    stdout is pointed at /dev/null so that the interpreter's final flush of what is still buffered fails silently
    too.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file descriptor (captured in a test): nothing to redirect
        pass
    return EXIT_PIPE


class _StepMessages:
    """Print the ``s2sim`` logger's messages on stderr while active.

    INFO messages (steps of long work, files written) appear as ``s2sim CMD: message``; with ``quiet`` only the
    logger's warnings and errors do.
    """

    def __init__(self, command: str, quiet: bool) -> None:
        self.handler = logging.StreamHandler()  # sys.stderr as it is when main() starts
        self.handler.setFormatter(logging.Formatter(f"s2sim {command}: %(message)s"))
        self.level = logging.WARNING if quiet else logging.INFO
        self.logger = logging.getLogger("s2sim")

    def __enter__(self) -> _StepMessages:
        self._saved = self.logger.level, self.logger.propagate
        self.logger.setLevel(self.level)
        # not also through a root handler that a script run by `s2sim exec` may set up: each message once
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self._saved[0])
        self.logger.propagate = self._saved[1]


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
