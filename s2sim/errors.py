"""The exception tree of s2sim.

Every class also subclasses the builtin it refines, so ``except ValueError`` in user code keeps working.
Messages name the population (or node, or file), the parameter, the offending value and the limit.
"""
from __future__ import annotations


class S2SimError(Exception):
    """Base class of every error raised by s2sim."""


class ConfigError(S2SimError, ValueError):
    """A network, parameter or setting is malformed (unknown model, NaN parameter, mismatched shape, ...)."""


class LimitError(ConfigError):
    """A value is well-formed but outside what the chip can hold (weight range, delay, neurons per PE, ...)."""


class ConversionError(S2SimError, ValueError):
    """A NIR graph or a framework model cannot be expressed on SpiNNaker2."""


class CoreError(S2SimError, RuntimeError):
    """The C core refused a network at load time or failed during a run."""


class TraceError(S2SimError, ValueError):
    """A trace or data file is unreadable, truncated or does not match the network it claims to record."""


class BoardUnavailable(S2SimError, RuntimeError):
    """py-spinnaker2 is not installed or no board address is configured."""


class NotModelledError(S2SimError, NotImplementedError):
    """A py-spinnaker2 feature s2sim accepts but does not compute (yet): the message says what and why."""


class S2SimWarning(UserWarning):
    """Base class of every warning s2sim issues; filter on it (or a subclass) to silence or escalate them."""


class IgnoredSettingWarning(S2SimWarning):
    """A setting that means something on a board but nothing in the simulator (e.g. ``hw.run(debug=True)``)."""


class NotChipArithmeticWarning(S2SimWarning):
    """A result computed in a mode no chip runs (e.g. float synaptic weights for the Brian2 backend)."""
