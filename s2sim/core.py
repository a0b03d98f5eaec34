"""The bridge to the compiled C core (``s2sim._core``, built by CMake from csrc/ through cffi).

Turns a LoweredNetwork into the C structs of csrc/s2sim.h, validates it once in C, and runs batch ranges on
caller-owned numpy buffers. numpy arrays are passed by pointer (zero copy); this object keeps them alive for as
long as the C structs point at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import CoreError
from .lowering import PROJ_CONV, PROJ_DENSE, LoweredNetwork, LoweredPopulation, LoweredProjection
from .models import KIND_INPUT
from .profile import ChipProfile
from .tuning import NEVER

try:
    from ._core import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "s2sim's C core (s2sim._core) is not built. Run `make build` in the source tree, or install with "
        f"`pip install .` (original error: {exc})"
    ) from exc

#: The C interface this Python code is written for (csrc/s2sim.h's S2_ABI_VERSION). An editable install whose C core
#: was built from older sources would otherwise run with mismatched structs and fail, or compute, in odd ways.
ABI_VERSION = 7
if lib.S2_ABI_VERSION != ABI_VERSION:  # pragma: no cover - only with a stale build
    raise ImportError(
        f"s2sim's C core was built for interface version {lib.S2_ABI_VERSION}, this Python code needs "
        f"{ABI_VERSION}: the build is stale. Run `make build` in the source tree (or reinstall s2sim)."
    )

ERRLEN = 512
_POP_PTRS = ("threshold", "alpha_decay", "i_offset", "v_reset", "v_init", "exc_decay", "inh_decay")


def _ptr(ctype: str, arr: np.ndarray | None) -> Any:
    if arr is None or arr.size == 0:
        return ffi.NULL
    if not arr.flags.c_contiguous:
        raise CoreError("internal error: non-contiguous array handed to the C core")
    return ffi.cast(ctype, ffi.from_buffer(arr))


#: The alignment of every array the kernel reads or writes a vector or an AMX tile row at a time. A 64-byte load
#: that straddles two cache lines costs two accesses, and a tile row that does so costs about four times an aligned
#: one (measured here); numpy aligns to 16 bytes only. Aligning the workspace and the conv weights made the
#: benchmark's conv nets 10-14 % faster.
ALIGN = 64


def _zeros(n: int, dtype: Any) -> np.ndarray:
    """``np.zeros(n, dtype)`` whose first element sits on an ALIGN-byte boundary."""
    dt = np.dtype(dtype)
    raw = np.zeros(n * dt.itemsize + ALIGN, np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip : skip + n * dt.itemsize].view(dt)


def _aligned(arr: np.ndarray | None) -> np.ndarray | None:
    """Return arr itself when it is aligned (or None), else an aligned copy."""
    if arr is None or arr.ctypes.data % ALIGN == 0:
        return arr
    out = _zeros(arr.size, arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def _expect(arr: np.ndarray | None, count: int, what: str) -> None:
    """Check an array handed to the C core against the sizes it is told: the core trusts them."""
    size = 0 if arr is None else arr.size
    if size != count:
        raise CoreError(f"internal error: {what} has {size} elements where the C core will read {count}")


def _population_flags(pop: LoweredPopulation, profile: ChipProfile) -> int:
    """Return the S2_POP_* flags of one population: its model's settings and the profile's global arithmetic."""
    s = pop.settings
    if s is None:  # a spike_list has no arithmetic
        return 0
    return (
        (lib.S2_POP_FMA if s.fused_multiply_add else 0)
        | (lib.S2_POP_CURRENT_FMA if s.current_fused_multiply_add else 0)
        | (lib.S2_POP_THRESHOLD_GT if s.threshold_op == ">" else 0)
        | (lib.S2_POP_LEAK_FIRST if profile.input_grouping == "leak_first" else 0)
        | (lib.S2_POP_LEFT_TO_RIGHT if profile.input_grouping == "left_to_right" else 0)
        | (lib.S2_POP_FTZ if profile.flush_to_zero else 0)
        | (lib.S2_POP_REFRAC_NO_SPIKE if profile.refractory_rule == "no_spike" else 0)
    )


class InputRefused(CoreError):
    """The core stopped a run at a spike_list input value other than 0 or 1."""


def _raise(rc: int, err: Any) -> None:
    if rc != lib.S2_OK:
        message = f"C core: {ffi.string(err).decode(errors='replace')}"
        raise (InputRefused if rc == lib.S2_ERR_INPUT else CoreError)(message)


@dataclass
class Workspace:
    """Scratch of one thread: state, ring buffers and spike lists (allocated before a run, never during)."""

    arrays: dict[str, np.ndarray]
    struct: Any


class CoreNetwork:
    """A lowered network loaded into the C core and validated there.

    Parameters
    ----------
    lowered : LoweredNetwork
        Output of :func:`s2sim.lowering.lower`.
    """

    def __init__(self, lowered: LoweredNetwork) -> None:
        self.lowered = lowered
        self.float64 = lowered.profile.state_precision == "float64"
        self._keep: list[Any] = []
        pops = lowered.populations
        self._pops = ffi.new("s2_population[]", len(pops))
        for k, pop in enumerate(pops):
            _check_population(pop)
            c = self._pops[k]
            for key in (
                "kind",
                "reset",
                "n",
                "ring_slots",
                "ring_planes",
                "state_offset",
                "ring_offset",
                "curr_offset",
            ):
                setattr(c, key, getattr(pop, key))
            c.uniform_params = (lib.S2_UNIFORM_PARAMS if pop.uniform_params else 0) | (
                lib.S2_UNIFORM_OFFSET if pop.uniform_offset else 0
            )
            c.grain = pop.grain
            c.flags = _population_flags(pop, lowered.profile)
            for key in _POP_PTRS:
                setattr(c, key, self._hold("float *", pop.params.get(key)))
            c.t_refrac = self._hold("int32_t *", pop.params.get("t_refrac"))
        projs = lowered.projections
        self._projs = ffi.new("s2_projection[]", max(len(projs), 1))
        for k, proj in enumerate(projs):
            _check_projection(proj, pops[proj.post].n, pops[proj.post].ring_planes)
            self._fill_projection(self._projs[k], proj)
        self._net = ffi.new("s2_network *")
        n = self._net
        n.n_pops, n.n_projs, n.pops, n.projs = len(pops), len(projs), self._pops, self._projs
        n.n_neurons, n.n_ring, n.n_curr = lowered.n_neurons, lowered.n_ring, lowered.n_curr
        n.n_conv_map = lowered.n_conv_map
        n.flags = (lib.S2_FLAG_FLOAT64 if self.float64 else 0) | (lib.S2_FLAG_AMX if lowered.amx else 0)
        err = ffi.new("char[]", ERRLEN)
        _raise(lib.s2_validate(self._net, err, ERRLEN), err)

    def _hold(self, ctype: str, arr: np.ndarray | None) -> Any:
        if arr is not None:
            self._keep.append(arr)
        return _ptr(ctype, arr)

    def _fill_projection(self, c: Any, proj: LoweredProjection) -> None:
        c.kind, c.pre, c.post, c.n_pre = proj.kind, proj.pre, proj.post, proj.n_pre
        a = proj.arrays
        if proj.kind == PROJ_CONV:
            c.pool_pos = self._hold("int32_t *", a["pool_pos"])
            c.kernel = self._hold("int8_t *", a["kernel"])
            c.pre_events = self._hold("int32_t *", a["pre_events"])
            c.cell = self._hold("int32_t *", a.get("cell"))
            # the tile unit loads these 64 bytes a row; small enough to copy when misaligned
            c.packed = self._hold("int8_t *", _aligned(a.get("packed")))
            c.stacked = self._hold("int8_t *", _aligned(a.get("stacked")))
        elif proj.kind == PROJ_DENSE:
            c.dense = self._hold("int8_t *", a["dense"])
            c.row_nnz = self._hold("int32_t *", a["row_nnz"])
        else:
            c.row_ptr = self._hold("int64_t *", a["row_ptr"])
            c.target = self._hold("int32_t *", a["target"])
            c.delay = self._hold("uint8_t *", a.get("delay"))
            c.weight = self._hold("int8_t *", a["weight"])
        for key, value in proj.geometry.items():
            setattr(c, key, value)

    def workspace(self) -> Workspace:
        """Allocate the scratch one thread needs."""
        return self.split_workspaces(1)[0]

    def split_workspaces(self, n_threads: int) -> list[Workspace]:
        """Scratch for ``n_threads`` threads that run each sample together (csrc/s2sim.h, s2_workspace).

        Shared state and spike lists, each thread's own dirty flags and conv maps, and the shared sync words.
        """
        low = self.lowered
        ftype = np.float64 if self.float64 else np.float32
        n_pops = len(low.populations)
        shared: dict[str, np.ndarray] = {
            "v": _zeros(low.n_neurons, ftype),
            "i_exc": _zeros(low.n_curr, ftype),
            "i_inh": _zeros(low.n_curr, ftype),
            "refrac": _zeros(low.n_curr, np.int32),
            "ring": _zeros(max(low.n_ring, 1), np.int32),
            "flags": _zeros(low.n_neurons, np.uint8),
            "spikes_prev": _zeros(low.n_neurons, np.int32),
            "spikes_cur": _zeros(low.n_neurons, np.int32),
            "n_prev": _zeros(n_pops * n_threads, np.int32),
            "n_cur": _zeros(n_pops * n_threads, np.int32),
            "sync": _zeros(4, np.int32),
        }
        vtype = "double *" if self.float64 else "float *"
        ctypes = {
            "v": vtype,
            "i_exc": vtype,
            "i_inh": vtype,
            "flags": "uint8_t *",
            "dirty": "uint8_t *",
            "conv_map": "uint8_t *",
        }
        out = []
        for thread in range(n_threads):
            arrays: dict[str, np.ndarray] = {
                **shared,
                "dirty": _zeros(8 * n_pops, np.uint8),
                "conv_map": _zeros(low.n_conv_map, np.uint8),
            }
            ws = ffi.new("s2_workspace *")
            for key, arr in arrays.items():
                setattr(ws, key, _ptr(ctypes.get(key, "int32_t *"), arr))
            ws.thread, ws.n_threads = thread, n_threads
            if n_threads == 1:
                ws.sync = ffi.NULL
            out.append(Workspace(arrays, ws))
        return out

    def make_io(self, buffers: list[dict[str, np.ndarray]], batch: int, timesteps: int) -> Any:
        """Return the C view of per-population run buffers (keys: input, spikes, v, v_last, counts).

        Each is checked against the [batch, timesteps, n] extent the core will index.
        """
        pops = self.lowered.populations
        if len(buffers) != len(pops):
            raise CoreError(f"internal error: {len(buffers)} buffer sets for {len(pops)} populations")
        vdtype = np.float64 if self.float64 else np.float32
        for pop, buf in zip(pops, buffers, strict=True):
            rows = batch * timesteps * pop.n
            if pop.kind == KIND_INPUT and buf.get("input") is None:
                raise CoreError(f"internal error: population {pop.name!r} has no input buffer")
            for key, count in (
                ("input", rows),
                ("spikes", rows),
                ("v", rows),
                ("v_last", batch * pop.n),
                ("counts", batch * timesteps * 2),
            ):
                arr = buf.get(key)
                if arr is not None:
                    _expect(arr, count, f"population {pop.name!r} {key} buffer")
                    want = {"input": np.uint8, "spikes": np.uint8, "counts": np.int64}.get(key, vdtype)
                    if arr.dtype != want or not arr.flags.c_contiguous:
                        raise CoreError(
                            f"internal error: population {pop.name!r} {key} buffer is {arr.dtype}, "
                            f"expected contiguous {np.dtype(want)}"
                        )
        io = ffi.new("s2_pop_io[]", len(buffers))
        vtype = "double *" if self.float64 else "float *"
        for k, buf in enumerate(buffers):
            io[k].input = _ptr("uint8_t *", buf.get("input"))
            io[k].rec_spikes = _ptr("uint8_t *", buf.get("spikes"))
            v = buf.get("v", buf.get("v_last"))
            io[k].rec_v = ffi.cast("void *", _ptr(vtype, v))
            io[k].rec_v_last = int("v" not in buf and "v_last" in buf)
            io[k].rec_counts = _ptr("int64_t *", buf.get("counts"))
        return io

    def run(
        self, io: Any, ws: Workspace, batch: int, timesteps: int, begin: int, end: int, cancel: np.ndarray | None = None
    ) -> bool:
        """Run samples [begin, end) of a batch (this thread's share of each, for split workspaces).

        Releases the GIL for the duration.

        ``cancel`` is an int32 array of one element that another thread may set to 1: the core stops at the end of
        the current tick. Returns False when it stopped that way (the buffers then hold a partial run).
        """
        if cancel is not None and (cancel.dtype != np.int32 or cancel.size != 1 or not cancel.flags.c_contiguous):
            raise CoreError("internal error: the cancel flag must be one contiguous int32")
        err = ffi.new("char[]", ERRLEN)
        rc = lib.s2_run(self._net, io, ws.struct, batch, timesteps, begin, end, _ptr("int32_t *", cancel), err, ERRLEN)
        if rc == lib.S2_CANCELLED:
            return False
        _raise(rc, err)
        return True


def _check_population(pop: LoweredPopulation) -> None:
    for key in _POP_PTRS:
        if key in pop.params:
            _expect(pop.params[key], pop.n, f"population {pop.name!r} parameter {key}")
    if "t_refrac" in pop.params:
        _expect(pop.params["t_refrac"], pop.n, f"population {pop.name!r} t_refrac")


def _check_projection(proj: LoweredProjection, n_post: int, planes: int) -> None:
    a, g, where = proj.arrays, proj.geometry, f"projection {proj.name!r}"
    if proj.kind == PROJ_CONV:
        _expect(a["pool_pos"], 3 * proj.n_pre, f"{where} pool_pos")
        _expect(a["kernel"], g["c_in"] * g["k_h"] * g["k_w"] * g["c_out"], f"{where} kernel")
        _expect(a["pre_events"], proj.n_pre, f"{where} pre_events")
        if g["dense_from"] != NEVER:
            _expect(a.get("cell"), proj.n_pre, f"{where} cell")
            quads, pad = lib.s2_conv_quads(g["c_in"], g["k_w"]), -(-g["c_out"] // 16) * 16
            _expect(a.get("packed"), planes * g["k_h"] * quads * pad * 4, f"{where} packed kernel")
            if a.get("stacked") is not None:
                stacked = lib.s2_stack_quads(g["c_in"], g["ow"], g["k_h"], g["k_w"], g["stride_x"], g["stride_y"])
                _expect(a["stacked"], planes * stacked * pad * 4, f"{where} stacked kernel")
    elif proj.kind == PROJ_DENSE:
        _expect(a["dense"], proj.n_pre * n_post, f"{where} dense rows")
        _expect(a["row_nnz"], proj.n_pre, f"{where} row_nnz")
    else:
        _expect(a["row_ptr"], proj.n_pre + 1, f"{where} row_ptr")
        n_syn = int(a["row_ptr"][-1])
        for key in ("target", "weight"):
            _expect(a[key], n_syn, f"{where} {key}")
        if "delay" in a:
            _expect(a["delay"], n_syn, f"{where} delay")
