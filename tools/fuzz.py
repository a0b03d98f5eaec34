#!/usr/bin/env python3
"""Long fuzzing runs: mutated NIR graphs and files, traces, API calls and command lines, for as long as asked.

    python tools/fuzz.py --minutes 10 [--seed 1] [--categories nir-graph,api] [--json]

Cycles through the categories of s2sim.fuzzing (one case of each in turn), under the fuzzing limits (a 1 GiB memory
budget, a 5 s read timeout), and prints cases and outcomes per category. Exit status 1 when any case ended as
"other" (not an s2sim error) or was a must-fail mutation that was accepted; the failing cases are listed with the
seed that reproduces them (``--seed S --cases 1`` runs exactly that case again).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from s2sim import fuzzing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to run (default 1)")
    parser.add_argument("--cases", type=int, default=None, help="stop after this many cases per category")
    parser.add_argument("--seed", type=int, default=0, help="first seed; case k of a category uses seed + k")
    parser.add_argument(
        "--categories",
        default=",".join(fuzzing.CATEGORIES),
        help=f"comma-separated subset of {', '.join(fuzzing.CATEGORIES)}",
    )
    parser.add_argument("--json", action="store_true", help="print the tally as JSON")
    args = parser.parse_args(argv)
    categories = [c for c in args.categories.split(",") if c]
    unknown = sorted(set(categories) - set(fuzzing.CATEGORIES))
    if unknown:
        parser.error(f"unknown categories {unknown}")
    tally = fuzzing.Tally()
    deadline = time.monotonic() + 60 * args.minutes
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, fuzzing.fuzzing_limits():
        k = 0
        while time.monotonic() < deadline and (args.cases is None or k < args.cases):
            for category in categories:
                seed = args.seed + k
                case = fuzzing.CATEGORIES[category](random.Random(f"{category}:{seed}"), Path(tmp))
                before = len(tally.failures)
                tally.add(case, fuzzing.classify(case))
                if len(tally.failures) > before:
                    tally.failures[-1] += f" (seed {seed})"
            k += 1
    report = {"seconds": round(time.monotonic() - started, 1), **tally.to_dict()}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(_table(report))
    return 1 if tally.failures else 0


def _table(report: dict) -> str:
    cols = ("cases", "error", "accepted", "other", "silent", "contained crash", "contained hang")
    lines = [f"{'category':<22}" + "".join(f"{c:>17}" for c in cols)]
    for name, row in report["categories"].items():
        lines.append(f"{name:<22}" + "".join(f"{row[c]:>17}" for c in cols))
    lines.append(f"{report['seconds']} s; {len(report['failures'])} failure(s)")
    lines += [f"  {f}" for f in report["failures"][:50]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
