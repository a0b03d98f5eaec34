/*
 * s2sim C core: the ABI.
 *
 * This header is the only contract between the C kernel and Python. CMake compiles it into the extension and
 * csrc/ffibuild.py feeds the text between the CFFI markers to cffi's cdef, so both always agree.
 * (cffi's parser takes no preprocessor lines, which is why the block below has none.)
 *
 * Memory ownership: the caller (Python, through numpy) allocates every array; the core never allocates.
 * The network description is immutable after s2_validate(); per-run buffers travel separately (s2_pop_io)
 * so one validated network can be run by several threads on disjoint batch ranges at once.
 */
#ifndef S2SIM_H
#define S2SIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CFFI_BEGIN */
#define S2_ABI_VERSION 3
#define S2_OK 0
#define S2_ERR_INVALID 1
#define S2_ERR_RUN 2
#define S2_CANCELLED 3

/* Neuron dynamics (s2sim.models.KIND_*). */
#define S2_KIND_INPUT 0
#define S2_KIND_LIF 1
#define S2_KIND_CURR_EXP 2

#define S2_RESET_SUBTRACT 0
#define S2_RESET_TO_V_RESET 1

#define S2_PROJ_SPARSE 0
#define S2_PROJ_DENSE 1
#define S2_PROJ_CONV 2

/* s2_network.flags: the state's float type, shared by every population (the workspace holds one type). */
#define S2_FLAG_FLOAT64 4

/* s2_population.flags: the arithmetic of the population's model (ChipProfile.model_settings, docs/datapath.md).
 * FMA: V*alpha + input rounded once; CURRENT_FMA: the same for I*decay + ring (curr_exp); THRESHOLD_GT: spike
 * test V > threshold instead of >=; LEAK_FIRST / LEFT_TO_RIGHT: input grouping (neither: input first; at most
 * one); FTZ: flush-to-zero (float32 only); REFRAC_NO_SPIKE: a refractory neuron never spikes (otherwise its held
 * V is tested). */
#define S2_POP_FMA 1
#define S2_POP_CURRENT_FMA 2
#define S2_POP_THRESHOLD_GT 4
#define S2_POP_LEAK_FIRST 8
#define S2_POP_LEFT_TO_RIGHT 16
#define S2_POP_FTZ 32
#define S2_POP_REFRAC_NO_SPIKE 64

#define S2_VALIDATED 0x5325A11D

/* One population. Per-neuron parameters are float32 as uploaded to the chip (t_refrac int32).
 * Offsets index the workspace arrays: state_offset into v / flags / spike lists (n entries),
 * ring_offset into ring (ring_slots * ring_planes * n int32: slot-major, then plane, then neuron; lif has one
 * signed plane, except under LEFT_TO_RIGHT, curr_exp an exc and an inh plane of magnitudes),
 * curr_offset into i_exc / i_inh (curr_exp only, else -1). Each of the three ranges must start at or after the end of the
 * previous population's (s2_validate refuses overlaps). uniform_params = 1 promises that threshold,
 * alpha_decay, v_reset, exc_decay and inh_decay hold one value for all neurons (element 0 is read). */
typedef struct {
    int32_t kind;
    int32_t reset;
    int32_t n;
    int32_t ring_slots;
    int32_t ring_planes;
    int32_t uniform_params;
    int32_t flags;
    int64_t state_offset;
    int64_t ring_offset;
    int64_t curr_offset;
    const float *threshold;
    const float *alpha_decay;
    const float *i_offset;
    const float *v_reset;
    const float *v_init;
    const float *exc_decay;
    const float *inh_decay;
    const int32_t *t_refrac;
} s2_population;

/* One projection. Indices are the populations' internal neuron order (see s2sim/lowering.py).
 * sparse: CSR by pre neuron: synapses row_ptr[i] .. row_ptr[i+1]-1 with target, delay, signed weight.
 * dense: n_pre rows of post.n signed int8 weights, one delay; row_nnz[i] synapses counted per spike.
 * conv: pool_pos[3*i .. 3*i+2] = pooled input cell (c, y, x) that pre neuron i's spikes land in;
 *       kernel [c_in][k_h][k_w][c_out] with the k_w axis reversed (column k_w-1-kx holds tap kx);
 *       post neurons in (oy, ox, co) order. */
typedef struct {
    int32_t kind;
    int32_t pre;
    int32_t post;
    int32_t n_pre;
    const int64_t *row_ptr;
    const int32_t *target;
    const uint8_t *delay;
    const int16_t *weight;
    const int8_t *dense;
    const int32_t *row_nnz;
    int32_t dense_delay;
    const int32_t *pool_pos;
    const int8_t *kernel;
    int32_t c_in;
    int32_t ph;
    int32_t pw;
    int32_t c_out;
    int32_t oh;
    int32_t ow;
    int32_t k_h;
    int32_t k_w;
    int32_t stride_x;
    int32_t stride_y;
    int32_t pad_top;
    int32_t pad_left;
} s2_projection;

typedef struct {
    int32_t n_pops;
    int32_t n_projs;
    const s2_population *pops;
    const s2_projection *projs;
    int64_t n_neurons;
    int64_t n_ring;
    int64_t n_curr;
    int32_t flags;
    int32_t validated;
} s2_network;

/* Per-run, per-population buffers, indexed by sample b in [0, batch) and tick t in [0, n_ticks).
 * input: spike_list populations, [batch][n_ticks][n] of 0/1.
 * rec_spikes: [batch][n_ticks][n] or NULL. rec_v: float (or double with S2_FLAG_FLOAT64) [batch][n_ticks][n],
 * or [batch][n] when rec_v_last, or NULL. rec_counts: [batch][n_ticks][2] = (spikes, synaptic events) or NULL. */
typedef struct {
    const uint8_t *input;
    uint8_t *rec_spikes;
    void *rec_v;
    int32_t rec_v_last;
    int64_t *rec_counts;
} s2_pop_io;

/* Scratch for one thread. v / i_exc / i_inh are float* or double* by S2_FLAG_FLOAT64; dirty has 8 flags per
 * population (which ring slots received input). */
typedef struct {
    void *v;
    void *i_exc;
    void *i_inh;
    int32_t *refrac;
    int32_t *ring;
    uint8_t *flags;
    int32_t *spikes_prev;
    int32_t *spikes_cur;
    int32_t *n_prev;
    int32_t *n_cur;
    uint8_t *dirty;
} s2_workspace;

/* Check every index, offset, size and pointer of a network; on success mark it validated. */
int s2_validate(s2_network *net, char *err, size_t errlen);

/* Run samples [b_begin, b_end) for n_ticks ticks, each from the initial state.
 * cancel (may be NULL) is read between ticks: once another thread stores a non-zero value there, the run stops
 * at the end of the current tick and returns S2_CANCELLED (the io buffers then hold a partial run; the network
 * and workspace stay valid for the next run, which starts from the initial state). */
int s2_run(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int32_t batch, int32_t n_ticks,
           int32_t b_begin, int32_t b_end, const int32_t *cancel, char *err, size_t errlen);
/* CFFI_END */

#ifdef __cplusplus
}
#endif

#endif /* S2SIM_H */
