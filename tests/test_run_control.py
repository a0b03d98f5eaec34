"""Stopping runs: Ctrl-C and timeouts stop the C core between ticks, and the loaded network stays usable; runs
from several threads publish whole results; buffers are allocated only for what is recorded.

These tests drive the kernel and also run under ASan + UBSan (tools/sanitize.sh).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import numpy as np
import pytest

from s2sim import memory, snn
from s2sim.errors import ConfigError, ResourceError, RunTimeout
from s2sim.simulator import Simulator

LONG = 10**7  # ticks no test lets run to the end


def busy_net(n: int = 300):
    """A recurrent population driven by its own i_offset (no input arrays): a run of LONG ticks would take
    minutes, and with nothing recorded it allocates nothing per tick.
    """
    pop = snn.Population(
        n, "lif_no_delay", {"threshold": 5.0, "alpha_decay": 0.9, "i_offset": 0.7}, name="pop", record=["spikes", "v"]
    )
    rng = np.random.default_rng(3)
    conns = np.stack(
        [rng.integers(0, n, 20 * n), rng.integers(0, n, 20 * n), rng.integers(-3, 4, 20 * n), np.zeros(20 * n)], axis=1
    )
    return snn.Network("busy").add(pop, snn.Projection(pop, pop, conns)), pop


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


@contextlib.contextmanager
def interrupted_after(seconds: float):
    """Send SIGINT to this process after ``seconds``, unless the block has ended by then."""
    done = threading.Event()

    def fire():
        if not done.wait(seconds):
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def fresh_result(ticks: int, threads: int = 1):
    net, _ = busy_net()
    return Simulator(num_threads=threads).run_batch(net, None, ticks)


@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_run_and_the_network_stays_usable(threads):
    net, pop = busy_net()
    loaded = Simulator(num_threads=threads).load(net)
    pop.record = []
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupted_after(0.3):
        loaded.run_batch(None, LONG, timeout=120)  # the timeout only guards the test
    assert time.monotonic() - started < 30  # stopped, not run to the end
    pop.record = ["spikes", "v"]
    again = loaded.run_batch(None, 200)
    expected = fresh_result(200, threads)
    np.testing.assert_array_equal(again.spikes["pop"], expected.spikes["pop"])
    np.testing.assert_array_equal(bits(again.voltages["pop"]), bits(expected.voltages["pop"]))


def test_timeout_stops_a_run_with_a_named_error_and_the_network_stays_usable():
    net, pop = busy_net()
    sim = Simulator(num_threads=1)
    pop.record = []
    with pytest.raises(RunTimeout, match=r"'busy'.*timeout of 0.2 s"):
        sim.run_batch(net, None, LONG, timeout=0.2)
    pop.record = ["v"]
    res = sim.run_batch(net, None, 150)
    np.testing.assert_array_equal(bits(res.voltages["pop"]), bits(fresh_result(150).voltages["pop"]))


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_timeouts_are_refused(value):
    net, _ = busy_net()
    with pytest.raises(ConfigError, match="timeout"):
        Simulator().run_batch(net, None, 5, timeout=value)


def test_a_cancel_flag_set_before_the_run_stops_it_at_the_first_tick():
    net, _ = busy_net()
    loaded = Simulator(num_threads=1).load(net)
    spec = loaded.refresh()
    buffers = loaded._buffers(spec, {}, 1, 50)
    io = loaded.core.make_io(buffers, 1, 50)
    cancel = np.ones(1, np.int32)
    assert loaded.core.run(io, loaded.core.workspace(), 1, 50, 0, 1, cancel) is False
    assert not buffers[0]["v"].any()  # nothing was simulated
    cancel[0] = 0
    assert loaded.core.run(io, loaded.core.workspace(), 1, 50, 0, 1, cancel) is True


def test_runs_from_several_threads_publish_whole_results():
    net, pop = busy_net(40)
    expected = {t: Simulator(num_threads=1).run_batch(busy_net(40)[0], None, t) for t in (100, 200, 300, 400)}
    errors = []

    def worker(ticks):
        for _ in range(6):
            try:
                Simulator(num_threads=1).run(net, ticks)
                volts, spikes = pop.get_voltages(), pop.get_spikes()
                length = len(volts[0])
                assert all(len(v) == length for v in volts.values())
                assert all(t < length for ticks_ in spikes.values() for t in ticks_) or length < ticks
            except Exception as exc:  # collected: an assert in a thread would not fail the test
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(t,)) for t in (100, 200, 300, 400) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # the population holds the spikes and voltages of one and the same run
    volts = pop.get_voltages()
    ticks = len(volts[0])
    got = np.stack([volts[i] for i in range(40)], axis=1)
    np.testing.assert_array_equal(bits(got), bits(expected[ticks].voltages["pop"][0]))
    assert pop.get_spikes() == expected[ticks].spike_dict("pop")


def test_counts_are_allocated_and_returned_only_when_recorded():
    net, pop = busy_net(10)
    res = Simulator(num_threads=1).run_batch(net, None, 20)
    assert res.counts == {}
    pop.record.append("counts")
    res = Simulator(num_threads=1).run_batch(net, None, 20)
    assert list(res.counts) == ["pop"] and res.counts["pop"].shape == (1, 20, 2)
    assert res.counts["pop"][0, :, 0].tolist() == res.spikes["pop"][0].sum(axis=1).tolist()


def test_recording_buffers_beyond_the_budget_are_refused_before_allocation():
    net, _ = busy_net(1000)
    previous = memory.set_budget("1G")
    try:
        with pytest.raises(ResourceError, match=r"(?s)'busy'.*10000000 ticks.*GiB.*budget of 1.0 GiB"):
            Simulator(num_threads=1).run_batch(net, timesteps=LONG)  # v of 1000 neurons: 40 GB
    finally:
        memory.set_budget(previous)
