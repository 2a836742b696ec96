/*
 * bench_core: the op's throughput against memcpy of the same bytes, measured in the same run.
 * A benchmark, not a test: it prints figures and PASS/MISS against the targets of the issue;
 * a missed target never changes the exit status. It exits 1 only when an answer is wrong (core
 * on 1 and 2 threads and TensorFlow's expression disagree) or a buffer cannot be allocated.
 *
 * For a 64 MiB tensor (out of cache) and a 256 KiB one (in cache), with 1 and 2 threads:
 * float32 per-tensor with the range from the data (two passes), range_given (one pass) and the
 * range already known (a reduction folded into an earlier copy: apply only), per-channel on
 * axis 0 and on the last axis (256 channels), float16, bfloat16 and float64. Each case runs the
 * way a server runs it: in place, on warm buffers, on a persistent thread pool. Per tensor, each
 * thread reduces its own 64-byte-aligned range into its own accumulator, the caller merges and
 * computes the parameters, then each thread applies its range. Per channel on axis 0, each
 * thread takes its share of the channels through the whole op (qdq_run_channels): the channels
 * are independent, so there is nothing to merge.
 *
 * Baselines: single-threaded memcpy of the same number of bytes (the ratio of the issue), a
 * 2-thread memcpy (information), and TensorFlow's own Eigen expression (eigen_baseline.cc),
 * whose output is checked against core's bit for bit.
 *
 * The machine is shared and its load comes in bursts, so every figure is taken in rounds: each
 * round times every case once, each case's sample followed by a sample of each memcpy. A burst
 * then spoils one round of every case rather than every sample of one case, and the ratios are
 * medians of the ratios of neighbouring samples.
 *
 * Usage: bench_core [rounds] [big|small]   (default 15 rounds, both sizes; each figure is the
 * median over the rounds)
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qdq.h"
#include "qdq_half.h"

/* bench/eigen_baseline.cc */
typedef struct eigen_qdq eigen_qdq;
eigen_qdq *eigen_qdq_create(int threads);
void eigen_qdq_destroy(eigen_qdq *e);
void eigen_qdq_f32(eigen_qdq *e, const float *in, float *out, size_t n, int64_t qmin,
                   int64_t qmax, float range[2]);

#include "pool.h"
#include "op.h"

#define CHANNELS 256

/* ---- Buffers and data ---- */

/* A page-aligned buffer with every page touched (no page faults while timing). */
static void *warm_alloc(size_t bytes)
{
    void *b = NULL;
    if (posix_memalign(&b, 4096, bytes ? bytes : 1) != 0) {
        fprintf(stderr, "bench_core: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    memset(b, 0, bytes);
    return b;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* count elements of dtype, uniform in [-4, 4) on a 2^-21 grid (no NaN, no -0.0), fixed seed. */
static void fill(qdq_dtype dtype, void *buf, uint64_t count)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < count; i++) {
        float v = (float)((int32_t)(rng_next(&s) >> 40) - (1 << 23)) * 0x1p-21f;
        switch (dtype) {
        case QDQ_FLOAT32: ((float *)buf)[i] = v; break;
        case QDQ_FLOAT64: ((double *)buf)[i] = v; break;
        case QDQ_FLOAT16: ((uint16_t *)buf)[i] = qdq_f32_to_f16(v); break;
        case QDQ_BFLOAT16: ((uint16_t *)buf)[i] = qdq_f32_to_bf16(v); break;
        }
    }
}

/* ---- Timing ---- */

typedef void (*bench_fn)(void *ctx);

static int rounds = 15;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n values (reorders them). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Calls per sample so that a sample lasts ~5 ms (after two warm-up calls). */
static long calibrate(bench_fn fn, void *ctx)
{
    fn(ctx);
    double t0 = now();
    fn(ctx);
    double one = now() - t0;
    return one > 0.005 ? 1 : (long)(0.005 / (one > 1e-7 ? one : 1e-7)) + 1;
}

/* Seconds per call, over iters calls. */
static double sample(bench_fn fn, void *ctx, long iters)
{
    double t0 = now();
    for (long i = 0; i < iters; i++)
        fn(ctx);
    return (now() - t0) / (double)iters;
}

/* ---- The op, split over the pool ---- */

enum { MODE_DATA, MODE_GIVEN, MODE_KNOWN };

/* One whole op, as a server runs it. */
static void op_once(void *ctx)
{
    op_job *j = ctx;
    if (j->plan.channels > 1 && j->plan.outer == 1 && j->mode == MODE_DATA) {
        pool_run(j->pool, channels_task, j, j->nt);
        return;
    }
    if (j->mode == MODE_DATA) {
        params_from_data(j);
    } else if (j->mode == MODE_GIVEN) {
        qdq_error err;
        if (qdq_params_given(&j->plan, &j->given[0], 1, &j->given[1], 1, j->params, &err)) {
            fprintf(stderr, "bench_core: %s\n", err.msg);
            exit(1);
        }
    }
    pool_run(j->pool, apply_task, j, j->nt);
}

/*
 * A job for a tensor of `bytes` bytes of dtype at data (per-tensor when axis < 0; otherwise
 * 2-D with CHANNELS channels on axis 0 or on the last axis, 1), on nt threads. It owns its
 * accumulators and parameters: op_release frees them.
 */
static op_job *op_new(pool *p, int nt, int mode, qdq_dtype dtype, int axis, void *data,
                      size_t bytes)
{
    op_job *j = calloc(1, sizeof *j);
    if (!j)
        exit(1);
    size_t es = qdq_dtype_size(dtype);
    int64_t count = (int64_t)(bytes / es), dims[2] = { count, 0 };
    int rank = 1;
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.range_given = mode == MODE_GIVEN;
    a.axis = axis;
    if (axis == 0)
        dims[0] = CHANNELS, dims[1] = count / CHANNELS, rank = 2;
    else if (axis == 1)
        dims[0] = count / CHANNELS, dims[1] = CHANNELS, rank = 2;
    qdq_error err;
    if (qdq_plan_init(&j->plan, dtype, dims, rank, &a, &err)) {
        fprintf(stderr, "bench_core: %s\n", err.msg);
        exit(1);
    }
    j->pool = p, j->nt = nt, j->mode = mode, j->data = data;
    j->acc_stride = (qdq_acc_size(&j->plan) + 63) / 64 * 64; /* no false sharing */
    j->accs = warm_alloc(j->acc_stride * (size_t)nt);
    j->params = warm_alloc(qdq_params_size(&j->plan));
    j->given[0] = -3.0f, j->given[1] = 3.0f;
    split(j->bounds, j->plan.count, es, nt);
    if (mode == MODE_KNOWN) /* the folded reduction happened earlier: params are ready */
        params_from_data(j);
    return j;
}

static void op_release(op_job *j)
{
    free(j->accs);
    free(j->params);
    free(j);
}

/* ---- Baselines ---- */

typedef struct copy_job {
    pool *pool;
    int nt;
    void *dst;
    const void *src;
    size_t bytes;
} copy_job;

static void copy_task(void *arg, int t)
{
    copy_job *c = arg;
    size_t per = (c->bytes / (size_t)c->nt + 63) / 64 * 64;
    size_t b = (size_t)t * per < c->bytes ? (size_t)t * per : c->bytes;
    size_t e = b + per < c->bytes ? b + per : c->bytes;
    memcpy((char *)c->dst + b, (const char *)c->src + b, e - b);
}

static void copy_once(void *ctx)
{
    copy_job *c = ctx;
    pool_run(c->pool, copy_task, c, c->nt);
}

typedef struct eigen_job {
    eigen_qdq *dev;
    float *in, *out;
    size_t n;
    int64_t qmin, qmax;
} eigen_job;

static void eigen_once(void *ctx)
{
    eigen_job *e = ctx;
    float range[2];
    eigen_qdq_f32(e->dev, e->in, e->out, e->n, e->qmin, e->qmax, range);
}

/* ---- The cases and the rounds ---- */

typedef struct bench_case {
    const char *name;
    qdq_dtype dtype;
    int axis;
    int mode;
} bench_case;

static const bench_case cases[] = {
    { "f32 per-tensor, range from data (2 passes)", QDQ_FLOAT32, -1, MODE_DATA },
    { "f32 per-tensor, range_given (1 pass)", QDQ_FLOAT32, -1, MODE_GIVEN },
    { "f32 per-tensor, range known (folded reduction)", QDQ_FLOAT32, -1, MODE_KNOWN },
    { "f32 per-channel axis 0 (256 ch)", QDQ_FLOAT32, 0, MODE_DATA },
    { "f32 per-channel last axis (256 ch)", QDQ_FLOAT32, 1, MODE_DATA },
    { "f16 per-tensor, range from data", QDQ_FLOAT16, -1, MODE_DATA },
    { "bf16 per-tensor, range from data", QDQ_BFLOAT16, -1, MODE_DATA },
    { "f64 per-tensor, range from data", QDQ_FLOAT64, -1, MODE_DATA },
};
enum { C_F32, C_GIVEN, C_KNOWN, C_AXIS0, C_LAST, C_F16, C_BF16, C_F64, N_CASES };

/* One timed thing: a row of the table. t, r1, r2 hold one value per round. */
typedef struct entry {
    const char *name;
    int nt;
    bench_fn fn;
    void *ctx;
    long iters;
    double *t, *r1, *r2;
    double median, min, vs1, vs2; /* seconds; medians of the per-round ratios to memcpy */
} entry;

#define MAX_ENTRIES (2 + N_CASES * MAX_THREADS + 2 * MAX_THREADS)

typedef struct size_run {
    entry e[MAX_ENTRIES];
    int n;
    int op[N_CASES][MAX_THREADS + 1]; /* entry index of each case */
    int eigen[MAX_THREADS + 1];       /* entry index of Eigen in place, or -1 */
} size_run;

static int add(size_run *r, const char *name, int nt, bench_fn fn, void *ctx)
{
    entry *e = &r->e[r->n];
    memset(e, 0, sizeof *e);
    e->name = name, e->nt = nt, e->fn = fn, e->ctx = ctx;
    e->t = calloc(3 * (size_t)rounds, sizeof(double));
    if (!e->t)
        exit(1);
    e->r1 = e->t + rounds, e->r2 = e->r1 + rounds;
    return r->n++;
}

/* Median over the rounds of the ratio of entry a to entry b (both timed in each round). */
static double ratio(const size_run *r, int a, int b)
{
    double *v = calloc((size_t)rounds, sizeof *v);
    if (!v)
        exit(1);
    for (int s = 0; s < rounds; s++)
        v[s] = r->e[a].t[s] / r->e[b].t[s];
    double m = median(v, rounds);
    free(v);
    return m;
}

/* Every entry once per round, each followed by memcpy on 1 and on 2 threads (entries 0, 1). */
static void run_rounds(size_run *r)
{
    for (int i = 0; i < r->n; i++)
        r->e[i].iters = calibrate(r->e[i].fn, r->e[i].ctx);
    entry *m1 = &r->e[0], *m2 = &r->e[1];
    for (int s = 0; s < rounds; s++)
        for (int i = 0; i < r->n; i++) {
            entry *e = &r->e[i];
            e->t[s] = sample(e->fn, e->ctx, e->iters);
            e->r1[s] = e->t[s] / sample(m1->fn, m1->ctx, m1->iters);
            e->r2[s] = e->t[s] / sample(m2->fn, m2->ctx, m2->iters);
        }
    double *v = calloc((size_t)rounds, sizeof *v);
    if (!v)
        exit(1);
    for (int i = 0; i < r->n; i++) {
        entry *e = &r->e[i];
        memcpy(v, e->t, (size_t)rounds * sizeof *v);
        e->median = median(v, rounds), e->min = v[0];
        memcpy(v, e->r1, (size_t)rounds * sizeof *v);
        e->vs1 = median(v, rounds);
        memcpy(v, e->r2, (size_t)rounds * sizeof *v);
        e->vs2 = median(v, rounds);
    }
    free(v);
}

static void print_rows(const size_run *r, size_t bytes, int from, int to)
{
    for (int i = from; i < to; i++) {
        const entry *e = &r->e[i];
        printf("  %-48s %3d %10.3f %10.3f %8.2f %9.3f %9.3f\n", e->name, e->nt,
               e->median * 1e6, e->min * 1e6, (double)bytes / e->median * 1e-9, e->vs1, e->vs2);
    }
}

/* Buffers of the largest size; smaller sizes use their beginnings. */
typedef struct buffers {
    char *data[4]; /* one per dtype, computed in place */
    char *orig;    /* float32 data: memcpy's source, Eigen's input, the check's input */
    char *copy_dst, *eig, *out;
} buffers;

/* Core (1 and 2 threads) and TensorFlow's Eigen expression (1 and 2 threads) on the same data:
 * all four outputs must be the same bits. Uses eig and out as scratch. */
static int wrong_answers;

static void check_eigen(pool *p, eigen_qdq **dev, buffers *b, size_t bytes)
{
    size_t n = bytes / 4, diff[MAX_THREADS + 1] = { 0 }, first = (size_t)-1;
    char *core[MAX_THREADS + 1] = { NULL, b->copy_dst, b->eig };
    for (int nt = 1; nt <= MAX_THREADS; nt++) {
        memcpy(core[nt], b->orig, bytes);
        op_job *j = op_new(p, nt, MODE_DATA, QDQ_FLOAT32, -1, core[nt], bytes);
        op_once(j);
        op_release(j);
    }
    bool threads_same = memcmp(core[1], core[2], bytes) == 0;
    wrong_answers += !threads_same;
    for (int nt = 1; nt <= MAX_THREADS; nt++) {
        float range[2];
        eigen_qdq_f32(dev[nt], (const float *)b->orig, (float *)b->out, n, -128, 127, range);
        for (size_t i = 0; i < n; i++)
            if (memcmp(core[2] + 4 * i, b->out + 4 * i, 4) != 0) {
                diff[nt]++;
                first = first < i ? first : i;
            }
    }
    printf("  check: core on 1 and 2 threads: %s; TF's Eigen expression (1 and 2 threads) vs "
           "core: %s (%zu elements)\n", threads_same ? "identical" : "DIFFER",
           diff[1] + diff[2] == 0 ? "identical bit for bit" : "DIFFER", n);
    if (diff[1] + diff[2]) {
        float c, e;
        wrong_answers++;
        memcpy(&c, core[2] + 4 * first, 4);
        memcpy(&e, b->out + 4 * first, 4);
        printf("  check: %zu / %zu elements differ (1 / 2 Eigen threads); first at %zu: core "
               "%.9g, Eigen %.9g, input %.9g\n", diff[1], diff[2], first, c, e,
               ((const float *)b->orig)[first]);
    }
}

static void bench_size(pool *p, eigen_qdq **dev, buffers *b, size_t bytes, const char *label,
                       size_run *r)
{
    memset(r, 0, sizeof *r);
    printf("\n== %s tensor (%zu bytes) ==\n", label, bytes);
    if (dev[1] && dev[2])
        check_eigen(p, dev, b, bytes);

    copy_job c1 = { p, 1, b->copy_dst, b->orig, bytes }, c2 = { p, 2, b->copy_dst, b->orig, bytes };
    add(r, "memcpy (the baseline)", 1, copy_once, &c1);
    add(r, "memcpy (information)", 2, copy_once, &c2);
    op_job *jobs[N_CASES][MAX_THREADS + 1];
    for (int k = 0; k < N_CASES; k++) {
        const bench_case *bc = &cases[k];
        fill(bc->dtype, b->data[bc->dtype], bytes / qdq_dtype_size(bc->dtype));
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            jobs[k][nt] = op_new(p, nt, bc->mode, bc->dtype, bc->axis, b->data[bc->dtype], bytes);
            r->op[k][nt] = add(r, bc->name, nt, op_once, jobs[k][nt]);
        }
    }
    eigen_job ej[2][MAX_THREADS + 1];
    for (int nt = 0; nt <= MAX_THREADS; nt++)
        r->eigen[nt] = -1;
    if (dev[1] && dev[2]) {
        memcpy(b->eig, b->orig, bytes);
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            ej[0][nt] = (eigen_job){ dev[nt], (float *)b->eig, (float *)b->eig, bytes / 4, -128, 127 };
            r->eigen[nt] = add(r, "TF Eigen expr, f32 per-tensor, in place", nt, eigen_once,
                               &ej[0][nt]);
        }
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            ej[1][nt] = (eigen_job){ dev[nt], (float *)b->orig, (float *)b->out, bytes / 4, -128, 127 };
            add(r, "TF Eigen expr, f32 per-tensor, new output", nt, eigen_once, &ej[1][nt]);
        }
    }

    run_rounds(r);

    printf("  %-48s %3s %10s %10s %8s %9s %9s\n", "case", "thr", "median us", "min us", "GB/s",
           "x memcpy", "x memcpy");
    printf("  %-48s %3s %10s %10s %8s %9s %9s\n", "", "", "", "", "", "(1 thr)", "(2 thr)");
    print_rows(r, bytes, 0, r->n);
    for (int k = 0; k < N_CASES; k++)
        for (int nt = 1; nt <= MAX_THREADS; nt++)
            op_release(jobs[k][nt]);
}

static int verdicts[2];

static void verdict(const char *what, double value, const char *unit, double limit)
{
    bool ok = value <= limit;
    verdicts[ok]++;
    printf("  %-52s %6.3f%-13s <= %.2f  %s\n", what, value, unit, limit, ok ? "PASS" : "MISS");
}

static void summary(const size_run *r, const char *label)
{
    const int T = 2;
    const entry *e = r->e;
    printf("\n  %s, %d threads, medians over %d rounds:\n", label, T, rounds);
    verdict("f32 per-tensor, range from data", e[r->op[C_F32][T]].vs1, "x memcpy", 1.25);
    if (r->eigen[T] >= 0)
        printf("  %-52s %6.3f%-13s (TF's Eigen expression, in place)\n", "",
               e[r->eigen[T]].vs1, "x memcpy");
    verdict("f32 per-tensor, range_given", e[r->op[C_GIVEN][T]].vs1, "x memcpy", 1.0);
    verdict("f32 per-tensor, range known (folded reduction)", e[r->op[C_KNOWN][T]].vs1,
            "x memcpy", 1.0);
    verdict("f32 per-channel axis 0, vs per-tensor", ratio(r, r->op[C_AXIS0][T], r->op[C_F32][T]),
            "x per-tensor", 1.15);
    verdict("f32 per-channel last axis, vs per-tensor",
            ratio(r, r->op[C_LAST][T], r->op[C_F32][T]), "x per-tensor", 1.15);
    verdict("f16 per-tensor, range from data", e[r->op[C_F16][T]].vs1, "x memcpy", 1.3);
    verdict("bf16 per-tensor, range from data", e[r->op[C_BF16][T]].vs1, "x memcpy", 1.3);
}

static void size_run_release(size_run *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->e[i].t);
}

/* Fork-join cost of the pool with 2 threads and no work: the floor of a 2-thread op. */
static void nothing(void *arg, int t) { (void)arg, (void)t; }
static void fork_join_once(void *ctx) { pool_run(ctx, nothing, NULL, 2); }

/* The machine may be shared: other processes' load makes 2-thread figures meaningless. */
static void load_note(const char *when, int cores)
{
    double l[1];
    if (getloadavg(l, 1) != 1)
        return;
    if (cores < 0) /* at the end the average includes this benchmark's own threads */
        printf("  load average (1 min) at %s: %.2f (this benchmark included)\n", when, l[0]);
    else
        printf("  load average (1 min) at %s: %.2f%s\n", when, l[0],
               l[0] > 0.5 * cores ? "  -- the machine is busy: figures are unreliable" : "");
}

int main(int argc, char **argv)
{
    if (argc > 1 && atoi(argv[1]) > 0)
        rounds = atoi(argv[1]);
    const char *only = argc > 2 ? argv[2] : "";
    bool run_big = strcmp(only, "small") != 0, run_small = strcmp(only, "big") != 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    cpu_set_t set;
    int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    printf("bench_core: QuantizeAndDequantizeV2 (signed 8-bit, HALF_TO_EVEN) vs memcpy\n");
    printf("  cores: %ld online, %d usable by this process; kernels: %s; %d rounds, median\n",
           sysconf(_SC_NPROCESSORS_ONLN), affinity,
           qdq_isa_best() == QDQ_ISA_AVX2 ? "avx2+f16c" : "portable", rounds);
    load_note("start", affinity);
    printf("  GB/s = tensor bytes / median time. x memcpy = median over rounds of time / time of\n"
           "  a memcpy of the same bytes (1 or 2 threads) timed right after it, in this run.\n");

    const size_t big = (size_t)64 << 20, small = (size_t)256 << 10;
    buffers b;
    for (int d = 0; d < 4; d++)
        b.data[d] = warm_alloc(big);
    b.orig = warm_alloc(big);
    b.copy_dst = warm_alloc(big);
    b.eig = warm_alloc(big);
    b.out = warm_alloc(big);
    fill(QDQ_FLOAT32, b.orig, big / 4);

    pool p;
    pool_init(&p, MAX_THREADS);
    eigen_qdq *dev[MAX_THREADS + 1] = { NULL, eigen_qdq_create(1), eigen_qdq_create(2) };
    double fj[9];
    for (int i = 0; i < 9; i++)
        fj[i] = sample(fork_join_once, &p, 2000);
    printf("  pool fork-join with no work, 2 threads: %.2f us\n", median(fj, 9) * 1e6);

    static size_run rb, rs;
    if (run_big)
        bench_size(&p, dev, &b, big, "64 MiB", &rb);
    if (run_small)
        bench_size(&p, dev, &b, small, "256 KiB (in cache)", &rs);

    printf("\n== summary: the issue's targets (informational, not a test) ==\n");
    if (run_big)
        summary(&rb, "64 MiB");
    if (run_small)
        summary(&rs, "256 KiB in cache");
    printf("\n  %d PASS, %d MISS\n", verdicts[1], verdicts[0]);
    load_note("end", -1);

    size_run_release(&rb);
    size_run_release(&rs);
    for (int nt = 1; nt <= MAX_THREADS; nt++)
        eigen_qdq_destroy(dev[nt]);
    pool_release(&p);
    for (int d = 0; d < 4; d++)
        free(b.data[d]);
    free(b.orig), free(b.copy_dst), free(b.eig), free(b.out);
    return wrong_answers ? 1 : 0;
}
