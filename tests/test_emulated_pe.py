"""The emulated PE (csrc/pe, s2sim/emulated_pe.py) as a second reference.

Host builds: random networks of every model, split over several PEs, bit-identical to the simulator under the
profile of the build. Cortex-M4F builds under QEMU (skipped, with the reason, only where arm-none-eabi-gcc,
newlib or qemu-system-arm are missing; CI installs them): the probe suite and random networks bit-identical,
conformance inference recovering the variant each build was compiled for, the compiler's contraction seen in the
disassembly, and instruction counts that are whole, deterministic and linear where they must be.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from strategies import net_specs

from s2sim import emulated_pe, probes, snn
from s2sim.cli import main
from s2sim.conformance import compare, infer, simulate
from s2sim.errors import ConfigError
from s2sim.profile import ChipProfile
from s2sim.traces import write_trace
from s2sim.variants import open_points, value_of

ROOT = Path(__file__).resolve().parent.parent


def _need(build: str) -> None:
    """Skip with the reason where the build's tools are missing; CI (.ci/run) sets S2SIM_REQUIRE_EMULATOR=1,
    which turns that skip into a failure.
    """
    ok, why = emulated_pe.availability(build)
    if not ok:
        if os.environ.get("S2SIM_REQUIRE_EMULATOR") == "1":
            pytest.fail(why)
        pytest.skip(why)


def _host_side(profile: ChipProfile, build: str) -> ChipProfile:
    """The drawn profile's host-side conversion (weight rounding, conv reading) with the build's arithmetic."""
    arithmetic = emulated_pe.BUILDS[build].profile
    return dataclasses.replace(
        arithmetic,
        weight_rounding=profile.weight_rounding,
        conv_weight_rounding=profile.conv_weight_rounding,
        conv_x_axis=profile.conv_x_axis,
        overrides={m: {k: v for k, v in o.items() if "rounding" in k} for m, o in profile.overrides_dict().items()},
    )


def _assert_matches_simulator(spec, build: str) -> None:
    net, inputs = spec.build()
    rng = np.random.default_rng(spec.timesteps)
    for pop in net.populations:  # split populations over several PEs
        if rng.random() < 0.5:
            pop.set_max_atoms_per_core(int(rng.integers(1, 4)))
    ins = {k: v[0] for k, v in inputs.items()}
    profile = _host_side(spec.profile, build)
    emulated = emulated_pe.run(net, spec.timesteps, ins, build=build, profile=profile)
    result = compare(simulate(net, spec.timesteps, profile, ins), emulated.trace)
    assert result.match, result.report()


EMULATED = settings(
    deadline=None, database=None, derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
)


@settings(EMULATED, max_examples=60)
@given(net_specs(precisions=("float32",)))
def test_host_build_matches_the_simulator_on_random_networks(spec):
    _need("host-iso")
    _assert_matches_simulator(spec, "host-iso")


@settings(EMULATED, max_examples=15)
@given(net_specs(precisions=("float32",)))
def test_m4_gnu_build_matches_the_simulator_on_random_networks(spec):
    _need("m4-gnu")
    _assert_matches_simulator(spec, "m4-gnu")


@settings(EMULATED, max_examples=15)
@given(net_specs(precisions=("float32",)))
def test_m4_iso_build_matches_the_simulator_on_random_networks(spec):
    _need("m4-iso")
    _assert_matches_simulator(spec, "m4-iso")


@pytest.fixture(scope="module")
def probe_runs():
    """Build -> the probe suite run on it (the M4F builds that are available)."""
    out = {}
    for build in ("m4-gnu", "m4-iso", "m4-gnu-ftz"):
        if emulated_pe.availability(build)[0]:
            out[build] = [
                emulated_pe.run(p.network, p.timesteps, build=build, metadata={"probe": p.name})
                for p in probes.probe_suite()
            ]
    return out


@pytest.mark.parametrize("build", ["m4-gnu", "m4-iso", "m4-gnu-ftz"])
def test_probe_suite_on_the_m4_is_bit_identical_and_identifies_the_build(build, probe_runs):
    _need(build)
    profile = emulated_pe.BUILDS[build].profile
    traces = [r.trace for r in probe_runs[build]]
    for trace in traces:
        result = compare(simulate(trace.network, trace.timesteps, profile), trace)
        assert result.match, result.report()
    inference = infer(traces)
    assert inference.settled() == {p.name: value_of(profile, p) for p in open_points()}
    assert inference.not_distinguished() == {} and inference.profiles() == [profile]


def test_the_fma_and_subnormal_probes_tell_the_builds_apart(probe_runs):
    for build in ("m4-gnu", "m4-iso", "m4-gnu-ftz"):
        _need(build)
    names = [p.name for p in probes.probe_suite()]
    differs = {name: [] for name in names}
    for k, name in enumerate(names):
        a, b, c = (probe_runs[build][k].trace for build in ("m4-gnu", "m4-iso", "m4-gnu-ftz"))
        differs[name] = [not compare(a, b).match, not compare(a, c).match]
    assert differs["fma"] == [True, False] and differs["input_grouping"] == [True, False]
    assert differs["subnormal"] == [False, True]
    assert all(differs[n] == [False, False] for n in names if n not in ("fma", "input_grouping", "subnormal"))


def test_conform_infer_on_emulated_traces(tmp_path, capsys, probe_runs):
    _need("m4-iso")
    for run in probe_runs["m4-iso"]:
        write_trace(tmp_path / f"{run.trace.metadata['probe']}.h5", run.trace)
    assert main(["conform", "--infer", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 combination(s) of the searched points reproduce every trace exactly" in out
    assert "fused_multiply_add[lif]=False" in out and "current_fused_multiply_add[lif_curr_exp]=False" in out
    assert "as a profile (points not probed at their defaults): ChipProfile(fused_multiply_add=False)" in out


def test_gcc_contracts_in_gnu_c_and_not_in_iso_c():
    _need("m4-gnu")
    _need("m4-iso")
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        pytest.skip("arm-none-eabi-objdump not on PATH (Debian: binutils-arm-none-eabi)")

    def count(build: str, mnemonic: str) -> int:
        text = subprocess.run([objdump, "-d", str(emulated_pe.program(build))], capture_output=True, text=True).stdout
        return sum(line.split("\t")[2].startswith(mnemonic) for line in text.splitlines() if line.count("\t") >= 2)

    # the membrane update of each dynamics and the two current decays: four contractions in GNU C, none in ISO C
    assert count("m4-gnu", "vfma.f32") == 4
    assert count("m4-iso", "vfma.f32") == 0 and count("m4-iso", "vmla.f32") == 0
    assert count("m4-iso", "vmul.f32") >= 4


def _quiet(n: int, model: str) -> snn.Network:
    """One population of n neurons that never receives or sends anything."""
    pop = snn.Population(n, model, {"threshold": 1e9, "alpha_decay": 0.5}, name="pop", record=["v"])
    return snn.Network(f"quiet_{n}").add(pop)


def test_instruction_counts_are_whole_deterministic_and_linear_in_the_slice():
    _need("m4-gnu")
    update = {}
    for n in (10, 20, 40):
        runs = [emulated_pe.run(_quiet(n, "lif_no_delay"), 4, build="m4-gnu") for _ in range(2)]
        first = runs[0].instructions()
        np.testing.assert_array_equal(first, runs[1].instructions())  # deterministic
        assert len(set(first[:, 0, 1].tolist())) == 1  # every quiet tick alike
        update[n] = int(first[0, 0, 1])
    per_neuron = (update[20] - update[10]) / 10
    assert per_neuron == (update[40] - update[20]) / 20 and per_neuron > 10  # an exact cost per neuron update
    fits = emulated_pe.instruction_fits(
        [emulated_pe.run(_quiet(n, "lif_no_delay"), 4, build="m4-gnu") for n in (10, 20, 40)]
    )
    assert fits["lif_no_delay"]["update"].per_event["neuron"] == pytest.approx(per_neuron)
    with pytest.raises(ConfigError, match="counts no instructions"):
        emulated_pe.run(_quiet(3, "lif"), 2, build="host-iso").instructions()


def test_the_program_refuses_a_corrupt_image_and_pack_refuses_float64(tmp_path):
    _need("host-iso")
    net = _quiet(3, "lif")
    image = emulated_pe.pack(net, 2, out_path=str(tmp_path / "records.bin"))
    path = tmp_path / "image.bin"
    path.write_bytes(image.data[:-8])  # truncated
    done = subprocess.run([str(emulated_pe.program("host-iso")), str(path)], capture_output=True)
    assert done.returncode != 0 and not (tmp_path / "records.bin").exists()
    with pytest.raises(ConfigError, match="float32"):
        emulated_pe.pack(net, 2, profile=ChipProfile(state_precision="float64"))
    with pytest.raises(ConfigError, match="unknown emulated-PE build"):
        emulated_pe.availability("m7")


def test_corrupt_images_never_make_the_program_read_or_write_out_of_bounds(tmp_path):
    # The program checks every offset, count and index of its image once at load time. Under ASan + UBSan, a
    # few hundred seeded corruptions of a real image (conv, delays, several PEs) must each end in a refusal or a run,
    # never in a sanitizer report or a crash.
    _need("host-asan")
    probe = probes.conv_x_axis_probe()
    net = probe.network
    net.add(snn.Projection(net.population("src"), net.population("conv_pool"), [[0, 1, 3, 0], [5, 2, -4, 0]]))
    data = bytearray(emulated_pe.pack(net, probe.timesteps, out_path=str(tmp_path / "r.bin")).data)
    exe, rng = str(emulated_pe.program("host-asan")), np.random.default_rng(3)
    env = {"ASAN_OPTIONS": "detect_leaks=0:exitcode=86", "UBSAN_OPTIONS": "halt_on_error=1:exitcode=87"}
    outcomes = set()
    for k in range(300):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), int(rng.integers(1, 4))):
            bad[pos] = int(rng.integers(0, 256)) if k % 2 else bad[pos] ^ (1 << int(rng.integers(0, 8)))
        path = tmp_path / "image.bin"
        path.write_bytes(bytes(bad))
        done = subprocess.run([exe, str(path)], capture_output=True, text=True, env=env, timeout=30)
        assert done.returncode < 80 and "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, (
            k,
            done.returncode,
            done.stderr[-2000:],
        )
        outcomes.add(done.returncode)
    assert 0 in outcomes and len(outcomes) > 5  # some corruptions are harmless, many are refused


def test_emulate_pe_tool_reports_json(tmp_path):
    _need("host-iso")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "emulate_pe.py"),
            "--json",
            "--builds",
            "host-iso",
            "--random",
            "1",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    n = len(probes.probe_suite()) + 5
    assert report["networks"] == report["bit_identical"] == n
    assert report["variants_inferred_correctly"] is True
    assert report["variants"]["host-iso"]["inferred_profiles"] == ["ChipProfile(fused_multiply_add=False)"]
    assert report["instructions"] is None and report["builds_run"] == ["host-iso"]
