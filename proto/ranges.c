/* Header values of the raw and npy responses: the reported ranges and the shape, as text. */
#include <inttypes.h>
#include <stdio.h>

#include "proto.h"

/*
 * Values are printed in the compute type (float64 for float64 tensors, float32 otherwise):
 * that is what the op reports, and the shortest float32 text is what a float32 reader wants.
 */
int proto_ranges_format(const qdq_plan *plan, const void *params, int which, proto_buf *buf)
{
    if (which < 0 || which > 5)
        return QDQ_EINVAL;
    bool dbl = qdq_dtype_is_double(plan->dtype);
    for (uint64_t c = 0; c < plan->channels; c++) {
        qdq_range r;
        qdq_params_get(plan, params, c, &r);
        const double v[6] = { r.input_min, r.input_max, r.output_min, r.output_max, r.scale,
                              r.inverse_scale };
        if (proto_buf_reserve(buf, PROTO_NUM_MAX + 1))
            return PROTO_ENOMEM;
        if (c)
            buf->data[buf->len++] = ',';
        buf->len += dbl ? proto_num_format_f64(v[which], buf->data + buf->len)
                        : proto_num_format_f32((float)v[which], buf->data + buf->len);
    }
    return 0;
}

int proto_shape_format(const proto_request *req, proto_buf *buf)
{
    for (int i = 0; i < req->rank; i++) {
        char t[24];
        int n = snprintf(t, sizeof t, "%s%" PRId64, i ? "," : "", req->dims[i]);
        if (proto_buf_append(buf, t, (size_t)n))
            return PROTO_ENOMEM;
    }
    return 0;
}
