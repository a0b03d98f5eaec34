"""A py-spinnaker2 NIR script in the vendor's idiom: read a graph, set the config by attribute, convert, then run
one sample at a time by replacing the input population's params. argv: graph.nir samples.npz out.npz
"""

import sys

import nir
import numpy as np
from spinnaker2 import hardware, s2_nir

graph_file, samples_file, out_file = sys.argv[1:4]

graph = nir.read(graph_file)
s2_nir.add_output_to_node("lif1", graph, "out_lif1")  # also record the hidden layer
s2_nir.model_summary(graph)

cfg = s2_nir.ConversionConfig()
cfg.output_record = ["v", "spikes"]
cfg.dt = 1e-4
cfg.conn_delay = 0
cfg.scale_weights = True
cfg.reset = s2_nir.ResetMethod.ZERO
cfg.integrator = s2_nir.IntegratorMethod.FORWARD

net, inp, outp = s2_nir.from_nir(graph, cfg)
hidden = next(p for p in outp if p.name == "lif1")
for pop in net.populations:
    if pop.name == "lif1":
        pop.set_max_atoms_per_core(64)

samples = np.load(samples_file)["x"]  # [B, T, C, H, W] of 0/1
results = {"v_out": [], "spikes_hidden": [], "v_scale": outp[-1].nir_v_scale}
for x in samples:
    timesteps = x.shape[0] + 1
    flat = x.reshape(x.shape[0], -1)
    inp[0].params = {i: np.flatnonzero(flat[:, i]).tolist() for i in range(flat.shape[1])}
    net.reset()
    hw = hardware.SpiNNaker2Chip(eth_ip="192.168.1.52")
    hw.run(net, timesteps, sys_tick_in_s=2.5e-3)
    del hw
    out = next(p for p in outp if p.name != "lif1")
    v = out.get_voltages()
    results["v_out"].append(np.stack([v[i] for i in range(out.size)], axis=1))
    s = hidden.get_spikes()
    results["spikes_hidden"].append([len(s[i]) for i in range(hidden.size)])

np.savez(out_file, **{k: np.asarray(v) for k, v in results.items()})
