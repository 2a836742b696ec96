/*
 * KServe v2 over gRPC, the requests (v2_grpc.h): ModelInferRequest -> proto_v2_request, and the
 * small RPCs' requests, unpacked by protobuf-c. The answers are in v2_grpc_reply.c.
 *
 * Copies. protobuf-c copies every bytes field it unpacks, so a 64 MiB tensor in
 * raw_input_contents would be copied once more than on the HTTP binary route. So the entries of
 * raw_input_contents (field 7 of the top-level message) are found by a scan of the top level
 * first and cut out; protobuf-c unpacks the rest (names, shapes, parameters: small), and the
 * input tensor is used where it lies in the caller's buffer.
 *
 * Memory. protobuf-c allocates a struct for every submessage, so a message of many tiny entries
 * would need many times its size; its allocator here keeps a budget (2 x the message + 1 MiB)
 * and fails the unpack beyond it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_predict_v2.pb-c.h"
#include "health.pb-c.h"
#include "v2_grpc.h"

#define MAX_RAW 8                 /* raw_input_contents entries kept (the model has 3 inputs) */
#define SLACK ((size_t)1 << 20)   /* the unpack budget beyond 2 x the message */
#define HDR 16                    /* the budget allocator's size header (keeps 16-byte alignment) */

static const char *const in_names[3] = { "input", "input_min", "input_max" };

/* ---- protobuf-c's allocator, with a budget ---- */

typedef struct budget {
    size_t left;
    bool exhausted;
} budget;

static void *budget_alloc(void *data, size_t n)
{
    budget *b = data;
    if (n > b->left || b->left - n < HDR) {
        b->exhausted = true;
        return NULL;
    }
    size_t *p = malloc(n + HDR);
    if (!p)
        return NULL;
    p[0] = n;
    b->left -= n + HDR;
    return (char *)p + HDR;
}

static void budget_free(void *data, void *ptr)
{
    budget *b = data;
    if (!ptr)
        return;
    size_t *p = (size_t *)(void *)((char *)ptr - HDR);
    b->left += p[0] + HDR;
    free(p);
}

/* Unpacks a message of type d within the budget; NULL with *exhausted set when over it. */
static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const char *msg,
                                size_t len, ProtobufCAllocator *alloc, budget *b)
{
    b->left = (len > SIZE_MAX / 4 ? SIZE_MAX / 2 : 2 * len) + SLACK;
    b->exhausted = false;
    *alloc = (ProtobufCAllocator){ budget_alloc, budget_free, b };
    return protobuf_c_message_unpack(d, alloc, len,
                                     len ? (const uint8_t *)msg : (const uint8_t *)"");
}

/* ---- the top level of the wire format ---- */

/* A varint at p[*i, n): 0 with *i past it, or -1 when it is cut off or longer than 10 bytes. */
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (int s = 0; s < 70 && *i < n; s += 7) {
        uint8_t b = p[(*i)++];
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

typedef struct span {
    size_t off, len; /* an entry of raw_input_contents: its bytes in the message */
} span;

/*
 * Walks the top-level fields of m[0, len) (a whole message when len is its length; a prefix
 * otherwise, when the walk stops at the first field that does not fit). Each entry of field 7
 * (raw_input_contents) is recorded in spans (the first MAX_RAW; *nraw counts them all); when rest
 * is not NULL, every other field's bytes are appended to it. Returns the offset where the walk
 * stopped (len when it reached the end), or SIZE_MAX for a field that cannot be (a bad tag, a
 * group, a length past the end when the message is whole).
 */
static size_t walk(const uint8_t *m, size_t len, bool whole, span *spans, size_t *nraw,
                   proto_buf *rest, int *rc)
{
    size_t i = 0, copied = 0;
    *nraw = 0;
    *rc = 0;
    while (i < len) {
        size_t start = i;
        uint64_t tag, v;
        if (varint(m, len, &i, &tag))
            return whole ? SIZE_MAX : start;
        uint64_t field = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (field == 0 || field > 0x1fffffff)
            return SIZE_MAX;
        size_t data_off = 0, data_len = 0;
        switch (wt) {
        case 0:
            if (varint(m, len, &i, &v))
                return whole ? SIZE_MAX : start;
            break;
        case 1:
            if (len - i < 8)
                return whole ? SIZE_MAX : start;
            i += 8;
            break;
        case 5:
            if (len - i < 4)
                return whole ? SIZE_MAX : start;
            i += 4;
            break;
        case 2:
            if (varint(m, len, &i, &v))
                return whole ? SIZE_MAX : start;
            if (v > len - i)
                return whole ? SIZE_MAX : start;
            data_off = i, data_len = (size_t)v;
            i += (size_t)v;
            break;
        default: /* groups (3, 4) and the undefined 6, 7 */
            return SIZE_MAX;
        }
        if (field != 7)
            continue;
        if (wt != 2)
            return SIZE_MAX;
        if (*nraw < MAX_RAW)
            spans[*nraw] = (span){ data_off, data_len };
        ++*nraw;
        if (rest) {
            if (start > copied && proto_buf_append(rest, m + copied, start - copied)) {
                *rc = PROTO_ENOMEM;
                return SIZE_MAX;
            }
            copied = i;
        }
    }
    if (rest && *nraw && len > copied && proto_buf_append(rest, m + copied, len - copied)) {
        *rc = PROTO_ENOMEM;
        return SIZE_MAX;
    }
    return len;
}

/* ---- decoding ---- */

static int parse_datatype(const char *s, const char *name, qdq_dtype *dt, qdq_error *err)
{
    if (!s || !*s)
        return qdq_fail(err, QDQ_EINVAL, "inputs '%s': missing datatype", name);
    static const char *const names[] = { "FP32", "FP64", "FP16", "BF16" };
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *dt = (qdq_dtype)i;
            return 0;
        }
    return qdq_fail(err, QDQ_EINVAL, "inputs '%s': datatype '%.32s' is not supported (FP32, FP64, "
                    "FP16, BF16)", name, s);
}

/* A tensor's shape: dims, rank and element count, within the limits (kserve.c's rules). */
static int parse_shape(const Inference__ModelInferRequest__InferInputTensor *t, const char *name,
                       const proto_limits *lim, int64_t *dims, int *rank, uint64_t *count,
                       qdq_error *err)
{
    int max_rank = lim && lim->max_rank ? lim->max_rank : PROTO_MAX_RANK;
    if (t->n_shape > (size_t)max_rank)
        return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': rank %zu is over the limit of %d", name,
                        t->n_shape, max_rank);
    uint64_t c = 1;
    for (size_t i = 0; i < t->n_shape; i++) {
        int64_t d = t->shape[i];
        if (d < 0 || d > ((int64_t)1 << 62))
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': shape[%zu] is not a non-negative "
                            "integer", name, i);
        dims[i] = d;
        if (d && c > UINT64_MAX / (uint64_t)d)
            return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': the shape's element count "
                            "overflows", name);
        c *= (uint64_t)d;
    }
    if (lim && lim->max_elements && c > lim->max_elements)
        return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': %llu elements is over the limit of %llu",
                        name, (unsigned long long)c, (unsigned long long)lim->max_elements);
    *rank = (int)t->n_shape;
    *count = c;
    return 0;
}

/* The request's parameters, as the v2 model takes them from any transport. */
static int parse_parameters(const Inference__ModelInferRequest *m, proto_v2_request *out,
                            qdq_error *err)
{
    bool ignored = false; /* binary_data_output: gRPC answers every output as raw bytes */
    for (size_t i = 0; i < m->n_parameters; i++) {
        const Inference__InferParameter *p = m->parameters[i]->value;
        proto_v2_value v = { PROTO_V2_VAL_OTHER, false, 0, "" };
        switch (p ? p->parameter_choice_case
                  : INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE__NOT_SET) {
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM:
            v.kind = PROTO_V2_VAL_BOOL, v.b = p->bool_param;
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM:
            v.kind = PROTO_V2_VAL_NUMBER, v.d = (double)p->int64_param;
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM: /* Triton's */
            v.kind = PROTO_V2_VAL_NUMBER, v.d = (double)p->uint64_param;
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM: /* Triton's */
            v.kind = PROTO_V2_VAL_NUMBER, v.d = p->double_param;
            break;
        case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM:
            v.kind = PROTO_V2_VAL_STRING, v.s = p->string_param ? p->string_param : "";
            break;
        default:
            break;
        }
        int rc = proto_v2_parameter(out, m->parameters[i]->key, &v, &ignored, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The requested outputs; every one is answered in raw_output_contents. */
static int parse_outputs(const Inference__ModelInferRequest *m, proto_v2_request *out,
                         qdq_error *err)
{
    for (size_t i = 0; i < m->n_outputs; i++) {
        const Inference__ModelInferRequest__InferRequestedOutputTensor *o = m->outputs[i];
        const char *name = o->name;
        int k;
        if (!*name)
            return qdq_fail(err, QDQ_EINVAL, "outputs: every entry needs a \"name\"");
        if (proto_v2_output(out, name, &k, err))
            return err->code;
        for (size_t j = 0; j < o->n_parameters; j++) {
            const char *pk = o->parameters[j]->key;
            const Inference__InferParameter *pv = o->parameters[j]->value;
            if (strcmp(pk, "binary_data") != 0)
                return qdq_fail(err, QDQ_EINVAL, "outputs '%s': unknown parameter '%.64s' (only "
                                "binary_data)", name, pk);
            if (!pv || pv->parameter_choice_case !=
                           INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM)
                return qdq_fail(err, QDQ_EINVAL, "outputs '%s': binary_data must be true or "
                                "false", name);
        }
    }
    proto_v2_outputs_default(out);
    out->binary_outputs = out->outputs; /* gRPC answers every output as raw bytes */
    return 0;
}

/* Whether a tensor's contents hold any field but the one (fp32 or fp64) its datatype uses. */
static bool other_contents(const Inference__InferTensorContents *c, qdq_dtype dt)
{
    return c->n_bool_contents || c->n_int_contents || c->n_int64_contents ||
           c->n_uint_contents || c->n_uint64_contents || c->n_bytes_contents ||
           (dt != QDQ_FLOAT32 && c->n_fp32_contents) || (dt != QDQ_FLOAT64 && c->n_fp64_contents);
}

/* The request, unpacked: its inputs checked and their data placed (raw spans or contents). */
static int interpret(const Inference__ModelInferRequest *m, char *msg, const span *spans,
                     size_t nraw, const proto_limits *lim, proto_v2_request *out, qdq_error *err)
{
    int rc;
    if (strcmp(m->model_name, PROTO_V2_MODEL_NAME) != 0)
        return qdq_fail(err, PROTO_ENOTFOUND, "unknown model or version: '%.64s' (this server "
                        "serves %s, version %s)", m->model_name, PROTO_V2_MODEL_NAME,
                        PROTO_V2_MODEL_VERSION);
    if (*m->model_version && strcmp(m->model_version, PROTO_V2_MODEL_VERSION) != 0)
        return qdq_fail(err, PROTO_ENOTFOUND, "unknown model or version: '%s' version '%.32s' "
                        "(this server serves %s, version %s)", m->model_name, m->model_version,
                        PROTO_V2_MODEL_NAME, PROTO_V2_MODEL_VERSION);
    if (*m->id) {
        if (strlen(m->id) >= sizeof out->id)
            return qdq_fail(err, QDQ_EINVAL, "id must be a string of at most %zu bytes",
                            sizeof out->id - 1);
        for (const unsigned char *u = (const unsigned char *)m->id; *u;) {
            size_t n = proto_utf8_len(u, SIZE_MAX);
            if (!n)
                return qdq_fail(err, QDQ_EINVAL, "id is not valid UTF-8");
            u += n;
        }
        snprintf(out->id, sizeof out->id, "%s", m->id);
        out->has_id = true;
    }
    if ((rc = parse_parameters(m, out, err)) || (rc = parse_outputs(m, out, err)))
        return rc;
    if (m->n_inputs == 0)
        return qdq_fail(err, QDQ_EINVAL, "missing inputs (an array with the input \"input\")");
    const Inference__ModelInferRequest__InferInputTensor *by_name[3] = { NULL, NULL, NULL };
    for (size_t i = 0; i < m->n_inputs; i++) {
        const char *name = m->inputs[i]->name;
        if (!*name)
            return qdq_fail(err, QDQ_EINVAL, "inputs: every entry needs a \"name\"");
        int k = 0;
        while (k < 3 && strcmp(name, in_names[k]) != 0)
            k++;
        if (k == 3)
            return qdq_fail(err, QDQ_EINVAL, "unknown input '%.64s' (the model's inputs: input, "
                            "input_min, input_max)", name);
        if (by_name[k])
            return qdq_fail(err, QDQ_EINVAL, "input '%s' is given twice", name);
        by_name[k] = m->inputs[i];
    }
    if (!by_name[0])
        return qdq_fail(err, QDQ_EINVAL, "missing input 'input'");
    if (nraw && nraw != m->n_inputs)
        return qdq_fail(err, QDQ_EINVAL, "raw_input_contents has %zu entries but inputs has %zu "
                        "(one entry per input, in the order of inputs)", nraw, m->n_inputs);
    qdq_dtype dt;
    if ((rc = parse_datatype(by_name[0]->datatype, "input", &dt, err)))
        return rc;
    out->req.dtype = dt;
    size_t es = qdq_dtype_size(dt);
    int input_at = -1; /* the index of "input" when it comes raw: borrowed last */
    for (size_t i = 0; i < m->n_inputs; i++) {
        const Inference__ModelInferRequest__InferInputTensor *t = m->inputs[i];
        const char *name = t->name;
        int k = strcmp(name, "input") == 0 ? 0 : strcmp(name, "input_min") == 0 ? 1 : 2;
        qdq_dtype tdt;
        if ((rc = parse_datatype(t->datatype, name, &tdt, err)))
            return rc;
        if (tdt != dt)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': datatype %s differs from input's %s",
                            name, proto_dtype_kserve(tdt), proto_dtype_kserve(dt));
        int64_t dims[PROTO_MAX_RANK];
        int rank = 0;
        uint64_t count = 0;
        if ((rc = parse_shape(t, name, lim, dims, &rank, &count, err)))
            return rc;
        if (k > 0 && rank > 1)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s' must have shape [], [1] or [channels], "
                            "not rank %d", name, rank);
        if (t->n_parameters)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': unknown parameter '%.64s' (inputs "
                            "take none)", name, t->parameters[0]->key);
        if (count > SIZE_MAX / es)
            return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': the shape's byte count overflows",
                            name);
        size_t bytes = (size_t)count * es;
        const Inference__InferTensorContents *c = t->contents;
        if (nraw && c)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': give contents or raw_input_contents, "
                            "not both", name);
        if (!nraw && !c && count)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': missing data (contents, or "
                            "raw_input_contents)", name);
        if (c && other_contents(c, dt))
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': contents for %s data must be %s",
                            name, proto_dtype_kserve(dt),
                            dt == QDQ_FLOAT32   ? "fp32_contents"
                            : dt == QDQ_FLOAT64 ? "fp64_contents"
                                                : "raw_input_contents (contents has no field "
                                                  "for it)");
        if (nraw && spans[i].len != bytes)
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': raw_input_contents[%zu] has %zu bytes "
                            "but shape and datatype need %zu bytes", name, i, spans[i].len,
                            bytes);
        if (c) {
            size_t got = dt == QDQ_FLOAT32 ? c->n_fp32_contents : c->n_fp64_contents;
            if (got != count)
                return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data has %zu elements but its shape "
                                "needs %llu", name, got, (unsigned long long)count);
        }
        if (k == 0) {
            out->req.rank = rank;
            out->req.count = count;
            memcpy(out->req.dims, dims, (size_t)rank * sizeof dims[0]);
            out->req.form = nraw ? PROTO_FORM_RAW : PROTO_FORM_DATA;
            if (nraw) {
                input_at = (int)i;
                continue;
            }
        }
        void *buf = malloc(bytes + 1);
        if (!buf)
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for inputs '%s'", name);
        if (nraw)
            memcpy(buf, msg + spans[i].off, bytes);
        else if (count)
            memcpy(buf, dt == QDQ_FLOAT32 ? (void *)c->fp32_contents : (void *)c->fp64_contents,
                   bytes);
        if (k == 0)
            out->req.data = buf;
        else if (k == 1)
            out->req.min = buf, out->req.n_min = count;
        else
            out->req.max = buf, out->req.n_max = count;
    }
    if (out->req.attrs.range_given && (!out->req.min || !out->req.max))
        return qdq_fail(err, QDQ_EINVAL, "range_given is true but input %s is missing",
                        out->req.min ? "input_max" : "input_min");
    if (input_at >= 0) {
        /* Typed access needs alignment: slide the bytes down onto the item size. What lies below
         * (field prefixes, other fields, the bounds) has been copied out already, and the
         * caller's buffer starts aligned at or below msg, so this stays inside it. */
        char *p = msg + spans[input_at].off;
        size_t skew = (uintptr_t)p % es;
        if (skew) {
            memmove(p - skew, p, out->req.count * es);
            p -= skew;
        }
        out->req.data = p;
        out->req.data_borrowed = true;
    }
    return 0;
}

int proto_v2_grpc_decode(char *msg, size_t len, const proto_limits *lim, proto_v2_request *out,
                         qdq_error *err)
{
    proto_v2_request_init(out);
    span spans[MAX_RAW];
    size_t nraw = 0;
    proto_buf rest = { 0 };
    int rc = 0;
    size_t end = walk((const uint8_t *)msg, len, true, spans, &nraw, &rest, &rc);
    if (end == SIZE_MAX) {
        proto_buf_free(&rest);
        return rc ? qdq_fail(err, rc, "out of memory decoding the ModelInferRequest")
                  : qdq_fail(err, QDQ_EINVAL, "invalid ModelInferRequest: not a protobuf message "
                             "of that type");
    }
    if (nraw > MAX_RAW) {
        proto_buf_free(&rest);
        return qdq_fail(err, QDQ_EINVAL, "raw_input_contents has %zu entries; the model has 3 "
                        "inputs", nraw);
    }
    /* Without raw entries nothing was cut out: protobuf-c reads the message itself. */
    const char *body = nraw ? rest.data : msg;
    size_t blen = nraw ? rest.len : len;
    budget b;
    ProtobufCAllocator alloc;
    Inference__ModelInferRequest *m = (Inference__ModelInferRequest *)unpack(
        &inference__model_infer_request__descriptor, body, blen, &alloc, &b);
    if (!m) {
        rc = b.exhausted ? qdq_fail(err, PROTO_ETOOBIG, "decoding the ModelInferRequest needs more "
                                    "than %zu bytes of memory (2 x its size + 1 MiB)",
                                    2 * blen + SLACK)
                         : qdq_fail(err, QDQ_EINVAL, "invalid ModelInferRequest: not a protobuf "
                                    "message of that type");
    } else {
        rc = interpret(m, msg, spans, nraw, lim, out, err);
        inference__model_infer_request__free_unpacked(m, &alloc);
    }
    proto_buf_free(&rest);
    if (rc)
        proto_v2_request_clear(out);
    return rc;
}

/* ---- where to put a message, and the small requests ---- */

size_t proto_v2_grpc_input_skew(const char *head, size_t n)
{
    const uint8_t *m = (const uint8_t *)head;
    size_t i = 0, best_off = 0, best_len = 0;
    while (i < n) {
        uint64_t tag, v;
        if (varint(m, n, &i, &tag))
            break;
        unsigned wt = (unsigned)(tag & 7);
        if (wt == 0 && varint(m, n, &i, &v) == 0)
            continue;
        if (wt == 1 || wt == 5) {
            i += wt == 1 ? 8 : 4;
            continue;
        }
        if (wt != 2 || varint(m, n, &i, &v))
            break;
        if (tag >> 3 == 7 && v >= best_len)
            best_off = i, best_len = (size_t)v;
        if (v >= n - i)
            break;
        i += (size_t)v;
    }
    return best_off % 8;
}

int proto_v2_grpc_model_check(const char *msg, size_t len, qdq_error *err)
{
    budget b;
    ProtobufCAllocator alloc;
    Inference__ModelReadyRequest *m = (Inference__ModelReadyRequest *)unpack(
        &inference__model_ready_request__descriptor, msg, len, &alloc, &b);
    if (!m)
        return qdq_fail(err, QDQ_EINVAL, "invalid request: not a protobuf message of its type");
    int rc = 0;
    if (strcmp(m->name, PROTO_V2_MODEL_NAME) != 0 ||
        (*m->version && strcmp(m->version, PROTO_V2_MODEL_VERSION) != 0))
        rc = qdq_fail(err, PROTO_ENOTFOUND, "unknown model or version: '%.64s'%s%.32s%s (this "
                      "server serves %s, version %s)", m->name, *m->version ? " version '" : "",
                      m->version, *m->version ? "'" : "", PROTO_V2_MODEL_NAME,
                      PROTO_V2_MODEL_VERSION);
    inference__model_ready_request__free_unpacked(m, &alloc);
    return rc;
}

int proto_v2_grpc_health_check(const char *msg, size_t len, qdq_error *err)
{
    budget b;
    ProtobufCAllocator alloc;
    Grpc__Health__V1__HealthCheckRequest *m = (Grpc__Health__V1__HealthCheckRequest *)unpack(
        &grpc__health__v1__health_check_request__descriptor, msg, len, &alloc, &b);
    if (!m)
        return qdq_fail(err, QDQ_EINVAL, "invalid request: not a protobuf message of its type");
    int rc = 0;
    if (*m->service && strcmp(m->service, "inference.GRPCInferenceService") != 0)
        rc = qdq_fail(err, PROTO_ENOTFOUND, "unknown service '%.64s' (this server has "
                      "inference.GRPCInferenceService, or \"\" for the whole server)", m->service);
    grpc__health__v1__health_check_request__free_unpacked(m, &alloc);
    return rc;
}
