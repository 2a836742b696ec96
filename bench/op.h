/*
 * The op as the benchmarks run it on their pool (bench_core, and ab_core for both revisions it
 * compares): in place, on warm buffers. Per tensor, each thread reduces its own 64-byte-aligned
 * range into its own accumulator, the caller merges and computes the parameters, then each thread
 * applies its range. Per channel on the first axis, each thread takes its share of the channels
 * through the whole op, with nothing to merge.
 * Needs pool.h and qdq.h first. OP_NO_RUN_CHANNELS: the library predates qdq_run_channels (an
 * older revision under ab_core), so a share of the channels takes the three steps;
 * OP_NO_ACC_INIT_CHANNELS: it predates qdq_acc_init_channels, so each initialises all channels.
 */
#ifndef BENCH_OP_H
#define BENCH_OP_H

typedef struct op_job {
    pool *pool;
    int nt;
    int mode; /* bench_core's: range from the data, given, or known */
    qdq_plan plan;
    void *data; /* computed in place */
    char *accs; /* nt accumulators, acc_stride bytes apart */
    size_t acc_stride;
    void *params;
    float given[2]; /* bench_core's range_given bounds, float32 only */
    uint64_t bounds[MAX_THREADS + 1];
} op_job;

/* Thread t's range: [0, count) cut into nt pieces whose bounds are 64-byte aligned. */
static inline void split(uint64_t *bounds, uint64_t count, size_t es, int nt)
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
static inline void params_from_data(op_job *j)
{
    pool_run(j->pool, reduce_task, j, j->nt);
    for (int t = 1; t < j->nt; t++)
        qdq_acc_merge(&j->plan, j->accs, j->accs + (size_t)t * j->acc_stride);
    qdq_params_from_acc(&j->plan, j->accs, j->data, j->params);
}

/* Per channel on the first axis, thread t takes its share of the channels, one block of the
 * tensor, through the whole op (qdq_run_channels: reduction, parameters and transform, a block
 * of channels at a time), with nothing to merge. (On the last axis a share of the channels is a
 * column of rows: the threads' hardware prefetchers then run into each other's lines, measured
 * 1.6x slower than splitting the rows.) */
static void channels_task(void *arg, int t)
{
    op_job *j = arg;
    uint64_t C = j->plan.channels, c0 = C * (uint64_t)t / (uint64_t)j->nt;
    uint64_t c1 = C * (uint64_t)(t + 1) / (uint64_t)j->nt;
    void *acc = j->accs + (size_t)t * j->acc_stride;
#ifdef OP_NO_ACC_INIT_CHANNELS
    qdq_acc_init(&j->plan, acc);
#else
    qdq_acc_init_channels(&j->plan, acc, c0, c1);
#endif
#ifdef OP_NO_RUN_CHANNELS
    uint64_t n = j->plan.count;
    qdq_reduce_channels(&j->plan, acc, j->data, 0, n, c0, c1);
    qdq_params_from_acc_channels(&j->plan, acc, j->data, j->params, c0, c1);
    qdq_apply_channels(&j->plan, j->params, j->data, j->data, 0, n, c0, c1);
#else
    qdq_run_channels(&j->plan, j->data, j->data, acc, j->params, c0, c1);
#endif
}

#endif
