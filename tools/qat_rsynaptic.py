"""QAT fine-tuning of a float RSynaptic network into its chip form.

The network has the shape of the NIR paper's Braille reader: Linear -> RSynaptic (recurrent, current-based) ->
Linear -> Synaptic. On SpiNNaker2 each neuron layer becomes a ``lif_curr_exp_no_delay`` population (8-bit
weights; ``lif_curr_exp`` with --bits 4), the RSynaptic one with a recurrent projection onto itself.

    PYTHONPATH=. python tools/qat_rsynaptic.py              # about a minute on a 2-core machine

1. Train the float model with plain snnTorch on Saccade Digits (synthetic events from real images).
2. PTQ: quantize it as it is (py-spinnaker2's max rule) and measure on the test split.
3. QAT: fine-tune the same weights through s2sim.qat.QATModel, whose forward is the chip's arithmetic
   (separately decayed exc/inh currents, the recurrent projection one tick late, float32 FMA).
4. Freeze, prove bit identity with s2sim.Simulator on a test batch, and print the chip network's mapping.
5. For comparison, the py-spinnaker2 route for the float model: export_snntorch -> NIR -> from_nir.

snnTorch's RSynaptic resets one step late whatever reset_delay says, and its bias builds up in the synaptic
current; the chip resets at once and adds the bias to V from tick 0 (docs/quantization.md). PTQ inherits these
differences, QAT trains them away.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def braille_style_net(hidden: int = 48):
    """Input (2 x 34 x 34 events, pooled 2 x 2) -> Linear -> RSynaptic(hidden) -> Linear -> Synaptic(10)."""
    import snntorch as snn
    import torch.nn as nn

    return nn.Sequential(
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * 17 * 17, hidden),
        # RSynaptic raises with init_hidden=True and reset_delay=False; it resets late in any case
        snn.RSynaptic(alpha=0.85, beta=0.9, linear_features=hidden, init_hidden=True),
        nn.Linear(hidden, 10),
        snn.Synaptic(alpha=0.85, beta=0.9, init_hidden=True, reset_delay=False),
    )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=12, help="float training epochs")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--bits", type=int, choices=(8, 4), default=8)
    ap.add_argument("--limit", type=int, help="only the first N train and test samples (a quick run)")
    ap.add_argument("--cache-dir", type=Path, help="Saccade Digits cache (default ~/.cache/s2sim)")
    ap.add_argument("--ticks", type=int, default=20, help="Saccade Digits ticks per sample (default 20)")
    ap.add_argument("--step-ms", type=float, default=2.0, help="event-camera time step in ms (default 2)")
    args = ap.parse_args(argv)

    import torch

    from s2sim import Simulator, place, saccade_digits
    from s2sim.gesture_model import time_first
    from s2sim.nir_import import ConversionConfig, convert
    from s2sim.qat import QATModel, verify
    from s2sim.quantize import QuantConfig, ptq
    from s2sim.snntorch_export import export_snntorch
    from s2sim.training import accuracy, fit, predict, snntorch_forward

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = saccade_digits.SaccadeConfig(n_ticks=args.ticks, step_ms=args.step_ms)
    data = saccade_digits.load(config, cache_dir=args.cache_dir)
    shape = data.config.input_shape
    train, test = data.train[: args.limit], data.test[: args.limit]
    x_test = time_first(data.spikes[test])
    y_train, y_test = data.labels[train], data.labels[test]
    print(data.summary())

    model = braille_style_net()
    fit(
        lambda x: snntorch_forward(model, x),
        model.parameters(),
        lambda i, _: time_first(data.spikes[train[i]]),
        y_train,
        args.epochs,
        5e-3,
        cosine=True,
    )
    with torch.no_grad():
        float_acc = accuracy(predict(snntorch_forward(model, x_test)), y_test)

    chip = QuantConfig(scale_rule="max") if args.bits == 8 else QuantConfig(scale_rule="max", dense_model="lif")
    calib = train[:128]
    ptq_model = ptq(model, time_first(data.spikes[calib]), data.labels[calib], chip)
    ptq_acc = accuracy(ptq_model.predict(x_test), y_test)
    print(ptq_model.report.format())

    qat = QATModel(model, shape, chip)  # trains the float model's own parameters in place
    fit(
        lambda x: qat(x)[0],
        qat.parameters(),
        lambda i, _: time_first(data.spikes[train[i]]),
        y_train,
        args.qat_epochs,
        1e-3,
    )
    frozen = qat.freeze()
    with torch.no_grad():
        qat_acc = accuracy(predict(qat.run(x_test).spikes[-1]), y_test)
    report = verify(qat, x_test[:, :64])  # every spike and membrane bit, every layer
    sim = Simulator(frozen.config.profile).run_batch(frozen.to_network(), frozen.simulator_inputs(x_test))
    sim_acc = accuracy(sim.spikes[frozen.layers[-1].name].sum(axis=1).argmax(axis=1), y_test)
    print(
        f"\nfloat {float_acc:.2f} %, PTQ {ptq_acc:.2f} %, QAT {qat_acc:.2f} %, simulator {sim_acc:.2f} % "
        f"({len(test)} test samples, {args.bits}-bit weights); QAT vs simulator: {report.summary()}"
    )
    print(place(frozen.to_network(), frozen.config.profile).format())

    nir_net = convert(
        export_snntorch(model, torch.zeros(shape)), ConversionConfig(scale_weights=True, integrator="forward")
    )
    pops = ", ".join(f"{p.name}: {p.neuron_model} {p.size}" for p in nir_net.net.populations)
    print(f"\nNIR route of the (QAT-trained) float model, converted with py-spinnaker2's defaults: {pops}")
    return {"float": float_acc, "ptq": ptq_acc, "qat": qat_acc, "sim": sim_acc, "identical": report.identical}


if __name__ == "__main__":
    main()
