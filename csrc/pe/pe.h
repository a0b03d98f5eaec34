/*
 * An emulated SpiNNaker2 processing element (PE): the tick of the lif-family applications, written as firmware
 * from docs/datapath.md, to run cross-compiled for the Cortex-M4F (under QEMU) or on the host.
 *
 * This shares no code with the simulator's kernel (csrc/kernel.c): it keeps the chip's own data structures.
 * Synapse words are 16 bits: [15:8] target neuron within the PE's slice, [7] type (1 = inhibitory), then
 * [6:4] delay and [3:0] weight magnitude for the models with a delay field (lif, lif_curr_exp), or [6:0] weight
 * magnitude for the no-delay ones. Ring buffers are uint32 per slot, per type (exc, inh) and per neuron. A
 * received spike is a multicast key; the PE finds the rows of its source in a key-based population table.
 * Spikes sent in tick t are delivered to the PEs' queues for tick t + 1 by the router (pe_run).
 *
 * Everything the program runs on comes from one image (below), packed by s2sim/emulated_pe.py: all fields are
 * little-endian 32-bit words, offsets count bytes from the image start. The arithmetic is plain C, so whether
 * `v * alpha + input` is one rounding (vfma.f32) or two is the compiler's choice: GCC contracts it in the GNU
 * dialects and not in ISO C, which is what the builds compare.
 */
#ifndef PE_H
#define PE_H

#include <stddef.h>
#include <stdint.h>

#define PE_IMAGE_MAGIC 0x45503253u /* "S2PE" */
#define PE_IMAGE_VERSION 1u
#define PE_OUTPUT_MAGIC 0x454e4f44u /* "DONE" */
#define PE_PATH_BYTES 256

/* pe_desc.kind */
#define PE_SOURCE 0   /* spike_list: sends the listed keys */
#define PE_LIF 1      /* lif, lif_no_delay, lif_conv2d */
#define PE_CURR_EXP 2 /* lif_curr_exp, lif_curr_exp_no_delay */

/* pe_entry.kind */
#define PE_ROWS_DELAY 0    /* 16-bit words with a delay field */
#define PE_ROWS_NO_DELAY 1 /* 16-bit words, 7-bit magnitude */
#define PE_CONV 2          /* a conv kernel applied to the source's (pooled) position */

#define PE_WORD_TARGET(w) ((uint32_t)(w) >> 8)
#define PE_WORD_INH(w) (((uint32_t)(w) >> 7) & 1u)
#define PE_WORD_DELAY(w) (((uint32_t)(w) >> 4) & 7u)
#define PE_WORD_WEIGHT_DELAY(w) ((uint32_t)(w) & 15u)
#define PE_WORD_WEIGHT_NO_DELAY(w) ((uint32_t)(w) & 127u)

typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t n_pes;
    uint32_t n_ticks;
    uint32_t n_routes;
    uint32_t pes_offset;    /* pe_desc[n_pes] */
    uint32_t routes_offset; /* pe_route[n_routes] */
    uint32_t image_bytes;
    char out_path[PE_PATH_BYTES]; /* where the records go (a host file; on the M4F through semihosting) */
} pe_image;

/* The router: a key goes to pe when (key & mask) == key_match. */
typedef struct {
    uint32_t key_match;
    uint32_t mask;
    uint32_t pe;
} pe_route;

typedef struct {
    uint32_t kind;
    uint32_t n;             /* neurons in this PE's slice */
    uint32_t first;         /* the slice's first neuron in its population */
    uint32_t key_base;      /* neuron i of the slice sends key_base + i */
    uint32_t ring_slots;    /* 8 (models with delays) or 1 */
    uint32_t reset;         /* 0: V - threshold, 1: v_reset */
    uint32_t params_offset; /* float32 threshold, alpha, i_offset, v_reset, v_init, exc_decay, inh_decay [n]
                             * each, then int32 t_refrac [n] */
    uint32_t n_entries;     /* population table */
    uint32_t entries_offset;
    uint32_t max_inbox;     /* most keys that can arrive in one tick */
    uint32_t spikes_offset; /* PE_SOURCE: uint32 start[n_ticks + 1], then uint32 neuron[start[n_ticks]] */
} pe_desc;

typedef struct {
    uint32_t key_match;
    uint32_t mask;          /* the source neuron is key & ~mask */
    uint32_t kind;          /* PE_ROWS_DELAY, PE_ROWS_NO_DELAY, PE_CONV */
    uint32_t n_rows;        /* source neurons */
    uint32_t rows_offset;   /* uint32 row_start[n_rows + 1] into the words */
    uint32_t words_offset;  /* uint16 words */
    uint32_t conv_offset;   /* pe_conv */
} pe_entry;

typedef struct {
    uint32_t c_in, in_h, in_w, pool_y, pool_x, ph, pw;
    uint32_t c_out, k_h, k_w, stride_y, stride_x, pad_top, pad_left, oh, ow;
    uint32_t kernel_offset; /* int8 [c_in][c_out][k_h][k_w] */
} pe_conv;

/* Per tick and PE the program writes: the counters below, then (neuron PEs) float32 V[n], then uint8 spike[n]
 * padded to 4 bytes. After the last tick: PE_OUTPUT_MAGIC and n_ticks. */
typedef struct {
    uint32_t packets;   /* keys received (delivered this tick) */
    uint32_t rows;      /* population-table entries a key matched: synapse rows read (or conv kernels applied) */
    uint32_t words;     /* synapse words processed */
    uint32_t taps;      /* conv kernel weights applied */
    uint32_t tap_tests; /* conv kernel weights whose output position was tested against the slice */
    uint32_t held;      /* refractory neurons (V held) */
    uint32_t spikes;    /* neurons that spiked (or keys a source sent) */
    uint32_t t_deliver; /* platform counter over the delivery phase */
    uint32_t t_update;  /* platform counter over the neuron update */
} pe_counters;

/* The platform: image in memory, a free-running counter, an output sink. */
uint32_t plat_counter(void);         /* elapsed units since some start (0 where none is available) */
int plat_open_output(const char *path);
int plat_write(const void *data, uint32_t bytes);
void plat_close_output(void);

/* Run the image (at most image_bytes long; its header must not claim more): all PEs in lockstep for n_ticks.
 * Returns 0, or a negative code for a malformed image. */
int pe_run(const uint8_t *image, uint32_t image_bytes, uint8_t *arena, uint32_t arena_bytes);

#endif /* PE_H */
