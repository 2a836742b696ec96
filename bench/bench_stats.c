/*
 * bench_stats: what the error statistics cost. qdq_apply_stats against qdq_apply on the same
 * tensor, one thread, in place on warm buffers (as a server applies a body it holds), the range
 * known (parameters computed once). The two are timed in turn, iteration by iteration, the order
 * alternating; each figure is the median of the per-iteration ratios (stats/plain) with its
 * quartiles, so that the machine's load swings, which hit neighbouring samples alike, cancel.
 *
 * Cases: 64 MiB (from memory) and 256 KiB (in cache): float32 per tensor, per channel on axis 0
 * and on the last axis (256 channels), float16, bfloat16 and float64 per tensor.
 * A benchmark, not a test: it exits 1 only when the two outputs differ or memory runs out.
 *
 * Usage: bench_stats [big|small]   (default both)
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qdq.h"
#include "qdq_half.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *warm_alloc(size_t bytes)
{
    void *b = NULL;
    if (posix_memalign(&b, 4096, bytes ? bytes : 1) != 0) {
        fprintf(stderr, "bench_stats: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    memset(b, 0, bytes);
    return b;
}

/* count elements uniform in [-4, 4) on a 2^-21 grid, fixed seed (bench_core's data). */
static void fill(qdq_dtype dt, void *buf, uint64_t count)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < count; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float v = (float)((int32_t)(s >> 40) - (1 << 23)) * 0x1p-21f;
        switch (dt) {
        case QDQ_FLOAT32: ((float *)buf)[i] = v; break;
        case QDQ_FLOAT64: ((double *)buf)[i] = v; break;
        case QDQ_FLOAT16: ((uint16_t *)buf)[i] = qdq_f32_to_f16(v); break;
        case QDQ_BFLOAT16: ((uint16_t *)buf)[i] = qdq_f32_to_bf16(v); break;
        }
    }
}

/* One case; returns 1 when the outputs differ. */
static int run_case(const char *name, qdq_dtype dt, int axis, size_t bytes, int iters)
{
    size_t es = qdq_dtype_size(dt);
    int64_t n = (int64_t)(bytes / es), dims[2] = { n, 1 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis;
    if (axis == 0)
        dims[0] = 256, dims[1] = n / 256;
    if (axis == 1)
        dims[0] = n / 256, dims[1] = 256;
    qdq_plan p;
    qdq_error err = { 0 };
    if (qdq_plan_init(&p, dt, dims, axis < 0 ? 1 : 2, &a, &err) != 0) {
        fprintf(stderr, "bench_stats: %s\n", err.msg);
        return 1;
    }
    void *data = warm_alloc(bytes), *ref = warm_alloc(bytes);
    void *acc = warm_alloc(qdq_acc_size(&p)), *par = warm_alloc(qdq_params_size(&p));
    fill(dt, data, p.count);
    qdq_run(&p, data, ref, NULL, 0, NULL, 0, acc, par, &err); /* the parameters */
    /* The same bytes both ways, from the same input. */
    fill(dt, data, p.count);
    qdq_stats st;
    qdq_stats_init(&st);
    qdq_apply_stats(&p, par, data, data, 0, p.count, &st);
    int wrong = memcmp(data, ref, bytes) != 0;
    qdq_stats_summary m;
    qdq_stats_summarize(&st, &m);
    size_t tb = sizeof(double) * (size_t)iters;
    double *tp = malloc(tb), *ts = malloc(tb), *r = malloc(tb);
    for (int w = 0; w < 3; w++) {
        qdq_apply(&p, par, data, data, 0, p.count);
        qdq_apply_stats(&p, par, data, data, 0, p.count, &st);
    }
    for (int i = 0; i < iters; i++) {
        for (int k = 0; k < 2; k++) {
            bool stats = (i + k) & 1;
            double t0 = now();
            if (stats) {
                qdq_stats_init(&st);
                qdq_apply_stats(&p, par, data, data, 0, p.count, &st);
            } else {
                qdq_apply(&p, par, data, data, 0, p.count);
            }
            (stats ? ts : tp)[i] = now() - t0;
        }
        r[i] = ts[i] / tp[i];
    }
    qsort(tp, (size_t)iters, sizeof *tp, cmp_double);
    qsort(ts, (size_t)iters, sizeof *ts, cmp_double);
    qsort(r, (size_t)iters, sizeof *r, cmp_double);
    printf("  %-28s %10.1f %10.1f %8.3f   [%.3f %.3f]%s\n", name, tp[iters / 2] * 1e6,
           ts[iters / 2] * 1e6, r[iters / 2], r[iters / 4], r[3 * iters / 4],
           wrong ? "  OUTPUTS DIFFER" : "");
    free(tp), free(ts), free(r), free(data), free(ref), free(acc), free(par);
    return wrong;
}

int main(int argc, char **argv)
{
    bool big = argc < 2 || !strcmp(argv[1], "big"), small = argc < 2 || !strcmp(argv[1], "small");
    static const struct {
        const char *name;
        qdq_dtype dt;
        int axis;
    } cases[] = {
        { "f32 per-tensor", QDQ_FLOAT32, -1 },      { "f32 axis 0 (256 ch)", QDQ_FLOAT32, 0 },
        { "f32 last axis (256 ch)", QDQ_FLOAT32, 1 }, { "f16 per-tensor", QDQ_FLOAT16, -1 },
        { "bf16 per-tensor", QDQ_BFLOAT16, -1 },    { "f64 per-tensor", QDQ_FLOAT64, -1 },
    };
    int wrong = 0;
    printf("bench_stats: qdq_apply_stats against qdq_apply, one thread, in place, warm buffers\n");
    printf("  kernels: %s; median us; stats/plain: median of per-iteration ratios [quartiles]\n",
           qdq_isa_best() == QDQ_ISA_AVX2 ? "avx2+f16c" : "portable");
    for (int sz = 0; sz < 2; sz++) {
        if (!(sz ? small : big))
            continue;
        size_t bytes = sz ? (256u << 10) : (64u << 20);
        int iters = sz ? 2001 : 31;
        printf("== %s (%zu bytes), %d iterations ==\n", sz ? "256 KiB" : "64 MiB", bytes, iters);
        printf("  %-28s %10s %10s %8s\n", "case", "plain", "stats", "ratio");
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            wrong |= run_case(cases[c].name, cases[c].dt, cases[c].axis, bytes, iters);
    }
    return wrong;
}
