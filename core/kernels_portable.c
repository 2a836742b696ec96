/* The portable kernel family: plain C, any CPU. See portable_template.h. */
#include <math.h>
#include <stdint.h>

#include "kernels.h"
#include "qdq_half.h"

#define LOAD_PLAIN(p) (*(p))
#define STORE_PLAIN(p, v) (*(p) = (v))
#define LOAD_F16(p) qdq_f16_to_f32(*(p))
#define STORE_F16(p, v) (*(p) = qdq_f32_to_f16(v))
#define LOAD_BF16(p) qdq_bf16_to_f32(*(p))
#define STORE_BF16(p, v) (*(p) = qdq_f32_to_bf16(v))

#define SUF f32
#define S float
#define T float
#define F int32_t
#define LOAD LOAD_PLAIN
#define STORE STORE_PLAIN
#define RINT rintf
#define FLOOR floorf
#include "portable_template.h"
#undef SUF
#undef S
#undef LOAD
#undef STORE

#define SUF f16
#define S uint16_t
#define LOAD LOAD_F16
#define STORE STORE_F16
#include "portable_template.h"
#undef SUF
#undef LOAD
#undef STORE

#define SUF bf16
#define LOAD LOAD_BF16
#define STORE STORE_BF16
#include "portable_template.h"
#undef SUF
#undef S
#undef T
#undef F
#undef LOAD
#undef STORE
#undef RINT
#undef FLOOR

#define SUF f64
#define S double
#define T double
#define F int64_t
#define LOAD LOAD_PLAIN
#define STORE STORE_PLAIN
#define RINT rint
#define FLOOR floor
#include "portable_template.h"

#define FAMILY(suf) { reduce_run_##suf, reduce_lanes_##suf, reduce_rows_##suf, apply_run_##suf, \
                      apply_lanes_##suf }

const qdq_kernels qdq_kernels_portable[4] = {
    FAMILY(f32), FAMILY(f64), FAMILY(f16), FAMILY(bf16),
};
