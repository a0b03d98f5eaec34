"""NIR graph -> s2sim network, following py-spinnaker2's ``s2_nir.from_nir`` and fixing where it is weak.

Parameter mapping (docs: spinnaker2-datapath.md section 6; ``k``/``alpha`` from the integrator):

* FORWARD: ``k = dt/tau``, ``alpha = 1 - dt/tau``; EXPONENTIAL: ``k = 1 - exp(-dt/tau)``, ``alpha = exp(-dt/tau)``.
* ``w_scale = 1``, or with ``scale_weights`` ``limit / max|W|`` (``limit / percentile(|W|, p)``) over every weight
  feeding the population; ``limit`` is the target model's weight limit (127 for the no-delay and conv models,
  15 for the models with a delay field; py-spinnaker2 hard-codes 127).
* LIF: ``alpha_decay = alpha``, ``S = w_scale / (k r)``, ``threshold = v_threshold S``,
  ``i_offset = k v_leak S + bias w_scale``.  IF: ``alpha_decay = 1``, ``S = w_scale / r``, ``i_offset = bias w_scale``.
  CubaLIF: ``exc_decay = inh_decay = alpha(tau_syn)``, ``S = w_scale / (k_mem r k_syn w_in)``,
  ``i_offset = k_mem v_leak S + bias w_scale / k_syn`` (the bias enters V instead of the synaptic current: exact
  in steady state, not during the first ticks).  ``V_nir = V_chip / S`` (``Population.voltage_scale``).
* NIR ``v_reset`` maps to ``v_reset = v_reset_nir S`` (py-spinnaker2 ignores it).
* Weights stay float (``W w_scale``); ChipProfile.weight_rounding makes them integers at simulation.

Where s2sim differs from py-spinnaker2 (each is also written into the ConversionReport):

* conv ``stride_y = stride[0]`` (NIR/torch H axis), ``stride_x = stride[1]``; py-spinnaker2 swaps them.
* AvgPool2d = sum-pool whose ``1/(kH kW)`` factor is multiplied into the next weights (the conv kernel, the affine
  matrix, or the pool's own unit weights when it feeds a neuron); exact only where the scaled weight is an integer.
* Two weight layers in a row are fused (``fuse_weight_layers``) when the product fits the chip range.
* ``conn_delay > 0`` selects the models with a delay field (``lif``, ``lif_curr_exp``), since the no-delay models
  cannot hold one; conv projections need ``conn_delay = 0``.
* Missing shapes are inferred; scalar or size-1 neuron parameters are broadcast; nested subgraphs (snnTorch's
  RLeaky) are flattened.
* Graph metadata ``dt``, ``reset_mechanism`` (or ``reset``) and ``integrator`` override the config when
  ``use_metadata`` is set; graphs written by :func:`s2sim.nir_export.to_nir` are restored exactly.

The conversion is split by concept: :mod:`.config` (ConversionConfig, Conversion), :mod:`.graph` (loading and
checking the graph), :mod:`.shapes` (shape inference), one module per node family (:mod:`.neurons`, :mod:`.affine`,
:mod:`.conv`, :mod:`.pooling`), :mod:`.synapses` and :mod:`.plans` (connection lists and projection plans),
:mod:`.converter` (the network and its report), :mod:`.latency` and :mod:`.metadata`.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConversionError
from .config import S2SIM_FORMAT_KEY, S2SIM_FORMAT_VERSION, Conversion, ConversionConfig, Integrator, Reset
from .converter import _Converter
from .graph import NUMERIC_ATTRIBUTES, _load, read_nir_file

__all__ = ["Integrator", "Reset", "ConversionConfig", "Conversion", "convert", "from_nir", "read_nir_file",
           "NUMERIC_ATTRIBUTES", "S2SIM_FORMAT_KEY", "S2SIM_FORMAT_VERSION"]


def from_nir(graph_or_path: Any, config: ConversionConfig | None = None, *, isolate: bool = False):
    """Convert a NIR graph (or a NIR HDF5 file) into an s2sim network.

    ``isolate=True`` reads a file in a child process (:mod:`s2sim.isolation`): a file that crashes or hangs the
    HDF5 library then raises TraceError instead of taking the interpreter down. Use it for files from elsewhere.

    Returns
    -------
    (net, input_pops, output_pops)
        ``input_pops`` / ``output_pops``: population name (= NIR node name) -> Population.
        The ConversionReport is attached as ``net.conversion_report``; every population carries
        ``voltage_scale`` (per-neuron S, ``V_nir = V_chip / S``; None for spike sources).

    Raises
    ------
    ConversionError
        The graph cannot be expressed on the chip (message names the node).
    TraceError
        The file is missing, truncated or not a NIR graph.
    ResourceError
        Reading or converting the graph would exceed the memory budget (:mod:`s2sim.memory`).

    Warns
    -----
    WeightLossWarning, TimeConstantWarning, MetadataWarning
        Weights that all round to zero, time constants shorter than dt, a graph without ``dt`` (errors with
        ``ConversionConfig(strict=True)``).
    """
    conv = convert(graph_or_path, config, isolate=isolate)
    return conv.net, conv.input_pops, conv.output_pops


def convert(graph_or_path: Any, config: ConversionConfig | None = None, *, isolate: bool = False) -> Conversion:
    """Like :func:`from_nir`, also returning the :class:`~s2sim.conversion_report.ConversionReport`."""
    config = ConversionConfig() if config is None else config
    if not isinstance(config, ConversionConfig):
        raise ConversionError(f"config must be a ConversionConfig, got {type(config).__name__}")
    graph, source = _load(graph_or_path, isolate)
    return _Converter(graph, source, config).run()
