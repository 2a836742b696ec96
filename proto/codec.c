/* The exchange's dispatch to its codec, and what every codec shares (codec.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec_impl.h"

const char *proto_format_name(proto_format f)
{
    static const char *const names[PROTO_NFORMATS] = { "none", "json", "raw", "npy",
                                                       "v2_json", "v2_binary", "safetensors" };
    return (unsigned)f < PROTO_NFORMATS ? names[f] : "none";
}

void proto_answer_clear(proto_answer *a)
{
    if (a->from_file)
        close(a->fd);
    if (a->body) {
        if (a->release)
            a->release(a->release_cls);
        else
            free(a->body);
    }
    proto_buf_free(&a->headers);
    memset(a, 0, sizeof *a);
}

int proto_answer_header(proto_answer *a, const char *name, const char *value, size_t len)
{
    int rc = proto_buf_append(&a->headers, name, strlen(name));
    rc = rc || proto_buf_append(&a->headers, ": ", 2);
    rc = rc || proto_buf_append(&a->headers, value, len);
    rc = rc || proto_buf_append(&a->headers, "\n", 1);
    return rc ? PROTO_ENOMEM : 0;
}

int proto_args_nquery(const proto_args *a)
{
    return a->query ? a->query(a->cls, NULL, NULL) : 0;
}

/* The media type of a Content-Type or Accept value, without parameters, lower-cased. */
static void media_type(const char *v, char *out, size_t n)
{
    size_t k = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v && *v != ';' && *v != ',' && *v != ' ' && k + 1 < n; v++)
        out[k++] = (char)((*v >= 'A' && *v <= 'Z') ? *v + 32 : *v);
    out[k] = '\0';
}

static const char *header(const proto_args *a, const char *name)
{
    return a->header ? a->header(a->cls, name) : NULL;
}

/* The codec for a native request's Content-Type, or NULL. */
static const proto_codec *codec_for(const char *ctype)
{
    char mt[64];
    media_type(ctype ? ctype : "", mt, sizeof mt);
    if (strcmp(mt, "application/json") == 0)
        return &proto_codec_json;
    if (strcmp(mt, "application/octet-stream") == 0)
        return &proto_codec_raw;
    if (strcmp(mt, "application/x-npy") == 0)
        return &proto_codec_npy;
    if (strcmp(mt, "application/x-safetensors") == 0)
        return &proto_codec_safetensors;
    return NULL;
}

bool proto_args_stream(proto_kind kind, const proto_args *a)
{
    return kind == PROTO_KIND_QDQ && codec_for(header(a, "Content-Type")) ==
                                         &proto_codec_safetensors;
}

proto_xchg *proto_xchg_new(proto_kind kind, const proto_args *a, const proto_host *host,
                           qdq_error *err)
{
    proto_xchg *x = calloc(1, sizeof *x);
    if (!x) {
        qdq_fail(err, PROTO_ENOMEM, "out of memory for the request");
        return NULL;
    }
    x->host = host;
    x->length = a->length;
    proto_request_init(&x->req);
    const char *ac = header(a, "Accept");
    char mt[64];
    media_type(ac ? ac : "", mt, sizeof mt);
    x->want_json = strcmp(mt, "application/json") == 0; /* JSON first, before any other type */
    const proto_codec *c = &proto_codec_v2;
    if (kind == PROTO_KIND_QDQ) {
        const char *ct = header(a, "Content-Type");
        c = codec_for(ct);
        if (!c) {
            qdq_fail(err, PROTO_EMEDIA, "Content-Type '%.60s' is not supported: use "
                     "application/json, application/octet-stream, application/x-npy or "
                     "application/x-safetensors", ct ? ct : "(none)");
            return x;
        }
    }
    x->codec = c;
    x->format = c->format;
    c->begin(x, a, err);
    return x;
}

proto_format proto_xchg_format(const proto_xchg *x) { return x ? x->format : PROTO_FMT_NONE; }

uint64_t proto_xchg_body_limit(const proto_xchg *x)
{
    uint64_t lim = proto_xchg_streams(x) ? x->host->max_stream : x->host->lim.max_body;
    return lim ? lim : UINT64_MAX;
}

bool proto_xchg_streams(const proto_xchg *x)
{
    return x && x->codec && x->codec->format == PROTO_FMT_SAFETENSORS;
}

void proto_xchg_counts(const proto_xchg *x, uint64_t *tensors, uint64_t *bytes)
{
    *tensors = x ? x->st_tensors : 0;
    *bytes = x ? x->st_bytes : 0;
}

int proto_xchg_feed(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    if (err->code)
        return err->code;
    if (!x->codec)
        return qdq_fail(err, PROTO_EINTERNAL, "no codec for the request");
    return n ? x->codec->feed(x, data, n, err) : 0;
}

int proto_xchg_end(proto_xchg *x, proto_work *w, qdq_error *err)
{
    memset(w, 0, sizeof *w);
    if (err->code)
        return err->code;
    if (!x->codec)
        return qdq_fail(err, PROTO_EINTERNAL, "no codec for the request");
    return x->codec->end(x, w, err);
}

void proto_xchg_run(proto_xchg *x, int i, int n, qdq_error *err)
{
    if (x->codec && !err->code)
        x->codec->run(x, i, n, err);
}

int proto_xchg_answer(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    memset(a, 0, sizeof *a);
    if (err->code)
        return err->code;
    if (!x->codec)
        return qdq_fail(err, PROTO_EINTERNAL, "no codec for the request");
    int rc = x->codec->answer(x, a, err);
    if (rc)
        proto_answer_clear(a);
    return rc;
}

uint64_t proto_xchg_memory(const proto_xchg *x, uint64_t body)
{
    return x && x->codec ? x->codec->memory(x, body) : 0;
}

/* A buffer of a streamed tensor: the body, rounded up to its size class (an eighth at most),
 * with room for headers in front and behind. */
uint64_t proto_memory_buffer(uint64_t body)
{
    uint64_t m = body + body / 8 + 2 * PROTO_TENSOR_OFF;
    return m < body ? UINT64_MAX : m;
}

/* A body decoded from text (JSON): the text, the tensor read from it, and the answer's text,
 * each about as large as the body for float32 numbers. */
uint64_t proto_memory_text(uint64_t body)
{
    uint64_t m = 3 * body + (64u << 10);
    return body > UINT64_MAX / 4 ? UINT64_MAX : m;
}

uint64_t proto_xchg_elements(const proto_xchg *x, qdq_dtype *dtype)
{
    *dtype = x ? x->res.plan.dtype : QDQ_FLOAT32;
    return x ? x->elements : 0;
}

void proto_xchg_free(proto_xchg *x, bool sent)
{
    if (!x)
        return;
    if (x->v2) {
        proto_v2_request_clear(x->v2);
        free(x->v2);
    }
    proto_request_clear(&x->req);
    proto_result_clear(&x->res);
    proto_buf_free(&x->text);
    proto_answer_clear(&x->ans);
    free(x->item_stats);
    if (x->codec && x->codec->clear)
        x->codec->clear(x);
    if (x->tbase)
        x->host->buf_put(x->host->cls, x->tbase, x->tcap, sent);
    free(x);
}

int proto_xchg_buffer(proto_xchg *x, uint64_t bytes)
{
    if (bytes > SIZE_MAX - 2 * PROTO_TENSOR_OFF)
        return -1;
    x->tbase = x->host->buf_get(x->host->cls, PROTO_TENSOR_OFF + (size_t)bytes, &x->tcap);
    return x->tbase ? 0 : -1;
}

/* An answer's hold on a host buffer: given back (kept warm) when the answer is released. */
typedef struct held {
    const proto_host *host;
    void *p;
    size_t cap;
} held;

static void held_release(void *cls)
{
    held *h = cls;
    h->host->buf_put(h->host->cls, h->p, h->cap, true);
    free(h);
}

int proto_answer_take_buffer(proto_xchg *x, proto_answer *a, char *start, size_t len,
                             qdq_error *err)
{
    held *h = malloc(sizeof *h);
    if (!h)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory");
    *h = (held){ x->host, x->tbase, x->tcap };
    a->body = start;
    a->len = len;
    a->release = held_release;
    a->release_cls = h;
    x->tbase = NULL;
    x->tcap = 0;
    return 0;
}
