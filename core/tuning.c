/*
 * The kernels' strategy thresholds (kernels.h, qdq_tuning), and what each was measured to win.
 * Times are one thread on AMD Zen 3 (the machine of the project's figures) unless said; "x" is
 * the time of the new way over the old. The rows kernels are kernels_avx2.c's (the portable
 * family has one way); tests reach every way through their own qdq_tuning
 * (tests/unit/test_strategies.c).
 */
#include "kernels.h"

const qdq_tuning qdq_tuning_default = {
    /* Data larger than this is taken to come from memory. */
    .far_bytes = 4u << 20,
    /* apply_rows in cache on rows this long or longer takes four rows at once, along the rows
     * (QUAD; with a clamp, twice this): 0.89-0.97x the time of column blocks on rows of 256 to
     * 1000 float32 without a clamp (longer rows 0.60-0.81x); with one, rows of 256 were up to
     * 2.5% slower, 512 0.89x. float16 0.76-1.01x from 512 channels. bfloat16, without a clamp,
     * only from 8 KiB rows (0.94x; from 1 KiB it was 1.006-1.032x: its narrowing is the cost,
     * not the loads); with one from 2 KiB as the others (0.86-0.95x). */
    .quad_bytes = 1024,
    .quad_clamp_bytes = 2048,
    .quad_bf16_bytes = 8192,
    /* float32 and float64 rows of quad_bytes up to this, in cache, without a clamp: OCT. One
     * thread, 128 KiB of rows of 256 float32 took 0.88-0.90x the time of QUAD (QUAD 1.11-1.26x
     * the per-tensor apply_run, OCT 1.00-1.08x), of 300-500 float32 and 128-250 float64
     * 0.88-0.98x. Longer rows put eight rows' columns into too few of L1's sets: 2036-2048
     * bytes took 1.07-1.10x, 4 KiB 1.5-1.9x. float16 from 1 KiB rows took 1.05x: never. */
    .oct_bytes = 1984,
    /* From memory, apply_rows goes row by row (the order the data streams in), except on rows
     * this long or longer that QUAD takes: 8 MiB of rows of 1024 float32 took 0.85x the time,
     * 4096 0.62x (0.56x with a clamp); 64 MiB 0.92x and 0.71x (0.67x), 2048 float16 0.95-0.97x.
     * Rows of 1-2 KiB stay row by row: four at once, they took 1.25-1.40x the time from DRAM. */
    .far_quad_bytes = 4096,
    /*
     * Rows BLOCK takes down a column before the next vectors of channels. A column's lines
     * share few cache sets (the row length is often a multiple of 1 KiB: a column maps to 4 of
     * L1's 64 sets), so the blocks stay short enough for the lines the next vectors need, and
     * their prefetched neighbours, to stay within L1's eight ways: 8 rows, or 8 KiB of rows when
     * the rows are shorter (a column then spreads over more sets), up to 64. On rows of 16, 40
     * and 64 float32 that takes 0.73-0.93x the time of 8 rows; longer blocks of 1 KiB rows lost
     * up to 17%, of 4 KiB rows 2-4x.
     */
    .block_rows = 8,
    .block_rows_max = 64,
    .span_bytes = 8192,
    /* reduce_rows goes along the rows (ALONG) from memory, and in cache on rows this long or
     * longer: there 128 KiB-1 MiB of rows of 1024 float32 took 0.69-0.97x the time of BLOCKED,
     * of 2048 float16 0.70-0.89x; rows of 2 KiB 1.00-1.09x, so they stay. From memory it
     * replaced BLOCKED's 8-row blocks fetched ahead: 8 MiB of rows of 16 to 4096 float32
     * 0.54-0.70x the time, float16 and bfloat16 0.54-0.68x; 64 MiB of rows of 1024 and 4096
     * float32 0.60-0.74x, of 1024 float16 and bfloat16 0.43x, of 16 to 256 channels
     * 0.90-1.06x. */
    .along_bytes = 4096,
    /* BLOCKED reads whole lines (four vectors of channels), so nothing needs to stay in L1, and
     * its long blocks save the reductions less often: 0.89-0.97x the time of blocks of 16 on
     * 10 KiB to 1 MiB of rows of 16 to 1024 float32 (8 rows of 4096: the same). */
    .near_rows = 64,
    .panel = QDQ_PANEL_MAX,             /* 6 KiB of reductions or less */
    .panel_along = QDQ_PANEL_ALONG_MAX, /* 24 KiB or less */
    /* qdq_run_channels' blocks: the transform then reads what the reduction has just brought
     * into L2. */
    .fuse_bytes = 128u << 10,
    .noties_max = 4096,
    .noties_per = 64,
    .apply_rows = QDQ_APPLY_AUTO,
    .reduce_rows = QDQ_REDUCE_AUTO,
};
