"""Reading untrusted files in a child process.

A file which crashes or hangs a library then costs an error, not the interpreter.

Byte-corrupted HDF5 files can make the HDF5 C library (under h5py, under ``nir.read``) dereference garbage or loop
forever; no Python code can catch that. :func:`call_isolated` runs a reader function in a child process instead:
its result (or its s2sim error) comes back through a pipe, and the child's death (a signal), a hang (the timeout)
or an allocation beyond the memory budget (the child's address-space limit) becomes a TraceError, RunTimeout or
ResourceError naming the file. The command line reads every NIR, trace and input file this way; the API does on
request (``from_nir(..., isolate=True)``, ``read_trace(..., isolate=True)``).

The child is forked when this process runs a single Python thread (fast, and it inherits the loaded modules),
otherwise started by multiprocessing's fork server (safe with threads; the first call starts the server).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import signal
import threading
from collections.abc import Callable
from typing import Any

from . import memory
from .errors import ResourceError, RunTimeout, S2SimError, TraceError

#: Seconds a reader may take before its child process is stopped.
DEFAULT_TIMEOUT = 300.0


def call_isolated(fn: Callable[..., Any], *args: Any, what: str, timeout: float | None = None) -> Any:
    """Return ``fn(*args)`` computed in a child process.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by reference); it should raise s2sim errors for bad input.
    what : str
        The file or object being read, for messages ("NIR file 'model.nir'").
    timeout : float, optional
        Seconds to wait for the result (default :data:`DEFAULT_TIMEOUT`).

    Raises
    ------
    TraceError
        The child died (e.g. a segmentation fault inside HDF5), or ``fn`` raised something other than an s2sim
        error.
    RunTimeout
        No result within ``timeout`` seconds; the child was killed.
    ResourceError
        The child ran out of its memory budget.
    S2SimError
        Whatever s2sim error ``fn`` raised, unchanged.
    """
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    limit, _ = memory.budget()
    proc = ctx.Process(target=_child, args=(send, fn, args, what, limit), daemon=True)
    proc.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise RunTimeout(
                f"{what}: reading took longer than {timeout:g} s and was stopped; the file may be "
                "damaged (a corrupt HDF5 file can make the library loop forever)"
            )
        try:
            status, payload = receive.recv()
        except (EOFError, OSError):
            proc.join(5)
            raise TraceError(
                f"{what}: the reader process died ({_death(proc.exitcode)}) while reading it; the file "
                "is damaged or not what it claims to be"
            ) from None
    finally:
        receive.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if status == "ok":
        return payload
    raise payload


def _context() -> Any:
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    # modules the server imports once, so that each child it forks starts with the readers loaded
    ctx.set_forkserver_preload(["s2sim.isolation", "s2sim.nir_import", "s2sim.traces", "h5py", "nir"])
    return ctx


def _child(send: Any, fn: Callable[..., Any], args: tuple, what: str, limit: int) -> None:
    faulthandler.disable()  # a crash here is reported by the parent; no traceback dump from the child
    memory.set_budget(limit)  # the parent's budget, also where the child does not inherit its settings
    _limit_address_space(limit)
    try:
        result: tuple[str, Any] = ("ok", fn(*args))
    except S2SimError as exc:
        result = ("error", exc)
    except MemoryError:
        result = (
            "error",
            ResourceError(
                f"{what}: reading it needs more memory than the budget of {memory.fmt(limit)}; nothing was kept"
            ),
        )
    except Exception as exc:  # the reader should have named it; report it rather than lose it
        result = ("error", TraceError(f"{what}: cannot be read ({type(exc).__name__}: {exc})"))
    try:
        send.send(result)
    except Exception as exc:  # an unpicklable result or exception
        send.send(("error", TraceError(f"{what}: the reader's result cannot be handed back ({exc})")))
    send.close()


def _limit_address_space(limit: int) -> None:
    """Let the child grow by at most ``limit`` bytes, so an allocation nobody estimated fails there, not here."""
    try:
        import resource

        import psutil

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = psutil.Process().memory_info().vms + limit
        if soft == resource.RLIM_INFINITY or want < soft:
            resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or a limit the process may not set: no extra guard
        pass


def _death(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"
