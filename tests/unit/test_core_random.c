/*
 * The optimised core against the plain scalar reference of the whole op (tests/lib/ref.c,
 * written from docs/semantics.md apart from core's code: it shares only qdq_half.h's
 * conversions).
 *
 * Random cases cover every dtype and every combination of signed_input, range_given,
 * round_mode, narrow_range and axis kind (-1, the last axis, any axis), num_bits across 1..61/62,
 * shapes of rank 0..5 (empty dims, channel counts that are not multiples of 8, inner sizes
 * 1..20) and data with special values (+-0, +-inf, NaN payloads, subnormals, exact .5 ties after
 * scaling, huge and tiny magnitudes, integers near 2^23/2^24 and 2^52/2^53). Directed cases put
 * NaN and zeros of both signs into tensors whose sizes straddle Eigen's packet and leaf sizes.
 *
 * Each case runs with the portable kernels and with the best family of this CPU, five ways:
 * qdq_run out of place, qdq_run in place, random chunks (each reduced into its own accumulator,
 * merged in random order, applied in another random chunking), random channel ranges (each
 * reduced, given its parameters and applied on its own, in random chunks), and 1-4 threads (each
 * reduces its chunks into its own accumulator; merge; the threads apply disjoint ranges). Outputs and the
 * reported ranges must match the reference bit for bit (NaN matches NaN, -0.0 differs from 0.0).
 *
 * QDQ_SEED=n changes the seed (printed at start); QDQ_CASE=k runs only case k of that seed.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "qdq.h"
#include "qdq_half.h"
#include "ref.h"
#include "rng.h"
#include "testutil.h"

#define DEFAULT_SEED 20240611u
/* Random rounds over the 192 attribute combinations, and the largest random tensor. */
#define ROUNDS (TU_SANITIZED ? 2 : 4)
#define BIG (TU_SANITIZED ? (1u << 15) : (1u << 20))

/* ================================ cases ================================ */

enum { M_UNIFORM, M_ONESIDED, M_GRID, M_INTEGERS, M_SPECIAL, M_BITS, M_ZEROS, M_CONST, NMODES };
static const char *const mode_names[NMODES] = { "uniform", "onesided", "grid", "integers",
                                                "special", "bits", "zeros", "const" };

typedef struct tcase {
    int id;
    qdq_dtype dt;
    qdq_attrs a;
    int rank;
    int64_t dims[6];
    uint64_t count, outer, C, inner; /* the case's own view of the shape (not core's) */
    int mode;
    void *in;          /* count elements of dt */
    void *bmin, *bmax; /* nb bounds of dt (range_given) */
    size_t nb;
} tcase;

static size_t esize(qdq_dtype dt) { return dt == QDQ_FLOAT64 ? 8 : dt == QDQ_FLOAT32 ? 4 : 2; }

static const char *dt_name(qdq_dtype dt)
{
    static const char *const n[4] = { "float32", "float64", "float16", "bfloat16" };
    return n[dt];
}

static const char *describe(const tcase *tc)
{
    static char buf[320];
    int k = snprintf(buf, sizeof buf, "case %d: %s signed=%d num_bits=%d range_given=%d %s "
                     "narrow=%d axis=%" PRId64 " mode=%s dims=[", tc->id, dt_name(tc->dt),
                     tc->a.signed_input, tc->a.num_bits, tc->a.range_given,
                     tc->a.round_mode == QDQ_HALF_UP ? "HALF_UP" : "HALF_TO_EVEN",
                     tc->a.narrow_range, tc->a.axis, mode_names[tc->mode]);
    for (int i = 0; i < tc->rank && k < (int)sizeof buf - 24; i++)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%" PRId64, i ? "," : "", tc->dims[i]);
    snprintf(buf + k, sizeof buf - (size_t)k, "]");
    return buf;
}

/* The element index of the j-th element (j < outer * inner) of channel c. */
static uint64_t chan_elem(const tcase *tc, uint64_t c, uint64_t j)
{
    uint64_t o = j / tc->inner, i = j % tc->inner;
    return (o * tc->C + c) * tc->inner + i;
}

/* ================================ the reference ================================ */

/* What the reference met, printed at the end (evidence that the cases reach the edges). */
static ref_stats stats;

/* The reference's answer for the case (tests/lib/ref.c). */
static void reference(const tcase *tc, ref_result *ref)
{
    ref_case c = { .dt = tc->dt, .attrs = tc->a, .rank = tc->rank, .dims = tc->dims,
                   .in = tc->in, .min = tc->bmin, .max = tc->bmax };
    char why[160];
    if (ref_run(&c, ref, &stats, why, sizeof why)) {
        fprintf(stderr, "%s: the reference refuses it: %s\n", describe(tc), why);
        exit(2);
    }
}

/* ================================ comparing ================================ */

static int same_elem(qdq_dtype dt, const void *a, const void *b, uint64_t i)
{
    return tu_same(dt, a, b, i);
}

static int same_par(double a, double b)
{
    return (isnan(a) && isnan(b)) || qdq_f64_bits(a) == qdq_f64_bits(b);
}

static uint64_t n_compared;

/* Compares an output tensor and a parameter block with the reference; one CHECK each. */
static void compare(const tcase *tc, const ref_result *ref, const qdq_plan *p, const void *out,
                    const void *params, const char *how)
{
    uint64_t bad = 0, first = 0;
    for (uint64_t e = 0; e < tc->count; e++)
        if (!same_elem(tc->dt, out, ref->out, e) && !bad++)
            first = e;
    n_compared += tc->count;
    CHECK(bad == 0, "%s, %s, isa %d: %" PRIu64 " of %" PRIu64 " outputs differ; first [%" PRIu64
          "]: input %a, got %a, want %a", describe(tc), how, (int)p->isa, bad, tc->count, first,
          tu_load(tc->dt, tc->in, first), tu_load(tc->dt, out, first),
          tu_load(tc->dt, ref->out, first));
    uint64_t pbad = 0, pc = 0;
    int pk = 0;
    double pg = 0, pw = 0;
    for (uint64_t c = 0; c < tc->C; c++) {
        qdq_range r;
        double got[6];
        qdq_params_get(p, params, c, &r);
        tu_range_values(&r, got);
        for (int k = 0; k < 6; k++)
            if (!same_par(got[k], ref->par[6 * c + (uint64_t)k]) && !pbad++)
                pc = c, pk = k, pg = got[k], pw = ref->par[6 * c + (uint64_t)k];
    }
    CHECK(pbad == 0, "%s, %s, isa %d: %" PRIu64 " reported values differ; first channel %" PRIu64
          " %s: got %a, want %a", describe(tc), how, (int)p->isa, pbad, pc, tu_range_keys[pk], pg, pw);
}

/* ================================ running the core ================================ */

static void *garbage(size_t n)
{
    void *p = malloc(n ? n : 1);
    memset(p, 0xa5, n);
    return p;
}

/* A parameter block for the case: garbage, filled from its bounds when range_given. */
static void *params_open(const tcase *tc, const qdq_plan *p)
{
    void *params = garbage(qdq_params_size(p));
    if (tc->a.range_given) {
        qdq_error err = { 0 };
        int rc = qdq_params_given(p, tc->bmin, tc->nb, tc->bmax, tc->nb, params, &err);
        CHECK(rc == 0, "%s: qdq_params_given failed: %s", describe(tc), err.msg);
    }
    return params;
}

/* count + 1 boundaries: k random chunks of [0, count), some possibly empty. */
static uint64_t *chunking(rng_gen *r, uint64_t count, int *k_out)
{
    int k = 1 + (int)rng_below(r, count < 4 ? 3 : 9);
    uint64_t *b = malloc(sizeof(uint64_t) * (size_t)(k + 1));
    b[0] = 0, b[k] = count;
    for (int i = 1; i < k; i++)
        b[i] = rng_below(r, count + 1);
    for (int i = 1; i < k; i++) /* insertion sort of the inner cut points */
        for (int j = i; j > 1 && b[j - 1] > b[j]; j--) {
            uint64_t t = b[j];
            b[j] = b[j - 1], b[j - 1] = t;
        }
    *k_out = k;
    return b;
}

static void shuffle(rng_gen *r, int *v, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1), t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

static int plan_for(const tcase *tc, qdq_isa isa, qdq_plan *p)
{
    qdq_error err = { 0 };
    int rc = qdq_plan_init(p, tc->dt, tc->dims, tc->rank, &tc->a, &err);
    CHECK(rc == 0, "%s: qdq_plan_init failed: %s", describe(tc), err.msg);
    if (rc)
        return rc;
    CHECK(p->count == tc->count && p->channels == tc->C, "%s: plan has count %" PRIu64
          " channels %" PRIu64, describe(tc), p->count, p->channels);
    p->isa = isa;
    return 0;
}

/* qdq_run, out of place and in place. */
static void run_whole(const tcase *tc, const ref_result *ref, qdq_isa isa, rng_gen *r)
{
    qdq_plan p;
    if (plan_for(tc, isa, &p))
        return;
    size_t bytes = tc->count * esize(tc->dt);
    void *acc = garbage(qdq_acc_size(&p)), *params = garbage(qdq_params_size(&p));
    void *out = garbage(bytes), *io = malloc(bytes + 1);
    memcpy(io, tc->in, bytes);
    qdq_error err = { 0 };
    int rc = qdq_run(&p, tc->in, out, tc->bmin, tc->nb, tc->bmax, tc->nb,
                     tc->a.range_given && rng_below(r, 2) ? NULL : acc, /* unused: may be NULL */
                     params, &err);
    CHECK(rc == 0, "%s: qdq_run failed: %s", describe(tc), err.msg);
    if (rc == 0)
        compare(tc, ref, &p, out, params, "qdq_run");
    memset(params, 0xa5, qdq_params_size(&p));
    rc = qdq_run(&p, io, io, tc->bmin, tc->nb, tc->bmax, tc->nb, acc, params, &err);
    CHECK(rc == 0, "%s: qdq_run in place failed: %s", describe(tc), err.msg);
    if (rc == 0)
        compare(tc, ref, &p, io, params, "qdq_run in place");
    free(acc), free(params), free(out), free(io);
}

/* The buffers of a run: the case's input or, in place (one run in two), a copy that out
 * aliases; otherwise out is garbage of the tensor's size. */
typedef struct bufs {
    int in_place;
    void *data, *out;
} bufs;

static bufs bufs_open(const tcase *tc, rng_gen *r)
{
    size_t bytes = tc->count * esize(tc->dt);
    bufs b = { (int)rng_below(r, 2), (void *)tc->in, NULL };
    if (b.in_place) {
        b.data = malloc(bytes + 1);
        memcpy(b.data, tc->in, bytes);
    }
    b.out = b.in_place ? b.data : garbage(bytes);
    return b;
}

static void bufs_close(bufs *b) { free(b->in_place ? b->data : b->out); }

/* Channel cut points: cut[0] = 0, three random ones in order, cut[4] = C. */
static void channel_cuts(rng_gen *r, uint64_t C, uint64_t cut[5])
{
    cut[0] = 0, cut[4] = C;
    for (int i = 1; i < 4; i++)
        cut[i] = rng_below(r, C + 1);
    for (int i = 2; i < 4; i++) /* insertion sort of the inner ones */
        for (int j = i; j > 1 && cut[j - 1] > cut[j]; j--) {
            uint64_t t = cut[j];
            cut[j] = cut[j - 1], cut[j - 1] = t;
        }
}

/* The steps, on random chunks. */
static void run_chunks(const tcase *tc, const ref_result *ref, qdq_isa isa, rng_gen *r)
{
    qdq_plan p;
    if (plan_for(tc, isa, &p))
        return;
    bufs io = bufs_open(tc, r);
    void *data = io.data, *out = io.out, *params = params_open(tc, &p);
    if (!tc->a.range_given) {
        int k, order[16];
        uint64_t *b = chunking(r, tc->count, &k);
        size_t as = qdq_acc_size(&p);
        void **accs = malloc(sizeof(void *) * (size_t)k);
        for (int i = 0; i < k; i++) {
            accs[i] = garbage(as);
            qdq_acc_init(&p, accs[i]);
            qdq_reduce(&p, accs[i], data, b[i], b[i + 1]);
        }
        /* Merge all into a fresh accumulator or into one of them, in random order. */
        shuffle(r, order, k);
        void *dst = garbage(as);
        int fresh = (int)rng_below(r, 2);
        if (fresh)
            qdq_acc_init(&p, dst);
        else
            memcpy(dst, accs[order[0]], as);
        if (rng_below(r, 2)) {
            for (int i = fresh ? 0 : 1; i < k; i++)
                qdq_acc_merge(&p, dst, accs[order[i]]);
            qdq_params_from_acc(&p, dst, data, params);
        } else { /* channel range by channel range, in random order, as parallel workers do */
            uint64_t cut[5];
            int piece[4];
            channel_cuts(r, p.channels, cut);
            shuffle(r, piece, 4);
            for (int q = 0; q < 4; q++) {
                uint64_t c0 = cut[piece[q]], c1 = cut[piece[q] + 1];
                for (int i = fresh ? 0 : 1; i < k; i++)
                    qdq_acc_merge_channels(&p, dst, accs[order[i]], c0, c1);
                qdq_params_from_acc_channels(&p, dst, data, params, c0, c1);
            }
        }
        for (int i = 0; i < k; i++)
            free(accs[i]);
        free(accs), free(dst), free(b);
    }
    int k, order[16];
    uint64_t *b = chunking(r, tc->count, &k);
    shuffle(r, order, k);
    for (int i = 0; i < k; i++)
        qdq_apply(&p, params, data, out, b[order[i]], b[order[i] + 1]);
    compare(tc, ref, &p, out, params, io.in_place ? "chunks in place" : "chunks");
    free(b), free(params);
    bufs_close(&io);
}

/* Channel range by channel range (random cuts, random order), each reduced into its own
 * accumulator in random element chunks, given its parameters and applied in other chunks; or
 * each taken through the whole op at once (qdq_run_channels). */
static void run_channels(const tcase *tc, const ref_result *ref, qdq_isa isa, rng_gen *r)
{
    qdq_plan p;
    if (plan_for(tc, isa, &p))
        return;
    bufs io = bufs_open(tc, r);
    void *data = io.data, *out = io.out, *params = params_open(tc, &p);
    void *acc = garbage(qdq_acc_size(&p));
    if (tc->count > 0) { /* every channel holds another tensor's range, [-1e4, 1e4], so that a */
        void *other = malloc(tc->count * esize(tc->dt)); /* channel left uninitialised shows */
        for (uint64_t i = 0; i < tc->count; i++)
            tu_store(tc->dt, other, (size_t)i, i & 1 ? 1e4 : -1e4);
        qdq_acc_init(&p, acc);
        qdq_reduce(&p, acc, other, 0, tc->count);
        free(other);
    }
    uint64_t cut[5];
    int piece[4], k, order[16], whole = (int)rng_below(r, 2);
    channel_cuts(r, p.channels, cut);
    shuffle(r, piece, 4);
    for (int q = 0; q < 4; q++) {
        uint64_t c0 = cut[piece[q]], c1 = cut[piece[q] + 1];
        if (whole) { /* the accumulator holds that range but for the channels initialised */
            qdq_acc_init_channels(&p, acc, c0, c1);
            qdq_run_channels(&p, data, out, acc, params, c0, c1);
            continue;
        }
        if (!tc->a.range_given) {
            uint64_t *b = chunking(r, tc->count, &k);
            shuffle(r, order, k);
            qdq_acc_init_channels(&p, acc, c0, c1);
            for (int i = 0; i < k; i++)
                qdq_reduce_channels(&p, acc, data, b[order[i]], b[order[i] + 1], c0, c1);
            qdq_params_from_acc_channels(&p, acc, data, params, c0, c1);
            free(b);
        }
        uint64_t *b = chunking(r, tc->count, &k);
        shuffle(r, order, k);
        for (int i = 0; i < k; i++)
            qdq_apply_channels(&p, params, data, out, b[order[i]], b[order[i] + 1], c0, c1);
        free(b);
    }
    compare(tc, ref, &p, out, params,
            whole ? (io.in_place ? "qdq_run_channels in place" : "qdq_run_channels")
                  : (io.in_place ? "channel ranges in place" : "channel ranges"));
    free(acc), free(params);
    bufs_close(&io);
}

typedef struct worker {
    const qdq_plan *p;
    const uint64_t *b; /* chunk boundaries */
    int *chunks, n;    /* this worker's chunk numbers */
    void *acc;
    const void *data;
    void *out;
    const void *params;
    int phase; /* 0: reduce, 1: apply */
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (w->phase == 0) {
        qdq_acc_init(w->p, w->acc);
        for (int i = 0; i < w->n; i++)
            qdq_reduce(w->p, w->acc, w->data, w->b[w->chunks[i]], w->b[w->chunks[i] + 1]);
    } else {
        for (int i = 0; i < w->n; i++)
            qdq_apply(w->p, w->params, w->data, w->out, w->b[w->chunks[i]],
                      w->b[w->chunks[i] + 1]);
    }
    return NULL;
}

/* Splits chunks 0..k-1 among nt workers, randomly. */
static void deal(rng_gen *r, worker *w, int nt, int k, int *store)
{
    for (int t = 0; t < nt; t++)
        w[t].chunks = store + t * k, w[t].n = 0;
    for (int i = 0; i < k; i++) {
        worker *x = &w[rng_below(r, (uint64_t)nt)];
        x->chunks[x->n++] = i;
    }
}

static void run_threads(const tcase *tc, const ref_result *ref, qdq_isa isa, rng_gen *r)
{
    qdq_plan p;
    if (plan_for(tc, isa, &p))
        return;
    int nt = 1 + (int)rng_below(r, 4);
    size_t as = qdq_acc_size(&p);
    bufs io = bufs_open(tc, r);
    void *data = io.data, *out = io.out, *params = params_open(tc, &p);
    worker w[4];
    int store[4 * 16];
    memset(w, 0, sizeof w);
    for (int t = 0; t < nt; t++)
        w[t].p = &p, w[t].data = data, w[t].out = out, w[t].params = params;
    if (!tc->a.range_given) {
        int k;
        uint64_t *b = chunking(r, tc->count, &k);
        deal(r, w, nt, k, store);
        for (int t = 0; t < nt; t++) {
            w[t].b = b, w[t].phase = 0, w[t].acc = garbage(as);
            pthread_create(&w[t].th, NULL, worker_main, &w[t]);
        }
        for (int t = 0; t < nt; t++)
            pthread_join(w[t].th, NULL);
        for (int t = 1; t < nt; t++)
            qdq_acc_merge(&p, w[0].acc, w[t].acc);
        qdq_params_from_acc(&p, w[0].acc, data, params);
        for (int t = 0; t < nt; t++)
            free(w[t].acc);
        free(b);
    }
    int k;
    uint64_t *b = chunking(r, tc->count, &k);
    deal(r, w, nt, k, store);
    for (int t = 0; t < nt; t++) {
        w[t].b = b, w[t].phase = 1;
        pthread_create(&w[t].th, NULL, worker_main, &w[t]);
    }
    for (int t = 0; t < nt; t++)
        pthread_join(w[t].th, NULL);
    char how[48];
    snprintf(how, sizeof how, "%d threads%s", nt, io.in_place ? " in place" : "");
    compare(tc, ref, &p, out, params, how);
    free(b), free(params);
    bufs_close(&io);
}

/* ================================ generating cases ================================ */

/* Stores a value (rounded once to the dtype). */
static void put(qdq_dtype dt, void *a, uint64_t i, double v) { tu_store(dt, a, (size_t)i, v); }

/* A NaN with a random payload and sign, written as bits. */
static void put_nan(rng_gen *r, qdq_dtype dt, void *a, uint64_t i)
{
    uint64_t x = rng_next(r);
    switch (dt) {
    case QDQ_FLOAT32:
        ((uint32_t *)a)[i] = (uint32_t)((x & 0x80000000u) | 0x7f800000u |
                                        ((x >> 32) & 0x7fffff ? (x >> 32) & 0x7fffff : 1));
        break;
    case QDQ_FLOAT64: {
        uint64_t m = (x >> 12) ? x >> 12 : 1;
        ((uint64_t *)a)[i] = (x & 0x8000000000000000ULL) | 0x7ff0000000000000ULL | m;
        break;
    }
    case QDQ_FLOAT16:
        ((uint16_t *)a)[i] = (uint16_t)((x & 0x8000) | 0x7c00 | ((x >> 16) & 0x3ff ? (x >> 16) & 0x3ff : 1));
        break;
    case QDQ_BFLOAT16:
        ((uint16_t *)a)[i] = (uint16_t)((x & 0x8000) | 0x7f80 | ((x >> 16) & 0x7f ? (x >> 16) & 0x7f : 1));
        break;
    }
}

/* Random bits of the dtype. */
static void put_bits(rng_gen *r, qdq_dtype dt, void *a, uint64_t i)
{
    uint64_t x = rng_next(r);
    switch (dt) {
    case QDQ_FLOAT32: ((uint32_t *)a)[i] = (uint32_t)x; break;
    case QDQ_FLOAT64: ((uint64_t *)a)[i] = x; break;
    default: ((uint16_t *)a)[i] = (uint16_t)x; break;
    }
}

/* Moves element i one step of the dtype up or down in magnitude (finite non-zero only). */
static void nudge(qdq_dtype dt, void *a, uint64_t i, int up)
{
    double v = tu_load(dt, a, (size_t)i);
    if (!isfinite(v) || v == 0)
        return;
    switch (dt) {
    case QDQ_FLOAT32: {
        float f = ((float *)a)[i];
        ((float *)a)[i] = nextafterf(f, up ? copysignf(INFINITY, f) : 0.0f);
        break;
    }
    case QDQ_FLOAT64:
        ((double *)a)[i] = nextafter(v, up ? copysign(INFINITY, v) : 0.0);
        break;
    default: {
        uint16_t h = ((uint16_t *)a)[i], mag = h & 0x7fff;
        uint16_t maxfin = dt == QDQ_FLOAT16 ? 0x7bff : 0x7f7f;
        if (up && mag < maxfin)
            mag++;
        else if (!up && mag > 0)
            mag--;
        ((uint16_t *)a)[i] = (uint16_t)((h & 0x8000) | mag);
        break;
    }
    }
}

/* Exponent range of "ordinary" magnitudes for the dtype (values stay finite). */
static int random_exp(rng_gen *r, qdq_dtype dt)
{
    switch (dt) {
    case QDQ_FLOAT16: return (int)rng_range(r, -20, 12);
    case QDQ_BFLOAT16:
    case QDQ_FLOAT32: return rng_chance(r, 0.1) ? (int)rng_range(r, -140, 120) : (int)rng_range(r, -30, 30);
    default: return rng_chance(r, 0.1) ? (int)rng_range(r, -1060, 1000) : (int)rng_range(r, -30, 30);
    }
}

static double special_value(rng_gen *r, qdq_dtype dt)
{
    static const double v[] = {
        0.0, -0.0, INFINITY, -INFINITY, 0x1p-149, -0x1p-149, 0x1p-126, 0x1.fffffcp-127,
        0x1.fffffep127, -0x1.fffffep127, 0x1p-1074, 0x1p-1022, DBL_MAX, -DBL_MAX, 8388608.0,
        8388609.0, 16777216.0, 16777217.0, -16777215.0, 0.49999997f, 0.5, 1.5, -2.5, 65504.0,
        65520.0, -65504.0, 0x1p-24, 0x1p-14, 1e-40, 1e-300, 1e300, 4503599627370497.0,
        9007199254740993.0, -4503599627370495.5, 0x1.fep127, 1e-45,
    };
    uint64_t n = sizeof v / sizeof v[0];
    if (rng_chance(r, 0.2)) { /* a random subnormal of the dtype */
        switch (dt) {
        case QDQ_FLOAT64: return ldexp((double)(1 + rng_below(r, 1ULL << 52)), -1074);
        case QDQ_FLOAT16: return ldexp((double)(1 + rng_below(r, 1023)), -24);
        case QDQ_BFLOAT16: return ldexp((double)(1 + rng_below(r, 127)), -133);
        default: return ldexp((double)(1 + rng_below(r, (1u << 23) - 1)), -149);
        }
    }
    return v[rng_below(r, n)];
}

/* Values near 2^23, 2^24, 2^52, 2^53 and the HALF_UP traps, times 2^e. */
static double integer_value(rng_gen *r, int e)
{
    static const int pw[] = { 0, 1, 22, 23, 24, 25, 51, 52, 53, 54 };
    int p = pw[rng_below(r, sizeof pw / sizeof pw[0])];
    double base = ldexp(1, p) + (double)rng_range(r, -3, 3);
    if (rng_chance(r, 0.3))
        base += 0.5;
    if (rng_chance(r, 0.1))
        base = rng_chance(r, 0.5) ? 0.49999997f : 0.49999999999999994;
    return ldexp(rng_chance(r, 0.5) ? -base : base, e);
}

/* Fills the input of the case. */
static void gen_data(rng_gen *r, tcase *tc)
{
    qdq_dtype dt = tc->dt;
    int e = random_exp(r, dt);
    double p_nan = rng_chance(r, 0.6) ? 0 : rng_chance(r, 0.5) ? 0.001 : rng_chance(r, 0.5) ? 0.05 : 0.4;
    double p_zero = rng_chance(r, 0.7) ? 0 : rng_chance(r, 0.5) ? 0.01 : 0.3;
    double p_special = rng_chance(r, 0.5) ? 0.002 : 0.05;
    int zsign = (int)rng_below(r, 3); /* zeros: 0 mixed, 1 all +0, 2 all -0 */
    int neg = (int)rng_below(r, 2);
    double cval = rng_chance(r, 0.3) ? 0.0 : ldexp(2 * rng_unit(r) - 1, e);
    int64_t qmin = ref_qmin(&tc->a), qmax = ref_qmax(&tc->a);
    for (uint64_t i = 0; i < tc->count; i++) {
        double v;
        switch (tc->mode) {
        case M_ONESIDED:
            v = ldexp(rng_unit(r), e);
            v = neg ? -v : v;
            break;
        case M_GRID: { /* k / 2 steps of 2^e: exact .5 ties when the scale is 2^-e */
            int64_t k = rng_range(r, qmin - 1, qmax + 1);
            v = ldexp((double)k + (rng_chance(r, 0.5) ? 0.5 : 0.0), e);
            break;
        }
        case M_INTEGERS:
            v = integer_value(r, e);
            break;
        case M_SPECIAL:
            v = rng_chance(r, 0.3) ? special_value(r, dt) : ldexp(2 * rng_unit(r) - 1, e);
            break;
        case M_BITS:
            put_bits(r, dt, tc->in, i);
            continue;
        case M_ZEROS:
            v = rng_chance(r, p_special) ? ldexp(2 * rng_unit(r) - 1, e)
                                      : (zsign == 1 || (zsign == 0 && rng_chance(r, 0.5))) ? 0.0 : -0.0;
            break;
        case M_CONST:
            v = cval;
            break;
        default:
            v = ldexp(2 * rng_unit(r) - 1, e);
            if (rng_chance(r, 0.01))
                v = ldexp(v, (int)rng_range(r, -60, 60));
            break;
        }
        if (p_zero > 0 && rng_chance(r, p_zero))
            v = (zsign == 1 || (zsign == 0 && rng_chance(r, 0.5))) ? 0.0 : -0.0;
        if (tc->mode != M_SPECIAL && tc->mode != M_ZEROS && rng_chance(r, p_special * 0.1))
            v = special_value(r, dt);
        put(dt, tc->in, i, v);
        if ((tc->mode == M_GRID || tc->mode == M_INTEGERS) && rng_chance(r, 0.15))
            nudge(dt, tc->in, i, (int)rng_below(r, 2));
        if (p_nan > 0 && rng_chance(r, p_nan))
            put_nan(r, dt, tc->in, i);
    }
    /* Grid and integer data without a given range: plant qmin * 2^e and qmax * 2^e in every
     * channel, so that the scale is 2^-e (when those are exact in T) and the ties are exact. */
    if ((tc->mode == M_GRID || tc->mode == M_INTEGERS) && !tc->a.range_given &&
        rng_chance(r, 0.8)) {
        uint64_t per = tc->outer * tc->inner;
        for (uint64_t c = 0; c < tc->C && per > 0; c++) {
            put(dt, tc->in, chan_elem(tc, c, rng_below(r, per)), ldexp((double)qmin, e));
            put(dt, tc->in, chan_elem(tc, c, rng_below(r, per)), ldexp((double)qmax, e));
        }
    }
}

/* Fills the given bounds (range_given): valid ranges only (lo <= hi, no NaN). */
static void gen_bounds(rng_gen *r, tcase *tc)
{
    qdq_dtype dt = tc->dt;
    int64_t qmin = ref_qmin(&tc->a), qmax = ref_qmax(&tc->a);
    int e = random_exp(r, dt);
    int kind = (int)rng_below(r, 6);
    if (tc->mode == M_GRID || tc->mode == M_INTEGERS)
        kind = rng_chance(r, 0.8) ? 5 : kind;
    for (size_t c = 0; c < tc->nb; c++) {
        double lo, hi, a = ldexp(rng_unit(r), e), b = ldexp(rng_unit(r), e);
        switch (rng_chance(r, 0.7) ? kind : (int)rng_below(r, 6)) {
        case 1: /* one-sided: lo > 0 or hi < 0 */
            lo = a, hi = a + b;
            if (rng_chance(r, 0.5))
                lo = -(a + b), hi = -a;
            break;
        case 2: /* lo == hi */
            lo = hi = rng_chance(r, 0.3) ? 0.0 : 2 * a - b;
            break;
        case 3: /* infinite */
            lo = rng_chance(r, 0.5) ? -INFINITY : -a;
            hi = rng_chance(r, 0.5) ? INFINITY : b;
            break;
        case 4: /* a zero bound */
            lo = rng_chance(r, 0.5) ? -a : (rng_chance(r, 0.5) ? 0.0 : -0.0);
            hi = lo == 0 ? b : (rng_chance(r, 0.5) ? 0.0 : -0.0);
            break;
        case 5: /* qmin * 2^e, qmax * 2^e: scale 2^-e */
            lo = ldexp((double)qmin, e), hi = ldexp((double)qmax, e);
            break;
        default:
            lo = -a, hi = b;
            break;
        }
        put(dt, tc->bmin, c, lo);
        put(dt, tc->bmax, c, hi);
        if (!(tu_load(dt, tc->bmin, c) <= tu_load(dt, tc->bmax, c))) { /* rounding crossed them */
            put(dt, tc->bmin, c, hi);
            put(dt, tc->bmax, c, lo);
        }
    }
}

/* Computes count, outer, C, inner from dims and axis; 0 when the count exceeds cap. */
static int shape_view(tcase *tc, uint64_t cap)
{
    uint64_t count = 1;
    for (int i = 0; i < tc->rank; i++) {
        count *= (uint64_t)tc->dims[i];
        if (count > cap)
            return 0;
    }
    tc->count = count;
    tc->outer = tc->inner = tc->C = 1;
    if (tc->a.axis >= 0) {
        for (int i = 0; i < tc->a.axis; i++)
            tc->outer *= (uint64_t)tc->dims[i];
        tc->C = (uint64_t)tc->dims[tc->a.axis];
        for (int i = (int)tc->a.axis + 1; i < tc->rank; i++)
            tc->inner *= (uint64_t)tc->dims[i];
    } else {
        tc->inner = count;
    }
    return 1;
}

/* A random shape of about target elements for the axis kind (0: -1, 1: last, 2: any). */
static void gen_shape(rng_gen *r, tcase *tc, int axis_kind, uint64_t target)
{
    for (;;) {
        tc->rank = axis_kind == 0 ? (int)rng_below(r, 6) : 1 + (int)rng_below(r, 5);
        double w[6], sum = 0, L = log2((double)target);
        for (int i = 0; i < tc->rank; i++)
            sum += (w[i] = rng_unit(r) + 0.05);
        for (int i = 0; i < tc->rank; i++) {
            int64_t d = (int64_t)llround(exp2(L * w[i] / sum));
            d += rng_range(r, -1, 1);
            tc->dims[i] = d < 1 ? 1 : d;
        }
        tc->a.axis = -1;
        if (axis_kind == 1)
            tc->a.axis = tc->rank - 1;
        else if (axis_kind == 2)
            tc->a.axis = (int64_t)rng_below(r, (uint64_t)tc->rank);
        if (tc->a.axis >= 0) {
            int ax = (int)tc->a.axis;
            /* Channel counts: mostly small and not multiples of 8; sometimes large. */
            tc->dims[ax] = rng_chance(r, 0.8) ? rng_range(r, 1, 40) : rng_chance(r, 0.5) ? 8 * rng_range(r, 1, 8)
                                                                               : rng_range(r, 41, 1500);
            if (ax < tc->rank - 1 && rng_chance(r, 0.6)) { /* inner size 1..20, or whole steps */
                int64_t inner = rng_chance(r, 0.8) ? rng_range(r, 1, 20) : 16 * rng_range(r, 1, 6);
                for (int i = ax + 1; i < tc->rank; i++)
                    tc->dims[i] = i == tc->rank - 1 ? inner : 1;
                if (rng_chance(r, 0.5) && tc->rank - ax > 2) { /* split it over two dims */
                    tc->dims[tc->rank - 1] = 1 + inner / 3, tc->dims[ax + 1] = 3;
                }
            }
        }
        if (tc->rank > 0 && rng_chance(r, 0.03))
            tc->dims[rng_below(r, (uint64_t)tc->rank)] = 0;
        if (shape_view(tc, BIG))
            return;
    }
}

static uint64_t random_target(rng_gen *r)
{
    double u = rng_unit(r);
    double lo, hi;
    if (u < 0.5)
        lo = 0, hi = 6;
    else if (u < 0.8)
        lo = 6, hi = 12;
    else if (u < 0.95)
        lo = 12, hi = 16;
    else
        lo = 16, hi = log2((double)BIG);
    return (uint64_t)exp2(lo + (hi - lo) * rng_unit(r));
}

static const int bits_pool[] = { 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17, 23, 24, 25, 26,
                                 31, 32, 33, 47, 52, 53, 54, 55, 60, 61, 62 };

static void alloc_case(tcase *tc)
{
    tc->in = malloc(tc->count * esize(tc->dt) + 1);
    tc->nb = tc->a.range_given ? (size_t)tc->C : 0;
    tc->bmin = malloc(tc->nb * 8 + 1), tc->bmax = malloc(tc->nb * 8 + 1);
}

static void free_case(tcase *tc)
{
    free(tc->in), free(tc->bmin), free(tc->bmax);
}

/* Case number id of combination combo (dtype, signed, range_given, round mode, narrow, axis
 * kind), everything else random. */
static void gen_case(rng_gen *r, tcase *tc, int id, int combo)
{
    memset(tc, 0, sizeof *tc);
    tc->id = id;
    tc->dt = (qdq_dtype)(combo % 4);
    tc->a.signed_input = (combo / 4) % 2;
    tc->a.range_given = (combo / 8) % 2;
    tc->a.round_mode = (combo / 16) % 2 ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    tc->a.narrow_range = (combo / 32) % 2;
    int axis_kind = (combo / 64) % 3, maxb = tc->a.signed_input ? 61 : 62;
    int b = rng_chance(r, 0.7) ? bits_pool[rng_below(r, sizeof bits_pool / sizeof bits_pool[0])]
                            : (int)rng_range(r, 1, maxb);
    tc->a.num_bits = b > maxb ? maxb : b;
    tc->mode = (int)rng_below(r, NMODES);
    gen_shape(r, tc, axis_kind, random_target(r));
    alloc_case(tc);
    gen_data(r, tc);
    if (tc->a.range_given)
        gen_bounds(r, tc);
}

/* A rank-1 tensor of n elements holding NaN (few or many, or last) or zeros of both signs at
 * an extreme: the cases where Eigen's order decides. */
static void gen_directed(rng_gen *r, tcase *tc, int id, qdq_dtype dt, uint64_t n, int kind)
{
    memset(tc, 0, sizeof *tc);
    tc->id = id;
    tc->dt = dt;
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    tc->a = a;
    tc->a.signed_input = (int)rng_below(r, 2);
    tc->a.num_bits = tc->a.signed_input ? (int)rng_range(r, 2, 16) : (int)rng_range(r, 1, 16);
    tc->a.round_mode = (int)rng_below(r, 2);
    tc->a.narrow_range = (int)rng_below(r, 2);
    tc->rank = 1, tc->dims[0] = (int64_t)n;
    tc->mode = kind >= 3 ? M_ZEROS : M_UNIFORM;
    if (rng_chance(r, 0.25) && n % 4 == 0) { /* the same bytes per channel on the last axis */
        tc->rank = 2, tc->dims[0] = (int64_t)n / 4, tc->dims[1] = 4, tc->a.axis = 1;
    } else if (rng_chance(r, 0.2) && n % 3 == 0) {
        tc->rank = 3, tc->dims[0] = (int64_t)n / 3, tc->dims[1] = 3, tc->dims[2] = 1;
        tc->a.axis = (int64_t)rng_below(r, 3);
    }
    shape_view(tc, UINT64_MAX);
    alloc_case(tc);
    int e = (int)rng_range(r, -10, 10);
    for (uint64_t i = 0; i < n; i++) {
        double v = ldexp(rng_unit(r), e);
        switch (kind) {
        case 0: /* a few NaN anywhere */
        case 1: /* many NaN */
        case 2: /* NaN at the very end, and maybe at the start */
            put(dt, tc->in, i, rng_chance(r, 0.5) ? v : -v);
            break;
        case 3: /* non-negative with both zeros: the minimum is a zero */
            put(dt, tc->in, i, rng_chance(r, 0.3) ? (rng_chance(r, 0.5) ? 0.0 : -0.0) : v);
            break;
        default: /* non-positive with both zeros, and NaN */
            put(dt, tc->in, i, rng_chance(r, 0.3) ? (rng_chance(r, 0.5) ? 0.0 : -0.0) : -v);
            if (rng_chance(r, 0.01))
                put_nan(r, dt, tc->in, i);
            break;
        }
    }
    if (kind == 0)
        for (int j = 0; j < 3; j++)
            put_nan(r, dt, tc->in, rng_below(r, n));
    if (kind == 1)
        for (uint64_t i = 0; i < n; i++)
            if (rng_chance(r, 0.4))
                put_nan(r, dt, tc->in, i);
    if (kind == 2) {
        put_nan(r, dt, tc->in, n - 1);
        if (rng_chance(r, 0.5))
            put_nan(r, dt, tc->in, 0);
    }
}

/* ================================ main ================================ */

static uint64_t master_seed;
static long only_case = -1;
static uint64_t n_cases, n_elems;

static void run_case(tcase *tc, rng_gen *r)
{
    ref_result ref;
    reference(tc, &ref);
    qdq_isa isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
    for (int i = 0; i < (isas[1] == isas[0] ? 1 : 2); i++) {
        run_whole(tc, &ref, isas[i], r);
        run_chunks(tc, &ref, isas[i], r);
        run_channels(tc, &ref, isas[i], r);
        run_threads(tc, &ref, isas[i], r);
    }
    n_cases++, n_elems += tc->count;
    ref_result_free(&ref);
}

static void case_rng(rng_gen *r, int id)
{
    rng_seed(r, master_seed ^ ((uint64_t)id * 0x9e3779b97f4a7c15ULL));
}

int main(void)
{
    const char *s = getenv("QDQ_SEED"), *c = getenv("QDQ_CASE");
    master_seed = s && *s ? strtoull(s, NULL, 0) : DEFAULT_SEED;
    if (c && *c)
        only_case = strtol(c, NULL, 0);
    printf("seed %" PRIu64 " (QDQ_SEED to change, QDQ_CASE=k to run one case)%s\n", master_seed,
           TU_SANITIZED ? ", sanitizer build: fewer elements" : "");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int id = 0;
    tcase tc;
    rng_gen r;
    /* Directed: NaN and mixed zeros around Eigen's packet (8 floats, 4 doubles) and leaf
     * (8 * 1024 floats, 4 * 1024 doubles) sizes. */
    static const uint64_t fsizes[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 8191, 8192,
                                       8193, 16384 + 5, 65536 + 3, 131072 + 11 };
    static const uint64_t dsizes[] = { 1, 3, 4, 5, 8, 9, 4095, 4096, 4097, 8192 + 3, 32768 + 1,
                                       65536 + 7 };
    for (int dt = 0; dt < 4; dt++) {
        const uint64_t *sz = dt == QDQ_FLOAT64 ? dsizes : fsizes;
        size_t nsz = dt == QDQ_FLOAT64 ? sizeof dsizes / sizeof dsizes[0]
                                       : sizeof fsizes / sizeof fsizes[0];
        for (size_t k = 0; k < nsz; k++)
            for (int kind = 0; kind < 5; kind++, id++) {
                if (only_case >= 0 && id != only_case)
                    continue;
                if (TU_SANITIZED && sz[k] > 20000 && kind != 0)
                    continue;
                case_rng(&r, id);
                gen_directed(&r, &tc, id, (qdq_dtype)dt, sz[k], kind);
                run_case(&tc, &r);
                free_case(&tc);
            }
    }
    /* Random: every attribute combination, ROUNDS times. */
    for (int round = 0; round < ROUNDS; round++)
        for (int combo = 0; combo < 192; combo++, id++) {
            if (only_case >= 0 && id != only_case)
                continue;
            case_rng(&r, id);
            gen_case(&r, &tc, id, combo);
            run_case(&tc, &r);
            free_case(&tc);
        }
    CHECK(stats.selfcheck_bad == 0, "reference: Eigen's order and the plain min/max disagree on %"
          PRIu64 " order-independent channels", stats.selfcheck_bad);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("%" PRIu64 " cases, %" PRIu64 " elements, %" PRIu64 " element comparisons, %.1f s\n",
           n_cases, n_elems, n_compared, secs);
    printf("reference met: %" PRIu64 " exact .5 ties, %" PRIu64 " HALF_UP quirks, %" PRIu64
           " clamped elements, %" PRIu64
           " NaN inputs, %" PRIu64 " channels in Eigen's order (%" PRIu64 " for zeros of both "
           "signs)\n", stats.ties, stats.half_up_quirks, stats.clamped, stats.nan_in, stats.order_channels,
           stats.zero_extreme_channels);
    return check_done();
}
