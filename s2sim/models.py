"""The neuron models py-spinnaker2 deploys, with their parameters, defaults and chip limits.

One frozen dataclass per model; the table ``MODELS`` is the single place where a model's name, its parameter
set and its synaptic word format (weight range, delay field) are written down. Everything else (validation,
lowering to the C core, the numpy oracle, NIR conversion) reads it from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

#: Kinds of neuron dynamics the C core implements (``S2_KIND_*`` in csrc/s2sim.h).
KIND_INPUT = 0
KIND_LIF = 1
KIND_CURR_EXP = 2

RESET_MODES = ("reset_by_subtraction", "reset_to_v_reset")

#: Neurons per PE py-spinnaker2 places by default for the lif family (users lower it with set_max_atoms_per_core).
DEFAULT_MAX_ATOMS_PER_CORE = 250
#: A synapse word addresses at most this many target neurons on one PE.
MAX_TARGETS_PER_CORE = 256
#: Ring-buffer slots of the models with a delay field: delays 0..7.
RING_SLOTS = 8
#: Largest worst-case input of one neuron in one tick (sum of ``|weight|`` over every synapse into it) that s2sim
#: accepts. Up to 2^24 every integer sum converts to float32 exactly, so (float)E - (float)I == (float)(E - I)
#: and float32 sums of integer weights (the QAT forward) are exact. Far beyond any PE's synapse memory (about
#: 132k maximal synapse hits in one tick); a network that could exceed it is refused, never wrapped.
MAX_INPUT_SUM = 2**24

_LIF_DEFAULTS = {
    "threshold": 1.0,
    "alpha_decay": 0.9,
    "i_offset": 0.0,
    "v_init": 0.0,
    "v_reset": 0.0,
}
_CURR_EXP_DEFAULTS = {**_LIF_DEFAULTS, "exc_decay": 0.5, "inh_decay": 0.5, "t_refrac": 0}


@dataclass(frozen=True)
class NeuronModel:
    """A chip neuron model.

    Attributes
    ----------
    name : str
        The py-spinnaker2 model name.
    kind : int
        Which dynamics the C core runs (KIND_INPUT, KIND_LIF, KIND_CURR_EXP).
    defaults : Mapping[str, float]
        Parameter names and default values (besides ``reset``, which every neuron model has).
    weight_limit : int
        Largest weight magnitude a synapse word of this model holds (weights are -limit..limit).
    max_delay : int
        Largest value of the delay field; 0 for the ``*_no_delay`` and conv models.
    conv_target : bool
        Whether a Conv2DProjection may target this model.
    """

    name: str
    kind: int
    defaults: Mapping[str, float] = field(default_factory=dict)
    weight_limit: int = 0
    max_delay: int = 0
    conv_target: bool = False

    @property
    def is_input(self) -> bool:
        return self.kind == KIND_INPUT

    @property
    def ring_slots(self) -> int:
        """Ring-buffer slots the model needs: one per possible delay."""
        return self.max_delay + 1 if self.max_delay else 1


def _model(name: str, kind: int, defaults: dict, weight_limit: int, max_delay: int, conv: bool = False):
    return NeuronModel(name, kind, MappingProxyType(dict(defaults)), weight_limit, max_delay, conv)


#: The model table. Weight limits: 4-bit magnitude + exc/inh bit for the models with a delay field (verified),
#: 7-bit magnitude + sign for the no-delay models (inferred), int8 kernels for conv (verified; -128 allowed).
MODELS: Mapping[str, NeuronModel] = MappingProxyType({
    "spike_list": _model("spike_list", KIND_INPUT, {}, 0, 0),
    "lif": _model("lif", KIND_LIF, _LIF_DEFAULTS, 15, 7),
    "lif_no_delay": _model("lif_no_delay", KIND_LIF, _LIF_DEFAULTS, 127, 0),
    "lif_conv2d": _model("lif_conv2d", KIND_LIF, _LIF_DEFAULTS, 127, 0, conv=True),
    "lif_curr_exp": _model("lif_curr_exp", KIND_CURR_EXP, _CURR_EXP_DEFAULTS, 15, 7),
    "lif_curr_exp_no_delay": _model("lif_curr_exp_no_delay", KIND_CURR_EXP, _CURR_EXP_DEFAULTS, 127, 0),
})

#: Conv kernels are int8 on the chip side: -128..127.
CONV_WEIGHT_MIN = -128
CONV_WEIGHT_MAX = 127

#: Integer parameters (everything else is float32 on the chip).
INTEGER_PARAMS = frozenset({"t_refrac"})


#: Models that py-spinnaker2 scripts use but whose ARM code is not public, so their arithmetic cannot be reproduced
#: bit for bit. Refused by name, with this reason, rather than as unknown.
UNPUBLISHED_MODELS: Mapping[str, str] = MappingProxyType({
    "izhikevich": "Izhikevich neurons", "lif_fugu": "the Fugu LIF variant", "alif": "adaptive-threshold LIF",
    "lif_prob": "probabilistic LIF (its random number generator is not public either)",
    "poisson_process": "Poisson spike sources (the chip's random number generator is not public)",
    "conv2d_if_neuron_rate_code": "the rate-coded conv IF input layer of the MAC array",
    "qubo_neuron": "QUBO solver neurons", "neurofem_2048": "the NeuroFEM solver",
})


def get_model(name: str, population: str = "?") -> NeuronModel:
    """Return the model called ``name`` or raise ConfigError saying why it is not available."""
    from .errors import ConfigError

    try:
        return MODELS[name]
    except (KeyError, TypeError):
        pass
    known = ", ".join(MODELS)
    if isinstance(name, str) and name in UNPUBLISHED_MODELS:
        raise ConfigError(f"population {population!r}: neuron_model {name!r} ({UNPUBLISHED_MODELS[name]}) exists in "
                          "py-spinnaker2, but the ARM code that computes it is not public, so s2sim cannot reproduce "
                          f"it bit for bit; supported models: {known}")
    raise ConfigError(f"population {population!r}: unknown neuron_model {name!r}; known models: {known}")
