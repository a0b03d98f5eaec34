"""A py-spinnaker2 script in the vendor's idiom: lif and lif_curr_exp populations, delays, a recurrent
projection, edits between runs. Writes what it read back to the .npz file named by argv[1].
"""

import sys

import numpy as np
from spinnaker2 import hardware, helpers, snn

out_file = sys.argv[1]

stim = snn.Population(size=4, neuron_model="spike_list", params={0: [1, 5, 9], 1: [2, 3, 12], 3: [7]}, name="stim")
lif_params = {
    "threshold": 10.0,
    "alpha_decay": 0.875,
    "i_offset": 0.25,
    "v_init": 0.0,
    "v_reset": 0.0,
    "reset": "reset_by_subtraction",
}
exc = snn.Population(size=5, neuron_model="lif", params=lif_params, name="exc", record=["spikes", "v"])
curr_params = {
    "threshold": 6.0,
    "alpha_decay": 0.9,
    "exc_decay": 0.5,
    "inh_decay": 0.75,
    "t_refrac": 2,
    "i_offset": 0.0,
    "v_reset": -1.0,
    "reset": "reset_to_v_reset",
}
cur = snn.Population(size=3, neuron_model="lif_curr_exp", params=curr_params, name="cur", record=["spikes"])
cur.set_max_atoms_per_core(2)

conns = [[i, j, (i + 2 * j) % 15 - 4, (i + j) % 8] for i in range(4) for j in range(5)]
p1 = snn.Projection(pre=stim, post=exc, connections=conns)
p2 = snn.Projection(exc, cur, [[i, i % 3, 9, 1] for i in range(5)])
p3 = snn.Projection(pre=cur, post=cur, connections=[[0, 1, -5, 0], [1, 2, 7, 2], [2, 0, 3, 0]])  # recurrent

net = snn.Network("lif network")
net.add(stim, exc, cur, p1, p2, p3)

timesteps = 40
results = {}
for run in range(3):
    if run == 1:
        stim.params = {0: [0, 4], 2: [6, 7, 8], 3: [30]}  # the next sample
        exc.params["threshold"] = 7.5
        cur.record.append("v")
    if run == 2:
        exc.params["alpha_decay"] = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
        exc.params["alpha_decay"][0] = 0.95  # an in-place edit
        cur.record = ["v"]
        net.reset()
    hw = hardware.SpiNNaker2Chip(eth_ip="192.168.1.17")
    hw.run(net, timesteps, sys_tick_in_s=1e-3, debug=False)
    del hw
    if "spikes" in exc.record:
        spikes = exc.get_spikes()
        idx, times = helpers.spike_times_dict_to_arrays(spikes)
        results[f"exc_spikes_{run}"] = helpers.spike_times_to_matrix(spikes, timesteps)
        results[f"exc_idx_{run}"], results[f"exc_times_{run}"] = idx, times
    results[f"exc_v_{run}"] = np.stack([v for _, v in sorted(exc.get_voltages().items())])
    if "spikes" in cur.record:
        results[f"cur_spikes_{run}"] = helpers.spike_times_to_matrix(cur.get_spikes(), timesteps)
    if "v" in cur.record:
        results[f"cur_v_{run}"] = np.stack([v for _, v in sorted(cur.get_voltages().items())])

np.savez(out_file, **results)
