"""The kernel's speed paths give the oracle's results where the property tests rarely go, and their inputs are
checked: a busy conv layer on every dense product, pools too large for it, repeated pairs in a dense-looking list,
long connection lists converted chunk by chunk, a sample split over threads, inputs checked inside the kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_oracle_vs_kernel import assert_identical

from s2sim import ChipProfile, oracle, snn
from s2sim.errors import ConfigError
from s2sim.lowering import PROJ_DENSE, PROJ_SPARSE, lower
from s2sim.simulator import Simulator
from s2sim.tuning import NEVER, KernelTuning, amx_available, amx_multiply_ns
from s2sim.variants import Point, profile_of

DENSE_PRODUCTS = [
    KernelTuning(conv="dense", matrix_unit=True),
    KernelTuning(conv="dense", matrix_unit=False),
    KernelTuning(conv="events"),
]


def _conv_net(c_in: int, c_out: int, side: int, k: int, pool: int, record=("spikes", "v", "counts"), seed=0):
    rng = np.random.default_rng(seed)
    inp = snn.Population(c_in * side * side, "spike_list", {}, name="in")
    out_side = side // pool - k + 1
    conv = snn.Population(
        c_out * out_side * out_side,
        "lif_conv2d",
        {"threshold": 300.0, "alpha_decay": 0.75},
        name="conv",
        record=list(record),
    )
    proj = snn.Conv2DProjection(
        inp,
        conv,
        rng.integers(-128, 128, (c_in, c_out, k, k)),
        {"in_height": side, "in_width": side, "pool_x": pool, "pool_y": pool},
    )
    return snn.Network("conv").add(inp, conv, proj), rng


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS, ids=["amx", "simd", "events"])
def test_busy_wide_conv_on_every_product(tuning):
    # 20 input channels x 5 taps = 100 bytes per kernel row (two tap chunks), 40 output channels (three groups,
    # the last one partial), 90 % of the inputs spiking: every product against the oracle
    net, rng = _conv_net(20, 40, 12, 5, 1)
    x = (rng.random((2, 4, net.populations[0].size)) < 0.9).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 4)
    got = Simulator(tuning=tuning).run_batch(net, {"in": x}, 4)
    assert want.spikes["conv"].any()
    assert_identical(want, got)


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS[:2], ids=["amx", "simd"])
@pytest.mark.parametrize(
    "c_in, c_out, side, grouping",
    [
        (3, 24, 19, "input_first"),  # a pair of channel groups whose second is partial; rows of 17 in tiles of 9, 8
        (3, 20, 18, "input_first"),  # a partial second group on whole position tiles (rows of 16)
        (5, 48, 10, "left_to_right"),  # a pair and a last group alone, each for both ring planes (negatives apart)
        (2, 32, 20, "input_first"),  # whole pairs written straight into the target's sums
    ],
)
def test_dense_product_channel_groups(tuning, c_in, c_out, side, grouping):
    # the AMX product takes its channel groups two at a time (one map tile load for both) and a last odd group
    # alone; every combination of whole and partial groups and position tiles, on both products, against the oracle
    net, rng = _conv_net(c_in, c_out, side, 3, 1)
    profile = ChipProfile(input_grouping=grouping)
    x = (rng.random((2, 4, net.populations[0].size)) < 0.5).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 4, profile=profile)
    assert want.spikes["conv"].any()
    assert_identical(want, Simulator(profile, num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 4))


@pytest.mark.parametrize(
    "c_in, c_out, side, k_h, k_w, pool, pad, grouping, threads",
    [
        (2, 16, 20, 5, 5, 1, 0, "input_first", 1),  # the DVS input layer's shape: 10-byte records, one tile per row
        (1, 24, 19, 3, 5, 1, 0, "input_first", 1),  # a non-square kernel, a pair of channel groups (second partial)
        (3, 40, 22, 3, 3, 2, 1, "left_to_right", 1),  # pooled and padded, a pair and an odd group, two ring planes
        (2, 16, 72, 5, 5, 1, 0, "input_first", 1),  # rows of 68 outputs in five tiles, stacked rows of 11 vectors
        (4, 16, 12, 4, 4, 1, 0, "input_first", 1),  # a window of exactly 64 bytes (16 quads)
        (2, 16, 20, 5, 5, 1, 0, "input_first", 2),  # a split sample: a thread's rows start from zeros mid-map
    ],
)
def test_stacked_product(c_in, c_out, side, k_h, k_w, pool, pad, grouping, threads):
    # on AMX, a layer whose whole window fits one tile row multiplies windows of interleaved map rows (rebuilt
    # each tick by byte permutes); with and without it, against the oracle, bit for bit
    rng = np.random.default_rng(side + k_w)
    inp = snn.Population(c_in * side * side, "spike_list", {}, name="in")
    oh, ow = side // pool + 2 * pad - k_h + 1, side // pool + 2 * pad - k_w + 1
    conv = snn.Population(c_out * oh * ow, "lif_conv2d", {"threshold": 250.0, "alpha_decay": 0.75}, name="conv")
    conv.record = ["spikes", "v"]
    geometry = {"in_height": side, "in_width": side, "pool_x": pool, "pool_y": pool}
    geometry.update({f"pad_{edge}": pad for edge in ("top", "bottom", "left", "right")})
    w = rng.integers(-128, 128, (c_in, c_out, k_h, k_w))
    net = snn.Network("stacked").add(inp, conv, snn.Conv2DProjection(inp, conv, w, geometry))
    profile = ChipProfile(input_grouping=grouping)
    x = (rng.random((2 if threads == 1 else 1, 5, inp.size)) < 0.3).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 5, profile=profile)
    assert want.spikes["conv"].any()
    stacked = KernelTuning(conv="dense", split="always")
    assert ("stacked" in lower(net, profile, tuning=stacked).projections[0].arrays) == amx_available()
    for tuning in (stacked, KernelTuning(conv="dense", split="always", stacked_map=False)):
        got = Simulator(profile, num_threads=threads, tuning=tuning).run_batch(net, {"in": x}, 5)
        assert_identical(want, got)


def test_window_past_one_tile_row_is_not_stacked():
    # 3 channels x 5 x 5 taps = 75 bytes: more than one tile row holds, so the plain product (one multiply per
    # kernel row) serves it; a stride of 2 has no stacked product either
    net, _ = _conv_net(3, 16, 12, 5, 1)
    assert "stacked" not in lower(net, tuning=KernelTuning(conv="dense")).projections[0].arrays
    inp = snn.Population(2 * 12 * 12, "spike_list", {}, name="in")
    conv = snn.Population(16 * 10 * 5, "lif_conv2d", {"threshold": 300.0, "alpha_decay": 0.75}, name="conv")
    w = np.ones((2, 16, 3, 3), np.int64)
    proj = snn.Conv2DProjection(inp, conv, w, {"in_height": 12, "in_width": 12, "stride_x": 2})
    net = snn.Network("strided").add(inp, conv, proj)
    assert "stacked" not in lower(net, tuning=KernelTuning(conv="dense")).projections[0].arrays


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS, ids=["amx", "simd", "events"])
@pytest.mark.parametrize("pool", [1, 2])
@pytest.mark.parametrize("channels", [16, 32, 80])
def test_conv_feeding_conv(tuning, pool, channels):
    # a 16- to 80-channel conv layer feeds a second one (with a fused sum-pool and padding): the dense path then
    # pools the first layer's spike flags into its map directly (2 x 2 with 16 or 32 channels by permutes of whole
    # vectors: rows of 7 pooled cells end in a partial vector, 48 bytes with 16 channels; 80 channels cell by cell,
    # a 64-channel add and a 16-channel one)
    net, rng = _conv_net(2, channels, 16, 3, 1)
    first = net.populations[1]
    side = 14 // pool
    second = snn.Population(
        8 * side * side,
        "lif_conv2d",
        {"threshold": 200.0, "alpha_decay": 0.5},
        name="second",
        record=["spikes", "v", "counts"],
    )
    net.add(
        second,
        snn.Conv2DProjection(
            first,
            second,
            rng.integers(-128, 128, (channels, 8, 3, 3)),
            {
                "in_height": 14,
                "in_width": 14,
                "pool_x": pool,
                "pool_y": pool,
                "pad_top": 1,
                "pad_left": 1,
                "pad_bottom": 1,
                "pad_right": 1,
            },
        ),
    )
    first.params = {"threshold": 60.0, "alpha_decay": 0.75}
    x = (rng.random((2, 6, net.populations[0].size)) < 0.6).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 6)
    assert want.spikes["second"].any() and want.spikes["conv"].mean() > 0.05
    assert lower(net, tuning=tuning).projections[1].geometry["pre_channel_last"] == 1
    assert_identical(want, Simulator(num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 6))


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS[:2], ids=["amx", "simd"])
def test_pooled_flags_of_a_wide_layer_in_segments(tuning):
    # the dense path pools a 64-channel layer's spike flags 2 x 2 into its map through a line buffer of 4096
    # bytes: a row of 42 pooled cells of 128 bytes takes two segments
    rng = np.random.default_rng(5)
    inp = snn.Population(2 * 6 * 86, "spike_list", {}, name="in")
    first = snn.Population(64 * 4 * 84, "lif_conv2d", {"threshold": 30.0, "alpha_decay": 0.75}, name="first")
    second = snn.Population(8 * 2 * 42, "lif_conv2d", {"threshold": 60.0, "alpha_decay": 0.5}, name="second")
    second.record = ["spikes", "v"]
    net = snn.Network("wide").add(
        inp,
        first,
        second,
        snn.Conv2DProjection(inp, first, rng.integers(-40, 41, (2, 64, 3, 3)), {"in_height": 6, "in_width": 86}),
        snn.Conv2DProjection(
            first,
            second,
            rng.integers(-60, 61, (64, 8, 1, 1)),
            {"in_height": 4, "in_width": 84, "pool_x": 2, "pool_y": 2},
        ),
    )
    x = (rng.random((1, 5, inp.size)) < 0.5).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 5)
    assert want.spikes["second"].any()
    assert lower(net, tuning=tuning).projections[1].geometry["pre_channel_last"] == 1
    assert_identical(want, Simulator(num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 5))


def _two_conv_layers(first_listed: str, extra_input: bool):
    """Network in -> conv (16 ch) -> second (pool 2, padding).

    ``first_listed`` "feeder" or "reader" says which of the two conv projections the network holds first;
    ``extra_input`` adds a list projection into ``conv``.
    """
    net, rng = _conv_net(2, 16, 12, 3, 1)
    inp, first = net.populations
    feeder = net.projections[0]
    second = snn.Population(
        8 * 5 * 5,
        "lif_conv2d",
        {"threshold": 200.0, "alpha_decay": 0.5},
        name="second",
        record=["spikes", "v", "counts"],
    )
    reader = snn.Conv2DProjection(
        first,
        second,
        rng.integers(-128, 128, (16, 8, 3, 3)),
        {
            "in_height": 10,
            "in_width": 10,
            "pool_x": 2,
            "pool_y": 2,
            "pad_top": 1,
            "pad_left": 1,
            "pad_bottom": 1,
            "pad_right": 1,
        },
    )
    first.params = {"threshold": 60.0, "alpha_decay": 0.75}
    projs = [feeder, reader] if first_listed == "feeder" else [reader, feeder]
    if extra_input:
        projs.append(snn.Projection(inp, first, [[i, (7 * i) % first.size, 40, 0] for i in range(inp.size)]))
    out = snn.Network("two").add(inp, first, second, *projs)
    return out, rng


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS[:2], ids=["amx", "simd"])
@pytest.mark.parametrize("first_listed, extra_input", [("feeder", False), ("reader", False), ("feeder", True)])
def test_dense_product_updating_its_target(tuning, first_listed, extra_input):
    # the dense product updates its target as it computes it only where nothing else writes into the target and
    # every projection reading the target's spike flags is delivered first (projections go last to first): with
    # the reading conv listed before the feeding one, or a second input into the target, the update stays in
    # phase 2. Each arrangement equals the oracle, spikes, voltages and event counts.
    net, rng = _two_conv_layers(first_listed, extra_input)
    x = (rng.random((2, 8, net.populations[0].size)) < 0.6).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 8)
    assert want.spikes["second"].any() and want.spikes["conv"].mean() > 0.05
    assert_identical(want, Simulator(num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 8))


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("reader", ["conv", "conv_counted", "conv_and_list"])
def test_spike_list_made_only_for_a_reader(precision, reader):
    # a fused conv layer counts its spikes and lists them after its update only when next tick's delivery reads
    # the list: its reader (pool 2 into a second conv) pools the flags when dense, so the list is read only in
    # ticks quiet enough for the reader's event path; quiet and busy ticks alternate here. A recorded event count
    # of the reader's target, or a list projection from the layer, makes every tick read the list.
    net, rng = _two_conv_layers("feeder", False)
    inp, first, second = net.populations
    second.record = ["spikes", "v", "counts"] if reader == "conv_counted" else ["spikes", "v"]
    if reader == "conv_and_list":
        third = snn.Population(20, "lif_no_delay", {"threshold": 50.0, "alpha_decay": 0.5}, name="third")
        third.record = ["spikes", "v"]
        net.add(third, snn.Projection(first, third, [[i, i % 20, 30, 0] for i in range(0, first.size, 3)]))
    first.params = {"threshold": 150.0, "alpha_decay": 0.5}
    x = (rng.random((2, 12, inp.size)) < np.array([0.2, 0.0, 0.0, 0.02] * 3)[None, :, None]).astype(np.uint8)
    profile = ChipProfile(state_precision=precision)
    sim = Simulator(profile=profile, num_threads=1)
    dense_from = sim.load(net).lowered.projections[1].geometry["dense_from"]
    want = oracle.run_batch(net, {"in": x}, 12, profile=profile)
    counts = want.spikes["conv"].reshape(2, 12, -1).sum(axis=2)
    assert ((counts > 0) & (counts < dense_from)).any() and (counts >= dense_from).any()  # both paths
    assert want.spikes["second"].any()
    assert_identical(want, sim.run_batch(net, {"in": x}, 12))


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS[:2], ids=["amx", "simd"])
@pytest.mark.parametrize(
    "c_in, c_out, side, precision",
    [
        (2, 16, 32, "float32"),  # the input layer's stacked product: 7 bands of 4 rows x 448, 2 slices each
        (16, 32, 24, "float32"),  # channel pairs: 7 bands of 3 rows x 640 (2 slices), the last of 2 rows
        (16, 32, 24, "float64"),
    ],
)
def test_dense_product_updating_the_band_before_in_slices(tuning, c_in, c_out, side, precision):
    # on the dense path each band's update runs in slices of 1024 neurons inside the next band's product, the last
    # band's after it; bands here are larger than a slice and not all equal. Spikes, voltages and counts of every
    # tick equal the oracle's, on both products and both state precisions.
    net, rng = _conv_net(c_in, c_out, side, 5, 1, seed=side)
    x = (rng.random((2, 6, net.populations[0].size)) < 0.3).astype(np.uint8)
    profile = ChipProfile(state_precision=precision)
    want = oracle.run_batch(net, {"in": x}, 6, profile=profile)
    assert 0.01 < want.spikes["conv"].mean() < 0.5
    got = Simulator(profile=profile, num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 6)
    assert_identical(want, got)


@pytest.mark.parametrize("tuning", DENSE_PRODUCTS[:2], ids=["amx", "simd"])
@pytest.mark.parametrize(
    "c_in, height, width, params",
    [
        (2, 9, 40, {}),  # 40 columns: one whole 32-column permute and a part of one
        (1, 7, 33, {"pad_left": 2, "pad_right": 1, "pad_top": 1}),  # padded: the map's rows and columns shift
        (2, 12, 21, {"stride_x": 2, "stride_y": 3}),  # strided: the last input row and column reach no output
    ],
)
def test_dense_map_laid_out_from_the_input_row(tuning, c_in, height, width, params):
    # an input population of one or two channels fills the dense product's map from its input row, the channel
    # rows interleaved, instead of counting its spikes one by one (map_planes); both give the oracle's results
    rng = np.random.default_rng(width)
    inp = snn.Population(c_in * height * width, "spike_list", {}, name="in")
    proj_params = {"in_height": height, "in_width": width, **params}
    w = rng.integers(-60, 61, (c_in, 16, 3, 3))
    pad = {key: params.get(key, 0) for key in ("pad_top", "pad_bottom", "pad_left", "pad_right")}
    oh = (height + pad["pad_top"] + pad["pad_bottom"] - 3) // params.get("stride_y", 1) + 1
    ow = (width + pad["pad_left"] + pad["pad_right"] - 3) // params.get("stride_x", 1) + 1
    conv = snn.Population(16 * oh * ow, "lif_conv2d", {"threshold": 90.0, "alpha_decay": 0.8}, name="conv")
    conv.record = ["spikes", "v"]
    net = snn.Network("planes").add(inp, conv, snn.Conv2DProjection(inp, conv, w, proj_params))
    assert lower(net, tuning=tuning).projections[0].geometry["map_planes"] == 1
    x = (rng.random((2, 5, inp.size)) < 0.4).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 5)
    assert want.spikes["conv"].any()
    assert_identical(want, Simulator(num_threads=1, tuning=tuning).run_batch(net, {"in": x}, 5))


@pytest.mark.parametrize("c_in", [3, 70])
def test_event_path_updating_its_target_band_by_band(c_in):
    # the event path also updates its target band by band of output rows (4 rows of 16 x 32 here, 5 bands), each
    # band taking the spikes that reach it through one cursor per run of a channel-first list (3 runs), or, past
    # 64 runs (70 channels), testing every spike; strided, padded rows make the reach of a band uneven
    rng = np.random.default_rng(c_in)
    side, k = 36, 5
    inp = snn.Population(c_in * side * side, "spike_list", {}, name="in")
    out_side = (side + 4 - k) // 2 + 1
    conv = snn.Population(32 * out_side * out_side, "lif_conv2d", {"threshold": 40.0, "alpha_decay": 0.75}, name="conv")
    conv.record = ["spikes", "v"]
    params = {"in_height": side, "in_width": side, "stride_x": 2, "stride_y": 2}
    params |= {"pad_top": 2, "pad_bottom": 2, "pad_left": 2, "pad_right": 2}
    net = snn.Network("bands").add(
        inp, conv, snn.Conv2DProjection(inp, conv, rng.integers(-30, 31, (c_in, 32, k, k)), params)
    )
    x = (rng.random((1, 4, inp.size)) < 0.3 / c_in).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 4)
    assert want.spikes["conv"].any()
    assert_identical(want, Simulator(num_threads=1, tuning=KernelTuning(conv="events")).run_batch(net, {"in": x}, 4))


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "per_neuron"])
@pytest.mark.parametrize("reset", ["reset_by_subtraction", "reset_to_v_reset"])
@pytest.mark.parametrize("threshold_op, fma", [(">=", False), (">", True)])
def test_vector_lif_update_in_every_variant(uniform, reset, threshold_op, fma):
    # 200 neurons: three blocks of 64 on the vector update that lists spikes from its threshold masks, and a tail
    # of 8 on the plain loop; per-neuron parameters differ neuron by neuron (i_offset 0.0 at neuron 0, where a
    # uniform zero offset skips its add), driven by a sparse input so that V crosses the threshold often
    rng = np.random.default_rng(7)
    n = 200

    def param(values: list[float]):
        return values[0] if uniform else rng.choice(values, n)

    # values with few binary digits, so that V often lands exactly on the threshold (where > and >= differ)
    offset = 0.0 if uniform else np.concatenate([[0.0], rng.choice([-0.5, 0.25, 1.0], n - 1)])
    params = {
        "threshold": param([40.0, 24.0, 33.0]),
        "alpha_decay": param([0.5, 0.75, 0.875]),
        "i_offset": offset,
        "v_reset": param([-2.5, 0.0, 3.0]),
        "v_init": rng.integers(-10, 30, n).astype(float),
        "reset": reset,
    }
    inp = snn.Population(300, "spike_list", {}, name="in")
    pop = snn.Population(n, "lif_no_delay", params, name="pop", record=["spikes", "v"])
    pairs = np.unique(np.stack([rng.integers(0, 300, 4000), rng.integers(0, n, 4000)], axis=1), axis=0)
    conns = np.column_stack([pairs, rng.integers(-60, 90, len(pairs)), np.zeros(len(pairs))])
    net = snn.Network("update").add(inp, pop, snn.Projection(inp, pop, conns))
    x = (rng.random((2, 30, 300)) < 0.05).astype(np.uint8)
    model = "lif_no_delay"
    profile = profile_of({Point("threshold_op", model): threshold_op, Point("fused_multiply_add", model): fma})
    want = oracle.run_batch(net, {"in": x}, 30, profile=profile)
    got = Simulator(profile=profile).run_batch(net, {"in": x}, 30)
    assert want.spikes["pop"][:, :, :192].sum() > 100 and want.spikes["pop"][:, :, 192:].any()
    assert_identical(want, got)


def test_amx_is_used_where_the_machine_has_it():
    net, _ = _conv_net(2, 16, 8, 3, 1)
    assert lower(net, tuning=KernelTuning(conv="dense")).amx == amx_available()
    assert not lower(net, tuning=KernelTuning(conv="dense", matrix_unit=False)).amx


def test_amx_probe_times_a_multiply_or_says_zero():
    # the benchmark's probe of the machine: a plausible time per multiply where AMX runs, 0.0 where it does not
    ns = amx_multiply_ns(4000)
    assert (0.5 < ns < 1000) if amx_available() else ns == 0.0
    with pytest.raises(ConfigError, match=r"amx_multiply_ns: n = 0; expected 1 \.\. 2\*\*31 - 1"):
        amx_multiply_ns(0)


def test_pool_too_large_for_the_dense_product_stays_event_driven():
    # a 12 x 12 sum-pool can put 144 spikes into one pooled cell, more than the dense product's uint8 counts
    # admit (127): the conv keeps the event-driven path even when the dense one is asked for
    net, _rng = _conv_net(1, 2, 24, 2, 12)
    low = lower(net, tuning=KernelTuning(conv="dense"))
    assert low.projections[0].geometry["dense_from"] == NEVER
    x = np.ones((1, 3, net.populations[0].size), np.uint8)
    assert_identical(
        oracle.run_batch(net, {"in": x}, 3), Simulator(tuning=KernelTuning(conv="dense")).run_batch(net, {"in": x}, 3)
    )


def test_a_repeated_pair_keeps_a_dense_looking_list_sparse():
    # every pair connected (dense rows would pay) but one pair twice: its two weights must both count
    stim = snn.Population(8, "spike_list", {}, name="stim")
    post = snn.Population(8, "lif_no_delay", {"threshold": 1e6}, name="post", record=["v"])
    conns = [[i, j, 1 + i + j, 0] for i in range(8) for j in range(8)] + [[3, 5, 7, 0]]
    net = snn.Network().add(stim, post, snn.Projection(stim, post, conns))
    assert lower(net).projections[0].kind == PROJ_SPARSE
    net_unique = snn.Network().add(stim, post, snn.Projection(stim, post, conns[:-1]))
    assert lower(net_unique).projections[0].kind == PROJ_DENSE
    x = np.ones((1, 2, 8), np.uint8)
    assert_identical(oracle.run_batch(net, {"stim": x}, 2), Simulator().run_batch(net, {"stim": x}, 2))


def test_long_lists_are_converted_chunk_by_chunk():
    # longer than one conversion chunk, whole-number weights at first and a fraction after the first chunk: the
    # stored weights widen to float64 and read back exactly; an error in a later chunk names its global index
    n = snn.Projection.CHUNK + 100
    stim = snn.Population(10, "spike_list", {}, name="stim")
    post = snn.Population(10, "lif_no_delay", {}, name="post")
    conns = np.zeros((n, 4))
    conns[:, 0], conns[:, 1], conns[:, 2] = np.arange(n) % 10, np.arange(n) // 7 % 10, np.arange(n) % 5 - 2
    conns[n - 3, 2] = 0.25
    proj = snn.Projection(stim, post, conns)
    assert proj.stored_weights.dtype == np.float64
    np.testing.assert_array_equal(proj.weights, conns[:, 2])
    np.testing.assert_array_equal(proj.pre_idx, conns[:, 0])
    assert proj.delays.dtype == np.int64 and not proj.delays.any()
    conns[n - 2, 1] = np.nan
    with pytest.raises(ConfigError, match=f"connection {n - 2} .* not finite"):
        snn.Projection(stim, post, conns)


@pytest.mark.parametrize("batch", [1, 3])
def test_split_samples_match_the_oracle(batch):
    # a conv layer feeding a list layer, every sample split over two threads (each updating and delivering into
    # its own rows and neurons)
    net, rng = _conv_net(2, 8, 14, 3, 2)
    conv = net.populations[1]
    out = snn.Population(
        40, "lif_curr_exp", {"threshold": 20.0, "t_refrac": 1}, name="out", record=["spikes", "v", "counts"]
    )
    pre = rng.integers(0, conv.size, 600)
    conns = np.stack([pre, rng.integers(0, 40, 600), rng.integers(-15, 16, 600), rng.integers(0, 8, 600)], 1)
    net.add(out, snn.Projection(conv, out, conns))
    x = (rng.random((batch, 12, net.populations[0].size)) < 0.4).astype(np.uint8)
    want = oracle.run_batch(net, {"in": x}, 12)
    assert want.spikes["out"].any()
    for tuning in (KernelTuning(split="always"), KernelTuning(split="always", conv="dense")):
        assert_identical(want, Simulator(num_threads=2, tuning=tuning).run_batch(net, {"in": x}, 12))


@pytest.mark.parametrize("threads, split", [(1, "never"), (2, "never"), (2, "always")])
def test_input_values_are_checked_inside_the_kernel(threads, split):
    stim = snn.Population(5, "spike_list", {}, name="stim", record=["counts"])
    post = snn.Population(3, "lif_no_delay", {}, name="post")
    net = snn.Network().add(stim, post, snn.Projection(stim, post, [[0, 0, 1, 0]]))
    sim = Simulator(num_threads=threads, tuning=KernelTuning(split=split))
    x = np.zeros((2, 4, 5), np.uint8)
    x[1, 2, 3] = 2
    with pytest.raises(ConfigError, match=r"'stim'.*\[1, 2, 3\] = 2"):
        sim.run_batch(net, {"stim": x})
    x[1, 2, 3] = 1  # the same network runs again afterwards (no state left over from the refused run)
    assert sim.run_batch(net, {"stim": x}).counts["stim"][1, 2, 0] == 1
    with pytest.raises(ConfigError, match=r"0\.5"):
        sim.run_batch(net, {"stim": x * 0.5})
    np.testing.assert_array_equal(
        sim.run_batch(net, {"stim": x.astype(bool)}).counts["stim"], sim.run_batch(net, {"stim": x}).counts["stim"]
    )


def test_bad_tuning_is_refused():
    with pytest.raises(ConfigError, match="conv"):
        KernelTuning(conv="fast")
    with pytest.raises(ConfigError, match="split"):
        KernelTuning(split=2)
    with pytest.raises(ConfigError, match="KernelTuning"):
        Simulator(tuning="dense")


def test_a_split_sample_stops_on_timeout_and_stays_usable():
    # both threads of a split sample stop at the cancel flag (neither waits for the other forever), and the next
    # run starts from the initial state
    from s2sim.errors import RunTimeout

    pop = snn.Population(
        3000, "lif_no_delay", {"threshold": 5.0, "alpha_decay": 0.9, "i_offset": 0.7}, name="pop", record=[]
    )
    net = snn.Network("busy").add(pop)
    sim = Simulator(num_threads=2, tuning=KernelTuning(split="always"))
    with pytest.raises(RunTimeout):
        sim.run_batch(net, None, 10**8, timeout=0.2)
    pop.record = ["v"]
    want = Simulator(num_threads=1).run_batch(net, None, 40).voltages["pop"]
    np.testing.assert_array_equal(sim.run_batch(net, None, 40).voltages["pop"].view(np.uint32), want.view(np.uint32))
