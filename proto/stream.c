/* A tensor streamed into memory, reduced as it arrives (codec_impl.h: proto_stream). */
#include <string.h>

#include "codec_impl.h"

int proto_stream_feed(proto_stream *s, const char *bytes, size_t n, qdq_error *err)
{
    if (n == 0)
        return 0;
    if (n > s->len - s->got)
        return qdq_fail(err, QDQ_EINVAL, "body is longer than the tensor: shape needs %llu bytes "
                        "of data", (unsigned long long)s->len);
    const qdq_plan *plan = s->plan;
    memcpy(s->data + s->got, bytes, n);
    s->got += n;
    uint64_t complete = s->got / qdq_dtype_size(plan->dtype);
    if (complete <= s->done_elems)
        return 0;
    if (s->range_given) {
        /* Whole blocks (all of it at the end), for statistics that do not depend on the cut. */
        uint64_t upto = complete == plan->count || !s->stats
                            ? complete : complete / PROTO_STATS_BLOCK * PROTO_STATS_BLOCK;
        if (upto > s->done_elems) {
            proto_apply_merge(plan, s->params, s->data, s->data, s->done_elems, upto, s->stats);
            s->done_elems = upto;
        }
        return 0;
    }
    /* On the last axis a call folds every channel into the accumulator once: the reduction waits
     * for 32 rows (or the end), so that costs 1/32 of the work or less, where a 32 KiB chunk is 2
     * rows of 4096 float32 (the reduction of such a tensor in 32 KiB chunks took 5x its time in
     * one call; in batches of 32 rows 1.15x). */
    uint64_t batch = plan->inner == 1 && plan->channels > 1 ? 32 * plan->channels : 1;
    if (complete - s->done_elems >= batch || complete == plan->count) {
        qdq_reduce(plan, s->acc, s->data, s->done_elems, complete);
        s->done_elems = complete;
    }
    return 0;
}

void proto_stream_params(proto_stream *s)
{
    if (!s->range_given)
        qdq_params_from_acc(s->plan, s->acc, s->data, s->params);
}

void proto_apply_blocks(const qdq_plan *plan, const void *params, const void *in, void *out,
                        uint64_t b, uint64_t e, qdq_stats *blocks)
{
    if (!blocks) {
        qdq_apply_stats(plan, params, in, out, b, e, NULL);
        return;
    }
    for (uint64_t i = b; i < e; i += PROTO_STATS_BLOCK, blocks++) {
        uint64_t j = e - i < PROTO_STATS_BLOCK ? e : i + PROTO_STATS_BLOCK;
        qdq_stats_init(blocks);
        qdq_apply_stats(plan, params, in, out, i, j, blocks);
    }
}

void proto_apply_merge(const qdq_plan *plan, const void *params, const void *in, void *out,
                       uint64_t b, uint64_t e, qdq_stats *st)
{
    if (!st) {
        qdq_apply_stats(plan, params, in, out, b, e, NULL);
        return;
    }
    for (uint64_t i = b; i < e; i += PROTO_STATS_BLOCK) {
        uint64_t j = e - i < PROTO_STATS_BLOCK ? e : i + PROTO_STATS_BLOCK;
        qdq_stats one;
        qdq_stats_init(&one);
        qdq_apply_stats(plan, params, in, out, i, j, &one);
        qdq_stats_merge(st, &one);
    }
}
