/*
 * s2sim C core: building a projection's rows from a connection list (s2sim/lowering.py calls these).
 *
 * One pass over the synapses, no temporaries: Python allocates every output. That keeps loading a list of many
 * millions of synapses fast (a counting sort instead of an argsort, a pair bitmap instead of np.unique) and its
 * memory at the size of what the kernel keeps. Python has checked the indices against the population sizes, but
 * they are checked again here because they decide where these functions write.
 */
#include "s2sim.h"

#include <string.h>

/* The internal index of external neuron i (map NULL: the same), or -1 when outside 0..n-1. */
static inline int64_t internal(const int32_t *map, int32_t i, int32_t n)
{
    if (i < 0 || i >= n)
        return -1;
    return map ? map[i] : i;
}

int s2_build_dense(int64_t m, const int32_t *pre, const int32_t *post, const int8_t *weight, const int32_t *pre_map,
                   const int32_t *post_map, int32_t n_pre, int32_t n_post, int8_t *dense, uint8_t *seen,
                   int32_t *row_nnz, int64_t *abs_sum)
{
    for (int64_t k = 0; k < m; k++) {
        const int64_t i = internal(pre_map, pre[k], n_pre), j = internal(post_map, post[k], n_post);
        if (i < 0 || j < 0 || i >= n_pre || j >= n_post)
            return S2_ERR_INVALID;
        const int64_t at = i * n_post + j;
        if (seen[at >> 3] & (1u << (at & 7)))
            return S2_REPEATED_PAIR;
        seen[at >> 3] |= (uint8_t)(1u << (at & 7));
        dense[at] = weight[k];
        row_nnz[i]++;
        abs_sum[j] += weight[k] < 0 ? -weight[k] : weight[k];
    }
    return S2_OK;
}

int s2_build_rows(int64_t m, const int32_t *pre, const int32_t *post, const int8_t *weight, const uint8_t *delay,
                  const int32_t *pre_map, const int32_t *post_map, int32_t n_pre, int32_t n_post, int64_t *row_ptr,
                  int64_t *cursor, int32_t *target, int8_t *weight_out, uint8_t *delay_out, int64_t *abs_sum)
{
    /* counting sort by pre neuron: row lengths, their running sum, then every synapse to its row's next slot
     * (stable: a row keeps the list's order) */
    memset(row_ptr, 0, sizeof(int64_t) * ((size_t)n_pre + 1));
    for (int64_t k = 0; k < m; k++) {
        const int64_t i = internal(pre_map, pre[k], n_pre), j = internal(post_map, post[k], n_post);
        if (i < 0 || j < 0 || i >= n_pre || j >= n_post)
            return S2_ERR_INVALID;
        row_ptr[i + 1]++;
    }
    for (int32_t i = 0; i < n_pre; i++) {
        row_ptr[i + 1] += row_ptr[i];
        cursor[i] = row_ptr[i];
    }
    for (int64_t k = 0; k < m; k++) {
        const int64_t at = cursor[internal(pre_map, pre[k], n_pre)]++;
        const int64_t j = internal(post_map, post[k], n_post);
        target[at] = (int32_t)j;
        weight_out[at] = weight[k];
        if (delay_out)
            delay_out[at] = delay[k];
        abs_sum[j] += weight[k] < 0 ? -weight[k] : weight[k];
    }
    return S2_OK;
}
