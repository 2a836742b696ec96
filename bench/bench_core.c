/*
 * bench_core: the op's throughput against memcpy of the same bytes, measured in the same run.
 * A benchmark, not a test: it prints figures and PASS/MISS against the targets of the issue,
 * and always exits 0 (unless it cannot allocate its buffers).
 *
 * For a 64 MiB tensor (out of cache) and a 256 KiB one (in cache), with 1 and 2 threads:
 * float32 per-tensor with the range from the data (two passes), range_given (one pass) and the
 * range already known (a reduction folded into an earlier copy: apply only), per-channel on
 * axis 0 and on the last axis (256 channels), float16, bfloat16 and float64. Each case runs the
 * way a server runs it: in place, on warm buffers, on a persistent thread pool; each thread
 * reduces its own 64-byte-aligned range into its own accumulator, the caller merges and
 * computes the parameters, then each thread applies its range.
 *
 * Baselines: single-threaded memcpy of the same number of bytes (the ratio of the issue), a
 * 2-thread memcpy (information), and TensorFlow's own Eigen expression (eigen_baseline.cc),
 * whose output is checked against core's bit for bit.
 *
 * Usage: bench_core [samples]   (default 15; each figure is the median of the samples)
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

#define MAX_THREADS 2
#define CHANNELS 256
#define MIB (1024.0 * 1024.0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- A persistent pool: helpers spin briefly after a job, then sleep on a condvar. ---- */

typedef void (*task_fn)(void *arg, int t);

typedef struct pool {
    int n; /* threads, counting the caller as thread 0 */
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;    /* bumped (under mu) to start a job */
    atomic_int pending; /* helpers still in the current job */
    task_fn fn;
    void *arg;
    int nt; /* threads taking part in the current job */
    bool stop;
} pool;

typedef struct helper {
    pool *p;
    int t;
} helper;

static helper helpers[MAX_THREADS];

/* Spin time before a helper sleeps: long enough to cover the caller's merge between the two
 * passes and the timer calls between samples, short enough that idle helpers leave the core to
 * single-threaded runs. */
#define SPIN_SECONDS 0.002

static void *helper_main(void *arg)
{
    helper *h = arg;
    pool *p = h->p;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen) {
            double until = now() + SPIN_SECONDS;
            for (int i = 0; g == seen; i++) {
                cpu_relax();
                g = atomic_load_explicit(&p->gen, memory_order_acquire);
                if ((i & 1023) == 1023 && now() > until)
                    break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stop)
            return NULL;
        if (h->t < p->nt)
            p->fn(p->arg, h->t);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

static void pool_init(pool *p, int n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int t = 1; t < n; t++) {
        helpers[t] = (helper){ p, t };
        if (pthread_create(&p->tid[t], NULL, helper_main, &helpers[t]) != 0) {
            fprintf(stderr, "bench_core: pthread_create failed\n");
            exit(1);
        }
    }
}

/* Runs fn(arg, t) for t in [0, nt) (t = 0 on the caller) and returns when all are done. */
static void pool_run(pool *p, task_fn fn, void *arg, int nt)
{
    if (nt <= 1) {
        fn(arg, 0);
        return;
    }
    p->fn = fn, p->arg = arg, p->nt = nt;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        cpu_relax();
}

static void pool_release(pool *p)
{
    p->nt = 0;
    p->stop = true;
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++)
        pthread_join(p->tid[t], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

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

typedef struct stats {
    double median, min; /* seconds per call */
    double vs1, vs2;    /* median over samples of time / time of the interleaved memcpy sample
                         * (1 thread, 2 threads) */
} stats;

static int samples = 15;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

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

static double sample(bench_fn fn, void *ctx, long iters)
{
    double t0 = now();
    for (long i = 0; i < iters; i++)
        fn(ctx);
    return (now() - t0) / (double)iters;
}

/*
 * Time per call of fn. When base1 / base2 are given, each sample of fn is followed by a sample
 * of each baseline, and vs1 / vs2 are the medians of the per-sample ratios: the machine is
 * shared and its load drifts, and a ratio of neighbouring samples is far steadier than a ratio
 * of medians taken seconds apart.
 */
static stats measure_vs(bench_fn fn, void *ctx, bench_fn base1, void *ctx1, bench_fn base2,
                        void *ctx2)
{
    long it = calibrate(fn, ctx), it1 = base1 ? calibrate(base1, ctx1) : 0;
    long it2 = base2 ? calibrate(base2, ctx2) : 0;
    double *v = calloc(3 * (size_t)samples, sizeof *v);
    if (!v)
        exit(1);
    double *r1 = v + samples, *r2 = r1 + samples;
    for (int s = 0; s < samples; s++) {
        v[s] = sample(fn, ctx, it);
        r1[s] = base1 ? v[s] / sample(base1, ctx1, it1) : 0;
        r2[s] = base2 ? v[s] / sample(base2, ctx2, it2) : 0;
    }
    stats r;
    r.vs1 = median(r1, samples), r.vs2 = median(r2, samples);
    r.median = median(v, samples), r.min = v[0];
    free(v);
    return r;
}

static stats measure(bench_fn fn, void *ctx) { return measure_vs(fn, ctx, NULL, NULL, NULL, NULL); }

/* ---- The op, split over the pool ---- */

enum { MODE_DATA, MODE_GIVEN, MODE_KNOWN };

typedef struct op_job {
    pool *pool;
    int nt;
    int mode;
    qdq_plan plan;
    void *data; /* computed in place */
    char *accs; /* MAX_THREADS accumulators, acc_stride bytes apart */
    size_t acc_stride;
    void *params;
    float given[2]; /* MODE_GIVEN, float32 only */
    uint64_t bounds[MAX_THREADS + 1];
} op_job;

/* Thread t's range: [0, count) cut into nt pieces whose bounds are 64-byte aligned. */
static void split(uint64_t *bounds, uint64_t count, size_t es, int nt)
{
    uint64_t step = 64 / es, per = (count + (uint64_t)nt - 1) / (uint64_t)nt;
    per = (per + step - 1) / step * step;
    for (int t = 0; t <= nt; t++)
        bounds[t] = (uint64_t)t * per < count ? (uint64_t)t * per : count;
}

static void reduce_task(void *arg, int t)
{
    op_job *j = arg;
    void *acc = j->accs + (size_t)t * j->acc_stride;
    qdq_acc_init(&j->plan, acc);
    qdq_reduce(&j->plan, acc, j->data, j->bounds[t], j->bounds[t + 1]);
}

static void apply_task(void *arg, int t)
{
    op_job *j = arg;
    qdq_apply(&j->plan, j->params, j->data, j->data, j->bounds[t], j->bounds[t + 1]);
}

/* The range from a complete reduction of the data into params (thread 0's accumulator). */
static void params_from_data(op_job *j)
{
    pool_run(j->pool, reduce_task, j, j->nt);
    for (int t = 1; t < j->nt; t++)
        qdq_acc_merge(&j->plan, j->accs, j->accs + (size_t)t * j->acc_stride);
    qdq_params_from_acc(&j->plan, j->accs, j->data, j->params);
}

static void op_once(void *ctx)
{
    op_job *j = ctx;
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

/* Sets up j for a tensor of `bytes` bytes of dtype (per-tensor when axis < 0; otherwise 2-D
 * with CHANNELS channels on axis 0 or on the last axis 1), on nt threads. */
static void op_setup(op_job *j, pool *p, int nt, int mode, qdq_dtype dtype, int axis,
                     void *data, size_t bytes, char *accs, size_t acc_cap, void *params,
                     size_t params_cap)
{
    memset(j, 0, sizeof *j);
    size_t es = qdq_dtype_size(dtype);
    int64_t count = (int64_t)(bytes / es), dims[2];
    int rank = 1;
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.range_given = mode == MODE_GIVEN;
    a.axis = axis;
    dims[0] = count;
    if (axis == 0)
        dims[0] = CHANNELS, dims[1] = count / CHANNELS, rank = 2;
    else if (axis == 1)
        dims[0] = count / CHANNELS, dims[1] = CHANNELS, rank = 2;
    qdq_error err;
    if (qdq_plan_init(&j->plan, dtype, dims, rank, &a, &err)) {
        fprintf(stderr, "bench_core: %s\n", err.msg);
        exit(1);
    }
    j->pool = p, j->nt = nt, j->mode = mode, j->data = data, j->accs = accs, j->params = params;
    j->acc_stride = (qdq_acc_size(&j->plan) + 63) / 64 * 64;
    if (j->acc_stride * MAX_THREADS > acc_cap || qdq_params_size(&j->plan) > params_cap) {
        fprintf(stderr, "bench_core: parameter buffers too small\n");
        exit(1);
    }
    j->given[0] = -3.0f, j->given[1] = 3.0f;
    split(j->bounds, j->plan.count, es, nt);
    if (mode == MODE_KNOWN) /* the folded reduction happened earlier: params are ready */
        params_from_data(j);
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

/* ---- The run ---- */

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

typedef struct size_result {
    stats memcpy1, memcpy2;
    stats op[N_CASES][MAX_THREADS + 1];
    stats eigen[MAX_THREADS + 1];
    bool have_eigen;
} size_result;

static void row(const char *name, int nt, stats s, size_t bytes)
{
    printf("  %-48s %3d %10.3f %10.3f %8.2f %9.3f %9.3f\n", name, nt, s.median * 1e3,
           s.min * 1e3, (double)bytes / s.median * 1e-9, s.vs1, s.vs2);
}

typedef struct buffers {
    char *data, *copy_dst, *orig, *out;
    char *accs;
    size_t acc_cap;
    void *params;
    size_t params_cap;
} buffers;

/* The bit-for-bit check: core (1 and 2 threads) and TensorFlow's expression on the same data. */
static void check_eigen(pool *p, eigen_qdq **dev, buffers *b, size_t bytes)
{
    size_t n = bytes / 4;
    fill(QDQ_FLOAT32, b->orig, n);
    op_job j;
    memcpy(b->data, b->orig, bytes);
    op_setup(&j, p, 1, MODE_DATA, QDQ_FLOAT32, -1, b->data, bytes, b->accs, b->acc_cap,
             b->params, b->params_cap);
    op_once(&j);
    memcpy(b->copy_dst, b->data, bytes); /* core, 1 thread */
    memcpy(b->data, b->orig, bytes);
    op_setup(&j, p, 2, MODE_DATA, QDQ_FLOAT32, -1, b->data, bytes, b->accs, b->acc_cap,
             b->params, b->params_cap);
    op_once(&j);
    bool threads_same = memcmp(b->copy_dst, b->data, bytes) == 0;
    size_t diff[MAX_THREADS + 1] = { 0 };
    size_t first = (size_t)-1;
    for (int nt = 1; nt <= MAX_THREADS; nt++) {
        float range[2];
        eigen_qdq_f32(dev[nt], (const float *)b->orig, (float *)b->out, n, j.plan.qmin,
                      j.plan.qmax, range);
        for (size_t i = 0; i < n; i++) {
            uint32_t x, y;
            memcpy(&x, b->data + 4 * i, 4);
            memcpy(&y, b->out + 4 * i, 4);
            if (x != y) {
                diff[nt]++;
                if (first == (size_t)-1)
                    first = i;
            }
        }
    }
    printf("  check: core 1 thread vs 2 threads: %s; TF Eigen expression vs core: %s",
           threads_same ? "identical" : "DIFFER",
           diff[1] + diff[2] == 0 ? "identical bit for bit" : "DIFFER");
    printf(" (%zu elements)\n", n);
    if (diff[1] + diff[2]) {
        float c, e;
        memcpy(&c, b->data + 4 * first, 4);
        memcpy(&e, b->out + 4 * first, 4);
        printf("  check: %zu / %zu elements differ (1 / 2 Eigen threads); first at %zu: core %.9g,"
               " Eigen %.9g, input %.9g\n", diff[1], diff[2], first, c, e,
               ((const float *)b->orig)[first]);
    }
}

static void bench_size(pool *p, eigen_qdq **dev, buffers *b, size_t bytes, const char *label,
                       size_result *r)
{
    memset(r, 0, sizeof *r);
    printf("\n== %s tensor (%zu bytes) ==\n", label, bytes);
    printf("  %-48s %3s %10s %10s %8s %9s %9s\n", "case", "thr", "median ms", "min ms", "GB/s",
           "x memcpy", "x memcpy");
    printf("  %-48s %3s %10s %10s %8s %9s %9s\n", "", "", "", "", "", "(1 thr)", "(2 thr)");

    copy_job c1 = { p, 1, b->copy_dst, b->orig, bytes }, c2 = { p, 2, b->copy_dst, b->orig, bytes };
    r->memcpy1 = measure_vs(copy_once, &c1, copy_once, &c1, copy_once, &c2);
    r->memcpy2 = measure_vs(copy_once, &c2, copy_once, &c1, copy_once, &c2);
    row("memcpy (the baseline)", 1, r->memcpy1, bytes);
    row("memcpy (information)", 2, r->memcpy2, bytes);

    for (int k = 0; k < N_CASES; k++) {
        const bench_case *bc = &cases[k];
        fill(bc->dtype, b->data, bytes / qdq_dtype_size(bc->dtype));
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            op_job j;
            op_setup(&j, p, nt, bc->mode, bc->dtype, bc->axis, b->data, bytes, b->accs,
                     b->acc_cap, b->params, b->params_cap);
            r->op[k][nt] = measure_vs(op_once, &j, copy_once, &c1, copy_once, &c2);
            row(bc->name, nt, r->op[k][nt], bytes);
        }
    }

    if (dev[1] && dev[2]) {
        r->have_eigen = true;
        check_eigen(p, dev, b, bytes);
        memcpy(b->data, b->orig, bytes);
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            eigen_job e = { dev[nt], (float *)b->data, (float *)b->data, bytes / 4, -128, 127 };
            r->eigen[nt] = measure_vs(eigen_once, &e, copy_once, &c1, copy_once, &c2);
            row("TF Eigen expr, f32 per-tensor, in place", nt, r->eigen[nt], bytes);
        }
        for (int nt = 1; nt <= MAX_THREADS; nt++) {
            eigen_job e = { dev[nt], (float *)b->orig, (float *)b->out, bytes / 4, -128, 127 };
            row("TF Eigen expr, f32 per-tensor, new output", nt,
                measure_vs(eigen_once, &e, copy_once, &c1, copy_once, &c2), bytes);
        }
    }
}

static int verdicts[2];

static void verdict(const char *what, double value, const char *unit, double limit)
{
    bool ok = value <= limit;
    verdicts[ok]++;
    printf("  %-60s %6.3f%-11s <= %.2f  %s\n", what, value, unit, limit, ok ? "PASS" : "MISS");
}

static void summary(const size_result *r, const char *label)
{
    const int T = 2;
    const stats *op = NULL;
    printf("\n  targets, %d threads, %s (median of %d samples):\n", T, label, samples);
    verdict("f32 per-tensor, range from data", r->op[C_F32][T].vs1, "x memcpy", 1.25);
    if (r->have_eigen)
        printf("  %-60s %6.3f%-11s (TF's Eigen expression, in place)\n", "", r->eigen[T].vs1,
               "x memcpy");
    verdict("f32 per-tensor, range_given", r->op[C_GIVEN][T].vs1, "x memcpy", 1.0);
    verdict("f32 per-tensor, range known from folded reduction", r->op[C_KNOWN][T].vs1,
            "x memcpy", 1.0);
    op = r->op[C_F32];
    /* Both normalised by their interleaved memcpy samples, for the same reason. */
    verdict("f32 per-channel axis 0, vs per-tensor", r->op[C_AXIS0][T].vs1 / op[T].vs1,
            "x per-tensor", 1.15);
    verdict("f32 per-channel last axis, vs per-tensor", r->op[C_LAST][T].vs1 / op[T].vs1,
            "x per-tensor", 1.15);
    verdict("f16 per-tensor, range from data", r->op[C_F16][T].vs1, "x memcpy", 1.3);
    verdict("bf16 per-tensor, range from data", r->op[C_BF16][T].vs1, "x memcpy", 1.3);
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
    if (argc > 1)
        samples = atoi(argv[1]) > 0 ? atoi(argv[1]) : samples;
    setvbuf(stdout, NULL, _IOLBF, 0);
    cpu_set_t set;
    int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    printf("bench_core: QuantizeAndDequantizeV2 (signed 8-bit, HALF_TO_EVEN) vs memcpy\n");
    printf("  cores: %ld online, %d usable by this process; kernels: %s; %d samples, median\n",
           sysconf(_SC_NPROCESSORS_ONLN), affinity,
           qdq_isa_best() == QDQ_ISA_AVX2 ? "avx2+f16c" : "portable", samples);
    load_note("start", affinity);
    printf("  GB/s = tensor bytes / median time. x memcpy = median over samples of time / time of\n"
           "  a memcpy of the same bytes (1 or 2 threads) timed right after it, in this run.\n");

    const size_t big = (size_t)64 << 20, small = (size_t)256 << 10;
    buffers b;
    b.data = warm_alloc(big);
    b.copy_dst = warm_alloc(big);
    b.orig = warm_alloc(big);
    b.out = warm_alloc(big);
    b.acc_cap = 5 * CHANNELS * 8 * MAX_THREADS + 64 * MAX_THREADS;
    b.accs = warm_alloc(b.acc_cap);
    b.params_cap = 6 * CHANNELS * 8;
    b.params = warm_alloc(b.params_cap);
    fill(QDQ_FLOAT32, b.orig, big / 4);

    pool p;
    pool_init(&p, MAX_THREADS);
    eigen_qdq *dev[MAX_THREADS + 1] = { NULL, eigen_qdq_create(1), eigen_qdq_create(2) };
    printf("  pool fork-join with no work, 2 threads: %.2f us\n",
           measure(fork_join_once, &p).median * 1e6);

    size_result rb, rs;
    bench_size(&p, dev, &b, big, "64 MiB", &rb);
    bench_size(&p, dev, &b, small, "256 KiB (in cache)", &rs);

    printf("\n== summary (targets from the issue; informational, not a test) ==\n");
    summary(&rb, "64 MiB");
    summary(&rs, "256 KiB in cache");
    printf("\n  %d PASS, %d MISS\n", verdicts[1], verdicts[0]);
    load_note("end", -1);

    for (int nt = 1; nt <= MAX_THREADS; nt++)
        eigen_qdq_destroy(dev[nt]);
    pool_release(&p);
    free(b.data), free(b.copy_dst), free(b.orig), free(b.out), free(b.accs), free(b.params);
    return 0;
}
