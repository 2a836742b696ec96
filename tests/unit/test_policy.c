/*
 * The checkpoint policy (proto/policy.h): defaults from query arguments, include/exclude globs,
 * rules (first match wins, skip, override), bounds converted to each tensor's dtype, every
 * error naming the tensor and the rule's index, and the JSON of attributes and of the policy.
 * Rules are written here with ' for " (J() swaps them).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_pull.h"
#include "policy.h"
#include "qdq_half.h"

static const proto_limits lim = { 1000000, 8, 64, 1 << 26 };

static char *J(const char *s)
{
    char *t = strdup(s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

/* A tensor of a header, as the parser gives one. */
typedef struct tensor {
    proto_st_tensor t;
    int64_t dims[8];
} tensor;

static const proto_st_tensor *T(tensor *x, const char *name, proto_st_dtype dt, int rank, ...)
{
    va_list ap;
    va_start(ap, rank);
    x->t.count = 1;
    for (int i = 0; i < rank; i++) {
        x->dims[i] = va_arg(ap, int64_t);
        x->t.count *= (uint64_t)x->dims[i];
    }
    va_end(ap);
    x->t.name = name;
    x->t.name_len = strlen(name);
    x->t.dtype = dt;
    x->t.rank = rank;
    x->t.dims = rank ? x->dims : NULL;
    return &x->t;
}

/*
 * A policy from "k=v&k=v" (a key without '=' gets "") and rules (J'd; NULL for none). Returns
 * the first failure's status, with err holding it; *out the policy (also on failure).
 */
static int make(proto_policy **out, const char *qs, const char *rules, qdq_error *err)
{
    proto_policy *p = proto_policy_new();
    char *s = strdup(qs), *save = NULL;
    int rc = 0;
    memset(err, 0, sizeof *err);
    for (char *kv = strtok_r(s, "&", &save); kv && !rc; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = 0;
        rc = proto_policy_arg(p, kv, eq ? eq + 1 : "", err);
    }
    free(s);
    if (!rc && rules) {
        char *r = J(rules);
        rc = proto_policy_rules(p, r, strlen(r), err);
        free(r);
    }
    *out = p;
    return rc;
}

static proto_policy *ok(const char *qs, const char *rules)
{
    proto_policy *p;
    qdq_error e;
    int rc = make(&p, qs, rules, &e);
    CHECK(rc == 0, "policy %s / %s: %s", qs, rules ? rules : "-", e.msg);
    return p;
}

static int resolve(const proto_policy *p, const proto_st_tensor *t, proto_action *a,
                   qdq_error *e)
{
    memset(e, 0, sizeof *e);
    return proto_policy_resolve(p, t, &lim, a, e);
}

static bool attrs_are(const qdq_attrs *a, int bits, bool si, bool rg, int rm, bool nr,
                      int64_t axis)
{
    return a->num_bits == bits && a->signed_input == si && a->range_given == rg &&
           a->round_mode == rm && a->narrow_range == nr && a->axis == axis;
}

/* The attributes' JSON of an action. */
static bool attrs_json_is(const proto_action *a, const char *want)
{
    proto_buf b = { 0 };
    char *w = J(want);
    bool same = proto_policy_attrs_json(a, &b) == 0 && b.len == strlen(w) &&
                !memcmp(b.data, w, b.len);
    if (!same)
        fprintf(stderr, "attrs json: %.*s\n    wanted: %s\n", (int)b.len, b.data, w);
    free(w);
    proto_buf_free(&b);
    return same;
}

static void defaults(void)
{
    proto_policy *p = ok("", NULL);
    tensor x;
    proto_action a;
    qdq_error e;
    static const struct {
        proto_st_dtype st;
        qdq_dtype q;
    } floats[] = { { PROTO_ST_F32, QDQ_FLOAT32 }, { PROTO_ST_F64, QDQ_FLOAT64 },
                   { PROTO_ST_F16, QDQ_FLOAT16 }, { PROTO_ST_BF16, QDQ_BFLOAT16 } };
    for (size_t i = 0; i < 4; i++) {
        CHECK(resolve(p, T(&x, "w", floats[i].st, 2, (int64_t)4, (int64_t)3), &a, &e) == 0,
              "%s", e.msg);
        CHECK(a.act == PROTO_ACT_QUANTIZE && a.rule == -1 && a.reason[0] == 0 &&
              a.req.dtype == floats[i].q && a.req.rank == 2 && a.req.dims[0] == 4 &&
              a.req.dims[1] == 3 && a.req.count == 12 && !a.req.min && !a.req.max &&
              !a.req.data && attrs_are(&a.req.attrs, 8, true, false, QDQ_HALF_TO_EVEN, false, -1),
              "TensorFlow's defaults for %s", proto_st_dtype_name(floats[i].st));
        CHECK(attrs_json_is(&a, "{'num_bits':8,'signed_input':true,'range_given':false,"
                                "'round_mode':'HALF_TO_EVEN','narrow_range':false,'axis':-1}"),
              "attrs json");
        CHECK(!strcmp(proto_act_name(a.act), "quantized"), "act name");
        proto_action_clear(&a);
    }
    static const proto_st_dtype others[] = { PROTO_ST_I64, PROTO_ST_U8, PROTO_ST_BOOL,
                                             PROTO_ST_F8_E4M3, PROTO_ST_C64, PROTO_ST_F4 };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char want[64];
        CHECK(resolve(p, T(&x, "w", others[i], 1, (int64_t)4), &a, &e) == 0, "%s", e.msg);
        snprintf(want, sizeof want, "dtype %s is not quantized", proto_st_dtype_name(others[i]));
        CHECK(a.act == PROTO_ACT_PASS && a.rule == -1 && strstr(a.reason, want) &&
              !strcmp(proto_act_name(a.act), "passthrough"), "%s passes: %s",
              proto_st_dtype_name(others[i]), a.reason);
        CHECK(attrs_json_is(&a, "null"), "no attrs for a passthrough");
        proto_action_clear(&a);
    }
    /* Empty and scalar tensors are quantized like any other. */
    CHECK(resolve(p, T(&x, "e", PROTO_ST_F32, 2, (int64_t)0, (int64_t)5), &a, &e) == 0 &&
          a.act == PROTO_ACT_QUANTIZE && a.req.count == 0, "empty: %s", e.msg);
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "s", PROTO_ST_BF16, 0), &a, &e) == 0 && a.act == PROTO_ACT_QUANTIZE &&
          a.req.rank == 0 && a.req.count == 1, "scalar: %s", e.msg);
    proto_action_clear(&a);
    proto_policy_free(p);

    /* Every attribute from the query, as the raw route reads them. */
    p = ok("num_bits=4&signed_input=false&narrow_range=true&round_mode=HALF_UP&axis=0", NULL);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_F32, 2, (int64_t)4, (int64_t)3), &a, &e) == 0 &&
          attrs_are(&a.req.attrs, 4, false, false, QDQ_HALF_UP, true, 0), "query: %s", e.msg);
    CHECK(attrs_json_is(&a, "{'num_bits':4,'signed_input':false,'range_given':false,"
                            "'round_mode':'HALF_UP','narrow_range':true,'axis':0}"), "json");
    proto_action_clear(&a);
    proto_policy_free(p);
}

static void arguments(void)
{
    proto_policy *p = proto_policy_new();
    qdq_error e = { 0 };
    /* Keys that are not the policy's are left to the caller, nothing recorded. */
    static const char *const theirs[] = { "dtype", "shape", "ranges", "stats", "", "Include" };
    for (size_t i = 0; i < sizeof theirs / sizeof theirs[0]; i++)
        CHECK(proto_policy_arg(p, theirs[i], "x", &e) == PROTO_POLICY_NOT_MINE && e.code == 0 &&
              e.msg[0] == 0, "%s is not mine", theirs[i]);
    proto_policy_free(p);

    static const struct {
        const char *qs;
        const char *words[3];
    } bad[] = {
        { "num_bits=x", { "num_bits", "\"x\" is not an integer" } },
        { "num_bits=4&num_bits=4", { "\"num_bits\" is given twice" } },
        { "axis=1.5", { "axis", "not an integer" } },
        { "signed_input=yes", { "signed_input", "not a boolean" } },
        { "round_mode=UP", { "round_mode", "\"UP\"" } },
        { "input_min=1,,2", { "input_min", "item 1 is empty" } },
        { "input_max=abc", { "input_max", "\"abc\" is not a number" } },
        { "include=", { "include is empty" } },
        { "include=a,,b", { "include", "pattern 1 is empty" } },
        { "include=*.weight,", { "include", "pattern 1 is empty" } },
        { "exclude=,a", { "exclude", "pattern 0 is empty" } },
        { "exclude=a\\", { "exclude", "pattern 0", "lone" } },
        { "exclude=a,b\xff", { "exclude", "pattern 1", "not valid UTF-8" } },
        { "include=\xc3(", { "include", "pattern 0", "not valid UTF-8 (byte 0)" } },
        { "include=*&include=*", { "\"include\" is given twice" } },
        { "exclude=&exclude=a", { "\"exclude\" is given twice" } },
        { "rules=[]&rules=[]", { "rules are given twice" } },
        { "rules={}", { "rules", "expected a JSON array", "an object" } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = make(&p, bad[i].qs, NULL, &e);
        CHECK(rc == QDQ_EINVAL && e.code == QDQ_EINVAL, "%s: %d %s", bad[i].qs, rc, e.msg);
        for (int k = 0; k < 3 && bad[i].words[k]; k++)
            CHECK(strstr(e.msg, bad[i].words[k]) != NULL, "%s: lacks \"%s\": %s", bad[i].qs,
                  bad[i].words[k], e.msg);
        proto_policy_free(p);
    }
    /* An empty exclude is no pattern; an escaped backslash is fine. */
    proto_policy_free(ok("exclude=&include=a\\\\", NULL));
}

static void globs(void)
{
    proto_policy *p = ok("include=*.weight,emb*&exclude=*norm*,*.bias,*layers.1?.*", NULL);
    tensor x;
    proto_action a;
    qdq_error e;
    static const struct {
        const char *name;
        proto_act act;
        const char *reason;
    } cases[] = {
        { "model.layers.0.mlp.down_proj.weight", PROTO_ACT_QUANTIZE, "" }, /* '*' crosses dots */
        { "a/b/c.weight", PROTO_ACT_QUANTIZE, "" },                        /* and slashes */
        { ".weight", PROTO_ACT_QUANTIZE, "" },                             /* leading dot */
        { "embed_tokens", PROTO_ACT_QUANTIZE, "" },
        { "model.embed_tokens", PROTO_ACT_SKIP, "not included (include: *.weight,emb*)" },
        { "lm_head.weight.scale", PROTO_ACT_SKIP, "not included" },
        { "model.norm.weight", PROTO_ACT_SKIP, "excluded by '*norm*'" },
        { "model.layers.3.input_layernorm.weight", PROTO_ACT_SKIP, "excluded by '*norm*'" },
        { "emb.bias", PROTO_ACT_SKIP, "excluded by '*.bias'" },
        { "model.layers.12.self_attn.q_proj.weight", PROTO_ACT_SKIP, "excluded by '*layers.1?.*'" },
        { "model.layers.1.self_attn.q_proj.weight", PROTO_ACT_QUANTIZE, "" },
        { "model.layers.123.x.weight", PROTO_ACT_QUANTIZE, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(resolve(p, T(&x, cases[i].name, PROTO_ST_BF16, 1, (int64_t)2), &a, &e) == 0, "%s",
              e.msg);
        CHECK(a.act == cases[i].act && a.rule == -1 && strstr(a.reason, cases[i].reason) &&
              (a.act != PROTO_ACT_QUANTIZE || !a.reason[0]), "%s: act %d, reason %s",
              cases[i].name, a.act, a.reason);
        if (a.act == PROTO_ACT_SKIP)
            CHECK(!strcmp(proto_act_name(a.act), "skipped") && attrs_json_is(&a, "null"), "skip");
        proto_action_clear(&a);
    }
    /* Non-float tensors pass whatever the globs say. */
    CHECK(resolve(p, T(&x, "model.norm.weight", PROTO_ST_I32, 1, (int64_t)2), &a, &e) == 0 &&
          a.act == PROTO_ACT_PASS, "int passes");
    proto_policy_free(p);
    /* Classes and escapes are fnmatch's. */
    p = ok("include=layer.[0-3].w,x\\*y", NULL);
    CHECK(resolve(p, T(&x, "layer.2.w", PROTO_ST_F32, 0), &a, &e) == 0 &&
          a.act == PROTO_ACT_QUANTIZE, "class");
    CHECK(resolve(p, T(&x, "layer.4.w", PROTO_ST_F32, 0), &a, &e) == 0 && a.act == PROTO_ACT_SKIP,
          "class miss");
    CHECK(resolve(p, T(&x, "x*y", PROTO_ST_F32, 0), &a, &e) == 0 && a.act == PROTO_ACT_QUANTIZE,
          "escaped star");
    CHECK(resolve(p, T(&x, "xzy", PROTO_ST_F32, 0), &a, &e) == 0 && a.act == PROTO_ACT_SKIP,
          "escaped star is literal");
    proto_policy_free(p);
}

static void rules(void)
{
    /* docs/api.md's example ("Whole checkpoints"), plus a catch-all, over defaults from the
     * query. */
    proto_policy *p = ok("num_bits=3&exclude=*.skipme",
                         " [ {'match': ['*norm*', '*.bias'], 'skip': true},\n"
                         "   {'match': '*_proj.weight', 'num_bits': 4, 'axis': 0},\n"
                         "   {'match': '*mlp*', 'narrow_range': true},\n"
                         "   {'match': '*', 'signed_input': false, 'round_mode': 'HALF_UP'} ]\n");
    tensor x;
    proto_action a;
    qdq_error e;
    CHECK(resolve(p, T(&x, "model.norm.weight", PROTO_ST_F32, 1, (int64_t)8), &a, &e) == 0 &&
          a.act == PROTO_ACT_SKIP && a.rule == 0 && !strcmp(a.reason, "rules[0] says skip"),
          "skip by rule 0: %s", a.reason);
    CHECK(resolve(p, T(&x, "o_proj.bias", PROTO_ST_F32, 1, (int64_t)8), &a, &e) == 0 &&
          a.act == PROTO_ACT_SKIP && a.rule == 0, "second glob of rule 0");
    /* first match wins: rule 1 before rule 2 for an mlp projection */
    CHECK(resolve(p, T(&x, "mlp.up_proj.weight", PROTO_ST_F16, 2, (int64_t)8, (int64_t)4), &a,
                  &e) == 0 && a.act == PROTO_ACT_QUANTIZE && a.rule == 1 &&
          attrs_are(&a.req.attrs, 4, true, false, QDQ_HALF_TO_EVEN, false, 0), "rule 1: %s",
          e.msg);
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "mlp.gate", PROTO_ST_F16, 1, (int64_t)8), &a, &e) == 0 &&
          a.rule == 2 && attrs_are(&a.req.attrs, 3, true, false, QDQ_HALF_TO_EVEN, true, -1),
          "rule 2 keeps the defaults it does not set: %s", e.msg);
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "embed", PROTO_ST_F64, 1, (int64_t)8), &a, &e) == 0 && a.rule == 3 &&
          attrs_are(&a.req.attrs, 3, false, false, QDQ_HALF_UP, false, -1), "catch-all");
    proto_action_clear(&a);
    /* exclude comes before the rules; non-floats never reach them */
    CHECK(resolve(p, T(&x, "a.skipme", PROTO_ST_F32, 0), &a, &e) == 0 &&
          a.act == PROTO_ACT_SKIP && a.rule == -1 && strstr(a.reason, "excluded"), "exclude");
    CHECK(resolve(p, T(&x, "x_proj.weight", PROTO_ST_I8, 0), &a, &e) == 0 &&
          a.act == PROTO_ACT_PASS && a.rule == -1, "int8 passes");
    /* The policy's JSON: the defaults, the lists, the rules compacted. */
    proto_buf b = { 0 };
    CHECK(proto_policy_json(p, &b) == 0, "policy json");
    char *want = J("{'num_bits':3,'signed_input':true,'range_given':false,'round_mode':"
                   "'HALF_TO_EVEN','narrow_range':false,'axis':-1,'include':['*'],'exclude':"
                   "['*.skipme'],'rules':[{'match':['*norm*','*.bias'],'skip':true},{'match':"
                   "'*_proj.weight','num_bits':4,'axis':0},{'match':'*mlp*','narrow_range':true},"
                   "{'match':'*','signed_input':false,'round_mode':'HALF_UP'}]}");
    CHECK(b.len == strlen(want) && !memcmp(b.data, want, b.len), "policy json: %.*s",
          (int)b.len, b.data);
    free(want);
    proto_buf_free(&b);
    proto_policy_free(p);

    /* Rules through the query argument; white space inside strings is kept. */
    p = ok("rules=[{\"match\":\"a b\",  \"num_bits\" :5}]&include=x\"y,*", NULL);
    CHECK(resolve(p, T(&x, "a b", PROTO_ST_F32, 0), &a, &e) == 0 && a.rule == 0 &&
          a.req.attrs.num_bits == 5, "rules from the query");
    CHECK(proto_policy_json(p, &b) == 0, "json");
    want = J("{'num_bits':8,'signed_input':true,'range_given':false,'round_mode':'HALF_TO_EVEN',"
             "'narrow_range':false,'axis':-1,'include':['x\\'y','*'],'exclude':[],'rules':"
             "[{'match':'a b','num_bits':5}]}");
    CHECK(b.len == strlen(want) && !memcmp(b.data, want, b.len), "policy json: %.*s",
          (int)b.len, b.data);
    /* It is JSON. */
    qdq_error je = { 0 };
    proto_jr r;
    proto_jr_init(&r, b.data, b.len, NULL, &je);
    CHECK(proto_jr_skip(&r, "policy", 1) == 0 && r.p == r.end, "valid JSON: %s", je.msg);
    free(want);
    proto_buf_free(&b);
    proto_policy_free(p);
}

/* Bounds: converted once, straight from the text to each dtype. */
static void bounds(void)
{
    tensor x;
    proto_action a;
    qdq_error e;
    /* 1 + 2^-11 + 2^-60: above the float16 tie between 1 and 1 + 2^-10, but it reads as the
     * tie itself in float64, which would then round to even (1): once is 1 + 2^-10. */
    const char *v = "1.00048828125000000000867361737988403547205962240695953369140625";
    char qs[256];
    snprintf(qs, sizeof qs, "range_given=true&input_min=-0.1&input_max=%s", v);
    proto_policy *p = ok(qs, NULL);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_F16, 1, (int64_t)4), &a, &e) == 0 && a.req.n_min == 1 &&
          a.req.n_max == 1 && a.req.min && a.req.max, "f16 defaults: %s", e.msg);
    if (a.req.max) {
        CHECK(((uint16_t *)a.req.max)[0] == 0x3c01, "f16 max rounded once: %04x",
              ((uint16_t *)a.req.max)[0]);
        CHECK(((uint16_t *)a.req.min)[0] == qdq_f64_to_f16(-0.1), "f16 min");
    }
    CHECK(attrs_json_is(&a, "{'num_bits':8,'signed_input':true,'range_given':true,'round_mode':"
                            "'HALF_TO_EVEN','narrow_range':false,'axis':-1,'input_min':"
                            "-0.099975586,'input_max':1.0009766}"), "f16 attrs json");
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_F32, 1, (int64_t)4), &a, &e) == 0 &&
          ((float *)a.req.min)[0] == -0.1f && ((float *)a.req.max)[0] == 1.0004883f,
          "f32: %s", e.msg);
    CHECK(attrs_json_is(&a, "{'num_bits':8,'signed_input':true,'range_given':true,'round_mode':"
                            "'HALF_TO_EVEN','narrow_range':false,'axis':-1,'input_min':-0.1,"
                            "'input_max':1.0004883}"), "f32 attrs json");
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_F64, 1, (int64_t)4), &a, &e) == 0 &&
          ((double *)a.req.min)[0] == -0.1 && ((double *)a.req.max)[0] == 1.00048828125,
          "f64: %s", e.msg);
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_BF16, 1, (int64_t)4), &a, &e) == 0 &&
          ((uint16_t *)a.req.min)[0] == qdq_f64_to_bf16(-0.1) &&
          ((uint16_t *)a.req.max)[0] == 0x3f80, "bf16: %s", e.msg);
    proto_action_clear(&a);
    proto_policy_free(p);

    /* The same from a rule's JSON, per channel; the defaults' bounds where the rule has none. */
    char rules[512];
    snprintf(rules, sizeof rules, "[{'match':'pc','axis':0,'input_min':[-1,-2,-3],"
             "'input_max':[1,2,%s]},{'match':'half','input_max':%s}]", v, v);
    p = ok("range_given=true&input_min=-0.5&input_max=0.5", rules);
    CHECK(resolve(p, T(&x, "pc", PROTO_ST_F16, 2, (int64_t)3, (int64_t)2), &a, &e) == 0 &&
          a.rule == 0 && a.req.n_min == 3 && a.req.n_max == 3, "per channel: %s", e.msg);
    if (a.req.n_max == 3) {
        const uint16_t *mn = a.req.min, *mx = a.req.max;
        CHECK(mn[0] == qdq_f64_to_f16(-1) && mn[2] == qdq_f64_to_f16(-3) && mx[1] == 0x4000 &&
              mx[2] == 0x3c01, "per-channel values");
    }
    CHECK(attrs_json_is(&a, "{'num_bits':8,'signed_input':true,'range_given':true,'round_mode':"
                            "'HALF_TO_EVEN','narrow_range':false,'axis':0,'input_min':"
                            "[-1.0,-2.0,-3.0],'input_max':[1.0,2.0,1.0009766]}"), "per-channel attrs json");
    proto_action_clear(&a);
    CHECK(resolve(p, T(&x, "half", PROTO_ST_BF16, 0), &a, &e) == 0 && a.rule == 1 &&
          ((uint16_t *)a.req.min)[0] == qdq_f64_to_bf16(-0.5) &&
          ((uint16_t *)a.req.max)[0] == 0x3f80, "mixed sources: %s", e.msg);
    proto_action_clear(&a);
    /* Without range_given, bounds are neither read nor reported. */
    proto_policy_free(p);
    p = ok("input_min=5&input_max=1", NULL);
    CHECK(resolve(p, T(&x, "w", PROTO_ST_F32, 0), &a, &e) == 0 && !a.req.min &&
          attrs_json_is(&a, "{'num_bits':8,'signed_input':true,'range_given':false,"
                            "'round_mode':'HALF_TO_EVEN','narrow_range':false,'axis':-1}"),
          "bounds unused: %s", e.msg);
    proto_buf b = { 0 };
    CHECK(proto_policy_json(p, &b) == 0 && strstr(b.data, "\"input_min\":5.0,\"input_max\":1.0,"),
          "policy json keeps the given bounds: %.*s", (int)b.len, b.data);
    proto_buf_free(&b);
    proto_policy_free(p);
    p = ok("input_min=1e-1,-2.50&input_max=Infinity", NULL);
    CHECK(proto_policy_json(p, &b) == 0 &&
          strstr(b.data, "\"input_min\":[0.1,-2.5],\"input_max\":Infinity"),
          "bound text printed as numbers: %.*s", (int)b.len, b.data);
    proto_buf_free(&b);
    proto_policy_free(p);
}

/* ---- errors ---- */

static void rule_errors(void)
{
    static const struct {
        const char *rules;
        const char *words[3];
    } bad[] = {
        { "{'match':'*'}", { "rules", "expected a JSON array" } },
        { "[1]", { "rules[0]", "expected an object", "a number" } },
        { "[{'match':'*'},2]", { "rules[1]", "expected an object" } },
        { "[{'match':'*'},]", { "invalid JSON", "trailing comma" } },
        { "[{'match':'*'}] x", { "unexpected data after the array" } },
        { "[{'match':'*'}", { "rules", "expected ',' or ']'" } },
        { "[{'match':'*','bits':4}]", { "unknown key 'bits' in rules[0]", "num_bits" } },
        { "[{'match':'*'},{'match':'*','Skip':true}]", { "unknown key 'Skip' in rules[1]" } },
        { "[{'match':'*','match':'x'}]", { "duplicate key 'match' in rules[0]" } },
        { "[{'skip':true}]", { "rules[0] has no \"match\"" } },
        { "[{}]", { "rules[0] has no \"match\"" } },
        { "[{'match':'*','skip':true,'num_bits':4}]", { "rules[0]", "\"skip\" and attributes" } },
        { "[{'match':'*','skip':false,'axis':0}]", { "rules[0]", "\"skip\" and attributes" } },
        { "[{'match':5}]", { "rules[0].match", "a glob", "a number" } },
        { "[{'match':[]}]", { "rules[0].match", "empty" } },
        { "[{'match':['a',3]}]", { "rules[0].match", "a glob", "a number" } },
        { "[{'match':''}]", { "rules[0].match", "pattern 0 is empty" } },
        { "[{'match':['a','']}]", { "rules[0].match", "pattern 1 is empty" } },
        { "[{'match':'a\\u0000'}]", { "rules[0].match", "NUL" } },
        { "[{'match':'a\\\\\\\\\\\\'}]", { "rules[0].match", "lone" } },
        { "[{'match':'*','skip':'yes'}]", { "rules[0].skip", "true or false", "a string" } },
        { "[{'match':'*','num_bits':'4'}]", { "rules[0].num_bits", "an integer", "a string" } },
        { "[{'match':'*','num_bits':4.0}]", { "rules[0].num_bits", "fraction" } },
        { "[{'match':'*','num_bits':99999999999}]", { "rules[0].num_bits", "out of range" } },
        { "[{'match':'*','axis':1.5}]", { "rules[0].axis", "fraction" } },
        { "[{'match':'*','signed_input':1}]", { "rules[0].signed_input", "true or false" } },
        { "[{'match':'*','range_given':null}]", { "rules[0].range_given", "true or false" } },
        { "[{'match':'*','narrow_range':'true'}]", { "rules[0].narrow_range" } },
        { "[{'match':'*','round_mode':'UP'}]", { "rules[0].round_mode", "HALF_UP", "'UP'" } },
        { "[{'match':'*','round_mode':1}]", { "rules[0].round_mode", "a string" } },
        { "[{'match':'*','input_min':'0'}]", { "rules[0].input_min", "a number or an array" } },
        { "[{'match':'*','input_min':[[0]]}]", { "rules[0].input_min", "flat array" } },
        { "[{'match':'*','input_max':[1,'x']}]", { "rules[0].input_max", "a number" } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_policy *p;
        qdq_error e;
        int rc = make(&p, "", bad[i].rules, &e);
        CHECK(rc == QDQ_EINVAL && e.code == QDQ_EINVAL, "%s: %d %s", bad[i].rules, rc, e.msg);
        for (int k = 0; k < 3 && bad[i].words[k]; k++)
            CHECK(strstr(e.msg, bad[i].words[k]) != NULL, "%s: lacks \"%s\": %s", bad[i].rules,
                  bad[i].words[k], e.msg);
        /* a failed policy's JSON still is JSON, without the rules */
        proto_buf b = { 0 };
        CHECK(proto_policy_json(p, &b) == 0 && strstr(b.data, "\"rules\":[]}"), "json after "
              "a failure: %.*s", (int)b.len, b.data);
        proto_buf_free(&b);
        proto_policy_free(p);
    }
}

static void resolve_errors(void)
{
    static const struct {
        const char *qs, *rules, *name;
        proto_st_dtype dt;
        int rank;
        int64_t d0, d1;
        int code;
        const char *words[4];
    } bad[] = {
        { "axis=2", NULL, "w", PROTO_ST_F32, 2, 4, 3, QDQ_EINVAL,
          { "tensor 'w' (the defaults)", "axis 2 is not below the tensor's rank 2",
            "shape [4,3]" } },
        { "", "[{'match':'*.bias','axis':0}]", "model.bias", PROTO_ST_BF16, 0, 0, 0, QDQ_EINVAL,
          { "tensor 'model.bias' (rules[0])", "axis 0 is not below the tensor's rank 0",
            "shape []" } },
        { "axis=-2", NULL, "w", PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (the defaults)", "axis must be at least -1" } },
        { "num_bits=0", NULL, "w", PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (the defaults)", "num_bits is out of range: 0" } },
        { "", "[{'match':'x','skip':true},{'match':'w','num_bits':62}]", "w", PROTO_ST_F16, 1,
          4, 0, QDQ_EINVAL, { "tensor 'w' (rules[1])", "num_bits is out of range: 62" } },
        { "range_given=true", NULL, "w", PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (the defaults)", "range_given is true but input_min is missing" } },
        { "range_given=true&input_min=0", NULL, "w", PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (the defaults)", "input_max is missing" } },
        { "input_min=0&input_max=1", "[{'match':'w*','range_given':true,'input_min':[0,0]}]",
          "w2", PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w2' (rules[0])", "input_min has 2 values", "axis -1" } },
        { "", "[{'match':'w','range_given':true,'input_min':-1,'input_max':1e999}]", "w",
          PROTO_ST_F64, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (rules[0])", "input_max", "out of range for float64" } },
        { "", "[{'match':'w','range_given':true,'input_min':0}]", "w", PROTO_ST_F32, 1, 4, 0,
          QDQ_EINVAL, { "tensor 'w' (rules[0])", "range_given is true but input_max is missing" } },
        { "range_given=true&input_min=0,0&input_max=1,1", NULL, "w", PROTO_ST_F32, 1, 4, 0,
          QDQ_EINVAL, { "tensor 'w' (the defaults)", "input_min has 2 values", "axis -1" } },
        { "range_given=true&input_min=0&input_max=1",
          "[{'match':'*_proj.weight','axis':0}]", "q_proj.weight", PROTO_ST_BF16, 2, 4, 3,
          QDQ_EINVAL, { "tensor 'q_proj.weight' (rules[0])", "input_min has 1 values",
                        "axis 0 of shape [4,3] has 4 channels" } },
        { "", "[{'match':'*','axis':1,'range_given':true,'input_min':[0,0,0],"
              "'input_max':[1,1]}]", "w", PROTO_ST_F32, 2, 4, 3, QDQ_EINVAL,
          { "tensor 'w' (rules[0])", "input_max has 2 values", "has 3 channels" } },
        { "range_given=true&input_min=NaN&input_max=1", NULL, "w", PROTO_ST_F64, 1, 4, 0,
          QDQ_EINVAL, { "tensor 'w' (the defaults)", "Invalid range", "NaN" } },
        { "", "[{'match':'w','range_given':true,'input_min':0,'input_max':NaN}]", "w",
          PROTO_ST_F16, 1, 4, 0, QDQ_EINVAL, { "tensor 'w' (rules[0])", "NaN" } },
        { "range_given=true&input_min=2&input_max=1", NULL, "w", PROTO_ST_F32, 1, 4, 0,
          QDQ_EINVAL, { "tensor 'w' (the defaults)", "input_min 2 > input_max 1" } },
        { "", "[{'match':'w','axis':0,'range_given':true,'input_min':[0,5],"
              "'input_max':[1,1]}]", "w", PROTO_ST_BF16, 1, 2, 0, QDQ_EINVAL,
          { "tensor 'w' (rules[0])", "input_min 5 > input_max 1", "at channel 1" } },
        { "range_given=true&input_min=-1e6&input_max=1", NULL, "w", PROTO_ST_F16, 1, 4, 0,
          QDQ_EINVAL, { "tensor 'w' (the defaults)", "input_min", "out of range for float16" } },
        { "", "[{'match':'w','range_given':true,'input_min':-1,'input_max':1e39}]", "w",
          PROTO_ST_F32, 1, 4, 0, QDQ_EINVAL,
          { "tensor 'w' (rules[0])", "input_max", "out of range for float32" } },
        { "axis=1", NULL, "e", PROTO_ST_F32, 2, 0, 2000000, PROTO_ETOOBIG,
          { "tensor 'e' (the defaults)", "2000000 channels", "limit of 1000000" } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_policy *p = ok(bad[i].qs, bad[i].rules);
        tensor x;
        proto_action a;
        qdq_error e;
        const proto_st_tensor *t = bad[i].rank == 0 ? T(&x, bad[i].name, bad[i].dt, 0)
                                   : bad[i].rank == 1 ? T(&x, bad[i].name, bad[i].dt, 1, bad[i].d0)
                                   : T(&x, bad[i].name, bad[i].dt, 2, bad[i].d0, bad[i].d1);
        int rc = resolve(p, t, &a, &e);
        CHECK(rc == bad[i].code && e.code == bad[i].code, "resolve %zu: %d %s", i, rc, e.msg);
        for (int k = 0; k < 4 && bad[i].words[k]; k++)
            CHECK(strstr(e.msg, bad[i].words[k]) != NULL, "resolve %zu: lacks \"%s\": %s", i,
                  bad[i].words[k], e.msg);
        CHECK(a.act == PROTO_ACT_PASS && !a.req.min && !a.req.max, "resolve %zu: out cleared", i);
        proto_action_clear(&a);
        /* A tensor the policy leaves out is not checked against it. */
        CHECK(resolve(p, T(&x, "other.int", PROTO_ST_I32, 0), &a, &e) == 0 &&
              a.act == PROTO_ACT_PASS, "resolve %zu: others fine", i);
        proto_policy_free(p);
    }
    /* A long name in a message is cut, its characters whole. */
    char name[200];
    for (int i = 0; i < 60; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[120] = 0;
    proto_policy *p = ok("axis=0", NULL);
    tensor x;
    proto_action a;
    qdq_error e;
    CHECK(resolve(p, T(&x, name, PROTO_ST_F32, 0), &a, &e) == QDQ_EINVAL &&
          strstr(e.msg, "\xc3\xa9...' (the defaults)"), "long name: %s", e.msg);
    proto_policy_free(p);
}

int main(void)
{
    defaults();
    arguments();
    globs();
    rules();
    bounds();
    rule_errors();
    resolve_errors();
    return check_done();
}
