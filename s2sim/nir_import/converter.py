"""The converter: the chip network's populations and projections from a loaded, checked NIR graph.

It also writes the conversion report.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from .. import memory, snn
from ..conversion_report import REPORTED_ROUNDINGS, ConversionReport, PopulationReport, ProjectionReport, WeightRounding
from ..errors import ConversionError, MetadataWarning, warn
from ..lowering import check_weight_loss
from ..models import CONV_WEIGHT_MAX, CONV_WEIGHT_MIN, MODELS
from ..spec import DIAGNOSTIC_RECORDABLES
from .affine import _affine_synapses
from .config import (
    _RESET_ALIASES,
    CHIP_RESET,
    S2SIM_FORMAT_KEY,
    Conversion,
    ConversionConfig,
    Integrator,
    _positive_real,
    _real,
)
from .conv import _conv_geometry, _conv_in_shape, _conv_synapses
from .graph import _NEURON_TYPES, _WEIGHT_TYPES, _check_edges, _check_supported, _check_values, _flatten, _kind
from .latency import _depths, _set_latencies
from .metadata import _clean_metadata, _meta_array, _meta_int, _meta_spike_times, _meta_text, _plain, _same_matrix
from .neurons import _neuron_params
from .plans import _Chain, _Plan
from .pooling import _pool_geometry, _pool_synapses
from .shapes import _infer_shapes
from .synapses import _ENTRY_BYTES, _NEURON_BYTES, _compose, _identity, _Synapses

_META_ONLY_PARAMS = ("v_init", "t_refrac", "inh_decay")


class _Converter:
    def __init__(self, graph: Any, source: str, config: ConversionConfig) -> None:
        self.source = source
        self.notes: list[str] = []
        self.metadata = _clean_metadata(getattr(graph, "metadata", None) or {})
        self.s2sim_format = self.metadata.get(S2SIM_FORMAT_KEY) is not None
        self.config = self._effective_config(config)
        self.nodes, self.edges = _flatten(graph)
        if any("." in n for n in self.nodes) and any(_kind(n) == "NIRGraph" for n in graph.nodes.values()):
            self.notes.append("nested subgraphs were flattened; their nodes are named 'outer.inner'")
        _check_edges(self.nodes, self.edges)
        _check_supported(self.nodes)
        _check_values(self.nodes)
        self.in_shape, self.out_shape = _infer_shapes(self.nodes, self.edges)
        self.succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            self.succ[a].append(b)
        self.order = {n: i for i, n in enumerate(self.nodes)}
        self.depth = _depths(self.nodes, self.succ)

    # -- configuration ------------------------------------------------------------------------------------
    def _effective_config(self, config: ConversionConfig) -> ConversionConfig:
        md = self.metadata if config.use_metadata else {}
        changes: dict[str, Any] = {}
        if "dt" in md:
            if not _positive_real(md["dt"]):
                raise ConversionError(f"graph metadata dt = {md['dt']!r} must be a positive finite number")
            changes["dt"] = float(md["dt"])
        reset = md.get("reset_mechanism", md.get("reset"))
        if reset is not None:
            if not isinstance(reset, str) or reset not in _RESET_ALIASES:
                raise ConversionError(f"graph metadata reset = {reset!r} is not one of {sorted(_RESET_ALIASES)}")
            changes["reset"] = _RESET_ALIASES[reset]
        if "integrator" in md:
            if md["integrator"] not in [i.value for i in Integrator]:
                raise ConversionError(f"graph metadata integrator = {md['integrator']!r} is not one of "
                                      f"{[i.value for i in Integrator]}")
            changes["integrator"] = Integrator(md["integrator"])
        if self.s2sim_format and config.use_metadata:
            delay = md.get("conn_delay", 0)
            if not _real(delay) or delay != int(delay):
                raise ConversionError(f"graph metadata conn_delay = {delay!r} must be an int 0..7")
            changes["conn_delay"] = int(delay)
            changes["scale_weights"] = False
        new = replace(config, **changes)
        for key, value in changes.items():
            if getattr(config, key) != value:
                self.notes.append(f"{key} = {_plain(getattr(new, key))!r} taken from the graph metadata (config had "
                                  f"{_plain(getattr(config, key))!r}); set use_metadata=False to keep the config")
        if new.dt is None:
            where = "has no 'dt' metadata" if config.use_metadata else "is read with use_metadata=False"
            warn(MetadataWarning, f"NIR graph {self.source} {where} and ConversionConfig.dt is not set: dt = 1.0 "
                 "(py-spinnaker2's default) is assumed, so every time constant is read in ticks; set "
                 "ConversionConfig(dt=...) or --dt to the graph's time step (snnTorch graphs: 1e-4)", self.source,
                 strict=config.strict, error=ConversionError)
            new = replace(new, dt=1.0)
        return new

    # -- driver -------------------------------------------------------------------------------------------
    def run(self) -> Conversion:
        cfg = self.config
        report = ConversionReport(config=cfg.to_dict(), notes=self.notes)
        if any(_kind(node) == "Conv2d" for node in self.nodes.values()):
            report.notes.append("conv stride: stride_y = NIR stride[0] (H axis), stride_x = NIR stride[1] (W axis); "
                                "py-spinnaker2 maps stride[0] to stride_x")
        pop_names = [n for n, node in self.nodes.items() if _kind(node) in _NEURON_TYPES + ("Input",)]
        neurons = sum(int(np.prod(self.out_shape[n], dtype=np.float64)) for n in pop_names)
        memory.check(neurons * _NEURON_BYTES, f"converting NIR graph {self.source}: parameters, biases and scales of "
                     f"{neurons} neurons")
        pop_names.sort(key=self._rank)
        chains = [c for p in pop_names for c in self._chains_from(p, p, (), set())]
        outputs = {c.source for c in chains if c.target is None}
        pops: dict[str, snn.Population] = {}
        plans_by_target: dict[str, list[_Plan]] = {p: [] for p in pop_names}
        for chain in chains:
            if chain.target is not None:
                plans_by_target[chain.target].append(self._plan(chain))
        pop_reports: dict[str, PopulationReport] = {}
        for name in pop_names:
            pop, prep = self._population(name, plans_by_target[name], name in outputs)
            pops[name] = pop
            pop_reports[name] = prep
        projections, proj_reports = self._projections(plans_by_target, pops)
        net = snn.Network(str(self.metadata.get("s2sim_network_name", "nir")))
        net.add(*pops.values(), *projections)
        _set_latencies(pop_reports, projections, pops)
        report.populations = [pop_reports[n] for n in pop_names]
        report.projections = proj_reports
        net.conversion_report = report
        inputs = {n: pops[n] for n in pop_names if _kind(self.nodes[n]) == "Input"}
        outs = {n: pops[n] for n in pop_names if n in outputs}
        return Conversion(net, inputs, outs, report)

    def _rank(self, name: str) -> tuple[int, int]:
        """Sort key: graph order, or the network order an s2sim export recorded (HDF5 sorts names)."""
        md = _clean_metadata(getattr(self.nodes[name], "metadata", None) or {})
        if self.s2sim_format and "s2sim_index" in md:
            return (_meta_int(md, "s2sim_index", f"node {name!r}"), self.order[name])
        return (self.depth.get(name, 1 << 30), self.order[name])

    def _chains_from(self, source: str, node: str, ops: tuple[str, ...], seen: set) -> Iterable[_Chain]:
        for nxt in self.succ[node]:
            kind = _kind(self.nodes[nxt])
            if kind in _NEURON_TYPES:
                yield _Chain(source, ops, nxt)
            elif kind == "Output":
                between = [o for o in ops if _kind(self.nodes[o]) != "Flatten"]
                if between:
                    raise ConversionError(f"Output node {nxt!r} is fed by {source!r} through {between} without a "
                                          "neuron; the chip only outputs spikes or voltages of neurons: add a neuron "
                                          "node (e.g. IF with r = 1) before the Output")
                yield _Chain(source, ops, None, nxt)
            elif kind == "Input":
                continue
            else:
                if nxt in seen:
                    raise ConversionError(f"node {nxt!r} is on a cycle without a neuron ({' -> '.join(ops + (nxt,))})")
                yield from self._chains_from(source, nxt, ops + (nxt,), seen | {nxt})

    # -- projections plans --------------------------------------------------------------------------------
    def _plan(self, chain: _Chain) -> _Plan:
        weight_nodes = tuple(o for o in chain.ops if _kind(self.nodes[o]) in _WEIGHT_TYPES)
        if len(weight_nodes) > 1 and not self.config.fuse_weight_layers:
            raise ConversionError(f"weight nodes {weight_nodes[0]!r} and {weight_nodes[1]!r} follow each other "
                                  f"without a neuron between {chain.source!r} and {chain.target!r}; the chip has one "
                                  "weight layer per projection (set fuse_weight_layers=True to fuse them)")
        core = [o for o in chain.ops if _kind(self.nodes[o]) != "Flatten"]
        kinds = [_kind(self.nodes[o]) for o in core]
        if kinds and kinds[-1] == "Conv2d" and len(kinds) <= 2 and (len(kinds) == 1 or kinds[0] in
                                                                      ("SumPool2d", "AvgPool2d")):
            plan = self._conv_plan(chain, core)
            if plan is not None:
                return plan
        return self._list_plan(chain, weight_nodes)

    def _conv_plan(self, chain: _Chain, core: list[str]) -> _Plan | None:
        conv_name = core[-1]
        conv = self.nodes[conv_name]
        if _kind(self.nodes[chain.target]) == "CubaLIF":
            return None  # lif_curr_exp is no conv target: unrolled into a connection list
        g = _conv_geometry(conv_name, conv)
        if g["groups"] != 1 or g["dilation"] != (1, 1):
            return None
        pool_name = core[0] if len(core) == 2 else None
        in_shape = self.in_shape[pool_name or conv_name]
        if len(in_shape) != 3:
            in_shape = _conv_in_shape(conv_name, conv, in_shape)
        pool_y = pool_x = 1
        factor = 1.0
        if pool_name is not None:
            (pool_y, pool_x), _ = _pool_geometry(pool_name, self.nodes[pool_name])
            if in_shape[1] % pool_y or in_shape[2] % pool_x:
                return None
            if _kind(self.nodes[pool_name]) == "AvgPool2d":
                factor = 1.0 / (pool_y * pool_x)
        if self.config.conn_delay != 0:
            raise ConversionError(f"node {conv_name!r}: conv projections have no delay field but conn_delay = "
                                  f"{self.config.conn_delay}; use ConversionConfig(conn_delay=0)")
        kernel = np.asarray(conv.weight, dtype=np.float64).swapaxes(0, 1) * factor
        params = {"in_height": int(in_shape[1]), "in_width": int(in_shape[2]),
                  "stride_y": g["stride"][0], "stride_x": g["stride"][1], "pool_y": pool_y, "pool_x": pool_x,
                  "pad_top": g["pads"][0], "pad_bottom": g["pads"][1], "pad_left": g["pads"][2],
                  "pad_right": g["pads"][3]}
        c_out = kernel.shape[1]
        _, oh, ow = self.out_shape[conv_name]
        bias = getattr(conv, "bias", None)
        bias = np.zeros(c_out) if bias is None else np.broadcast_to(np.asarray(bias, np.float64).ravel(), (c_out,))
        notes = []
        if factor != 1.0:
            notes.append(f"AvgPool2d {pool_name!r} fused as a sum-pool; its factor 1/{pool_y * pool_x} is multiplied "
                         f"into the kernel of {conv_name!r} (exact where the scaled kernel is an integer)")
        return _Plan(chain, "conv2d", kernel, conv_params=params,
                     bias_terms=[(chain.ops[chain.ops.index(conv_name):] + (chain.target,), np.repeat(bias, oh * ow))],
                     weight_nodes=(conv_name,), notes=notes)

    def _list_plan(self, chain: _Chain, weight_nodes: tuple[str, ...]) -> _Plan:
        syn = _identity(int(np.prod(self.out_shape[chain.source])))
        suffix_bias: list[tuple[tuple[str, ...], np.ndarray]] = []
        ops = [o for o in chain.ops if _kind(self.nodes[o]) != "Flatten"]
        stages = [self._op_synapses(o) for o in ops]
        for i, stage in enumerate(stages):
            syn = _compose(syn, stage, f"path {chain.source!r} -> {' -> '.join(ops[:i + 1])}")
            if stage.bias.any():
                vec = stage.bias
                for later in stages[i + 1:]:
                    vec = later.linear(vec)
                suffix_bias.append((tuple(ops[i:]) + (chain.target,), vec))
        syn.bias = np.zeros(syn.n_out)
        target_n = int(np.prod(self.in_shape[chain.target]))
        if syn.n_out != target_n:
            raise ConversionError(f"shape mismatch: path {chain.source!r} -> {' -> '.join(chain.ops)} -> "
                                  f"{chain.target!r} delivers {syn.n_out} values, {chain.target!r} has {target_n}")
        notes = []
        kinds = {_kind(self.nodes[o]) for o in ops}
        if "Conv2d" in kinds:
            notes.append(f"conv {[o for o in ops if _kind(self.nodes[o]) == 'Conv2d']} unrolled into a connection "
                         "list (no lif_conv2d path for this target, pooling or conv geometry)")
        if "AvgPool2d" in kinds:
            notes.append("AvgPool2d: sum-pool with its factor 1/(kH*kW) multiplied into the following weights "
                         "(exact where the scaled weight is an integer)")
        if len(weight_nodes) > 1:
            notes.append(f"weight layers {list(weight_nodes)} fused into one projection (product of the matrices)")
        delays = np.full(syn.w.size, self.config.conn_delay, dtype=np.int64)
        return _Plan(chain, "connection_list", syn.w, syn.pre, syn.post, delays, bias_terms=suffix_bias,
                     weight_nodes=weight_nodes, notes=notes)

    def _op_synapses(self, name: str) -> _Synapses:
        node = self.nodes[name]
        kind = _kind(node)
        entries = int(np.prod(self.in_shape[name], dtype=np.float64))  # a pool: one entry per input
        if kind in ("Affine", "Linear", "Conv2d"):
            weight = np.asarray(node.weight)
            entries = weight.size * (int(np.prod(self.out_shape[name][1:], dtype=np.float64)) if kind == "Conv2d"
                                     else 1)
        memory.check(entries * _ENTRY_BYTES, f"node {name!r}: {kind} as a connection list ({entries} entries)",
                     "A conv feeding a neuron population directly converts without unrolling")
        if kind in ("Affine", "Linear"):
            return _affine_synapses(node)
        in_shape = self.in_shape[name]
        if kind == "Conv2d":
            return _conv_synapses(name, node, _conv_in_shape(name, node, in_shape))
        return _pool_synapses(name, node, in_shape)

    # -- populations --------------------------------------------------------------------------------------
    def _population(self, name: str, plans: list[_Plan], is_output: bool) -> tuple[snn.Population, PopulationReport]:
        node = self.nodes[name]
        kind = _kind(node)
        shape = tuple(self.out_shape[name])
        size = int(np.prod(shape))
        record = list(self.config.output_record) if is_output else []
        md = _clean_metadata(getattr(node, "metadata", None) or {})
        if kind == "Input":
            record = [r for r in record if r in ("spikes", "counts", *DIAGNOSTIC_RECORDABLES)]
            spikes = _meta_spike_times(md, name) if self.s2sim_format else {}
            if self.s2sim_format and "s2sim_record" in md:
                record = [r for r in _meta_text(md, "s2sim_record", f"node {name!r}").split(",") if r]
            pop = snn.Population(size, "spike_list", spikes, name=name, record=record)
            self._restore_atoms(pop, md)
            pop.voltage_scale = None
            pop.nir_shape = shape
            return pop, PopulationReport(name, kind, "spike_list", size, shape, None, None, None, is_input=True,
                                         is_output=is_output)
        model = self._model_for(name, plans)
        w_scale = self._weight_scale(name, plans, model)
        bias = self._bias(plans, size)
        params, scale, mappings = _neuron_params(name, node, size, w_scale, bias, self.config)
        notes: list[str] = []
        if kind == "CubaLIF" and np.any(bias != 0):
            notes.append("bias enters V as i_offset = bias*w_scale/k_syn instead of the synaptic current: exact in "
                         "steady state, not in the first ticks")
        reset = CHIP_RESET[self.config.reset]
        if self.s2sim_format and md.get("s2sim_model") is not None:
            model, reset, params, scale, record = self._restore_population(name, md, model, reset, params, scale,
                                                                           record, notes)
        for plan in plans:
            notes.extend(plan.notes)
        pop = snn.Population(size, model, {**params, "reset": reset}, name=name, record=record)
        self._restore_atoms(pop, md)
        pop.voltage_scale = np.asarray(scale, dtype=np.float64)
        pop.weight_scale = w_scale
        pop.nir_shape = shape
        for m in mappings:
            m.chip_value = pop.param(m.chip_param).astype(np.float32)
            m.effective = None if m.effective is None else m.effective(m.chip_value.astype(np.float64))
        prep = PopulationReport(name, kind, model, size, shape, reset, w_scale, pop.voltage_scale, mappings,
                                is_output=is_output, notes=notes)
        for plan in plans:
            plan.w_scale = w_scale
        return pop, prep

    def _restore_atoms(self, pop: snn.Population, md: dict[str, Any]) -> None:
        if self.s2sim_format and "s2sim_max_atoms_per_core" in md:
            atoms = _meta_int(md, "s2sim_max_atoms_per_core", f"node {pop.name!r}")
            if atoms > 0:
                pop.set_max_atoms_per_core(atoms)

    def _model_for(self, name: str, plans: list[_Plan]) -> str:
        has_conv = any(p.kind == "conv2d" for p in plans)
        if _kind(self.nodes[name]) == "CubaLIF":
            return "lif_curr_exp_no_delay" if self.config.conn_delay == 0 else "lif_curr_exp"
        if has_conv:
            return "lif_conv2d"
        return "lif_no_delay" if self.config.conn_delay == 0 else "lif"

    def _weight_scale(self, name: str, plans: list[_Plan], model: str) -> float:
        if not self.config.scale_weights or not plans:
            return 1.0
        mags = np.abs(np.concatenate([p.weights.ravel() for p in plans]))
        ref = float(np.percentile(mags, self.config.weight_scale_percentile)) if mags.size else 0.0
        if ref == 0.0:
            return 1.0
        limit = CONV_WEIGHT_MAX if model == "lif_conv2d" else MODELS[model].weight_limit
        return limit / ref

    @staticmethod
    def _bias(plans: list[_Plan], size: int) -> np.ndarray:
        terms: dict[tuple[str, ...], np.ndarray] = {}
        for plan in plans:
            for key, vec in plan.bias_terms:
                terms[key] = vec  # paths that share the same biased node and suffix count its bias once
        total = np.zeros(size)
        for vec in terms.values():
            total = total + vec
        return total

    def _restore_population(self, name, md, model, reset, params, scale, record, notes):
        """For graphs written by s2sim.nir_export: take the exact host values when the NIR still describes them."""
        where = f"node {name!r}"
        meta_model = _meta_text(md, "s2sim_model", where)
        if meta_model not in MODELS or MODELS[meta_model].kind != MODELS[model].kind:
            raise ConversionError(f"node {name!r}: s2sim metadata model {meta_model!r} does not match the NIR node "
                                  f"(converted as {model!r})")
        size = len(next(iter(params.values())))
        exact = {k[len("s2sim_param_"):]: _meta_array(md, k, where, size=size, exact_size=True) for k in md
                 if k.startswith("s2sim_param_")}
        consistent = all(
            np.allclose(params[k], exact[k], rtol=1e-6, atol=1e-6 * max(1.0, float(np.max(np.abs(exact[k])))))
            for k in params if k in exact and k not in _META_ONLY_PARAMS)
        if not consistent:
            notes.append("NIR parameters differ from the s2sim metadata (graph edited?); the NIR values were used")
            return model, reset, params, scale, record
        params = {k: exact.get(k, v) for k, v in params.items()}
        params.update({k: exact[k] for k in _META_ONLY_PARAMS if k in exact and k in MODELS[meta_model].defaults})
        if "s2sim_voltage_scale" in md:
            scale = _meta_array(md, "s2sim_voltage_scale", where, size=size)
        rec = _meta_text(md, "s2sim_record", where, "")
        notes.append("exact host parameters restored from s2sim metadata")
        return meta_model, _meta_text(md, "s2sim_reset", where, reset), params, scale, [r for r in rec.split(",") if r]

    # -- projections --------------------------------------------------------------------------------------
    def _projections(self, plans_by_target, pops):
        out, reports = [], []
        all_plans = [p for plans in plans_by_target.values() for p in plans]
        all_plans.sort(key=lambda p: self._rank(p.chain.ops[-1] if p.chain.ops else p.chain.source))
        names: dict[str, int] = {}
        for plan in all_plans:
            base = f"{plan.chain.source}->{plan.chain.target}"
            names[base] = names.get(base, 0) + 1
        used: set[str] = set()
        for plan in all_plans:
            base = f"{plan.chain.source}->{plan.chain.target}"
            plan.name = base if names[base] == 1 else f"{base}:{'/'.join(plan.chain.ops) or 'direct'}"
            if self.s2sim_format:
                self._restore_projection(plan)
            if plan.name in used:
                raise ConversionError(f"two projections are both named {plan.name!r}")
            used.add(plan.name)
            proj, rep = self._build_projection(plan, pops)
            out.append(proj)
            reports.append(rep)
        return out, reports

    def _restore_projection(self, plan: _Plan) -> None:
        if not plan.weight_nodes:
            return
        md = _clean_metadata(getattr(self.nodes[plan.weight_nodes[-1]], "metadata", None) or {})
        if "s2sim_weights" not in md:
            return
        where = f"node {plan.weight_nodes[-1]!r}"
        plan.name = _meta_text(md, "s2sim_name", where, plan.name)
        exact = _meta_array(md, "s2sim_weights", where)
        if plan.kind == "conv2d":
            if exact.shape == plan.weights.shape and np.allclose(exact, plan.weights, rtol=1e-6, atol=1e-9):
                plan.weights = exact
                for key in plan.conv_params:
                    if f"s2sim_conv_{key}" in md:
                        plan.conv_params[key] = _meta_int(md, f"s2sim_conv_{key}", where)
            return
        size = exact.size
        pre = _meta_array(md, "s2sim_pre_idx", where, integer=True, size=size, exact_size=True)
        post = _meta_array(md, "s2sim_post_idx", where, integer=True, size=size, exact_size=True)
        delays = _meta_array(md, "s2sim_delays", where, integer=True, size=size, exact_size=True)
        n_pre, n_post = int(plan.pre_idx.max(initial=-1)) + 1, int(plan.post_idx.max(initial=-1)) + 1
        if pre.size and (pre.min() < 0 or post.min() < 0 or pre.max() >= n_pre or post.max() >= n_post):
            return
        if _same_matrix((plan.pre_idx, plan.post_idx, plan.weights), (pre, post, exact.ravel()), n_post):
            plan.pre_idx, plan.post_idx, plan.weights, plan.delays = pre, post, exact.ravel(), delays

    def _build_projection(self, plan: _Plan, pops):
        pre, post = pops[plan.chain.source], pops[plan.chain.target]
        w_scale = plan.w_scale
        chip = _snap_to_integers(plan.weights * w_scale)
        if plan.kind == "conv2d":
            lo, hi = CONV_WEIGHT_MIN, CONV_WEIGHT_MAX
        else:
            lo, hi = -post.model.weight_limit, post.model.weight_limit
        over = (np.trunc(chip) < lo) | (np.trunc(chip) > hi)
        clipped = int(over.sum())
        where = (f"node(s) {', '.join(repr(n) for n in plan.weight_nodes or (plan.chain.source,))} -> population "
                 f"{plan.chain.target!r}")
        if clipped and (self.config.on_overflow == "error" or len(plan.weight_nodes) > 1):
            worst = float(chip.ravel()[np.argmax(np.abs(chip).ravel())])
            what = (f"fused weight nodes {' and '.join(repr(n) for n in plan.weight_nodes)}"
                    if len(plan.weight_nodes) > 1 else f"weights of {where}")
            raise ConversionError(f"{what}: {clipped} weight(s) outside the chip range {lo}..{hi} after scaling by "
                                  f"{w_scale:.6g} (largest {worst:.6g}) for population {post.name!r} "
                                  f"({post.neuron_model}); use ConversionConfig(on_overflow='clip') or "
                                  "scale_weights=True")
        if clipped:
            chip = np.clip(chip, lo, hi)
        if plan.kind == "conv2d":
            proj = snn.Conv2DProjection(pre, post, chip, plan.conv_params, name=plan.name)
            synapses = int(chip.size)
        else:
            conns = np.stack([plan.pre_idx, plan.post_idx, chip, plan.delays], axis=1)
            proj = snn.Projection(pre, post, conns, name=plan.name)
            synapses = int(chip.size)
        rounding = {mode: _rounding(chip, w_scale, mode, lo, hi) for mode in REPORTED_ROUNDINGS}
        kept = min((np.trunc(chip) if mode == "trunc" else np.rint(chip) for mode in REPORTED_ROUNDINGS),
                   key=lambda ints: float(np.abs(chip - ints).sum()))
        check_weight_loss(chip, kept, f"{where} (projection {plan.name!r})", plan.name,
                          f"either rounding the conversion report shows ({' or '.join(REPORTED_ROUNDINGS)}) at weight "
                          f"scale {w_scale:.6g}", strict=self.config.strict, error=ConversionError)
        delay = 0 if plan.kind == "conv2d" else int(plan.delays.max(initial=0))
        rep = ProjectionReport(plan.name, pre.name, post.name, plan.kind, plan.chain.ops, synapses, float(w_scale),
                               (lo, hi), float(np.max(np.abs(plan.weights), initial=0.0)),
                               float(np.max(np.abs(chip), initial=0.0)), clipped, delay, rounding)
        return proj, rep


def _snap_to_integers(chip: np.ndarray) -> np.ndarray:
    """Weights within a few float64 ulps of an integer become that integer.

    ``W * (127 / max|W|)`` lands on 127.00000000000001 for some W; such products are integers up to the rounding of
    the scale itself, and leaving them off-grid would make ``weight_rounding="exact"`` reject them.
    """
    near = np.rint(chip)
    close = np.abs(chip - near) <= 4 * np.finfo(np.float64).eps * np.maximum(np.abs(chip), 1.0)
    return np.where(close, near, chip)


def _rounding(chip: np.ndarray, w_scale: float, mode: str, lo: int, hi: int) -> WeightRounding:
    ints = np.trunc(chip) if mode == "trunc" else np.rint(chip)
    err = float(np.max(np.abs(ints - chip), initial=0.0)) / w_scale
    zeroed = int(np.count_nonzero((chip != 0) & (ints == 0)))
    overflow = int(np.count_nonzero((ints < lo) | (ints > hi)))
    return WeightRounding(err, zeroed, overflow)
