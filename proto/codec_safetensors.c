/*
 * The safetensors codec (docs/api.md, "Whole checkpoints"): a whole checkpoint in, of any size,
 * streamed; the checkpoint out (its quantized tensors replaced by the op's output, every other
 * byte as it was), or the report of what the quantization did.
 *
 * The body is taken in order: the 8-byte length N, the N bytes of header (checked rule by rule,
 * safetensors.c), then each tensor's bytes in data order. As soon as the header is in, the
 * policy is resolved for every tensor (a policy wrong for the checkpoint fails before any data
 * is computed) and the answer's header is written. A tensor to quantize is received into one
 * buffer (its min/max folded into the copy, proto_stream) and, once whole, transformed with its
 * error statistics in one pass and written out; every other tensor's bytes go straight out. The
 * answer waits in a file (the host's spool, or the qdq command's output), so memory holds the
 * largest tensor and a constant, whatever the checkpoint's size. The report is built as the
 * tensors complete; nothing is left to do when the body ends.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec_impl.h"
#include "policy.h"
#include "safetensors.h"

#define STAGE_CAP (1u << 20) /* passed-through bytes gathered for one write */
#define FIXED_MEMORY (16u << 20) /* the header, the stage, the report: a budget's constant */

static const char *const range_suffix[6] = { ".qdq_input_min", ".qdq_input_max",
                                             ".qdq_output_min", ".qdq_output_max",
                                             ".qdq_scale", ".qdq_inverse_scale" };

typedef struct st {
    proto_policy *policy;
    bool ranges_tensors;   /* ?ranges=tensors: the ranges are appended as tensors */
    bool report;           /* the answer is the report (Accept: application/json) */
    /* The body. */
    uint8_t prefix[8];
    size_t prefix_got;
    uint64_t n;            /* the header's length */
    proto_buf text;        /* the header as it arrives */
    bool have_header;
    proto_st_header h;
    uint64_t data_got;     /* bytes of the data section so far */
    size_t next;           /* the tensor being received: h.by_offset[next] */
    /* The tensor being received, when it is quantized. */
    bool quantizing;
    bool applied;          /* done from the caller's bytes, whole (compute_whole) */
    proto_action act;
    proto_result res;
    proto_stream stream;
    char *tbuf;            /* the tensor, when it comes in pieces */
    size_t tcap;
    char *rbuf;            /* a round of a tensor that came whole (compute_whole) */
    size_t rcap;
    uint64_t largest;      /* the largest tensor to quantize, in bytes */
    /* The answer's file. */
    int fd;
    uint64_t out_header;   /* bytes of the answer's prefix and header */
    uint64_t extras_at;    /* where the next range tensor's bytes go */
    uint64_t written;      /* bytes written to the file (for the host's gauge) */
    char *stage;
    size_t stage_len;
    uint64_t stage_at;     /* the file offset of stage[0] */
    /* The report. */
    proto_buf entries;     /* the tensors' entries, comma-separated */
    uint64_t quantized, skipped, passthrough, elements;
    double sqnr_min;
    bool have_sqnr;
    char *worst;           /* the tensor of the lowest SQNR */
} st;

static st *state(const proto_xchg *x) { return x->priv; }

/* ---- the answer's file ---- */

static int write_at(proto_xchg *x, const char *p, size_t n, uint64_t at, qdq_error *err)
{
    st *s = state(x);
    while (n > 0) {
        ssize_t k = pwrite(s->fd, p, n, (off_t)at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            if (e == ENOSPC || e == EFBIG || e == EDQUOT)
                return qdq_fail(err, PROTO_ESPACE, "the spool's file system is full: %llu bytes "
                                "of the answer could not be written (%s)",
                                (unsigned long long)n, strerror(e));
            return qdq_fail(err, PROTO_EINTERNAL, "writing the answer: %s", strerror(e));
        }
        p += k, n -= (size_t)k, at += (uint64_t)k;
        if (at > s->written) {
            if (x->host->spool_account)
                x->host->spool_account(x->host->cls, (int64_t)(at - s->written));
            s->written = at;
        }
    }
    return 0;
}

static int flush_stage(proto_xchg *x, qdq_error *err)
{
    st *s = state(x);
    if (!s->stage_len)
        return 0;
    int rc = write_at(x, s->stage, s->stage_len, s->stage_at, err);
    s->stage_at += s->stage_len;
    s->stage_len = 0;
    return rc;
}

/* Bytes that pass through, at data offset `at`: gathered, then written in large pieces. */
static int pass_bytes(proto_xchg *x, const char *p, size_t n, uint64_t at, qdq_error *err)
{
    st *s = state(x);
    if (s->fd < 0)
        return 0;
    uint64_t off = s->out_header + at;
    if (s->stage_len && s->stage_at + s->stage_len != off && flush_stage(x, err))
        return err->code;
    if (!s->stage_len && n >= STAGE_CAP) /* large already: written from where it is */
        return write_at(x, p, n, off, err);
    if (!s->stage_len)
        s->stage_at = off;
    while (n > 0) {
        size_t k = STAGE_CAP - s->stage_len < n ? STAGE_CAP - s->stage_len : n;
        memcpy(s->stage + s->stage_len, p, k);
        s->stage_len += k, p += k, n -= k;
        if (s->stage_len == STAGE_CAP && flush_stage(x, err))
            return err->code;
    }
    return 0;
}

/* ---- the report ---- */

static int put(proto_buf *b, const char *t) { return proto_buf_append(b, t, strlen(t)); }

/* The start of a tensor's entry: {"name":...,"dtype":...,"shape":[...],"action":... */
static int entry_head(proto_buf *b, const proto_st_tensor *t, proto_act act)
{
    int rc = proto_buf_append(b, b->len ? "," : "", b->len ? 1 : 0);
    rc = rc || put(b, "{\"name\":") || proto_st_json_string(b, t->name, t->name_len);
    rc = rc || put(b, ",\"dtype\":\"") || put(b, proto_st_dtype_name(t->dtype)) ||
         put(b, "\",\"shape\":[");
    for (int i = 0; i < t->rank && !rc; i++) {
        char d[24];
        snprintf(d, sizeof d, "%s%lld", i ? "," : "", (long long)t->dims[i]);
        rc = put(b, d);
    }
    rc = rc || put(b, "],\"action\":\"") || put(b, proto_act_name(act)) || put(b, "\"");
    return rc ? PROTO_ENOMEM : 0;
}

/* A tensor passed through or skipped: its entry, with the reason. */
/* Whether anyone reads the report (the answer is it, or the host asks for it). */
static bool reporting(const proto_xchg *x) { return state(x)->report || x->host->reports; }

static int report_left(proto_xchg *x, const proto_st_tensor *t, const proto_action *a)
{
    st *s = state(x);
    if (a->act == PROTO_ACT_SKIP)
        s->skipped++;
    else
        s->passthrough++;
    if (!reporting(x))
        return 0;
    int rc = entry_head(&s->entries, t, a->act);
    rc = rc || put(&s->entries, ",\"reason\":") ||
         proto_st_json_string(&s->entries, a->reason, strlen(a->reason)) ||
         put(&s->entries, "}");
    return rc ? PROTO_ENOMEM : 0;
}

/* A quantized tensor: its attributes, ranges and statistics. */
static int report_quantized(proto_xchg *x, const proto_st_tensor *t)
{
    st *s = state(x);
    s->quantized++;
    s->elements += t->count;
    if (!reporting(x))
        return 0;
    qdq_stats_summary sum;
    qdq_stats_summarize(&s->res.stats, &sum);
    if (!sum.sqnr_null && !isnan(sum.sqnr_db) && (!s->have_sqnr || sum.sqnr_db < s->sqnr_min)) {
        s->have_sqnr = true;
        s->sqnr_min = sum.sqnr_db;
        free(s->worst);
        s->worst = malloc(t->name_len + 1);
        if (s->worst)
            memcpy(s->worst, t->name, t->name_len + 1);
    }
    proto_buf *b = &s->entries;
    int rc = entry_head(b, t, PROTO_ACT_QUANTIZE);
    rc = rc || put(b, ",\"attrs\":") || proto_policy_attrs_json(&s->act, b);
    rc = rc || proto_json_put_ranges(b, &s->res.plan, s->res.params);
    rc = rc || put(b, ",\"stats\":") || proto_stats_json(&s->res.stats, b) || put(b, "}");
    return rc ? PROTO_ENOMEM : 0;
}

/* ---- the header ---- */

/* Resolves every tensor (a wrong policy fails here, before any data is computed) and builds
 * the policy's metadata and the range tensors' list; then the answer's header goes out. */
static int take_header(proto_xchg *x, qdq_error *err)
{
    st *s = state(x);
    const proto_limits *lim = &x->host->lim;
    proto_st_header *h = &s->h;
    proto_buf meta = { 0 }, out = { 0 };
    proto_st_extra *extra = NULL;
    int64_t *dims = NULL;
    char **names = NULL;
    size_t n_extra = 0;
    int rc = 0;
    if (put(&meta, "{\"defaults\":") || proto_policy_json(s->policy, &meta) ||
        put(&meta, ",\"tensors\":{")) {
        rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the policy");
        goto out;
    }
    if (s->ranges_tensors) {
        extra = calloc(6 * h->n_tensors + 1, sizeof *extra);
        dims = calloc(h->n_tensors + 1, sizeof *dims);
        names = calloc(6 * h->n_tensors + 1, sizeof *names);
        if (!extra || !dims || !names) {
            rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the range tensors");
            goto out;
        }
    }
    bool first = true;
    for (size_t j = 0; j < h->n_tensors; j++) {
        /* In data order, so that the range tensors follow their tensors' order. */
        const proto_st_tensor *t = &h->tensors[h->by_offset[j]];
        proto_action a;
        if ((rc = proto_policy_resolve(s->policy, t, lim, &a, err)))
            goto out;
        if (a.act == PROTO_ACT_QUANTIZE) {
            uint64_t bytes = t->end - t->begin;
            if (bytes > s->largest)
                s->largest = bytes;
            rc = proto_buf_append(&meta, first ? "" : ",", first ? 0 : 1) ||
                 proto_st_json_string(&meta, t->name, t->name_len) || put(&meta, ":") ||
                 proto_policy_attrs_json(&a, &meta);
            first = false;
            if (s->ranges_tensors && !rc) {
                qdq_plan plan;
                qdq_error ignore = { 0 };
                qdq_plan_init(&plan, a.req.dtype, a.req.dims, a.req.rank, &a.req.attrs, &ignore);
                dims[j] = (int64_t)plan.channels;
                for (int k = 0; k < 6 && !rc; k++) {
                    size_t len = t->name_len + strlen(range_suffix[k]);
                    char *nm = names[n_extra] = malloc(len + 1);
                    if (!nm) {
                        rc = PROTO_ENOMEM;
                        break;
                    }
                    memcpy(nm, t->name, t->name_len);
                    memcpy(nm + t->name_len, range_suffix[k], strlen(range_suffix[k]) + 1);
                    extra[n_extra++] = (proto_st_extra){
                        nm, a.req.dtype == QDQ_FLOAT64 ? PROTO_ST_F64 : PROTO_ST_F32,
                        a.req.attrs.axis < 0 ? 0 : 1, &dims[j] };
                }
            }
            if (rc) {
                proto_action_clear(&a);
                rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the policy");
                goto out;
            }
        }
        proto_action_clear(&a);
    }
    if (put(&meta, "}}") || proto_buf_append(&meta, "", 1)) {
        rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the policy");
        goto out;
    }
    if ((rc = proto_st_header_write(h, meta.data, extra, n_extra, &out, err)))
        goto out;
    s->out_header = out.len;
    s->extras_at = out.len + h->data_len;
    if (!s->report) {
        uint64_t total = s->extras_at;
        for (size_t i = 0; i < n_extra; i++) {
            uint64_t b = 0;
            proto_st_bytes(extra[i].dtype, extra[i].dims, extra[i].rank, NULL, &b);
            total += b;
        }
        if (!x->host->spool_open) {
            rc = qdq_fail(err, PROTO_EINTERNAL, "no place for the answer's file");
            goto out;
        }
        if (s->fd < 0)
            s->fd = x->host->spool_open(x->host->cls, total, err);
        if (s->fd < 0) {
            rc = err->code;
            goto out;
        }
        s->stage = malloc(STAGE_CAP);
        if (!s->stage) {
            rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the answer");
            goto out;
        }
        rc = write_at(x, out.data, out.len, 0, err);
    }
out:
    for (size_t i = 0; names && i < n_extra; i++)
        free(names[i]);
    free(names);
    free(extra);
    free(dims);
    proto_buf_free(&meta);
    proto_buf_free(&out);
    return rc;
}

/* ---- the data ---- */

static int tensor_buffer(proto_xchg *x, qdq_error *err);

/* Sets up tensor j (of h.by_offset) to receive its bytes: to quantize, or to pass through. */
static int tensor_begin(proto_xchg *x, qdq_error *err)
{
    st *s = state(x);
    const proto_st_tensor *t = &s->h.tensors[s->h.by_offset[s->next]];
    int rc = proto_policy_resolve(s->policy, t, &x->host->lim, &s->act, err);
    if (rc)
        return rc;
    s->quantizing = s->act.act == PROTO_ACT_QUANTIZE;
    if (!s->quantizing)
        return 0;
    proto_request *q = &s->act.req;
    /* The statistics are the report's: computed only when someone reads it. */
    q->want_stats = reporting(x);
    if ((rc = proto_plan(q, &x->host->lim, &s->res, err)))
        return rc;
    qdq_stats_init(&s->res.stats);
    if (q->attrs.range_given &&
        (rc = qdq_params_given(&s->res.plan, q->min, q->n_min, q->max, q->n_max, s->res.params,
                               err)))
        return rc;
    s->stream = (proto_stream){ &s->res.plan, s->res.acc, s->res.params, q->attrs.range_given,
                                NULL, t->end - t->begin, 0, 0,
                                q->want_stats ? &s->res.stats : NULL };
    return t->end == t->begin ? tensor_buffer(x, err) : 0;
}

/* The tensor comes in pieces: a buffer for all of it (the largest tensor's, kept). */
static int tensor_buffer(proto_xchg *x, qdq_error *err)
{
    st *s = state(x);
    uint64_t bytes = s->stream.len;
    if (!s->tbuf || s->tcap < bytes) {
        if (s->tbuf)
            x->host->buf_put(x->host->cls, s->tbuf, s->tcap, true);
        s->tbuf = x->host->buf_get(x->host->cls, bytes ? (size_t)bytes : 1, &s->tcap);
        if (!s->tbuf)
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for tensor '%s' (%llu bytes)",
                            s->h.tensors[s->h.by_offset[s->next]].name,
                            (unsigned long long)bytes);
    }
    s->stream.data = s->tbuf;
    return 0;
}

/* ---- a tensor whose bytes came whole: computed from them, in parts on the host's threads ---- */

#define ROUND (8u << 20)    /* bytes computed at a time: the output goes out from cache */
#define PART_MIN (1u << 20) /* bytes a part of a round is worth a thread for, at least */
#define MAX_PARTS 64

typedef struct whole {
    const qdq_plan *plan;
    const char *in;      /* the tensor's bytes (element 0) */
    char *out;           /* where element b of the round goes */
    void *params;
    char *accs;          /* one accumulator per part (part 0's is acc0) */
    size_t acc_size;
    void *acc0;
    qdq_stats *blocks;   /* the round's blocks' statistics, or NULL */
    uint64_t b, e;       /* the round's elements */
} whole;

/* The elements of part i of n of the round: whole blocks of PROTO_STATS_BLOCK (and the end). */
static void part_range(const whole *w, int i, int n, uint64_t *b, uint64_t *e)
{
    uint64_t blocks = (w->e - w->b + PROTO_STATS_BLOCK - 1) / PROTO_STATS_BLOCK;
    *b = w->b + blocks * (uint64_t)i / (uint64_t)n * PROTO_STATS_BLOCK;
    *e = w->b + blocks * (uint64_t)(i + 1) / (uint64_t)n * PROTO_STATS_BLOCK;
    *b = *b < w->e ? *b : w->e;
    *e = *e < w->e ? *e : w->e;
}

static void reduce_part(void *ctx, int i, int n)
{
    whole *w = ctx;
    uint64_t b, e;
    part_range(w, i, n, &b, &e);
    void *acc = i ? w->accs + (size_t)(i - 1) * w->acc_size : w->acc0;
    if (b < e)
        qdq_reduce(w->plan, acc, w->in, b, e);
}

static void apply_part(void *ctx, int i, int n)
{
    whole *w = ctx;
    uint64_t b, e;
    part_range(w, i, n, &b, &e);
    /* The kernels index in and out by element: out as if the round's buffer held them all. */
    char *out = (char *)((uintptr_t)w->out - w->b * qdq_dtype_size(w->plan->dtype));
    if (b < e)
        proto_apply_blocks(w->plan, w->params, w->in, out, b, e,
                           w->blocks ? w->blocks + (b - w->b) / PROTO_STATS_BLOCK : NULL);
}

static void parallel(proto_xchg *x, void (*fn)(void *, int, int), void *ctx, int n)
{
    if (n > 1 && x->host->parallel)
        x->host->parallel(x->host->cls, fn, ctx, n);
    else
        for (int i = 0; i < n; i++)
            fn(ctx, i, n);
}

static void consumed(proto_xchg *x, const char *p, uint64_t n)
{
    if (x->host->consumed)
        x->host->consumed(x->host->cls, p, (size_t)n);
}

/*
 * The whole tensor is at in (the caller's bytes, e.g. a mapped file): reduced from there, then
 * transformed a round at a time into a buffer that goes to the answer's file while in cache,
 * with no copy of the tensor first. Rounds are cut in parts on the host's threads.
 */
static int compute_whole(proto_xchg *x, const char *in, qdq_error *err)
{
    st *s = state(x);
    const qdq_plan *plan = &s->res.plan;
    uint64_t bytes = s->stream.len, ds = qdq_dtype_size(plan->dtype);
    uint64_t round = ROUND / ds; /* elements; a multiple of PROTO_STATS_BLOCK */
    size_t need = bytes < ROUND ? (size_t)bytes : ROUND;
    if (s->rcap < need) {
        free(s->rbuf);
        s->rcap = 0;
        if (!(s->rbuf = malloc(need)))
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for tensor '%s'",
                            s->h.tensors[s->h.by_offset[s->next]].name);
        s->rcap = need;
    }
    int n = x->host->parallel ? x->host->threads : 1;
    uint64_t most = need / PART_MIN;
    if ((uint64_t)n > most)
        n = most > 1 ? (int)most : 1;
    n = n < MAX_PARTS ? n : MAX_PARTS;
    whole w = { plan, in, s->rbuf, s->res.params, NULL, qdq_acc_size(plan), s->res.acc, NULL,
                0, 0 };
    qdq_stats blocks[ROUND / PROTO_STATS_BLOCK];
    w.blocks = s->stream.stats ? blocks : NULL;
    if (!s->stream.range_given) {
        if (n > 1 && !(w.accs = malloc((size_t)(n - 1) * w.acc_size)))
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for the reduction");
        for (int i = 1; i < n; i++)
            qdq_acc_init(plan, w.accs + (size_t)(i - 1) * w.acc_size);
        for (w.b = 0; w.b < plan->count; w.b = w.e) {
            w.e = plan->count - w.b < round ? plan->count : w.b + round;
            parallel(x, reduce_part, &w, n);
            consumed(x, in + w.b * ds, (w.e - w.b) * ds);
        }
        for (int i = 1; i < n; i++)
            qdq_acc_merge(plan, s->res.acc, w.accs + (size_t)(i - 1) * w.acc_size);
        free(w.accs);
        qdq_params_from_acc(plan, s->res.acc, in, s->res.params);
    }
    const proto_st_tensor *t = &s->h.tensors[s->h.by_offset[s->next]];
    for (w.b = 0; w.b < plan->count; w.b = w.e) {
        w.e = plan->count - w.b < round ? plan->count : w.b + round;
        parallel(x, apply_part, &w, n);
        for (uint64_t k = 0; w.blocks && k * PROTO_STATS_BLOCK < w.e - w.b; k++)
            qdq_stats_merge(&s->res.stats, &blocks[k]);
        if (s->fd >= 0 && write_at(x, s->rbuf, (size_t)((w.e - w.b) * ds),
                                   s->out_header + t->begin + w.b * ds, err))
            return err->code;
        consumed(x, in + w.b * ds, (w.e - w.b) * ds);
    }
    s->stream.got = bytes;
    s->applied = true;
    return 0;
}

/* The tensor is whole: transformed with its statistics, written out, reported. */
static int tensor_end(proto_xchg *x, qdq_error *err)
{
    st *s = state(x);
    const proto_st_tensor *t = &s->h.tensors[s->h.by_offset[s->next]];
    int rc = 0;
    if (!s->quantizing) {
        rc = report_left(x, t, &s->act);
    } else {
        const qdq_plan *plan = &s->res.plan;
        if (!s->applied && !s->act.req.attrs.range_given) {
            proto_stream_params(&s->stream);
            proto_apply_merge(plan, s->res.params, s->tbuf, s->tbuf, 0, plan->count,
                              s->stream.stats);
        }
        if (s->fd >= 0) {
            rc = flush_stage(x, err) ||
                 (!s->applied && write_at(x, s->tbuf, (size_t)(t->end - t->begin),
                                          s->out_header + t->begin, err));
            /* The ranges as tensors: F32 (F64 for F64), one value per channel. */
            bool dbl = plan->dtype == QDQ_FLOAT64;
            size_t es = dbl ? 8 : 4;
            for (int k = 0; k < 6 && !rc && s->ranges_tensors; k++) {
                char *v = malloc(plan->channels * es + 1);
                if (!v)
                    return qdq_fail(err, PROTO_ENOMEM, "out of memory for the ranges");
                for (uint64_t c = 0; c < plan->channels; c++) {
                    qdq_range g;
                    qdq_params_get(plan, s->res.params, c, &g);
                    double d[6] = { g.input_min, g.input_max, g.output_min, g.output_max,
                                    g.scale, g.inverse_scale };
                    float f = (float)d[k];
                    memcpy(v + c * es, dbl ? (void *)&d[k] : (void *)&f, es);
                }
                rc = write_at(x, v, plan->channels * es, s->extras_at, err);
                s->extras_at += plan->channels * es;
                free(v);
            }
            if (rc)
                return err->code;
        }
        x->elements += plan->count;
        if (report_quantized(x, t))
            rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for the report");
        proto_result_clear(&s->res);
    }
    proto_action_clear(&s->act);
    s->quantizing = s->applied = false;
    x->st_tensors++;
    s->next++;
    if (x->host->progress)
        x->host->progress(x->host->cls, 8 + s->n + t->end);
    return rc;
}

/* Data bytes [s->data_got, + n): through the tensors they belong to. */
static int feed_data(proto_xchg *x, const char *p, size_t n, qdq_error *err)
{
    st *s = state(x);
    proto_st_header *h = &s->h;
    int rc;
    for (;;) {
        /* Tensors that end here (empty ones among them) are done before more bytes go in. */
        while (s->next < h->n_tensors) {
            const proto_st_tensor *t = &h->tensors[h->by_offset[s->next]];
            if (t->end > s->data_got)
                break;
            if (t->end == t->begin && (rc = tensor_begin(x, err)))
                return rc;
            if ((rc = tensor_end(x, err)))
                return rc;
        }
        if (n == 0)
            return 0;
        if (s->next == h->n_tensors)
            return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: %zu bytes follow the data "
                            "section's end (byte %llu of the data, the last tensor's end)", n,
                            (unsigned long long)h->data_len);
        const proto_st_tensor *t = &h->tensors[h->by_offset[s->next]];
        bool fresh = s->data_got == t->begin;
        if (fresh && (rc = tensor_begin(x, err)))
            return rc;
        size_t k = t->end - s->data_got < n ? (size_t)(t->end - s->data_got) : n;
        /* All its bytes are here, aligned for its type (the kernels load whole elements;
         * safetensors does not align tensors): computed from where they are. */
        if (s->quantizing && fresh && k == t->end - t->begin &&
            (uintptr_t)p % qdq_dtype_size(s->res.plan.dtype) == 0)
            rc = compute_whole(x, p, err);
        else if (s->quantizing)
            rc = (fresh && tensor_buffer(x, err)) || proto_stream_feed(&s->stream, p, k, err)
                     ? err->code : 0;
        else
            rc = pass_bytes(x, p, k, s->data_got, err);
        if (rc)
            return rc;
        s->data_got += k;
        x->st_bytes += k;
        p += k, n -= k;
    }
}

/* ---- the codec ---- */

typedef struct qarg {
    st *s;
    qdq_error *err;
} qarg;

static int query_arg(void *ctx, const char *key, const char *value)
{
    qarg *q = ctx;
    value = value ? value : "";
    if (strcmp(key, "ranges") == 0) {
        if (strcmp(value, "tensors") != 0 && strcmp(value, "") != 0 && strcmp(value, "none") != 0)
            return qdq_fail(q->err, QDQ_EINVAL, "ranges: '%.40s' is not tensors or none", value);
        q->s->ranges_tensors = strcmp(value, "tensors") == 0;
        return 0;
    }
    int rc = proto_policy_arg(q->s->policy, key, value, q->err);
    if (rc == PROTO_POLICY_NOT_MINE)
        return qdq_fail(q->err, QDQ_EINVAL, "unknown query parameter \"%.40s\" for a checkpoint "
                        "(expected num_bits, signed_input, range_given, input_min, input_max, "
                        "round_mode, narrow_range, axis, include, exclude, rules, ranges)", key);
    return rc;
}

static int begin(proto_xchg *x, const proto_args *a, qdq_error *err)
{
    st *s = calloc(1, sizeof *s);
    if (!s)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for the checkpoint");
    x->priv = s;
    s->fd = -1;
    s->report = x->want_json;
    s->policy = proto_policy_new();
    if (!s->policy)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for the policy");
    qarg q = { s, err };
    if (a->query && a->query(a->cls, query_arg, &q))
        return err->code;
    const char *rules = a->header ? a->header(a->cls, "X-QDQ-Rules") : NULL;
    if (rules && proto_policy_rules(s->policy, rules, strlen(rules), err))
        return err->code;
    /* A declared length the spool cannot hold is refused before the body is read (the file
     * is the answer's). */
    if (!s->report && a->length != PROTO_LENGTH_UNKNOWN && x->host->spool_open &&
        (s->fd = x->host->spool_open(x->host->cls, a->length, err)) < 0)
        return err->code;
    return 0;
}

static int feed(proto_xchg *x, const char *p, size_t n, qdq_error *err)
{
    st *s = state(x);
    int rc;
    if (s->prefix_got < 8) {
        size_t k = 8 - s->prefix_got < n ? 8 - s->prefix_got : n;
        memcpy(s->prefix + s->prefix_got, p, k);
        s->prefix_got += k, p += k, n -= k;
        if (s->prefix_got < 8)
            return 0;
        if ((rc = proto_st_prefix(s->prefix, x->length, &s->n, err)))
            return rc;
        if (proto_buf_reserve(&s->text, (size_t)s->n + 1))
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for a %llu-byte header",
                            (unsigned long long)s->n);
    }
    if (!s->have_header) {
        size_t k = s->n - s->text.len < n ? (size_t)(s->n - s->text.len) : n;
        proto_buf_append(&s->text, p, k); /* reserved above */
        p += k, n -= k;
        if (s->text.len < s->n)
            return 0;
        uint64_t data = x->length == PROTO_LENGTH_UNKNOWN ? PROTO_LENGTH_UNKNOWN
                                                          : x->length - 8 - s->n;
        if ((rc = proto_st_header_parse(s->text.data, (size_t)s->n, data, &x->host->lim, &s->h,
                                        err)))
            return rc;
        proto_buf_free(&s->text);
        s->have_header = true;
        if ((rc = take_header(x, err)))
            return rc;
    }
    return feed_data(x, p, n, err);
}

static int end(proto_xchg *x, proto_work *w, qdq_error *err)
{
    st *s = state(x);
    int rc;
    if (s->prefix_got < 8)
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: the body ends after %zu bytes, "
                        "inside the 8-byte header length", s->prefix_got);
    if (!s->have_header)
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: the body ends inside the header "
                        "(%zu of its %llu bytes)", s->text.len, (unsigned long long)s->n);
    if ((rc = feed_data(x, NULL, 0, err)))
        return rc;
    if ((rc = proto_st_check_data_len(&s->h, s->data_got, err)))
        return rc;
    if (s->fd >= 0 && (rc = flush_stage(x, err)))
        return rc;
    w->items = 0;
    return 0;
}

static void run(proto_xchg *x, int i, int n, qdq_error *err) { (void)x, (void)i, (void)n; }

int proto_xchg_report(const proto_xchg *x, proto_buf *b)
{
    if (!x || !x->codec || x->codec->format != PROTO_FMT_SAFETENSORS || !x->priv)
        return QDQ_EINVAL;
    st *s = state(x);
    char n[PROTO_NUM_MAX + 1], line[256];
    int rc = put(b, "{\"tensors\":[") || proto_buf_append(b, s->entries.data, s->entries.len);
    snprintf(line, sizeof line, "],\"summary\":{\"tensors\":%zu,\"quantized\":%llu,\"skipped\":"
             "%llu,\"passthrough\":%llu,\"bytes\":%llu,\"elements_quantized\":%llu,"
             "\"sqnr_db_min\":", s->h.n_tensors, (unsigned long long)s->quantized,
             (unsigned long long)s->skipped, (unsigned long long)s->passthrough,
             (unsigned long long)s->h.data_len, (unsigned long long)s->elements);
    rc = rc || put(b, line);
    rc = rc || (s->have_sqnr ? proto_buf_append(b, n, proto_num_format_f64(s->sqnr_min, n))
                             : put(b, "null"));
    rc = rc || put(b, ",\"worst_tensor\":");
    rc = rc || (s->worst ? proto_st_json_string(b, s->worst, strlen(s->worst)) : put(b, "null"));
    rc = rc || put(b, "}}");
    return rc ? PROTO_ENOMEM : 0;
}

static int answer(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    st *s = state(x);
    if (s->report) {
        proto_buf b = { 0 };
        if (proto_xchg_report(x, &b)) {
            proto_buf_free(&b);
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for the report");
        }
        a->body = proto_buf_detach(&b, &a->len);
        a->ctype = "application/json";
        return 0;
    }
    a->ctype = "application/x-safetensors";
    a->from_file = true;
    a->fd = s->fd;
    a->file_len = s->extras_at;
    s->fd = -1;
    return 0;
}

/* The largest tensor to quantize (once the header is in: until then, the header), and a
 * constant for the header's text, the stage and the report. */
static uint64_t memory(const proto_xchg *x, uint64_t body)
{
    const st *s = state(x);
    uint64_t big = s && s->have_header ? s->largest + s->largest / 8 : 0;
    if (s && !s->have_header && s->n)
        big = s->n;
    return big + FIXED_MEMORY;
}

static void clear(proto_xchg *x)
{
    st *s = state(x);
    if (!s)
        return;
    proto_policy_free(s->policy);
    proto_buf_free(&s->text);
    proto_st_header_clear(&s->h);
    proto_action_clear(&s->act);
    proto_result_clear(&s->res);
    if (s->tbuf)
        x->host->buf_put(x->host->cls, s->tbuf, s->tcap, true);
    free(s->rbuf);
    if (s->fd >= 0)
        close(s->fd);
    if (s->written && x->host->spool_account)
        x->host->spool_account(x->host->cls, -(int64_t)s->written);
    free(s->stage);
    proto_buf_free(&s->entries);
    free(s->worst);
    free(s);
    x->priv = NULL;
}

const proto_codec proto_codec_safetensors = {
    .format = PROTO_FMT_SAFETENSORS, .begin = begin, .feed = feed, .end = end, .run = run,
    .answer = answer, .memory = memory, .clear = clear,
};
