"""Board-only settings a DVFS/power script imports and sets, and the helpers of ann2snn_helpers.

argv: out.npz
"""

import os
import sys

import numpy as np
import spinnaker2.neuron_models.lif_conv2d
import spinnaker2.neuron_models.lif_neuron
from spinnaker2 import ann2snn_helpers, hardware, snn
from spinnaker2.ann2snn_helpers import connection_list_from_dense_weights, sparse_connection_list_from_dense_weights
from spinnaker2.experiment_backends import BackendSettings, ExperimentBackendType
from spinnaker2.experiment_backends.backend_settings import ROUTING
from spinnaker2.neuron_models.common import DVFSParams, PmgtMode

out_file = sys.argv[1]
settings = BackendSettings()
settings.routing_type = ROUTING.MC
spinnaker2.neuron_models.lif_neuron.LIFNoDelayApplication.dvfs_params = DVFSParams(
    mode=PmgtMode.PL_MODE_AUTO, pl_threshold=200
)
spinnaker2.neuron_models.lif_conv2d.LIFConv2dApplication.dvfs_params = DVFSParams(PmgtMode.PL_MODE_AUTO, 30)

w = np.array([[0, 12, -3], [7, 0, 0], [0, 0, 127], [-127, 5, 0]])
pool_conns, pool_shape = ann2snn_helpers.connection_list_for_sumpool2d(
    input_shape=(1, 4, 4), stride=2, kernel_size=2, padding=0, delay=0, data_order="torch"
)
joined = ann2snn_helpers.join_conn_lists(pool_conns, connection_list_from_dense_weights(w, 0))

stim = snn.Population(16, "spike_list", {i: [i % 5, 6 + i % 3] for i in range(16)}, name="input")
dense = snn.Population(
    3,
    "lif_no_delay",
    {"threshold": 50.0, "alpha_decay": 0.9},
    name="dense",
    record=["spikes", "v", "time_done", "n_packets", "performance_level"],
)
sparse = snn.Population(3, "lif_no_delay", {"threshold": 50.0, "alpha_decay": 0.9}, name="sparse", record=["v"])
net = snn.Network("settings")
net.add(
    stim,
    dense,
    sparse,
    snn.Projection(stim, dense, joined),
    snn.Projection(dense, sparse, sparse_connection_list_from_dense_weights(w[:3] // 2, 0)),
)

hw = hardware.SpiNNaker2Chip(
    experiment_backend_type=ExperimentBackendType(os.environ.get("BACKEND", "spinnman2")), eth_ip="192.168.1.1"
)
hw.run(net, 20, sys_tick_in_s=2e-3, measure_power=True)
energy = hw.energy
time_done = dense.get_time_done_times()
np.savez(
    out_file,
    dense_v=np.stack([v for _, v in sorted(dense.get_voltages().items())]),
    sparse_v=np.stack([v for _, v in sorted(sparse.get_voltages().items())]),
    n_pool=len(pool_conns),
    pool_shape=pool_shape,
    n_joined=len(joined),
    energy=energy,
    time_done_pes=sorted(time_done),
    time_done=np.stack([time_done[k] for k in sorted(time_done)]),
    settings=str(hw.last_run.settings),
)
