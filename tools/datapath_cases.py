"""Compute the worked cases quoted in docs/datapath.md, independently of s2sim's C kernel.

Only numpy and :mod:`fractions` are used: float32 arithmetic is numpy's (IEEE, round-to-nearest-even), and the
fused multiply-add is computed exactly with Fractions and rounded once to float32 (Python 3.11 has no math.fma).
A tiny single-neuron-per-population tick loop written here from docs/datapath.md reproduces the timing and
benchmark cases, so the document can be checked against something other than the code it specifies.

    python tools/datapath_cases.py            # print every case
    python tools/datapath_cases.py fma bench  # only some
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

F32_OVERFLOW = Fraction(2) ** 128 - Fraction(2) ** 103  # RNE rounds |x| >= this to inf


def hex32(x) -> str:
    return f"0x{int(np.float32(x).view(np.uint32)):08x}"


def show(x) -> str:
    """A float32 as repr-exact decimal plus its bit pattern."""
    x = np.float32(x)
    return f"{float(x)!r} ({hex32(x)})"


def _round_half_even(q: Fraction) -> int:
    n = q.numerator // q.denominator
    rest = q - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
        n += 1
    return n


def fraction_to_f32(x: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32 (ties to even), with subnormals and overflow to inf."""
    if x == 0:
        return np.float32(0.0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    if a >= F32_OVERFLOW:
        return np.float32(sign * np.inf)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    r = _round_half_even(a / ulp) * ulp
    return np.float32(sign * float(r))  # r is a float32 value, so float() is exact


def fraction_to_f64(x: Fraction) -> np.float64:
    return np.float64(float(x))  # int/int true division in CPython is correctly rounded


def fma(a, b, c, dtype=np.float32):
    """a*b + c with one rounding to ``dtype``."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    return fraction_to_f32(exact) if dtype is np.float32 else fraction_to_f64(exact)


def mul_add(a, b, c, dtype=np.float32):
    """a*b + c with two roundings (numpy arithmetic in ``dtype``)."""
    with np.errstate(over="ignore"):
        return dtype(dtype(dtype(a) * dtype(b)) + dtype(c))


# --------------------------------------------------------------------------------------------------------
# A minimal tick loop: one neuron per population, phases exactly as in docs/datapath.md.


@dataclass(frozen=True)
class Variant:
    fma: bool = True
    threshold_op: str = ">="
    precision: str = "float32"
    refractory_rule: str = "held_v_tested"  # or "no_spike"

    @property
    def dtype(self):
        return np.float32 if self.precision == "float32" else np.float64

    def mac(self, a, b, c):
        return fma(a, b, c, self.dtype) if self.fma else mul_add(a, b, c, self.dtype)

    def fires(self, v, thr) -> bool:
        return bool(v >= thr) if self.threshold_op == ">=" else bool(v > thr)

    def __str__(self) -> str:
        return f"fma={self.fma!s:5} op={self.threshold_op:2} {self.precision}"


@dataclass
class Neuron:
    """One neuron of model lif* (``curr_exp=False``) or lif_curr_exp* (True); params as float64 host values."""

    threshold: float = 1.0
    alpha_decay: float = 0.9
    i_offset: float = 0.0
    v_init: float = 0.0
    v_reset: float = 0.0
    reset: str = "reset_by_subtraction"
    curr_exp: bool = False
    exc_decay: float = 0.5
    inh_decay: float = 0.5
    t_refrac: int = 0
    slots: int = 8
    spikes_in: tuple = ()  # non-empty -> a spike_list source with these ticks

    def upload(self, dtype):
        """Host float64 -> float32 (RNE) once, then widened for float64 state."""

        def up(x):
            return dtype(np.float32(np.float64(x)))

        self.p = {
            k: up(getattr(self, k))
            for k in ("threshold", "alpha_decay", "i_offset", "v_init", "v_reset", "exc_decay", "inh_decay")
        }
        self.v = self.p["v_init"]
        self.i_exc = self.i_inh = dtype(0)
        self.refrac = 0
        self.ring = np.zeros((self.slots, 2), dtype=np.uint32)


def run(neurons: dict, synapses: list, ticks: int, var: Variant = Variant()) -> dict:
    """Run ``ticks`` ticks. synapses: (pre, post, weight int, delay). Returns per neuron spike ticks and trace."""
    dt = var.dtype
    for n in neurons.values():
        n.upload(dt)
        n.trace, n.out, n.pre = [], [], []
    fired_prev: set = set()
    for t in range(ticks):
        for pre, post, w, d in synapses:  # phase 1: deliver what tick t-1 emitted
            if pre in fired_prev and w != 0:
                tgt = neurons[post]
                tgt.ring[(t + d) % tgt.slots, 0 if w > 0 else 1] += abs(w)
        fired = {k for k, n in neurons.items() if t in n.spikes_in}  # a spike_list emits its input of tick t
        for k, n in neurons.items():  # phase 2: update
            if n.spikes_in:
                continue
            slot = t % n.slots
            e, i = dt(n.ring[slot, 0]), dt(n.ring[slot, 1])
            n.ring[slot] = 0
            resting = False
            if n.curr_exp:
                n.i_exc = var.mac(n.i_exc, n.p["exc_decay"], e)
                n.i_inh = var.mac(n.i_inh, n.p["inh_decay"], i)
                resting = n.refrac > 0
                inp = dt(dt(n.i_exc - n.i_inh) + n.p["i_offset"])
            else:
                inp = dt(dt(e - i) + n.p["i_offset"])
            if resting:  # count down and hold V; the threshold test below still runs unless "no_spike"
                n.refrac -= 1
            else:
                n.v = var.mac(n.v, n.p["alpha_decay"], inp)
            n.pre.append(n.v)
            if var.fires(n.v, n.p["threshold"]) and not (resting and var.refractory_rule == "no_spike"):
                fired.add(k)
                n.out.append(t)
                n.v = dt(n.v - n.p["threshold"]) if n.reset == "reset_by_subtraction" else n.p["v_reset"]
                n.refrac = n.t_refrac if n.curr_exp else 0
            n.trace.append(n.v)
        fired_prev = fired
    return {k: (n.out, n.trace, n.pre) for k, n in neurons.items()}


# --------------------------------------------------------------------------------------------------------
# The cases.


def case_threshold() -> None:
    print("## Case 1: V reaches the threshold exactly (threshold_op)")
    print(
        "spike_list 'in' spikes at tick 0 -> lif_no_delay 'n' (weight 1, delay 0); threshold 1.0, "
        "alpha_decay 0.9, reset_by_subtraction, 5 ticks"
    )
    for op in (">=", ">"):
        nets = {"in": Neuron(spikes_in=(0,)), "n": Neuron(threshold=1.0, alpha_decay=0.9, slots=1)}
        out, trace, _ = run(nets, [("in", "n", 1, 0)], 5, Variant(threshold_op=op))["n"]
        print(f"  op {op:2}: spikes {out}; v = " + ", ".join(show(v) for v in trace))


def case_fma(seed: int = 1, want: int = 3) -> None:
    print("## Case 2: fma(V, alpha, inp) vs V*alpha + inp in float32 (fused_multiply_add)")
    rng = np.random.default_rng(seed)
    print("(a) random float32 V in [-300, 300], alpha in [0.5, 1), inp in [-50, 50]:")
    found = 0
    tried = 0
    while found < want:
        tried += 1
        v = np.float32(rng.uniform(-300, 300))
        a = np.float32(rng.uniform(0.5, 1.0))
        c = np.float32(rng.uniform(-50, 50))
        f, m = fma(v, a, c), mul_add(v, a, c)
        if f.view(np.uint32) != m.view(np.uint32):
            found += 1
            print(f"  V={show(v)} alpha={show(a)} inp={show(c)}\n    fma -> {show(f)}   two roundings -> {show(m)}")
    print(f"  ({found} found in {tried} random draws)")
    print("(b) realistic: alpha_decay = float32(0.96), integer synaptic input, i_offset 0:")
    a = np.float32(0.96)
    hits = 0
    draws = 20000
    first = None
    for _ in range(draws):
        v = np.float32(rng.uniform(0, 255))
        c = np.float32(rng.integers(0, 128))
        f, m = fma(v, a, c), mul_add(v, a, c)
        if f.view(np.uint32) != m.view(np.uint32):
            hits += 1
            first = first or (v, c, f, m)
    v, c, f, m = first
    print(
        f"  {hits} of {draws} draws differ ({100 * hits / draws:.1f} %); first: V={show(v)} inp={show(c)}\n"
        f"    fma -> {show(f)}   two roundings -> {show(m)}"
    )
    print(
        "(c) one-tick board probe (lif_no_delay, no synapses, record v, huge threshold): v_init=V, "
        "alpha_decay=alpha, i_offset=inp;"
    )
    print("    tick-0 recorded v is fma(V, alpha, inp) with FMA, V*alpha+inp without:")
    v, a, c, f, m = _find_probe(rng)
    print(
        f"    v_init={show(v)} alpha_decay={show(a)} i_offset={show(c)}\n"
        f"    FMA -> v[0] = {show(f)}   no FMA -> v[0] = {show(m)}"
    )
    print(
        f"    as a spike probe: threshold = {show(max(f, m))} with '>=' spikes at tick 0 only "
        f"{'with' if f > m else 'without'} FMA"
    )
    w1, d, w2, f, m = _find_current_probe()
    print(
        "(d) synaptic-current probe (lif_curr_exp, alpha_decay 0 so V = I_exc exactly, huge threshold): weight "
        f"{w1} arrives at tick 1, weight {w2} at tick 2, exc_decay={show(d)}:\n"
        f"    FMA -> v[2] = {show(f)}   no FMA -> v[2] = {show(m)}"
    )


def _find_probe(rng):
    """V, alpha in decimal-friendly ranges where the two differ by one ulp; reproducible."""
    while True:
        v = np.float32(round(rng.uniform(1, 100), 3))
        a = np.float32(round(rng.uniform(0.8, 0.99), 3))
        c = np.float32(round(rng.uniform(-10, 10), 3))
        f, m = fma(v, a, c), mul_add(v, a, c)
        if f.view(np.uint32) != m.view(np.uint32):
            return v, a, c, f, m


def _find_current_probe():
    """Smallest integer weights (lif_curr_exp range) and a 3-decimal exc_decay where I*decay + w rounds twice."""
    for k in range(1, 1000):
        d = np.float32(k / 1000)
        for w1 in range(1, 16):
            for w2 in range(1, 16):
                f, m = fma(np.float32(w1), d, np.float32(w2)), mul_add(np.float32(w1), d, np.float32(w2))
                if f.view(np.uint32) != m.view(np.uint32):
                    return w1, d, w2, f, m
    raise RuntimeError("no probe found")


def round_weight(w: float, mode: str):
    if mode == "trunc":
        return np.trunc(w)
    if mode == "nearest_even":
        return np.rint(w)
    if mode == "nearest_away":
        return np.sign(w) * np.floor(abs(w) + 0.5)
    if mode == "floor":
        return np.floor(w)
    return "ConfigError" if w != np.round(w) else w


def case_rounding() -> None:
    print("## Case 3: non-integer weights under each weight_rounding mode")
    ws = (2.5, -2.5, 3.5, 3.7, -3.7, 0.5, -0.5, 127.5)
    modes = ("trunc", "nearest_even", "nearest_away", "floor", "exact")
    print("| w | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    for w in ws:
        cells = []
        for mode in modes:
            r = round_weight(w, mode)
            cells.append(r if isinstance(r, str) else f"{int(r)}")
        print(f"| {w} | " + " | ".join(cells) + " |")
    print("(127.5 -> 128 is then a LimitError for |w| <= 127 targets and for conv kernels; never wrapped.)")


def case_benchmark() -> None:
    print("## Case 4: NIR-paper single-LIF benchmark")
    alpha64 = 1.0 - 1e-4 / 2.5e-3
    thr64 = 255.05
    print(
        f"alpha = 1 - dt/tau in float64 = {alpha64!r}; float32 -> {show(np.float32(alpha64))}; "
        f"float32(0.96) = {show(np.float32(0.96))}"
    )
    print(f"  exact value of float32(0.96) = {Fraction(float(np.float32(0.96)))} = {float(np.float32(0.96)):.17g}")
    print(
        f"threshold 255.05 (float64 {thr64!r}) -> float32 {show(np.float32(thr64))} = {float(np.float32(thr64)):.17g}"
    )
    print(
        f"  v_threshold*S computed in float64: 0.1*102.02*25 = {0.1 * 102.02 * 25!r} -> float32 "
        f"{show(np.float32(0.1 * 102.02 * 25))}"
    )
    ticks = (
        60,
        220,
        270,
        310,
        320,
        350,
        370,
        400,
        410,
        430,
        440,
        450,
        460,
        470,
        480,
        490,
        500,
        510,
        520,
        530,
        670,
        680,
        690,
        700,
        710,
        720,
        730,
        740,
        750,
        760,
        770,
        780,
        840,
        850,
    )
    print("spike_list -> lif_no_delay, weight 102, delay 0, reset_to_v_reset (v_reset 0), i_offset 0, 1001 ticks")
    for var in (
        Variant(True, ">="),
        Variant(False, ">="),
        Variant(True, ">"),
        Variant(False, ">"),
        Variant(True, ">=", "float64"),
        Variant(False, ">", "float64"),
    ):
        nets = {
            "in": Neuron(spikes_in=ticks),
            "lif": Neuron(threshold=thr64, alpha_decay=0.96, reset="reset_to_v_reset", slots=1),
        }
        out, _, pre = run(nets, [("in", "lif", 102, 0)], 1001, var)["lif"]
        thr = var.dtype(np.float32(thr64))
        margin = min(abs(float(x) - float(thr)) for x in pre)
        print(f"  {var}: spikes {out}; closest pre-reset V to threshold: {margin:.4g}")
    print("  expected (published, chip convention T+1): 461, 511, 711, 761")


def case_delay() -> None:
    print("## Case 5: timing across hops and delays")
    nets = {
        "in": Neuron(spikes_in=(2,)),
        "a": Neuron(threshold=5.0, alpha_decay=0.5),  # lif, 8 slots
        "b": Neuron(threshold=3.0, alpha_decay=0.5),
    }
    res = run(nets, [("in", "a", 5, 3), ("a", "b", 3, 7)], 20)
    print("spike_list 'in' at tick 2 -> lif 'a' (w 5, delay 3, threshold 5) -> lif 'b' (w 3, delay 7, threshold 3)")
    for k in ("a", "b"):
        out, _, pre = res[k]
        nz = [t for t, v in enumerate(pre) if v != 0]
        print(f"  {k}: first tick with input {nz[0]}, spikes at {out}")
    print("  'in' 2 -> 'a' updated at 2+1+3 = 6 (slot 6), spikes at 6 -> 'b' updated at 6+1+7 = 14 (slot 14 mod 8 = 6)")
    nets = {
        "in": Neuron(spikes_in=(0,)),
        "h1": Neuron(threshold=1.0, slots=1),
        "h2": Neuron(threshold=1.0, slots=1),
        "h3": Neuron(threshold=1.0, slots=1),
    }
    res = run(nets, [("in", "h1", 1, 0), ("h1", "h2", 1, 0), ("h2", "h3", 1, 0)], 6)
    print(
        "chain of lif_no_delay (w 1, threshold 1): input at 0 -> spikes "
        + ", ".join(f"{k} {res[k][0]}" for k in ("h1", "h2", "h3"))
    )
    for rule in ("held_v_tested", "no_spike"):
        nets = {
            "in": Neuron(spikes_in=(0, 1)),
            "r": Neuron(threshold=1.0, alpha_decay=1.0, curr_exp=True, exc_decay=0.5, t_refrac=2, slots=1),
        }
        out, trace, _ = run(nets, [("in", "r", 2, 0)], 7, Variant(refractory_rule=rule))["r"]
        print(
            f"lif_curr_exp_no_delay, t_refrac 2, threshold 1, exc_decay 0.5, alpha 1, input w 2 at ticks 0 and 1, "
            f"refractory_rule {rule}: spikes {out}; v = {[float(v) for v in trace]}"
        )
    for rule in ("held_v_tested", "no_spike"):
        for op in (">=", ">"):
            nets = {
                "in": Neuron(spikes_in=(0,)),
                "r": Neuron(
                    threshold=1.0,
                    alpha_decay=1.0,
                    curr_exp=True,
                    exc_decay=0.0,
                    t_refrac=2,
                    slots=1,
                    reset="reset_to_v_reset",
                    v_reset=1.0,
                ),
            }
            out, _, _ = run(nets, [("in", "r", 2, 0)], 11, Variant(threshold_op=op, refractory_rule=rule))["r"]
            print(f"refractory probe (t_refrac 2, v_reset = threshold = 1, w 2 at tick 0), {rule}, {op}: spikes {out}")


def case_int_to_float() -> None:
    print("## Case 6: uint32 ring sum -> float32")
    for n in (2**24 - 1, 2**24, 2**24 + 1, 2**24 + 2, 2**24 + 3, 2**31 - 1):
        f = np.float32(np.uint32(n))
        print(f"  {n} -> {show(f)}  (error {int(f) - n:+d})")
    e, i = np.uint32(2**24 + 1), np.uint32(2**24)
    print(
        f"  E={int(e)}, I={int(i)}: (float)E - (float)I = {show(np.float32(e) - np.float32(i))} "
        f"although E - I = {int(e) - int(i)}"
    )
    big = np.float32(3e38)
    with np.errstate(over="ignore"):
        print(
            f"  float32 overflow: V=3e38, alpha_decay 2 -> {show(mul_add(big, np.float32(2), np.float32(0)))}; "
            f"inf >= threshold spikes; inf - threshold = inf; inf * 0 = nan (nan never spikes)"
        )
    sub = np.float32(1e-40)
    print(
        f"  subnormal probe value: v_init 1e-40 -> {show(sub)}; fma(v, 1, 0) keeps it: {show(fma(sub, 1, 0))}; "
        f"refractory probe v[4] = 0.75 -> {hex32(0.75)}"
    )


def conv_targets(yp, xp, k_h, k_w, stride_y, stride_x, pad_t, pad_l, oh, ow):
    """(ky, kx, oy, ox) of every kernel tap through which pooled cell (yp, xp) reaches an output neuron."""
    hits = []
    for ky in range(k_h):
        for kx in range(k_w):
            ny, nx = yp + pad_t - ky, xp + pad_l - kx
            if ny % stride_y or nx % stride_x:
                continue
            oy, ox = ny // stride_y, nx // stride_x
            if 0 <= oy < oh and 0 <= ox < ow:
                hits.append((ky, kx, oy, ox))
    return hits


def case_conv() -> None:
    print("## Case 7: conv geometry (where one input spike lands)")
    h, w, pool = 4, 6, 2
    k, pad = 2, 1
    ph, pw = h // pool, w // pool
    c, y, x = 0, 3, 1
    yp, xp = y // pool, x // pool
    print(
        f"input [C_in=1,H={h},W={w}], pool_x = pool_y = {pool} -> pooled {ph}x{pw}; kernel {k}x{k}, pad {pad} on "
        "all sides, C_out=1"
    )
    print(f"pre neuron (c={c},h={y},w={x}) = flat {c * h * w + y * w + x} -> pooled cell ({c},{yp},{xp})")
    for label, sy, sx in (
        ("stride_y 1, stride_x 2 (s2sim: stride_x steps the width axis)", 1, 2),
        ("axes swapped: stride 2 on the height axis", 2, 1),
    ):
        oh = (ph + 2 * pad - k) // sy + 1
        ow = (pw + 2 * pad - k) // sx + 1
        hits = conv_targets(yp, xp, k, k, sy, sx, pad, pad, oh, ow)
        print(
            f"  {label}: out {oh}x{ow}; "
            + "; ".join(f"W[0,0,{ky},{kx}] -> post (0,{oy},{ox}) = flat {oy * ow + ox}" for ky, kx, oy, ox in hits)
            + f"   ({len(hits)} synaptic events per spike)"
        )


def case_grouping() -> None:
    print("## Case 8: grouping of the input term (lif): ((float)E - (float)I) + i_offset")
    e, i, off = np.float32(1), np.float32(1), np.float32(1e-8)
    print(
        f"  E = I = 1, i_offset = {show(off)}: (E - I) + i_offset = {show((e - i) + off)}; "
        f"(E + i_offset) - I = {show((e + off) - i)}"
    )
    v, a, e, i, off = np.float32(1e8), np.float32(1), np.float32(5), np.float32(1), np.float32(0)
    print(
        f"  V = {show(v)} (ulp 8), alpha 1, E = 5, I = 1, i_offset 0: V*a + ((E - I) + i_offset) = "
        f"{show(mul_add(v, a, (e - i) + off))} (V + 4 is a tie, to even); ((V*a + E) - I) + i_offset = "
        f"{show(((mul_add(v, a, e)) - i) + off)} (V + 5 rounds up to V + 8, then V + 7 rounds to V + 8)"
    )


def ftz(x: Fraction) -> np.float32:
    """ARM flush-to-zero of an exact result: tiny before rounding (0 < |x| < 2**-126) gives 0, else RNE."""
    return np.float32(0.0) if 0 < abs(x) < Fraction(2) ** -126 else fraction_to_f32(x)


def case_subnormal() -> None:
    print("## Case 9: subnormals and flush-to-zero")
    sub = np.float32(1e-40)
    print(
        f"  v_init 1e-40 = {show(sub)}; V*1 + 0 keeps it ({show(fma(sub, 1, 0))}) with flush-to-zero off; with it "
        "on the subnormal operand reads as 0: 0"
    )
    v, a = np.float32(2.0**-100 * (1 - 2.0**-24)), np.float32(2.0**-26)
    exact = Fraction(float(v)) * Fraction(float(a))
    print(
        f"  V = {show(v)}, alpha = {show(a)}: exact product 2^-126 - 2^-150 (tiny) rounds to "
        f"{show(fraction_to_f32(exact))} = 2^-126 (a tie, to even); flush-to-zero judging tininess before rounding "
        f"(ARM) gives {show(ftz(exact))}, judging after rounding (x86 MXCSR.FTZ) would keep 2^-126"
    )


CASES = {
    "threshold": case_threshold,
    "fma": case_fma,
    "rounding": case_rounding,
    "bench": case_benchmark,
    "delay": case_delay,
    "int2float": case_int_to_float,
    "conv": case_conv,
    "grouping": case_grouping,
    "subnormal": case_subnormal,
}


def main(argv: list[str]) -> None:
    names = argv or list(CASES)
    for name in names:
        CASES[name]()
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
