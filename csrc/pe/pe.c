/*
 * The PE tick (see pe.h): drain the keys received since the last tick into the ring buffers, update the neurons
 * of this PE's slice in float32, send the spikes as keys. pe_run() runs every PE of an image in lockstep and
 * plays the router between ticks.
 *
 * Written to be compiled as it stands by any C99 compiler: no compiler extensions, no allocation beyond the
 * arena handed in, every index taken from the image checked once when the image is loaded.
 */
#include "pe.h"

#include <string.h>

#define COUNTER_MASK 0x00FFFFFFu /* the M4F's SysTick counts 24 bits */
#define MAX_COUNT 0x00FFFFFFu    /* bound on every count in an image, so sums and products of two stay in range */
#define MAX_DIM 0xFFFFu          /* bound on every conv dimension, stride and padding */

typedef struct {
    const pe_desc *d;
    const float *threshold, *alpha, *i_offset, *v_reset, *v_init, *exc_decay, *inh_decay;
    const int32_t *t_refrac;
    const pe_entry *entries;
    const uint32_t *spike_start, *spike_neuron; /* PE_SOURCE */
    float *v, *i_exc, *i_inh;
    int32_t *refrac;
    uint32_t *ring;                             /* [slot][exc, inh][neuron] */
    uint32_t *inbox, *inbox_next, *outbox;
    uint32_t n_inbox, n_next, n_out;
    uint8_t *spiked;
    pe_counters c;
} pe_state;

typedef struct {
    const uint8_t *image;
    uint32_t image_bytes;
    uint8_t *arena;
    uint32_t used, size;
} loader;

/* ---------------------------------------------------------------------------------------------------------------
 * Loading: every offset and index the tick uses is checked here.
 * ------------------------------------------------------------------------------------------------------------- */

static const void *at(const loader *ld, uint32_t offset, uint32_t count, uint32_t size)
{
    if (offset % 4 || offset > ld->image_bytes || (count && size > (ld->image_bytes - offset) / count))
        return NULL;
    return ld->image + offset;
}

static void *take(loader *ld, uint32_t count, uint32_t size)
{
    uint32_t bytes = count * size, start = (ld->used + 7u) & ~7u;
    if ((size && count > 0xFFFFFFFFu / size) || start > ld->size || bytes > ld->size - start)
        return NULL;
    ld->used = start + bytes;
    memset(ld->arena + start, 0, bytes);
    return ld->arena + start;
}

static int check_rows(const loader *ld, const pe_desc *d, const pe_entry *e)
{
    const uint32_t *rows = e->n_rows < MAX_COUNT ? (const uint32_t *)at(ld, e->rows_offset, e->n_rows + 1, 4) : NULL;
    const uint16_t *words;
    uint32_t k;
    if (!rows || rows[0] != 0)
        return -20;
    for (k = 0; k < e->n_rows; k++)
        if (rows[k + 1] < rows[k])
            return -21;
    words = (const uint16_t *)at(ld, e->words_offset, rows[e->n_rows], 2);
    if (!words)
        return -22;
    for (k = 0; k < rows[e->n_rows]; k++) {
        if (PE_WORD_TARGET(words[k]) >= d->n)
            return -23;
        if (e->kind == PE_ROWS_DELAY && PE_WORD_DELAY(words[k]) >= d->ring_slots)
            return -24;
    }
    return 0;
}

/* Every conv size is checked in 64 bits, so the tick's 32-bit index arithmetic cannot wrap. */
static int check_conv(const loader *ld, const pe_desc *d, const pe_entry *e)
{
    const pe_conv *g = (const pe_conv *)at(ld, e->conv_offset, 1, sizeof(pe_conv));
    const uint32_t *field;
    uint64_t kernel;
    if (!g)
        return -30;
    for (field = &g->c_in; field < &g->kernel_offset; field++)
        if (*field > MAX_DIM || (*field == 0 && field != &g->pad_top && field != &g->pad_left))
            return -30;
    if (g->ph != g->in_h / g->pool_y || g->pw != g->in_w / g->pool_x ||
        e->n_rows != (uint64_t)g->c_in * g->in_h * g->in_w)
        return -31;
    if ((uint64_t)d->first + d->n > (uint64_t)g->c_out * g->oh * g->ow ||
        (uint64_t)g->c_out * g->oh * g->ow > 0xFFFFFFFFu || d->ring_slots != 1)
        return -32;
    kernel = (uint64_t)g->c_in * g->c_out * g->k_h * g->k_w;
    if (kernel > MAX_COUNT || !at(ld, g->kernel_offset, (uint32_t)kernel, 1))
        return -33;
    return 0;
}

static int load_pe(loader *ld, const pe_image *img, const pe_desc *d, pe_state *s)
{
    uint32_t k, n = d->n;
    int rc;
    memset(s, 0, sizeof *s);
    s->d = d;
    if (n == 0 || n > 256 || d->kind > PE_CURR_EXP || (d->ring_slots != 1 && d->ring_slots != 8) || d->reset > 1 ||
        d->max_inbox > MAX_COUNT || d->first > MAX_COUNT || d->key_base > 0xFFFFFFFFu - n)
        return -10;
    s->outbox = (uint32_t *)take(ld, n, 4);
    s->spiked = (uint8_t *)take(ld, n, 1);
    s->inbox = (uint32_t *)take(ld, d->max_inbox + 1, 4);
    s->inbox_next = (uint32_t *)take(ld, d->max_inbox + 1, 4);
    if (!s->outbox || !s->spiked || !s->inbox || !s->inbox_next)
        return -11;
    if (d->kind == PE_SOURCE) {
        s->spike_start = (const uint32_t *)at(ld, d->spikes_offset, img->n_ticks + 1, 4);
        if (!s->spike_start)
            return -12;
        s->spike_neuron = (const uint32_t *)at(ld, d->spikes_offset + 4 * (img->n_ticks + 1),
                                               s->spike_start[img->n_ticks], 4);
        if (!s->spike_neuron)
            return -13;
        for (k = 0; k < img->n_ticks; k++)
            if (s->spike_start[k + 1] < s->spike_start[k])
                return -14;
        for (k = 0; k < s->spike_start[img->n_ticks]; k++)
            if (s->spike_neuron[k] >= n)
                return -15;
        return 0;
    }
    s->threshold = (const float *)at(ld, d->params_offset, 8 * n, 4);
    if (!s->threshold)
        return -16;
    s->alpha = s->threshold + n;
    s->i_offset = s->alpha + n;
    s->v_reset = s->i_offset + n;
    s->v_init = s->v_reset + n;
    s->exc_decay = s->v_init + n;
    s->inh_decay = s->exc_decay + n;
    s->t_refrac = (const int32_t *)(s->inh_decay + n);
    s->entries = (const pe_entry *)at(ld, d->entries_offset, d->n_entries, sizeof(pe_entry));
    s->v = (float *)take(ld, n, 4);
    s->i_exc = (float *)take(ld, n, 4);
    s->i_inh = (float *)take(ld, n, 4);
    s->refrac = (int32_t *)take(ld, n, 4);
    s->ring = (uint32_t *)take(ld, d->ring_slots * 2 * n, 4);
    if (!s->entries || !s->v || !s->i_exc || !s->i_inh || !s->refrac || !s->ring)
        return -17;
    for (k = 0; k < d->n_entries; k++) {
        rc = s->entries[k].kind == PE_CONV ? check_conv(ld, d, &s->entries[k]) : check_rows(ld, d, &s->entries[k]);
        if (rc)
            return rc;
        if (s->entries[k].kind > PE_CONV)
            return -18;
    }
    for (k = 0; k < n; k++)
        s->v[k] = s->v_init[k];
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Phase 1: delivery. A key's source neuron selects a row of synapse words (or, for a conv, the kernel taps that
 * reach this PE's slice); each adds its integer weight magnitude to the ring slot of its delay, exc or inh.
 * ------------------------------------------------------------------------------------------------------------- */

static uint32_t *ring_cell(pe_state *s, uint32_t slot, uint32_t inh, uint32_t neuron)
{
    return s->ring + (slot * 2u + inh) * s->d->n + neuron;
}

static void deliver_rows(pe_state *s, const pe_entry *e, const uint8_t *image, uint32_t src, uint32_t tick)
{
    const uint32_t *rows = (const uint32_t *)(image + e->rows_offset);
    const uint16_t *words = (const uint16_t *)(image + e->words_offset);
    const uint32_t slot_mask = s->d->ring_slots - 1u;
    uint32_t k;
    for (k = rows[src]; k < rows[src + 1]; k++) {
        const uint32_t w = words[k];
        if (e->kind == PE_ROWS_DELAY)
            *ring_cell(s, (tick + PE_WORD_DELAY(w)) & slot_mask, PE_WORD_INH(w), PE_WORD_TARGET(w)) +=
                PE_WORD_WEIGHT_DELAY(w);
        else
            *ring_cell(s, tick & slot_mask, PE_WORD_INH(w), PE_WORD_TARGET(w)) += PE_WORD_WEIGHT_NO_DELAY(w);
    }
    s->c.words += rows[src + 1] - rows[src];
}

static void deliver_conv(pe_state *s, const pe_entry *e, const uint8_t *image, uint32_t src)
{
    const pe_conv *g = (const pe_conv *)(image + e->conv_offset);
    const int8_t *kernel = (const int8_t *)(image + g->kernel_offset);
    const uint32_t c = src / (g->in_h * g->in_w), y = src / g->in_w % g->in_h, x = src % g->in_w;
    const int32_t py = (int32_t)(y / g->pool_y), px = (int32_t)(x / g->pool_x);
    uint32_t ky, kx, co;
    for (ky = 0; ky < g->k_h; ky++) {
        const int32_t ny = py + (int32_t)g->pad_top - (int32_t)ky;
        if (ny < 0 || ny % (int32_t)g->stride_y || (uint32_t)ny / g->stride_y >= g->oh)
            continue;
        for (kx = 0; kx < g->k_w; kx++) {
            const int32_t nx = px + (int32_t)g->pad_left - (int32_t)kx;
            if (nx < 0 || nx % (int32_t)g->stride_x || (uint32_t)nx / g->stride_x >= g->ow)
                continue;
            for (co = 0; co < g->c_out; co++) {
                const int32_t w = kernel[((c * g->c_out + co) * g->k_h + ky) * g->k_w + kx];
                const uint32_t target = (co * g->oh + (uint32_t)ny / g->stride_y) * g->ow + (uint32_t)nx / g->stride_x;
                s->c.tap_tests++;
                if (target < s->d->first || target >= s->d->first + s->d->n)
                    continue;
                *ring_cell(s, 0, w < 0, target - s->d->first) += (uint32_t)(w < 0 ? -w : w);
                s->c.taps++;
            }
        }
    }
}

static void deliver(pe_state *s, const uint8_t *image, uint32_t tick)
{
    uint32_t p, k;
    for (p = 0; p < s->n_inbox; p++) {
        const uint32_t key = s->inbox[p];
        for (k = 0; k < s->d->n_entries; k++) {
            const pe_entry *e = &s->entries[k];
            const uint32_t src = key & ~e->mask;
            if ((key & e->mask) != e->key_match || src >= e->n_rows)
                continue;
            s->c.rows++;
            if (e->kind == PE_CONV)
                deliver_conv(s, e, image, src);
            else
                deliver_rows(s, e, image, src, tick);
        }
    }
    s->c.packets = s->n_inbox;
    s->n_inbox = 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Phase 2: the neuron update, float32, in docs/datapath.md's order. The expressions are written as the spec
 * reads; one or two roundings of `x * a + b` is left to the compiler.
 * ------------------------------------------------------------------------------------------------------------- */

static float fire(pe_state *s, uint32_t i, float v)
{
    if (v >= s->threshold[i]) {
        v = s->d->reset ? s->v_reset[i] : v - s->threshold[i];
        s->outbox[s->n_out++] = s->d->key_base + i;
        s->spiked[i] = 1;
        s->c.spikes++;
        if (s->d->kind == PE_CURR_EXP)
            s->refrac[i] = s->t_refrac[i];
    }
    return v;
}

static void update_lif(pe_state *s, uint32_t tick)
{
    const uint32_t n = s->d->n;
    uint32_t *exc = ring_cell(s, tick & (s->d->ring_slots - 1u), 0, 0), *inh = exc + n;
    uint32_t i;
    for (i = 0; i < n; i++) {
        const float syn = (float)exc[i] - (float)inh[i];
        exc[i] = 0;
        inh[i] = 0;
        s->v[i] = fire(s, i, s->v[i] * s->alpha[i] + (syn + s->i_offset[i]));
    }
}

/* While refractory the neuron only counts down and holds V; the threshold test runs for every neuron. */
static void update_curr_exp(pe_state *s, uint32_t tick)
{
    const uint32_t n = s->d->n;
    uint32_t *exc = ring_cell(s, tick & (s->d->ring_slots - 1u), 0, 0), *inh = exc + n;
    uint32_t i;
    for (i = 0; i < n; i++) {
        float v = s->v[i];
        s->i_exc[i] = s->i_exc[i] * s->exc_decay[i] + (float)exc[i];
        s->i_inh[i] = s->i_inh[i] * s->inh_decay[i] + (float)inh[i];
        exc[i] = 0;
        inh[i] = 0;
        if (s->refrac[i] > 0) {
            s->refrac[i]--;
            s->c.held++;
        } else {
            v = v * s->alpha[i] + ((s->i_exc[i] - s->i_inh[i]) + s->i_offset[i]);
        }
        s->v[i] = fire(s, i, v);
    }
}

static void send_listed(pe_state *s, uint32_t tick)
{
    uint32_t k;
    for (k = s->spike_start[tick]; k < s->spike_start[tick + 1]; k++) {
        s->outbox[s->n_out++] = s->d->key_base + s->spike_neuron[k];
        s->spiked[s->spike_neuron[k]] = 1;
        s->c.spikes++;
    }
}

static void tick_pe(pe_state *s, const uint8_t *image, uint32_t tick)
{
    uint32_t t0, t1, t2;
    memset(&s->c, 0, sizeof s->c);
    memset(s->spiked, 0, s->d->n);
    s->n_out = 0;
    t0 = plat_counter();
    deliver(s, image, tick);
    t1 = plat_counter();
    if (s->d->kind == PE_SOURCE)
        send_listed(s, tick);
    else if (s->d->kind == PE_LIF)
        update_lif(s, tick);
    else
        update_curr_exp(s, tick);
    t2 = plat_counter();
    s->c.t_deliver = (t1 - t0) & COUNTER_MASK;
    s->c.t_update = (t2 - t1) & COUNTER_MASK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The router and the lockstep loop.
 * ------------------------------------------------------------------------------------------------------------- */

static int route(pe_state *pes, const pe_image *img, const pe_route *routes)
{
    uint32_t p, k, r;
    for (p = 0; p < img->n_pes; p++)
        for (k = 0; k < pes[p].n_out; k++)
            for (r = 0; r < img->n_routes; r++) {
                pe_state *to = &pes[routes[r].pe];
                if ((pes[p].outbox[k] & routes[r].mask) != routes[r].key_match)
                    continue;
                if (to->n_next >= to->d->max_inbox)
                    return -40;
                to->inbox_next[to->n_next++] = pes[p].outbox[k];
            }
    for (p = 0; p < img->n_pes; p++) {
        uint32_t *t = pes[p].inbox;
        pes[p].inbox = pes[p].inbox_next;
        pes[p].inbox_next = t;
        pes[p].n_inbox = pes[p].n_next;
        pes[p].n_next = 0;
    }
    return 0;
}

static int write_records(const pe_state *s)
{
    static const uint8_t pad[4] = {0, 0, 0, 0};
    const uint32_t n = s->d->n;
    int rc = plat_write(&s->c, sizeof s->c);
    if (s->d->kind != PE_SOURCE)
        rc |= plat_write(s->v, 4 * n);
    rc |= plat_write(s->spiked, n);
    if (n % 4)
        rc |= plat_write(pad, 4 - n % 4);
    return rc ? -50 : 0;
}

int pe_run(const uint8_t *image, uint32_t image_bytes, uint8_t *arena, uint32_t arena_bytes)
{
    const pe_image *img = (const pe_image *)image;
    loader ld;
    const pe_desc *descs;
    const pe_route *routes;
    pe_state *pes;
    uint32_t p, t, done[2];
    int rc = 0;
    if (image_bytes < sizeof(pe_image) || img->magic != PE_IMAGE_MAGIC || img->version != PE_IMAGE_VERSION ||
        img->n_pes == 0 || img->image_bytes > image_bytes || img->n_ticks > MAX_COUNT ||
        memchr(img->out_path, 0, PE_PATH_BYTES) == NULL)
        return -1;
    ld.image = image;
    ld.image_bytes = img->image_bytes;
    ld.arena = arena;
    ld.used = 0;
    ld.size = arena_bytes;
    descs = (const pe_desc *)at(&ld, img->pes_offset, img->n_pes, sizeof(pe_desc));
    routes = (const pe_route *)at(&ld, img->routes_offset, img->n_routes, sizeof(pe_route));
    pes = (pe_state *)take(&ld, img->n_pes, sizeof(pe_state));
    if (!descs || !routes || !pes)
        return -2;
    for (p = 0; p < img->n_routes; p++)
        if (routes[p].pe >= img->n_pes)
            return -3;
    for (p = 0; p < img->n_pes && !rc; p++)
        rc = load_pe(&ld, img, &descs[p], &pes[p]);
    if (rc)
        return rc;
    if (plat_open_output(img->out_path))
        return -4;
    for (t = 0; t < img->n_ticks && !rc; t++) {
        for (p = 0; p < img->n_pes; p++)
            tick_pe(&pes[p], image, t);
        for (p = 0; p < img->n_pes && !rc; p++)
            rc = write_records(&pes[p]);
        if (!rc)
            rc = route(pes, img, routes);
    }
    done[0] = PE_OUTPUT_MAGIC;
    done[1] = t;
    if (!rc && plat_write(done, sizeof done))
        rc = -50;
    plat_close_output();
    return rc;
}
