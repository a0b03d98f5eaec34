"""``s2sim conform expected.h5 observed.h5`` and ``s2sim conform --infer chip.h5 ...``.

Exit status 0 when the traces agree (or some chip variant reproduces every trace), 1 when they do not, 2 when a
trace cannot be read (so a damaged file is never reported as a mismatch); the command can gate a CI job.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ConfigError
from .checks import check_output, fields_as_flags, require


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``conform`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "conform",
        help="compare two run traces bit for bit, or infer the chip variant from chip traces",
        description="Compare an expected trace (usually the simulator's) with an observed one (usually the chip's): "
        "per-population agreement and the first divergence. With --infer, re-run each population of the "
        "traces under every combination of the chip-variant points it depends on and report which "
        "points the traces settle, and which they cannot tell apart. Exit status 1 on mismatch.",
    )
    parser.add_argument(
        "traces",
        nargs="+",
        metavar="TRACE",
        help="expected.h5 observed.h5; with --infer: chip traces or directories of them",
    )
    parser.add_argument("--infer", action="store_true", help="infer the chip variant from the given chip traces")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="with --infer: the full report (every settled point, every population nothing "
        "reproduces) instead of the summary",
    )
    parser.add_argument(
        "--write-profile",
        metavar="PROFILE.json",
        default=None,
        help="with --infer: write the profile the traces settle as JSON (for s2sim exec --profile "
        "and ChipProfile.from_dict); an error when they leave more than one",
    )
    parser.add_argument("--plot", metavar="PNG", help="write rasters and voltage differences to this PNG file")
    tol = parser.add_argument_group("tolerance (non-exact sources such as Brian2 or snnTorch; default bit-exact)")
    tol.add_argument("--atol", type=float, default=None, help="absolute voltage tolerance")
    tol.add_argument("--rtol", type=float, default=None, help="relative voltage tolerance")
    tol.add_argument("--v-scale", type=float, default=None, help="multiply observed voltages by this first")
    tol.add_argument("--spike-ticks", type=int, default=None, help="spikes match within this many ticks")
    parser.add_argument(
        "--allow-partial", action="store_true", help="compare the common ticks of traces that end at different ticks"
    )
    parser.add_argument(
        "--state-precision",
        choices=("float32", "float64"),
        action="append",
        default=None,
        help="with --infer: state precisions to try (repeatable; default both)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="POINT=VALUE[,VALUE...]",
        help="with --infer: try only these values of a point or field, e.g. "
        "flush_to_zero=False or 'threshold_op[lif]=>=' (repeatable)",
    )
    parser.set_defaults(func=run_conform)


def run_conform(args: argparse.Namespace) -> int:
    """Run ``s2sim conform``: compare two traces, or infer the chip variant with ``--infer``."""
    if args.infer:
        return _run_infer(args)
    infer_only = [
        flag
        for flag, given in (
            ("--only", args.only),
            ("--state-precision", args.state_precision),
            ("--write-profile", args.write_profile),
            ("--verbose", args.verbose),
        )
        if given
    ]
    if infer_only:
        raise ConfigError(
            f"conform: {', '.join(infer_only)} {'applies' if len(infer_only) == 1 else 'apply'} with --infer only"
        )
    if len(args.traces) != 2:
        raise ConfigError(
            f"conform: give exactly two traces (expected observed), got {len(args.traces)}; "
            "use --infer for a set of chip traces"
        )
    from ..conformance import compare
    from ..traces import read_trace

    if args.plot:
        require("s2sim conform", {"matplotlib": "--plot"})
        check_output(args.plot, "--plot")
    expected, observed = (read_trace(p, isolate=True) for p in args.traces)
    result = compare(expected, observed, tolerance=_tolerance(args), allow_partial=args.allow_partial)
    if args.plot:
        plot_comparison(expected, observed, result, args.plot)
    if args.json:
        print(json.dumps({"expected": args.traces[0], "observed": args.traces[1], **result.to_dict()}, indent=1))
    else:
        print(f"expected: {args.traces[0]}\nobserved: {args.traces[1]}")
        print(result.report())
    return 0 if result.match else 1


def _run_infer(args: argparse.Namespace) -> int:
    from ..conformance import infer
    from ..traces import read_trace_set

    if args.plot or _tolerance(args) is not None:
        raise ConfigError("conform --infer: --plot and tolerance options apply to a two-trace comparison only")
    traces, labels = read_trace_set(args.traces, isolate=True)
    restrict = _restrictions(args.only or [])
    if args.state_precision:
        restrict["state_precision"] = args.state_precision
    result = infer(traces, restrict=restrict, labels=labels)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.report(None if args.verbose else SUMMARY_ITEMS, more=" (all of them: --verbose or --json)"))
    if args.write_profile:
        _write_profile(result, args.write_profile)
    return 0 if result.consistent else 1


#: Items a summary line names before it says how many more there are.
SUMMARY_ITEMS = 4


def _write_profile(result: Any, path: str) -> None:
    """Write the one profile the traces settle, as JSON (s2sim exec --profile and ChipProfile.from_dict read it)."""
    profiles = result.profiles()
    if len(profiles) != 1:
        raise ConfigError(
            f"conform --write-profile {path!r}: the traces leave {len(profiles)} profiles consistent "
            "(0: none reproduces them; more: some points are not distinguished); nothing written"
        )
    text = json.dumps({"profile": profiles[0].to_dict(), "not_probed": result.not_probed()}, indent=1) + "\n"
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ConfigError(f"conform --write-profile {path!r}: cannot write it ({exc})") from None
    from ..progress import step

    step("wrote %s: the inferred ChipProfile (use it with s2sim exec --profile %s)", path, path)


def _restrictions(items: list[str]) -> dict[str, list]:
    """``POINT=V1,V2`` options -> {point or field: [values]}, values parsed as the field's own values."""
    from ..variants import FIELD_VALUES

    out: dict[str, list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        field = name.split("[")[0]
        if not sep or field not in FIELD_VALUES:
            raise ConfigError(
                f"conform --only {item!r}: expected POINT=VALUE with a point of "
                f"{sorted(FIELD_VALUES)} (per-model points as field[model])"
            )
        by_text = {str(v): v for v in FIELD_VALUES[field]}
        bad = [v for v in text.split(",") if v not in by_text]
        if bad:
            raise ConfigError(f"conform --only {item!r}: {bad} not among {list(by_text)}")
        out[name] = [by_text[v] for v in text.split(",")]
    return out


def _tolerance(args: argparse.Namespace) -> Any:
    from ..conformance import Tolerance

    given = {
        k: v
        for k, v in (
            ("v_atol", args.atol),
            ("v_rtol", args.rtol),
            ("v_scale", args.v_scale),
            ("spike_ticks", args.spike_ticks),
        )
        if v is not None
    }
    with fields_as_flags(
        "Tolerance", {"v_atol": "--atol", "v_rtol": "--rtol", "v_scale": "--v-scale", "spike_ticks": "--spike-ticks"}
    ):
        return Tolerance(**given) if given else None


def plot_comparison(expected: Any, observed: Any, result: Any, path: str, max_populations: int = 6) -> None:
    """Draw per population the spike rasters overlaid (mismatches in red) and observed - expected voltage.

    Traces carry chip ticks, not a time step, so the time axis is in ticks. Drawn on its own Figure (the user's
    matplotlib backend untouched).
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from ..conformance import aligned_rows
    from ..plotting import new_figure, save_figure
    from ..progress import step

    pops = [p for p in result.populations if not p.match] or result.populations
    pops = pops[:max_populations]
    fig = new_figure(13, 2.6 * len(pops) + 0.6)
    axes = fig.subplots(len(pops), 2, squeeze=False)
    for row, pop in zip(axes, pops, strict=True):
        names = {v.variable for v in pop.variables}
        if "spikes" in names:
            ticks, exp, obs = aligned_rows(expected, observed, pop.population, "spikes")
            t, i = np.nonzero(exp)
            row[0].scatter(ticks[t], i, marker="o", s=30, facecolors="none", edgecolors="C0", label="expected")
            t, i = np.nonzero(obs)
            row[0].scatter(ticks[t], i, marker="x", s=20, color="C1", label="observed")
            t, i = np.nonzero(exp != obs)
            row[0].scatter(ticks[t], i, marker="s", s=30, color="red", alpha=0.4, label="mismatch")
            row[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)
            row[0].set_xlim(ticks[0] - 0.5, ticks[-1] + 0.5)
        row[0].set_title(f"{pop.population}: spikes", fontsize=9)
        row[0].set_ylabel("neuron")
        row[0].yaxis.set_major_locator(MaxNLocator(integer=True))
        if "v" in names:
            ticks, exp, obs = aligned_rows(expected, observed, pop.population, "v")
            diff = obs.astype(np.float64) - exp.astype(np.float64)
            for i in np.flatnonzero(np.any(diff != 0, axis=0))[:20]:
                row[1].plot(ticks, diff[:, i], label=f"neuron {i}")
            if np.any(diff != 0):
                row[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)
            row[1].axhline(0.0, color="grey", lw=0.5)
            row[1].set_ylabel("V difference (chip units)")
        row[1].set_title(
            f"{pop.population}: observed - expected V" if "v" in names else f"{pop.population}: no voltages recorded",
            fontsize=9,
        )
    for ax in axes[-1]:
        ax.set_xlabel("tick")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(("MATCH" if result.match else "MISMATCH") + f" ({result.mode})")
    save_figure(fig, path, "--plot")
    step("plot written to %s", path)
