/*
 * qdq: TensorFlow's QuantizeAndDequantizeV2, exact to the bit.
 *
 * The op is split into steps a server can schedule on any thread pool:
 *
 *   qdq_plan_init      shape + attributes -> plan (validates every attribute)
 *   qdq_acc_init       an empty min/max accumulator (one per worker)
 *   qdq_reduce         fold elements [begin, end) into an accumulator; any split, any order
 *   qdq_acc_merge      merge two accumulators (exact: the result never depends on the split)
 *   qdq_params_from_acc / qdq_params_given
 *                      the per-channel scale, inverse scale and adjusted range
 *   qdq_apply          transform elements [begin, end); independent ranges, output may alias input
 *   qdq_apply_stats    the same, and the error statistics of those elements (qdq_stats) in the
 *                      same pass; qdq_stats_merge joins ranges', qdq_stats_summarize reports
 *
 * Per channel, the steps also take a range of channels (the _channels variants): a worker may
 * take a share of the channels through the whole op (qdq_run_channels), with nothing to merge,
 * or a share of the merge and the parameters. qdq_run (qdq_run_stats) does all of it on the
 * calling thread.
 *
 * The library has no threads, no I/O, no globals and allocates nothing: every buffer is the
 * caller's (sizes from qdq_acc_size and qdq_params_size). Tensors are row-major and
 * little-endian in memory (the host's order). The arithmetic contract (ranges, scales, rounding,
 * the float16 and bfloat16 definitions) is docs/semantics.md.
 */
#ifndef QDQ_H
#define QDQ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum qdq_dtype {
    QDQ_FLOAT32 = 0,
    QDQ_FLOAT64 = 1,
    QDQ_FLOAT16 = 2,
    QDQ_BFLOAT16 = 3,
} qdq_dtype;

typedef enum qdq_round_mode {
    QDQ_HALF_TO_EVEN = 0,
    QDQ_HALF_UP = 1,
} qdq_round_mode;

/* Status codes. QDQ_OK is 0; every failure also fills qdq_error.msg. */
enum {
    QDQ_OK = 0,
    QDQ_EINVAL = 1, /* an attribute, shape or range the op rejects */
};

/*
 * A failure: a status code (these, and proto's beyond them: proto/status.h maps each to HTTP and
 * gRPC) and a message naming the field, the value and the limit. Callers zero it before use.
 */
typedef struct qdq_error {
    int code;
    char msg[512];
} qdq_error;

/*
 * Records a failure in err (which may be NULL) unless one is recorded already: the first failure
 * found is the one reported, whoever finds a second. Returns the recorded code, so that
 * `return qdq_fail(err, QDQ_EINVAL, "...", ...)` passes it up. Every layer uses this one.
 */
int qdq_fail(qdq_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int qdq_vfail(qdq_error *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The op's attributes, with TensorFlow's names and defaults (QDQ_ATTRS_DEFAULT). */
typedef struct qdq_attrs {
    bool signed_input;
    int num_bits;
    bool range_given;
    int round_mode; /* qdq_round_mode */
    bool narrow_range;
    int64_t axis; /* -1: one range for the whole tensor */
} qdq_attrs;

#define QDQ_ATTRS_DEFAULT { true, 8, false, QDQ_HALF_TO_EVEN, false, -1 }

/* Kernel families. Every family gives identical results; the best one is picked at run time. */
typedef enum qdq_isa {
    QDQ_ISA_PORTABLE = 0,
    QDQ_ISA_AVX2 = 1, /* AVX2 + F16C */
} qdq_isa;

/* The best kernel family this CPU runs. */
qdq_isa qdq_isa_best(void);

/* Everything the steps need, derived from shape and attributes. Plain data: copy it freely. */
typedef struct qdq_plan {
    qdq_dtype dtype;
    qdq_attrs attrs;
    uint64_t count;    /* elements */
    uint64_t outer;    /* product of dims before axis (1 when axis = -1) */
    uint64_t channels; /* dims[axis] (1 when axis = -1) */
    uint64_t inner;    /* product of dims after axis (count when axis = -1) */
    int64_t qmin, qmax;
    qdq_isa isa;       /* set to qdq_isa_best(); a caller may choose another */
    /* The sizes at which the kernels change strategy (core/kernels.h): NULL, as qdq_plan_init
     * leaves it, for the defaults. Tests point it to their own to reach every strategy; every
     * choice gives the same bits. Borrowed: it must outlive the plan's use. */
    const struct qdq_tuning *tuning;
} qdq_plan;

/* Bytes per element of a dtype; 0 for an unknown value. */
size_t qdq_dtype_size(qdq_dtype dtype);
/* "float32", "float64", "float16", "bfloat16"; NULL for an unknown value. */
const char *qdq_dtype_name(qdq_dtype dtype);
/* True when the dtype's ranges and scales are computed (and reported) in float64. */
static inline bool qdq_dtype_is_double(qdq_dtype dtype) { return dtype == QDQ_FLOAT64; }

/*
 * Validates dtype, attributes and shape (rank dims, any rank from 0) and fills the plan.
 * dims may be NULL when rank is 0. Fails with QDQ_EINVAL and a message naming the attribute and
 * its value (TensorFlow's wording), or when the element count overflows 64 bits.
 */
int qdq_plan_init(qdq_plan *plan, qdq_dtype dtype, const int64_t *dims, int rank,
                  const qdq_attrs *attrs, qdq_error *err);

/* Bytes of an accumulator and of a parameter block for this plan (both grow with channels). */
size_t qdq_acc_size(const qdq_plan *plan);
size_t qdq_params_size(const qdq_plan *plan);

/* Sets acc to the empty reduction (min = +inf, max = -inf for every channel). */
void qdq_acc_init(const qdq_plan *plan, void *acc);
/* The same for channels [c0, c1) only: all that a worker running those channels needs. */
void qdq_acc_init_channels(const qdq_plan *plan, void *acc, uint64_t c0, uint64_t c1);

/*
 * Folds elements [begin, end) of the tensor at data (element 0, not element begin) into acc.
 * Ranges may be folded in any order, on any threads, each worker into its own accumulator;
 * the final result never depends on the split.
 */
void qdq_reduce(const qdq_plan *plan, void *acc, const void *data, uint64_t begin, uint64_t end);

/* dst := merge(dst, src). */
void qdq_acc_merge(const qdq_plan *plan, void *dst, const void *src);
/* The same for channels [c0, c1) only: workers may merge disjoint channel ranges at once. */
void qdq_acc_merge_channels(const qdq_plan *plan, void *dst, const void *src, uint64_t c0,
                            uint64_t c1);

/*
 * Computes the parameters from a complete reduction (range_given false). data is the whole
 * input: a channel holding NaN, or both -0.0 and +0.0, is reduced again in TensorFlow's own
 * order (Eigen's), since only that order gives TensorFlow's answer there. Other channels never
 * touch data.
 */
void qdq_params_from_acc(const qdq_plan *plan, const void *acc, const void *data, void *params);
/* The same for channels [c0, c1) only (their reduction complete in acc): workers may compute
 * disjoint channel ranges at once, each after merging that range of every worker's accumulator. */
void qdq_params_from_acc_channels(const qdq_plan *plan, const void *acc, const void *data,
                                  void *params, uint64_t c0, uint64_t c1);

/*
 * Computes the parameters from given bounds (range_given true). min and max are arrays of the
 * plan's dtype with n_min and n_max elements: one value when axis = -1, channels values
 * otherwise. Rejects wrong counts, NaN bounds and min > max (naming the channel).
 */
int qdq_params_given(const qdq_plan *plan, const void *min, size_t n_min, const void *max,
                     size_t n_max, void *params, qdq_error *err);

/*
 * Transforms elements [begin, end): in and out are the whole tensors (element 0). out may equal
 * in; otherwise they must not overlap. Ranges are independent: any split gives the same bits.
 */
void qdq_apply(const qdq_plan *plan, const void *params, const void *in, void *out,
               uint64_t begin, uint64_t end);

/*
 * qdq_reduce and qdq_apply restricted to the elements of [begin, end) whose channel is in
 * [c0, c1): a per-channel op splits into independent channel ranges, each reduced into its own
 * accumulator, given its parameters (qdq_params_from_acc_channels) and applied by one worker,
 * with nothing to merge. On the last axis a range of channels is a column of rows.
 */
void qdq_reduce_channels(const qdq_plan *plan, void *acc, const void *data, uint64_t begin,
                         uint64_t end, uint64_t c0, uint64_t c1);
void qdq_apply_channels(const qdq_plan *plan, const void *params, const void *in, void *out,
                        uint64_t begin, uint64_t end, uint64_t c0, uint64_t c1);

/*
 * The rest of the op for channels [c0, c1): with the range from the data, their reduction into
 * acc (initialised by qdq_acc_init or qdq_acc_init_channels for at least these channels; only
 * these channels are touched), their parameters and their transform, a block of channels at a
 * time, so that the transform reads elements the reduction has just brought into cache (a block
 * holds up to the tuning's fuse_bytes, 128 KiB by default, or one channel; on the last axis all
 * of [c0, c1) is one block). With range_given, the transform alone (params from
 * qdq_params_given). Workers may run disjoint channel ranges at once. The results are those of
 * the steps one by one.
 */
void qdq_run_channels(const qdq_plan *plan, const void *in, void *out, void *acc, void *params,
                      uint64_t c0, uint64_t c1);

/* What the op reports for one channel, as doubles (exact for every dtype; the values are those
 * of the compute type: float32 for float32, float16 and bfloat16, float64 for float64). */
typedef struct qdq_range {
    double input_min, input_max;   /* the range the op started from */
    double output_min, output_max; /* the adjusted range: what the output can reach */
    double scale, inverse_scale;
} qdq_range;

void qdq_params_get(const qdq_plan *plan, const void *params, uint64_t channel, qdq_range *out);

/*
 * The whole op on the calling thread. acc and params are caller buffers of qdq_acc_size and
 * qdq_params_size bytes (acc is unused, and may be NULL, when range_given). min/max as for
 * qdq_params_given (ignored unless range_given).
 */
int qdq_run(const qdq_plan *plan, const void *in, void *out, const void *min, size_t n_min,
            const void *max, size_t n_max, void *acc, void *params, qdq_error *err);

/*
 * Error statistics of the transform, gathered in the pass that writes the output (nothing is
 * read twice from memory, and nothing is computed unless asked). Over the elements whose input
 * is finite, from the input and output values widened to float64 exactly (float16 and bfloat16
 * too), in float64 arithmetic: the greatest |out - in|, the sums of (out - in)^2 and of in^2,
 * and the count; the elements with a non-finite input are counted apart and left out. Sums are
 * in any order (splits and kernel families may differ in the last bits). The greatest |out - in|
 * skips NaN differences (an output NaN from a finite input, when the range or the scale is not
 * finite); sum_sq_error is NaN then, and qdq_stats_summarize reports NaN for both.
 */
typedef struct qdq_stats {
    double max_abs_error, sum_sq_error, sum_sq_input;
    uint64_t finite, nonfinite;
} qdq_stats;

/* Sets s to the statistics of no elements. */
void qdq_stats_init(qdq_stats *s);
/* dst := the statistics of dst's elements and src's: any split, merged in any order. */
void qdq_stats_merge(qdq_stats *dst, const qdq_stats *src);

/* qdq_apply, and the statistics of elements [begin, end) folded into st (initialised by
 * qdq_stats_init) in the same pass; the output bits are qdq_apply's. in may equal out. st NULL:
 * qdq_apply. */
void qdq_apply_stats(const qdq_plan *plan, const void *params, const void *in, void *out,
                     uint64_t begin, uint64_t end, qdq_stats *st);

/* qdq_run, and the statistics of the whole tensor folded into st (initialised by
 * qdq_stats_init) in the transform's pass. st NULL: qdq_run. */
int qdq_run_stats(const qdq_plan *plan, const void *in, void *out, const void *min, size_t n_min,
                  const void *max, size_t n_max, void *acc, void *params, qdq_stats *st,
                  qdq_error *err);

/*
 * What a tensor's statistics report (defined in docs/api.md, "Error statistics"):
 * max_abs_error and rmse = sqrt(sum_sq_error / finite), both 0 over no elements and NaN when a
 * difference was NaN; sqnr_db = 10 log10(sum_sq_input / sum_sq_error), except that sqnr_null is
 * true (and sqnr_db 0) when either sum is 0; nonfinite as counted.
 */
typedef struct qdq_stats_summary {
    double max_abs_error, rmse, sqnr_db;
    bool sqnr_null;
    uint64_t nonfinite;
} qdq_stats_summary;

void qdq_stats_summarize(const qdq_stats *s, qdq_stats_summary *out);

#endif
