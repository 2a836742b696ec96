/*
 * ab_core: the core against another revision of itself, in one process (bench/ab_core.sh builds
 * it). On a shared machine the time of a case swings by 2x from one second to the next, far more
 * than most changes to a kernel; two builds timed in turn, iteration by iteration, see the same
 * swings, and the median of their per-iteration ratios resolves a few percent.
 *
 * This file is compiled three times: with AB_OPS and AB_V=base (the other revision's library,
 * its symbols renamed by ab_core.sh), with AB_OPS and AB_V=new (this tree's), and alone (main).
 * The ops are bench_core's (op.h): per tensor and on the last axis, reduce, merge, apply; per
 * channel on axis 0, each thread's share of the channels through the whole op (qdq_run_channels,
 * or the three steps when a revision predates it).
 *
 * Usage (through ab_core.sh): ab_core [iterations] [KiB] [threads]
 */
#ifdef AB_OPS
#include "pool.h"
#include "qdq.h"
#include "qdq_half.h"
#include "op.h"

#define AB_CAT_(a, b) a##_##b
#define AB_CAT(a, b) AB_CAT_(a, b)
#define AB(name) AB_CAT(name, AB_V)

/* A job on a tensor of `bytes` bytes of dtype (per tensor when axis < 0; otherwise 2-D with
 * 256 channels on axis 0 or on the last axis), its data from seed. NULL when out of memory. */
void *AB(ab_job_new)(int dtype, int axis, size_t bytes, int nt, uint64_t seed)
{
    op_job *j = calloc(1, sizeof *j);
    size_t es = qdq_dtype_size((qdq_dtype)dtype);
    int64_t n = (int64_t)(bytes / es), dims[2] = { n, 1 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis;
    if (axis == 0)
        dims[0] = 256, dims[1] = n / 256;
    if (axis == 1)
        dims[0] = n / 256, dims[1] = 256;
    qdq_error err;
    if (!j || qdq_plan_init(&j->plan, (qdq_dtype)dtype, dims, axis < 0 ? 1 : 2, &a, &err)) {
        free(j);
        return NULL;
    }
    j->nt = nt;
    j->acc_stride = (qdq_acc_size(&j->plan) + 4095) / 4096 * 4096;
    j->accs = aligned_alloc(4096, j->acc_stride * MAX_THREADS);
    j->params = aligned_alloc(4096, (qdq_params_size(&j->plan) + 4095) / 4096 * 4096);
    j->data = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    if (!j->accs || !j->params || !j->data) {
        free(j->accs), free(j->params), free(j->data), free(j);
        return NULL;
    }
    uint64_t count = j->plan.count;
    split(j->bounds, count, es, nt);
    for (uint64_t i = 0; i < count; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        float v = (float)((int32_t)(seed >> 40) - (1 << 23)) * 0x1p-21f;
        if (dtype == QDQ_FLOAT32)
            ((float *)j->data)[i] = v;
        else if (dtype == QDQ_FLOAT64)
            ((double *)j->data)[i] = v;
        else if (dtype == QDQ_FLOAT16)
            ((uint16_t *)j->data)[i] = qdq_f32_to_f16(v);
        else
            ((uint16_t *)j->data)[i] = qdq_f32_to_bf16(v);
    }
    return j;
}

void AB(ab_job_run)(pool *p, void *job)
{
    op_job *j = job;
    j->pool = p;
    if (j->plan.channels > 1 && j->plan.outer == 1) {
        pool_run(p, channels_task, j, j->nt);
        return;
    }
    params_from_data(j);
    pool_run(p, apply_task, j, j->nt);
}

const void *AB(ab_job_data)(void *job) { return ((op_job *)job)->data; }

#else /* main */
#include <stdint.h>
#include <unistd.h>
#include <x86intrin.h>

#include "pool.h"
#include "qdq.h" /* the dtype numbers, which every revision shares */

void *ab_job_new_base(int, int, size_t, int, uint64_t), *ab_job_new_new(int, int, size_t, int, uint64_t);
void ab_job_run_base(pool *, void *), ab_job_run_new(pool *, void *);
const void *ab_job_data_base(void *), *ab_job_data_new(void *);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cycles_per_us(void)
{
    double t0 = now();
    uint64_t c0 = __rdtsc();
    while (now() - t0 < 0.05)
        ;
    return (double)(__rdtsc() - c0) / ((now() - t0) * 1e6);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 3000, nt = argc > 3 ? atoi(argv[3]) : 2;
    size_t bytes = (size_t)(argc > 2 ? atoi(argv[2]) : 256) << 10;
    if (iters < 4 || nt < 1 || nt > MAX_THREADS || bytes < (8u << 10)) {
        fprintf(stderr, "usage: ab_core [iterations >= 4] [KiB >= 8] [threads 1..%d]\n",
                MAX_THREADS);
        return 2;
    }
    static const struct {
        const char *name;
        int dtype, axis;
    } cases[] = {
        { "f32 per-tensor", QDQ_FLOAT32, -1 }, { "f32 axis 0 (256 ch)", QDQ_FLOAT32, 0 },
        { "f32 last axis (256 ch)", QDQ_FLOAT32, 1 }, { "f16 per-tensor", QDQ_FLOAT16, -1 },
        { "bf16 per-tensor", QDQ_BFLOAT16, -1 }, { "f64 per-tensor", QDQ_FLOAT64, -1 },
    };
    pool p;
    pool_init(&p, MAX_THREADS);
    double cpu = cycles_per_us(), *tb = malloc(sizeof(double) * (size_t)iters);
    double *tn = malloc(sizeof(double) * (size_t)iters), *r = malloc(sizeof(double) * (size_t)iters);
    printf("ab_core: this tree (new) against the base revision, in one process\n");
    printf("  cores: %ld online; %zu KiB tensors, %d threads, %d iterations a case, base and new in"
           " turn\n", sysconf(_SC_NPROCESSORS_ONLN), bytes >> 10, nt, iters);
    printf("  times: median (min) us; new/base: median of the per-iteration ratios [quartiles]\n");
    printf("  %-24s %18s %18s %8s %16s\n", "case", "base", "new", "new/base", "");
    int wrong = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        void *b = ab_job_new_base(cases[c].dtype, cases[c].axis, bytes, nt, seed);
        void *n = ab_job_new_new(cases[c].dtype, cases[c].axis, bytes, nt, seed);
        if (!b || !n) {
            fprintf(stderr, "ab_core: out of memory\n");
            return 1;
        }
        for (int w = 0; w < 20; w++)
            ab_job_run_base(&p, b), ab_job_run_new(&p, n);
        if (memcmp(ab_job_data_base(b), ab_job_data_new(n), bytes)) {
            printf("  %-24s the two revisions' outputs differ\n", cases[c].name);
            wrong = 1;
        }
        for (int i = 0; i < iters; i++) { /* the order alternates: neither always runs second */
            uint64_t t0 = __rdtsc();
            if (i & 1)
                ab_job_run_base(&p, b);
            else
                ab_job_run_new(&p, n);
            uint64_t t1 = __rdtsc();
            if (i & 1)
                ab_job_run_new(&p, n);
            else
                ab_job_run_base(&p, b);
            uint64_t t2 = __rdtsc();
            tb[i] = (double)((i & 1) ? t1 - t0 : t2 - t1) / cpu;
            tn[i] = (double)((i & 1) ? t2 - t1 : t1 - t0) / cpu;
            r[i] = tn[i] / tb[i];
        }
        qsort(tb, (size_t)iters, sizeof *tb, cmp_double);
        qsort(tn, (size_t)iters, sizeof *tn, cmp_double);
        qsort(r, (size_t)iters, sizeof *r, cmp_double);
        printf("  %-24s %9.2f (%6.2f) %9.2f (%6.2f) %8.3f   [%.3f %.3f]\n", cases[c].name,
               tb[iters / 2], tb[0], tn[iters / 2], tn[0], r[iters / 2], r[iters / 4],
               r[3 * iters / 4]);
    }
    pool_release(&p);
    free(tb), free(tn), free(r);
    return wrong;
}
#endif
