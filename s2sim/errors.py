"""The exception tree of s2sim, and its warning categories.

Every error class also subclasses the builtin it refines, so ``except ValueError`` in user code keeps working.
Messages name the population (or node, or file), the parameter, the offending value and the limit.

Warnings flag results that are legal but very likely not what was meant (weights that all round to zero, a
time constant shorter than the time step, a graph without ``dt``). Each has a named category under
:class:`S2SimWarning`, so it can be filtered or made an error with the standard :mod:`warnings` machinery; the
``strict=True`` options of the API (and ``--strict`` on the command line) raise the matching error instead.
"""
from __future__ import annotations

import os
import sys
import warnings


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


class ResourceError(S2SimError, MemoryError):
    """A step would need more memory than the budget allows (see :mod:`s2sim.memory`); nothing was allocated."""


class RunTimeout(S2SimError, TimeoutError):
    """A run or a file read took longer than its ``timeout`` and was stopped."""


class BoardUnavailable(S2SimError, RuntimeError):
    """py-spinnaker2 is not installed or no board address is configured."""


class NotModelledError(S2SimError, NotImplementedError):
    """A py-spinnaker2 feature s2sim accepts but does not compute (yet): the message says what and why."""


# -- warnings ------------------------------------------------------------------------------------------------------

class S2SimWarning(UserWarning):
    """Base class of every warning s2sim issues; filter on it (or a subclass) to silence or escalate them.

    Attributes
    ----------
    subject : str
        What the warning is about (a projection, population or file name), so a caller can report each subject
        once when several stages notice the same problem.
    """

    def __init__(self, message: str, subject: str = "") -> None:
        super().__init__(message)
        self.subject = subject


class WeightLossWarning(S2SimWarning):
    """A projection's weights all round to zero, or rounding loses more than
    :data:`s2sim.errors.WEIGHT_LOSS_LIMIT` of its weight mass (``sum(|w|)``)."""


class TimeConstantWarning(S2SimWarning):
    """A time constant or decay makes no sense for a leaky neuron (tau < dt, a decay outside [0, 1])."""


class MetadataWarning(S2SimWarning):
    """A graph lacks metadata that its conversion depends on (``dt``), so a default was assumed."""


class IgnoredSettingWarning(S2SimWarning):
    """A setting that means something on a board but nothing in the simulator (e.g. ``hw.run(debug=True)``)."""


class NotChipArithmeticWarning(S2SimWarning):
    """A result computed in a mode no chip runs (e.g. float synaptic weights for the Brian2 backend)."""


class InputCountsWarning(S2SimWarning):
    """Input event counts above 1 were binarised.

    A spike_list source sends at most one spike per neuron and tick, so a count of 3 became one spike; the message
    says how many counts were clipped.
    """


class FallbackWarning(S2SimWarning):
    """A requested way of doing something was unavailable; another, with identical results, was used.

    E.g. worker processes that could not start.
    """


class CacheWarning(S2SimWarning):
    """A cache could not be written; the results are unaffected, only the next load is slower."""


#: Share of a projection's weight mass, ``sum(|w - round(w)|) / sum(|w|)``, above which rounding is reported.
WEIGHT_LOSS_LIMIT = 0.5


def warn(category: type[S2SimWarning], message: str, subject: str = "", *, strict: bool = False,
         error: type[S2SimError] = ConfigError) -> None:
    """Issue ``message`` as a ``category`` warning, or raise ``error`` with the same message when ``strict``.

    The warning is attributed to the first caller outside the s2sim package (the user's line), wherever inside
    s2sim the problem was noticed.

    Parameters
    ----------
    category : type
        A subclass of :class:`S2SimWarning`.
    message : str
        Names the population / projection / node, the value and the limit, like an error message.
    subject : str
        The name the warning is about (see :attr:`S2SimWarning.subject`).
    strict : bool
        Raise instead of warning.
    error : type
        The error class raised when ``strict`` (the one the calling stage raises for bad input).
    """
    if strict:
        raise error(f"{message} [{category.__name__}, an error in strict mode]")
    warnings.warn(category(message, subject), stacklevel=caller_stacklevel())


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by this function's caller that points at the innermost
    frame outside the s2sim package (the user's line)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2  # 1 = the frame calling warnings.warn, as warnings.warn counts
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
