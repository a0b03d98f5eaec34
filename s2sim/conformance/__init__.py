"""Did the chip do exactly what the model says? Trace comparison and chip-variant inference.

    from s2sim import conformance, traces
    result = conformance.compare(traces.read_trace("sim.h5"), traces.read_trace("chip.h5"))
    print(result.report())                    # per-population agreement and the first divergence
    verdict = conformance.infer([traces.read_trace(p) for p in chip_files])
    print(verdict.report())                   # which chip variants reproduce the chip, which are ruled out

Ticks are compared in the chip's frame: row ``r`` of population ``p`` is tick
``r + tick_offset + depth(p) * (1 - latency_per_hop)``, where ``depth`` counts population hops from the nearest
spike_list source. A chip trace (latency 1) maps row to tick directly; a same-step framework (snnTorch, latency 0)
sees the input of tick ``t`` at layer ``k`` in step ``t``, which the chip reaches in tick ``t + k``.

Split by concept: :mod:`.reference` (the simulator's trace), :mod:`.alignment` (two traces in the chip's frame),
:mod:`.comparison` and :mod:`.agreement` (comparing them and what it finds), :mod:`.divergence` (explaining the
first divergence), :mod:`.inference` (chip-variant inference), :mod:`.formatting` (text and JSON forms).
"""
from __future__ import annotations

from .agreement import Comparison, Divergence, NeuronInputs, PopulationAgreement, Tolerance, VariableAgreement
from .alignment import aligned_rows, population_depths
from .comparison import compare
from .formatting import profile_label
from .inference import MAX_CONSISTENT, MAX_SEARCH, Inference, PopulationSearch, hypotheses, infer
from .reference import simulate

__all__ = ["simulate", "compare", "infer", "hypotheses", "Tolerance", "Comparison", "Divergence", "NeuronInputs",
           "PopulationAgreement", "VariableAgreement", "Inference", "PopulationSearch", "aligned_rows",
           "population_depths", "profile_label", "MAX_SEARCH", "MAX_CONSISTENT"]
