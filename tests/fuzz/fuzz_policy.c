/*
 * libFuzzer target: the checkpoint policy (proto/policy.h).
 *
 * Input: up to three parts separated by NUL bytes: a query string ("k=v&k=v", each argument
 * handed to proto_policy_arg as the server hands query arguments over), the rules' JSON
 * (proto_policy_rules, when the part is there), and bytes that make one more tensor (its name,
 * then dtype and dimensions from the last bytes). Every tensor of a small checkpoint, and that
 * one, is resolved.
 *
 * Invariants (abort on a breach): every failure has a known status and a message; an argument
 * that is not the policy's records nothing; the policy's JSON and every attribute JSON is valid
 * JSON; a tensor the policy quantizes has attributes the op plans without complaint, bounds of
 * the right count that qdq_params_given accepts, and runs through the op; a passthrough is never
 * a float, a skip always says why; a failure names the tensor and the rule or the defaults; the
 * same tensor resolves the same way twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz_require.h"
#include "json_pull.h"
#include "policy.h"

/* JSON, where NaN, Infinity and -Infinity may stand for numbers (as in every JSON answer of
 * the project): they are swapped for numbers of the same length before the syntax check. */
static void check_json(const proto_buf *b, const char *what)
{
    qdq_error e = { 0 };
    proto_jr r;
    char *t = malloc(b->len + 1);
    memcpy(t, b->data, b->len);
    for (size_t i = 0; i < b->len; i++) {
        if (i + 3 <= b->len && !memcmp(t + i, "NaN", 3))
            memcpy(t + i, "0.0", 3);
        if (i + 8 <= b->len && !memcmp(t + i, "Infinity", 8))
            memcpy(t + i, "1.0e+000", 8);
    }
    proto_jr_init(&r, t, b->len, NULL, &e);
    REQUIRE(proto_jr_skip(&r, what, 1) == 0 && r.p == r.end, "%s is not JSON: %s\n%.*s", what,
            e.msg, (int)b->len, b->data);
    free(t);
}

static void check_status(int rc, const qdq_error *e)
{
    REQUIRE((rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_ENOMEM) && e->code == rc &&
            e->msg[0], "status %d: %s", rc, e->msg);
}

static void one(const proto_policy *p, const proto_st_tensor *t)
{
    proto_action a, a2;
    qdq_error e = { 0 }, e2 = { 0 };
    int rc = proto_policy_resolve(p, t, &LIMITS, &a, &e);
    int rc2 = proto_policy_resolve(p, t, &LIMITS, &a2, &e2);
    REQUIRE(rc == rc2 && a.act == a2.act && a.rule == a2.rule && !strcmp(e.msg, e2.msg),
            "not deterministic");
    proto_action_clear(&a2);
    if (rc) {
        check_status(rc, &e);
        REQUIRE(!strncmp(e.msg, "tensor '", 8) &&
                (strstr(e.msg, "(the defaults): ") || strstr(e.msg, "(rules[")),
                "a failure names the tensor and its source: %s", e.msg);
        REQUIRE(a.act == PROTO_ACT_PASS && !a.req.min && !a.req.max, "out not cleared");
        return;
    }
    qdq_dtype dt;
    bool is_float = proto_st_dtype_qdq(t->dtype, &dt);
    proto_buf b = { 0 };
    REQUIRE(proto_policy_attrs_json(&a, &b) == 0, "attrs json");
    check_json(&b, "attrs");
    proto_buf_free(&b);
    switch (a.act) {
    case PROTO_ACT_PASS:
        REQUIRE(!is_float && a.reason[0] && a.rule == -1, "pass of a float, or without reason");
        break;
    case PROTO_ACT_SKIP:
        REQUIRE(is_float && a.reason[0], "skip without a reason");
        break;
    case PROTO_ACT_QUANTIZE: {
        const proto_request *q = &a.req;
        REQUIRE(is_float && q->dtype == dt && q->rank == t->rank && q->count == t->count &&
                !a.reason[0], "request");
        proto_result res;
        qdq_error pe = { 0 };
        REQUIRE(proto_plan(q, &LIMITS, &res, &pe) == 0, "planned after resolve: %s", pe.msg);
        uint64_t C = q->attrs.axis < 0 ? 1 : res.plan.channels;
        if (q->attrs.range_given) {
            REQUIRE(q->min && q->max && q->n_min == C && q->n_max == C, "bounds counts");
            REQUIRE(qdq_params_given(&res.plan, q->min, q->n_min, q->max, q->n_max, res.params,
                                     &pe) == 0, "bounds refused after resolve: %s", pe.msg);
        } else {
            REQUIRE(!q->min && !q->max, "bounds without range_given");
        }
        if (q->count <= 4096) {
            size_t es = qdq_dtype_size(q->dtype);
            unsigned char *d = malloc((size_t)q->count * es + 1);
            for (size_t i = 0; i < (size_t)q->count * es; i++)
                d[i] = (unsigned char)(i * 37 + 11);
            REQUIRE(qdq_run(&res.plan, d, d, q->min, q->n_min, q->max, q->n_max, res.acc,
                            res.params, &pe) == 0, "the op refused: %s", pe.msg);
            free(d);
        }
        proto_result_clear(&res);
        break;
    }
    }
    proto_action_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    const uint8_t *z1 = memchr(data, 0, size);
    const uint8_t *rules = z1 ? z1 + 1 : NULL;
    const uint8_t *z2 = rules ? memchr(rules, 0, (size_t)(end - rules)) : NULL;
    const uint8_t *extra = z2 ? z2 + 1 : NULL;
    size_t qlen = z1 ? (size_t)(z1 - data) : size;
    size_t rlen = rules ? (size_t)((z2 ? z2 : end) - rules) : 0;

    proto_policy *p = proto_policy_new();
    REQUIRE(p, "new");
    char *query = malloc(qlen + 1);
    memcpy(query, data, qlen);
    query[qlen] = 0;
    char *save = NULL;
    int failed = 0;
    for (char *arg = strtok_r(query, "&", &save); arg; arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        const char *value = "";
        if (eq)
            *eq = 0, value = eq + 1;
        qdq_error e = { 0 };
        int rc = proto_policy_arg(p, arg, value, &e);
        if (rc == PROTO_POLICY_NOT_MINE)
            REQUIRE(e.code == 0 && !e.msg[0], "not mine, yet recorded");
        else if (rc)
            check_status(rc, &e), failed = 1;
    }
    free(query);
    if (rules) {
        qdq_error e = { 0 };
        int rc = proto_policy_rules(p, (const char *)rules, rlen, &e);
        if (rc)
            check_status(rc, &e), failed = 1;
    }
    proto_buf b = { 0 };
    REQUIRE(proto_policy_json(p, &b) == 0, "policy json");
    check_json(&b, "the policy");
    proto_buf_free(&b);
    if (failed) { /* a server answers the failure and goes no further; resolving must still work */
        static const int64_t d1[1] = { 3 };
        proto_st_tensor t = { "w", 1, PROTO_ST_F32, 1, d1, 3, 0, 12 };
        one(p, &t);
        proto_policy_free(p);
        return 0;
    }

    static const int64_t d43[2] = { 4, 3 }, d4[1] = { 4 }, d3[1] = { 3 }, d02[2] = { 0, 2 },
                         d2[1] = { 2 };
    const proto_st_tensor fixed[] = {
        { "model.layers.0.self_attn.q_proj.weight", 38, PROTO_ST_F32, 2, d43, 12, 0, 0 },
        { "model.norm.weight", 17, PROTO_ST_BF16, 1, d4, 4, 0, 0 },
        { "lm_head.bias", 12, PROTO_ST_F16, 1, d3, 3, 0, 0 },
        { "x", 1, PROTO_ST_F64, 0, NULL, 1, 0, 0 },
        { "e", 1, PROTO_ST_F32, 2, d02, 0, 0, 0 },
        { "ids", 3, PROTO_ST_I64, 1, d2, 2, 0, 0 },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        one(p, &fixed[i]);
    if (extra && end - extra >= 3) {
        /* name, then dtype and up to two dimensions from the last three bytes */
        size_t n = (size_t)(end - extra) - 3;
        char *name = malloc(n + 1);
        memcpy(name, extra, n);
        name[n] = 0;
        const uint8_t *c = end - 3;
        int64_t dims[2] = { c[1] % 9, c[2] % 9 };
        int rank = c[0] >> 6 & 3;
        if (rank > 2)
            rank = 2;
        proto_st_tensor t = { name, n, (proto_st_dtype)(c[0] % PROTO_ST_NDTYPES), rank,
                              rank ? dims : NULL, 1, 0, 0 };
        for (int i = 0; i < rank; i++)
            t.count *= (uint64_t)dims[i];
        one(p, &t);
        free(name);
    }
    proto_policy_free(p);
    return 0;
}
