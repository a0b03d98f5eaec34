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
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define S2_HAVE_MXCSR 1
#endif
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <sched.h>
#if defined(__AMX_INT8__) && defined(__AMX_TILE__) && defined(__linux__)
#define S2_HAVE_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* ------------------------------------------------------------------------------------------------------------
 * SIMD helpers. Each instruction-set level defines the same small operations; every loop that uses them is written
 * once. The level is the compiler's target (-march), reported by s2_simd_level(). Integer operations only, so
 * every level computes the same bits.
 * ---------------------------------------------------------------------------------------------------------- */

/* Bit j of the result is set when p[j] != 0, for the 64 bytes p[0..63]. */
#if defined(__AVX512BW__)
#define S2_SIMD_NAME "avx512"
static inline uint64_t nonzero_mask64(const uint8_t *p)
{
    const __m512i x = _mm512_loadu_si512((const void *)p);
    return (uint64_t)_mm512_test_epi8_mask(x, x);
}
#elif defined(__AVX2__)
#define S2_SIMD_NAME "avx2"
static inline uint64_t nonzero_mask64(const uint8_t *p)
{
    const __m256i zero = _mm256_setzero_si256();
    const uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)p), zero));
    const uint32_t hi = (uint32_t)_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32)), zero));
    return ~((uint64_t)hi << 32 | lo);
}
#elif defined(__SSE2__)
#define S2_SIMD_NAME "sse2"
static inline uint64_t nonzero_mask64(const uint8_t *p)
{
    uint64_t zero = 0;
    for (int j = 0; j < 4; j++) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * j));
        zero |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) << (16 * j);
    }
    return ~zero;
}
#else
#define S2_SIMD_NAME "portable"
static inline uint64_t nonzero_mask64(const uint8_t *p)
{
    uint64_t m = 0;
    for (int j = 0; j < 64; j++)
        m |= (uint64_t)(p[j] != 0) << j;
    return m;
}
#endif

/* Dot products for the dense conv path: an accumulator of S2_LANES int32 lanes (output channels) takes, per step,
 * four uint8 map counts (the same four for every lane) times four int8 weights per lane, summed exactly in int32.
 * VNNI does that in one instruction (vpdpbusd, no saturation); plain AVX2 in two, exact while a count is at most
 * 127 (pairs of products then stay inside int16, where vpmaddubsw would saturate). */
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define S2_LANES 16
typedef __m512i s2_acc;
static inline s2_acc acc_zero(void) { return _mm512_setzero_si512(); }
static inline s2_acc acc_dot4(s2_acc acc, uint32_t counts, const int8_t *w)
{
    return _mm512_dpbusd_epi32(acc, _mm512_set1_epi32((int32_t)counts), _mm512_loadu_si512((const void *)w));
}
static inline void acc_store(int32_t *out, s2_acc acc) { _mm512_storeu_si512((void *)out, acc); }
#elif defined(__AVX2__)
#define S2_LANES 8
typedef __m256i s2_acc;
static inline s2_acc acc_zero(void) { return _mm256_setzero_si256(); }
static inline s2_acc acc_dot4(s2_acc acc, uint32_t counts, const int8_t *w)
{
    const __m256i a = _mm256_set1_epi32((int32_t)counts), b = _mm256_loadu_si256((const __m256i *)w);
#if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
    return _mm256_dpbusd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}
static inline void acc_store(int32_t *out, s2_acc acc) { _mm256_storeu_si256((__m256i *)out, acc); }
#else
#define S2_LANES 8
typedef struct {
    int32_t lane[S2_LANES];
} s2_acc;
static inline s2_acc acc_zero(void)
{
    s2_acc acc = {{0}};
    return acc;
}
static inline s2_acc acc_dot4(s2_acc acc, uint32_t counts, const int8_t *w)
{
    for (int l = 0; l < S2_LANES; l++)
        for (int r = 0; r < 4; r++)
            acc.lane[l] += (int32_t)((counts >> (8 * r)) & 0xff) * w[4 * l + r];
    return acc;
}
static inline void acc_store(int32_t *out, s2_acc acc) { memcpy(out, acc.lane, sizeof acc.lane); }
#endif

/* Appends i + j to out[count..] for every set bit j of m; returns the new count. Branch-free per 16 spikes (a
 * busy layer's bits are unpredictable). With VBMI2 the set positions are compressed as bytes and widened 16 at a
 * time: one step for a block of at most 16 spikes, against four 16-lane dword compresses; that step is taken
 * even for an empty block, so the caller need not test m (S2_APPEND_EMPTY: a quiet layer's blocks are mostly
 * empty, and the test mispredicts on every one that is not). Each store writes 16 entries from where the spikes
 * so far end: the caller's list has room (out[count] belongs to neuron i - lo or earlier, and i + 63 < hi). */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI2__)
static inline int32_t append_set_bits(uint64_t m, int32_t i, int32_t *out, int32_t count)
{
    const __m512i positions = _mm512_set_epi32(0x3f3e3d3c, 0x3b3a3938, 0x37363534, 0x33323130, 0x2f2e2d2c, 0x2b2a2928,
                                               0x27262524, 0x23222120, 0x1f1e1d1c, 0x1b1a1918, 0x17161514, 0x13121110,
                                               0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100);
    const __m512i base = _mm512_set1_epi32(i);
    __m512i set = _mm512_maskz_compress_epi8(m, positions);
    const int32_t n = __builtin_popcountll(m);
    int32_t j = 0;
    do {
        _mm512_storeu_si512((void *)(out + count + j),
                            _mm512_add_epi32(base, _mm512_cvtepu8_epi32(_mm512_castsi512_si128(set))));
        set = _mm512_alignr_epi32(_mm512_setzero_si512(), set, 4);  /* the next 16 positions to the bottom */
        j += 16;
    } while (j < n);
    return count + n;
}
#define S2_APPEND_EMPTY 1
#elif defined(__AVX512F__) && defined(__AVX512BW__)
static inline int32_t append_set_bits(uint64_t m, int32_t i, int32_t *out, int32_t count)
{
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int q = 0; q < 4; q++) {
        const __mmask16 k = (__mmask16)(m >> (16 * q));
        const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(i + 16 * q), lanes);
        _mm512_storeu_si512((void *)(out + count), _mm512_maskz_compress_epi32(k, idx));
        count += __builtin_popcount(k);
    }
    return count;
}
#define S2_APPEND_EMPTY 0
#else
static inline int32_t append_set_bits(uint64_t m, int32_t i, int32_t *out, int32_t count)
{
    for (; m; m &= m - 1)
        out[count++] = i + __builtin_ctzll(m);
    return count;
}
#define S2_APPEND_EMPTY 0
#endif

const char *s2_simd_level(void)
{
    return S2_SIMD_NAME;
}

int s2_amx_enable(void)
{
#ifdef S2_HAVE_AMX
    /* Linux hands a process the AMX tile state (XTILEDATA) only on request: ARCH_REQ_XCOMP_PERM. */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}

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

/* The dense conv path's pooled map: the rows and columns that some output reads (see s2sim.h). */
static inline int32_t map_h(const s2_projection *q)
{
    return (q->oh - 1) * q->stride_y + q->k_h;
}

static inline int32_t map_w(const s2_projection *q)
{
    return (q->ow - 1) * q->stride_x + q->k_w;
}

/* A kernel row's taps, k_w * c_in map bytes, are read four at a time ("quads"), in chunks of at most 16 quads
 * (64 bytes, one row of an AMX tile); the quads are padded with zero weights so that all chunks are equal. */
static inline int32_t quad_chunks(int32_t c_in, int32_t k_w)
{
    return ((k_w * c_in + 3) / 4 + 15) / 16;
}

int32_t s2_conv_quads(int32_t c_in, int32_t k_w)
{
    const int32_t quads = (k_w * c_in + 3) / 4, chunks = quad_chunks(c_in, k_w);
    return (quads + chunks - 1) / chunks * chunks;
}

static inline int32_t conv_quads(const s2_projection *q)
{
    return s2_conv_quads(q->c_in, q->k_w);
}

/* Output channels padded to the widest vector (16 int32 lanes, one AMX tile row), so every level reads whole
 * vectors. */
static inline int32_t conv_out_pad(const s2_projection *q)
{
    return (q->c_out + 15) & ~15;
}

/* Output positions of one row per AMX tile: the row split evenly into tiles of at most 16. */
static inline int32_t tile_positions(int32_t ow)
{
    const int32_t tiles = (ow + 15) / 16;
    return (ow + tiles - 1) / tiles;
}

/* Slack past the map's last cell that the dense product may read (and multiply by zero weights, or drop): the
 * padded quads of the last window row, and with AMX up to one tile's worth of positions past a row's end. */
static int64_t plain_map_bytes(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x,
                               int32_t stride_y)
{
    const int64_t h = (int64_t)(oh - 1) * stride_y + k_h, w = (int64_t)(ow - 1) * stride_x + k_w;
    const int64_t extra_positions = (int64_t)tile_positions(ow) * ((ow + 15) / 16) - ow;
    return h * w * c_in + extra_positions * stride_x * c_in + 4 * (int64_t)s2_conv_quads(c_in, k_w) - k_w * c_in + 64;
}

/* The stacked AMX product (see s2sim.h) builds its rows with byte permutes and expands (AVX-512 VBMI, VBMI2:
 * every core with AMX has them). A stacked row holds every map column's k_h * c_in counts ("a record"), rows
 * pitch bytes apart: whole vectors, so that building one never writes into the next. */
#if defined(S2_HAVE_AMX) && defined(__AVX512VBMI__) && defined(__AVX512VBMI2__)
#define S2_HAVE_STACK 1
#endif
#define S2_STACK_MAX_VECTORS 64

static inline int64_t stack_pitch(int32_t c_in, int32_t ow, int32_t k_h, int32_t k_w)
{
    return ((int64_t)(ow + k_w - 1) * k_h * c_in + 63) & ~(int64_t)63;  /* stride 1: ow + k_w - 1 map columns */
}

int32_t s2_stack_quads(int32_t c_in, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x, int32_t stride_y)
{
#ifdef S2_HAVE_STACK
    if (stride_x == 1 && stride_y == 1 && k_h >= 2 && c_in >= 1 && k_w >= 1 && ow >= 1 &&
        (int64_t)k_h * k_w * c_in <= 64 && stack_pitch(c_in, ow, k_h, k_w) <= 64 * S2_STACK_MAX_VECTORS)
        return (k_h * k_w * c_in + 3) / 4;
#else
    (void)c_in, (void)ow, (void)k_h, (void)k_w, (void)stride_x, (void)stride_y;
#endif
    return 0;
}

/* Rows for the map rows 0 .. oh+k_h-2 (row r ends with map row r; output row oy reads row oy+k_h-1), and slack
 * for the tiles of the last one: up to one tile's worth of positions past the row's end, each window padded to
 * whole quads (read, and multiplied by zero weights or dropped). */
static int64_t stack_bytes(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w)
{
    const int64_t extra_positions = (int64_t)tile_positions(ow) * ((ow + 15) / 16) - ow;
    return (int64_t)(oh + k_h - 1) * stack_pitch(c_in, ow, k_h, k_w) + extra_positions * k_h * c_in + 64;
}

/* Where a projection's stacked rows start, counted from its map's first byte: the map's bytes rounded up to 64 (as
 * map offsets in the workspace's conv_map are; the array itself need not be aligned, nor do the loads here). */
static inline int64_t stacked_offset(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w,
                                     int32_t stride_x, int32_t stride_y)
{
    return (plain_map_bytes(c_in, oh, ow, k_h, k_w, stride_x, stride_y) + 63) & ~(int64_t)63;
}

/* Where the stacked rows' slot masks (stack_masks) start, from the map's first byte: after the rows, from the next
 * multiple of 64. They hold a 64-bit mask and an int32 offset per vector of a row. */
static inline int64_t masks_offset(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x,
                                   int32_t stride_y)
{
    return stacked_offset(c_in, oh, ow, k_h, k_w, stride_x, stride_y) +
           ((stack_bytes(c_in, oh, ow, k_h, k_w) + 63) & ~(int64_t)63);
}

int64_t s2_map_bytes(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x, int32_t stride_y,
                     int32_t stacked)
{
    if (!stacked)
        return plain_map_bytes(c_in, oh, ow, k_h, k_w, stride_x, stride_y);
    return masks_offset(c_in, oh, ow, k_h, k_w, stride_x, stride_y) + stack_pitch(c_in, ow, k_h, k_w) / 64 * 12;
}

static inline int64_t stack_offset(const s2_projection *q)
{
    return stacked_offset(q->c_in, q->oh, q->ow, q->k_h, q->k_w, q->stride_x, q->stride_y);
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
    if (p->grain < 1)
        return fail(err, errlen, S2_ERR_INVALID, "population %d: grain %d < 1", k, p->grain);
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
    if (p->uniform_params & ~(S2_UNIFORM_PARAMS | S2_UNIFORM_OFFSET))
        return fail(err, errlen, S2_ERR_INVALID, "population %d: unknown uniform_params 0x%x", k, p->uniform_params);
    const float *arrays[6] = {p->threshold, p->alpha_decay, p->v_reset, p->exc_decay, p->inh_decay, p->i_offset};
    for (int a = 0; a < 6; a++)
        for (int32_t i = 1; (p->uniform_params & (a < 5 ? S2_UNIFORM_PARAMS : S2_UNIFORM_OFFSET)) && arrays[a] &&
                            i < p->n; i++)
            if (memcmp(&arrays[a][i], &arrays[a][0], sizeof(float)))
                return fail(err, errlen, S2_ERR_INVALID, "population %d: uniform_params set but parameter %d "
                            "differs at neuron %d", k, a, i);
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

static int validate_delay(const s2_projection *q, const s2_population *post, int32_t k, char *err, size_t errlen)
{
    if (q->uniform_delay < 0 || q->uniform_delay >= post->ring_slots)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: delay %d >= %d ring slots", k, q->uniform_delay,
                    post->ring_slots);
    return S2_OK;
}

static int validate_sparse(const s2_projection *q, const s2_population *post, int32_t k, char *err, size_t errlen)
{
    if (!q->row_ptr || (q->row_ptr[q->n_pre] > 0 && (!q->target || !q->weight)))
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: sparse arrays are NULL", k);
    if (!q->delay && validate_delay(q, post, k, err, errlen))
        return S2_ERR_INVALID;
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
        if (q->delay && q->delay[s] >= post->ring_slots)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d synapse %lld: delay %d >= %d ring slots", k,
                        (long long)s, q->delay[s], post->ring_slots);
    }
    return S2_OK;
}

/* map_planes (s2sim.h): the map laid out from the input row must be the one the spikes count into through cell[]. */
static int validate_map_planes(const s2_projection *q, const s2_population *pre, int32_t k, char *err, size_t errlen)
{
    if (pre->kind != S2_KIND_INPUT || q->pre_channel_last || q->pool_x != 1 || q->pool_y != 1 || q->c_in > 2 ||
        (int64_t)q->c_in * q->ph * q->pw != pre->n)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: map_planes, but the pre population is not an "
                    "unpooled %d x %d x %d input population of at most 2 channels", k, q->c_in, q->ph, q->pw);
    for (int32_t i = 0; i < pre->n; i++) {
        const int32_t c = i / (q->ph * q->pw), y = i / q->pw % q->ph, x = i % q->pw;
        const int32_t my = y + q->pad_top, mx = x + q->pad_left;
        const int32_t cell = my < map_h(q) && mx < map_w(q) ? (my * map_w(q) + mx) * q->c_in + c : -1;
        if (q->cell[i] != cell)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: map_planes, but pre neuron %d has map cell %d, "
                        "not %d", k, i, q->cell[i], cell);
    }
    return S2_OK;
}

/* The dense conv path: its map slice inside the workspace's conv_map, and every cell offset inside the map. */
static int validate_conv_map(const s2_network *net, const s2_projection *q, const s2_population *pre, int32_t k,
                             char *err, size_t errlen)
{
    if (!q->cell || !q->packed)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: dense conv arrays are NULL", k);
    if (q->pool_x < 1 || q->pool_y < 1)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: pool %d x %d", k, q->pool_x, q->pool_y);
    if (q->pre_channel_last && (pre->kind == S2_KIND_INPUT ||
                                (int64_t)q->c_in * q->ph * q->pool_y * q->pw * q->pool_x != pre->n))
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: pre_channel_last, but the pre population is not "
                    "a %d x %d x %d neuron population", k, q->c_in, q->ph * q->pool_y, q->pw * q->pool_x);
    if (q->dense_from < 0)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: dense_from %d < 0", k, q->dense_from);
    const int64_t cells = (int64_t)map_h(q) * map_w(q) * q->c_in;
    if (q->stacked && !s2_stack_quads(q->c_in, q->ow, q->k_h, q->k_w, q->stride_x, q->stride_y))
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: a stacked kernel, but this core has no stacked "
                    "product for %d channels, %d x %d kernel, stride %d x %d", k, q->c_in, q->k_h, q->k_w,
                    q->stride_x, q->stride_y);
    const int64_t bytes = s2_map_bytes(q->c_in, q->oh, q->ow, q->k_h, q->k_w, q->stride_x, q->stride_y,
                                       q->stacked != NULL);
    if (q->map_offset < 0 || q->map_offset + bytes > net->n_conv_map)
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: map [%lld, %lld) outside %lld conv map bytes", k,
                    (long long)q->map_offset, (long long)(q->map_offset + bytes), (long long)net->n_conv_map);
    for (int32_t i = 0; i < pre->n; i++)
        if (q->cell[i] < -1 || q->cell[i] >= cells)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: pre neuron %d has map cell %d outside "
                        "-1..%lld", k, i, q->cell[i], (long long)cells - 1);
    return q->map_planes ? validate_map_planes(q, pre, k, err, errlen) : S2_OK;
}

static int validate_conv(const s2_network *net, const s2_projection *q, const s2_population *pre,
                         const s2_population *post, int32_t k, char *err, size_t errlen)
{
    if (!q->pool_pos || !q->kernel || !q->pre_events)
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
        if (q->pre_events[i] < 0)
            return fail(err, errlen, S2_ERR_INVALID, "projection %d: pre neuron %d has %d events per spike", k, i,
                        q->pre_events[i]);
    }
    return q->dense_from == INT32_MAX ? S2_OK : validate_conv_map(net, q, pre, k, err, errlen);
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
        return validate_delay(q, post, k, err, errlen);
    case S2_PROJ_CONV:
        return validate_conv(net, q, pre, post, k, err, errlen);
    default:
        return fail(err, errlen, S2_ERR_INVALID, "projection %d: unknown kind %d", k, q->kind);
    }
}

int s2_validate(s2_network *net, char *err, size_t errlen)
{
    if (!net || (net->n_pops > 0 && !net->pops) || (net->n_projs > 0 && !net->projs))
        return fail(err, errlen, S2_ERR_INVALID, "network: NULL arrays");
    if (net->n_pops < 1 || net->n_projs < 0 || net->n_neurons < 1 || net->n_ring < 0 || net->n_curr < 0 ||
        net->n_conv_map < 0)
        return fail(err, errlen, S2_ERR_INVALID, "network: empty or negative sizes");
    if (net->flags & ~(S2_FLAG_FLOAT64 | S2_FLAG_AMX))
        return fail(err, errlen, S2_ERR_INVALID, "network: unknown flags 0x%x", net->flags);
#ifndef S2_HAVE_AMX
    if (net->flags & S2_FLAG_AMX)
        return fail(err, errlen, S2_ERR_INVALID, "network: S2_FLAG_AMX, but the core was built without AMX");
#endif
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

/* The neurons [lo, hi) of a population that one thread owns: all of them, or (a sample split over threads) its
 * share, cut at multiples of the population's grain. */
typedef struct {
    int32_t lo, hi;
} span;

static inline span own_span(const s2_population *p, const s2_workspace *ws)
{
    const int64_t units = ((int64_t)p->n + p->grain - 1) / p->grain, t = ws->thread, parts = ws->n_threads;
    const int64_t lo = units * t / parts * p->grain, hi = units * (t + 1) / parts * p->grain;
    span r = {(int32_t)(lo < p->n ? lo : p->n), (int32_t)(hi < p->n ? hi : p->n)};
    return r;
}

/* The spikes a population emitted in the previous tick, as one list per thread that emitted them (a split
 * sample: thread t lists the spikes of its own range, from the range's first index on); for an input population
 * also the whole input row they came from (else NULL). */
typedef struct {
    const int32_t *idx[S2_MAX_SPLIT];
    int32_t n[S2_MAX_SPLIT];
    int32_t parts;
    int64_t total;
    const uint8_t *row;
} spike_lists;

static spike_lists previous_spikes(const s2_network *net, const s2_workspace *ws, int32_t k)
{
    const s2_population *p = &net->pops[k];
    spike_lists sp;
    sp.parts = ws->n_threads;
    sp.total = 0;
    sp.row = NULL;
    for (int32_t t = 0; t < sp.parts; t++) {
        s2_workspace other = *ws;
        other.thread = t;
        sp.idx[t] = ws->spikes_prev + p->state_offset + own_span(p, &other).lo;
        sp.n[t] = ws->n_prev[(int64_t)k * ws->n_threads + t];
        sp.total += sp.n[t];
    }
    return sp;
}

static inline int32_t *ring_slot(const s2_workspace *ws, const s2_population *p, int32_t tick)
{
    return ws->ring + p->ring_offset + (int64_t)(tick & (p->ring_slots - 1)) * p->ring_planes * p->n;
}

/* The state of each ring slot (ws->dirty, per population and slot): all zero (CLEAN); holding input added onto
 * it (INPUT); holding input written whole by a dense conv product (FULL); read by the update and not cleared
 * since (STALE). The update clears an INPUT slot chunk by chunk as it reads it (in L1), but leaves a FULL slot
 * stale: the next tick's dense product overwrites it again, so clearing it would be a wasted pass over the slot;
 * a delivery that adds into a stale slot clears it first. */
#define S2_SLOT_CLEAN 0
#define S2_SLOT_INPUT 1
#define S2_SLOT_STALE 2
#define S2_SLOT_FULL 3

static inline uint8_t *slot_state(const s2_workspace *ws, int32_t post, const s2_population *p, int32_t tick)
{
    return &ws->dirty[(int64_t)post * 8 + (tick & (p->ring_slots - 1))];
}

/* Before adding into a slot: a stale slot is cleared first (this thread's range of every plane). */
static void prepare_slot(const s2_workspace *ws, int32_t post, const s2_population *p, int32_t tick, span r)
{
    uint8_t *state = slot_state(ws, post, p, tick);
    if (*state != S2_SLOT_STALE)
        return;
    int32_t *slot = ring_slot(ws, p, tick);
    for (int32_t plane = 0; plane < p->ring_planes; plane++)
        memset(slot + (int64_t)plane * p->n + r.lo, 0, sizeof(int32_t) * (size_t)(r.hi - r.lo));
    *state = S2_SLOT_CLEAN;
}

/* Marks a slot as holding input added onto it, so that the update reads it (and clears it; a FULL slot stays
 * FULL: it is defined everywhere). */
static inline void mark_dirty(const s2_workspace *ws, int32_t post, const s2_population *p, int32_t tick)
{
    uint8_t *state = slot_state(ws, post, p, tick);
    if (*state != S2_SLOT_FULL)
        *state = S2_SLOT_INPUT;
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

/* In blocks of 16 (one 512-bit vector; a conv row is taps * c_out long, often a multiple of 16), so that no row
 * of 80 ends in 16 scalar adds after one 64-wide vector step. With AVX-512 written out: one widening load per 16
 * weights and a masked tail (the compiler's own version of the loop widened through 16-bit lanes and spilled its
 * counters in the event path, about 3x slower per spike). */
static inline void add_row_signed(int32_t *restrict acc, const int8_t *restrict w, int32_t n)
{
    int32_t j = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    for (; j + 16 <= n; j += 16) {
        const __m512i x = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + j)));
        _mm512_storeu_si512((void *)(acc + j), _mm512_add_epi32(_mm512_loadu_si512((const void *)(acc + j)), x));
    }
    if (j < n) {
        const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        const __m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w + j));
        _mm512_mask_storeu_epi32(acc + j, m, _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc + j), x));
    }
#else
    for (; j + 16 <= n; j += 16)
        for (int32_t l = 0; l < 16; l++)
            acc[j + l] += w[j + l];
    for (; j < n; j++)
        acc[j] += w[j];
#endif
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

/* The synapses of the spiking rows into their slots (slot[d]: the slot that delay d feeds this tick). Instantiated
 * per plane count, with or without per-synapse delays and with or without a target range (constant arguments),
 * so a projection whose synapses share one delay does no delay lookup and no bookkeeping per synapse, and an
 * unsplit sample no range test. A thread of a split sample adds only the synapses into its own range (it reads
 * every spiking row: sparse rows are not ordered by target). Returns the delays used as a bit set. */
static inline __attribute__((always_inline)) uint32_t sparse_rows(const s2_projection *q, int32_t *const *slot,
                                                                  int32_t n, const spike_lists *sp, span r,
                                                                  int32_t planes, int delayed, int ranged)
{
    uint32_t used = 0;
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++) {
            const int32_t i = sp->idx[part][s];
            for (int64_t k = q->row_ptr[i]; k < q->row_ptr[i + 1]; k++) {
                const int32_t d = delayed ? q->delay[k] : 0, w = q->weight[k], j = q->target[k];
                if (ranged && (j < r.lo || j >= r.hi))
                    continue;
                if (planes == 1)
                    slot[d][j] += w;
                else
                    slot[d][(w < 0 ? n : 0) + j] += w < 0 ? -w : w;
                if (delayed)
                    used |= 1u << d;
            }
        }
    return delayed ? used : 1u;
}

/* Synaptic events of the spiking rows (counted once, by thread 0 of a split sample). */
static int64_t row_events(const spike_lists *sp, const int64_t *row_ptr, const int32_t *row_nnz,
                          const int32_t *per_pre)
{
    int64_t events = 0;
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++) {
            const int32_t i = sp->idx[part][s];
            events += row_ptr ? row_ptr[i + 1] - row_ptr[i] : (row_nnz ? row_nnz[i] : per_pre[i]);
        }
    return events;
}

#define S2_SPARSE_ROWS(PLANES, RANGED)                                                                            \
    (q->delay ? sparse_rows(q, slot, post->n, sp, r, PLANES, 1, RANGED)                                          \
              : sparse_rows(q, slot, post->n, sp, r, PLANES, 0, RANGED))

static void deliver_sparse(const s2_projection *q, const s2_population *post, const s2_workspace *ws,
                           const spike_lists *sp, span r, int32_t tick)
{
    int32_t *slot[8]; /* by delay: the slot a synapse of that delay feeds this tick */
    const int32_t first = q->delay ? 0 : q->uniform_delay, count = q->delay ? post->ring_slots : 1;
    for (int32_t d = 0; d < count; d++) {
        prepare_slot(ws, q->post, post, tick + first + d, r);
        slot[d] = ring_slot(ws, post, tick + first + d);
    }
    const int ranged = r.lo > 0 || r.hi < post->n;
    uint32_t used;
    if (post->ring_planes == 1)
        used = ranged ? S2_SPARSE_ROWS(1, 1) : S2_SPARSE_ROWS(1, 0);
    else
        used = ranged ? S2_SPARSE_ROWS(2, 1) : S2_SPARSE_ROWS(2, 0);
    for (int32_t d = 0; d < count; d++)
        if (used & (1u << d))
            mark_dirty(ws, q->post, post, tick + first + d);
}

/* Rows of at most 16 targets (an output layer) summed in a register over every spike, then added to the slot
 * once; returns 0 (nothing done) for longer rows or without AVX-512. Added into the slot spike by spike, each
 * spike's masked load waits for the previous spike's masked store to the same entries (masked accesses are not
 * store-forwarded): about 20 cycles a spike. */
static int add_short_rows(int32_t *acc, const int8_t *rows, int64_t stride, const spike_lists *sp, int32_t len)
{
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    if (len > 16)
        return 0;
    const __mmask16 m = (__mmask16)((1u << len) - 1);
    __m512i sum = _mm512_setzero_si512();
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++) {
            const __m128i w = _mm_maskz_loadu_epi8(m, rows + sp->idx[part][s] * stride);
            sum = _mm512_add_epi32(sum, _mm512_cvtepi8_epi32(w));
        }
    _mm512_mask_storeu_epi32(acc, m, _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc), sum));
    return 1;
#else
    (void)acc, (void)rows, (void)stride, (void)sp, (void)len;
    return 0;
#endif
}

/* Dense rows: each spike adds its row's part in this thread's range. */
static void deliver_dense(const s2_projection *q, const s2_population *post, const s2_workspace *ws,
                          const spike_lists *sp, span r, int32_t tick)
{
    const int32_t n = post->n;
    int32_t *exc = ring_slot(ws, post, tick + q->uniform_delay);
    prepare_slot(ws, q->post, post, tick + q->uniform_delay, r);
    mark_dirty(ws, q->post, post, tick + q->uniform_delay);
    if (post->ring_planes == 1 && add_short_rows(exc + r.lo, q->dense + r.lo, n, sp, r.hi - r.lo))
        return;
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++)
            add_row(exc + r.lo, post->ring_planes, n, q->dense + (int64_t)sp->idx[part][s] * n + r.lo, r.hi - r.lo);
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

/* The taps of one kernel row krow that reach output row orow from input column x: kernel columns kx0 .. kx1 onto
 * output columns ox0, ox0 - 1, ... Kernel columns are stored reversed, so tap kx sits at column k_w - 1 - kx: as kx
 * falls, output and kernel addresses both rise. With stride_x 1 the taps are then one contiguous add of
 * (taps * c_out) values instead of one short add per tap. */
static inline void add_taps(const s2_projection *q, int32_t *orow, int32_t planes, int32_t n, const int8_t *krow,
                            int32_t kx0, int32_t kx1, int32_t ox0)
{
    const int32_t co = q->c_out;
    if (q->stride_x == 1) {
        const int32_t taps = kx1 - kx0 + 1;
        add_row(orow + (int64_t)(ox0 - (taps - 1)) * co, planes, n, krow + (int64_t)(q->k_w - 1 - kx1) * co,
                taps * co);
        return;
    }
    for (int32_t kx = kx0, ox = ox0; kx <= kx1; kx += q->stride_x, ox--)
        add_row(orow + (int64_t)ox * co, planes, n, krow + (int64_t)(q->k_w - 1 - kx) * co, co);
}

/* Where one spike of pre neuron i reaches: its pooled cell's kernel (channel c's taps), the kernel rows ky0 ..
 * ky1 onto output rows oy0, oy0 - 1, ..., and the kernel columns kx0 .. kx1 onto output columns ox0, ox0 - 1, ...
 * Returns 0 when it reaches no output. */
typedef struct {
    const int8_t *kernel;
    int32_t ky0, ky1, oy0, kx0, kx1, ox0;
} spike_reach;

static inline int reach_of(const s2_projection *q, int32_t i, spike_reach *r)
{
    const int32_t *pos = q->pool_pos + 3 * (int64_t)i;
    r->ky1 = tap_series(pos[1], q->pad_top, q->k_h, q->stride_y, q->oh, &r->ky0, &r->oy0);
    r->kx1 = tap_series(pos[2], q->pad_left, q->k_w, q->stride_x, q->ow, &r->kx0, &r->ox0);
    r->kernel = q->kernel + (int64_t)pos[0] * q->k_h * q->k_w * q->c_out;
    return r->ky1 >= 0 && r->kx1 >= 0;
}

/* One spike of pre neuron i: its taps added into the outputs they reach in output rows [oy_lo, oy_hi); out is row
 * oy_lo's first entry (n: the plane stride). */
static inline void conv_spike(const s2_projection *q, int32_t planes, int32_t n, int32_t *out, int32_t i,
                              int32_t oy_lo, int32_t oy_hi)
{
    spike_reach r;
    if (!reach_of(q, i, &r))
        return;
    const int32_t row = q->ow * q->c_out;
    for (int32_t ky = r.ky0, oy = r.oy0; ky <= r.ky1; ky += q->stride_y, oy--) {
        if (oy >= oy_hi)
            continue;
        if (oy < oy_lo)  /* oy only falls */
            break;
        add_taps(q, out + (int64_t)(oy - oy_lo) * row, planes, n, r.kernel + (int64_t)ky * q->k_w * q->c_out, r.kx0,
                 r.kx1, r.ox0);
    }
}

/* One spike whose lowest output row lies in the band from output row oy_lo on, added into the fused event path's
 * ring of output rows (one signed plane; ring rows, output row oy_lo at ring row at_lo): every row it reaches is
 * in the ring, and the band's ring row is found once per band, not by a division per spike. Its highest row is
 * less than a band plus a kernel's reach past oy_lo, which the ring's size covers (events_ring_rows): one wrap. */
static inline void ring_spike(const s2_projection *q, int32_t *out, int32_t i, int32_t oy_lo, int32_t at_lo,
                              int32_t ring)
{
    spike_reach r;
    if (!reach_of(q, i, &r))
        return;
    const int32_t row = q->ow * q->c_out;
    int32_t at = at_lo + (r.oy0 - oy_lo);
    at -= at >= ring ? ring : 0;
    for (int32_t ky = r.ky0; ky <= r.ky1; ky += q->stride_y) {
        add_taps(q, out + (int64_t)at * row, 1, 0, r.kernel + (int64_t)ky * q->k_w * q->c_out, r.kx0, r.kx1, r.ox0);
        at = at ? at - 1 : ring - 1;
    }
}

/* Event-driven conv: every spike adds the kernel taps of its pooled cell into the outputs they reach, in output
 * rows [oy_lo, oy_hi); out is row oy_lo's first entry. */
static void deliver_conv_events(const s2_projection *q, const s2_population *post, int32_t *out,
                                const spike_lists *sp, int32_t oy_lo, int32_t oy_hi)
{
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++)
            conv_spike(q, post->ring_planes, post->n, out, sp->idx[part][s], oy_lo, oy_hi);
}

/* A spike list cut into runs of non-decreasing pooled input row (a channel-first population lists each channel's
 * spikes row by row: c_in runs; a channel-last one: one run), so that each band of output rows finds the spikes
 * whose first output row lies in it by moving one cursor per run (bands come in row order). n = 0: more runs than
 * fit, and every band tests every spike. */
#define S2_MAX_RUNS 64
typedef struct {
    int32_t start[S2_MAX_RUNS + 1], cursor[S2_MAX_RUNS], n;
} row_runs;

static inline int32_t pooled_row(const s2_projection *q, int32_t i) { return q->pool_pos[3 * (int64_t)i + 1]; }

static void find_runs(const s2_projection *q, const int32_t *idx, int32_t count, row_runs *runs)
{
    int32_t last = INT32_MAX;
    runs->n = 0;
    for (int32_t s = 0; s < count; s++) {
        const int32_t y = pooled_row(q, idx[s]);
        if (y < last) {
            if (runs->n == S2_MAX_RUNS) {
                runs->n = 0;
                return;
            }
            runs->start[runs->n] = runs->cursor[runs->n] = s;
            runs->n++;
        }
        last = y;
    }
    runs->start[runs->n] = count;
}

/* The last pooled input row whose first output row is before output row oy (it reaches a row <= oy - 1). */
static inline int32_t last_row_before(const s2_projection *q, int32_t oy)
{
    return (oy - 1) * q->stride_y - q->pad_top + q->k_h - 1;
}

/* The spikes of idx[0..count) whose first output row lies in rows [oy_lo, oy_hi), all their taps added into the
 * ring of output rows at out (one signed plane, see events_ring_rows). Called for bands in row order. */
static void conv_events_band(const s2_projection *q, int32_t *out, const int32_t *idx, int32_t count,
                             row_runs *runs, int32_t oy_lo, int32_t oy_hi, int32_t ring)
{
    const int32_t y_done = oy_lo ? last_row_before(q, oy_lo) : INT32_MIN, y_hi = last_row_before(q, oy_hi);
    const int32_t at_lo = oy_lo % ring;
    if (!runs->n) {
        for (int32_t s = 0; s < count; s++) {
            const int32_t y = pooled_row(q, idx[s]);
            if (y > y_done && y <= y_hi)
                ring_spike(q, out, idx[s], oy_lo, at_lo, ring);
        }
        return;
    }
    for (int32_t r = 0; r < runs->n; r++) {
        int32_t s = runs->cursor[r];
        for (const int32_t end = runs->start[r + 1]; s < end && pooled_row(q, idx[s]) <= y_hi; s++)
            ring_spike(q, out, idx[s], oy_lo, at_lo, ring);
        runs->cursor[r] = s;
    }
}

/* out[l] += sign * sums[l] for l < lanes, or out[l] = sign * sums[l] into a fresh (all-zero) slot, which saves
 * reading it; the whole-vector case as a constant-length loop that vectorises. */
static inline void add_lanes(int32_t *restrict out, const int32_t *restrict sums, int32_t lanes, int32_t sign,
                             int fresh)
{
    if (lanes == 16) {
        for (int32_t l = 0; l < 16; l++)
            out[l] = (fresh ? 0 : out[l]) + sign * sums[l];
        return;
    }
    for (int32_t l = 0; l < lanes; l++)
        out[l] = (fresh ? 0 : out[l]) + sign * sums[l];
}

/* The dense conv product is blocked: P output positions times CB vectors of output channels per pass. Each
 * broadcast map word serves every channel vector and each weight vector every position, and the P x CB
 * independent accumulator chains (at least 8) hide the dot product's latency of about 5 cycles. Sixteen
 * accumulators fit AVX-512's 32 vector registers; AVX2's 16 take eight. */
#define S2_CONV_BLOCK 8
#if S2_LANES == 16
#define S2_MAX_CB 4
#else
#define S2_MAX_CB 2
#endif

/* Output positions pos .. pos+P-1 (flat oy*ow + ox; a block may span rows), channel vectors cb .. cb+CB-1 of one
 * packed plane: the dot products of their map windows with the plane's weights, added (sign +1) or subtracted
 * (-1) into out, whose first entry is position pos0's. Positions from n_pos on are computed as copies of the last
 * one and not stored. P and CB are constants at each call, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void conv_block(const s2_projection *q, const uint8_t *map,
                                                             const int8_t *plane, int32_t pos, int32_t n_pos,
                                                             int32_t cb, int CB, int P, int32_t sign, int fresh,
                                                             int32_t *out, int32_t pos0)
{
    const int32_t quads = conv_quads(q), pad = conv_out_pad(q), row = map_w(q) * q->c_in;
    const uint8_t *a[S2_CONV_BLOCK];
    int32_t oy = pos / q->ow, ox = pos % q->ow;
    for (int p = 0; p < P; p++) {
        a[p] = map + (int64_t)oy * q->stride_y * row + (int64_t)ox * q->stride_x * q->c_in;
        if (pos + p + 1 < n_pos && ++ox == q->ow) /* the next position, or the last one again */
            ox = 0, oy++;
    }
    s2_acc acc[S2_CONV_BLOCK][S2_MAX_CB];
    for (int p = 0; p < P; p++)
        for (int c = 0; c < CB; c++)
            acc[p][c] = acc_zero();
    for (int32_t ky = 0; ky < q->k_h; ky++) {
        const int8_t *w = plane + ((int64_t)ky * quads * pad + (int64_t)cb * S2_LANES) * 4;
        const int64_t at = (int64_t)ky * row;
        for (int32_t j = 0; j < quads; j++, w += 4 * pad) {
            uint32_t counts[S2_CONV_BLOCK];
            for (int p = 0; p < P; p++)
                memcpy(&counts[p], a[p] + at + 4 * j, sizeof counts[p]);
            for (int c = 0; c < CB; c++)
                for (int p = 0; p < P; p++)
                    acc[p][c] = acc_dot4(acc[p][c], counts[p], w + 4 * S2_LANES * c);
        }
    }
    for (int p = 0; p < P && pos + p < n_pos; p++)
        for (int c = 0; c < CB; c++) {
            const int32_t first = (cb + c) * S2_LANES;
            const int32_t lanes = q->c_out - first < S2_LANES ? q->c_out - first : S2_LANES;
            int32_t sums[S2_LANES];
            acc_store(sums, acc[p][c]);
            add_lanes(out + (int64_t)(pos + p - pos0) * q->c_out + first, sums, lanes, sign, fresh);
        }
}

/* The update of a fused conv's previous band of output rows (deliver_conv_fused), carried out a slice at a time
 * between the tile multiplies of the next band's product: the AMX unit works on its own, so the vector update fills
 * the time its tile stores wait for their multiplies (the two one after the other: the DVS-sized net 5-7 % slower).
 * Slices keep the neuron order, so the spikes are listed as a single pass would list them. */
typedef struct {
    const s2_population *post;
    const s2_workspace *ws;
    int32_t *in;     /* neuron lo's sum */
    int32_t lo, hi;  /* the neurons left to update */
    int sw, f64, clear;  /* clear: zero the sums as they are read (update_list) */
    int32_t *out, count;  /* the spike list (NULL: counted only) and its length */
    int32_t limit;        /* the count from which no one reads the list (list_limit): listing stops there */
} band_update;

/* Neurons per slice: about as long as the tile work between two calls (the multiplies of two position tiles).
 * Measured on the DVS-sized net at 5 %: 768-1024 gave 0.93-0.96 of the unsliced time, 256 0.96-0.97 (each slice
 * sets up the loop anew), a whole band at once 0.98. */
#define S2_UPDATE_SLICE 1024

static int32_t update_list(const s2_population *p, const s2_workspace *ws, int32_t *in, int64_t plane, int sw,
                           int32_t lo, int32_t hi, int f64, int32_t *out, int32_t count, int clear);

/* Updates the next n neurons of u (all that are left when fewer); nothing when u is NULL or done. */
static void band_update_step(band_update *u, int32_t n)
{
    if (!u || u->lo >= u->hi)
        return;
    const int32_t end = u->hi - u->lo < n ? u->hi : u->lo + n;
    u->count = update_list(u->post, u->ws, u->in, 0, u->sw, u->lo, end, u->f64, u->out, u->count, u->clear);
    u->in += end - u->lo, u->lo = end;
    if (u->count >= u->limit)
        u->out = NULL;
}

#ifdef S2_HAVE_AMX
/* The same product on the AMX tile unit: one tdpbusd multiplies the map windows of up to 16 output positions of
 * one output row (tile rows, stride_x * c_in bytes apart in the map) by one chunk of taps (tile columns) for 16
 * output channels, summing exactly in int32. Tiles 0-3 accumulate four position tiles at once (independent
 * chains, so the multiplies overlap), 4 and 6 take their map windows, 5 the weights of the chunk. One tile
 * configuration serves the whole projection: equal chunks (s2_conv_quads) and equal position tiles
 * (tile_positions); positions past a row's end are computed from the map's slack and dropped. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} s2_tile_config;

/* Accumulator T starts from the ring itself where it can (direct[T]: a whole 16-channel group, whole position
 * tiles, added with sign +1), so that its store is the whole update (from zero when the slot is fresh); otherwise
 * from zero, added after. */
#define S2_TILE_START(T)                                                                                         \
    if (nt > T) {                                                                                                \
        if (direct[T] && !fresh)                                                                                 \
            _tile_loadd(T, dst[T], 4 * q->c_out);                                                                \
        else                                                                                                     \
            _tile_zero(T);                                                                                       \
    }
#define S2_TILE_STEP(T, A)                                                                                       \
    if (nt > T) {                                                                                                \
        _tile_loadd(A, src[T] + at, step);                                                                       \
        _tile_dpbusd(T, A, 5);                                                                                   \
    }
#define S2_TILE_END(T, NT, DST)                                                                                  \
    if (NT > T)                                                                                                  \
        _tile_stored(T, direct[T] ? (void *)DST[T] : (void *)sums[T], direct[T] ? 4 * q->c_out : 64);

/* The geometry of the AMX product of output rows [oy_lo, oy_hi): position tiles (per_tile outputs of a row)
 * numbered row by row, where each starts in the map and in out (row oy_lo's first entry). */
typedef struct {
    int32_t k_h, quads, chunk, pad, per_tile, tiles_x, step, row, n_tiles, oy_lo;
} amx_plan;

/* The stacked product is the plain one on the stacked rows: one kernel row of k_w records (k_h * c_in bytes
 * each), one chunk. */
static amx_plan plan_amx(const s2_projection *q, int32_t oy_lo, int32_t oy_hi)
{
    amx_plan a;
    if (q->stacked) {
        a.k_h = 1, a.quads = a.chunk = s2_stack_quads(q->c_in, q->ow, q->k_h, q->k_w, 1, 1);
        a.step = q->k_h * q->c_in, a.row = (int32_t)stack_pitch(q->c_in, q->ow, q->k_h, q->k_w);
    } else {
        a.k_h = q->k_h, a.quads = conv_quads(q), a.chunk = a.quads / quad_chunks(q->c_in, q->k_w);
        a.step = q->stride_x * q->c_in, a.row = map_w(q) * q->c_in;
    }
    a.pad = conv_out_pad(q), a.per_tile = tile_positions(q->ow), a.tiles_x = (q->ow + a.per_tile - 1) / a.per_tile;
    a.n_tiles = (oy_hi - oy_lo) * a.tiles_x, a.oy_lo = oy_lo;
    return a;
}

/* Loads the tile shapes of conv projection q's product. One configuration serves all its calls in a tick: loading
 * it costs about 0.1 us, as much as the product of a band of a small layer (the fused path calls it per band). The
 * caller releases the tiles when done (product_end). */
static void amx_configure(const amx_plan *a)
{
    const int32_t chunk = a->chunk, per_tile = a->per_tile;
    s2_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 4; t++)
        cfg.rows[t] = (uint8_t)per_tile, cfg.colsb[t] = 64;
    cfg.rows[4] = cfg.rows[6] = (uint8_t)per_tile, cfg.colsb[4] = cfg.colsb[6] = (uint16_t)(4 * chunk);
    cfg.rows[5] = cfg.rows[7] = (uint8_t)chunk, cfg.colsb[5] = cfg.colsb[7] = 64;  /* 7: amx_group_pair's */
    /* not _tile_loadconfig: GCC's names a pointer-sized memory operand only, so the compiler may drop the stores
     * of the rest of the configuration as dead (it did once this became its own function, and the load faulted);
     * here the whole struct is the operand */
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

static inline const uint8_t *tile_src(const s2_projection *q, const amx_plan *a, const uint8_t *map, int32_t t)
{
    const int32_t oy = a->oy_lo + t / a->tiles_x, ox0 = t % a->tiles_x * a->per_tile;
    return map + (int64_t)oy * q->stride_y * a->row + (int64_t)ox0 * a->step;
}

static inline int32_t *tile_dst(const s2_projection *q, const amx_plan *a, int32_t *out, int32_t t, int32_t first)
{
    return out + ((int64_t)(t / a->tiles_x) * q->ow + t % a->tiles_x * a->per_tile) * q->c_out + first;
}

/* A tile's sums (through sums[], not direct) added into out: its valid positions, the group's lanes. */
static void add_tile(const s2_projection *q, const amx_plan *a, int32_t *dst, int32_t t, int32_t first,
                     int32_t sums[16][16], int32_t sign, int fresh)
{
    const int32_t ox0 = t % a->tiles_x * a->per_tile, valid = q->ow - ox0 < a->per_tile ? q->ow - ox0 : a->per_tile;
    const int32_t lanes = q->c_out - first < 16 ? q->c_out - first : 16;
    for (int32_t p = 0; p < valid; p++)
        add_lanes(dst + (int64_t)p * q->c_out, sums[p], lanes, sign, fresh);
}

/* One channel group (first .. first + 15) for four position tiles at a time. */
static void amx_group(const s2_projection *q, const amx_plan *a, const uint8_t *map, const int8_t *plane,
                      int32_t first, int32_t sign, int fresh, int32_t *out, band_update *later)
{
    const int32_t quads = a->quads, chunk = a->chunk, pad = a->pad, step = a->step, row = a->row;
    const int whole = sign > 0 && q->c_out - first >= 16 && q->ow % a->per_tile == 0;
    const int direct[4] = {whole, whole, whole, whole};
    int32_t sums[4][16][16];
    for (int32_t t0 = 0; t0 < a->n_tiles; t0 += 4) {
        const int32_t nt = a->n_tiles - t0 < 4 ? a->n_tiles - t0 : 4;
        const uint8_t *src[4];
        int32_t *dst[4];
        for (int32_t t = 0; t < nt; t++)
            src[t] = tile_src(q, a, map, t0 + t), dst[t] = tile_dst(q, a, out, t0 + t, first);
        S2_TILE_START(0) S2_TILE_START(1) S2_TILE_START(2) S2_TILE_START(3)
        for (int32_t ky = 0; ky < a->k_h; ky++)
            for (int32_t j = 0; j < quads; j += chunk) {
                const int64_t at = (int64_t)ky * row + 4 * j;
                _tile_loadd(5, plane + (((int64_t)ky * quads + j) * pad + first) * 4, 4 * pad);
                S2_TILE_STEP(0, 4) S2_TILE_STEP(1, 6) S2_TILE_STEP(2, 4) S2_TILE_STEP(3, 6)
            }
        band_update_step(later, S2_UPDATE_SLICE);
        S2_TILE_END(0, nt, dst) S2_TILE_END(1, nt, dst) S2_TILE_END(2, nt, dst) S2_TILE_END(3, nt, dst)
        for (int32_t t = 0; !whole && t < nt; t++)
            add_tile(q, a, dst[t], t0 + t, first, sums[t], sign, fresh);
    }
}

/* amx_group for one multiply per tile (a stacked product): the weights loaded once, and the stores of each pair
 * of accumulators issued after the other pair's multiplies. A store waits for its tile's multiply; with one
 * multiply per tile, nothing else would run during that wait (the stores were a third of such a product). */
static void amx_group_one_step(const s2_projection *q, const amx_plan *a, const uint8_t *map, const int8_t *plane,
                               int32_t first, int32_t sign, int fresh, int32_t *out, band_update *later)
{
    const int32_t step = a->step;
    const int64_t at = 0;
    const int whole = sign > 0 && q->c_out - first >= 16 && q->ow % a->per_tile == 0;
    const int direct[4] = {whole, whole, whole, whole};
    int32_t sums[4][16][16], *dst[4], *last_dst[4], last_t0 = 0, last_nt = 0;
    _tile_loadd(5, plane + (int64_t)first * 4, 4 * a->pad);
    for (int32_t t0 = 0; t0 < a->n_tiles; t0 += 4) {
        const int32_t nt = a->n_tiles - t0 < 4 ? a->n_tiles - t0 : 4;
        const uint8_t *src[4];
        for (int32_t t = 0; t < nt; t++)
            src[t] = tile_src(q, a, map, t0 + t), dst[t] = tile_dst(q, a, out, t0 + t, first);
        S2_TILE_START(0) S2_TILE_START(1) S2_TILE_STEP(0, 4) S2_TILE_STEP(1, 6)
        S2_TILE_END(2, last_nt, last_dst) S2_TILE_END(3, last_nt, last_dst)
        for (int32_t t = 2; !whole && t < last_nt; t++)
            add_tile(q, a, last_dst[t], last_t0 + t, first, sums[t], sign, fresh);
        band_update_step(later, S2_UPDATE_SLICE);
        S2_TILE_START(2) S2_TILE_START(3) S2_TILE_STEP(2, 4) S2_TILE_STEP(3, 6)
        S2_TILE_END(0, nt, dst) S2_TILE_END(1, nt, dst)
        for (int32_t t = 0; !whole && t < nt && t < 2; t++)
            add_tile(q, a, dst[t], t0 + t, first, sums[t], sign, fresh);
        memcpy(last_dst, dst, sizeof dst), last_t0 = t0, last_nt = nt;
        band_update_step(later, S2_UPDATE_SLICE);
    }
    S2_TILE_END(2, last_nt, last_dst) S2_TILE_END(3, last_nt, last_dst)
    for (int32_t t = 2; !whole && t < last_nt; t++)
        add_tile(q, a, last_dst[t], last_t0 + t, first, sums[t], sign, fresh);
}

/* Two channel groups (first .. first + 31, the second possibly partial) for two position tiles at a time: each map
 * tile loaded once for both groups' weights (tiles 5 and 7), against once per group in amx_group; the map tiles
 * are the costly loads (their rows, stride_x * c_in bytes apart, often cross a cache line). Accumulators: 0 and 1
 * the first position tile's two groups, 2 and 3 the second's. */
static void amx_group_pair(const s2_projection *q, const amx_plan *a, const uint8_t *map, const int8_t *plane,
                           int32_t first, int32_t sign, int fresh, int32_t *out, band_update *later)
{
    const int32_t quads = a->quads, chunk = a->chunk, pad = a->pad, step = a->step, row = a->row;
    const int whole = sign > 0 && q->ow % a->per_tile == 0, second_whole = q->c_out - first >= 32;
    int32_t sums[4][16][16];
    for (int32_t t0 = 0; t0 < a->n_tiles; t0 += 2) {
        const int32_t nt = a->n_tiles - t0 < 2 ? 2 : 4;  /* accumulators in use */
        const uint8_t *src[2] = {tile_src(q, a, map, t0), nt > 2 ? tile_src(q, a, map, t0 + 1) : NULL};
        int32_t *dst[4];
        int direct[4];
        for (int32_t c = 0; c < nt; c++) {
            dst[c] = tile_dst(q, a, out, t0 + c / 2, first + 16 * (c % 2));
            direct[c] = whole && (c % 2 == 0 || second_whole);
        }
        S2_TILE_START(0) S2_TILE_START(1) S2_TILE_START(2) S2_TILE_START(3)
        /* each tile loaded for the next step right after its last multiply of this one, not before the next
         * step's first: the tiles have no renaming, so a load waits for the multiplies that read the tile
         * before (paired runs: 0.97-0.98 of the time on both benchmark nets at 5 and 20 % input) */
        _tile_loadd(5, plane + (int64_t)first * 4, 4 * pad);
        _tile_loadd(7, plane + (int64_t)first * 4 + 64, 4 * pad);
        _tile_loadd(4, src[0], step);
        if (nt > 2)
            _tile_loadd(6, src[1], step);
        for (int32_t ky = 0, j = 0;;) {
            const int32_t next_j = j + chunk < quads ? j + chunk : 0, next_ky = next_j ? ky : ky + 1;
            const int more = next_ky < a->k_h;
            const int64_t at = (int64_t)next_ky * row + 4 * next_j;
            const int8_t *w = plane + (((int64_t)next_ky * quads + next_j) * pad + first) * 4;
            _tile_dpbusd(0, 4, 5);
            _tile_dpbusd(1, 4, 7);
            if (more)
                _tile_loadd(4, src[0] + at, step);
            if (nt > 2)
                _tile_dpbusd(2, 6, 5);
            if (more)
                _tile_loadd(5, w, 4 * pad);
            if (nt > 2)
                _tile_dpbusd(3, 6, 7);
            if (!more)
                break;
            _tile_loadd(7, w + 64, 4 * pad);
            if (nt > 2)
                _tile_loadd(6, src[1] + at, step);
            ky = next_ky, j = next_j;
        }
        band_update_step(later, S2_UPDATE_SLICE);
        S2_TILE_END(0, nt, dst) S2_TILE_END(1, nt, dst) S2_TILE_END(2, nt, dst) S2_TILE_END(3, nt, dst)
        for (int32_t c = 0; c < nt; c++)
            if (!direct[c])
                add_tile(q, a, dst[c], t0 + c / 2, first + 16 * (c % 2), sums[c], sign, fresh);
    }
}

/* Ring plane pl's product, its tiles configured (amx_configure): channel groups two at a time, a last odd one
 * alone. With a stacked kernel, map is the stacked rows (stack_rows). */
static void conv_planes_amx(const s2_projection *q, const amx_plan *plan, const uint8_t *map, int32_t pl,
                            int32_t oy_lo, int32_t oy_hi, int32_t sign, int fresh, int32_t *out,
                            band_update *later)  /* out: row oy_lo's first entry */
{
    amx_plan a = *plan;
    a.n_tiles = (oy_hi - oy_lo) * a.tiles_x, a.oy_lo = oy_lo;
    const int8_t *plane = (q->stacked ? q->stacked : q->packed) + (int64_t)pl * a.k_h * a.quads * a.pad * 4;
    if (q->stacked)  /* output row oy reads stacked row oy + k_h - 1 */
        map += (int64_t)(q->k_h - 1) * a.row;
    int32_t first = 0;
    for (; q->c_out - first > 16; first += 32)
        amx_group_pair(q, &a, map, plane, first, sign, fresh, out, later);
    if (first < q->c_out && a.k_h == 1 && a.quads == a.chunk)
        amx_group_one_step(q, &a, map, plane, first, sign, fresh, out, later);
    else if (first < q->c_out)
        amx_group(q, &a, map, plane, first, sign, fresh, out, later);
}
#endif

double s2_amx_multiply_ns(int32_t n)
{
#ifdef S2_HAVE_AMX
    if (n < 1 || !s2_amx_enable())
        return 0.0;
    s2_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 6; t++)
        cfg.rows[t] = 16, cfg.colsb[t] = 64;
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
    _tile_zero(4);
    _tile_zero(5);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < n; i += 4) {  /* four accumulators: the multiplies' throughput, not their latency */
        _tile_dpbusd(0, 4, 5);
        _tile_dpbusd(1, 4, 5);
        _tile_dpbusd(2, 4, 5);
        _tile_dpbusd(3, 4, 5);
    }
    int32_t sink[16][16];
    _tile_stored(0, sink, 64);  /* waits for accumulator 0's last multiply; the other three end with it */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    _tile_release();
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)((n + 3) / 4 * 4);
#else
    (void)n;
    return 0.0;
#endif
}

static inline void product_end(int amx)
{
#ifdef S2_HAVE_AMX
    if (amx)
        _tile_release();
#else
    (void)amx;
#endif
}

/* Dense conv: count the spikes into the pooled map, then compute every output as a dot product over its window
 * (an implicit im2col: the window of one kernel row is k_w * c_in contiguous map bytes). Costs the same whatever
 * the activity, so it wins over the event-driven path in busy ticks. Plane 1 (exc and inh apart) holds the
 * negative weights, whose sum goes into the inh plane as a magnitude. */
/* The pooled map from a channel-last pre population's spike flags (still last tick's: in one thread, delivery
 * precedes the update), 64 or 16 channels per vector add (c_in a multiple of 16). A 2 x 2 pool of 16 or 32 channels
 * sums whole vectors in registers (pair_columns). Otherwise a pooled row's pool_y input rows are summed first, 64
 * bytes at a time, into a line buffer (a segment of at most S2_POOL_LINE bytes at a time), then each map cell adds
 * its pool_x pixels from it: pool_x loads per cell instead of pool_y * (pool_x + 1) loads and pool_y stores. Rows
 * and columns past the map are read by no output and skipped. Counts stay exact: a pooled cell collects at most
 * 127 spikes (lowering's MAX_POOL_COUNT). */
typedef uint8_t s2_bytes16 __attribute__((vector_size(16)));
typedef uint8_t s2_bytes64 __attribute__((vector_size(64)));
#define S2_POOL_LINE 4096

/* line[0..bytes) = the sum of the rows in[0..), in[stride..), ... (rows of them). */
static void sum_rows(uint8_t *restrict line, const uint8_t *restrict in, int64_t stride, int32_t rows, int64_t bytes)
{
    int64_t b = 0;
    for (; b + 64 <= bytes; b += 64) {
        s2_bytes64 acc, part;
        memcpy(&acc, in + b, 64);
        for (int32_t r = 1; r < rows; r++) {
            memcpy(&part, in + r * stride + b, 64);
            acc += part;
        }
        memcpy(line + b, &acc, 64);
    }
    for (; b < bytes; b++) {  /* a tail of at most 48 bytes */
        uint8_t acc = in[b];
        for (int32_t r = 1; r < rows; r++)
            acc = (uint8_t)(acc + in[r * stride + b]);
        line[b] = acc;
    }
}

/* out[x] = line[2x] + line[2x+1] for map cells x < n of c_in 16 or 32 counts (the common 2 x 2 sum-pool), where
 * line is the sum of the rows in[0..), in[stride..), ... (rows of them): 64 bytes of output from 128 of each row
 * by vector adds, two 64-bit-lane permutes and one add, instead of a 16-byte add per channel block and column
 * (whose loop overhead made pooling 5 % of a DVS-sized net), and without a line buffer between the two steps (a
 * store and a masked load of it right after per vector; 0.99-1.00 of the time, paired runs, so about the same).
 * Returns 0 (nothing done) for other shapes or without AVX-512. */
static int pair_columns(uint8_t *out, const uint8_t *in, int64_t stride, int32_t rows, int32_t pool_x, int32_t c_in,
                        int32_t n)
{
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if (pool_x != 2 || (c_in != 16 && c_in != 32))
        return 0;
    /* in 16-byte units of the two vectors (0-3, 4-7), the output's units take u[first] + u[second] */
    const __m512i first = c_in == 16 ? _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0)
                                      : _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
    const __m512i second = c_in == 16 ? _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2)
                                       : _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
    const int64_t bytes = (int64_t)n * c_in;
    for (int64_t o = 0; o < bytes; o += 64) {
        const int64_t left = bytes - o;  /* a multiple of 16 */
        const __mmask64 lo = left >= 32 ? ~0ull : (1ull << (2 * left)) - 1;
        const __mmask64 hi = left >= 64 ? ~0ull : left <= 32 ? 0 : (1ull << (2 * left - 64)) - 1;
        const __mmask64 keep = left >= 64 ? ~0ull : (1ull << left) - 1;
        __m512i a = _mm512_maskz_loadu_epi8(lo, in + 2 * o), b = _mm512_maskz_loadu_epi8(hi, in + 2 * o + 64);
        for (int32_t r = 1; r < rows; r++) {
            a = _mm512_add_epi8(a, _mm512_maskz_loadu_epi8(lo, in + r * stride + 2 * o));
            b = _mm512_add_epi8(b, _mm512_maskz_loadu_epi8(hi, in + r * stride + 2 * o + 64));
        }
        const __m512i sum =
            _mm512_add_epi8(_mm512_permutex2var_epi64(a, first, b), _mm512_permutex2var_epi64(a, second, b));
        _mm512_mask_storeu_epi8(out + o, keep, sum);
    }
    return 1;
#else
    (void)out, (void)in, (void)stride, (void)rows, (void)pool_x, (void)c_in, (void)n;
    return 0;
#endif
}

/* out[0..w) = the sum over dx < pool_x of cell[dx * c_in ..][0..w), one add of a w-byte vector T per pixel;
 * instantiated for 16 and 64 bytes. */
#define S2_DEFINE_POOL_CHANNELS(NAME, T)                                                                        \
    static inline void NAME(uint8_t *out, const uint8_t *cell, int32_t pool_x, int32_t c_in)                     \
    {                                                                                                            \
        T sum, part;                                                                                             \
        memcpy(&sum, cell, sizeof sum);                                                                          \
        for (int32_t dx = 1; dx < pool_x; dx++) {                                                                \
            memcpy(&part, cell + (int64_t)dx * c_in, sizeof part);                                               \
            sum += part;                                                                                         \
        }                                                                                                        \
        memcpy(out, &sum, sizeof sum);                                                                           \
    }
S2_DEFINE_POOL_CHANNELS(pool_channels16, s2_bytes16)
S2_DEFINE_POOL_CHANNELS(pool_channels64, s2_bytes64)

/* One map cell from the line: 64 channels per vector add where there are 64 left, then 16 (c_in is a multiple of
 * 16). */
static inline void pool_cell(uint8_t *out, const uint8_t *cell, int32_t pool_x, int32_t c_in)
{
    int32_t c = 0;
    for (; c + 64 <= c_in; c += 64)
        pool_channels64(out + c, cell + c, pool_x, c_in);
    for (; c < c_in; c += 16)
        pool_channels16(out + c, cell + c, pool_x, c_in);
}

static void pool_flags(const s2_projection *q, const uint8_t *flags, uint8_t *map)
{
    const int32_t c_in = q->c_in, mw = map_w(q), mh = map_h(q), cell = q->pool_x * c_in;
    const int32_t cols = q->pw < mw - q->pad_left ? q->pw : mw - q->pad_left;
    const int32_t seg = S2_POOL_LINE / cell;  /* map columns per segment (fill_map: cell <= S2_POOL_LINE) */
    const int64_t line_bytes = (int64_t)q->pw * cell;
    uint8_t line[S2_POOL_LINE] __attribute__((aligned(64)));
    for (int32_t y = 0; y < q->ph && y + q->pad_top < mh; y++) {
        const uint8_t *in = flags + (int64_t)y * q->pool_y * line_bytes;
        uint8_t *row = map + ((int64_t)(y + q->pad_top) * mw + q->pad_left) * c_in;
        if (pair_columns(row, in, line_bytes, q->pool_y, q->pool_x, c_in, cols))
            continue;
        for (int32_t x0 = 0; x0 < cols; x0 += seg) {
            const int32_t n = cols - x0 < seg ? cols - x0 : seg;
            sum_rows(line, in + (int64_t)x0 * cell, line_bytes, q->pool_y, (int64_t)n * cell);
            for (int32_t x = 0; x < n; x++)
                pool_cell(row + (int64_t)(x0 + x) * c_in, line + (int64_t)x * cell, q->pool_x, c_in);
        }
    }
}

/* Whether the dense product's map is pooled from the pre's spike flags rather than counted from its spike list
 * (not in a split sample: there another thread may already be updating, rewriting, the pre's flags). */
static inline int map_from_flags(const s2_projection *q, const s2_workspace *ws)
{
    return q->pre_channel_last && q->c_in % 16 == 0 && ws->n_threads == 1 && q->pool_x * q->c_in <= S2_POOL_LINE;
}

#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
static const uint8_t s2_interleave32[64] = {  /* byte j from byte j / 2 of the low half (j even) or the high half */
    0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42,
    11, 43, 12, 44, 13, 45, 14, 46, 15, 47, 16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53,
    22, 54, 23, 55, 24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
#endif

/* The map from an input population's row of 0/1 flags in (c, y, x) order (map_planes, see s2sim.h): each map row
 * is its channel rows interleaved, 32 columns per byte permute, rather than one count per spike through cell[]
 * (paired runs: the DVS-sized net at 20 % input 0.92 of the time, the 2x64x64 net 0.95; at 5 % no change). */
static void planes_to_map(const s2_projection *q, const uint8_t *in, uint8_t *map)
{
    const int32_t c_in = q->c_in, mw = map_w(q), plane = q->ph * q->pw;
    const int32_t cols = q->pw < mw - q->pad_left ? q->pw : mw - q->pad_left;
    const int32_t rows = q->ph < map_h(q) - q->pad_top ? q->ph : map_h(q) - q->pad_top;
    for (int32_t y = 0; y < rows; y++) {
        const uint8_t *a = in + (int64_t)y * q->pw;
        uint8_t *out = map + ((int64_t)(y + q->pad_top) * mw + q->pad_left) * c_in;
        if (c_in == 1) {
            memcpy(out, a, (size_t)cols);
            continue;
        }
        int32_t x = 0;
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
        const __m512i pairs = _mm512_loadu_si512((const void *)s2_interleave32);
        for (; x < cols; x += 32) {  /* channel 0's columns in the low half, channel 1's in the high half */
            const int32_t n = cols - x < 32 ? cols - x : 32;
            const __mmask64 m = (1ull << n) - 1;
            const __m512i both = _mm512_mask_loadu_epi8(_mm512_maskz_loadu_epi8(m, a + x), m << 32, a + plane + x - 32);
            _mm512_mask_storeu_epi8(out + 2 * x, n == 32 ? ~0ull : (1ull << 2 * n) - 1,
                                    _mm512_permutexvar_epi8(pairs, both));
        }
#endif
        for (; x < cols; x++)
            out[2 * x] = a[x], out[2 * x + 1] = a[plane + x];
    }
}

/* Counts this tick's spikes of the pre population into the map (see s2sim.h). */
static void fill_map(const s2_projection *q, const s2_population *pre, const s2_workspace *ws, const spike_lists *sp,
                     uint8_t *map)
{
    if (map_from_flags(q, ws)) {
        pool_flags(q, ws->flags + pre->state_offset, map);
        return;
    }
    if (q->map_planes && sp->row) {
        planes_to_map(q, sp->row, map);
        return;
    }
    for (int32_t part = 0; part < sp->parts; part++)
        for (int32_t s = 0; s < sp->n[part]; s++) {
            const int32_t c = q->cell[sp->idx[part][s]];
            if (c >= 0)
                map[c]++;
        }
}

/* Where the stacked rows (s2sim.h) take each tick's new map row: in vector v of a row, mask[v] marks every
 * record's last slot and off[v] is the first map byte of the row that they take. The same for every row and tick:
 * they are worked out once per sample (find_last_slots, about 1 % of the DVS-sized net's time when it was once per
 * tick) into the projection's slice of conv_map, after the stacked rows. */
typedef struct {
    uint8_t *rows;  /* the stacked rows, in the workspace after the map */
    const uint64_t *mask;
    const int32_t *off;
} stack_masks;

static inline int32_t stack_vectors(const s2_projection *q)
{
    return (int32_t)stack_pitch(q->c_in, q->ow, q->k_h, q->k_w) / 64;
}

static inline uint64_t *slot_masks(const s2_projection *q, uint8_t *map)
{
    return (uint64_t *)(map + masks_offset(q->c_in, q->oh, q->ow, q->k_h, q->k_w, q->stride_x, q->stride_y));
}

static inline stack_masks stack_masks_of(const s2_projection *q, uint8_t *map)
{
    const uint64_t *mask = slot_masks(q, map);
    const stack_masks sm = {map + stack_offset(q), mask, (const int32_t *)(mask + stack_vectors(q))};
    return sm;
}

#ifdef S2_HAVE_STACK
static const uint8_t s2_iota64[64] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static void find_last_slots(const s2_projection *q, uint8_t *map)
{
    const int32_t c_in = q->c_in, rec = q->k_h * c_in, bytes = map_w(q) * rec, nv = stack_vectors(q);
    uint64_t *mask = slot_masks(q, map);
    int32_t *off = (int32_t *)(mask + nv);
    for (int32_t v = 0, taken = 0; v < nv; v++) {
        const int32_t lo = 64 * v, hi = bytes < lo + 64 ? bytes : lo + 64;
        uint64_t m = 0;
        for (int32_t b = lo / rec * rec + rec - c_in; b < hi; b += rec) {  /* the last slots reaching [lo, hi) */
            const int32_t from = (b < lo ? lo : b) - lo, to = (b + c_in < hi ? b + c_in : hi) - lo;
            m |= (to == 64 ? ~0ull : (1ull << to) - 1) & ~((1ull << from) - 1);
        }
        mask[v] = m, off[v] = taken, taken += __builtin_popcountll(m);
    }
}

/* The stacked rows that output rows [oy_lo, oy_hi) read, from the map, whose rows they interleave: row r is row
 * r-1 moved down one slot (c_in bytes, a byte permute across two vectors) with map row r's counts expanded into
 * every record's last slot. Built from the row before rather than from k_h map rows: two permutes per vector
 * instead of k_h expands. Continuing, the rows up to oy_lo + k_h - 2 are built (the band before); otherwise the
 * recurrence starts from zeros at row oy_lo, whose first k_h - 1 rows (not read) then miss their top slots. Built
 * band by band so that the product reads them while they are in L1. */
static void stack_rows(const s2_projection *q, const uint8_t *map, const stack_masks *sm, int32_t oy_lo,
                       int32_t oy_hi, int continuing)
{
    const int32_t c_in = q->c_in, map_row = map_w(q) * c_in;
    const int32_t pitch = (int32_t)stack_pitch(c_in, q->ow, q->k_h, q->k_w), nv = stack_vectors(q);
    const int32_t r_from = continuing ? oy_lo + q->k_h - 1 : oy_lo, r_to = oy_hi + q->k_h - 1;
    uint8_t *st = sm->rows;
    const __m512i down = _mm512_add_epi8(_mm512_loadu_si512((const void *)s2_iota64), _mm512_set1_epi8((char)c_in));
    for (int32_t r = r_from; r < r_to; r++) {
        const int zero = r == r_from && !continuing;
        const uint8_t *prev = st + (int64_t)(r - 1) * pitch, *row = map + (int64_t)r * map_row;
        uint8_t *cur = st + (int64_t)r * pitch;
        __m512i lo = zero ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)prev);
        for (int32_t v = 0; v < nv; v++) {
            const __m512i hi = !zero && v + 1 < nv ? _mm512_loadu_si512((const void *)(prev + 64 * (v + 1)))
                                                   : _mm512_setzero_si512();
            const __m512i moved = _mm512_permutex2var_epi8(lo, down, hi);
            _mm512_storeu_si512((void *)(cur + 64 * v),
                                _mm512_mask_expandloadu_epi8(moved, sm->mask[v], row + sm->off[v]));
            lo = hi;
        }
    }
}
#endif

/* What the bands of a tick's dense product share: where the stacked rows take their counts, and the AMX plan (its
 * geometry, worked out once per tick rather than per band: its divisions were about 1 % of the DVS-sized net's
 * time; each band sets its own rows). */
typedef struct {
    stack_masks sm;
#ifdef S2_HAVE_AMX
    amx_plan amx;
#endif
} product_setup;

/* Starts a tick's dense product of one projection: the map of this tick's counts, what its bands share and, when
 * amx, the tile configuration (released by product_end). */
static void product_begin(const s2_projection *q, const s2_population *pre, const s2_workspace *ws,
                          const spike_lists *sp, uint8_t *map, int amx, product_setup *ps)
{
    fill_map(q, pre, ws, sp, map);
#ifdef S2_HAVE_STACK
    if (amx && q->stacked)
        ps->sm = stack_masks_of(q, map);
#endif
#ifdef S2_HAVE_AMX
    if (amx) {
        ps->amx = plan_amx(q, 0, 0);
        amx_configure(&ps->amx);
    }
#else
    (void)amx, (void)ps;
#endif
}

/* The dense product of output rows [oy_lo, oy_hi) for each ring plane (planes apart by plane entries) into out,
 * whose first entry is row oy_lo's; between product_begin and product_end. */
static void conv_product(const s2_projection *q, const uint8_t *map, int32_t planes, int32_t oy_lo, int32_t oy_hi,
                         int fresh, int amx, int32_t *out, int64_t plane_stride, const product_setup *ps,
                         int continuing, band_update *later)
{
#ifdef S2_HAVE_STACK
    if (amx && q->stacked)
        stack_rows(q, map, &ps->sm, oy_lo, oy_hi, continuing);
#else
    (void)ps, (void)continuing;
#endif
    const int64_t plane_size = (int64_t)q->k_h * conv_quads(q) * conv_out_pad(q) * 4;
    const int32_t pos_lo = oy_lo * q->ow, n_pos = oy_hi * q->ow, n_cb = (q->c_out + S2_LANES - 1) / S2_LANES;
    for (int32_t pl = 0; pl < planes; pl++) {
        const int8_t *plane = q->packed + pl * plane_size;
        int32_t *dst = out + pl * plane_stride;
        const int32_t sign = pl ? -1 : 1;
#ifdef S2_HAVE_AMX
        if (amx) {
            conv_planes_amx(q, &ps->amx, q->stacked ? ps->sm.rows : map, pl, oy_lo, oy_hi, sign, fresh, dst, later);
            continue;
        }
#endif
        int32_t cb = 0;
        for (; cb + S2_MAX_CB <= n_cb; cb += S2_MAX_CB)
            for (int32_t pos = pos_lo; pos < n_pos; pos += 4)
                conv_block(q, map, plane, pos, n_pos, cb, S2_MAX_CB, 4, sign, fresh, dst, pos_lo);
        for (; cb < n_cb; cb++)
            for (int32_t pos = pos_lo; pos < n_pos; pos += S2_CONV_BLOCK)
                conv_block(q, map, plane, pos, n_pos, cb, 1, S2_CONV_BLOCK, sign, fresh, dst, pos_lo);
    }
}

static void clear_map(const s2_projection *q, uint8_t *map)
{
    memset(map, 0, (size_t)map_h(q) * map_w(q) * q->c_in);
}

static void deliver_conv_dense(const s2_projection *q, const s2_population *pre, const s2_population *post,
                               const s2_workspace *ws, int32_t *slot, const spike_lists *sp, int32_t oy_lo,
                               int32_t oy_hi, int fresh, int amx)
{
    uint8_t *map = ws->conv_map + q->map_offset;
    product_setup ps;
    product_begin(q, pre, ws, sp, map, amx, &ps);
    conv_product(q, map, post->ring_planes, oy_lo, oy_hi, fresh, amx, slot + (int64_t)oy_lo * q->ow * q->c_out,
                 post->n, &ps, 0, NULL);
    product_end(amx);
    clear_map(q, map);
}

/* A conv projection takes the cheaper of its two paths for this tick's spike count (lowering's cost model sets
 * dense_from); both give the same sums. A thread of a split sample computes its own output rows (its range is
 * cut at whole rows: the target's grain). Returns the synaptic events when count is set (else 0). */
static int64_t deliver_conv(const s2_projection *q, const s2_population *pre, const s2_population *post,
                            const s2_workspace *ws, const spike_lists *sp, span r, int32_t tick, int amx, int count)
{
    int32_t *slot = ring_slot(ws, post, tick);
    const int32_t row = q->ow * q->c_out, oy_lo = r.lo / row, oy_hi = (r.hi + row - 1) / row;
    uint8_t *state = slot_state(ws, q->post, post, tick);
    /* no input in the slot yet this tick (it is clean or stale): the dense product overwrites it whole */
    const int fresh = *state == S2_SLOT_CLEAN || *state == S2_SLOT_STALE;
    if (sp->total >= q->dense_from) {
        deliver_conv_dense(q, pre, post, ws, slot, sp, oy_lo, oy_hi, fresh, amx);
        *state = *state == S2_SLOT_INPUT ? S2_SLOT_INPUT : S2_SLOT_FULL;
    } else {
        prepare_slot(ws, q->post, post, tick, r);
        deliver_conv_events(q, post, slot + (int64_t)oy_lo * row, sp, oy_lo, oy_hi);
        mark_dirty(ws, q->post, post, tick);
    }
    return count ? row_events(sp, NULL, NULL, q->pre_events) : 0;
}

/* The stack buffer of a fused conv update (int32 sums), and the neurons it takes at a time (whole output rows). */
#define S2_FUSED_MAX 8192
#define S2_FUSED_BAND 2048
/* dirty[8 * k + S2_FUSED_MARK] of a one-slot population k (its slot state uses dirty[8 * k] only): set when its
 * update was fused into this tick's delivery, so phase 2 only records it. */
#define S2_FUSED_MARK 7

/* Output rows per band of a fused update: whole rows, S2_FUSED_BAND sums or one row. */
static inline int32_t fused_band(const s2_projection *q)
{
    const int32_t row = q->ow * q->c_out;
    return row >= S2_FUSED_BAND ? 1 : S2_FUSED_BAND / row;
}

/* The fused event path adds each spike's taps once, when the band holding its first output row comes, into a
 * ring of output rows in the stack buffer: whole bands, enough to hold the ceil(k_h / stride_y) rows a spike
 * reaches from any row of the band. Its rows (0: too many for the buffer, and the path stays unfused). */
static inline int32_t events_ring_rows(const s2_projection *q)
{
    const int32_t band = fused_band(q), reach = (q->k_h + q->stride_y - 1) / q->stride_y;
    const int64_t rows = (int64_t)band * (1 + (reach - 1 + band - 1) / band);
    return rows * q->ow * q->c_out <= S2_FUSED_MAX ? (int32_t)rows : 0;
}

/* Whether conv projection k may update its target band by band as it delivers (deliver_conv_fused, on either
 * path), so the sums never go through the ring: k is the target's only input (one signed plane, one slot), one
 * thread runs the sample, a row of sums fits the stack buffer, and every projection from the target (which may
 * read its spike flags) is delivered before k in the tick (deliver_all goes from the last projection to the
 * first). */
static int fusable(const s2_network *net, const s2_workspace *ws, int32_t k)
{
    const s2_projection *q = &net->projs[k];
    const s2_population *post = &net->pops[q->post];
    if (ws->n_threads != 1 || post->kind != S2_KIND_LIF || post->ring_planes != 1 || post->ring_slots != 1 ||
        q->pre == q->post || (int64_t)q->ow * q->c_out > S2_FUSED_MAX)
        return 0;
    for (int32_t j = 0; j < net->n_projs; j++) {
        const s2_projection *o = &net->projs[j];
        if ((j != k && o->post == q->post) || (o->pre == q->post && j < k))
            return 0;
    }
    return 1;
}

static void deliver_conv_fused(const s2_network *net, const s2_workspace *ws, const s2_pop_io *io,
                               const spike_lists *sp, int32_t k);

/* Phase 1, from the last projection to the first (integer sums: the order changes no result; see fusable). */
static void deliver_all(const s2_network *net, const s2_workspace *ws, const s2_pop_io *io, int64_t b,
                        int32_t n_ticks, int32_t tick)
{
    for (int32_t k = net->n_projs - 1; k >= 0; k--) {
        const s2_projection *q = &net->projs[k];
        const s2_population *post = &net->pops[q->post];
        spike_lists sp = previous_spikes(net, ws, q->pre);
        if (!sp.total)
            continue;
        if (net->pops[q->pre].kind == S2_KIND_INPUT)  /* a spike last tick: tick > 0 */
            sp.row = io[q->pre].input + (b * n_ticks + tick - 1) * net->pops[q->pre].n;
        const span r = own_span(post, ws);
        const int count = io[q->post].rec_counts && ws->thread == 0;  /* events: thread 0, when recorded */
        int64_t events = 0;
        if (q->kind == S2_PROJ_CONV && fusable(net, ws, k) &&
            (sp.total >= q->dense_from || events_ring_rows(q))) {
            deliver_conv_fused(net, ws, io, &sp, k);
            events = count ? row_events(&sp, NULL, NULL, q->pre_events) : 0;
        } else if (q->kind == S2_PROJ_CONV) {
            events = deliver_conv(q, &net->pops[q->pre], post, ws, &sp, r, tick, (net->flags & S2_FLAG_AMX) != 0,
                                  count);
        } else {
            if (q->kind == S2_PROJ_SPARSE)
                deliver_sparse(q, post, ws, &sp, r, tick);
            else
                deliver_dense(q, post, ws, &sp, r, tick);
            if (count)
                events = row_events(&sp, q->kind == S2_PROJ_SPARSE ? q->row_ptr : NULL, q->row_nnz, NULL);
        }
        if (count)
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
 * value instead of streaming an array), whether the ring slot holds any input, and a uniform i_offset (one value
 * for all neurons: conv layers). The update streams from L2, so every array it need not read counts. */
#define S2_SW_FUSED 1
#define S2_SW_STRICT 2
#define S2_SW_UNIFORM 4
#define S2_SW_INPUT 8
#define S2_SW_UNIFORM_OFFSET 16
#define S2_SW_CASES16(F, B) F(B + 0) F(B + 1) F(B + 2) F(B + 3) F(B + 4) F(B + 5) F(B + 6) F(B + 7) F(B + 8) \
    F(B + 9) F(B + 10) F(B + 11) F(B + 12) F(B + 13) F(B + 14) F(B + 15)
#define S2_SW_CASES(F) S2_SW_CASES16(F, 0) S2_SW_CASES16(F, 16)
/* The rare variants: the currents rounded the other way from V, the other two input groupings (i_offset after the
 * leak, (V*alpha + syn) + i_offset; left to right, ((V*alpha + E) - I) + i_offset), flush-to-zero, and no spike
 * while refractory. */
#define S2_SW_CURRENT_FLIP 32
#define S2_SW_LEFT_TO_RIGHT 64
#define S2_SW_FTZ 128
#define S2_SW_REFRAC_NO_SPIKE 256
#define S2_SW_LEAK_FIRST 512
#define S2_SW_RARE (S2_SW_CURRENT_FLIP | S2_SW_LEFT_TO_RIGHT | S2_SW_FTZ | S2_SW_REFRAC_NO_SPIKE | S2_SW_LEAK_FIRST)

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
    /* One ring entry. The slot is not cleared after it is read: it turns stale, and the next delivery into it  \
     * either overwrites it (the dense conv product) or clears it first (see prepare_slot). A slot without input  \
     * reads as zero sums: (0 - 0) + i_offset, the same arithmetic without the loads. */                         \
    static inline __attribute__((always_inline)) T ring_in_##SUF(const int32_t *plane, int32_t i, int sw)        \
    {                                                                                                            \
        return (sw & S2_SW_INPUT) ? (T)plane[i] : (T)0;                                                          \
    }                                                                                                            \
                                                                                                                 \
    static inline __attribute__((always_inline)) T offset_##SUF(const s2_population *p, int32_t i, int sw)       \
    {                                                                                                            \
        return (T)p->i_offset[(sw & S2_SW_UNIFORM_OFFSET) ? 0 : i];                                               \
    }                                                                                                            \
                                                                                                                 \
    /* Neurons [lo, hi) of a population; v and flag point at its neuron 0, in at neuron lo's input (plane 0;     \
     * plane 1 is plane entries further on). */                                                                  \
    static inline __attribute__((always_inline)) void lif_##SUF(const s2_population *p, T *restrict v,           \
                                                                const int32_t *restrict in, int64_t plane,       \
                                                                uint8_t *restrict flag, int32_t lo, int32_t hi,  \
                                                                int sw)                                          \
    {                                                                                                            \
        const int split = sw & S2_SW_LEFT_TO_RIGHT; /* exc and inh planes apart (else one signed plane) */       \
        const int32_t *restrict inh = in + plane;                                                                \
        for (int32_t i = lo; i < hi; i++) {                                                                      \
            const int32_t j = (sw & S2_SW_UNIFORM) ? 0 : i;                                                      \
            T x = step_##SUF(v[i], (T)p->alpha_decay[j], ring_in_##SUF(in, i - lo, sw),                          \
                             split ? ring_in_##SUF(inh, i - lo, sw) : (T)0, offset_##SUF(p, i, sw), sw);         \
            flag[i] = (uint8_t)fire_##SUF(p, j, &x, 1, sw);                                                      \
            v[i] = x;                                                                                            \
        }                                                                                                        \
    }                                                                                                            \
                                                                                                                 \
    /* While refrac > 0 the update only counts down and holds V; the threshold test still runs on the held V     \
     * unless the rule is REFRAC_NO_SPIKE. The currents integrate either way (their update comes first). */      \
    static inline __attribute__((always_inline)) void curr_exp_##SUF(                                            \
        const s2_population *p, T *restrict v, T *restrict ie, T *restrict ii, int32_t *restrict refrac,         \
        const int32_t *restrict in, int64_t plane, uint8_t *restrict flag, int32_t lo, int32_t hi, int sw)       \
    {                                                                                                            \
        const int32_t *restrict inh = in + plane;                                                                \
        const int fused_i = ((sw & S2_SW_FUSED) != 0) ^ ((sw & S2_SW_CURRENT_FLIP) != 0);                        \
        for (int32_t i = lo; i < hi; i++) {                                                                      \
            const int32_t j = (sw & S2_SW_UNIFORM) ? 0 : i;                                                      \
            ie[i] = mac_##SUF(ie[i], (T)p->exc_decay[j], ring_in_##SUF(in, i - lo, sw), fused_i, sw);            \
            ii[i] = mac_##SUF(ii[i], (T)p->inh_decay[j], ring_in_##SUF(inh, i - lo, sw), fused_i, sw);           \
            const int32_t ref = refrac[i] > 0;                                                                   \
            const T stepped = step_##SUF(v[i], (T)p->alpha_decay[j], ie[i], ii[i], offset_##SUF(p, i, sw), sw);  \
            T x = ref ? v[i] : stepped;                                                                          \
            const int32_t s = fire_##SUF(p, j, &x, !(ref && (sw & S2_SW_REFRAC_NO_SPIKE)), sw);                  \
            v[i] = x;                                                                                            \
            flag[i] = (uint8_t)s;                                                                                \
            refrac[i] = s ? p->t_refrac[i] : (ref ? refrac[i] - 1 : 0);                                          \
        }                                                                                                        \
    }                                                                                                            \
                                                                                                                 \
    /* The rare variants: one instance whose switches are run-time values. */                                    \
    static __attribute__((noinline)) void update_rare_##SUF(const s2_population *p, const s2_workspace *ws,      \
                                                            T *v, const int32_t *in, int64_t plane,              \
                                                            uint8_t *flag, int32_t lo, int32_t hi, int sw)       \
    {                                                                                                            \
        if (p->kind == S2_KIND_LIF)                                                                              \
            lif_##SUF(p, v, in, plane, flag, lo, hi, sw);                                                        \
        else                                                                                                     \
            curr_exp_##SUF(p, v, (T *)ws->i_exc + p->curr_offset, (T *)ws->i_inh + p->curr_offset,               \
                           ws->refrac + p->curr_offset, in, plane, flag, lo, hi, sw);                            \
    }                                                                                                            \
                                                                                                                 \
    /* Update neurons [lo, hi) of a population for this tick, their input from in (neuron lo's entry of plane 0,  \
     * plane 1 plane entries further on): one dispatch to the loop instance of its switches. */                  \
    static void update_##SUF(const s2_population *p, const s2_workspace *ws, const int32_t *in, int64_t plane,   \
                             int sw, int32_t lo, int32_t hi)                                                     \
    {                                                                                                            \
        T *v = (T *)ws->v + p->state_offset;                                                                     \
        uint8_t *flag = ws->flags + p->state_offset;                                                             \
        if (sw & S2_SW_RARE) {                                                                                   \
            update_rare_##SUF(p, ws, v, in, plane, flag, lo, hi, sw);                                            \
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
    /* The initial state of neurons r of a population: V = v_init, currents zero. */                             \
    static void init_state_##SUF(const s2_population *p, const s2_workspace *ws, span r)                         \
    {                                                                                                            \
        T *v = (T *)ws->v + p->state_offset;                                                                     \
        for (int32_t i = r.lo; i < r.hi; i++)                                                                    \
            v[i] = (T)p->v_init[i];                                                                              \
        if (p->kind == S2_KIND_CURR_EXP) {                                                                       \
            memset((T *)ws->i_exc + p->curr_offset + r.lo, 0, sizeof(T) * (size_t)(r.hi - r.lo));                \
            memset((T *)ws->i_inh + p->curr_offset + r.lo, 0, sizeof(T) * (size_t)(r.hi - r.lo));                \
        }                                                                                                        \
    }                                                                                                            \
                                                                                                                 \
    static void record_v_##SUF(const s2_population *p, const s2_pop_io *io, const s2_workspace *ws, int64_t b,   \
                               int32_t n_ticks, int32_t tick, span r)                                            \
    {                                                                                                            \
        const T *v = (const T *)ws->v + p->state_offset + r.lo;                                                  \
        const size_t bytes = sizeof(T) * (size_t)(r.hi - r.lo);                                                  \
        if (io->rec_v_last) {                                                                                    \
            if (tick == n_ticks - 1)                                                                             \
                memcpy((T *)io->rec_v + b * p->n + r.lo, v, bytes);                                              \
        } else {                                                                                                 \
            memcpy((T *)io->rec_v + (b * n_ticks + tick) * p->n + r.lo, v, bytes);                               \
        }                                                                                                        \
    }

#define S2_LIF_CASE_f32(c) case c: lif_f32(p, v, in, plane, flag, lo, hi, c); break;
#define S2_LIF_CASE_f64(c) case c: lif_f64(p, v, in, plane, flag, lo, hi, c); break;
#define S2_CURR_CASE_f32(c) case c: curr_exp_f32(p, v, ie, ii, refrac, in, plane, flag, lo, hi, c); break;
#define S2_CURR_CASE_f64(c) case c: curr_exp_f64(p, v, ie, ii, refrac, in, plane, flag, lo, hi, c); break;

S2_DEFINE_UPDATES(float, f32, fmaf)
S2_DEFINE_UPDATES(double, f64, fma)

/* append_set_bits, or with out NULL the count alone (a list nothing reads: deliver_conv_fused). */
static inline int32_t append_or_count(uint64_t m, int32_t i, int32_t *out, int32_t count)
{
    if (!out)
        return count + __builtin_popcountll(m);
    return (S2_APPEND_EMPTY || m) ? append_set_bits(m, i, out, count) : count;
}

/* Appends to out, from position count, the indices of the non-zero flags among flag[lo..hi); returns the new
 * count. Spikes are sparse: 64 flags are tested at once and only the set ones are visited. With out NULL, counts
 * them only. */
static int32_t collect_spikes(const uint8_t *flag, int32_t lo, int32_t hi, int32_t *out, int32_t count)
{
    int32_t i = lo;
    for (; i + 64 <= hi; i += 64) {
        const uint64_t m = nonzero_mask64(flag + i);
        count = append_or_count(m, i, out, count);
    }
    for (; i < hi; i++) {
        if (out)
            out[count] = i;
        count += flag[i] != 0;
    }
    return count;
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
/* A lif population's parameters as lif16_f32 reads them, taken out of the population once per call (the stores
 * of the loop could otherwise alias them, and the compiler reloaded each one per vector). */
typedef struct {
    const float *alpha, *threshold, *offset, *v_reset;
    __m512 alpha1, threshold1, offset1, v_reset1;  /* the uniform values, broadcast */
    int subtract, no_offset;  /* no_offset: a uniform i_offset of +0.0, for which e + off is e (e, converted from
                               * an integer, is never -0.0); the add is one of the loop's few vector ops */
} lif_params_f32;

static inline lif_params_f32 lif_params(const s2_population *p)
{
    const float zero = 0.0f;
    const lif_params_f32 k = {p->alpha_decay, p->threshold, p->i_offset, p->v_reset,
                              _mm512_set1_ps(p->alpha_decay[0]), _mm512_set1_ps(p->threshold[0]),
                              _mm512_set1_ps(p->i_offset[0]), _mm512_set1_ps(p->v_reset[0]),
                              p->reset == S2_RESET_SUBTRACT, memcmp(&p->i_offset[0], &zero, sizeof zero) == 0};
    return k;
}

/* The lif update of 16 neurons from i (f32, none of the rare switches: step_f32 and fire_f32 in vector form, the
 * same IEEE operations in the same order; syn = e + -0.0 is e itself, and the subtracting reset x + -th is
 * x - th). Returns the spike mask. */
static inline __attribute__((always_inline)) __mmask16 lif16_f32(const lif_params_f32 *k, float *restrict v,
                                                                 const int32_t *restrict in, int32_t i, int sw)
{
    const int uniform = sw & S2_SW_UNIFORM, uniform_offset = sw & S2_SW_UNIFORM_OFFSET;
    const __m512 a = uniform ? k->alpha1 : _mm512_loadu_ps(k->alpha + i);
    const __m512 th = uniform ? k->threshold1 : _mm512_loadu_ps(k->threshold + i);
    const __m512 off = uniform_offset ? k->offset1 : _mm512_loadu_ps(k->offset + i);
    const __m512 e = (sw & S2_SW_INPUT) ? _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)in)) : _mm512_setzero_ps();
    const __m512 x0 = _mm512_loadu_ps(v + i), syn = uniform_offset && k->no_offset ? e : _mm512_add_ps(e, off);
    const __m512 x = (sw & S2_SW_FUSED) ? _mm512_fmadd_ps(x0, a, syn) : _mm512_add_ps(_mm512_mul_ps(x0, a), syn);
    const __mmask16 s = _mm512_cmp_ps_mask(x, th, (sw & S2_SW_STRICT) ? _CMP_GT_OQ : _CMP_GE_OQ);
    /* the subtracting reset as one masked subtract rather than a subtract and a blend: the loop is bound by its
     * vector operations (0.83 of the time in isolation, 12,544 neurons) */
    const __m512 r = k->subtract ? _mm512_mask_sub_ps(x, s, x, th)
                                 : _mm512_mask_mov_ps(x, s, uniform ? k->v_reset1 : _mm512_loadu_ps(k->v_reset + i));
    _mm512_storeu_ps(v + i, r);
    return s;
}

/* lif_f32 over 64 neurons at a time with the spikes listed from the threshold masks: the flags are written from
 * the masks too, so the list needs no second pass over them. The rest (under 64) takes the plain loop. With
 * clear, the sums are zeroed as they are read (update_list). */
static inline __attribute__((always_inline)) int32_t lif_list_f32(const s2_population *p, float *restrict v,
                                                                  int32_t *restrict in, uint8_t *restrict flag,
                                                                  int32_t lo, int32_t hi, int sw, int32_t *out,
                                                                  int32_t count, int clear)
{
    const lif_params_f32 k = lif_params(p);
    const __m512i one = _mm512_set1_epi8(1);
    int32_t i = lo;
    for (; i + 64 <= hi; i += 64) {
        int32_t *e = in + (i - lo);
        const uint64_t m = (uint64_t)lif16_f32(&k, v, e, i, sw) | (uint64_t)lif16_f32(&k, v, e + 16, i + 16, sw) << 16 |
                           (uint64_t)lif16_f32(&k, v, e + 32, i + 32, sw) << 32 |
                           (uint64_t)lif16_f32(&k, v, e + 48, i + 48, sw) << 48;
        _mm512_storeu_si512((void *)(flag + i), _mm512_maskz_mov_epi8(m, one));
        for (int32_t z = 0; clear && z < 64; z += 16)
            _mm512_storeu_si512((void *)(e + z), _mm512_setzero_si512());
        count = append_or_count(m, i, out, count);
    }
    if (i < hi) {
        lif_f32(p, v, in + (i - lo), 0, flag, i, hi, sw);
        if (clear)
            memset(in + (i - lo), 0, sizeof(int32_t) * (size_t)(hi - i));
        count = collect_spikes(flag, i, hi, out, count);
    }
    return count;
}
#define S2_LIST_CASE(c) case c: return lif_list_f32(p, v, in, flag, lo, hi, c, out, count, clear);
#endif

/* Updates neurons [lo, hi) of a population (as update_f32 / update_f64) and appends their spikes to out from
 * position count (as collect_spikes; out NULL: counts them only); returns the new count. With clear, zeroes its
 * plane-0 sums in[0 .. hi - lo) for the next tick that uses them: in the same pass that reads them, where the
 * vector update runs, which saves a second pass over them (a conv layer's event path zeroes a ring of output rows
 * after each band's update: about 5 % of the 2x64x64 net's time at 1 % input). */
static int32_t update_list(const s2_population *p, const s2_workspace *ws, int32_t *in, int64_t plane, int sw,
                           int32_t lo, int32_t hi, int f64, int32_t *out, int32_t count, int clear)
{
    uint8_t *flag = ws->flags + p->state_offset;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    if (!f64 && p->kind == S2_KIND_LIF && !(sw & S2_SW_RARE)) {
        float *v = (float *)ws->v + p->state_offset;
        switch (sw) {
            S2_SW_CASES(S2_LIST_CASE)
        }
    }
#endif
    if (f64)
        update_f64(p, ws, in, plane, sw, lo, hi);
    else
        update_f32(p, ws, in, plane, sw, lo, hi);
    if (clear)
        memset(in, 0, sizeof(int32_t) * (size_t)(hi - lo));
    return collect_spikes(flag, lo, hi, out, count);
}

/* Asks for the first S2_PREFETCH_BYTES of the next tick's input row: it comes from memory (the whole input is
 * far larger than the caches), and the tick in between hides the wait that reading it cold costs (about 2 % of a
 * DVS-sized net's time at 1-5 % input). Longer rows are streams the hardware prefetcher follows by itself. */
#define S2_PREFETCH_BYTES 8192
static inline void prefetch_row(const uint8_t *row, int64_t n)
{
    for (int64_t o = 0; o < n && o < S2_PREFETCH_BYTES; o += 64)
        __builtin_prefetch(row + o, 0, 3);
}

/* The largest byte of row[0..n) (a loop the compiler vectorises): an input row is valid when it is at most 1. */
static uint8_t max_byte(const uint8_t *row, int32_t n)
{
    uint8_t m = 0;
    for (int32_t i = 0; i < n; i++)
        m = row[i] > m ? row[i] : m;
    return m;
}

/* The update switches of a population's arithmetic (S2_POP_* flags), without the per-tick INPUT switch. */
static int pop_switches(const s2_population *p)
{
    const int f = p->flags, fused = (f & S2_POP_FMA) != 0, current = (f & S2_POP_CURRENT_FMA) != 0;
    return (fused ? S2_SW_FUSED : 0) | ((f & S2_POP_THRESHOLD_GT) ? S2_SW_STRICT : 0) |
           ((p->uniform_params & S2_UNIFORM_PARAMS) ? S2_SW_UNIFORM : 0) | ((f & S2_POP_LEAK_FIRST) ? S2_SW_LEAK_FIRST : 0) |
           ((p->uniform_params & S2_UNIFORM_OFFSET) ? S2_SW_UNIFORM_OFFSET : 0) |
           (p->kind == S2_KIND_CURR_EXP && current != fused ? S2_SW_CURRENT_FLIP : 0) |
           ((f & S2_POP_LEFT_TO_RIGHT) ? S2_SW_LEFT_TO_RIGHT : 0) | ((f & S2_POP_FTZ) ? S2_SW_FTZ : 0) |
           ((f & S2_POP_REFRAC_NO_SPIKE) ? S2_SW_REFRAC_NO_SPIKE : 0);
}

/* The spike count of population pop from which next tick's delivery no longer reads its spike list: every
 * projection from pop reads it, but a conv taking its dense path (from dense_from spikes on) with the map pooled
 * from the flags, and no event count recorded for its target. 0: nothing reads it; INT32_MAX: something reads
 * it at any count. */
static int32_t list_limit(const s2_network *net, const s2_workspace *ws, const s2_pop_io *io, int32_t pop)
{
    int32_t limit = 0;
    for (int32_t j = 0; j < net->n_projs; j++) {
        const s2_projection *o = &net->projs[j];
        if (o->pre != pop)
            continue;
        const int pooled = o->kind == S2_PROJ_CONV && map_from_flags(o, ws) && !io[o->post].rec_counts;
        const int32_t from = pooled ? o->dense_from : INT32_MAX;
        limit = from > limit ? from : limit;
    }
    return limit;
}

/* A conv projection's delivery and the update of its target in one pass, band by band of output rows: the sums of
 * a band land in a buffer on the stack, which the update reads while it is still in L1, so they never travel
 * through the population's ring (a write, a read and a clear of 4 bytes per neuron and tick, through L2). The
 * dense product writes each band whole; on the event path the buffer is a ring of output rows (events_ring_rows)
 * that each spike adds all its taps into once, and a band is updated when every spike reaching it is in. Lists
 * the target's spikes as phase 2 would; phase 2 then only records it. Where only dense products from the flags
 * read the list from some count on (list_limit), the update lists the spikes up to that count and then only
 * counts them, unless last tick's count was over twice that: then it only counts, and the list is made after
 * it if the count falls short (a second pass over the flags: 4 % of the DVS-sized net's time at 1 % input,
 * where listing in the update gives 0.986 of the time; listing whatever the last count, 1.02 at 20 %; paired). */
static void deliver_conv_fused(const s2_network *net, const s2_workspace *ws, const s2_pop_io *io,
                               const spike_lists *sp, int32_t k)
{
    const s2_projection *q = &net->projs[k];
    const s2_population *pre = &net->pops[q->pre], *post = &net->pops[q->post];
    const int amx = (net->flags & S2_FLAG_AMX) != 0, f64 = (net->flags & S2_FLAG_FLOAT64) != 0;
    const int dense = sp->total >= q->dense_from;
    /* dense: two bands' sums, one summed while the other is updated (band_update) */
    int32_t sums[2 * S2_FUSED_MAX] __attribute__((aligned(64)));
    const int32_t row = q->ow * q->c_out, band = fused_band(q), ring = dense ? 0 : events_ring_rows(q);
    /* events: a ring of output rows that the next bands take, the first rows of the target's own ring slot. Only
     * this path uses that slot (k is fusable with a ring, so every tick's delivery comes here), and the update
     * zeroes each row as it reads it, so the ring is all zero when a tick starts and needs no clearing pass (a
     * memset of a ring on the stack was about 3 % of the DVS-sized net's time at 1 % input) */
    int32_t *rows = dense ? sums : ring_slot(ws, post, 0);
    int32_t *list = ws->spikes_cur + post->state_offset;
    /* list in the update when last tick's count says the list will likely be read (see above) */
    const int32_t limit = list_limit(net, ws, io, q->post);
    const int listing = limit && ws->n_prev[q->post] < 2 * (int64_t)limit;
    band_update u = {post, ws, rows, 0, 0, pop_switches(post) | S2_SW_INPUT, f64, !dense, listing ? list : NULL, 0,
                     limit};
    uint8_t *map = dense ? ws->conv_map + q->map_offset : NULL;  /* a conv that is never dense has no map */
    row_runs runs;
    product_setup ps;
    if (dense) {
        product_begin(q, pre, ws, sp, map, amx, &ps);
    } else {
        find_runs(q, sp->idx[0], sp->n[0], &runs);  /* one thread: one list */
    }
    for (int32_t oy = 0, b = 0; oy < q->oh; oy += band, b++) {
        const int32_t end = q->oh - oy < band ? q->oh : oy + band, lo = oy * row, hi = end * row;
        int32_t *in;
        if (dense) {  /* the product carries the band before's update along */
            in = sums + (int64_t)(b % 2) * S2_FUSED_MAX;
            conv_product(q, map, 1, oy, end, 1, amx, in, 0, &ps, oy > 0, &u);
        } else {  /* this band's rows of the ring, complete once the spikes starting in it are added */
            conv_events_band(q, rows, sp->idx[0], sp->n[0], &runs, oy, end, ring);
            in = rows + (int64_t)(oy % ring) * row;
        }
        band_update_step(&u, u.hi - u.lo);  /* what is left of the band before */
        u.in = in, u.lo = lo, u.hi = hi;
        if (!dense)  /* no product to carry it: now */
            band_update_step(&u, hi - lo);
    }
    band_update_step(&u, u.hi - u.lo);
    if (dense) {
        product_end(amx);
        clear_map(q, map);
    }
    if (!listing && u.count && u.count < limit)  /* fewer spikes than expected: the list is read after all */
        collect_spikes(ws->flags + post->state_offset, 0, post->n, list, 0);
    ws->n_cur[q->post] = u.count;  /* one thread */
    ws->dirty[(int64_t)q->post * 8 + S2_FUSED_MARK] = 1;
}

/* Neurons per update chunk: a chunk's state, ring entries and flags are still in L1 when the scan turns its flags
 * into spike indices, so detecting the spikes costs no second pass over the population. */
#define S2_CHUNK 1024

/* Phase 2 for this thread's range r of one population: update it chunk by chunk (or take a spike_list's input
 * row), list its spikes for the next tick's delivery, and record. Returns S2_ERR_INPUT when an input row holds a
 * value other than 0 or 1 (the input is checked here, in the one pass that reads it, not before every run). */
static int step_population(const s2_population *p, int32_t k, const s2_pop_io *io, const s2_workspace *ws,
                           int64_t b, int32_t n_ticks, int32_t tick, int f64)
{
    const span r = own_span(p, ws);
    const int64_t row = (b * n_ticks + tick) * p->n;
    int32_t *out = ws->spikes_cur + p->state_offset + r.lo;
    int32_t count = 0;
    const uint8_t *flag;
    if (p->kind == S2_KIND_INPUT) {
        flag = io->input + row;
        if (max_byte(flag + r.lo, r.hi - r.lo) > 1)
            return S2_ERR_INPUT;
        count = collect_spikes(flag, r.lo, r.hi, out, 0);
        if (tick + 1 < n_ticks)
            prefetch_row(flag + p->n + r.lo, r.hi - r.lo);
    } else if (p->ring_slots == 1 && ws->dirty[(int64_t)k * 8 + S2_FUSED_MARK]) {  /* updated in phase 1 */
        ws->dirty[(int64_t)k * 8 + S2_FUSED_MARK] = 0;
        flag = ws->flags + p->state_offset;
        count = ws->n_cur[(int64_t)k * ws->n_threads + ws->thread];
    } else {
        uint8_t *state = slot_state(ws, k, p, tick);
        const int input = *state == S2_SLOT_INPUT || *state == S2_SLOT_FULL, clear = *state == S2_SLOT_INPUT;
        const int sw = pop_switches(p) | (input ? S2_SW_INPUT : 0);
        int32_t *slot = ring_slot(ws, p, tick);
        if (input)
            *state = clear ? S2_SLOT_CLEAN : S2_SLOT_STALE;
        flag = ws->flags + p->state_offset;
        for (int32_t lo = r.lo; lo < r.hi; lo += S2_CHUNK) {
            const int32_t hi = r.hi - lo < S2_CHUNK ? r.hi : lo + S2_CHUNK;
            count = update_list(p, ws, slot + lo, p->n, sw, lo, hi, f64, out, count, clear);
            for (int32_t plane = 1; clear && plane < p->ring_planes; plane++)  /* the chunk's other planes, in L1 */
                memset(slot + (int64_t)plane * p->n + lo, 0, sizeof(int32_t) * (size_t)(hi - lo));
        }
    }
    if (p->kind != S2_KIND_INPUT && io->rec_v) {
        if (f64)
            record_v_f64(p, io, ws, b, n_ticks, tick, r);
        else
            record_v_f32(p, io, ws, b, n_ticks, tick, r);
    }
    ws->n_cur[(int64_t)k * ws->n_threads + ws->thread] = count;
    if (io->rec_spikes)
        memcpy(io->rec_spikes + row + r.lo, flag + r.lo, (size_t)(r.hi - r.lo));
    if (io->rec_counts)  /* the threads of a split sample each add their share */
        __atomic_fetch_add(&io->rec_counts[(b * n_ticks + tick) * 2], count, __ATOMIC_RELAXED);
    return S2_OK;
}

/* The threads of a split sample meet here once per tick (each tick's delivery reads every thread's spike lists).
 * sync[0] counts arrivals, sync[1] is the generation, sync[2] the abort flag a failing thread raises so that the
 * others stop instead of waiting for it. Spins on plain loads for a while (measured here: a meeting then costs
 * about 2 us, against 5-50 us when each spin also pauses, whose delay is long on recent Intel cores), then
 * yields the core: on a loaded machine the thread being waited for may need it. Returns S2_ERR_RUN when another
 * thread aborted. */
static int meet(int32_t *sync, int32_t n_threads)
{
    const int32_t generation = __atomic_load_n(&sync[1], __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&sync[0], 1, __ATOMIC_ACQ_REL) == n_threads) {
        __atomic_store_n(&sync[0], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&sync[1], generation + 1, __ATOMIC_RELEASE);
        return S2_OK;
    }
    for (int spins = 0; __atomic_load_n(&sync[1], __ATOMIC_ACQUIRE) == generation; spins++) {
        if (__atomic_load_n(&sync[2], __ATOMIC_ACQUIRE))
            return S2_ERR_RUN;
        if (spins > 20000)
            sched_yield();
    }
    return S2_OK;
}

/* The initial state of this thread's range of every population, its scratch, and (thread 0) the counts. */
static void start_sample(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int64_t b,
                         int32_t n_ticks)
{
    for (int32_t k = 0; k < net->n_pops; k++) {
        const s2_population *p = &net->pops[k];
        const span r = own_span(p, ws);
        ws->n_prev[(int64_t)k * ws->n_threads + ws->thread] = 0;
        if (io[k].rec_counts && ws->thread == 0)
            memset(io[k].rec_counts + b * n_ticks * 2, 0, sizeof(int64_t) * 2 * (size_t)n_ticks);
        if (p->kind == S2_KIND_INPUT)
            continue;
        if (net->flags & S2_FLAG_FLOAT64)
            init_state_f64(p, ws, r);
        else
            init_state_f32(p, ws, r);
        if (p->kind == S2_KIND_CURR_EXP)
            memset(ws->refrac + p->curr_offset + r.lo, 0, sizeof(int32_t) * (size_t)(r.hi - r.lo));
        for (int32_t plane = 0; plane < p->ring_slots * p->ring_planes; plane++)
            memset(ws->ring + p->ring_offset + (int64_t)plane * p->n + r.lo, 0, sizeof(int32_t) * (size_t)(r.hi - r.lo));
    }
    if (net->n_conv_map)
        memset(ws->conv_map, 0, (size_t)net->n_conv_map);
#ifdef S2_HAVE_STACK
    for (int32_t k = 0; k < net->n_projs; k++)
        if (net->projs[k].kind == S2_PROJ_CONV && net->projs[k].stacked && (net->flags & S2_FLAG_AMX))
            find_last_slots(&net->projs[k], ws->conv_map + net->projs[k].map_offset);
#endif
    memset(ws->dirty, 0, 8 * (size_t)net->n_pops);
}

/* Why the threads of a split sample stopped early: the cancel flag, or another thread's error. */
static int stopped(const int32_t *cancel)
{
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) ? S2_CANCELLED : S2_ERR_RUN;
}

/* Runs one sample (this thread's share of it). Returns S2_ERR_INPUT with *bad_pop, *bad_tick set when an input
 * value is not 0 or 1, S2_CANCELLED when *cancel was set (checked between ticks), S2_ERR_RUN when another thread
 * of the sample stopped. A thread that stops raises the sample's abort flag, so the others stop too. */
static int run_sample(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int64_t b,
                      int32_t n_ticks, const int32_t *cancel, int32_t *bad_pop, int32_t *bad_tick)
{
    const int f64 = (net->flags & S2_FLAG_FLOAT64) != 0, split = ws->n_threads > 1;
    start_sample(net, io, ws, b, n_ticks);
    if (split && meet(ws->sync, ws->n_threads))
        return stopped(cancel);
    int32_t *prev = ws->spikes_prev, *cur = ws->spikes_cur, *n_prev = ws->n_prev, *n_cur = ws->n_cur;
    for (int32_t tick = 0; tick < n_ticks; tick++) {
        /* another thread stores the flag; an atomic load keeps the read from being hoisted out of the loop */
        if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
            if (split)
                __atomic_store_n(&ws->sync[2], 1, __ATOMIC_RELEASE);
            return S2_CANCELLED;
        }
        s2_workspace w = *ws;
        w.spikes_prev = prev;
        w.spikes_cur = cur;
        w.n_prev = n_prev;
        w.n_cur = n_cur;
        deliver_all(net, &w, io, b, n_ticks, tick);
        for (int32_t k = 0; k < net->n_pops; k++) {
            if (step_population(&net->pops[k], k, &io[k], &w, b, n_ticks, tick, f64) != S2_OK) {
                *bad_pop = k;
                *bad_tick = tick;
                if (split)
                    __atomic_store_n(&ws->sync[2], 1, __ATOMIC_RELEASE);
                return S2_ERR_INPUT;
            }
        }
        if (split && meet(ws->sync, ws->n_threads))  /* every thread's spikes of this tick are listed */
            return stopped(cancel);
        int32_t *t = prev; prev = cur; cur = t;
        t = n_prev; n_prev = n_cur; n_cur = t;
    }
    return S2_OK;
}

int s2_run(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int32_t batch, int32_t n_ticks,
           int32_t b_begin, int32_t b_end, const int32_t *cancel, char *err, size_t errlen)
{
    if (!net || net->validated != S2_VALIDATED)
        return fail(err, errlen, S2_ERR_RUN, "network was not validated");
    if (!io || !ws || !ws->v || !ws->ring || !ws->flags || !ws->spikes_prev || !ws->spikes_cur || !ws->n_prev ||
        !ws->n_cur || !ws->dirty || (net->n_curr && (!ws->i_exc || !ws->i_inh || !ws->refrac)) ||
        (net->n_conv_map && !ws->conv_map))
        return fail(err, errlen, S2_ERR_RUN, "workspace or io array is NULL");
    if (ws->n_threads < 1 || ws->n_threads > S2_MAX_SPLIT || ws->thread < 0 || ws->thread >= ws->n_threads ||
        (ws->n_threads > 1 && !ws->sync))
        return fail(err, errlen, S2_ERR_RUN, "workspace: thread %d of %d (at most %d, sync %s)", ws->thread,
                    ws->n_threads, S2_MAX_SPLIT, ws->sync ? "set" : "NULL");
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
    int rc = S2_OK;
    int32_t bad_pop = 0, bad_tick = 0;
    int64_t b = b_begin;
    for (; b < b_end && rc == S2_OK; b++)
        rc = run_sample(net, io, ws, b, n_ticks, cancel, &bad_pop, &bad_tick);
#ifdef S2_HAVE_MXCSR
    _mm_setcsr(saved);
#endif
    if (rc == S2_ERR_RUN)
        return fail(err, errlen, S2_ERR_RUN, "another thread of the sample stopped");
    if (rc == S2_ERR_INPUT)
        return fail(err, errlen, S2_ERR_INPUT, "population %d, sample %lld, tick %d: an input value is not 0 or 1",
                    bad_pop, (long long)(b - 1), bad_tick);
    return rc;
}
