"""Run the s2sim probe suite on a SpiNNaker2 board and save the chip's traces.

    python -c "from s2sim import probes; probes.write_probe_suite('probes')"   # or use an existing suite
    python tools/run_probes_on_board.py probes/ chip/ --board 192.168.1.52    # or set S2SIM_BOARD_IP / S2_IP
    s2sim conform --infer chip/                                               # which ChipProfile the chip needs

Needs py-spinnaker2 (the ``spinnaker2`` package) and a board; without them it says what is missing and exits 2.
UNTESTED against a board (none was available when it was written); see docs/conformance.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probes", help="directory of probe traces (s2sim.probes.write_probe_suite)")
    parser.add_argument("out", help="directory for the chip traces (created if needed)")
    parser.add_argument("--board", default=None, help="board IP address (default: $S2SIM_BOARD_IP or $S2_IP)")
    args = parser.parse_args(argv)

    from s2sim.chip import board_status, run_on_board
    from s2sim.traces import read_trace_set, write_trace

    ok, detail = board_status(args.board)
    if not ok:
        print(detail, file=sys.stderr)
        return 2
    traces, labels = read_trace_set(args.probes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for trace, label in zip(traces, labels, strict=True):
        chip = run_on_board(
            trace.network,
            trace.timesteps,
            detail,
            inputs=trace.inputs,
            metadata={**trace.metadata, "expected_source": trace.source},
        )
        path = out / f"{label}.h5"
        write_trace(path, chip)
        print(f"{label}: {path}")
    print(f"now run: s2sim conform --infer {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
