/*
 * Content-Encoding: gzip and deflate request bodies (inflated as they arrive, so the size
 * limits apply to the inflated bytes and a small bomb cannot grow memory), and gzip or deflate
 * JSON responses when Accept-Encoding asks.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "srv.h"

int srv_inflate_begin(srv_req *r, const char *encoding)
{
    if (strcasecmp(encoding, "gzip") != 0 && strcasecmp(encoding, "x-gzip") != 0 &&
        strcasecmp(encoding, "deflate") != 0)
        return -1;
    z_stream *z = calloc(1, sizeof *z);
    /* 32 + MAX_WBITS: gzip or zlib framing, detected from the header. */
    if (!z || inflateInit2(z, 32 + MAX_WBITS) != Z_OK) {
        free(z);
        return -2;
    }
    r->zin = z;
    snprintf(r->encoding, sizeof r->encoding, "%s", encoding);
    return 0;
}

int srv_inflate_feed(srv_req *r, const char *data, size_t n,
                     void (*sink)(srv_req *r, const char *data, size_t n))
{
    z_stream *z = r->zin;
    char out[64 << 10];
    z->next_in = (Bytef *)(uintptr_t)data;
    z->avail_in = (uInt)n;
    while (z->avail_in > 0 && !r->zin_end) {
        z->next_out = (Bytef *)out;
        z->avail_out = sizeof out;
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            snprintf(r->fail_msg, sizeof r->fail_msg,
                     "Content-Encoding %s: the body is not valid compressed data (%s)",
                     r->encoding, z->msg ? z->msg : "zlib error");
            r->fail_http = 400;
            return -1;
        }
        size_t got = sizeof out - z->avail_out;
        if (got)
            sink(r, out, got);
        if (r->fail_http || r->fail_code)
            return -1; /* over a limit, or the content is bad: stop inflating */
        if (rc == Z_STREAM_END)
            r->zin_end = true;
        else if (got == 0 && rc == Z_BUF_ERROR)
            break;
    }
    if (r->zin_end && z->avail_in > 0) {
        r->fail_http = 400;
        snprintf(r->fail_msg, sizeof r->fail_msg,
                 "Content-Encoding %s: %u bytes follow the end of the compressed data",
                 r->encoding, z->avail_in);
        return -1;
    }
    return 0;
}

int srv_inflate_end(srv_req *r)
{
    if (!r->zin)
        return 0;
    int ok = r->zin_end;
    inflateEnd(r->zin);
    free(r->zin);
    r->zin = NULL;
    return ok ? 0 : -1;
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

void srv_compress_response(srv_req *r, const char *accept_encoding)
{
    if (!accept_encoding || !r->body || r->body_len < 1024 || r->body_free)
        return;
    const char *enc = pick_encoding(accept_encoding);
    if (!enc)
        return;
    z_stream z = { 0 };
    if (deflateInit2(&z, 1, Z_DEFLATED, strcmp(enc, "gzip") == 0 ? 16 + MAX_WBITS : MAX_WBITS,
                     8, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    uLong cap = deflateBound(&z, (uLong)r->body_len);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return;
    }
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->body_len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (r->body_len > UINT32_MAX || deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        free(out);
        return;
    }
    free(r->body);
    r->body = out;
    r->body_len = z.total_out;
    deflateEnd(&z);
    srv_req_header(r, "Content-Encoding", enc, strlen(enc));
    srv_req_header(r, "Vary", "Accept-Encoding", 15);
}
