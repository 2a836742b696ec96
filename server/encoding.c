/* Content-Encoding of request bodies and JSON answers (encoding.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "encoding.h"

struct srv_inflate {
    z_stream z;
    bool end;      /* the compressed stream is complete */
    char name[16]; /* the request's Content-Encoding */
};

srv_inflate *srv_inflate_new(const char *encoding, int *rc)
{
    if (strcasecmp(encoding, "gzip") != 0 && strcasecmp(encoding, "x-gzip") != 0 &&
        strcasecmp(encoding, "deflate") != 0) {
        *rc = -1;
        return NULL;
    }
    srv_inflate *z = calloc(1, sizeof *z);
    /* 32 + MAX_WBITS: gzip or zlib framing, detected from the header. */
    if (!z || inflateInit2(&z->z, 32 + MAX_WBITS) != Z_OK) {
        free(z);
        *rc = -2;
        return NULL;
    }
    snprintf(z->name, sizeof z->name, "%s", encoding);
    *rc = 0;
    return z;
}

const char *srv_inflate_name(const srv_inflate *z) { return z->name; }

int srv_inflate_feed(srv_inflate *zi, const char *data, size_t n,
                     int (*sink)(void *cls, const char *data, size_t n), void *cls,
                     qdq_error *err)
{
    z_stream *z = &zi->z;
    char out[64 << 10];
    z->next_in = (Bytef *)(uintptr_t)data;
    z->avail_in = (uInt)n;
    while (z->avail_in > 0 && !zi->end) {
        z->next_out = (Bytef *)out;
        z->avail_out = sizeof out;
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return qdq_fail(err, QDQ_EINVAL, "Content-Encoding %s: the body is not valid "
                            "compressed data (%s)", zi->name, z->msg ? z->msg : "zlib error");
        size_t got = sizeof out - z->avail_out;
        if (got && sink(cls, out, got))
            return -1; /* over a limit, or the content is bad: stop inflating */
        if (rc == Z_STREAM_END)
            zi->end = true;
        else if (got == 0 && rc == Z_BUF_ERROR)
            break;
    }
    if (zi->end && z->avail_in > 0)
        return qdq_fail(err, QDQ_EINVAL, "Content-Encoding %s: %u bytes follow the end of the "
                        "compressed data", zi->name, z->avail_in);
    return 0;
}

bool srv_inflate_complete(const srv_inflate *z) { return z->end; }

void srv_inflate_free(srv_inflate *z)
{
    if (!z)
        return;
    inflateEnd(&z->z);
    free(z);
}

/* The encoding Accept-Encoding prefers among gzip and deflate (q > 0), or NULL. */
static const char *pick_encoding(const char *accept)
{
    const char *best = NULL;
    double best_q = 0;
    const char *p = accept;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",;");
        double q = 1;
        const char *semi = p + n;
        if (*semi == ';') {
            const char *qs = strstr(semi, "q=");
            const char *next = strchr(semi, ',');
            if (qs && (!next || qs < next))
                q = strtod(qs + 2, NULL);
        }
        const char *name = NULL;
        if (n == 4 && strncasecmp(p, "gzip", 4) == 0)
            name = "gzip";
        else if (n == 7 && strncasecmp(p, "deflate", 7) == 0)
            name = "deflate";
        if (name && q > best_q)
            best = name, best_q = q;
        p += n;
        while (*p && *p != ',')
            p++;
    }
    return best;
}

const char *srv_compress(const char *accept_encoding, const char *body, size_t len, char **out,
                         size_t *out_len)
{
    if (!accept_encoding || !body || len < 1024 || len > UINT32_MAX)
        return NULL;
    const char *enc = pick_encoding(accept_encoding);
    if (!enc)
        return NULL;
    z_stream z = { 0 };
    if (deflateInit2(&z, 1, Z_DEFLATED, strcmp(enc, "gzip") == 0 ? 16 + MAX_WBITS : MAX_WBITS,
                     8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    char *o = malloc(cap);
    if (!o) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)body;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)o;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        free(o);
        return NULL;
    }
    *out = o;
    *out_len = z.total_out;
    deflateEnd(&z);
    return enc;
}
