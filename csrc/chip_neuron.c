/*
 * s2sim C core: the neuron loop of quantization-aware training (see chip_neuron.h).
 *
 * The forward repeats the float32 arithmetic of kernel.c's lif and curr_exp updates for the default grouping
 * (input_first): lif V = V*alpha + (syn + i_offset); curr_exp I_exc = I_exc*decay + E, I_inh = I_inh*decay + I,
 * V = V*alpha + ((I_exc - I_inh) + i_offset); each multiply-add fused (fmaf) or not as the flags say; spike if
 * V >= threshold (or >), then V - threshold or 0. Integer sums reach it as exact float32 values, so the order in
 * which they were added cannot matter. CMake compiles this file with -ffp-contract=off, like the kernel, so an
 * unfused V*alpha + input stays two roundings.
 */
#include "chip_neuron.h"

#include <math.h>
#include <string.h>

/* Both roundings computed and one selected: a select vectorises where a branch on the flag would not. */
static inline float mac(float a, float b, float c, int fused)
{
    const float once = fmaf(a, b, c), twice = a * b + c;
    return fused ? once : twice;
}

/* A synaptic sum as the chip's float of an integer sum: a matmul or conv of -0.0 terms gives -0.0 where the chip's
 * (float) of 0 is +0.0. */
static inline float chip_sum(float sum)
{
    return sum + 0.0f;
}

/* Threshold test and reset of a stepped membrane x: writes the spike flag, returns V after the reset. Selects, not
 * branches, on the flags (as in mac). */
static inline float fire(float x, float th, int strict, int subtract, float *restrict spk)
{
    const int above = x > th, reached = x >= th, s = strict ? above : reached;
    const float r = subtract ? x - th : 0.0f;
    *spk = s ? 1.0f : 0.0f;
    return s ? r : x;
}

/* The recurrent sums of one sample and tick added to its feed-forward sums: the integer weights of every neuron
 * that spiked in the previous tick, per target (lif: into the signed sums, in[0..n); curr_exp: into the excitatory
 * sums in[0..n) and the inhibitory magnitudes in[n..2n), the chip's two ring planes). Every partial sum is an
 * integer below 2^24 (s2sim.quantize.check_exact_sums), so float32 adds them exactly, in any order. */
static void recurrent_sums(const s2_qn_layer *L, const float *restrict prev, const float *restrict syn,
                           const float *restrict exc, const float *restrict inh, float *restrict in)
{
    const int32_t n = L->n;
    const int split = L->decay != NULL;
    memcpy(in, split ? exc : syn, sizeof(float) * (size_t)n);
    if (split)
        memcpy(in + n, inh, sizeof(float) * (size_t)n);
    for (int32_t j = 0; j < n; j++) {
        if (prev[j] == 0.0f)
            continue;
        const float *restrict row = L->recurrent_t + (int64_t)j * n;
        if (!split) {
            for (int32_t i = 0; i < n; i++)
                in[i] += row[i];
            continue;
        }
        for (int32_t i = 0; i < n; i++) {
            in[i] += row[i] > 0.0f ? row[i] : 0.0f;
            in[n + i] += row[i] < 0.0f ? -row[i] : 0.0f;
        }
    }
}

/* The outputs of one row (sample and tick); vpost and inet may be NULL (not recorded / lif). */
typedef struct {
    float *restrict spk;
    float *restrict vpre;
    float *restrict vpost;
    float *restrict inet;
} row_out;

/* One row of a lif population; inlined with keep_post a constant, so each variant's loop vectorises. */
static inline __attribute__((always_inline)) void lif_row(const s2_qn_layer *L, const float *restrict syn,
                                                          float *restrict v, row_out o, int keep_post)
{
    const int fused = (L->flags & S2_QN_FMA) != 0, strict = (L->flags & S2_QN_STRICT) != 0,
              subtract = (L->flags & S2_QN_SUBTRACT) != 0;
    const float *restrict alpha = L->alpha, *restrict off = L->i_offset, *restrict th = L->threshold;
    for (int32_t i = 0; i < L->n; i++) {
        const float x = mac(v[i], alpha[i], chip_sum(syn[i]) + off[i], fused);
        o.vpre[i] = x;
        v[i] = fire(x, th[i], strict, subtract, o.spk + i);
        if (keep_post)
            o.vpost[i] = v[i];
    }
}

static inline __attribute__((always_inline)) void curr_exp_row(const s2_qn_layer *L, const float *restrict exc,
                                                               const float *restrict inh, float *restrict v,
                                                               float *restrict ie, float *restrict ii, row_out o,
                                                               int keep_post)
{
    const int fused = (L->flags & S2_QN_FMA) != 0, fused_i = (L->flags & S2_QN_CURRENT_FMA) != 0,
              strict = (L->flags & S2_QN_STRICT) != 0, subtract = (L->flags & S2_QN_SUBTRACT) != 0;
    const float *restrict alpha = L->alpha, *restrict off = L->i_offset, *restrict th = L->threshold,
                *restrict decay = L->decay;
    for (int32_t i = 0; i < L->n; i++) {
        ie[i] = mac(ie[i], decay[i], chip_sum(exc[i]), fused_i);
        ii[i] = mac(ii[i], decay[i], chip_sum(inh[i]), fused_i);
        const float net = ie[i] - ii[i];
        const float x = mac(v[i], alpha[i], net + off[i], fused);
        o.inet[i] = net;
        o.vpre[i] = x;
        v[i] = fire(x, th[i], strict, subtract, o.spk + i);
        if (keep_post)
            o.vpost[i] = v[i];
    }
}

/* Offset of tick t's input row in syn / exc / inh (and of its gradient in g_syn); -1 when the tick has none.
 * S2_QN_LATE: the sums of row t arrive in tick t + 1 (the hop's tick), so tick 0 has none. */
static inline int64_t input_row(const s2_qn_layer *L, int32_t t, int64_t bn)
{
    if (!(L->flags & S2_QN_LATE))
        return t * bn;
    return t > 0 ? (t - 1) * bn : -1;
}

void s2_qn_forward(const s2_qn_layer *L, int32_t b_begin, int32_t b_end, const float *syn, const float *exc,
                   const float *inh, float *spikes, float *v_pre, float *v_post, float *i_net, float *state,
                   float *scratch)
{
    const int64_t n = L->n, bn = (int64_t)L->batch * n;
    const int curr = L->decay != NULL;
    float *v = state, *ie = state + bn, *ii = state + 2 * bn, *none = scratch, *rec_in = scratch + 2 * n;
    for (int k = 0; k < 3; k++)
        memset(state + k * bn + b_begin * n, 0, sizeof(float) * (size_t)((b_end - b_begin) * n));
    memset(none, 0, sizeof(float) * (size_t)(2 * n));
    for (int32_t t = 0; t < L->n_ticks; t++) {
        const int64_t row = input_row(L, t, bn);
        for (int32_t b = b_begin; b < b_end; b++) {
            const int64_t k = t * bn + b * n, s = b * n, r = row + b * n;
            const float *sy = none, *e = none, *h = none;
            if (row >= 0 && curr)
                e = exc + r, h = inh + r;
            else if (row >= 0)
                sy = syn + r;
            if (L->recurrent_t && t > 0) {
                recurrent_sums(L, spikes + k - bn, sy, e, h, rec_in);
                sy = e = rec_in;
                h = rec_in + n;
            }
            const row_out o = {spikes + k, v_pre + k, v_post ? v_post + k : NULL, curr ? i_net + k : NULL};
            if (curr && v_post)
                curr_exp_row(L, e, h, v + s, ie + s, ii + s, o, 1);
            else if (curr)
                curr_exp_row(L, e, h, v + s, ie + s, ii + s, o, 0);
            else if (v_post)
                lif_row(L, sy, v + s, o, 1);
            else
                lif_row(L, sy, v + s, o, 0);
        }
    }
}

/* grec[j] = sum_i g[i] * W[i][j]: the gradient reaching the spikes of the previous tick through the recurrent
 * projection (W [post][pre]). */
static void recurrent_grad(const s2_qn_layer *L, const float *restrict g, float *restrict grec)
{
    const int32_t n = L->n;
    memset(grec, 0, sizeof(float) * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        if (g[i] == 0.0f)
            continue;
        const float *restrict row = L->recurrent + (int64_t)i * n;
        for (int32_t j = 0; j < n; j++)
            grec[j] += g[i] * row[j];
    }
}

/* Per-(sample, neuron) state of the backward: dL/dV and dL/dI of the next tick, and the parameter gradients. */
typedef struct {
    float *restrict gv;
    float *restrict gi;
    float *restrict alpha;
    float *restrict decay;
    float *restrict threshold;
    float *restrict i_offset;
} grads;

/* One row (sample, tick t) of the backward: g_s is dL/dspike, g the row's slices of the gradients; inlined once
 * per kind (curr a constant), so each loop vectorises. V after the reset is recomputed from V before it (the same
 * float operation as the forward), which saves the forward storing it. */
static inline __attribute__((always_inline)) void backward_row(
    const s2_qn_layer *L, const float *restrict g_s, const float *restrict g_vpost, const float *restrict v_pre,
    const float *restrict spikes, const float *restrict i_net, float *restrict g_syn, grads g, int curr)
{
    const int subtract = (L->flags & S2_QN_SUBTRACT) != 0;
    const float inv_scale = 1.0f / L->scale, half_slope = L->slope / 2.0f,
                k = 1.5707963267948966f * L->slope * inv_scale;
    const float *restrict alpha = L->alpha, *restrict th = L->threshold, *restrict decay = L->decay;
    for (int32_t i = 0; i < L->n; i++) {
        const float g_next = g.gv[i], spk = spikes[i], u = (v_pre[i] - th[i]) * k;
        const float reset = subtract ? v_pre[i] - th[i] : 0.0f, v_post = spk != 0.0f ? reset : v_pre[i];
        /* V[t+1] = alpha * V_post[t] + input[t+1]; the reset is detached as in snnTorch */
        const float g_post = g_vpost[i] + alpha[i] * g_next;
        g.alpha[i] += g_next * v_post;
        const float g_sur = g_s[i] * (half_slope / (1.0f + u * u) * inv_scale);
        const float g_v = subtract ? g_sur + g_post : g_sur + g_post * (1.0f - spk);
        g.threshold[i] -= subtract ? g_sur + g_post * spk : g_sur;
        g.i_offset[i] += g_v;
        g.gv[i] = g_v;
        if (curr) {  /* I[t+1] = decay * I[t] + syn[t+1] */
            g.decay[i] += g.gi[i] * i_net[i];
            g.gi[i] = g_v + decay[i] * g.gi[i];
            g_syn[i] = g.gi[i];
        } else {
            g_syn[i] = g_v;
        }
    }
}

void s2_qn_backward(const s2_qn_layer *L, int32_t b_begin, int32_t b_end, const float *g_spk, const float *g_vpost,
                    const float *v_pre, const float *spikes, const float *i_net, float *g_syn, float *g_alpha,
                    float *g_decay, float *g_threshold, float *g_i_offset, float *state, float *scratch)
{
    const int64_t n = L->n, bn = (int64_t)L->batch * n, first = b_begin * n, count = (b_end - b_begin) * n;
    const int curr = L->decay != NULL;
    float *grec = scratch, *discard = scratch + n, *none = scratch + 2 * n;
    float *per_sample[] = {state, state + bn, g_alpha, g_threshold, g_i_offset, curr ? g_decay : NULL};
    for (size_t k = 0; k < sizeof per_sample / sizeof *per_sample; k++)
        if (per_sample[k])
            memset(per_sample[k] + first, 0, sizeof(float) * (size_t)count);
    memset(none, 0, sizeof(float) * (size_t)n);
    if (L->flags & S2_QN_LATE)  /* the last row's sums would arrive after the run */
        memset(g_syn + (int64_t)(L->n_ticks - 1) * bn + first, 0, sizeof(float) * (size_t)count);
    for (int32_t t = L->n_ticks - 1; t >= 0; t--) {
        const int64_t row = input_row(L, t, bn), next = t + 1 < L->n_ticks ? input_row(L, t + 1, bn) : -1;
        for (int32_t b = b_begin; b < b_end; b++) {
            const int64_t o = t * bn + b * n, s = b * n;
            const float *g_s = g_spk ? g_spk + o : none, *g_vp = g_vpost ? g_vpost + o : none;
            if (L->recurrent && next >= 0) {  /* the spikes of tick t reach tick t + 1's input */
                recurrent_grad(L, g_syn + next + s, grec);
                for (int64_t i = 0; i < n; i++)
                    grec[i] += g_s[i];
                g_s = grec;
            }
            const grads g = {state + s, state + bn + s, g_alpha + s, curr ? g_decay + s : NULL,
                             g_threshold + s, g_i_offset + s};
            float *g_in = row < 0 ? discard : g_syn + row + s;
            if (curr)
                backward_row(L, g_s, g_vp, v_pre + o, spikes + o, i_net + o, g_in, g, 1);
            else
                backward_row(L, g_s, g_vp, v_pre + o, spikes + o, NULL, g_in, g, 0);
        }
    }
}
