/*
 * s2sim C core: the tick loop of a SpiNNaker2 processing element, for a whole network at once.
 *
 * Phase order per tick (docs/datapath.md): (1) spikes emitted in the previous tick are delivered as integer
 * weights into uint32-style ring slots; (2) every population drains its slot for this tick, converts the sums
 * to float once, updates its membrane in float32 (or float64) and emits spikes. Nothing here allocates; every
 * buffer comes from the caller, and s2_validate() has checked every index before s2_run() trusts it.
 */
#include "s2sim.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define S2_HAVE_MXCSR 1
#endif

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ------------------------------------------------------------------------------------------------------------
 * Validation: everything s2_run indexes is checked here once, so the tick loop can stay free of checks.
 * ---------------------------------------------------------------------------------------------------------- */

#define S2_POP_ALL (S2_POP_FMA | S2_POP_CURRENT_FMA | S2_POP_THRESHOLD_GT | S2_POP_LEAK_FIRST | \
                    S2_POP_LEFT_TO_RIGHT | S2_POP_FTZ | S2_POP_REFRAC_NO_SPIKE)

static int validate_population(const s2_network *net, int32_t k, char *err, size_t errlen)
{
    const s2_population *p = &net->pops[k];
    if (p->n < 1)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: size %d < 1", k, p->n);
    if (p->kind < S2_KIND_INPUT || p->kind > S2_KIND_CURR_EXP)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: unknown kind %d", k, p->kind);
    if (p->state_offset < 0 || p->state_offset + p->n > net->n_neurons)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: state range [%lld, %lld) outside %lld neurons", k,
                    (long long)p->state_offset, (long long)(p->state_offset + p->n), (long long)net->n_neurons);
    if (p->kind == S2_KIND_INPUT)
        return S2_OK;
    if (p->reset != S2_RESET_SUBTRACT && p->reset != S2_RESET_TO_V_RESET)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: unknown reset %d", k, p->reset);
    if (p->ring_slots != 1 && p->ring_slots != 8)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: ring_slots %d is not 1 or 8", k, p->ring_slots);
    if (p->flags & ~S2_POP_ALL)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: unknown flags 0x%x", k, p->flags);
    if ((p->flags & S2_POP_LEAK_FIRST) && (p->flags & S2_POP_LEFT_TO_RIGHT))
        return fail(err, errlen, S2_ERR_INVALID, "population %d: two input groupings at once", k);
    if ((p->flags & S2_POP_FTZ) && (net->flags & S2_FLAG_FLOAT64))
        return fail(err, errlen, S2_ERR_INVALID, "population %d: flush-to-zero needs float32 state", k);
    /* two planes where the update needs exc and inh apart: decaying currents, or the left-to-right grouping */
    const int32_t planes = (p->kind == S2_KIND_CURR_EXP || (p->flags & S2_POP_LEFT_TO_RIGHT)) ? 2 : 1;
    if (p->ring_planes != planes)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: ring_planes %d, its kind and flags need %d", k,
                    p->ring_planes, planes);
    if (p->ring_offset < 0 || p->ring_offset + (int64_t)p->ring_slots * p->ring_planes * p->n > net->n_ring)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: ring range outside %lld words", k,
                    (long long)net->n_ring);
    if (!p->threshold || !p->alpha_decay || !p->i_offset || !p->v_reset || !p->v_init)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: a parameter array is NULL", k);
    if (p->uniform_params) {
        const float *arrays[5] = {p->threshold, p->alpha_decay, p->v_reset, p->exc_decay, p->inh_decay};
        for (int a = 0; a < 5; a++)
            for (int32_t i = 1; arrays[a] && i < p->n; i++)
                if (memcmp(&arrays[a][i], &arrays[a][0], sizeof(float)))
                    return fail(err, errlen, S2_ERR_INVALID, "population %d: uniform_params set but parameter %d "
                                "differs at neuron %d", k, a, i);
    }
    if (p->kind == S2_KIND_CURR_EXP) {
        if (!p->exc_decay || !p->inh_decay || !p->t_refrac)
            return fail(err, errlen, S2_ERR_INVALID, "population %d: a curr_exp parameter array is NULL", k);
        if (p->curr_offset < 0 || p->curr_offset + p->n > net->n_curr)
            return fail(err, errlen, S2_ERR_INVALID, "population %d: current range outside %lld", k,
                        (long long)net->n_curr);
        for (int32_t i = 0; i < p->n; i++)
            if (p->t_refrac[i] < 0)
                return fail(err, errlen, S2_ERR_INVALID, "population %d neuron %d: t_refrac %d < 0", k, i,
                            p->t_refrac[i]);
    }
    return S2_OK;
}

/* Populations must own disjoint slices of the workspace: two populations sharing state, ring or current words
 * would corrupt each other without any index ever leaving its array. The lowering lays them out in network
 * order, so each range must start at or after the end of the previous population's range. */
static int validate_layout(const s2_network *net, char *err, size_t errlen)
{
    int64_t state_end = 0, ring_end = 0, curr_end = 0;
    for (int32_t k = 0; k < net->n_pops; k++) {
        const s2_population *p = &net->pops[k];
        if (p->state_offset < state_end)
            return fail(err, errlen, S2_ERR_INVALID, "population %d: state range starts at %lld, inside the "
                        "previous population's range (ends at %lld)", k, (long long)p->state_offset,
                        (long long)state_end);
        state_end = p->state_offset + p->n;
        if (p->kind == S2_KIND_INPUT)
            continue;
        if (p->ring_offset < ring_end)
            return fail(err, errlen, S2_ERR_INVALID, "population %d: ring range starts at %lld, inside the "
                        "previous population's range (ends at %lld)", k, (long long)p->ring_offset,
                        (long long)ring_end);
        ring_end = p->ring_offset + (int64_t)p->ring_slots * p->ring_planes * p->n;
        if (p->kind == S2_KIND_CURR_EXP) {
            if (p->curr_offset < curr_end)
                return fail(err, errlen, S2_ERR_INVALID, "population %d: current range starts at %lld, inside the "
                            "previous population's range (ends at %lld)", k, (long long)p->curr_offset,
                            (long long)curr_end);
            curr_end = p->curr_offset + p->n;
        }
    }
    return S2_OK;
}

static int validate_sparse(const s2_projection *q, const s2_population *post, int32_t k, char *err, size_t errlen)
{
    if (!q->row_ptr || (q->row_ptr[q->n_pre] > 0 && (!q->target || !q->delay || !q->weight)))
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: sparse arrays are NULL", k);
    if (q->row_ptr[0] != 0)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: row_ptr[0] = %lld, not 0", k,
                    (long long)q->row_ptr[0]);
    for (int32_t i = 0; i < q->n_pre; i++)
        if (q->row_ptr[i + 1] < q->row_ptr[i])
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: row_ptr decreases at row %d", k, i);
    for (int64_t s = 0; s < q->row_ptr[q->n_pre]; s++) {
        if (q->target[s] < 0 || q->target[s] >= post->n)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d synapse %lld: target %d outside 0..%d", k,
                        (long long)s, q->target[s], post->n - 1);
        if (q->delay[s] >= post->ring_slots)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d synapse %lld: delay %d >= %d ring slots", k,
                        (long long)s, q->delay[s], post->ring_slots);
        if (q->weight[s] < -128 || q->weight[s] > 127)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d synapse %lld: weight %d outside -128..127", k,
                        (long long)s, q->weight[s]);
    }
    return S2_OK;
}

static int validate_conv(const s2_projection *q, const s2_population *pre, const s2_population *post, int32_t k,
                         char *err, size_t errlen)
{
    if (!q->pool_pos || !q->kernel)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: conv arrays are NULL", k);
    if (q->c_in < 1 || q->ph < 1 || q->pw < 1 || q->c_out < 1 || q->oh < 1 || q->ow < 1 || q->k_h < 1 ||
        q->k_w < 1 || q->stride_x < 1 || q->stride_y < 1 || q->pad_top < 0 || q->pad_left < 0)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: conv geometry has a non-positive size", k);
    if ((int64_t)q->c_out * q->oh * q->ow != post->n)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: c_out*oh*ow = %lld != post size %d", k,
                    (long long)q->c_out * q->oh * q->ow, post->n);
    for (int32_t i = 0; i < pre->n; i++) {
        const int32_t *pos = q->pool_pos + 3 * (int64_t)i;
        if (pos[0] < 0 || pos[0] >= q->c_in || pos[1] < 0 || pos[1] >= q->ph || pos[2] < 0 || pos[2] >= q->pw)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: pre neuron %d maps to pooled cell (%d, %d, %d) "
                        "outside %d x %d x %d", k, i, pos[0], pos[1], pos[2], q->c_in, q->ph, q->pw);
    }
    return S2_OK;
}

static int validate_projection(const s2_network *net, int32_t k, char *err, size_t errlen)
{
    const s2_projection *q = &net->projs[k];
    if (q->pre < 0 || q->pre >= net->n_pops || q->post < 0 || q->post >= net->n_pops)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: population index out of range", k);
    const s2_population *pre = &net->pops[q->pre], *post = &net->pops[q->post];
    if (post->kind == S2_KIND_INPUT)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: targets an input population", k);
    if (q->n_pre != pre->n)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: n_pre %d != pre size %d", k, q->n_pre, pre->n);
    switch (q->kind) {
    case S2_PROJ_SPARSE:
        return validate_sparse(q, post, k, err, errlen);
    case S2_PROJ_DENSE:
        if (!q->dense || !q->row_nnz)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: dense arrays are NULL", k);
        if (q->dense_delay < 0 || q->dense_delay >= post->ring_slots)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: delay %d >= %d ring slots", k, q->dense_delay,
                        post->ring_slots);
        return S2_OK;
    case S2_PROJ_CONV:
        return validate_conv(q, pre, post, k, err, errlen);
    default:
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: unknown kind %d", k, q->kind);
    }
}

int s2_validate(s2_network *net, char *err, size_t errlen)
{
    if (!net || (net->n_pops > 0 && !net->pops) || (net->n_projs > 0 && !net->projs))
        return fail(err, errlen, S2_ERR_INVALID, "network: NULL arrays");
    if (net->n_pops < 1 || net->n_projs < 0 || net->n_neurons < 1 || net->n_ring < 0 || net->n_curr < 0)
        return fail(err, errlen, S2_ERR_INVALID, "network: empty or negative sizes");
    if (net->flags & ~S2_FLAG_FLOAT64)
        return fail(err, errlen, S2_ERR_INVALID, "network: unknown flags 0x%x", net->flags);
    net->validated = 0;
    for (int32_t k = 0; k < net->n_pops; k++) {
        int rc = validate_population(net, k, err, errlen);
        if (rc)
            return rc;
    }
    int rc_layout = validate_layout(net, err, errlen);
    if (rc_layout)
        return rc_layout;
    for (int32_t k = 0; k < net->n_projs; k++) {
        int rc = validate_projection(net, k, err, errlen);
        if (rc)
            return rc;
    }
    net->validated = S2_VALIDATED;
    return S2_OK;
}

/* ------------------------------------------------------------------------------------------------------------
 * Phase 1: delivery. The ring of a population is [slot][plane][neuron]. curr_exp populations have the chip's two
 * planes: a weight's sign picks exc or inh and its magnitude is added, as the synapse word carries a magnitude and
 * a type bit. lif populations have one signed plane (see add_row for why that is the same arithmetic).
 * ---------------------------------------------------------------------------------------------------------- */

static inline int32_t *ring_slot(const s2_workspace *ws, const s2_population *p, int32_t tick)
{
    return ws->ring + p->ring_offset + (int64_t)(tick & (p->ring_slots - 1)) * p->ring_planes * p->n;
}

/* Marks which ring slots of a population received input, so the update can skip reading empty slots. */
static inline void mark_dirty(const s2_workspace *ws, int32_t post, const s2_population *p, int32_t tick)
{
    ws->dirty[(int64_t)post * 8 + (tick & (p->ring_slots - 1))] = 1;
}

/* Add one signed int8 row into the exc and inh planes; branch-free so it vectorises. */
static inline void add_row_split(int32_t *restrict exc, int32_t *restrict inh, const int8_t *restrict w, int32_t n)
{
    for (int32_t j = 0; j < n; j++) {
        int32_t x = w[j];
        exc[j] += x > 0 ? x : 0;
        inh[j] += x < 0 ? -x : 0;
    }
}

static inline void add_row_signed(int32_t *restrict acc, const int8_t *restrict w, int32_t n)
{
    for (int32_t j = 0; j < n; j++)
        acc[j] += w[j];
}

/* A slot holds one signed plane (lif: lowering bounds every |sum| by 2^24, where (float)E - (float)I equals
 * (float)(E - I) exactly) or separate exc and inh planes (curr_exp: the two currents decay separately; lif
 * under the left-to-right grouping, which adds E and subtracts I in separate roundings).
 * n is the plane stride, len the row length. */
static inline void add_row(int32_t *slot, int32_t planes, int32_t n, const int8_t *w, int32_t len)
{
    if (planes == 1)
        add_row_signed(slot, w, len);
    else
        add_row_split(slot, slot + n, w, len);
}

static int64_t deliver_sparse(const s2_projection *q, const s2_population *post, const s2_workspace *ws,
                              const int32_t *spikes, int32_t n_spikes, int32_t tick)
{
    int64_t events = 0;
    const int32_t n = post->n;
    int32_t *slot[8]; /* by delay: the slot a synapse of that delay feeds this tick */
    for (int32_t d = 0; d < post->ring_slots; d++)
        slot[d] = ring_slot(ws, post, tick + d);
    uint32_t used = 0; /* delays seen, to mark their slots once at the end */
    for (int32_t s = 0; s < n_spikes; s++) {
        const int32_t i = spikes[s];
        const int64_t lo = q->row_ptr[i], hi = q->row_ptr[i + 1];
        if (post->ring_planes == 1) {
            for (int64_t k = lo; k < hi; k++) {
                slot[q->delay[k]][q->target[k]] += q->weight[k];
                used |= 1u << q->delay[k];
            }
        } else {
            for (int64_t k = lo; k < hi; k++) {
                const int32_t w = q->weight[k];
                slot[q->delay[k]][(w < 0 ? n : 0) + q->target[k]] += w < 0 ? -w : w;
                used |= 1u << q->delay[k];
            }
        }
        events += hi - lo;
    }
    for (int32_t d = 0; d < post->ring_slots; d++)
        if (used & (1u << d))
            mark_dirty(ws, q->post, post, tick + d);
    return events;
}

static int64_t deliver_dense(const s2_projection *q, const s2_population *post, const s2_workspace *ws,
                             const int32_t *spikes, int32_t n_spikes, int32_t tick)
{
    int64_t events = 0;
    const int32_t n = post->n;
    int32_t *exc = ring_slot(ws, post, tick + q->dense_delay);
    mark_dirty(ws, q->post, post, tick + q->dense_delay);
    for (int32_t s = 0; s < n_spikes; s++) {
        const int32_t i = spikes[s];
        add_row(exc, post->ring_planes, n, q->dense + (int64_t)i * n, n);
        events += q->row_nnz[i];
    }
    return events;
}

/* The kernel rows ky that connect input row y to an output row: y = oy * stride - pad + ky with 0 <= oy < size,
 * 0 <= ky < k. They form an arithmetic series ky = *first, *first + stride, ... <= *last, with oy falling by one
 * per step from *o_first; computing it once per spike keeps divisions out of the tap loop. */
static inline int32_t tap_series(int32_t y, int32_t pad, int32_t k, int32_t stride, int32_t size, int32_t *first,
                                 int32_t *o_first)
{
    const int32_t num = y + pad;
    int32_t lo = num - (size - 1) * stride;
    if (lo < 0)
        lo = 0;
    const int32_t hi = num < k - 1 ? num : k - 1;
    if (lo > hi)
        return -1;
    if (stride == 1) {  /* the common case, without the two divisions */
        *first = lo;
        *o_first = num - lo;
        return hi;
    }
    *first = lo + (num - lo) % stride;
    *o_first = (num - *first) / stride;
    return hi;
}

static int64_t deliver_conv(const s2_projection *q, const s2_population *post, const s2_workspace *ws,
                            const int32_t *spikes, int32_t n_spikes, int32_t tick)
{
    int64_t events = 0;
    const int32_t n = post->n, co = q->c_out;
    int32_t *slot = ring_slot(ws, post, tick);
    mark_dirty(ws, q->post, post, tick);
    for (int32_t s = 0; s < n_spikes; s++) {
        const int32_t *pos = q->pool_pos + 3 * (int64_t)spikes[s];
        const int32_t c = pos[0], y = pos[1], x = pos[2];
        int32_t ky0 = 0, oy0 = 0, kx0 = 0, ox0 = 0;
        const int32_t ky1 = tap_series(y, q->pad_top, q->k_h, q->stride_y, q->oh, &ky0, &oy0);
        const int32_t kx1 = tap_series(x, q->pad_left, q->k_w, q->stride_x, q->ow, &kx0, &ox0);
        if (ky1 < 0 || kx1 < 0)
            continue;
        const int8_t *kc = q->kernel + (int64_t)c * q->k_h * q->k_w * co;
        for (int32_t ky = ky0, oy = oy0; ky <= ky1; ky += q->stride_y, oy--) {
            /* kernel columns are stored reversed, so tap kx sits at column k_w - 1 - kx: as kx falls, output
             * and kernel addresses both rise. With stride_x 1 the taps of one kernel row are then one
             * contiguous add of (taps * c_out) values instead of one short add per tap. */
            const int8_t *krow = kc + (int64_t)ky * q->k_w * co;
            int32_t *orow = slot + (int64_t)oy * q->ow * co;
            if (q->stride_x == 1) {
                const int32_t taps = kx1 - kx0 + 1;
                add_row(orow + (int64_t)(ox0 - (taps - 1)) * co, post->ring_planes, n,
                        krow + (int64_t)(q->k_w - 1 - kx1) * co, taps * co);
                events += (int64_t)taps * co;
                continue;
            }
            for (int32_t kx = kx0, ox = ox0; kx <= kx1; kx += q->stride_x, ox--) {
                add_row(orow + (int64_t)ox * co, post->ring_planes, n, krow + (int64_t)(q->k_w - 1 - kx) * co, co);
                events += co;
            }
        }
    }
    return events;
}

static void deliver_all(const s2_network *net, const s2_workspace *ws, const s2_pop_io *io, int64_t b,
                        int32_t n_ticks, int32_t tick)
{
    for (int32_t k = 0; k < net->n_projs; k++) {
        const s2_projection *q = &net->projs[k];
        const s2_population *pre = &net->pops[q->pre], *post = &net->pops[q->post];
        const int32_t *spikes = ws->spikes_prev + pre->state_offset;
        const int32_t n_spikes = ws->n_prev[q->pre];
        if (!n_spikes)
            continue;
        int64_t events;
        if (q->kind == S2_PROJ_SPARSE)
            events = deliver_sparse(q, post, ws, spikes, n_spikes, tick);
        else if (q->kind == S2_PROJ_DENSE)
            events = deliver_dense(q, post, ws, spikes, n_spikes, tick);
        else
            events = deliver_conv(q, post, ws, spikes, n_spikes, tick);
        if (io[q->post].rec_counts)
            io[q->post].rec_counts[(b * n_ticks + tick) * 2 + 1] += events;
    }
}

/* ------------------------------------------------------------------------------------------------------------
 * Phase 2: neuron update. One body per dynamics, instantiated for float and double state. The common
 * arithmetic is specialised on five switches (below) so each instance is a straight vectorisable loop; the
 * rare variants run one generic instance that branches at run time.
 * ---------------------------------------------------------------------------------------------------------- */

/* Switches of one update loop instance, packed into a small code so one switch dispatches: fused multiply-add,
 * strict threshold, uniform parameters (threshold, decays, v_reset equal for all neurons: the loop then reads one
 * value instead of streaming an array), whether the ring slot holds any input, and whether i_offset joins after
 * the leak ((V*alpha + syn) + i_offset) instead of before (V*alpha + (syn + i_offset)). */
#define S2_SW_FUSED 1
#define S2_SW_STRICT 2
#define S2_SW_UNIFORM 4
#define S2_SW_INPUT 8
#define S2_SW_LEAK_FIRST 16
#define S2_SW_CASES16(F, B) F(B + 0) F(B + 1) F(B + 2) F(B + 3) F(B + 4) F(B + 5) F(B + 6) F(B + 7) F(B + 8) \
    F(B + 9) F(B + 10) F(B + 11) F(B + 12) F(B + 13) F(B + 14) F(B + 15)
#define S2_SW_CASES(F) S2_SW_CASES16(F, 0) S2_SW_CASES16(F, 16)
/* The rare variants: the currents rounded the other way from V, the left-to-right grouping ((V*alpha + E) - I)
 * + i_offset, flush-to-zero, and no spike while refractory. */
#define S2_SW_CURRENT_FLIP 32
#define S2_SW_LEFT_TO_RIGHT 64
#define S2_SW_FTZ 128
#define S2_SW_REFRAC_NO_SPIKE 256
#define S2_SW_RARE (S2_SW_CURRENT_FLIP | S2_SW_LEFT_TO_RIGHT | S2_SW_FTZ | S2_SW_REFRAC_NO_SPIKE)

/* The ARM FPU's flush-to-zero mode (FPSCR.FZ) in software, so x86's own (which detects tininess after rounding)
 * is never involved: a subnormal operand reads as zero of its sign, and a result whose exact value is tiny
 * (0 < |x| < FLT_MIN, before rounding) becomes zero of its sign. A tiny exact sum is representable, so sums can
 * be flushed after rounding; products are exact in double, and a fused product's exact sign and size come from
 * the double sum plus its TwoSum error. float32 state only (s2_validate refuses FTZ with double state, whose
 * versions below are the plain operations). */
static inline float daz_f32(float x)
{
    return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

static inline float add_ftz_f32(float a, float b)
{
    return daz_f32(daz_f32(a) + daz_f32(b));
}

static inline float mul_ftz_f32(float a, float b)
{
    const double p = (double)daz_f32(a) * (double)daz_f32(b);
    return fabs(p) < FLT_MIN ? (float)copysign(0.0, p) : (float)p;
}

static inline float fma_ftz_f32(float a, float b, float c)
{
    a = daz_f32(a), b = daz_f32(b), c = daz_f32(c);
    const double p = (double)a * (double)b, s = p + c, bv = s - p, e = (p - (s - bv)) + (c - bv);
    const int tiny = fabs(s) < FLT_MIN || (fabs(s) == FLT_MIN && e != 0 && (e < 0) != (s < 0));
    return tiny ? (float)copysign(0.0, s) : fmaf(a, b, c);
}

static inline double daz_f64(double x) { return x; }
static inline double add_ftz_f64(double a, double b) { return a + b; }
static inline double mul_ftz_f64(double a, double b) { return a * b; }
static inline double fma_ftz_f64(double a, double b, double c) { return fma(a, b, c); }

#define S2_DEFINE_UPDATES(T, SUF, FMA_FN)                                                                        \
    static inline __attribute__((always_inline)) T add_##SUF(T a, T b, int sw)                                   \
    {                                                                                                            \
        return (sw & S2_SW_FTZ) ? add_ftz_##SUF(a, b) : a + b;                                                   \
    }                                                                                                            \
                                                                                                                 \
    static inline __attribute__((always_inline)) T mac_##SUF(T a, T b, T c, int fused, int sw)                   \
    {                                                                                                            \
        if (sw & S2_SW_FTZ)                                                                                      \
            return fused ? fma_ftz_##SUF(a, b, c) : add_ftz_##SUF(mul_ftz_##SUF(a, b), c);                       \
        return fused ? FMA_FN(a, b, c) : a * b + c;                                                              \
    }                                                                                                            \
                                                                                                                 \
    /* Leak and input: V*alpha joined with this tick's excitatory input e, inhibitory input inh (lif with one    \
     * signed plane: e = E - I, inh = 0, the same under the 2^24 bound, see add_row) and i_offset. */            \
    static inline __attribute__((always_inline)) T step_##SUF(T v, T a, T e, T inh, T off, int sw)               \
    {                                                                                                            \
        const int fused = sw & S2_SW_FUSED;                                                                      \
        if (sw & S2_SW_LEFT_TO_RIGHT)                                                                            \
            return add_##SUF(add_##SUF(mac_##SUF(v, a, e, fused, sw), -inh, sw), off, sw);                       \
        const T syn = add_##SUF(e, -inh, sw);                                                                    \
        if (sw & S2_SW_LEAK_FIRST)                                                                               \
            return add_##SUF(mac_##SUF(v, a, syn, fused, sw), off, sw);                                          \
        return mac_##SUF(v, a, add_##SUF(syn, off, sw), fused, sw);                                              \
    }                                                                                                            \
                                                                                                                 \
    /* Threshold test (when allowed) and reset of a stepped or held V. Returns the spike flag. */                \
    static inline __attribute__((always_inline)) int32_t fire_##SUF(const s2_population *p, int32_t j, T *v,     \
                                                                    int32_t allowed, int sw)                     \
    {                                                                                                            \
        const T th = (T)p->threshold[j];                                                                         \
        const T x = (sw & S2_SW_FTZ) ? daz_##SUF(*v) : *v, t = (sw & S2_SW_FTZ) ? daz_##SUF(th) : th;            \
        const int32_t s = allowed & ((sw & S2_SW_STRICT) ? (x > t) : (x >= t));                                  \
        const T r = p->reset == S2_RESET_SUBTRACT ? add_##SUF(*v, -th, sw) : (T)p->v_reset[j];                   \
        *v = s ? r : *v;                                                                                         \
        return s;                                                                                                \
    }                                                                                                            \
                                                                                                                 \
    /* A slot without input reads as zero sums: (0 - 0) + i_offset, the same arithmetic without the loads. */    \
    static inline __attribute__((always_inline)) T ring_in_##SUF(const int32_t *plane, int32_t i, int sw)        \
    {                                                                                                            \
        return (sw & S2_SW_INPUT) ? (T)plane[i] : (T)0;                                                          \
    }                                                                                                            \
                                                                                                                 \
    static inline __attribute__((always_inline)) void lif_##SUF(const s2_population *p, T *restrict v,           \
                                                                int32_t *restrict exc, uint8_t *restrict flag,   \
                                                                int sw)                                          \
    {                                                                                                            \
        const int split = sw & S2_SW_LEFT_TO_RIGHT; /* exc and inh planes apart (else one signed plane) */       \
        const int32_t *restrict inh = exc + p->n;                                                                \
        for (int32_t i = 0; i < p->n; i++) {                                                                     \
            const int32_t j = (sw & S2_SW_UNIFORM) ? 0 : i;                                                      \
            T x = step_##SUF(v[i], (T)p->alpha_decay[j], ring_in_##SUF(exc, i, sw),                              \
                             split ? ring_in_##SUF(inh, i, sw) : (T)0, (T)p->i_offset[i], sw);                   \
            flag[i] = (uint8_t)fire_##SUF(p, j, &x, 1, sw);                                                      \
            v[i] = x;                                                                                            \
        }                                                                                                        \
        if (sw & S2_SW_INPUT)                                                                                    \
            memset(exc, 0, sizeof(int32_t) * (split ? 2 : 1) * (size_t)p->n);                                    \
    }                                                                                                            \
                                                                                                                 \
    /* While refrac > 0 the update only counts down and holds V; the threshold test still runs on the held V     \
     * unless the rule is REFRAC_NO_SPIKE. The currents integrate either way (their update comes first). */      \
    static inline __attribute__((always_inline)) void curr_exp_##SUF(                                            \
        const s2_population *p, T *restrict v, T *restrict ie, T *restrict ii, int32_t *restrict refrac,         \
        int32_t *restrict exc, uint8_t *restrict flag, int sw)                                                   \
    {                                                                                                            \
        int32_t *restrict inh = exc + p->n;                                                                      \
        const int fused_i = ((sw & S2_SW_FUSED) != 0) ^ ((sw & S2_SW_CURRENT_FLIP) != 0);                        \
        for (int32_t i = 0; i < p->n; i++) {                                                                     \
            const int32_t j = (sw & S2_SW_UNIFORM) ? 0 : i;                                                      \
            ie[i] = mac_##SUF(ie[i], (T)p->exc_decay[j], ring_in_##SUF(exc, i, sw), fused_i, sw);                \
            ii[i] = mac_##SUF(ii[i], (T)p->inh_decay[j], ring_in_##SUF(inh, i, sw), fused_i, sw);                \
            const int32_t ref = refrac[i] > 0;                                                                   \
            const T stepped = step_##SUF(v[i], (T)p->alpha_decay[j], ie[i], ii[i], (T)p->i_offset[i], sw);       \
            T x = ref ? v[i] : stepped;                                                                          \
            const int32_t s = fire_##SUF(p, j, &x, !(ref && (sw & S2_SW_REFRAC_NO_SPIKE)), sw);                  \
            v[i] = x;                                                                                            \
            flag[i] = (uint8_t)s;                                                                                \
            refrac[i] = s ? p->t_refrac[i] : (ref ? refrac[i] - 1 : 0);                                          \
        }                                                                                                        \
        if (sw & S2_SW_INPUT)                                                                                    \
            memset(exc, 0, sizeof(int32_t) * 2 * (size_t)p->n);                                                  \
    }                                                                                                            \
                                                                                                                 \
    /* The rare variants: one instance whose switches are run-time values. */                                    \
    static __attribute__((noinline)) void update_rare_##SUF(const s2_population *p, const s2_workspace *ws,      \
                                                            T *v, int32_t *exc, uint8_t *flag, int sw)           \
    {                                                                                                            \
        if (p->kind == S2_KIND_LIF)                                                                              \
            lif_##SUF(p, v, exc, flag, sw);                                                                      \
        else                                                                                                     \
            curr_exp_##SUF(p, v, (T *)ws->i_exc + p->curr_offset, (T *)ws->i_inh + p->curr_offset,               \
                           ws->refrac + p->curr_offset, exc, flag, sw);                                          \
    }                                                                                                            \
                                                                                                                 \
    static void update_##SUF(const s2_population *p, const s2_workspace *ws, int32_t tick, int sw)               \
    {                                                                                                            \
        T *v = (T *)ws->v + p->state_offset;                                                                     \
        int32_t *exc = ring_slot(ws, p, tick);                                                                   \
        uint8_t *flag = ws->flags + p->state_offset;                                                             \
        if (sw & S2_SW_RARE) {                                                                                   \
            update_rare_##SUF(p, ws, v, exc, flag, sw);                                                          \
        } else if (p->kind == S2_KIND_LIF) {                                                                     \
            switch (sw) {                                                                                        \
                S2_SW_CASES(S2_LIF_CASE_##SUF)                                                                   \
            }                                                                                                    \
        } else {                                                                                                 \
            T *ie = (T *)ws->i_exc + p->curr_offset, *ii = (T *)ws->i_inh + p->curr_offset;                      \
            int32_t *refrac = ws->refrac + p->curr_offset;                                                       \
            switch (sw) {                                                                                        \
                S2_SW_CASES(S2_CURR_CASE_##SUF)                                                                  \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
    static void init_state_##SUF(const s2_network *net, const s2_workspace *ws)                                  \
    {                                                                                                            \
        for (int32_t k = 0; k < net->n_pops; k++) {                                                              \
            const s2_population *p = &net->pops[k];                                                              \
            if (p->kind == S2_KIND_INPUT)                                                                        \
                continue;                                                                                        \
            T *v = (T *)ws->v + p->state_offset;                                                                 \
            for (int32_t i = 0; i < p->n; i++)                                                                   \
                v[i] = (T)p->v_init[i];                                                                          \
        }                                                                                                        \
        if (net->n_curr) {                                                                                       \
            memset(ws->i_exc, 0, sizeof(T) * (size_t)net->n_curr);                                               \
            memset(ws->i_inh, 0, sizeof(T) * (size_t)net->n_curr);                                               \
        }                                                                                                        \
    }                                                                                                            \
                                                                                                                 \
    static void record_v_##SUF(const s2_population *p, const s2_pop_io *io, const s2_workspace *ws, int64_t b,   \
                               int32_t n_ticks, int32_t tick)                                                    \
    {                                                                                                            \
        const T *v = (const T *)ws->v + p->state_offset;                                                         \
        if (io->rec_v_last) {                                                                                    \
            if (tick == n_ticks - 1)                                                                             \
                memcpy((T *)io->rec_v + b * p->n, v, sizeof(T) * (size_t)p->n);                                  \
        } else {                                                                                                 \
            memcpy((T *)io->rec_v + (b * n_ticks + tick) * p->n, v, sizeof(T) * (size_t)p->n);                   \
        }                                                                                                        \
    }

#define S2_LIF_CASE_f32(c) case c: lif_f32(p, v, exc, flag, c); break;
#define S2_LIF_CASE_f64(c) case c: lif_f64(p, v, exc, flag, c); break;
#define S2_CURR_CASE_f32(c) case c: curr_exp_f32(p, v, ie, ii, refrac, exc, flag, c); break;
#define S2_CURR_CASE_f64(c) case c: curr_exp_f64(p, v, ie, ii, refrac, exc, flag, c); break;

S2_DEFINE_UPDATES(float, f32, fmaf)
S2_DEFINE_UPDATES(double, f64, fma)

/* Spike flags -> index list (for delivery next tick) and records. Input populations take this tick's inputs. */
static void emit_spikes(const s2_population *p, int32_t k, const s2_pop_io *io, const s2_workspace *ws, int64_t b,
                        int32_t n_ticks, int32_t tick)
{
    const int64_t row = (b * n_ticks + tick) * p->n;
    const uint8_t *flag = p->kind == S2_KIND_INPUT ? io->input + row : ws->flags + p->state_offset;
    int32_t *out = ws->spikes_cur + p->state_offset;
    int32_t count = 0, i = 0;
    /* Spikes are sparse: read eight flags per load and visit only the set ones (lowest set byte first). */
    for (; i + 8 <= p->n; i += 8) {
        uint64_t word;
        memcpy(&word, flag + i, sizeof word);
        if (!word)
            continue;
        word = (word | (word >> 1) | (word >> 2) | (word >> 3) | (word >> 4) | (word >> 5) | (word >> 6) |
                (word >> 7)) & 0x0101010101010101ull;  /* one bit per non-zero flag byte */
        while (word) {
            out[count++] = i + (__builtin_ctzll(word) >> 3);
            word &= word - 1;
        }
    }
    for (; i < p->n; i++) {
        out[count] = i;
        count += flag[i] != 0;
    }
    ws->n_cur[k] = count;
    if (io->rec_spikes)
        memcpy(io->rec_spikes + row, flag, (size_t)p->n);
    if (io->rec_counts)
        io->rec_counts[(b * n_ticks + tick) * 2] = count;
}

/* The update switches of a population's arithmetic (S2_POP_* flags), without the per-tick INPUT switch. */
static int pop_switches(const s2_population *p)
{
    const int f = p->flags, fused = (f & S2_POP_FMA) != 0, current = (f & S2_POP_CURRENT_FMA) != 0;
    return (fused ? S2_SW_FUSED : 0) | ((f & S2_POP_THRESHOLD_GT) ? S2_SW_STRICT : 0) |
           (p->uniform_params ? S2_SW_UNIFORM : 0) | ((f & S2_POP_LEAK_FIRST) ? S2_SW_LEAK_FIRST : 0) |
           (p->kind == S2_KIND_CURR_EXP && current != fused ? S2_SW_CURRENT_FLIP : 0) |
           ((f & S2_POP_LEFT_TO_RIGHT) ? S2_SW_LEFT_TO_RIGHT : 0) | ((f & S2_POP_FTZ) ? S2_SW_FTZ : 0) |
           ((f & S2_POP_REFRAC_NO_SPIKE) ? S2_SW_REFRAC_NO_SPIKE : 0);
}

/* Returns 1 when *cancel was set before the run finished (checked between ticks), else 0. */
static int run_sample(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int64_t b,
                      int32_t n_ticks, const int32_t *cancel)
{
    const int f64 = (net->flags & S2_FLAG_FLOAT64) != 0;
    if (f64)
        init_state_f64(net, ws);
    else
        init_state_f32(net, ws);
    if (net->n_curr)
        memset(ws->refrac, 0, sizeof(int32_t) * (size_t)net->n_curr);
    if (net->n_ring)
        memset(ws->ring, 0, sizeof(int32_t) * (size_t)net->n_ring);
    memset(ws->n_prev, 0, sizeof(int32_t) * (size_t)net->n_pops);
    memset(ws->dirty, 0, 8 * (size_t)net->n_pops);
    for (int32_t k = 0; k < net->n_pops; k++)
        if (io[k].rec_counts)
            memset(io[k].rec_counts + b * n_ticks * 2, 0, sizeof(int64_t) * 2 * (size_t)n_ticks);

    int32_t *prev = ws->spikes_prev, *cur = ws->spikes_cur, *n_prev = ws->n_prev, *n_cur = ws->n_cur;
    for (int32_t tick = 0; tick < n_ticks; tick++) {
        /* another thread stores the flag; an atomic load keeps the read from being hoisted out of the loop */
        if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))
            return 1;
        s2_workspace w = *ws;
        w.spikes_prev = prev;
        w.spikes_cur = cur;
        w.n_prev = n_prev;
        w.n_cur = n_cur;
        deliver_all(net, &w, io, b, n_ticks, tick);
        for (int32_t k = 0; k < net->n_pops; k++) {
            const s2_population *p = &net->pops[k];
            if (p->kind != S2_KIND_INPUT) {
                uint8_t *dirty = &ws->dirty[(int64_t)k * 8 + (tick & (p->ring_slots - 1))];
                const int sw = pop_switches(p) | (*dirty ? S2_SW_INPUT : 0);
                *dirty = 0;
                if (f64)
                    update_f64(p, &w, tick, sw);
                else
                    update_f32(p, &w, tick, sw);
            }
            emit_spikes(p, k, &io[k], &w, b, n_ticks, tick);
            if (io[k].rec_v) {
                if (f64)
                    record_v_f64(p, &io[k], &w, b, n_ticks, tick);
                else
                    record_v_f32(p, &io[k], &w, b, n_ticks, tick);
            }
        }
        int32_t *t = prev; prev = cur; cur = t;
        t = n_prev; n_prev = n_cur; n_cur = t;
    }
    return 0;
}

int s2_run(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int32_t batch, int32_t n_ticks,
           int32_t b_begin, int32_t b_end, const int32_t *cancel, char *err, size_t errlen)
{
    if (!net || net->validated != S2_VALIDATED)
        return fail(err, errlen, S2_ERR_RUN, "network was not validated");
    if (!io || !ws || !ws->v || !ws->ring || !ws->flags || !ws->spikes_prev || !ws->spikes_cur || !ws->n_prev ||
        !ws->n_cur || !ws->dirty || (net->n_curr && (!ws->i_exc || !ws->i_inh || !ws->refrac)))
        return fail(err, errlen, S2_ERR_RUN, "workspace or io array is NULL");
    if (n_ticks < 0 || batch < 0 || b_begin < 0 || b_end > batch || b_begin > b_end)
        return fail(err, errlen, S2_ERR_RUN, "bad run range: ticks %d, samples [%d, %d) of %d", n_ticks, b_begin,
                    b_end, batch);
    for (int32_t k = 0; k < net->n_pops; k++)
        if (net->pops[k].kind == S2_KIND_INPUT && !io[k].input)
            return fail(err, errlen, S2_ERR_RUN, "population %d: input array is NULL", k);
#ifdef S2_HAVE_MXCSR
    /* The M4F rounds to nearest with denormals kept; make sure this thread does the same whatever a library set. */
    const unsigned int saved = _mm_getcsr();
    _mm_setcsr((saved & ~(0x8040u | 0x6000u)));
#endif
    int cancelled = 0;
    for (int64_t b = b_begin; b < b_end && !cancelled; b++)
        cancelled = run_sample(net, io, ws, b, n_ticks, cancel);
#ifdef S2_HAVE_MXCSR
    _mm_setcsr(saved);
#endif
    return cancelled ? S2_CANCELLED : S2_OK;
}
