/*
 * libFuzzer target: the server's own Content-Encoding code (server/encoding.c, linked as it is
 * built: srv_inflate_begin / srv_inflate_feed / srv_inflate_end on a srv_req, and
 * srv_compress_response), with the sink doing what server/http.c's consume does: count the
 * inflated bytes against the body limit and record 413 once over it.
 *
 * Input: a request body as it comes over the wire (gzip or zlib-framed deflate; the seeds are
 * small .gz and .zz files). Each input is fed three ways: whole, in chunks of a size derived from
 * the input, and a byte at a time (up to 512 bytes). Asserted:
 *   - all three give the same result (accepted, refused as bad data, or over the limit) and the
 *     same inflated bytes; a refusal leaves HTTP 400 or 413 and a message;
 *   - they agree with zlib's own one-shot inflation of the same bytes (the reference): the
 *     same output, and success exactly when the stream ends with nothing after it;
 *   - the inflated total stops within one 64 KiB step of the limit (a bomb is cut off, not
 *     inflated to the end);
 *   - srv_inflate_end frees everything and reports an incomplete stream.
 * Then the round trip: the input as a JSON response body, compressed by srv_compress_response
 * with an Accept-Encoding header taken from the input, inflates back to the same bytes.
 *
 * srv_req_header (server/respond.c, which needs libmicrohttpd) is replaced by a stub that records
 * the header; nothing else of the server is linked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "srv.h"

#define REQUIRE(cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_inflate: %s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The body limit for these runs (the server's --max-body-bytes; small to reach it often). */
#define LIMIT (256u << 10)
/* Output kept for comparison: a little over the limit. */
#define KEEP (LIMIT + (128u << 10))

/* The stub of server/respond.c's srv_req_header: "Name: value\n" into r->hdrs. */
void srv_req_header(srv_req *r, const char *name, const char *value, size_t value_len)
{
    proto_buf_append(&r->hdrs, name, strlen(name));
    proto_buf_append(&r->hdrs, ": ", 2);
    proto_buf_append(&r->hdrs, value, value_len);
    proto_buf_append(&r->hdrs, "\n", 1);
}

/* Output buffers, reused (large allocations are slow under ASan): one per way of feeding. */
static unsigned char bufs[5][KEEP];

/* What the sink saw for one request. */
static struct {
    unsigned char *out;
    size_t len;      /* bytes kept (<= KEEP) */
    uint64_t total;  /* bytes the sink was handed */
} S;

/* server/http.c consume(): the limit first, then the bytes are stored. */
static void sink(srv_req *r, const char *data, size_t n)
{
    r->body_decoded += n;
    S.total += n;
    if (r->body_decoded > LIMIT) {
        if (!r->fail_http && !r->fail_code) {
            r->fail_http = 413;
            snprintf(r->fail_msg, sizeof r->fail_msg, "body is over the limit after inflating");
        }
        return;
    }
    size_t k = n < KEEP - S.len ? n : KEEP - S.len;
    memcpy(S.out + S.len, data, k);
    S.len += k;
}

enum { OK, BAD, TOO_BIG };

typedef struct result {
    int what;
    size_t len;
    unsigned char *out;
    bool stream_bad; /* reference only: the bytes are not one complete stream */
} result;

/* One request: begin, feed in pieces of `chunk` bytes (the server's receive loop), end. */
static result feed(const char *enc, const uint8_t *data, size_t size, size_t chunk, int slot)
{
    srv_req r;
    memset(&r, 0, sizeof r);
    S.out = bufs[slot];
    S.len = 0;
    S.total = 0;
    REQUIRE(srv_inflate_begin(&r, enc) == 0, "begin(%s)", enc);
    REQUIRE(r.zin != NULL, "no stream after begin");
    bool failed = false;
    for (size_t at = 0; at < size && !failed;) {
        size_t n = size - at < chunk ? size - at : chunk;
        if (srv_inflate_feed(&r, (const char *)data + at, n, sink)) {
            REQUIRE(r.fail_http == 400 || r.fail_http == 413, "feed failed with HTTP %d",
                    r.fail_http);
            REQUIRE(r.fail_msg[0], "feed failed without a message");
            failed = true;
        }
        at += n;
        /* The server stops inflating a failed request (receive() drops the rest). */
    }
    REQUIRE(S.total <= (uint64_t)LIMIT + (64u << 10),
            "inflated %llu bytes past a limit of %u", (unsigned long long)S.total, LIMIT);
    bool ended = r.zin_end;
    int end = srv_inflate_end(&r);
    REQUIRE(r.zin == NULL, "stream left after end");
    REQUIRE(srv_inflate_end(&r) == 0, "a second end is not a no-op");
    REQUIRE((end == 0) == ended, "end says %d, the stream %s", end,
            ended ? "ended" : "did not end");
    result res = { OK, S.len, S.out, false };
    if (r.fail_http == 413)
        res.what = TOO_BIG;
    else if (failed || end)
        res.what = BAD;
    proto_buf_free(&r.hdrs);
    return res;
}

/* zlib's answer for the same bytes: inflate over everything at once, counting all output. */
static result reference(const uint8_t *data, size_t size)
{
    result res = { BAD, 0, bufs[0], true };
    z_stream z;
    memset(&z, 0, sizeof z);
    REQUIRE(inflateInit2(&z, 32 + MAX_WBITS) == Z_OK, "inflateInit2");
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    unsigned char tmp[64 << 10];
    uint64_t total = 0;
    int rc = Z_OK;
    while (rc == Z_OK && total <= LIMIT) {
        z.next_out = tmp;
        z.avail_out = sizeof tmp;
        rc = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof tmp - z.avail_out;
        total += got;
        size_t k = got < KEEP - res.len ? got : KEEP - res.len;
        memcpy(res.out + res.len, tmp, k);
        res.len += k;
        if (rc == Z_BUF_ERROR && got)
            rc = Z_OK;
    }
    if (total > LIMIT) {
        res.what = TOO_BIG;
        /* Whether the rest is a good stream is not known (nor needed): either is allowed. */
    } else if (rc == Z_STREAM_END && z.avail_in == 0) {
        res.what = OK;
        res.stream_bad = false;
    }
    inflateEnd(&z);
    return res;
}

static const char *what_name(int w) { return w == OK ? "ok" : w == BAD ? "bad" : "too big"; }

static void compare(const char *how, const result *a, const result *ref)
{
    /* Over the limit with bad data somewhere: the server may find either first (a call's
     * output is dropped when that call also reports the data error). */
    bool either = ref->what == TOO_BIG && ref->stream_bad && a->what == BAD;
    REQUIRE(a->what == ref->what || either, "%s: %s, zlib says %s", how, what_name(a->what),
            what_name(ref->what));
    /* Output up to the limit is the same (after the limit the server discards it). */
    size_t n = a->len < ref->len ? a->len : ref->len;
    if (n > LIMIT)
        n = LIMIT;
    REQUIRE(memcmp(a->out, ref->out, n) == 0, "%s: inflated bytes differ from zlib's", how);
    if (a->what == OK)
        REQUIRE(a->len == ref->len, "%s: %zu bytes, zlib %zu", how, a->len, ref->len);
}

/* Compress as a JSON response would be, with this Accept-Encoding, and inflate it back. */
static void round_trip(const uint8_t *data, size_t size)
{
    char ae[128];
    size_t an = 0;
    while (an < size && an < 60 && data[an] != '\n' && data[an] != '\0')
        an++;
    memcpy(ae, data, an);
    ae[an] = '\0';
    size_t len = size < 1024 ? 1024 : size; /* smaller bodies are sent as they are */
    srv_req r;
    memset(&r, 0, sizeof r);
    r.body = malloc(len);
    for (size_t i = 0; i < len; i++)
        r.body[i] = size ? (char)data[i % size] : 'x';
    r.body_len = len;
    r.status = 200;
    char *orig = malloc(len);
    memcpy(orig, r.body, len);
    srv_compress_response(&r, ae);
    const char *enc = NULL;
    if (r.hdrs.len) {
        REQUIRE(r.hdrs.len < 200, "headers %zu bytes", r.hdrs.len);
        char h[256];
        memcpy(h, r.hdrs.data, r.hdrs.len);
        h[r.hdrs.len] = '\0';
        if (strstr(h, "Content-Encoding: gzip\n"))
            enc = "gzip";
        else if (strstr(h, "Content-Encoding: deflate\n"))
            enc = "deflate";
        REQUIRE(enc && strstr(h, "Vary: Accept-Encoding\n"), "headers: %s", h);
    }
    if (!enc) {
        REQUIRE(r.body_len == len && memcmp(r.body, orig, len) == 0,
                "body changed without a Content-Encoding (Accept-Encoding '%s')", ae);
    } else if (len <= LIMIT) {
        result back = feed(enc, (const uint8_t *)r.body, r.body_len, 1u << 20, 4);
        REQUIRE(back.what == OK && back.len == len && memcmp(back.out, orig, len) == 0,
                "compressed with %s (Accept-Encoding '%s') does not inflate back", enc, ae);
    }
    free(orig);
    free(r.body);
    proto_buf_free(&r.hdrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "gzip", "deflate", "x-gzip", "GZip", "DEFLATE" };
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size && i < 64; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    const char *enc = names[h % 5];
    size_t chunk = 1 + (size_t)((h >> 8) % 97);

    result ref = reference(data, size);
    result whole = feed(enc, data, size, size ? size : 1, 1);
    compare("whole", &whole, &ref);
    result pieces = feed(enc, data, size, chunk, 2);
    compare("chunks", &pieces, &ref);
    if (size <= 512) {
        result bytes = feed(enc, data, size, 1, 3);
        compare("bytes", &bytes, &ref);
    }

    /* Unknown encodings are refused before any state exists. */
    srv_req r;
    memset(&r, 0, sizeof r);
    REQUIRE(srv_inflate_begin(&r, "br") == -1 && r.zin == NULL, "br accepted");
    REQUIRE(srv_inflate_begin(&r, "identity") == -1 && r.zin == NULL, "identity accepted");

    round_trip(data, size);
    return 0;
}
