"""``spinnaker2.neuron_models``: the application classes scripts configure (DVFS parameters, profiling).

In py-spinnaker2 each neuron model is an ARM application with a Python class; scripts set class attributes on
them before a run. The stand-in keeps the classes scripts are seen to configure, and carries their settings into
each run's record (:class:`s2sim.spinnaker2.RunRecord`), where the PE time and energy model reads them.
"""
