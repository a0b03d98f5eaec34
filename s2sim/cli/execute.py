"""``s2sim exec script.py [args]``: run an unmodified py-spinnaker2 script on the bit-exact simulator.

For the duration of the script, ``import spinnaker2`` (and every ``spinnaker2.<submodule>``) resolves to
:mod:`s2sim.spinnaker2`; nothing changes outside this command, so an installed py-spinnaker2 keeps working
everywhere else. ``--trace`` writes every run the script makes as a conformance trace, ``--profile`` picks the
chip variant. The exit status is the script's.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

from ..errors import ConfigError

ALIAS = "spinnaker2"
TARGET = "s2sim.spinnaker2"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "exec", help="run an unmodified py-spinnaker2 script on the simulator (import spinnaker2 -> s2sim.spinnaker2)",
        description="Run a py-spinnaker2 script unchanged: `import spinnaker2` resolves to s2sim's stand-in for this "
                    "process only, and the script's hardware objects run on the bit-exact simulator. The exit "
                    "status is the script's.")
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments handed to the script (its sys.argv[1:])")
    parser.add_argument("--trace", metavar="OUT.h5", default=None,
                        help="write every run as an s2sim trace: the first to OUT.h5, run k (k >= 1) to OUT-k.h5; a "
                             "path without .h5 is a folder that receives run-0000.h5, run-0001.h5, ... "
                             "(compare with `s2sim conform`)")
    parser.add_argument("--profile", metavar="PROFILE.json", default=None,
                        help="the ChipProfile to simulate, as JSON (e.g. what `s2sim conform --infer` found)")
    parser.add_argument("--board", metavar="IP", nargs="?", const="", default=None,
                        help="run the script's networks on a SpiNNaker2 board through the installed py-spinnaker2 "
                             "instead (address from IP or S2SIM_BOARD_IP / S2_IP); with --trace, the board's runs are "
                             "written as traces to compare with a simulator run (UNTESTED without a board)")
    parser.set_defaults(func=run_exec)


def run_exec(args: argparse.Namespace) -> int:
    script = Path(args.script)
    if not script.is_file():
        raise ConfigError(f"exec: script {str(script)!r} does not exist")
    from ..spinnaker2 import backend

    profile = _read_profile(args.profile) if args.profile else backend.current_profile()
    writer = TraceWriter(args.trace) if args.trace else None
    imports = StandInImports()
    board = _board_target(args.board, imports) if args.board is not None else None
    saved_profile = backend.current_profile()
    backend.forget_said()
    backend.use_profile(profile)
    backend.use_board(board)
    if writer:
        backend.add_run_observer(writer)
    try:
        with imports, _script_environment(script, args.args):
            status = _run_script(script)
    finally:
        backend.use_profile(saved_profile)
        backend.use_board(None)
        if writer:
            backend.remove_run_observer(writer)
    if writer:
        from ..progress import step

        shown = ", ".join(map(str, writer.paths[:3])) + (" ..." if len(writer.paths) > 3 else "")
        step("wrote %d trace(s)%s", len(writer.paths), f": {shown}" if writer.paths else "")
    return status


def _read_profile(path: str) -> Any:
    from ..errors import TraceError
    from ..profile import ChipProfile

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise TraceError(f"exec --profile {path!r}: cannot read a JSON profile ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("profile"), dict):
        data = data["profile"]   # a report that holds the profile
    if not isinstance(data, dict):
        raise ConfigError(f"exec --profile {path!r}: expected a JSON object of ChipProfile fields")
    return ChipProfile.from_dict(data)


def _run_script(script: Path) -> int:
    """Run the script as ``__main__``; its exit status as Python would give it."""
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return int(code or 0)
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - the script's own error: reported as Python reports it
        traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def _script_environment(script: Path, argv: Sequence[str]) -> Iterator[None]:
    """sys.argv and sys.path as ``python script.py args`` sets them; matplotlib without a display never blocks."""
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    saved_backend = os.environ.get("MPLBACKEND")
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.resolve().parent))
    if saved_backend is None and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MPLBACKEND"] = "Agg"
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)


class _StandInFinder(importlib.abc.MetaPathFinder):
    """Resolves ``spinnaker2[.x]`` to the module object of ``s2sim.spinnaker2[.x]``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = TARGET + fullname[len(ALIAS):]
        if importlib.util.find_spec(real) is None:
            from ..spinnaker2 import SUBMODULES

            raise ModuleNotFoundError(
                f"No module named {fullname!r}: s2sim's py-spinnaker2 stand-in provides spinnaker2."
                f"{{{', '.join(SUBMODULES)}}}; {fullname!r} is internal to py-spinnaker2 (board mapping and "
                "communication) and has no simulator equivalent", name=fullname)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.real)   # the same module object under both names

    def exec_module(self, module: ModuleType) -> None:
        pass


class StandInImports:
    """While active, ``import spinnaker2`` gives :mod:`s2sim.spinnaker2`; an installed py-spinnaker2 is shadowed
    for that time only and restored afterwards (:meth:`suspended` restores it for a moment, for the board runner)."""

    def __init__(self) -> None:
        self.finder = _StandInFinder()
        self.vendor: dict[str, ModuleType] = {}
        self.alias: dict[str, ModuleType] = {}

    def __enter__(self) -> "StandInImports":
        self.vendor = _take_modules()
        sys.meta_path.insert(0, self.finder)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.meta_path.remove(self.finder)
        _take_modules()
        sys.modules.update(self.vendor)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """``spinnaker2`` means py-spinnaker2 again inside the block (its own lazy imports must find itself)."""
        sys.meta_path.remove(self.finder)
        alias = _take_modules()
        sys.modules.update(self.vendor)
        try:
            yield
        finally:
            self.vendor = _take_modules()
            sys.modules.update(alias)
            sys.meta_path.insert(0, self.finder)


def _take_modules() -> dict[str, ModuleType]:
    """Remove and return every ``spinnaker2[.x]`` entry of sys.modules."""
    taken = {k: v for k, v in sys.modules.items() if k == ALIAS or k.startswith(ALIAS + ".")}
    for key in taken:
        del sys.modules[key]
    return taken


def _board_target(address: str | None, imports: StandInImports) -> Any:
    """py-spinnaker2's own modules for ``exec --board``, imported before the alias hides them."""
    from ..chip import BOARD_ENV_VARS, INSTALL_HINT, board_address
    from ..errors import BoardUnavailable
    from ..spinnaker2.backend import BoardTarget

    try:
        snn = importlib.import_module(f"{ALIAS}.snn")
        hardware = importlib.import_module(f"{ALIAS}.hardware")
    except ImportError as exc:
        raise BoardUnavailable(f"exec --board: py-spinnaker2 is not importable ({exc}); {INSTALL_HINT}") from None
    ip = board_address(address or None)
    if ip is None:
        raise BoardUnavailable(f"exec --board: no board address; give one (--board IP) or set "
                               f"{' or '.join(BOARD_ENV_VARS)}")
    return BoardTarget(ip, snn, hardware, imports.suspended)


class TraceWriter:
    """Run observer that writes every run as a conformance trace (``s2sim exec --trace``)."""

    def __init__(self, target: str) -> None:
        self.target = Path(target)
        self.single = self.target.suffix.lower() in (".h5", ".hdf5")
        parent = self.target.parent if self.single else self.target
        if not parent.is_dir():
            if self.single:
                raise ConfigError(f"exec --trace {target!r}: folder {str(parent)!r} does not exist")
            parent.mkdir(parents=True)
        self.paths: list[Path] = []

    def path(self, k: int) -> Path:
        """Where run ``k`` goes."""
        if not self.single:
            return self.target / f"run-{k:04d}.h5"
        return self.target if k == 0 else self.target.with_name(f"{self.target.stem}-{k}{self.target.suffix}")

    def __call__(self, record: Any) -> None:
        from ..traces import from_result, write_trace

        trace = from_result(record.network, record.result, profile=record.profile, source=record.source,
                            metadata={"run": len(self.paths), "backend": record.backend, "script": sys.argv[0],
                                      "settings": record.settings})
        path = self.path(len(self.paths))
        write_trace(path, trace)
        self.paths.append(path)
