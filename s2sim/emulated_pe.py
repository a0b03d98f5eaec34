"""The emulated SpiNNaker2 PE: a second reference for what the chip's CPU computes.

``csrc/pe/`` holds a firmware-shaped C program of the PE tick, written from docs/datapath.md and sharing no code
with the simulator's kernel: 16-bit synapse words, uint32 ring buffers, a key-based population table per PE, one
PE per placement slice, spikes as multicast keys routed to the next tick. This module packs an s2sim network and
its inputs into that program's image, builds the program (for the host, or cross-compiled for the Cortex-M4F and
run under ``qemu-system-arm -M mps2-an386``), runs it and returns the run as a conformance Trace plus per-tick,
per-PE counters (packets, synapse words, conv taps, and on the M4F the instructions executed).

    from s2sim import emulated_pe
    run = emulated_pe.run(net, 50, build="m4-gnu")       # needs arm-none-eabi-gcc and qemu-system-arm
    conformance.compare(conformance.simulate(net, 50, emulated_pe.BUILDS["m4-gnu"].profile), run.trace)
    run.instructions(model="lif")                         # [ticks, pes, 2]: delivery and update phases

The builds differ only in how they are compiled; :data:`BUILDS` says which ChipProfile each should match (GCC
contracts ``a*b + c`` into ``vfma.f32`` in the GNU dialects and not in ISO C). Host-side conversion (weight
rounding, the conv x-axis reading) follows the profile given to :func:`pack`.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, CoreError, LimitError
from .lowering import lower, round_weights
from .models import KIND_CURR_EXP
from .placement import place
from .profile import ChipProfile
from .snn import Conv2DProjection, Network, Projection
from .traces import Trace, spike_list_inputs

#: Source folder of the PE program (present in a source checkout, not in an installed wheel).
SOURCE_DIR = Path(__file__).resolve().parent.parent / "csrc" / "pe"
#: Where the programs are built (the checkout's ignored build folder).
BUILD_DIR = Path(__file__).resolve().parent.parent / "build" / "pe"
#: QEMU's -icount shift: every instruction advances virtual time by 2**ICOUNT_SHIFT ns.
ICOUNT_SHIFT = 8
#: The mps2-an386 system clock that drives SysTick (25 MHz): nanoseconds per counter step.
SYSTICK_NS = 40
IMAGE_ADDRESS = 0x21000000

_MAGIC, _VERSION, _DONE = 0x45503253, 1, 0x454E4F44
_PE_SOURCE, _PE_LIF, _PE_CURR_EXP = 0, 1, 2
_ROWS_DELAY, _ROWS_NO_DELAY, _CONV = 0, 1, 2
_HEADER = struct.Struct("<8I256s")
_DESC = struct.Struct("<11I")
_ENTRY = struct.Struct("<7I")
_CONV_DESC = struct.Struct("<17I")
_ROUTE = struct.Struct("<3I")
#: Per tick and PE (csrc/pe/pe.h, pe_counters).
COUNTERS = ("packets", "rows", "words", "taps", "tap_tests", "held", "spikes", "t_deliver", "t_update")
_PARAMS = ("threshold", "alpha_decay", "i_offset", "v_reset", "v_init", "exc_decay", "inh_decay")
_KEY_BITS = 16


@dataclass(frozen=True)
class Build:
    """One way of building the PE program.

    Attributes
    ----------
    target : str
        Make target in csrc/pe/Makefile.
    machine : {"host", "m4"}
        Runs natively, or on the Cortex-M4F under QEMU (with instruction counts).
    profile : ChipProfile
        The variant the build should reproduce: what conformance inference must recover from its runs.
    """

    target: str
    machine: str
    profile: ChipProfile


BUILDS: Mapping[str, Build] = {
    "host-iso": Build("pe-host-iso", "host", ChipProfile(fused_multiply_add=False)),
    "host-asan": Build("pe-host-asan", "host", ChipProfile(fused_multiply_add=False)),
    "host-gnu": Build("pe-host-gnu", "host", ChipProfile()),
    "m4-gnu": Build("pe-m4-gnu.elf", "m4", ChipProfile()),
    "m4-iso": Build("pe-m4-iso.elf", "m4", ChipProfile(fused_multiply_add=False)),
    "m4-gnu-ftz": Build("pe-m4-gnu-ftz.elf", "m4", ChipProfile(flush_to_zero=True)),
}


def availability(build: str) -> tuple[bool, str]:
    """Tell whether ``build`` can be made and run here: ``(True, "")``, else ``(False, why)`` naming what is missing."""
    if build not in BUILDS:
        raise ConfigError(f"unknown emulated-PE build {build!r}; known: {sorted(BUILDS)}")
    missing = []
    if not (SOURCE_DIR / "pe.c").is_file():
        missing.append(f"the PE program's source ({SOURCE_DIR}; only a source checkout of s2sim has it)")
    tools = ["make", "cc"] if BUILDS[build].machine == "host" else ["make", "arm-none-eabi-gcc", "qemu-system-arm"]
    missing += [f"`{t}` on PATH" for t in tools if shutil.which(t) is None]
    if build == "host-gnu" and not _host_has_fma():
        missing.append("a host CPU with FMA instructions (the host GNU build contracts a*b+c with -mfma)")
    if BUILDS[build].machine == "m4" and shutil.which("arm-none-eabi-gcc") and not _has_newlib():
        missing.append("newlib for arm-none-eabi (Debian: libnewlib-arm-none-eabi)")
    if not missing:
        return True, ""
    return False, (
        f"emulated PE build {build!r} unavailable: missing "
        + "; ".join(missing)
        + ". On Debian/Ubuntu: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
    )


def _host_has_fma() -> bool:
    try:
        return " fma " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


def _has_newlib() -> bool:
    out = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=nosys.specs"], capture_output=True, text=True)
    return out.returncode == 0 and Path(out.stdout.strip()).is_file()


def program(build: str) -> Path:
    """Build (if needed: make tracks the sources) and return the path of ``build``'s program."""
    ok, why = availability(build)
    if not ok:
        raise CoreError(why)
    out = subprocess.run(
        ["make", "-s", "-C", str(SOURCE_DIR), f"BUILD={BUILD_DIR}", str(BUILD_DIR / BUILDS[build].target)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise CoreError(f"building the emulated PE ({build}) failed:\n{out.stdout}{out.stderr}")
    return BUILD_DIR / BUILDS[build].target


# -- packing ----------------------------------------------------------------------------------------------------
@dataclass
class PESlice:
    """What one emulated PE holds: neurons ``start .. stop-1`` of population ``population``."""

    pe: int
    population: str
    model: str
    start: int
    stop: int
    #: Entries of the PE's population table (a received key is checked against each).
    entries: int = 0

    @property
    def n(self) -> int:
        """Number of neurons in the slice."""
        return self.stop - self.start


@dataclass
class Image:
    """A packed network: the program's input, and the PE layout needed to read its output."""

    data: bytes
    pes: list[PESlice]
    timesteps: int
    inputs: dict[str, np.ndarray]


class _Blob:
    """The image under construction: 4-byte aligned chunks appended, their offsets returned."""

    def __init__(self, start: int) -> None:
        self.parts: list[bytes] = []
        self.size = start

    def add(self, data: bytes) -> int:
        offset = self.size
        data += b"\0" * (-len(data) % 4)
        self.parts.append(data)
        self.size += len(data)
        return offset


def pack(
    network: Network,
    timesteps: int,
    inputs: Mapping[str, np.ndarray] | None = None,
    profile: ChipProfile | None = None,
    out_path: str = "pe_output.bin",
) -> Image:
    """Pack ``network`` and its inputs into the PE program's image.

    The network is first checked and lowered as the simulator would (so every chip limit raises its usual error);
    the image is then built from the network itself: parameters rounded to float32, list weights rounded by the
    profile's (per-model) rule into 16-bit synapse words, conv kernels into int8, one PE per placement slice.

    Parameters
    ----------
    network : Network
    timesteps : int
    inputs : dict, optional
        spike_list name -> uint8 [timesteps, size]; others use their spike times.
    profile : ChipProfile, optional
        Host-side conversion (weight rounding, conv x-axis reading) and placement limits. The arithmetic is the
        build's, not the profile's.
    out_path : str
        Where the program writes its records.
    """
    profile = profile or ChipProfile()
    if profile.state_precision != "float32":
        raise ConfigError("the emulated PE computes in float32; state_precision must be 'float32'")
    lower(network, profile)  # every limit the simulator checks, with its messages
    ins = spike_list_inputs(network, timesteps)
    for name, arr in (inputs or {}).items():
        ins[name] = network.population(name).check_input(arr)
        if ins[name].shape[0] != timesteps:
            raise ConfigError(f"inputs[{name!r}] covers {ins[name].shape[0]} ticks; the run has {timesteps}")
    pop_id = {p.name: k for k, p in enumerate(network.populations)}
    for p in network.populations:
        if p.size > 1 << _KEY_BITS or len(network.populations) > 1 << _KEY_BITS:
            raise LimitError(
                f"population {p.name!r}: the emulated PE's keys hold {_KEY_BITS}-bit neuron indices "
                f"(size {p.size}, {len(network.populations)} populations)"
            )
    placement = place(network, profile)
    slices = [
        PESlice(s.pe, s.population, network.population(s.population).neuron_model, s.start, s.stop)
        for s in placement.slices
    ]
    blob = _Blob(_HEADER.size)
    descs = [_pack_pe(network, s, pop_id, ins, timesteps, profile, blob) for s in slices]
    routes = _routes(network, slices, pop_id)
    pes_offset = blob.add(b"".join(descs))
    routes_offset = blob.add(b"".join(_ROUTE.pack(*r) for r in routes) or b"\0" * 4)
    path = out_path.encode()
    if blob.size > 16 << 20:
        raise LimitError(
            f"network {network.name!r}: the emulated PE's image is {blob.size} bytes, more than the "
            "16 MB of the emulated board's PSRAM"
        )
    if len(path) >= 256:
        raise ConfigError(f"emulated PE output path too long ({len(path)} bytes, at most 255): {out_path}")
    header = _HEADER.pack(
        _MAGIC, _VERSION, len(slices), timesteps, len(routes), pes_offset, routes_offset, blob.size, path
    )
    return Image(header + b"".join(blob.parts), slices, timesteps, ins)


def _pack_pe(
    network: Network, s: PESlice, pop_id: dict, ins: dict, timesteps: int, profile: ChipProfile, blob: _Blob
) -> bytes:
    pop = network.population(s.population)
    key_base = (pop_id[pop.name] << _KEY_BITS) + s.start
    if pop.model.is_input:
        raster = ins[pop.name][:, s.start : s.stop]
        ticks, neurons = np.nonzero(raster)
        start = np.searchsorted(ticks, np.arange(timesteps + 1)).astype("<u4")
        spikes = blob.add(start.tobytes() + neurons.astype("<u4").tobytes())
        return _DESC.pack(_PE_SOURCE, s.n, s.start, key_base, 1, 0, 0, 0, 0, 0, spikes)

    def param(key: str) -> np.ndarray:  # the lif models have no decays or t_refrac: zeros, never read
        return pop.param(key)[s.start : s.stop] if key in pop.model.defaults else np.zeros(s.n)

    params = [param(k).astype("<f4") for k in _PARAMS]
    refrac = param("t_refrac").astype("<i4")
    params_offset = blob.add(b"".join(p.tobytes() for p in params) + refrac.tobytes())
    packed = (_pack_entry(proj, s, pop_id, profile, blob) for proj in network.projections if proj.post is pop)
    entries = [e for e in packed if e is not None]
    s.entries = len(entries)
    entries_offset = blob.add(b"".join(entries) or b"\0" * 4)
    max_inbox = sum(proj.pre.size for proj in network.projections if proj.post is pop)
    kind = _PE_CURR_EXP if pop.model.kind == KIND_CURR_EXP else _PE_LIF
    reset = 0 if pop.reset == "reset_by_subtraction" else 1
    return _DESC.pack(
        kind,
        s.n,
        s.start,
        key_base,
        pop.model.ring_slots,
        reset,
        params_offset,
        len(entries),
        entries_offset,
        max_inbox,
        0,
    )


def _pack_entry(
    proj: Projection | Conv2DProjection, s: PESlice, pop_id: dict, profile: ChipProfile, blob: _Blob
) -> bytes | None:
    """One population-table entry: the rows (or the conv) of ``proj`` that reach slice ``s``."""
    key, mask = pop_id[proj.pre.name] << _KEY_BITS, ~((1 << _KEY_BITS) - 1) & 0xFFFFFFFF
    settings = profile.model_settings(proj.post.neuron_model)
    where = f"projection {proj.name!r}"
    if isinstance(proj, Conv2DProjection):
        g = proj.geometry(profile.conv_x_axis)
        p = g.params
        kernel = round_weights(proj.weights, settings.conv_weight_rounding, where).astype("<i1")
        kernel_offset = blob.add(np.ascontiguousarray(kernel).tobytes())
        c_in, h, w = g.in_shape
        _, ph, pw = g.pooled_shape
        c_out, oh, ow = g.out_shape
        conv = blob.add(
            _CONV_DESC.pack(
                c_in,
                h,
                w,
                p["pool_y"],
                p["pool_x"],
                ph,
                pw,
                c_out,
                kernel.shape[2],
                kernel.shape[3],
                p["stride_y"],
                p["stride_x"],
                p["pad_top"],
                p["pad_left"],
                oh,
                ow,
                kernel_offset,
            )
        )
        return _ENTRY.pack(key, mask, _CONV, proj.pre.size, 0, 0, conv)
    mine = (proj.post_idx >= s.start) & (proj.post_idx < s.stop)
    if not mine.any():
        return None
    weights = round_weights(proj.weights[mine], settings.weight_rounding, where).astype(np.int64)
    target = proj.post_idx[mine] - s.start
    if target.max() > 255:
        raise LimitError(
            f"{where}: slice of {proj.post.name!r} on PE {s.pe} has targets beyond the 8-bit field "
            f"of a synapse word (index {int(target.max())})"
        )
    delay_model = proj.post.model.max_delay > 0
    low = (proj.delays[mine].astype(np.int64) << 4 | np.abs(weights)) if delay_model else np.abs(weights)
    words = (target.astype(np.int64) << 8 | (weights < 0).astype(np.int64) << 7 | low).astype("<u2")
    pre = proj.pre_idx[mine]
    order = np.argsort(pre, kind="stable")
    rows = np.zeros(proj.pre.size + 1, dtype="<u4")
    np.cumsum(np.bincount(pre, minlength=proj.pre.size), out=rows[1:])
    rows_offset = blob.add(rows.tobytes())
    words_offset = blob.add(words[order].tobytes())
    return _ENTRY.pack(
        key, mask, _ROWS_DELAY if delay_model else _ROWS_NO_DELAY, proj.pre.size, rows_offset, words_offset, 0
    )


def _routes(network: Network, slices: list[PESlice], pop_id: dict) -> list[tuple[int, int, int]]:
    """Router entries: a source population's keys go to every PE holding synapses (or a conv) from it."""
    mask = ~((1 << _KEY_BITS) - 1) & 0xFFFFFFFF
    routes = set()
    for proj in network.projections:
        for s in slices:
            if s.population != proj.post.name:
                continue
            if isinstance(proj, Conv2DProjection) or np.any((proj.post_idx >= s.start) & (proj.post_idx < s.stop)):
                routes.add((pop_id[proj.pre.name] << _KEY_BITS, mask, s.pe))
    return sorted(routes)


# -- running -------------------------------------------------------------------------------------------------
@dataclass
class EmulatedRun:
    """One run of the emulated PE program.

    Attributes
    ----------
    trace : Trace
        Spikes and float32 voltages of the populations that record them, in the conformance trace format.
    pes : list of PESlice
    counters : np.ndarray
        uint32 [timesteps, n_pes, len(COUNTERS)], columns :data:`COUNTERS`.
    build : str
    """

    trace: Trace
    pes: list[PESlice]
    counters: np.ndarray
    build: str
    metadata: dict = field(default_factory=dict)

    def instructions(self) -> np.ndarray:
        """Instructions executed per tick and PE in the delivery and update phases, [timesteps, n_pes, 2].

        Only M4F builds count; a SysTick difference d is ``d * SYSTICK_NS / 2**ICOUNT_SHIFT`` instructions.
        """
        if BUILDS[self.build].machine != "m4":
            raise ConfigError(f"build {self.build!r} runs on the host and counts no instructions")
        steps = self.counters[:, :, -2:].astype(np.float64) * SYSTICK_NS / 2**ICOUNT_SHIFT
        whole = np.rint(steps)
        if np.any(np.abs(steps - whole) > 0.2):
            raise CoreError(
                "SysTick differences are not whole instruction counts: QEMU's -icount or the "
                "mps2-an386 clock is not what s2sim assumes"
            )
        return whole.astype(np.int64)


def run(
    network: Network,
    timesteps: int,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    build: str = "m4-gnu",
    profile: ChipProfile | None = None,
    timeout: float = 300.0,
    metadata: Mapping | None = None,
) -> EmulatedRun:
    """Run ``network`` for ``timesteps`` ticks on the emulated PE ``build`` (see :data:`BUILDS`).

    ``profile`` governs host-side conversion only (weight rounding, conv x-axis, placement limits); the
    arithmetic is whatever ``build`` was compiled to do. Raises CoreError when the build is unavailable (the
    message names what to install) or the program fails.
    """
    exe = program(build)
    with tempfile.TemporaryDirectory(prefix="s2sim-pe-") as tmp:
        out = os.path.join(tmp, "records.bin")
        image = pack(network, timesteps, inputs, profile, out_path=out)
        image_path = os.path.join(tmp, "image.bin")
        Path(image_path).write_bytes(image.data)
        if BUILDS[build].machine == "host":
            cmd = [str(exe), image_path]
        else:
            cmd = [
                "qemu-system-arm",
                "-M",
                "mps2-an386",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "none",
                "-semihosting-config",
                "enable=on,target=native",
                "-icount",
                f"shift={ICOUNT_SHIFT}",
                "-kernel",
                str(exe),
                "-device",
                f"loader,file={image_path},addr={IMAGE_ADDRESS:#x}",
            ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise CoreError(f"emulated PE ({build}) did not finish within {timeout:g} s") from None
        if done.returncode:
            raise CoreError(
                f"emulated PE ({build}) exited with status {done.returncode} "
                f"({_status_text(done.returncode)}): {done.stderr.strip()[-500:]}"
            )
        records = Path(out).read_bytes()
    spikes, voltages, counters = _read_records(records, image)
    trace = _trace(network, image, spikes, voltages, build, metadata)
    return EmulatedRun(trace, image.pes, counters, build, dict(metadata or {}))


def _status_text(code: int) -> str:
    if code == 99:
        return "the M4F took a fault"
    if 1 <= code < 99:
        return f"the program refused the image, pe_run code -{code}"
    return "see stderr"


def _read_records(records: bytes, image: Image) -> tuple[list, list, np.ndarray]:
    """Per PE: spikes [T, n] and voltages [T, n] (None for sources); counters [T, n_pes, len(COUNTERS)]."""
    t_all, n_pes = image.timesteps, len(image.pes)
    spikes = [np.zeros((t_all, s.n), np.uint8) for s in image.pes]
    volts = [None if s.model == "spike_list" else np.zeros((t_all, s.n), np.float32) for s in image.pes]
    counters = np.zeros((t_all, n_pes, len(COUNTERS)), np.uint32)
    pos = 0
    for t in range(t_all):
        for k, s in enumerate(image.pes):
            counters[t, k] = np.frombuffer(records, "<u4", len(COUNTERS), pos)
            pos += 4 * len(COUNTERS)
            v = volts[k]
            if v is not None:
                v[t] = np.frombuffer(records, "<f4", s.n, pos)
                pos += 4 * s.n
            spikes[k][t] = np.frombuffer(records, np.uint8, s.n, pos)
            pos += s.n + (-s.n % 4)
    if records[pos:] != struct.pack("<2I", _DONE, t_all):
        raise CoreError(f"emulated PE output is truncated or malformed ({len(records)} bytes, trailer at {pos})")
    return spikes, volts, counters


def _trace(network: Network, image: Image, spikes: list, volts: list, build: str, metadata: Mapping | None) -> Trace:
    out_spikes, out_v, out_last = {}, {}, {}
    for pop in network.populations:
        if pop.model.is_input:
            continue
        ks = [k for k, s in enumerate(image.pes) if s.population == pop.name]
        s_all = np.concatenate([spikes[k] for k in ks], axis=1)
        v_all = np.concatenate([volts[k] for k in ks], axis=1)
        if "spikes" in pop.record:
            out_spikes[pop.name] = s_all
        if "v" in pop.record:
            out_v[pop.name] = v_all
        elif "v_last" in pop.record:
            out_last[pop.name] = v_all[-1].copy()
    return Trace(
        network=network,
        timesteps=image.timesteps,
        inputs=image.inputs,
        spikes=out_spikes,
        voltages=out_v,
        v_last=out_last,
        source=f"emulated-pe-{build}",
        metadata={"build": build, **dict(metadata or {})},
    )


# -- instruction counts -----------------------------------------------------------------------------------------
#: Per phase, the events whose counts explain its instructions (COUNTERS columns, or "neuron": the PE's slice).
PHASE_EVENTS = {
    "delivery": ("packet", "table_entry", "row", "synaptic_word", "conv_tap_test", "conv_tap"),
    "update": ("neuron", "spike", "held"),
}
_EVENT_COLUMN = {
    name: COUNTERS.index(column)
    for name, column in (
        ("packet", "packets"),
        ("row", "rows"),
        ("synaptic_word", "words"),
        ("conv_tap", "taps"),
        ("conv_tap_test", "tap_tests"),
        ("held", "held"),
        ("spike", "spikes"),
    )
}


@dataclass
class InstructionFit:
    """Instructions of one phase of one model's PE tick as a linear function of its events (least squares).

    ``per_event`` maps each event to its instructions (``"base"``: per PE and tick). An event the samples cannot
    separate from the ones before it (it always occurred in proportion to them) is listed in ``not_separated`` and
    its cost is part of theirs. ``max_residual`` is the largest difference between a sample and the fit.
    """

    per_event: dict[str, float]
    samples: int
    max_residual: float
    not_separated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the fit as JSON-able data (cycle figures rounded to 3 decimals)."""
        return {
            "per_event": {k: round(v, 3) for k, v in self.per_event.items()},
            "samples": self.samples,
            "max_residual": round(self.max_residual, 3),
            "not_separated": self.not_separated,
        }


def instruction_fits(runs: list[EmulatedRun]) -> dict[str, dict[str, InstructionFit]]:
    """Per neuron model (and spike_list) and phase, the instructions per event from M4F runs.

    Every (tick, PE) of every run is one sample; the update phase is fitted on the slice size (instructions per
    neuron update), spikes and refractory neurons, the delivery phase on received packets, population-table
    entries checked (packets times the table's entries: the program scans its table), the synapse rows (or conv
    kernels) the packets selected, synapse words, conv taps whose output position was tested against the PE's
    slice and conv taps applied. Events that never occur for a model are left
    out.
    """
    samples: dict[str, list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]] = {}
    for r in runs:
        instr = r.instructions()
        for k, pe in enumerate(r.pes):
            counts = r.counters[:, k].astype(np.float64)
            derived = {
                "neuron": np.full(len(instr), float(pe.n)),
                "table_entry": counts[:, COUNTERS.index("packets")] * pe.entries,
            }
            samples.setdefault(pe.model, []).append((counts, instr[:, k], derived))
    out: dict[str, dict[str, InstructionFit]] = {}
    for model, rows in sorted(samples.items()):
        counts = np.concatenate([c for c, _, _ in rows])
        instr = np.concatenate([i for _, i, _ in rows])
        derived = {key: np.concatenate([d[key] for _, _, d in rows]) for key in ("neuron", "table_entry")}
        out[model] = {
            phase: _fit(events, counts, derived, instr[:, j]) for j, (phase, events) in enumerate(PHASE_EVENTS.items())
        }
    return out


def _fit(
    events: tuple[str, ...],
    counts: np.ndarray,
    derived: dict[str, np.ndarray],
    y: np.ndarray,
) -> InstructionFit:
    names, columns, merged = ["base"], [np.ones(len(y))], []
    for event in events:
        col = derived[event] if event in derived else counts[:, _EVENT_COLUMN[event]]
        if not np.any(col != 0):
            continue
        trial = np.stack([*columns, col], axis=1)
        if np.linalg.matrix_rank(trial) < trial.shape[1]:
            merged.append(event)  # a combination of the events before it: its cost is part of theirs
            continue
        names.append(event)
        columns.append(col)
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    residual = float(np.max(np.abs(design @ coef - y))) if len(y) else 0.0
    return InstructionFit(dict(zip(names, coef.tolist(), strict=True)), len(y), residual, merged)


__all__ = [
    "BUILDS",
    "COUNTERS",
    "PHASE_EVENTS",
    "Build",
    "EmulatedRun",
    "Image",
    "InstructionFit",
    "PESlice",
    "availability",
    "instruction_fits",
    "pack",
    "program",
    "run",
]
