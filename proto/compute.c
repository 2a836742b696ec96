/* The op on a decoded request (codec.h: proto_plan, proto_run), for every codec. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int proto_plan(const proto_request *q, const proto_limits *lim, proto_result *res,
               qdq_error *err)
{
    memset(res, 0, sizeof *res);
    int rc = qdq_plan_init(&res->plan, q->dtype, q->dims, q->rank, &q->attrs, err);
    if (rc)
        return rc;
    /* An empty tensor may still name a huge channel dimension: bound it like the elements. */
    uint64_t most = lim && lim->max_elements ? lim->max_elements : UINT64_MAX;
    if (res->plan.channels > most)
        return qdq_fail(err, PROTO_ETOOBIG, "axis %lld has %llu channels, over the limit of %llu "
                        "(--max-elements)", (long long)res->plan.attrs.axis,
                        (unsigned long long)res->plan.channels, (unsigned long long)most);
    res->acc = malloc(qdq_acc_size(&res->plan) + 1);
    res->params = malloc(qdq_params_size(&res->plan) + 1);
    if (!res->acc || !res->params) {
        proto_result_clear(res);
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for %llu channels",
                        (unsigned long long)res->plan.channels);
    }
    qdq_acc_init(&res->plan, res->acc);
    return 0;
}

int proto_run(proto_request *q, const proto_limits *lim, proto_result *res, qdq_error *err)
{
    int rc = proto_plan(q, lim, res, err);
    if (rc)
        return rc;
    qdq_stats_init(&res->stats);
    qdq_stats *st = q->want_stats ? &res->stats : NULL;
    rc = qdq_run_stats(&res->plan, q->data, q->data, q->min, q->n_min, q->max, q->n_max,
                       res->acc, res->params, st, err);
    q->stats = rc == 0 ? st : NULL;
    if (rc)
        proto_result_clear(res); /* a failed run leaves nothing to free */
    return rc;
}

void proto_result_clear(proto_result *res)
{
    free(res->acc);
    free(res->params);
    res->acc = res->params = NULL;
}
