/*
 * The policy of a whole checkpoint (policy.h).
 *
 * The defaults live in a template proto_request, filled by proto_query_arg exactly as the raw
 * route's query fills one; their bounds stay text until a tensor's dtype is known. A rule's
 * bounds stay text too (a span of the rules' JSON, checked when the rules are read) and are read
 * straight into each tensor's dtype: going through float64 first could round twice.
 */
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pull.h"
#include "policy.h"

enum attr {
    A_NUM_BITS, A_SIGNED_INPUT, A_RANGE_GIVEN, A_ROUND_MODE, A_NARROW_RANGE, A_AXIS,
    A_INPUT_MIN, A_INPUT_MAX, A_COUNT
};
static const char *const attr_names[A_COUNT] = {
    "num_bits", "signed_input", "range_given", "round_mode", "narrow_range", "axis",
    "input_min", "input_max",
};

/* A list of globs. */
typedef struct globs {
    char **v;
    size_t n;
} globs;

typedef struct rule {
    globs match;
    bool skip;
    unsigned set;       /* 1 << attr for each attribute given */
    qdq_attrs attrs;    /* the given ones */
    size_t bound[2];    /* input_min, input_max: offset of the value in the rules' text */
} rule;

struct proto_policy {
    proto_request tmpl; /* the defaults: attrs, min_text/max_text, query_seen */
    globs include, exclude;
    bool include_given, exclude_given, rules_given;
    char *rules_text;   /* as given (owned) */
    size_t rules_len;
    rule *rules;
    size_t n_rules;
};

static void globs_clear(globs *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->v[i]);
    free(g->v);
    g->v = NULL;
    g->n = 0;
}

proto_policy *proto_policy_new(void)
{
    proto_policy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    proto_request_init(&p->tmpl);
    return p;
}

void proto_policy_free(proto_policy *p)
{
    if (!p)
        return;
    proto_request_clear(&p->tmpl);
    globs_clear(&p->include);
    globs_clear(&p->exclude);
    for (size_t i = 0; i < p->n_rules; i++)
        globs_clear(&p->rules[i].match);
    free(p->rules);
    free(p->rules_text);
    free(p);
}

/* ---- globs ---- */

/* Appends the n bytes at s to g as a pattern, checked. */
static int glob_add(globs *g, const char *what, const char *s, size_t n, qdq_error *err)
{
    char tmp[48];
    if (!n)
        return qdq_fail(err, QDQ_EINVAL, "%s: pattern %zu is empty (expected glob patterns such "
                        "as *.weight or model.layers.*.mlp.*)", what, g->n);
    if (memchr(s, 0, n))
        return qdq_fail(err, QDQ_EINVAL, "%s: pattern %zu holds a NUL byte", what, g->n);
    for (size_t i = 0, k; i < n; i += k) /* names are UTF-8; the policy's JSON will quote it */
        if (!(k = proto_utf8_len((const unsigned char *)s + i, n - i)))
            return qdq_fail(err, QDQ_EINVAL, "%s: pattern %zu is not valid UTF-8 (byte %zu)",
                            what, g->n, i);
    char *pat = malloc(n + 1);
    char **v = realloc(g->v, (g->n + 1) * sizeof *v);
    if (!pat || !v) {
        free(pat);
        if (v)
            g->v = v;
        return qdq_fail(err, PROTO_ENOMEM, "%s: out of memory", what);
    }
    memcpy(pat, s, n);
    pat[n] = 0;
    g->v = v;
    g->v[g->n++] = pat;
    /* fnmatch takes any pattern, but one ending in a lone backslash matches nothing. */
    size_t bs = 0;
    while (bs < n && s[n - 1 - bs] == '\\')
        bs++;
    if (bs % 2)
        return qdq_fail(err, QDQ_EINVAL, "%s: pattern %zu '%s' ends with a lone '\\' (write "
                        "'\\\\' for a backslash)", what, g->n - 1, proto_printable(tmp, s, n));
    return 0;
}

/* "a,b,c" into g; "" is no pattern when empty_ok. */
static int glob_list(globs *g, const char *what, const char *value, bool empty_ok,
                     qdq_error *err)
{
    if (!*value) {
        if (empty_ok)
            return 0;
        return qdq_fail(err, QDQ_EINVAL, "%s is empty: it would select no tensor (leave it out "
                        "to select every tensor)", what);
    }
    for (const char *p = value;;) {
        size_t n = strcspn(p, ",");
        if (glob_add(g, what, p, n, err))
            return err->code;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

static bool glob_match(const globs *g, const char *name, size_t *which)
{
    for (size_t i = 0; i < g->n; i++)
        if (fnmatch(g->v[i], name, 0) == 0) {
            if (which)
                *which = i;
            return true;
        }
    return false;
}

/* ---- arguments ---- */

int proto_policy_arg(proto_policy *p, const char *key, const char *value, qdq_error *err)
{
    static const proto_limits none = { 0, PROTO_MAX_RANK, 0, 0 };
    for (int k = 0; k < A_COUNT; k++)
        if (!strcmp(key, attr_names[k]))
            return proto_query_arg(&p->tmpl, key, value, &none, err);
    bool inc = !strcmp(key, "include");
    if (inc || !strcmp(key, "exclude")) {
        bool *given = inc ? &p->include_given : &p->exclude_given;
        if (*given)
            return qdq_fail(err, QDQ_EINVAL, "query parameter \"%s\" is given twice", key);
        *given = true;
        globs *g = inc ? &p->include : &p->exclude;
        int rc = glob_list(g, key, value, !inc, err);
        if (rc)
            globs_clear(g);
        return rc;
    }
    if (!strcmp(key, "rules"))
        return proto_policy_rules(p, value, strlen(value), err);
    return PROTO_POLICY_NOT_MINE;
}

/* ---- rules ---- */

/* A string value into a new pattern of g. */
static int read_glob(proto_jr *r, const char *what, globs *g)
{
    const char *start = r->p;
    size_t n;
    if (proto_jr_peek(r) != '"')
        return proto_jr_type_error(r, what, "a glob (a string) or an array of them");
    if (proto_jr_string(r, what, NULL, 0, &n, NULL, NULL))
        return r->err->code;
    char *tmp = malloc(n + 1);
    if (!tmp)
        return qdq_fail(r->err, PROTO_ENOMEM, "%s: out of memory", what);
    proto_jr again = *r;
    again.p = start;
    proto_jr_string(&again, what, tmp, n, &n, NULL, NULL);
    int rc = glob_add(g, what, tmp, n, r->err);
    free(tmp);
    return rc;
}

/* "match": "GLOB" or ["GLOB", ...]. */
static int read_match(proto_jr *r, const char *what, globs *g)
{
    bool empty;
    if (proto_jr_peek(r) != '[')
        return read_glob(r, what, g);
    if (proto_jr_open(r, what, '[', 3, &empty))
        return r->err->code;
    if (empty)
        return qdq_fail(r->err, QDQ_EINVAL, "%s: the array is empty (give at least one glob)",
                        what);
    for (int done = 0; !done;)
        if (read_glob(r, what, g) || proto_jr_next(r, what, ']', &done))
            return r->err->code;
    return 0;
}

/* One rule object, rules[i]. */
static int read_rule(proto_jr *r, int i, rule *ru)
{
    static const char *const keys[] = {
        "match", "skip", "num_bits", "signed_input", "range_given", "round_mode",
        "narrow_range", "axis", "input_min", "input_max",
    };
    enum { K_MATCH, K_SKIP, K_ATTR0 };
    char where[32], what[64];
    unsigned seen = 0;
    bool empty, b;
    int64_t v;
    snprintf(where, sizeof where, "rules[%d]", i);
    if (proto_jr_peek(r) != '{')
        return proto_jr_type_error(r, where, "an object {\"match\": ..., \"skip\": true} or "
                                   "{\"match\": ..., attributes}");
    if (proto_jr_open(r, where, '{', 2, &empty))
        return r->err->code;
    for (int done = empty; !done;) {
        int k;
        if (proto_jr_key(r, where, keys, (int)(sizeof keys / sizeof keys[0]), &seen, &k))
            return r->err->code;
        snprintf(what, sizeof what, "%s.%s", where, keys[k]);
        int a = k - K_ATTR0;
        switch (k) {
        case K_MATCH:
            if (read_match(r, what, &ru->match))
                return r->err->code;
            break;
        case K_SKIP:
            if (proto_jr_bool(r, what, &ru->skip))
                return r->err->code;
            break;
        default:
            switch ((enum attr)a) {
            case A_NUM_BITS:
                if (proto_jr_int(r, what, INT_MIN, INT_MAX, &v))
                    return r->err->code;
                ru->attrs.num_bits = (int)v;
                break;
            case A_AXIS:
                if (proto_jr_int(r, what, INT64_MIN, INT64_MAX, &v))
                    return r->err->code;
                ru->attrs.axis = v;
                break;
            case A_SIGNED_INPUT:
            case A_RANGE_GIVEN:
            case A_NARROW_RANGE:
                if (proto_jr_bool(r, what, &b))
                    return r->err->code;
                *(a == A_SIGNED_INPUT ? &ru->attrs.signed_input
                  : a == A_RANGE_GIVEN ? &ru->attrs.range_given : &ru->attrs.narrow_range) = b;
                break;
            case A_ROUND_MODE: {
                char mode[16], tmp[48];
                size_t n;
                if (proto_jr_peek(r) != '"')
                    return proto_jr_type_error(r, what, "a string");
                if (proto_jr_string(r, what, mode, sizeof mode, &n, NULL, NULL))
                    return r->err->code;
                if (n == 12 && !memcmp(mode, "HALF_TO_EVEN", 12))
                    ru->attrs.round_mode = QDQ_HALF_TO_EVEN;
                else if (n == 7 && !memcmp(mode, "HALF_UP", 7))
                    ru->attrs.round_mode = QDQ_HALF_UP;
                else
                    return qdq_fail(r->err, QDQ_EINVAL, "%s: expected \"HALF_TO_EVEN\" or "
                                    "\"HALF_UP\", got '%s'", what, proto_printable(tmp, mode,
                                    n < sizeof mode ? n : sizeof mode));
                break;
            }
            case A_INPUT_MIN:
            case A_INPUT_MAX: {
                /* checked now; read into each tensor's dtype when it is resolved */
                proto_jtensor t;
                memset(&t, 0, sizeof t);
                ru->bound[a - A_INPUT_MIN] = proto_jr_off(r);
                if (proto_jr_numbers(r, what, 3, &t))
                    return r->err->code;
                break;
            }
            case A_COUNT:
                break;
            }
            ru->set |= 1u << a;
        }
        if (proto_jr_next(r, where, '}', &done))
            return r->err->code;
    }
    if (!(seen & 1u << K_MATCH))
        return qdq_fail(r->err, QDQ_EINVAL, "%s has no \"match\" (the glob or globs of the "
                        "tensors it applies to)", where);
    if ((seen & 1u << K_SKIP) && ru->set)
        return qdq_fail(r->err, QDQ_EINVAL, "%s has \"skip\" and attributes: a rule either skips "
                        "its tensors or sets their attributes", where);
    return 0;
}

int proto_policy_rules(proto_policy *p, const char *json, size_t len, qdq_error *err)
{
    if (p->rules_given)
        return qdq_fail(err, QDQ_EINVAL, "rules are given twice (give them once: X-QDQ-Rules, "
                        "the rules parameter, or --rules)");
    p->rules_given = true;
    p->rules_text = malloc(len + 1);
    if (!p->rules_text)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for the rules");
    memcpy(p->rules_text, json, len);
    p->rules_text[len] = 0;
    p->rules_len = len;

    qdq_error e = { 0 };
    proto_jr r;
    bool empty;
    proto_jr_init(&r, p->rules_text, len, NULL, &e);
    proto_jr_ws(&r);
    int rc = 0;
    if (proto_jr_peek(&r) != '[') {
        rc = proto_jr_type_error(&r, "rules", "a JSON array of rules");
        goto out;
    }
    if ((rc = proto_jr_open(&r, "rules", '[', 1, &empty)))
        goto out;
    for (int done = empty; !done;) {
        if (p->n_rules == INT_MAX) {
            rc = qdq_fail(&e, PROTO_ETOOBIG, "rules: more than %d rules", INT_MAX);
            goto out;
        }
        rule *v = realloc(p->rules, (p->n_rules + 1) * sizeof *v);
        if (!v) {
            rc = qdq_fail(&e, PROTO_ENOMEM, "out of memory for the rules");
            goto out;
        }
        p->rules = v;
        rule *ru = &p->rules[p->n_rules++];
        memset(ru, 0, sizeof *ru);
        if ((rc = read_rule(&r, (int)p->n_rules - 1, ru)) ||
            (rc = proto_jr_next(&r, "rules", ']', &done)))
            goto out;
    }
    proto_jr_ws(&r);
    if (r.p < r.end)
        rc = qdq_fail(&e, QDQ_EINVAL, "rules: invalid JSON: unexpected data after the array at "
                      "byte %zu", proto_jr_off(&r));
out:
    if (rc) {
        for (size_t i = 0; i < p->n_rules; i++)
            globs_clear(&p->rules[i].match);
        free(p->rules);
        free(p->rules_text);
        p->rules = NULL;
        p->n_rules = 0;
        p->rules_text = NULL;
        p->rules_len = 0;
        return qdq_fail(err, e.code, "%s%s", strncmp(e.msg, "rules", 5) ? "rules: " : "", e.msg);
    }
    return 0;
}

/* ---- resolving ---- */

const char *proto_act_name(proto_act act)
{
    return act == PROTO_ACT_QUANTIZE ? "quantized" : act == PROTO_ACT_SKIP ? "skipped"
                                                                          : "passthrough";
}

void proto_action_clear(proto_action *a)
{
    proto_request_clear(&a->req);
    a->act = PROTO_ACT_PASS;
    a->rule = -1;
    a->reason[0] = 0;
}

/* Up to 40 bytes of a name, cut at a character, for a reason or a message. */
static const char *name_text(char out[48], const char *s, size_t n)
{
    size_t k = 0, i = 0;
    while (i < n) {
        size_t c = proto_utf8_len((const unsigned char *)s + i, n - i);
        unsigned char u = (unsigned char)s[i];
        if (k + (c ? c : 1) > 40)
            break;
        if (c <= 1) {
            out[k++] = u < 0x20 || u == '\'' || u >= 0x7f ? '?' : (char)u;
            i++;
        } else {
            memcpy(out + k, s + i, c);
            k += c;
            i += c;
        }
    }
    if (i < n)
        memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
    return out;
}

/* A failure for tensor t under source ("rules[2]" or "the defaults"): "tensor 'x' (rules[2]):
 * " and the message. */
static int fail_for(qdq_error *err, int code, const proto_st_tensor *t, const char *source,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_for(qdq_error *err, int code, const proto_st_tensor *t, const char *source,
                    const char *fmt, ...)
{
    char msg[sizeof err->msg], nm[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qdq_fail(err, code, "tensor '%s' (%s): %.400s", name_text(nm, t->name, t->name_len),
                    source, msg);
}

/* A rule's bound (the JSON at off in the rules' text) read into dtype: *a (malloc), *n. */
static int rule_bound(const proto_policy *p, size_t off, const char *key, qdq_dtype dt, void **a,
                      size_t *n, qdq_error *e)
{
    proto_jr r;
    proto_jtensor t;
    proto_jr_init(&r, p->rules_text, p->rules_len, NULL, e);
    r.p += off;
    memset(&t, 0, sizeof t);
    if (proto_jr_numbers(&r, key, 3, &t)) /* counts (checked when the rules were read) */
        return e->code;
    r.p = p->rules_text + off;
    t.dtype = dt;
    t.store = t.fixed = true;
    t.cap = t.count;
    t.data = malloc((size_t)(t.cap ? t.cap : 1) * qdq_dtype_size(dt));
    if (!t.data)
        return qdq_fail(e, PROTO_ENOMEM, "%s: out of memory", key);
    if (proto_jr_numbers(&r, key, 3, &t)) {
        free(t.data);
        return e->code;
    }
    *a = t.data;
    *n = (size_t)t.count;
    return 0;
}

/* The op's request for t under attributes a and bounds from a rule or the defaults, checked. */
static int quantize(const proto_policy *p, const proto_st_tensor *t, const rule *ru,
                    const char *src, const proto_limits *lim, qdq_dtype dt, proto_request *q,
                    qdq_error *err)
{
    qdq_error e = { 0 };
    qdq_plan plan;
    char sh[128];
    size_t k = (size_t)snprintf(sh, sizeof sh, "[");
    for (int i = 0; i < t->rank && k < sizeof sh - 24; i++)
        k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%" PRId64, i ? "," : "", t->dims[i]);
    snprintf(sh + k, sizeof sh - k, k >= sizeof sh - 24 ? "...]" : "]");

    if (t->rank > PROTO_MAX_RANK)
        return fail_for(err, PROTO_ETOOBIG, t, src, "rank %d is over %d", t->rank,
                        PROTO_MAX_RANK);
    q->dtype = dt;
    q->rank = t->rank;
    if (t->rank)
        memcpy(q->dims, t->dims, (size_t)t->rank * sizeof q->dims[0]);
    q->count = t->count;
    q->form = PROTO_FORM_RAW;
    if (q->attrs.axis >= t->rank)
        return fail_for(err, QDQ_EINVAL, t, src, "axis %" PRId64 " is not below the tensor's "
                        "rank %d (shape %s)", q->attrs.axis, t->rank, sh);
    if (qdq_plan_init(&plan, dt, q->dims, q->rank, &q->attrs, &e))
        return fail_for(err, e.code, t, src, "%s", e.msg);
    if (lim && lim->max_elements && plan.channels > lim->max_elements)
        return fail_for(err, PROTO_ETOOBIG, t, src, "axis %" PRId64 " has %" PRIu64 " channels, "
                        "over the limit of %" PRIu64 " (--max-elements)", q->attrs.axis,
                        plan.channels, lim->max_elements);
    if (!q->attrs.range_given)
        return 0;

    /* The bounds: a rule's JSON, or the defaults' text, straight into the dtype. */
    for (int b = 0; b < 2; b++) {
        const char *key = b ? "input_max" : "input_min";
        void **arr = b ? &q->max : &q->min;
        size_t *n = b ? &q->n_max : &q->n_min;
        if (ru && ru->set & 1u << (A_INPUT_MIN + b)) {
            if (rule_bound(p, ru->bound[b], key, dt, arr, n, &e))
                return fail_for(err, e.code, t, src, "%s", e.msg);
            continue;
        }
        const char *text = b ? p->tmpl.max_text : p->tmpl.min_text;
        if (!text)
            return fail_for(err, QDQ_EINVAL, t, src, "range_given is true but %s is missing",
                            key);
        char **dst = b ? &q->max_text : &q->min_text;
        if (!(*dst = strdup(text)))
            return fail_for(err, PROTO_ENOMEM, t, src, "out of memory");
    }
    if (proto_query_bounds(q, &e))
        return fail_for(err, e.code, t, src, "%s", e.msg);
    uint64_t want = q->attrs.axis < 0 ? 1 : plan.channels;
    for (int b = 0; b < 2; b++) {
        size_t n = b ? q->n_max : q->n_min;
        const char *key = b ? "input_max" : "input_min";
        if (n == want)
            continue;
        if (q->attrs.axis < 0)
            return fail_for(err, QDQ_EINVAL, t, src, "%s has %zu values; with axis -1 it is one "
                            "number", key, n);
        return fail_for(err, QDQ_EINVAL, t, src, "%s has %zu values but axis %" PRId64 " of "
                        "shape %s has %" PRIu64 " channels", key, n, q->attrs.axis, sh, want);
    }
    /* NaN and min > max, as the op itself checks them (the counts above bound the block). */
    void *params = malloc(qdq_params_size(&plan));
    if (!params)
        return fail_for(err, PROTO_ENOMEM, t, src, "out of memory");
    int rc = qdq_params_given(&plan, q->min, q->n_min, q->max, q->n_max, params, &e);
    free(params);
    if (rc)
        return fail_for(err, e.code, t, src, "%s", e.msg);
    return 0;
}

int proto_policy_resolve(const proto_policy *p, const proto_st_tensor *t, const proto_limits *lim,
                         proto_action *out, qdq_error *err)
{
    char pat[48];
    qdq_dtype dt;
    size_t which;
    memset(out, 0, sizeof *out);
    proto_request_init(&out->req);
    out->rule = -1;
    if (!proto_st_dtype_qdq(t->dtype, &dt)) {
        snprintf(out->reason, sizeof out->reason, "dtype %s is not quantized (only F32, F64, "
                 "F16 and BF16 are)", proto_st_dtype_name(t->dtype));
        return 0;
    }
    out->act = PROTO_ACT_SKIP;
    if (p->include_given && !glob_match(&p->include, t->name, NULL)) {
        size_t k = (size_t)snprintf(out->reason, sizeof out->reason, "not included (include: ");
        for (size_t i = 0; i < p->include.n && k < sizeof out->reason; i++)
            k += (size_t)snprintf(out->reason + k, sizeof out->reason - k, "%s%s", i ? "," : "",
                                  proto_printable(pat, p->include.v[i],
                                                     strlen(p->include.v[i])));
        if (k + 1 < sizeof out->reason)
            snprintf(out->reason + k, sizeof out->reason - k, ")");
        else
            memcpy(out->reason + sizeof out->reason - 5, "...)", 5);
        return 0;
    }
    if (glob_match(&p->exclude, t->name, &which)) {
        snprintf(out->reason, sizeof out->reason, "excluded by '%s'",
                 proto_printable(pat, p->exclude.v[which], strlen(p->exclude.v[which])));
        return 0;
    }
    const rule *ru = NULL;
    for (size_t i = 0; i < p->n_rules && !ru; i++)
        if (glob_match(&p->rules[i].match, t->name, NULL)) {
            ru = &p->rules[i];
            out->rule = (int)i;
        }
    if (ru && ru->skip) {
        snprintf(out->reason, sizeof out->reason, "rules[%d] says skip", out->rule);
        return 0;
    }
    out->act = PROTO_ACT_QUANTIZE;
    char src[32] = "the defaults";
    qdq_attrs *a = &out->req.attrs;
    *a = p->tmpl.attrs;
    if (ru) {
        snprintf(src, sizeof src, "rules[%d]", out->rule);
        if (ru->set & 1u << A_NUM_BITS) a->num_bits = ru->attrs.num_bits;
        if (ru->set & 1u << A_SIGNED_INPUT) a->signed_input = ru->attrs.signed_input;
        if (ru->set & 1u << A_RANGE_GIVEN) a->range_given = ru->attrs.range_given;
        if (ru->set & 1u << A_ROUND_MODE) a->round_mode = ru->attrs.round_mode;
        if (ru->set & 1u << A_NARROW_RANGE) a->narrow_range = ru->attrs.narrow_range;
        if (ru->set & 1u << A_AXIS) a->axis = ru->attrs.axis;
    }
    int rc = quantize(p, t, ru, src, lim, dt, &out->req, err);
    if (rc) {
        proto_action_clear(out);
        return rc;
    }
    return 0;
}

/* ---- JSON ---- */

static int put(proto_buf *b, const char *s)
{
    return proto_buf_append(b, s, strlen(s));
}

/* The six plain attributes: "num_bits":8,...,"axis":-1 (no braces). */
static int put_attrs(proto_buf *b, const qdq_attrs *a)
{
    char t[256];
    int n = snprintf(t, sizeof t, "\"num_bits\":%d,\"signed_input\":%s,\"range_given\":%s,"
                     "\"round_mode\":\"%s\",\"narrow_range\":%s,\"axis\":%" PRId64, a->num_bits,
                     a->signed_input ? "true" : "false", a->range_given ? "true" : "false",
                     a->round_mode == QDQ_HALF_UP ? "HALF_UP" : "HALF_TO_EVEN",
                     a->narrow_range ? "true" : "false", a->axis);
    return proto_buf_append(b, t, (size_t)n);
}

int proto_policy_attrs_json(const proto_action *a, proto_buf *out)
{
    if (a->act != PROTO_ACT_QUANTIZE)
        return put(out, "null");
    const proto_request *q = &a->req;
    if (put(out, "{") || put_attrs(out, &q->attrs))
        return PROTO_ENOMEM;
    if (q->attrs.range_given && q->min && q->max)
        for (int b = 0; b < 2; b++) {
            bool arr = q->attrs.axis >= 0;
            if (put(out, b ? ",\"input_max\":" : ",\"input_min\":") || (arr && put(out, "[")) ||
                proto_json_put_numbers(out, q->dtype, b ? q->max : q->min, 0,
                                       b ? q->n_max : q->n_min) ||
                (arr && put(out, "]")))
                return PROTO_ENOMEM;
        }
    return put(out, "}");
}

/* The defaults' bound text "1,2.5" as a number, or an array when it has commas. */
static int put_bound_text(proto_buf *b, const char *s)
{
    bool arr = strchr(s, ',') != NULL;
    char num[PROTO_NUM_MAX];
    if (arr && put(b, "["))
        return PROTO_ENOMEM;
    for (const char *p = s, *end = s + strlen(s);;) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        double v = 0;
        if (!e)
            e = end;
        proto_num_parse_f64(p, e, &v); /* the syntax was checked when it was given */
        if ((p != s && put(b, ",")) || proto_buf_append(b, num, proto_num_format_f64(v, num)))
            return PROTO_ENOMEM;
        if (e == end)
            break;
        p = e + 1;
    }
    return arr ? put(b, "]") : 0;
}

static int put_globs(proto_buf *b, const globs *g)
{
    if (put(b, "["))
        return PROTO_ENOMEM;
    for (size_t i = 0; i < g->n; i++)
        if ((i && put(b, ",")) || proto_st_json_string(b, g->v[i], strlen(g->v[i])))
            return PROTO_ENOMEM;
    return put(b, "]");
}

/* The rules' text without white space outside strings. */
static int put_compact(proto_buf *b, const char *s, size_t n)
{
    if (proto_buf_reserve(b, n))
        return PROTO_ENOMEM;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < n)
                b->data[b->len++] = c, c = s[++i];
            else if (c == '"')
                in_str = false;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (c == '"') {
            in_str = true;
        }
        b->data[b->len++] = c;
    }
    return 0;
}

int proto_policy_json(const proto_policy *p, proto_buf *out)
{
    static char star_s[] = "*";
    static char *star_v[] = { star_s };
    static const globs star = { star_v, 1 };
    if (put(out, "{") || put_attrs(out, &p->tmpl.attrs))
        return PROTO_ENOMEM;
    if (p->tmpl.min_text && (put(out, ",\"input_min\":") || put_bound_text(out, p->tmpl.min_text)))
        return PROTO_ENOMEM;
    if (p->tmpl.max_text && (put(out, ",\"input_max\":") || put_bound_text(out, p->tmpl.max_text)))
        return PROTO_ENOMEM;
    if (put(out, ",\"include\":") || put_globs(out, p->include_given ? &p->include : &star) ||
        put(out, ",\"exclude\":") || put_globs(out, &p->exclude) || put(out, ",\"rules\":") ||
        (p->rules_text ? put_compact(out, p->rules_text, p->rules_len) : put(out, "[]")) ||
        put(out, "}"))
        return PROTO_ENOMEM;
    return 0;
}
