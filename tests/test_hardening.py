"""Regression tests for the reproducers of the hardening issue: silent wrong results now warn (or fail under
strict), corrupted files raise named errors without killing the interpreter, memory is estimated before it is
spent, and the command line checks its inputs and outputs before it starts work.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import shutil
import warnings
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from s2sim import memory, snn
from s2sim.cli import main
from s2sim.errors import (
    ConfigError,
    ConversionError,
    MetadataWarning,
    ResourceError,
    RunTimeout,
    S2SimError,
    TimeConstantWarning,
    TraceError,
    WeightLossWarning,
)
from s2sim.nir_import import ConversionConfig, convert, from_nir, read_nir_file
from s2sim.simulator import Simulator
from s2sim.traces import from_result, read_trace, write_trace

DATA = Path(__file__).parent / "data"


def raises(kind, *fragments: str):
    return pytest.raises(kind, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


@contextlib.contextmanager
def budget(size: str):
    previous = memory.set_budget(size)
    try:
        yield
    finally:
        memory.set_budget(previous)


def lif(n, tau=5e-3):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))


def dense_graph(weight, tau=5e-3, metadata=None):
    n_out, n_in = weight.shape
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Linear(weight=weight),
        "lif": lif(n_out, tau),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False, metadata=metadata or {}
    )


def categories(record) -> set:
    return {type(w.message) for w in record}


# -- silent wrong results ------------------------------------------------------------------------------------------


def test_default_conversion_of_an_snntorch_graph_warns_three_times_and_strict_refuses():
    # snnTorch exports Linear weights of about 1/sqrt(fan_in) and tau = dt / (1 - beta) with dt = 1e-4, no dt
    weight = np.random.default_rng(0).uniform(-0.3, 0.3, (10, 16))
    graph = dense_graph(weight, tau=1e-4 / (1 - 0.9))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        convert(graph)
    assert {MetadataWarning, TimeConstantWarning, WeightLossWarning} <= categories(record)
    text = " ".join(str(w.message) for w in record)
    assert "all 160 non-zero weight(s) round to 0" in text and "'in->lif'" in text
    assert "tau of neuron 0 is 0.001, shorter than dt = 1" in text
    with raises(ConversionError, "dt", "strict"):
        convert(graph, ConversionConfig(strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right settings convert without a word
        convert(graph, ConversionConfig(dt=1e-4, scale_weights=True, conn_delay=0, integrator="forward"))


def test_rockpool_like_weights_of_0_04_warn_at_conversion_and_at_run(tmp_path):
    path = tmp_path / "rockpool.nir"
    nir.write(str(path), dense_graph(np.full((2, 3), 0.04), tau=0.02, metadata={"dt": 1e-3}))
    with pytest.warns(WeightLossWarning, match=r"'in->lif'.*all 6 non-zero weight\(s\) round to 0"):
        net, _, _ = from_nir(str(path))
    with pytest.warns(WeightLossWarning, match=r"weight rounding 'trunc'.*no input at all"):
        Simulator(num_threads=1).run_batch(net, timesteps=3)
    net.__dict__.pop("_loaded")
    with raises(ConfigError, "'in->lif'", "round to 0", "strict"):
        Simulator(num_threads=1, strict=True).run_batch(net, timesteps=3)


def test_avgpool_without_weight_scaling_warns_that_its_weights_vanish():
    nodes = {
        "in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "lif": lif(4),
        "out": nir.Output(output_type=None),
    }
    graph = nir.NIRGraph(
        nodes=nodes, edges=[("in", "pool"), ("pool", "lif"), ("lif", "out")], type_check=False, metadata={"dt": 1e-3}
    )
    with pytest.warns(WeightLossWarning, match=r"all 16 non-zero weight\(s\) round to 0"):
        convert(graph, ConversionConfig(conn_delay=0))


def test_losing_more_than_half_the_weight_mass_warns_and_less_does_not():
    def run(weights):
        src = snn.Population(3, "spike_list", {}, name="src")
        dst = snn.Population(1, "lif_no_delay", {}, name="dst")
        net = snn.Network("m").add(src, dst, snn.Projection(src, dst, [[i, 0, w, 0] for i, w in enumerate(weights)]))
        Simulator(num_threads=1).run_batch(net, timesteps=2)

    with pytest.warns(WeightLossWarning, match="loses 66% of the weight mass"):
        run([0.99, 0.99, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run([1.9, 1.9, 1.9])  # trunc keeps 1 of every 1.9: 47% lost
        run([0.0, 0.0, 0.0])  # nothing to lose


def test_graph_without_dt_metadata_warns_once_and_dt_or_metadata_silences_it():
    graph = dense_graph(np.full((2, 2), 3.0), tau=20.0)
    with pytest.warns(MetadataWarning, match=r"no 'dt' metadata.*dt = 1.0"):
        conv = convert(graph)
    assert conv.report.config["dt"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(graph, ConversionConfig(dt=1.0))
        convert(dense_graph(np.full((2, 2), 3.0), tau=20.0, metadata={"dt": 1.0}))


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("tau", -0.01, "'tau' of neuron 0 is -0.01; it must be positive"),
        ("tau", 0.0, "'tau' of neuron 0 is 0; it must be positive"),
        ("r", -1.0, "'r' of neuron 0 is -1; it must be positive"),
    ],
)
def test_non_positive_time_constants_and_resistance_are_errors(key, value, fragment):
    graph = dense_graph(np.full((2, 2), 3.0), metadata={"dt": 1e-4})
    setattr(graph.nodes["lif"], key, np.full(2, value))
    with raises(ConversionError, "'lif'", fragment):
        convert(graph)


@pytest.mark.parametrize("integrator, decay", [("forward", "-9"), ("exponential", "4.54e-05")])
def test_tau_shorter_than_dt_warns_with_the_resulting_decay(integrator, decay):
    graph = dense_graph(np.full((2, 2), 3.0), tau=1e-4, metadata={"dt": 1e-3})
    with pytest.warns(TimeConstantWarning, match=rf"tau of neuron 0 is 0.0001, shorter than dt = 0.001.*{decay}"):
        convert(graph, ConversionConfig(integrator=integrator))


@pytest.mark.parametrize("decay, effect", [(1.5, "grows without input"), (-0.25, "flips sign every tick")])
def test_decays_outside_0_1_warn_when_the_network_is_lowered(decay, effect):
    pop = snn.Population(3, "lif_curr_exp", {"exc_decay": [0.5, decay, 0.5]}, name="p")
    with pytest.warns(TimeConstantWarning, match=rf"'p': exc_decay of neuron 1 is {decay}.*{effect}"):
        Simulator(num_threads=1).run_batch(snn.Network("d").add(pop), timesteps=2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: snn.Population(2, "lif", {"threshold": [1.0, True]}, name="p"),
        lambda: snn.Population(2, "lif", {"threshold": 1 + 2j}, name="p"),
        lambda: snn.Population(2, "lif", {"threshold": "1.5"}, name="p"),
        lambda: snn.Population(2, "spike_list", {0: [1, True, 3]}, name="p"),
        lambda: snn.Population(2, "spike_list", {0: ["1", "2"]}, name="p"),
        lambda: snn.Projection(
            snn.Population(2, "spike_list", {}, name="a"),
            snn.Population(2, "lif", {}, name="b"),
            [[0, 0, 3, 0], [1, 1, True, 0]],
        ),
        lambda: snn.Projection(
            snn.Population(2, "spike_list", {}, name="a"), snn.Population(2, "lif", {}, name="b"), [[0, True, 3, 0]]
        ),
        lambda: snn.Conv2DProjection(
            snn.Population(4, "spike_list", {}, name="a"),
            snn.Population(1, "lif_conv2d", {}, name="b"),
            [[[[1.0, True], [1.0, 1.0]]]],
            {"in_height": 2, "in_width": 2},
        ),
    ],
)
def test_booleans_complex_numbers_and_numeric_text_are_refused_in_the_api(make):
    with pytest.raises(ConfigError, match=r"True|complex|string|'1"):
        make()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"dt": True}, "dt = True"),
        ({"dt": "1e-4"}, "dt = '1e-4'"),
        ({"dt": 1e-4 + 0j}, "dt"),
        ({"weight_scale_percentile": "50"}, "weight_scale_percentile = '50'"),
        ({"scale_weights": "no"}, "scale_weights = 'no'"),
        ({"strict": 1}, "strict = 1"),
    ],
)
def test_conversion_config_refuses_values_that_only_look_like_numbers_or_flags(kwargs, fragment):
    with raises(ConversionError, fragment):
        ConversionConfig(**kwargs)


@pytest.mark.parametrize("value", ["0.005", np.array(["0.005", "0.005"]), np.array([True, False]), 5e-3 + 1j])
def test_nir_parameters_must_be_real_numbers(value):
    graph = dense_graph(np.full((2, 2), 3.0), metadata={"dt": 1e-4})
    graph.nodes["lif"].tau = value
    with raises(ConversionError, "'lif'", "'tau'", "real numbers"):
        convert(graph)


# -- NIR graphs and files: named errors only ---------------------------------------------------------------------


def conv_graph():
    nodes = {
        "in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(
            input_shape=np.array([8, 8]),
            weight=np.full((2, 1, 3, 3), 9.0),
            stride=np.array([1, 1]),
            padding=np.array([1, 1]),
            dilation=np.array([1, 1]),
            groups=1,
            bias=np.zeros(2),
        ),
        "lif": lif(128),
        "out": nir.Output(output_type={"output": np.array([2, 8, 8])}),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("in", "conv"), ("conv", "lif"), ("lif", "out")], type_check=False, metadata={"dt": 1e-4}
    )


@pytest.mark.parametrize(
    "mutate, fragments",
    [
        (lambda g: g.metadata.update(dt="abc"), ["metadata dt = 'abc'", "positive finite number"]),
        (lambda g: g.metadata.update(dt=-1.0), ["metadata dt = -1.0"]),
        (lambda g: setattr(g.nodes["conv"], "stride", np.array([np.inf, 1])), ["'conv'", "stride"]),
        (lambda g: setattr(g.nodes["conv"], "stride", np.array([0, 1])), ["'conv'", "stride", "between 1"]),
        (lambda g: setattr(g.nodes["conv"], "padding", "full"), ["'conv'", "padding", "'full'"]),
        (lambda g: setattr(g.nodes["conv"], "groups", 1.5), ["'conv'", "groups"]),
        (lambda g: setattr(g.nodes["conv"], "bias", np.zeros(3)), ["'conv'", "bias has 3 values for 2"]),
        (lambda g: setattr(g.nodes["conv"], "weight", np.zeros((2, 1, 3))), ["'conv'", "weight has shape (2, 1, 3)"]),
        (lambda g: g.nodes["in"].input_type.update(input=np.array([np.nan, 8, 8])), ["'in'", "Input shape"]),
        (
            lambda g: g.nodes["in"].input_type.update(input=np.array([1, 8192, 8192])),
            ["'in'", "67108864 neurons", "16777216"],
        ),
        (lambda g: setattr(g, "edges", [("in", "conv"), ("conv", "lif", "x")]), ["edge", "not a (source, target)"]),
    ],
)
def test_malformed_graphs_raise_conversion_errors(mutate, fragments):
    graph = conv_graph()
    mutate(graph)
    with raises(ConversionError, *fragments):
        convert(graph, ConversionConfig(conn_delay=0))


def exported_graph():
    from s2sim.nir_export import to_nir

    src = snn.Population(2, "spike_list", {0: [1]}, name="src")
    dst = snn.Population(2, "lif", {"threshold": 3.0}, name="dst")
    return to_nir(snn.Network("e").add(src, dst, snn.Projection(src, dst, [[0, 0, 5, 1], [1, 1, 4, 2]])))


@pytest.mark.parametrize(
    "node_key, key, value, fragment",
    [
        ("s2sim_pre_idx", "s2sim_pre_idx", None, "lacks 's2sim_pre_idx'"),
        (
            "s2sim_pre_idx",
            "s2sim_post_idx",
            np.array([0.5, 1.0]),
            "'s2sim_post_idx' holds values that are not finite integers",
        ),
        ("s2sim_pre_idx", "s2sim_delays", np.array([1, 2, 3]), "'s2sim_delays' has 3 values; expected 2"),
        ("s2sim_pre_idx", "s2sim_weights", np.array(["5", "4"]), "'s2sim_weights' must be real numbers"),
        # an input node's spikes: losing their ticks used to drop every input spike silently
        ("s2sim_spike_neurons", "s2sim_spike_ticks", None, "lacks 's2sim_spike_ticks'"),
        ("s2sim_spike_neurons", "s2sim_spike_ticks", np.array([1, 2]), "'s2sim_spike_ticks' has 2 values; expected 1"),
    ],
)
def test_damaged_s2sim_metadata_is_a_conversion_error(node_key, key, value, fragment):
    # node_key picks the node: a weight node (s2sim_pre_idx) or an input node (s2sim_spike_neurons)
    graph = exported_graph()
    node = next(n for n in graph.nodes.values() if node_key in (n.metadata or {}))
    if value is None:
        del node.metadata[key]
    else:
        node.metadata[key] = value
    with raises(ConversionError, fragment):
        convert(graph)


def unzip(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name.removesuffix(".gz")
    path.write_bytes(gzip.decompress((DATA / name).read_bytes()))
    return path


#: The HDF5 library the crash and hang fixtures were recorded with (byte-corrupted files found by tools/fuzz.py).
FIXTURE_HDF5 = "2.0.0"


def test_a_nir_file_that_crashes_hdf5_is_a_trace_error_when_read_isolated(tmp_path):
    # 7 bytes changed in a nir.write file: plain nir.read (and h5py) dies of SIGSEGV on it
    path = unzip("segfault.nir.gz", tmp_path)
    if h5py.version.hdf5_version != FIXTURE_HDF5:  # another HDF5 may read it or fail otherwise, never crash us
        with contextlib.suppress(S2SimError):
            from_nir(str(path), isolate=True)
        return
    with raises(TraceError, "segfault.nir", "reader process died", "SIGSEGV"):
        from_nir(str(path), isolate=True)
    code, err = run_cli("convert", str(path))
    assert code == 2 and "reader process died (killed by SIGSEGV)" in err


def test_a_nir_file_that_hangs_hdf5_times_out(tmp_path):
    from s2sim.isolation import call_isolated

    path = unzip("hang.nir.gz", tmp_path)  # plain nir.read loops forever on it
    if h5py.version.hdf5_version != FIXTURE_HDF5:
        with contextlib.suppress(S2SimError):
            call_isolated(read_nir_file, str(path), what=f"NIR file {str(path)!r}", timeout=1.0)
        return
    with raises(RunTimeout, "hang.nir", "longer than 1 s"):
        call_isolated(read_nir_file, str(path), what=f"NIR file {str(path)!r}", timeout=1.0)


def _segfault(_):
    import ctypes

    ctypes.string_at(0)


def _sleep(_):
    import time

    time.sleep(60)


def _allocate(n):
    return np.ones(n, np.uint8).sum()


def _refuse(_):
    raise ConfigError("refused in the child")


def test_isolation_turns_death_hang_memory_and_errors_into_named_errors():
    from s2sim.isolation import call_isolated

    with raises(TraceError, "thing", "died", "SIGSEGV"):
        call_isolated(_segfault, None, what="thing")
    with raises(RunTimeout, "thing", "longer than 0.5 s"):
        call_isolated(_sleep, None, what="thing", timeout=0.5)
    with raises(ConfigError, "refused in the child"):
        call_isolated(_refuse, None, what="thing")
    with budget("200M"), raises(ResourceError, "thing", "budget of 200.0 MiB"):
        call_isolated(_allocate, 2 << 30, what="thing")  # the child's address space is limited to the budget
    assert call_isolated(_allocate, 1000, what="thing") == 1000


def test_isolated_reading_returns_what_plain_reading_does(tmp_path):
    path = tmp_path / "ok.nir"
    nir.write(str(path), conv_graph())
    cfg = ConversionConfig(conn_delay=0)
    plain, isolated = convert(str(path), cfg), convert(str(path), cfg, isolate=True)
    assert plain.report.to_dict() == isolated.report.to_dict()


def test_a_declared_4000x4000_conv_is_refused_before_memory_is_spent(tmp_path):
    graph = conv_graph()
    graph.nodes["in"].input_type["input"] = np.array([1, 4000, 4000])
    graph.nodes["conv"].weight = np.full((1, 1, 3, 3), 9.0)
    graph.nodes["conv"].bias = np.zeros(1)
    graph.nodes["lif"] = lif(1)  # scalar parameters: its size comes from the 16 M inputs
    with budget("1G"), raises(ResourceError, "converting NIR graph", "32000000 neurons", "GiB", "budget of 1.0 GiB"):
        convert(graph, ConversionConfig(conn_delay=0))


# -- traces ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def trace_file(tmp_path):
    src = snn.Population(2, "spike_list", {0: [1, 3]}, name="src")
    dst = snn.Population(2, "lif", {"threshold": 3.0}, name="dst", record=["spikes", "v"])
    net = snn.Network("t").add(src, dst, snn.Projection(src, dst, [[0, 0, 5, 0], [1, 1, 4, 1]]))
    path = tmp_path / "t.h5"
    write_trace(path, from_result(net, Simulator(num_threads=1).run_batch(net, timesteps=6)))
    return path


def mutated(path: Path, edit) -> Path:
    out = path.with_name("bad.h5")
    shutil.copy(path, out)
    with h5py.File(out, "r+") as f:
        edit(f)
    return out


def _replace(f, key, value):
    del f[key]
    f[key] = value


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda f: _replace(f, "inputs", np.zeros(3)), "damaged or incomplete trace (AttributeError"),
        (lambda f: f.attrs.__setitem__("timesteps", "6"), "attribute 'timesteps' = '6' must be an integer"),
        (lambda f: f.attrs.__setitem__("timesteps", True), "attribute 'timesteps' = True must be an integer"),
        (lambda f: f.attrs.__setitem__("version", 1.0), "attribute 'version' = 1.0 must be an integer"),
        (lambda f: _replace(f, "network", '{"format": '), "/network is not valid JSON"),
        (lambda f: _replace(f, "metadata", "[1, 2]"), "must hold JSON objects"),
        (
            lambda f: (
                _replace(f, "populations/0/v", np.zeros((6, 2), np.float32)),
                f["populations/0/v"].attrs.__setitem__("dtype", "float32"),
            ),
            "stores float32 bit patterns",
        ),
        (lambda f: f["populations/0/v"].attrs.__setitem__("dtype", "float16"), "dtype attribute 'float16'"),
        (
            lambda f: _replace(
                f,
                "network",
                json.dumps({"format": "s2sim-network", "version": 1, "name": "x", "populations": 5, "projections": []}),
            ),
            "'populations' must be a list",
        ),
    ],
)
def test_damaged_traces_raise_trace_errors(trace_file, edit, fragment):
    bad = mutated(trace_file, edit)
    for isolate in (False, True):
        with raises(TraceError, "bad.h5", fragment):
            read_trace(bad, isolate=isolate)
    code, err = run_cli("conform", str(trace_file), str(bad))
    assert code == 2 and fragment in err  # unreadable is an error (2), never a mismatch (1)


def test_truncated_and_byte_corrupted_traces_exit_2_from_conform(trace_file):
    data = trace_file.read_bytes()
    bad = trace_file.with_name("cut.h5")
    bad.write_bytes(data[: len(data) // 2])
    code, err = run_cli("conform", str(trace_file), str(bad))
    assert code == 2 and "cut.h5" in err and "Traceback" not in err


def test_a_small_trace_declaring_huge_populations_is_refused_before_allocation(trace_file):
    def declare_huge(f):
        data = json.loads(f["network"][()])
        template = data["populations"][0]
        data["populations"] = [dict(template, name=f"p{i}", size=1 << 24) for i in range(30)]
        data["projections"] = []
        _replace(f, "network", json.dumps(data))

    bad = mutated(trace_file, declare_huge)
    assert bad.stat().st_size < 40_000
    with budget("1G"), raises(ResourceError, "bad.h5", "GiB", "budget of 1.0 GiB"):
        read_trace(bad)


def test_a_trace_whose_arrays_declare_gigabytes_is_refused_before_reading(trace_file):
    def huge_dataset(f):
        del f["inputs/0"]
        ds = f["inputs"].create_dataset(
            "0", shape=(1 << 20, 1 << 14), dtype=np.uint8, compression="gzip", chunks=(1024, 1024)
        )
        ds.attrs["name"] = "src"

    bad = mutated(trace_file, huge_dataset)
    with budget("1G"), raises(ResourceError, "reading trace", "16.0 GiB", "budget of 1.0 GiB"):
        read_trace(bad, isolate=True)


# -- the command line ------------------------------------------------------------------------------------------------


def run_cli(*argv) -> tuple[int, str]:
    import contextlib as cl
    import io

    err = io.StringIO()
    with cl.redirect_stderr(err), cl.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.nir"
    nir.write(str(path), dense_graph(np.full((2, 3), 0.3), tau=20.0, metadata={"dt": 1.0}))
    return path


def test_run_with_no_samples_fails_before_writing_anything(model_file, tmp_path):
    np.savez(tmp_path / "x.npz", **{"in": np.zeros((0, 5, 3), np.uint8)})
    code, err = run_cli("run", str(model_file), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "o.h5"))
    assert code == 2 and "0 sample(s)" in err and "nothing to simulate" in err
    assert not (tmp_path / "o.h5").exists()


def test_run_with_a_trace_into_a_missing_folder_fails_before_the_run(model_file, tmp_path):
    np.savez(tmp_path / "x.npz", **{"in": np.zeros((1, 5, 3), np.uint8)})
    code, err = run_cli(
        "run",
        str(model_file),
        "--input",
        str(tmp_path / "x.npz"),
        "-o",
        str(tmp_path / "o.h5"),
        "--trace",
        str(tmp_path / "nope" / "t.h5"),
    )
    assert code == 2 and "--trace" in err and "does not exist" in err
    assert not (tmp_path / "o.h5").exists()


def test_cli_prints_each_warning_once_and_strict_fails_on_them(model_file, tmp_path):
    np.savez(tmp_path / "x.npz", **{"in": np.ones((1, 5, 3), np.uint8)})
    args = ["run", str(model_file), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "o.h5")]
    code, err = run_cli(*args)
    assert code == 0
    lines = [ln for ln in err.splitlines() if "WeightLossWarning" in ln]
    assert len(lines) == 1 and lines[0].startswith("s2sim run: warning: ") and "'in->lif'" in lines[0]
    code, err = run_cli(*args, "--strict")
    assert code == 2 and "s2sim run: error:" in err and "strict" in err


def test_cli_memory_budget_refuses_with_the_estimate(model_file, tmp_path):
    np.savez(tmp_path / "x.npz", **{"in": np.zeros((1, 5, 3), np.uint8)})
    code, err = run_cli(
        "run",
        str(model_file),
        "--input",
        str(tmp_path / "x.npz"),
        "-o",
        str(tmp_path / "o.h5"),
        "--ticks",
        str(10**9),
        "--memory-budget",
        "100M",
    )
    assert code == 2 and "budget of 100.0 MiB" in err and "estimated" in err
    code, err = run_cli("convert", str(model_file), "--memory-budget", "lots")
    assert code == 2 and "'lots'" in err


def test_cli_ctrl_c_exits_130(model_file, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    np.savez(tmp_path / "x.npz", **{"in": np.zeros((1, 5, 3), np.uint8)})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s2sim",
            "run",
            str(model_file),
            "--input",
            str(tmp_path / "x.npz"),
            "-o",
            str(tmp_path / "o.h5"),
            "--ticks",
            str(10**8),
            "--no-voltages",
            "--outputs-only",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # start-up, conversion, then the long run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "s2sim run: interrupted" in err and "Traceback" not in err


def test_every_cli_failure_is_a_named_error_not_a_traceback(tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(500))
    for argv in (
        ["convert", str(tmp_path / "junk.h5")],
        ["conform", str(tmp_path / "junk.h5")] * 1 + [str(tmp_path / "junk.h5")],
        ["conform", "--infer", str(tmp_path)],
    ):
        code, err = run_cli(*argv)
        assert code == 2 and "error:" in err and "Traceback" not in err, (argv, err)


def test_s2sim_errors_and_warnings_share_base_classes():
    assert issubclass(ResourceError, (S2SimError, MemoryError))
    assert issubclass(RunTimeout, (S2SimError, TimeoutError))
