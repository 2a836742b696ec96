/*
 * libFuzzer target: the server's own Content-Encoding code (server/encoding.c, linked as it is
 * built: srv_inflate_new / srv_inflate_feed / srv_inflate_complete, and srv_compress), with the
 * sink doing what server/http.c's consume does: count the inflated bytes against the body limit
 * and record a failure (413) once over it.
 *
 * Input: a request body as it comes over the wire (gzip or zlib-framed deflate; the seeds are
 * small .gz and .zz files). Each input is fed three ways: whole, in chunks of a size derived from
 * the input, and a byte at a time (up to 512 bytes). Asserted:
 *   - all three give the same result (accepted, refused as bad data, or over the limit) and the
 *     same inflated bytes; a refusal leaves a 400 or 413 failure with a message;
 *   - they agree with zlib's own one-shot inflation of the same bytes (the reference): the
 *     same output, and success exactly when the stream ends with nothing after it;
 *   - the inflated total stops within one 64 KiB step of the limit (a bomb is cut off, not
 *     inflated to the end);
 *   - srv_inflate_complete tells whether the stream ended.
 * Then the round trip: the input as a JSON response body, compressed by srv_compress with an
 * Accept-Encoding header taken from the input, inflates back to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "encoding.h"
#include "status.h"

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

/* Output buffers, reused (large allocations are slow under ASan): one per way of feeding. */
static unsigned char bufs[5][KEEP];

/* What the sink saw for one request. */
static struct {
    unsigned char *out;
    size_t len;      /* bytes kept (<= KEEP) */
    uint64_t total;  /* bytes the sink was handed */
} S;

/* server/http.c consume(): the limit first, then the bytes are stored. */
typedef struct req {
    qdq_error err;
    uint64_t body_decoded;
} req;

static int sink(void *cls, const char *data, size_t n)
{
    req *r = cls;
    r->body_decoded += n;
    S.total += n;
    if (r->body_decoded > LIMIT)
        return qdq_fail(&r->err, PROTO_ETOOBIG, "body is over the limit after inflating");
    size_t k = n < KEEP - S.len ? n : KEEP - S.len;
    memcpy(S.out + S.len, data, k);
    S.len += k;
    return 0;
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
    req r;
    memset(&r, 0, sizeof r);
    S.out = bufs[slot];
    S.len = 0;
    S.total = 0;
    int rc = 1;
    srv_inflate *z = srv_inflate_new(enc, &rc);
    REQUIRE(z != NULL && rc == 0, "new(%s)", enc);
    bool failed = false;
    for (size_t at = 0; at < size && !failed;) {
        size_t n = size - at < chunk ? size - at : chunk;
        if (srv_inflate_feed(z, (const char *)data + at, n, sink, &r, &r.err)) {
            int http = proto_status_http(r.err.code);
            REQUIRE(http == 400 || http == 413, "feed failed with HTTP %d", http);
            REQUIRE(r.err.msg[0], "feed failed without a message");
            failed = true;
        }
        at += n;
        /* The server stops inflating a failed request (receive() drops the rest). */
    }
    REQUIRE(S.total <= (uint64_t)LIMIT + (64u << 10),
            "inflated %llu bytes past a limit of %u", (unsigned long long)S.total, LIMIT);
    bool ended = srv_inflate_complete(z);
    srv_inflate_free(z);
    result res = { OK, S.len, S.out, false };
    if (r.err.code == PROTO_ETOOBIG)
        res.what = TOO_BIG;
    else if (failed || !ended)
        res.what = BAD;
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
    char *body = malloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = size ? (char)data[i % size] : 'x';
    char *z = NULL;
    size_t zlen = 0;
    const char *enc = srv_compress(ae, body, len, &z, &zlen);
    if (enc) {
        REQUIRE(strcmp(enc, "gzip") == 0 || strcmp(enc, "deflate") == 0, "encoding %s", enc);
        REQUIRE(z && zlen > 0, "compressed with %s to nothing", enc);
        if (len <= LIMIT) {
            result back = feed(enc, (const uint8_t *)z, zlen, 1u << 20, 4);
            REQUIRE(back.what == OK && back.len == len && memcmp(back.out, body, len) == 0,
                    "compressed with %s (Accept-Encoding '%s') does not inflate back", enc, ae);
        }
    } else {
        REQUIRE(z == NULL, "output without an encoding (Accept-Encoding '%s')", ae);
    }
    free(z);
    free(body);
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
    int rc = 0;
    REQUIRE(srv_inflate_new("br", &rc) == NULL && rc == -1, "br accepted");
    REQUIRE(srv_inflate_new("identity", &rc) == NULL && rc == -1, "identity accepted");

    round_trip(data, size);
    return 0;
}
