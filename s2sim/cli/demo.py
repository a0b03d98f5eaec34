"""``s2sim demo``: run a shipped default example and print what the chip would do."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the shipped default example",
                            description="Run the NIR paper's single-LIF benchmark (reference doc, section 7) in "
                                        "the bit-exact simulator and print its output spikes next to the "
                                        "published ones.")
    parser.add_argument("--nir-paper", action="store_true", help="the NIR-paper single-LIF benchmark (default)")
    parser.set_defaults(func=run_nir_paper)


def run_nir_paper(args: argparse.Namespace) -> int:
    from ..benchmarks import NIR_PAPER_SPIKES, NIR_PAPER_TICKS, nir_paper_lif
    from ..simulator import Simulator

    net, _, lif = nir_paper_lif()
    sim = Simulator()
    sim.run(net, NIR_PAPER_TICKS)
    spikes = lif.get_spikes()[0]
    v = lif.get_voltages()[0]
    print(f"NIR paper single-LIF benchmark, {NIR_PAPER_TICKS} ticks, profile {sim.profile}")
    print(f"  output spikes (ticks): {spikes}")
    print(f"  published:             {list(NIR_PAPER_SPIKES)}")
    print(f"  peak membrane {float(v.max()):.4f} (threshold {float(lif.params['threshold'][0]):.2f})")
    match = spikes == list(NIR_PAPER_SPIKES)
    print("  match" if match else "  MISMATCH")
    return 0 if match else 1
