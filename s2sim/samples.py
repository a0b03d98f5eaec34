"""Small sample files for trying the command line: a NIR model, input spikes, two traces and a py-spinnaker2 script.

:func:`write_samples` writes them (``s2sim demo --export DIR``); every command-line example of the README runs on
them as written. They need only the simulator core (numpy, nir, h5py for the traces), no torch.

=================  ============================================================================================
file               what it holds
=================  ============================================================================================
``model.nir``      a NIR graph written by ``nir.write``: input (32) -> Affine -> LIF (16) -> Affine -> LIF (4),
                   integer weights (so it converts with default options), ``dt`` 1e-4 s, forward integrator
``spikes.npz``     ``input``: uint8 [4 samples, 60 ticks, 32] Bernoulli spikes (p = 0.15), the model's input
``expected.h5``    a trace (docs/conformance.md) of sample 0 simulated under ``ChipProfile()``: what
                   ``s2sim run model.nir -i spikes.npz --trace ...`` writes
``observed.h5``    the same run under a chip variant that does not fuse ``V*alpha + I`` into one FMA
                   (``fused_multiply_add=False``), standing in for a board's trace: ``s2sim conform`` finds the
                   first difference and ``s2sim conform --infer`` names the variant. It is simulated, not a chip
                   recording.
``my_script.py``   a py-spinnaker2 script (``from spinnaker2 import ...``) for ``s2sim exec``
=================  ============================================================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .profile import ChipProfile

#: Files :func:`write_samples` writes, in the order of the table above.
SAMPLE_FILES = ("model.nir", "spikes.npz", "expected.h5", "observed.h5", "my_script.py")
N_INPUTS, N_HIDDEN, N_OUTPUTS = 32, 16, 4
N_SAMPLES, N_TICKS = 4, 60
DT = 1e-4
SEED = 2026

_SCRIPT = '''\
"""A py-spinnaker2 script: one spike source driving two LIF neurons. Run it with `s2sim exec my_script.py`."""
from spinnaker2 import hardware, snn

stim = snn.Population(size=2, neuron_model="spike_list", params={0: [2, 3, 4, 5], 1: [10, 20]}, name="stim")
lif = snn.Population(size=2, neuron_model="lif", name="lif", record=["spikes", "v"],
                     params={"threshold": 10.0, "alpha_decay": 0.9, "i_offset": 0.0, "v_reset": 0.0,
                             "reset": "reset_by_subtraction"})
proj = snn.Projection(pre=stim, post=lif, connections=[[0, 0, 4, 0], [0, 1, 2, 1], [1, 1, 15, 0]])

net = snn.Network("my network")
net.add(stim, lif, proj)
hw = hardware.SpiNNaker2Chip()  # on a board: SpiNNaker2Chip(eth_ip="<the board's IP>")
hw.run(net, 30)
print("spikes:", lif.get_spikes())
'''


def sample_graph() -> object:
    """Build the sample model as a ``nir.NIRGraph`` (seeded: the same graph every time)."""
    import nir

    rng = np.random.default_rng(SEED)
    tau, threshold = 1e-3, 20.0  # forward integrator: alpha = 1 - dt/tau = 0.9

    def lif(n: int) -> object:
        return nir.LIF(
            tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.full(n, threshold)
        )

    w1 = rng.integers(-5, 8, size=(N_HIDDEN, N_INPUTS)).astype(np.float32)
    w2 = rng.integers(-4, 10, size=(N_OUTPUTS, N_HIDDEN)).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([N_INPUTS])}),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(N_HIDDEN, dtype=np.float32)),
        "lif1": lif(N_HIDDEN),
        "fc2": nir.Affine(weight=w2, bias=np.zeros(N_OUTPUTS, dtype=np.float32)),
        "lif2": lif(N_OUTPUTS),
        "output": nir.Output(output_type={"output": np.array([N_OUTPUTS])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    metadata = {"dt": DT, "integrator": "forward", "reset_mechanism": "subtract", "source": "s2sim sample"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def sample_spikes() -> np.ndarray:
    """Draw the sample input: uint8 [N_SAMPLES, N_TICKS, N_INPUTS], seeded."""
    rng = np.random.default_rng(SEED + 1)
    return (rng.random((N_SAMPLES, N_TICKS, N_INPUTS)) < 0.15).astype(np.uint8)


def write_samples(folder: str | Path) -> list[Path]:
    """Write the sample files into ``folder`` (created if missing; existing sample files are replaced).

    Returns
    -------
    list of Path
        The files written, in the order of :data:`SAMPLE_FILES`.
    """
    import nir

    from .conformance import simulate
    from .nir_import import from_nir
    from .traces import write_trace

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in SAMPLE_FILES]
    model, spikes_file, expected, observed, script = paths
    graph = sample_graph()
    nir.write(str(model), graph)
    spikes = sample_spikes()
    np.savez_compressed(spikes_file, input=spikes)
    # converted from the file just written, with the command line's defaults: the network `s2sim run` builds
    net, _, _ = from_nir(str(model))
    for pop in net.populations:
        pop.record = ["spikes"] if pop.model.is_input else ["spikes", "v"]
    first = {"input": spikes[0]}
    write_trace(expected, simulate(net, N_TICKS, ChipProfile(), first, metadata={"sample": "expected"}))
    variant = simulate(
        net,
        N_TICKS,
        ChipProfile(fused_multiply_add=False),
        first,
        metadata={"sample": "a simulated chip variant: fused_multiply_add=False"},
    )
    variant.profile = None  # as from a board: the variant is what `s2sim conform --infer` has to find
    variant.source = "s2sim sample (simulated variant)"
    write_trace(observed, variant)
    script.write_text(_SCRIPT)
    return paths
