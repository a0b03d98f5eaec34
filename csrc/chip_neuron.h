/*
 * s2sim C core: the neuron loop of quantization-aware training (s2sim/chip_neuron.py).
 *
 * One population's chip dynamics over every tick of a batch, given the synaptic sums of its feed-forward
 * projection (computed in torch, one matmul or conv for all ticks), and the surrogate-gradient backward through
 * time. The forward is the arithmetic of csrc/kernel.c for lif and curr_exp populations with the default
 * ChipProfile grouping (no flush-to-zero, t_refrac = 0, v_reset = 0), so its spikes and membranes are
 * bit-identical to the simulator's (tests/test_qat.py, tests/test_chip_neuron.py check it).
 *
 * Tensors are float32, C-contiguous, time-first [n_ticks][batch][n]. As in s2sim.h the caller allocates every
 * array, scratch included; nothing here allocates. The text between the CFFI markers goes to cffi's cdef
 * (csrc/ffibuild.py), so it holds no preprocessor lines but the constants.
 */
#ifndef S2SIM_CHIP_NEURON_H
#define S2SIM_CHIP_NEURON_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CFFI_BEGIN */
/* s2_qn_layer.flags: FMA: V*alpha + input rounded once; CURRENT_FMA: the same for I*decay + sum (curr_exp);
 * STRICT: spike if V > threshold (else >=); SUBTRACT: reset by subtracting the threshold (else to 0); LATE: the
 * sums of row t are the input of tick t + 1 (a hop's tick: the projection's sums of the spikes of tick t), so
 * tick 0 has none and the last row is never read (else row t is tick t's input). */
#define S2_QN_FMA 1
#define S2_QN_CURRENT_FMA 2
#define S2_QN_STRICT 4
#define S2_QN_SUBTRACT 8
#define S2_QN_LATE 16

/* One population. Per-neuron values [n] as uploaded to the chip. decay: the synaptic current decay of a curr_exp
 * population (exc_decay = inh_decay), NULL for lif. recurrent / recurrent_t: integer weights of a projection of
 * the population onto itself as [post][pre] and its transpose [pre][post] (both or neither NULL); the forward
 * reads the transpose (rows by spiking neuron), the backward the [post][pre] rows. scale and slope: the arctan
 * surrogate on the membrane in float units, dS/dV = (slope/2) / (1 + (pi/2 * slope * (V - threshold)/scale)^2)
 * / scale. */
typedef struct {
    int32_t n_ticks;
    int32_t batch;
    int32_t n;
    int32_t flags;
    const float *i_offset;
    const float *alpha;
    const float *threshold;
    const float *decay;
    const float *recurrent;
    const float *recurrent_t;
    float scale;
    float slope;
} s2_qn_layer;

/* Forward of samples [b_begin, b_end) (calls for disjoint ranges may run at once, on other threads). lif: syn
 * [T][B][n] feed-forward sums (integer-valued; -0.0 reads as +0.0); curr_exp: exc and inh, the excitatory sums and
 * the inhibitory magnitudes (syn unused). Writes spikes (0/1), v_pre (V before the threshold test), v_post (V after
 * the reset; NULL: not written), and for curr_exp i_net (I_exc - I_inh). state: 3*B*n floats, the per-sample
 * state (each call uses its samples' part); scratch: 4*n floats of the calling thread's own. */
void s2_qn_forward(const s2_qn_layer *layer, int32_t b_begin, int32_t b_end, const float *syn, const float *exc,
                   const float *inh, float *spikes, float *v_pre, float *v_post, float *i_net, float *state,
                   float *scratch);

/* Backward through time, samples [b_begin, b_end), for the gradients g_spk and g_vpost of spikes and V after the
 * reset (either NULL: zero), from the forward's v_pre, spikes and (curr_exp) i_net: g_syn [T][B][n], the gradient of
 * each row of syn (for curr_exp of the summed current I; 0 for a row never read); per (sample, neuron) [B][n]
 * g_alpha, g_threshold, g_i_offset and (curr_exp) g_decay, which the caller sums over samples. The reset is
 * detached, as in snnTorch. state: 2*B*n floats (per sample, as in the forward); scratch: 3*n floats of the
 * calling thread's own. */
void s2_qn_backward(const s2_qn_layer *layer, int32_t b_begin, int32_t b_end, const float *g_spk,
                    const float *g_vpost, const float *v_pre, const float *spikes, const float *i_net, float *g_syn,
                    float *g_alpha, float *g_decay, float *g_threshold, float *g_i_offset, float *state,
                    float *scratch);
/* CFFI_END */

#ifdef __cplusplus
}
#endif

#endif
