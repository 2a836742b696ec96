/* The v2 model's op on a decoded request (v2_model.h): one implementation for every transport. */
#include <stdlib.h>
#include <string.h>

#include "v2_model.h"

void proto_v2_result_clear(proto_v2_result *res)
{
    free(res->acc);
    free(res->params);
    memset(res, 0, sizeof *res);
}

int proto_v2_run(proto_v2_request *r, const proto_limits *lim, proto_v2_result *res,
                 qdq_error *err)
{
    proto_request *q = &r->req;
    memset(res, 0, sizeof *res);
    int rc = qdq_plan_init(&res->plan, q->dtype, q->dims, q->rank, &q->attrs, err);
    if (rc)
        goto fail;
    uint64_t max = lim ? lim->max_elements : 0;
    if (max && res->plan.channels > max) {
        rc = qdq_fail(err, PROTO_ETOOBIG, "axis %lld has %llu channels, over the limit of %llu "
                      "(--max-elements)", (long long)res->plan.attrs.axis,
                      (unsigned long long)res->plan.channels, (unsigned long long)max);
        goto fail;
    }
    res->acc = malloc(qdq_acc_size(&res->plan) + 1);
    res->params = malloc(qdq_params_size(&res->plan) + 1);
    if (!res->acc || !res->params) {
        rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for %llu channels",
                      (unsigned long long)res->plan.channels);
        goto fail;
    }
    qdq_acc_init(&res->plan, res->acc);
    rc = qdq_run(&res->plan, q->data, q->data, q->min, q->n_min, q->max, q->n_max, res->acc,
                 res->params, err);
    if (rc == 0)
        return 0;
fail:
    proto_v2_result_clear(res);
    return rc;
}
