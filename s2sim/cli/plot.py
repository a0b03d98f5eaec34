"""``s2sim plot out.h5 [-o out.png]``: spike rasters and voltage traces of a run, as PNG."""
from __future__ import annotations

import argparse
import dataclasses
import os

from ..errors import ConfigError
from .checks import check_output, non_negative_int, positive_int, require


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw spike rasters and voltage traces of a recording (from s2sim run) to PNG",
        description="Draw one row per population of a NIR data file written by 's2sim run': the spike raster on "
                    "the left, membrane voltages of the most active neurons on the right (chip units, NIR units "
                    "on the right-hand axis, the threshold dashed), for one sample, time in ms.")
    parser.add_argument("recording", help="NIR data file (HDF5) written by 's2sim run'")
    parser.add_argument("-o", "--output", default=None, metavar="OUT.png",
                        help="image to write (default: the recording's name with .png)")
    parser.add_argument("--sample", type=non_negative_int, default=0, help="which sample to draw (default 0)")
    parser.add_argument("--neurons", type=positive_int, default=5, metavar="K",
                        help="voltage traces per population: the K most active neurons (default 5)")
    parser.add_argument("--node", action="append", default=None, metavar="NAME",
                        help="draw only this population (repeat for several; default all)")
    parser.add_argument("--class-names", default=None, metavar="NAME,NAME,...",
                        help="label the neurons of every drawn population of that many neurons (the output "
                             "layer) with these class names")
    parser.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    require("s2sim plot", {"matplotlib": "drawing", "h5py": "reading the recording"})
    from ..isolation import call_isolated
    from ..plotting import load_recording, plot_recording

    out = args.output or os.path.splitext(args.recording)[0] + ".png"
    check_output(out, "-o/--output")
    recording = call_isolated(load_recording, args.recording, what=f"recording file {args.recording!r}")
    if args.class_names:
        names = [n.strip() for n in args.class_names.split(",")]
        recording = {k: dataclasses.replace(r, class_names=names) for k, r in recording.items()}
    for name, rec in recording.items():
        batch = (rec.spikes if rec.spikes is not None else rec.voltages).shape[0]
        if (args.node is None or name in args.node) and args.sample >= batch:
            raise ConfigError(f"--sample {args.sample} is out of range: {args.recording!r} holds {batch} sample(s) "
                              f"of {name!r} (0..{batch - 1})")
    plot_recording(recording, out, sample=args.sample, max_neurons=args.neurons, nodes=args.node)
    print(f"wrote {out}")
    return 0
