"""``s2sim plot out.h5 [-o out.png]``: spike rasters and voltage traces of a run, as PNG."""
from __future__ import annotations

import argparse
import os

from .checks import check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw spike rasters and voltage traces of a recording (from s2sim run) to PNG",
        description="Draw one row per population of a NIR data file written by 's2sim run': the spike raster on "
                    "the left, membrane voltages of the most active neurons on the right, for one sample.")
    parser.add_argument("recording", help="NIR data file (HDF5) written by 's2sim run'")
    parser.add_argument("-o", "--output", default=None, metavar="OUT.png",
                        help="image to write (default: the recording's name with .png)")
    parser.add_argument("--sample", type=int, default=0, help="which sample to draw (default 0)")
    parser.add_argument("--neurons", type=int, default=5, metavar="K",
                        help="voltage traces per population: the K most active neurons (default 5)")
    parser.add_argument("--node", action="append", default=None, metavar="NAME",
                        help="draw only this population (repeat for several; default all)")
    parser.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from ..isolation import call_isolated
    from ..plotting import load_recording, plot_recording

    out = args.output or os.path.splitext(args.recording)[0] + ".png"
    check_output(out, "-o/--output")
    recording = call_isolated(load_recording, args.recording, what=f"recording file {args.recording!r}")
    plot_recording(recording, out, sample=args.sample, max_neurons=args.neurons, nodes=args.node)
    print(f"wrote {out}")
    return 0
