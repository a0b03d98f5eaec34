"""Published reference networks, built with the snn API exactly as their authors deployed them."""
from __future__ import annotations

from . import snn

#: NIR paper, single-LIF benchmark: input spike ticks and the published output spikes (Pedersen et al.,
#: Nature Communications 2024, the SpiNNaker2 run; docs/datapath.md R§7).
NIR_PAPER_INPUT_TICKS = (60, 220, 270, 310, 320, 350, 370, 400, 410, 430, 440, 450, 460, 470, 480, 490, 500, 510,
                         520, 530, 670, 680, 690, 700, 710, 720, 730, 740, 750, 760, 770, 780, 840, 850)
NIR_PAPER_SPIKES = (461, 511, 711, 761)
NIR_PAPER_TICKS = 1001


def nir_paper_lif() -> tuple[snn.Network, snn.Population, snn.Population]:
    """Input(1) -> Affine(1) -> LIF(tau 2.5 ms, threshold 0.1) as converted for the chip: dt 1e-4, FORWARD,
    zero reset, conn_delay 0, weight and threshold scaled by 102.02 (weight 102 after the integer cast).

    Returns
    -------
    (network, input population, LIF population); run for NIR_PAPER_TICKS ticks.
    """
    dt, tau, scale = 1e-4, 2.5e-3, 102.02
    k = dt / tau  # FORWARD integrator; the chip threshold is v_threshold * S with S = scale / (k * r), r = 1
    stim = snn.Population(1, "spike_list", {0: list(NIR_PAPER_INPUT_TICKS)}, name="input")
    lif = snn.Population(1, "lif_no_delay", {
        "threshold": 0.1 * scale / k,
        "alpha_decay": 1.0 - k,
        "i_offset": 0.0,
        "v_reset": 0.0,
        "reset": "reset_to_v_reset",
    }, name="lif", record=["spikes", "v"])
    proj = snn.Projection(stim, lif, [[0, 0, 1.0 * scale, 0]], name="affine")
    net = snn.Network("nir_paper_single_lif")
    net.add(stim, lif, proj)
    return net, stim, lif
