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
/* Bump with any change below; s2sim/core.py's ABI_VERSION must follow (a stale build then refuses to load). */
#define S2_ABI_VERSION 7
#define S2_OK 0
#define S2_ERR_INVALID 1
#define S2_ERR_RUN 2
/* s2_run: the run was cancelled through its cancel flag. */
#define S2_CANCELLED 3
/* s2_run: a spike_list input holds a value other than 0 or 1 (the message names population, sample, tick). */
#define S2_ERR_INPUT 4
/* s2_build_dense: a (pre, post) pair occurs twice, so the list cannot become dense rows. */
#define S2_REPEATED_PAIR 5

/* Neuron dynamics (s2sim.models.KIND_*). */
#define S2_KIND_INPUT 0
#define S2_KIND_LIF 1
#define S2_KIND_CURR_EXP 2

#define S2_RESET_SUBTRACT 0
#define S2_RESET_TO_V_RESET 1

#define S2_PROJ_SPARSE 0
#define S2_PROJ_DENSE 1
#define S2_PROJ_CONV 2

/* s2_network.flags: the state's float type, shared by every population (the workspace holds one type); AMX: the
 * dense conv path runs on the AMX tile unit (only after s2_amx_enable() returned 1 in this process). */
#define S2_FLAG_FLOAT64 4
#define S2_FLAG_AMX 8

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

/* s2_population.uniform_params */
#define S2_UNIFORM_PARAMS 1
#define S2_UNIFORM_OFFSET 2

#define S2_VALIDATED 0x5325A11D

/* A sample can be split over at most this many threads (s2_workspace.n_threads). */
#define S2_MAX_SPLIT 8

/* One population. Per-neuron parameters are float32 as uploaded to the chip (t_refrac int32).
 * Offsets index the workspace arrays: state_offset into v / flags / spike lists (n entries),
 * ring_offset into ring (ring_slots * ring_planes * n int32: slot-major, then plane, then neuron; lif has one
 * signed plane, except under LEFT_TO_RIGHT, curr_exp an exc and an inh plane of magnitudes),
 * curr_offset into i_exc / i_inh (curr_exp only, else -1). Each of the three ranges must start at or after the end of the
 * previous population's (s2_validate refuses overlaps). uniform_params: S2_UNIFORM_PARAMS promises that
 * threshold, alpha_decay, v_reset, exc_decay and inh_decay hold one value for all neurons, S2_UNIFORM_OFFSET the
 * same of i_offset (element 0 is read).
 * grain: when a sample is split over threads, each thread owns a range of every population whose bounds are
 * multiples of grain (a conv target's output row, oh*ow*c_out / oh, so each thread owns whole rows). */
typedef struct {
    int32_t kind;
    int32_t reset;
    int32_t n;
    int32_t ring_slots;
    int32_t ring_planes;
    int32_t uniform_params;
    int32_t flags;
    int32_t grain;
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
 * sparse: CSR by pre neuron: synapses row_ptr[i] .. row_ptr[i+1]-1 with target, signed weight and delay; delay
 *       NULL means every synapse has uniform_delay.
 * dense: n_pre rows of post.n signed int8 weights, all with uniform_delay; row_nnz[i] synapses counted per spike.
 * conv: pool_pos[3*i .. 3*i+2] = pooled input cell (c, y, x) that pre neuron i's spikes land in;
 *       kernel [c_in][k_h][k_w][c_out] with the k_w axis reversed (column k_w-1-kx holds tap kx);
 *       post neurons in (oy, ox, co) order; pre_events[i] = synaptic events of one spike of pre neuron i (kernel
 *       taps inside the output, times c_out).
 *       In a tick with at least dense_from spikes (INT32_MAX: never) the conv runs as a dense integer product
 *       instead of spike by spike: the spikes are counted into a pooled map of map_h x map_w cells of c_in
 *       uint8 counts (map_h = (oh-1)*stride_y + k_h, map_w = (ow-1)*stride_x + k_w: the pooled input shifted by
 *       the top and left padding, cut to what some output reads), cell[i] the offset of pre neuron i's count
 *       (-1: no output reads it); then every output is the dot product of its map window with packed, the
 *       kernel as [ring planes][k_h][quads][c_out_pad][4] int8 (quads = s2_conv_quads(), c_out_pad = c_out rounded
 *       up to 16; element (ky, j = kx*c_in + ci, co) at quad j/4, lane j%4; zero beyond k_w*c_in and c_out). With
 *       two ring planes, plane 0 holds max(w, 0) and plane 1 min(w, 0). The map lives in the workspace's conv_map
 *       at map_offset (s2_map_bytes() bytes, stacked 0); a pooled cell must collect at most 127 spikes per tick.
 *       pre_channel_last = 1 says the pre population is a neuron population whose internal order is
 *       (y, x, c) over c_in x (ph * pool_y) x (pw * pool_x): the dense path then sums its spike flags into the
 *       map with vector adds (the fused sum-pool) instead of counting spike by spike.
 *       map_planes = 1 says the pre population is an input population (spike_list) in (c, y, x) order over
 *       c_in x ph x pw, unpooled, with c_in 1 or 2 (cell[] as that order gives it, which s2_validate checks): the
 *       dense path then lays out the map from the pre's input row, its channel rows interleaved, instead of
 *       counting spike by spike.
 *       stacked (NULL: none) is the kernel for the stacked AMX product of a layer whose whole window fits one tile
 *       row (s2_stack_quads() > 0): [ring planes][stack quads][c_out_pad][4] int8, window byte
 *       j = kx*k_h*c_in + ky*c_in + ci (zero beyond k_w*k_h*c_in). With it, each tick the map's rows are also
 *       laid out stacked (every map column holding the c_in counts of k_h consecutive rows) after the map, from
 *       its next multiple of 64, so that one tile multiply covers a whole window instead of one kernel row; after
 *       them, from the next multiple of 64, the kernel keeps where each stacked row takes its new counts (worked
 *       out at each sample's start; the whole slice: s2_map_bytes() with stacked 1). */
typedef struct {
    int32_t kind;
    int32_t pre;
    int32_t post;
    int32_t n_pre;
    const int64_t *row_ptr;
    const int32_t *target;
    const uint8_t *delay;
    const int8_t *weight;
    const int8_t *dense;
    const int32_t *row_nnz;
    int32_t uniform_delay;
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
    const int32_t *pre_events;
    int32_t dense_from;
    const int32_t *cell;
    const int8_t *packed;
    int64_t map_offset;
    int32_t pool_x;
    int32_t pool_y;
    int32_t pre_channel_last;
    const int8_t *stacked;
    int32_t map_planes;
} s2_projection;

typedef struct {
    int32_t n_pops;
    int32_t n_projs;
    const s2_population *pops;
    const s2_projection *projs;
    int64_t n_neurons;
    int64_t n_ring;
    int64_t n_curr;
    int64_t n_conv_map;
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
 * population (the state of each ring slot; a one-slot population's last flag marks an update done during
 * delivery: 0 before a run); conv_map holds n_conv_map bytes (the conv projections' pooled
 * maps, all zero between ticks, and the stacked rows after them; NULL when n_conv_map is 0).
 * A sample split over n_threads > 1 threads: every thread calls s2_run with the same arguments except its own
 * workspace, whose thread is its index; the workspaces share every array except dirty and conv_map (each
 * thread's own), n_prev / n_cur hold n_pops * n_threads counts, and sync points at 4 int32, zero before the run,
 * shared by all of them. Each thread updates its own range of every population, and delivers into it. */
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
    uint8_t *conv_map;
    int32_t thread;
    int32_t n_threads;
    int32_t *sync;
} s2_workspace;

/* The dense conv path's sizes, shared with Python: quads per kernel row in the packed kernel (ceil(k_w*c_in/4)
 * padded to equal chunks of at most 16); the quads of a whole window in the stacked AMX product (0: this build has
 * no stacked product, or the layer does not qualify: stride 1, at least two kernel rows, a window of at most 64
 * bytes, stacked rows of at most 4096 bytes); and the bytes of a projection's slice of conv_map: its pooled map
 * with the slack the dense product may read past its last cell, and with stacked != 0 the stacked rows after it
 * (from the next multiple of 64, with their own slack). s2_validate checks map_offset against the same size. */
int32_t s2_conv_quads(int32_t c_in, int32_t k_w);
int32_t s2_stack_quads(int32_t c_in, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x, int32_t stride_y);
int64_t s2_map_bytes(int32_t c_in, int32_t oh, int32_t ow, int32_t k_h, int32_t k_w, int32_t stride_x, int32_t stride_y,
                     int32_t stacked);

/* Lowering helpers (csrc/build.c): a connection list of m synapses (external pre / post indices, int8 weights,
 * delays or NULL) into the kernel's rows, in one pass and without temporaries. pre_map / post_map map external to
 * internal neuron order (NULL: the same). abs_sum[j] (n_post, zeroed by the caller) receives the sum of |w| into
 * internal post neuron j, for the accumulator bound.
 * s2_build_dense: dense [n_pre][n_post] and row_nnz (zeroed), seen a zeroed bitmap of n_pre * n_post bits; returns
 * S2_REPEATED_PAIR when a pair repeats. s2_build_rows: CSR rows (row_ptr n_pre + 1, cursor n_pre scratch, target /
 * weight_out / delay_out m, delay_out NULL with delay NULL). Both return S2_ERR_INVALID for an index outside its
 * population. */
int s2_build_dense(int64_t m, const int32_t *pre, const int32_t *post, const int8_t *weight, const int32_t *pre_map,
                   const int32_t *post_map, int32_t n_pre, int32_t n_post, int8_t *dense, uint8_t *seen,
                   int32_t *row_nnz, int64_t *abs_sum);
int s2_build_rows(int64_t m, const int32_t *pre, const int32_t *post, const int8_t *weight, const uint8_t *delay,
                  const int32_t *pre_map, const int32_t *post_map, int32_t n_pre, int32_t n_post, int64_t *row_ptr,
                  int64_t *cursor, int32_t *target, int8_t *weight_out, uint8_t *delay_out, int64_t *abs_sum);

/* Check every index, offset, size and pointer of a network; on success mark it validated. */
int s2_validate(s2_network *net, char *err, size_t errlen);

/* Run samples [b_begin, b_end) for n_ticks ticks, each from the initial state.
 * Input rows are checked as they are read: a value other than 0 or 1 stops the run with S2_ERR_INPUT.
 * cancel (may be NULL) is read between ticks: once another thread stores a non-zero value there, the run stops
 * at the end of the current tick and returns S2_CANCELLED (the io buffers then hold a partial run; the network
 * and workspace stay valid for the next run, which starts from the initial state). The threads of a split sample
 * stop together. */
int s2_run(const s2_network *net, const s2_pop_io *io, const s2_workspace *ws, int32_t batch, int32_t n_ticks,
           int32_t b_begin, int32_t b_end, const int32_t *cancel, char *err, size_t errlen);

/* The SIMD level the core was compiled for: "avx512", "avx2", "sse2" or "portable". */
const char *s2_simd_level(void);
/* Asks the OS for the AMX tile state for this process; 1 when granted (and the core was built with AMX), else 0.
 * Call it before running a network with S2_FLAG_AMX. */
int s2_amx_enable(void);
/* Nanoseconds per AMX multiply (tdpbusd, 16 rows x 64 bytes) on the calling thread now, timed over n of them; 0.0
 * when the core has no AMX or the OS refused the tile state. A probe of the machine for benchmarks: on a shared
 * virtual machine the same multiply has cost 5.6 ns and 14.5 ns from one second to the next. */
double s2_amx_multiply_ns(int32_t n);
/* CFFI_END */

#ifdef __cplusplus
}
#endif

#endif /* S2SIM_H */
