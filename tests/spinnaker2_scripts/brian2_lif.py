"""The NIR paper's single-LIF benchmark as its py-spinnaker2 script runs it: the older from_nir keywords and the
Brian2 backend, reused. argv: graph.nir out.npz
"""

import sys

import nir
import numpy as np
from spinnaker2 import brian2_sim, hardware, helpers, s2_nir  # noqa: F401 - the vendor script imports helpers

graph_file, out_file = sys.argv[1:3]
nir_model = nir.read(graph_file)
net, inp, outp = s2_nir.from_nir(nir_model, outputs=["v", "spikes"], discretization_timestep=0.0001, conn_delay=0)

input_spikes = {
    0: [
        60,
        220,
        270,
        310,
        320,
        350,
        370,
        400,
        410,
        430,
        440,
        450,
        460,
        470,
        480,
        490,
        500,
        510,
        520,
        530,
        670,
        680,
        690,
        700,
        710,
        720,
        730,
        740,
        750,
        760,
        770,
        780,
        840,
        850,
    ]
}
inp[0].params = input_spikes
timesteps = 1001

results = {"threshold": np.asarray(outp[0].params["threshold"])}
hw = brian2_sim.Brian2Backend()
for key, backend in (("brian2", hw), ("chip", hardware.SpiNNaker2Chip()), ("brian2_again", hw)):
    backend.run(net, timesteps)
    spikes = outp[0].get_spikes()
    results[f"{key}_spikes"] = np.asarray(spikes[0])
    results[f"{key}_v"] = outp[0].get_voltages()[0]
hw.run(net, timesteps, quantize_weights=False)  # the weight is 102.02: Brian2 keeps the fraction
results["brian2_float_spikes"] = np.asarray(outp[0].get_spikes()[0])
results["brian2_float_v"] = outp[0].get_voltages()[0]

np.savez(out_file, **results)
