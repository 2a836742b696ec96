/*
 * Hostile input beyond test_errors.c, against a real server:
 *
 *   - request smuggling: Content-Length with Transfer-Encoding, two Content-Lengths, malformed
 *     lengths, chunked bodies with bad sizes and extensions, Transfer-Encodings other than
 *     chunked, whitespace before a colon. Each message carries a second, hidden request
 *     ("GET /smuggled-N"); an ambiguous message must be refused and its connection closed, so
 *     the hidden request is never answered (RFC 9112 sections 5.1, 6.1, 6.3). Sent over raw
 *     sockets, since curl will not write such messages;
 *   - empty tensors that name a huge channel axis (2^40, 2^26 + 1; and just over a small
 *     --max-elements), in every format that can say it: 413, not per-channel state for each;
 *   - tensors of rank 10^4 in the query and in a .npy header; JSON nested 10^6 deep; numbers of
 *     10^6 digits; invalid UTF-8 (in JSON, the query, the path and headers: every error body
 *     must still be valid UTF-8 JSON); duplicate keys; NaN and inverted ranges; pickled and
 *     "executable" .npy headers;
 *   - compression bombs: 1 GiB of zeros (and of JSON whitespace, and a .npy of zeros) as gzip or
 *     deflate, a megabyte or two on the wire: 413 (never a hang), and the server's resident
 *     memory (VmRSS in /proc/PID/status) back where it was afterwards;
 *   - KServe requests whose JSON outside the "data" arrays is 8 MB (a shape, a parameter, the
 *     outputs list): refused without building a tree of millions of JSON nodes;
 *   - a 1 MiB header, 20 000 headers, a 1 MiB request line: refused (libmicrohttpd's 431/414)
 *     without memory growth.
 *
 * After every case a good request (JSON or raw, alternately) on the test's keep-alive
 * connection must get the exact answer. At the end the server's VmRSS must be within 10% plus
 * RSS_SLACK_KB (8 MiB, for allocator noise) of its value after warm-up, and it still answers
 * correctly. The server runs with one HTTP thread, so that the warm-up surely reaches the
 * malloc arena the suite uses. The sanitizer build's server keeps freed memory in ASan's
 * quarantine (256 MiB by default), which would read as growth: unless ASAN_OPTIONS is set
 * already, the server gets a 16 MiB quarantine (the test binary itself is unaffected).
 *
 * QDQ_TEST_VERBOSE=1 prints every case's status, times and memory figures.
 */
#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "http_client.h"
#include "qdq.h"
#include "sbuf.h"
#include "server_proc.h"
#include "testutil.h"

#define RSS_SLACK_KB (8 * 1024)
#define Q "/quantize-dequantize"

static sp_server srv;
static bool verbose;

/* ---- the server's memory ---- */

static long rss_kb(pid_t pid) { return sp_proc_kb(pid, "VmRSS:"); }

/* ---- raw sockets ---- */

/* A connection to the server that sends each write at once (no Nagle delay), or -1. */
static int raw_connect(int port)
{
    int fd = hc_raw_connect(port);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Sends as much of buf as the peer takes within timeout_ms; returns the bytes sent. */
static size_t raw_send(int fd, const void *buf, size_t n, int timeout_ms)
{
    size_t sent = 0;
    long long deadline = sp_now_ms() + timeout_ms;
    while (sent < n && sp_now_ms() < deadline) {
        ssize_t k = send(fd, (const char *)buf + sent, n - sent, MSG_NOSIGNAL);
        if (k > 0) {
            sent += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            struct pollfd p = { fd, POLLOUT, 0 };
            poll(&p, 1, 50);
        } else {
            break; /* the peer closed or reset */
        }
    }
    return sent;
}

typedef struct raw_out {
    sbuf data;
    bool closed;  /* the server closed (FIN or reset) */
    bool reset;   /* ECONNRESET */
    long long ms; /* until closed, or the wait ended */
} raw_out;

/* The length of the complete responses at the start of p (Content-Length framed); counts them,
 * records their statuses and whether any body mentions `marker`. */
typedef struct responses {
    int n;
    int status[8];
    bool marker_seen;
} responses;

static size_t parse_responses(const char *p, size_t len, const char *marker, responses *rs)
{
    size_t at = 0;
    memset(rs, 0, sizeof *rs);
    while (at < len && rs->n < 8) {
        const char *s = p + at;
        size_t left = len - at;
        if (left < 12 || strncmp(s, "HTTP/1.", 7) != 0)
            break;
        const char *end = memmem(s, left, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head = (size_t)(end - s) + 4, body = 0;
        for (const char *h = s; h < end; h = memchr(h, '\n', (size_t)(end - h)) + 1) {
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                body = strtoull(h + 15, NULL, 10);
            if (!memchr(h, '\n', (size_t)(end - h)))
                break;
        }
        if (head + body > left)
            break;
        rs->status[rs->n++] = atoi(s + 9);
        if (marker && memmem(s + head, body, marker, strlen(marker)))
            rs->marker_seen = true;
        at += head + body;
    }
    return at;
}

/*
 * Reads what the server sends until it closes the connection, or `want` complete responses have
 * come and nothing more for idle_ms, or total_ms have passed.
 */
static void raw_read(int fd, int want, int idle_ms, int total_ms, raw_out *o)
{
    long long t0 = sp_now_ms(), last = t0;
    char buf[65536];
    for (;;) {
        long long now = sp_now_ms();
        if (now - t0 >= total_ms)
            break;
        responses rs;
        parse_responses(o->data.p ? o->data.p : "", o->data.len, NULL, &rs);
        if (want && rs.n >= want && now - last >= idle_ms)
            break;
        struct pollfd p = { fd, POLLIN, 0 };
        int wait = (int)(total_ms - (now - t0));
        poll(&p, 1, wait < 50 ? wait : 50);
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k > 0) {
            sb_add(&o->data, buf, (size_t)k);
            last = sp_now_ms();
        } else if (k == 0) {
            o->closed = true;
            break;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            o->closed = true;
            o->reset = errno == ECONNRESET;
            break;
        }
    }
    o->ms = sp_now_ms() - t0;
    if (!o->data.p)
        sb_add(&o->data, "", 0);
}

/* One exchange on a fresh connection: send all of msg, then read as raw_read does. */
static bool raw_exchange(const sp_server *s, const void *msg, size_t len, int want, int idle_ms,
                         int total_ms, raw_out *o)
{
    memset(o, 0, sizeof *o);
    int fd = raw_connect(s->port);
    if (fd < 0)
        return false;
    raw_send(fd, msg, len, 5000);
    raw_read(fd, want, idle_ms, total_ms, o);
    close(fd);
    return true;
}

/* ---- the good request after each case (as test_errors.c) ---- */

static int good_count;

static void good_request(const sp_server *s, const char *after)
{
    char url[128];
    hc_resp r;
    if (good_count++ % 2 == 0) {
        snprintf(url, sizeof url, "%s" Q, s->base);
        const char *h[] = { "Content-Type: application/json", NULL };
        const char *body = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
        hc_request("POST", url, h, body, strlen(body), &r);
        cJSON *j = r.status == 200 ? hc_json_parse_exact(r.body, r.len) : NULL;
        const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "output"), 1);
        const char *v = hc_json_num(cJSON_GetArrayItem(row, 1));
        CHECK(v && strtof(v, NULL) == 0.296875f, "good JSON request after '%s': %ld %.200s %s",
              after, r.status, r.body, r.err);
        cJSON_Delete(j);
    } else {
        snprintf(url, sizeof url, "%s" Q "?shape=2,2&num_bits=4", s->base);
        const char *h[] = { "Content-Type: application/octet-stream", NULL };
        float in[4] = { -1.0f, -0.5f, 0.0f, 0.3125f }, want[4] = { -1.0f, -0.5f, 0.0f, 0.25f };
        hc_request("POST", url, h, in, sizeof in, &r);
        CHECK(r.status == 200 && r.len == sizeof want && memcmp(r.body, want, sizeof want) == 0,
              "good raw request after '%s': %ld %.200s %s", after, r.status, r.body, r.err);
    }
    hc_resp_free(&r);
}

/* ---- error answers ---- */

/* Whether p[0, n) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Whether msg contains one of the '|'-separated words (case-insensitive); NULL: no words. */
static bool has_word(const char *msg, const char *words)
{
    if (!words)
        return true;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", words);
    char *save = NULL;
    for (char *w = strtok_r(buf, "|", &save); w; w = strtok_r(NULL, "|", &save))
        if (strcasestr(msg, w))
            return true;
    return false;
}

/* Status in {s1, s2, s3} (0 = unused); a JSON error body, valid UTF-8, naming one of words. */
static void check_error(const char *what, const hc_resp *r, int s1, int s2, int s3,
                        const char *words)
{
    if (verbose)
        fprintf(stderr, "  %-52s %ld %.160s (%.0f ms)\n", what, r->status, r->body ? r->body : "",
                r->seconds * 1000);
    CHECK(r->status && (r->status == s1 || r->status == s2 || r->status == s3),
          "%s: status %ld, want %d%s%s (body %.300s; %s)", what, r->status, s1, s2 ? " or " : "",
          s2 ? "another listed" : "", r->body ? r->body : "", r->err);
    if (!r->status)
        return;
    const char *ct = hc_header(r, "Content-Type");
    CHECK(ct && strcmp(ct, "application/json") == 0, "%s: Content-Type '%s'", what,
          ct ? ct : "(none)");
    CHECK(utf8_valid((const unsigned char *)r->body, r->len),
          "%s: the error body is not valid UTF-8: %.200s", what, r->body);
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsString(e), "%s: body is not {\"error\": string}: %.300s", what, r->body);
    if (cJSON_IsString(e))
        CHECK(has_word(e->valuestring, words), "%s: message '%s' lacks '%s'", what,
              e->valuestring, words);
    const char *rid = hc_header(r, "X-Request-Id");
    CHECK(rid && *rid, "%s: no X-Request-Id", what);
    cJSON_Delete(j);
}

/* POST to path (NULL: the op) with a Content-Type and one more header; checks the error. */
static void post_case(const char *what, const char *path, const char *ctype, const char *extra,
                      const void *body, size_t len, int s1, int s2, int s3, const char *words)
{
    sbuf url = { 0 };
    sb_str(&url, srv.base);
    sb_str(&url, path ? path : Q);
    char cth[128];
    const char *h[4];
    int n = 0;
    if (ctype) {
        snprintf(cth, sizeof cth, "Content-Type: %s", ctype);
        h[n++] = cth;
    }
    if (extra)
        h[n++] = extra;
    h[n] = NULL;
    /* No time limit but a generous bound: a hostile body must not hang the server (a status
     * 0 then fails check_error); how fast it is refused is not this test's business. */
    hc_opts o = { .timeout_ms = 120000 };
    hc_resp r;
    hc_request_ex("POST", url.p, h, body, len, &o, &r);
    check_error(what, &r, s1, s2, s3, words);
    hc_resp_free(&r);
    free(url.p);
    good_request(&srv, what);
}

static void json_case(const char *what, const char *body, int s1, int s2, const char *words)
{
    post_case(what, NULL, "application/json", NULL, body, strlen(body), s1, s2, 0, words);
}

/* ---- 1. request smuggling ---- */

enum expect {
    REFUSE,   /* a 4xx/5xx answer, the connection closed, the hidden request never answered */
    BOTH,     /* unambiguous: the request and the pipelined one after it are both answered */
    EITHER,   /* lenient parsing is allowed: BOTH, or REFUSE */
};

static int smuggle_no;

/*
 * Sends `head` (request line and headers, "\r\n"-separated, without the blank line), then the
 * blank line, `body`, and a hidden request for /smuggled-N.
 */
static void smuggle(const char *what, const char *head, const char *body, size_t body_len,
                    enum expect want, int first_status)
{
    char marker[32];
    snprintf(marker, sizeof marker, "/smuggled-%d", ++smuggle_no);
    sbuf m = { 0 };
    sb_str(&m, head);
    sb_str(&m, strstr(head, "\r\n") ? "\r\n\r\n" : "\n\n"); /* bare-LF heads end bare */
    sb_add(&m, body, body_len);
    sb_printf(&m, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", marker);
    raw_out o;
    if (!raw_exchange(&srv, m.p, m.len, 2, 200, 15000, &o)) {
        CHECK(0, "%s: cannot connect", what);
        free(m.p);
        return;
    }
    responses rs;
    parse_responses(o.data.p, o.data.len, marker, &rs);
    if (verbose)
        fprintf(stderr, "  smuggle %-44s %d answer(s) [%d %d] hidden=%s closed=%s %lld ms\n",
                what, rs.n, rs.status[0], rs.status[1], rs.marker_seen ? "ANSWERED" : "no",
                o.closed ? "yes" : "no", o.ms);
    bool refused = rs.n == 1 && rs.status[0] >= 400 && !rs.marker_seen && o.closed;
    bool both = rs.n == 2 && rs.marker_seen && rs.status[1] == 404 &&
                (!first_status || rs.status[0] == first_status);
    if (want == REFUSE)
        CHECK(refused, "%s: want a refusal and a closed connection; got %d answer(s) (%d, %d), "
              "hidden request %s, connection %s after %lld ms", what, rs.n, rs.status[0],
              rs.status[1], rs.marker_seen ? "ANSWERED" : "not answered",
              o.closed ? "closed" : "left open", o.ms);
    else if (want == BOTH)
        CHECK(both, "%s: want both requests answered (first %d); got %d answer(s) (%d, %d)%s",
              what, first_status, rs.n, rs.status[0], rs.status[1],
              rs.marker_seen ? "" : ", hidden one not answered");
    else
        CHECK(refused || both, "%s: neither refused and closed nor both answered: %d answer(s) "
              "(%d, %d), hidden %s, %s", what, rs.n, rs.status[0], rs.status[1],
              rs.marker_seen ? "answered" : "not answered", o.closed ? "closed" : "open");
    free(o.data.p);
    free(m.p);
    good_request(&srv, what);
}

#define POST_HEAD "POST " Q " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
#define JBODY "{\"input\": [1, 2]}"

static void test_smuggling(void)
{
    const char *j = JBODY;
    size_t jn = strlen(j);
    char head[512], body[512];
    int bn;

    /* The detector itself: a plain pipelined pair is answered twice. */
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %zu", jn);
    smuggle("pipelined, plain Content-Length", head, j, jn, BOTH, 200);
    bn = snprintf(body, sizeof body, "%zx\r\n%s\r\n0\r\n\r\n", jn, j);
    smuggle("pipelined, plain chunked", POST_HEAD "\r\nTransfer-Encoding: chunked", body,
            (size_t)bn, BOTH, 200);
    bn = snprintf(body, sizeof body, "%zx;name=value;flag\r\n%s\r\n0;x=\"q\"\r\n\r\n", jn, j);
    smuggle("chunked with chunk extensions", POST_HEAD "\r\nTransfer-Encoding: chunked", body,
            (size_t)bn, BOTH, 200);
    bn = snprintf(body, sizeof body, "%zX\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n", jn, j);
    smuggle("chunked with a trailer field", POST_HEAD "\r\nTransfer-Encoding: chunked", body,
            (size_t)bn, BOTH, 200);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: 0%zu", jn);
    smuggle("Content-Length with a leading zero", head, j, jn, BOTH, 200);
    /* Trailing whitespace is not part of a field value (RFC 9110 5.5); refusing is safe too. */
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %zu ", jn);
    smuggle("Content-Length with trailing space", head, j, jn, EITHER, 200);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %zu\r\nContent-Length: %zu", jn,
             jn);
    smuggle("two equal Content-Lengths", head, j, jn, EITHER, 200);

    /* Both framings at once: RFC 9112 6.1 says Transfer-Encoding wins and the connection
     * MUST then be closed; refusing is allowed too. A hidden request must not be answered. */
    bn = snprintf(body, sizeof body, "%zx\r\n%s\r\n0\r\n\r\n", jn, j);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %d\r\nTransfer-Encoding: chunked",
             bn + 40);
    smuggle("Content-Length then Transfer-Encoding", head, body, (size_t)bn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nTransfer-Encoding: chunked\r\nContent-Length: 3");
    smuggle("Transfer-Encoding then Content-Length", head, body, (size_t)bn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: 0\r\nTransfer-Encoding: chunked");
    smuggle("Content-Length 0 and chunked", head, body, (size_t)bn, REFUSE, 0);

    /* Two different lengths (RFC 9112 6.3: unrecoverable, 400). */
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %zu\r\nContent-Length: 0", jn);
    smuggle("two different Content-Lengths", head, j, jn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: 0\r\nContent-Length: %zu", jn);
    smuggle("two different Content-Lengths (0 first)", head, j, jn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %zu, 0", jn);
    smuggle("Content-Length list", head, j, jn, REFUSE, 0);

    /* Malformed lengths. */
    static const char *const bad_lengths[] = { "+17", "-1", "0x11", "1_7", "17.0", "1 7", "",
                                               "18446744073709551616", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "Content-Length '%s'", bad_lengths[i]);
        snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length: %s", bad_lengths[i]);
        smuggle(what, head, j, jn, REFUSE, 0);
    }
    /* Whitespace between the name and the colon (RFC 9112 5.1: MUST be rejected with 400):
     * a server that ignores the line reads the body as the next request. */
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length : %zu", jn);
    smuggle("space before the colon of Content-Length", head, j, jn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nContent-Length\t: %zu", jn);
    smuggle("tab before the colon of Content-Length", head, j, jn, REFUSE, 0);
    snprintf(head, sizeof head, POST_HEAD "\r\nTransfer-Encoding : chunked");
    smuggle("space before the colon of Transfer-Encoding", head, body, (size_t)bn, REFUSE, 0);
    /* obs-fold (RFC 9112 5.2: reject, or replace with spaces). */
    smuggle("Transfer-Encoding folded onto a second line",
            POST_HEAD "\r\nTransfer-Encoding:\r\n chunked", body, (size_t)bn, REFUSE, 0);

    /* Transfer-Encodings other than a final, single chunked (RFC 9112 6.3: 400, close). */
    static const char *const bad_te[] = { "xchunked", "chunked, identity", "gzip, chunked",
                                          "identity", "chunked;q=1", "\"chunked\"",
                                          "chunked, chunked" };
    for (size_t i = 0; i < sizeof bad_te / sizeof bad_te[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "Transfer-Encoding '%s'", bad_te[i]);
        snprintf(head, sizeof head, POST_HEAD "\r\nTransfer-Encoding: %s", bad_te[i]);
        smuggle(what, head, body, (size_t)bn, REFUSE, 0);
    }
    smuggle("Transfer-Encoding twice (identity, chunked)",
            POST_HEAD "\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked", body,
            (size_t)bn, REFUSE, 0);
    /* Case does not matter for the coding name. */
    smuggle("Transfer-Encoding 'Chunked'", POST_HEAD "\r\nTransfer-Encoding: Chunked", body,
            (size_t)bn, BOTH, 200);

    /* Bad chunk sizes and chunk framing. */
    static const struct { const char *what, *fmt; } bad_chunks[] = {
        { "chunk size not hex", "zz\r\n%s\r\n0\r\n\r\n" },
        { "chunk size negative", "-11\r\n%s\r\n0\r\n\r\n" },
        { "chunk size 0x-prefixed", "0x11\r\n%s\r\n0\r\n\r\n" },
        { "chunk size over 64 bits", "10000000000000011\r\n%s\r\n0\r\n\r\n" },
        { "chunk size of 20 f's", "ffffffffffffffffffff\r\n%s\r\n0\r\n\r\n" },
        { "chunk data longer than its size", "3\r\n%s\r\n0\r\n\r\n" },
        { "chunk without CRLF after the data", "11\r\n%sXX0\r\n\r\n" },
        { "empty chunk-size line", "\r\n%s\r\n0\r\n\r\n" },
    };
    for (size_t i = 0; i < sizeof bad_chunks / sizeof bad_chunks[0]; i++) {
        bn = snprintf(body, sizeof body, bad_chunks[i].fmt, j);
        smuggle(bad_chunks[i].what, POST_HEAD "\r\nTransfer-Encoding: chunked", body, (size_t)bn,
                REFUSE, 0);
    }
    /* A chunk extension of 1 MiB: more than the connection memory; refused, memory bounded. */
    {
        sbuf big = { 0 };
        sb_printf(&big, "%zx;ext=", jn);
        sb_repeat(&big, "aaaaaaaaaaaaaaaa", 65536);
        sb_printf(&big, "\r\n%s\r\n0\r\n\r\n", j);
        long before = rss_kb(srv.pid);
        smuggle("1 MiB chunk extension", POST_HEAD "\r\nTransfer-Encoding: chunked", big.p,
                big.len, REFUSE, 0);
        long after = rss_kb(srv.pid);
        CHECK(after - before < 8 * 1024, "1 MiB chunk extension: RSS %ld -> %ld KiB", before,
              after);
        free(big.p);
    }
    /* NUL bytes in the framing headers. */
    {
        char h2[256];
        int hn = snprintf(h2, sizeof h2, POST_HEAD "\r\nContent-Length: %zu", jn);
        memcpy(h2 + hn, "\0 9", 4); /* "Content-Length: 17\0 9" */
        sbuf hb = { 0 };
        sb_add(&hb, h2, (size_t)hn + 3);
        sbuf m = { 0 };
        sb_add(&m, hb.p, hb.len);
        sb_str(&m, "\r\n\r\n");
        sb_add(&m, j, jn);
        sb_str(&m, "GET /smuggled-nul HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        raw_out o;
        raw_exchange(&srv, m.p, m.len, 2, 200, 15000, &o);
        responses rs;
        parse_responses(o.data.p, o.data.len, "/smuggled-nul", &rs);
        /* Read as 17 (the NUL ends it) both times, or refused: never another length. */
        CHECK((rs.n == 1 && rs.status[0] >= 400 && o.closed) ||
              (rs.n == 2 && rs.status[0] == 200 && rs.marker_seen),
              "NUL inside Content-Length: %d answer(s) (%d, %d), closed %d", rs.n, rs.status[0],
              rs.status[1], o.closed);
        free(o.data.p);
        free(m.p);
        free(hb.p);
        good_request(&srv, "NUL inside Content-Length");
    }
    /* Lenient forms that are still unambiguous. */
    {
        sbuf m = { 0 };
        sb_printf(&m, "POST " Q " HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
                  "Content-Length: %zu", jn);
        smuggle("bare LF line endings", m.p, j, jn, EITHER, 200);
        free(m.p);
    }
    smuggle("HTTP/1.0 with chunked", "POST " Q " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked", body, 0, EITHER, 0);
    smuggle("request line with a 1 KiB method",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            " /healthz HTTP/1.1\r\nHost: 127.0.0.1", "", 0, EITHER, 0);
    smuggle("GET with a body by Content-Length", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Length: 17", j, jn, EITHER, 200);
}

/* ---- 2. shapes, nesting, numbers, text ---- */

static void npy_build(sbuf *b, int major, const char *dict, const void *data, size_t data_len)
{
    sbuf d = { 0 };
    sb_str(&d, dict);
    size_t pre = major == 1 ? 10 : 12;
    while ((pre + d.len + 1) % 64)
        sb_add(&d, " ", 1);
    sb_add(&d, "\n", 1);
    unsigned char m[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0 };
    for (size_t i = 0; i < pre - 8; i++)
        m[8 + i] = (unsigned char)(d.len >> (8 * i));
    sb_add(b, m, pre);
    sb_add(b, d.p, d.len);
    sb_add(b, data, data_len);
    free(d.p);
}

static void test_shapes_and_text(void)
{
    sbuf b = { 0 };
    /* Rank 10^4. */
    sb_str(&b, Q "?shape=");
    for (int i = 0; i < 10000; i++)
        sb_str(&b, i ? ",1" : "1");
    post_case("query shape of rank 10^4", b.p, "application/octet-stream", NULL, "AAAA", 4, 413,
              400, 0, "dimension|rank");
    b.len = 0;
    sb_str(&b, Q "?axis=9999&shape=");
    for (int i = 0; i < 10000; i++)
        sb_str(&b, i ? ",0" : "0");
    post_case("query shape of rank 10^4 (zeros, axis 9999)", b.p, "application/octet-stream",
              NULL, "", 0, 413, 400, 0, "dimension|rank");
    b.len = 0;
    sbuf dict = { 0 };
    sb_str(&dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < 10000; i++)
        sb_str(&dict, "1, ");
    sb_str(&dict, "), }");
    float one = 1.0f;
    npy_build(&b, 2, dict.p, &one, sizeof one);
    post_case(".npy of rank 10^4", NULL, "application/x-npy", NULL, b.p, b.len, 413, 400, 0,
              "dimension|rank|shape");
    b.len = 0;
    dict.len = 0;
    sb_str(&b, "{\"input\": {\"dtype\": \"float32\", \"shape\": [");
    for (int i = 0; i < 10000; i++)
        sb_str(&b, i ? ",1" : "1");
    sb_str(&b, "], \"data\": [1]}}");
    json_case("JSON shape of rank 10^4", b.p, 413, 400, "dimension|rank|depth|shape");
    b.len = 0;

    /* Nesting 10^6 deep. */
    sb_str(&b, "{\"input\": ");
    sb_repeat(&b, "[", 1000000);
    sb_repeat(&b, "]", 1000000);
    sb_str(&b, "}");
    json_case("JSON arrays nested 10^6 deep", b.p, 400, 413, "depth|deep|nest|rank");
    b.len = 0;
    sb_repeat(&b, "{\"input\": ", 1000000);
    json_case("JSON objects nested 10^6 deep (unclosed)", b.p, 400, 413,
              "depth|deep|nest|input|object|JSON");
    b.len = 0;
    sb_str(&b, "{\"input\": [1], \"num_bits\": ");
    sb_repeat(&b, "{\"a\": ", 1000000);
    json_case("10^6 objects deep in an attribute", b.p, 400, 413, "num_bits|depth|nest");
    b.len = 0;

    /* Numbers of 10^6 digits. */
    sb_str(&b, "{\"input\": [");
    sb_repeat(&b, "1111111111", 100000);
    sb_str(&b, "]}");
    json_case("10^6-digit integer element (infinite in float32)", b.p, 400, 0,
              "infin|range|large|overflow|number");
    b.len = 0;
    sb_str(&b, "{\"input\": {\"dtype\": \"float64\", \"shape\": [1], \"data\": [0.");
    sb_repeat(&b, "0000000000", 100000);
    sb_str(&b, "1]}}");
    {
        /* A tiny number: rounds to 0 (a 200), or is refused as too long; never a hang. */
        char url[128];
        snprintf(url, sizeof url, "%s" Q, srv.base);
        const char *h[] = { "Content-Type: application/json", NULL };
        hc_opts o = { .timeout_ms = 120000 };
        hc_resp r;
        hc_request_ex("POST", url, h, b.p, b.len, &o, &r);
        CHECK(r.status == 200 || r.status == 400 || r.status == 413,
              "10^6-digit fraction: status %ld %.200s", r.status, r.body);
        if (r.status == 200)
            CHECK(strstr(r.body, "\"data\":[0.0]") || strstr(r.body, "\"data\":[0]"),
                  "10^6-digit fraction: %.200s", r.body);
        if (verbose)
            fprintf(stderr, "  %-52s %ld %.100s\n", "10^6-digit fraction", r.status, r.body);
        hc_resp_free(&r);
        good_request(&srv, "10^6-digit fraction");
    }
    b.len = 0;
    sb_str(&b, "{\"input\": [1], \"num_bits\": ");
    sb_repeat(&b, "8888888888", 100000);
    sb_str(&b, "}");
    json_case("10^6-digit num_bits", b.p, 400, 413, "num_bits");
    b.len = 0;
    sb_str(&b, "{\"input\": {\"shape\": [");
    sb_repeat(&b, "9999999999", 100000);
    sb_str(&b, "], \"data\": [1]}}");
    json_case("10^6-digit dimension", b.p, 400, 413, "shape|dim|large|range|elements");
    b.len = 0;
    sb_str(&b, "{\"input\": [1e");
    sb_repeat(&b, "9999999999", 100000);
    sb_str(&b, "]}");
    json_case("10^6-digit exponent", b.p, 400, 0, "infin|range|large|overflow|number");
    b.len = 0;
    sb_str(&b, Q "?num_bits=");
    sb_repeat(&b, "8888888888", 1000);
    post_case("10^4-digit num_bits in the query", b.p, "application/octet-stream", NULL,
              "AAAABBBB", 8, 400, 0, 0, "num_bits");
    b.len = 0;
    sb_str(&b, Q "?range_given=true&input_max=1&input_min=-");
    sb_repeat(&b, "1111111111", 1000);
    post_case("10^4-digit bound in the query", b.p, "application/octet-stream", NULL, "AAAABBBB",
              8, 400, 0, 0, "input_min|range|infin|number");
    b.len = 0;

    /* Invalid UTF-8 and text oddities. */
    static const struct { const char *what, *body, *words; } text[] = {
        { "invalid UTF-8 in a string value", "{\"input\": [1], \"round_mode\": \"HALF\xff\"}",
          "UTF|round_mode|string" },
        { "invalid UTF-8 in a key", "{\"input\": [1], \"num\xc3\x28\": 8}", "UTF|key|unknown" },
        { "overlong UTF-8 (C0 80)", "{\"input\": [1], \"round_mode\": \"\xc0\x80\"}",
          "UTF|round_mode|string" },
        { "overlong UTF-8 slash (E0 80 AF)", "{\"input\": [1], \"x\xe0\x80\xaf\": 1}",
          "UTF|key|unknown" },
        { "UTF-8-encoded surrogate (ED A0 80)",
          "{\"input\": [1], \"round_mode\": \"\xed\xa0\x80\"}", "UTF|round_mode|string|surrogate" },
        { "code point over U+10FFFF (F4 90 80 80)",
          "{\"input\": [1], \"round_mode\": \"\xf4\x90\x80\x80\"}", "UTF|round_mode|string" },
        { "UTF-8 cut short at the end of a string",
          "{\"input\": [1], \"round_mode\": \"\xe2\x82\"}", "UTF|round_mode|string" },
        { "escaped lone high surrogate", "{\"input\": [1], \"round_mode\": \"\\ud800\"}",
          "surrogate|round_mode|escape|UTF" },
        { "escaped lone low surrogate", "{\"input\": [1], \"round_mode\": \"\\udc00x\"}",
          "surrogate|round_mode|escape|UTF" },
        { "UTF-16 BOM body", "\xff\xfe{\x00}\x00", "JSON|BOM|UTF|object|syntax" },
        { "UTF-8 BOM body", "\xef\xbb\xbf{\"input\": [1]}", "JSON|BOM|UTF|object|syntax" },
        { "control character in a string", "{\"input\": [1], \"round_mode\": \"HALF\x01UP\"}",
          "control|round_mode|string|character" },
        { "invalid UTF-8 in the dtype", "{\"input\": {\"dtype\": \"float\xff\", \"data\": [1]}}",
          "UTF|dtype" },
    };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        json_case(text[i].what, text[i].body, 400, 415, text[i].words);
    post_case("invalid UTF-8 in the query (%ff)", Q "?dtype=float%ff%fe",
              "application/octet-stream", NULL, "AAAA", 4, 400, 0, 0, "dtype");
    post_case("invalid UTF-8 in a query key", Q "?%c3%28=1", "application/octet-stream", NULL,
              "AAAA", 4, 400, 0, 0, "query|parameter|unknown");
    {
        /* "float32\0x": refused, or read as the C string "float32"; never anything else. */
        char url[128];
        snprintf(url, sizeof url, "%s" Q "?dtype=float32%%00x", srv.base);
        hc_resp r;
        hc_request("POST", url, (const char *const[]){ "Content-Type: application/octet-stream",
                                                        NULL }, "\0\0\x80\x3f", 4, &r);
        if (r.status == 200)
            CHECK(r.len == 4 && !memcmp(r.body, "\0\0\x80\x3f", 4), "NUL in the query: 200 "
                  "with %zu bytes", r.len);
        else
            check_error("NUL in the query (%00)", &r, 400, 0, 0, "dtype");
        hc_resp_free(&r);
        good_request(&srv, "NUL in the query");
    }
    {
        /* A path with invalid UTF-8: the 404 message names the path. */
        char url[160];
        snprintf(url, sizeof url, "%s/quantize%%ff%%c0%%80-dequantize", srv.base);
        hc_resp r;
        hc_request("GET", url, NULL, NULL, 0, &r);
        check_error("invalid UTF-8 in the path", &r, 404, 0, 0, "route|quantize");
        hc_resp_free(&r);
        snprintf(url, sizeof url, "%s/v2/models/m%%ff%%fe/infer", srv.base);
        hc_request("POST", url, (const char *const[]){ "Content-Type: application/json", NULL },
                   "{}", 2, &r);
        check_error("invalid UTF-8 in a model name", &r, 404, 0, 0, "model");
        hc_resp_free(&r);
        good_request(&srv, "invalid UTF-8 in the path");
    }
    {
        /* X-Request-Id with bytes a log or a JSON line could choke on: not echoed. */
        char url[128];
        snprintf(url, sizeof url, "%s/healthz", srv.base);
        static const char *const ids[] = { "X-Request-Id: abc\xff\xfe", "X-Request-Id: a\"b\\c",
                                           "X-Request-Id: a b", "X-Request-Id: \x1b[31mred" };
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            hc_resp r;
            hc_request("GET", url, (const char *const[]){ ids[i], NULL }, NULL, 0, &r);
            const char *rid = hc_header(&r, "X-Request-Id");
            CHECK(r.status == 200 && rid && utf8_valid((const unsigned char *)rid, strlen(rid)) &&
                  !strpbrk(rid, "\"\\ \x1b"),
                  "hostile X-Request-Id #%zu: status %ld, echoed '%s'", i, r.status,
                  rid ? rid : "(none)");
            hc_resp_free(&r);
        }
    }

    /* Duplicate keys. */
    json_case("duplicate key input", "{\"input\": [1], \"input\": [2]}", 400, 0,
              "input|duplicate|twice|repeat");
    json_case("duplicate key num_bits", "{\"input\": [1], \"num_bits\": 8, \"num_bits\": 4}", 400,
              0, "num_bits");
    json_case("duplicate key dtype in the input object",
              "{\"input\": {\"dtype\": \"float32\", \"dtype\": \"float64\", \"data\": [1]}}", 400, 0,
              "dtype");
    json_case("duplicate key by escape (\\u0069nput)",
              "{\"input\": [1], \"\\u0069nput\": [2]}", 400, 0, "input|duplicate|twice");
    post_case("duplicate query key shape", Q "?shape=2&shape=2", "application/octet-stream",
              NULL, "AAAABBBB", 8, 400, 0, 0, "shape");
    post_case("duplicate query key input_min", Q "?range_given=1&input_min=0&input_min=0"
              "&input_max=1", "application/octet-stream", NULL, "AAAABBBB", 8, 400, 0, 0,
              "input_min");

    /* NaN and inverted ranges. */
    json_case("NaN input_min", "{\"input\": [1, 2], \"range_given\": true, \"input_min\": NaN, "
              "\"input_max\": 1}", 400, 0, "NaN|input_min|range");
    json_case("NaN input_max", "{\"input\": [1, 2], \"range_given\": true, \"input_min\": 0, "
              "\"input_max\": NaN}", 400, 0, "NaN|input_max|range");
    json_case("inverted range", "{\"input\": [1, 2], \"range_given\": true, \"input_min\": 2, "
              "\"input_max\": -2}", 400, 0, "range|input_min");
    json_case("inverted by a hair", "{\"input\": [1, 2], \"range_given\": true, "
              "\"input_min\": 1.0000001, \"input_max\": 1}", 400, 0, "range|input_min");
    json_case("per-channel NaN bound", "{\"input\": [[1, 2], [3, 4]], \"axis\": 0, "
              "\"range_given\": true, \"input_min\": [0, NaN], \"input_max\": [1, 1]}", 400, 0,
              "NaN|input_min|range");
    json_case("per-channel inverted bound", "{\"input\": [[1, 2], [3, 4]], \"axis\": 1, "
              "\"range_given\": true, \"input_min\": [0, 3], \"input_max\": [1, -3]}", 400, 0,
              "range|input_min");
    json_case("bound of 1e39 (infinite in float32)", "{\"input\": [1, 2], \"range_given\": true, "
              "\"input_min\": -1e39, \"input_max\": 1}", 400, 0, "input_min|infin|range");
    post_case("query NaN bound", Q "?range_given=true&input_min=NaN&input_max=1",
              "application/octet-stream", NULL, "AAAABBBB", 8, 400, 0, 0, "NaN|range|input_min");
    post_case("query inverted range", Q "?range_given=true&input_min=1&input_max=-1",
              "application/octet-stream", NULL, "AAAABBBB", 8, 400, 0, 0, "range");
    post_case("query -nan bound", Q "?range_given=true&input_min=-nan&input_max=1",
              "application/octet-stream", NULL, "AAAABBBB", 8, 400, 0, 0, "NaN|range|input_min");
    {
        /* Infinite bounds, all-NaN data, min == max: whatever the op says (200, or a 400),
         * never a crash, always JSON. */
        static const char *const odd[] = {
            "{\"input\": [1, 2], \"range_given\": true, \"input_min\": -Infinity, "
            "\"input_max\": Infinity}",
            "{\"input\": [NaN, NaN, NaN]}",
            "{\"input\": [1, 2], \"range_given\": true, \"input_min\": 1, \"input_max\": 1}",
            "{\"input\": [Infinity, -Infinity, 0]}",
            "{\"input\": [1e-45, -1e-45], \"num_bits\": 1}",
        };
        char url[128];
        snprintf(url, sizeof url, "%s" Q, srv.base);
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            hc_resp r;
            hc_request("POST", url, (const char *const[]){ "Content-Type: application/json", NULL },
                       odd[i], strlen(odd[i]), &r);
            const char *ct = hc_header(&r, "Content-Type");
            CHECK((r.status == 200 || r.status == 400) && ct &&
                  !strcmp(ct, "application/json") && r.len && r.body[0] == '{',
                  "odd range #%zu: %ld %.200s", i, r.status, r.body);
            if (verbose)
                fprintf(stderr, "  odd range #%zu %ld %.120s\n", i, r.status, r.body);
            hc_resp_free(&r);
        }
        good_request(&srv, "odd ranges");
    }
    free(b.p);
    free(dict.p);
}

/* ---- 2b. an empty tensor that names a huge channel axis ---- */

/*
 * Zero elements, but dims[axis] channels: the element limit does not bound them, yet the op
 * keeps per-channel state (an accumulator and six reported values per channel), so the server
 * bounds the channel count by --max-elements too and answers 413 (server/ops.c). Each format
 * that can say it: JSON "data" and "b64", JSON nested (only as [[], [], ...]: channels on
 * axis 0, so only for a small limit), raw (the query's shape), .npy (the header's shape), and
 * KServe v2 JSON and binary (binary_data_size 0).
 */
enum ch_form { CH_DATA, CH_B64, CH_NESTED, CH_RAW, CH_NPY, CH_V2_JSON, CH_V2_BIN, CH_FORMS };
static const char *const ch_form_names[CH_FORMS] = { "JSON data", "JSON b64", "JSON nested", "raw",
                                                     ".npy", "KServe v2 JSON",
                                                     "KServe v2 binary" };

/* Sends the empty tensor of `channels` channels in form f to s; returns the answer in r. */
static void channel_request(const sp_server *s, enum ch_form f, uint64_t channels, hc_resp *r)
{
    sbuf url = { 0 }, body = { 0 };
    char ct[64] = "Content-Type: application/json", ihcl[96] = "";
    sb_str(&url, s->base);
    switch (f) {
    case CH_DATA:
    case CH_B64:
        sb_str(&url, Q);
        sb_printf(&body, "{\"input\": {\"dtype\": \"float32\", \"shape\": [0, %llu], %s}, "
                  "\"axis\": 1}", (unsigned long long)channels,
                  f == CH_DATA ? "\"data\": []" : "\"b64\": \"\"");
        break;
    case CH_NESTED: /* [[], [], ...]: shape [channels, 0], axis 0 */
        sb_str(&url, Q);
        sb_str(&body, "{\"input\": [");
        for (uint64_t c = 0; c < channels; c++)
            sb_str(&body, c ? ",[]" : "[]");
        sb_str(&body, "], \"axis\": 0}");
        break;
    case CH_RAW:
        sb_printf(&url, Q "?shape=0,%llu&axis=1", (unsigned long long)channels);
        snprintf(ct, sizeof ct, "Content-Type: application/octet-stream");
        break;
    case CH_NPY: {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, %llu), }",
                 (unsigned long long)channels);
        npy_build(&body, 1, dict, NULL, 0);
        sb_str(&url, Q "?axis=1");
        snprintf(ct, sizeof ct, "Content-Type: application/x-npy");
        break;
    }
    case CH_V2_JSON:
    case CH_V2_BIN:
        sb_str(&url, "/v2/models/quantize_and_dequantize_v2/infer");
        sb_printf(&body, "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", \"shape\": "
                  "[0, %llu], %s}], \"parameters\": {\"axis\": 1}}", (unsigned long long)channels,
                  f == CH_V2_JSON ? "\"data\": []" : "\"parameters\": {\"binary_data_size\": 0}");
        if (f == CH_V2_BIN) {
            snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", body.len);
            snprintf(ct, sizeof ct, "Content-Type: application/octet-stream");
        }
        break;
    default:
        break;
    }
    const char *h[] = { ct, ihcl[0] ? ihcl : NULL, NULL };
    hc_opts o = { .timeout_ms = 60000 };
    hc_request_ex("POST", url.p, h, body.p ? body.p : "", body.len, &o, r);
    free(url.p);
    free(body.p);
}

static void test_empty_channels(void)
{
    /* The suite's server (--max-elements 64M by default): 2^40 channels, and 2^26 + 1. */
    static const uint64_t huge[] = { 1ull << 40, (64ull << 20) + 1 };
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++)
        for (int f = 0; f < CH_FORMS; f++) {
            if (f == CH_NESTED)
                continue; /* [[], ...] would be a body of 2^27 bytes or more */
            char what[128];
            snprintf(what, sizeof what, "%s: empty tensor of %llu channels", ch_form_names[f],
                     (unsigned long long)huge[k]);
            hc_resp r;
            channel_request(&srv, (enum ch_form)f, huge[k], &r);
            check_error(what, &r, 413, 0, 0, "channels|max_elements|max-elements");
            hc_resp_free(&r);
            good_request(&srv, what);
        }
    /* A server with --max-elements 1000: 1001 channels are refused in every form, nested JSON
     * included; 1000 are served. */
    sp_server s;
    const char *args[] = { "--max-elements", "1000", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the --max-elements 1000 server did not start");
        sp_release(&s);
        return;
    }
    for (int f = 0; f < CH_FORMS; f++)
        for (uint64_t n = 1000; n <= 1001; n++) {
            char what[128];
            snprintf(what, sizeof what, "%s: empty tensor of %llu channels, --max-elements 1000",
                     ch_form_names[f], (unsigned long long)n);
            hc_resp r;
            channel_request(&s, (enum ch_form)f, n, &r);
            if (n > 1000)
                check_error(what, &r, 413, 0, 0, "channels|max_elements|max-elements");
            else
                CHECK(r.status == 200, "%s: status %ld, want 200 (%.200s)", what, r.status,
                      r.body);
            hc_resp_free(&r);
        }
    hc_thread_done(); /* the connection to that server */
    CHECK(sp_stop(&s, 20000) == 0, "the --max-elements 1000 server did not exit 0");
    sp_release(&s);
}

/* ---- 3. pickles and code in .npy headers ---- */

static void test_npy_pickles(void)
{
    char marker[96];
    snprintf(marker, sizeof marker, "/tmp/qdq-hostile-pwned-%d", (int)getpid());
    unlink(marker);
    /* A protocol-2 pickle that would run os.system if loaded. */
    sbuf pk = { 0 };
    sb_add(&pk, "\x80\x02" "cposix\nsystem\nq\x00X", 18);
    char cmd[128];
    int cn = snprintf(cmd, sizeof cmd, "touch %s", marker);
    unsigned char len4[4] = { (unsigned char)cn, 0, 0, 0 };
    sb_add(&pk, len4, 4);
    sb_add(&pk, cmd, (size_t)cn);
    sb_add(&pk, "\x85q\x01Rq\x02.", 7);

    static const char *const dicts[] = {
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': 'O', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<O8', 'fortran_order': False, 'shape': (1,), }",
        "{'descr': [('a', '|O')], 'fortran_order': False, 'shape': (1,), }",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        sbuf b = { 0 };
        npy_build(&b, 1, dicts[i], pk.p, pk.len);
        char what[96];
        snprintf(what, sizeof what, "pickled .npy #%zu", i);
        post_case(what, NULL, "application/x-npy", NULL, b.p, b.len, 415, 400, 0,
                  "object|pickle|descr|structured");
        free(b.p);
    }
    /* Python expressions where the dict has literals. */
    char code[512];
    snprintf(code, sizeof code,
             "{'descr': __import__('os').system('touch %s'), 'fortran_order': False, "
             "'shape': (1,), }", marker);
    const char *exprs[] = {
        code,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (eval('1'),), }",
        "{'descr': '<f4', 'fortran_order': not True, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), '__class__': 1}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [1], }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1 + 0,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0x1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\x00evil",
    };
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        sbuf b = { 0 };
        float v = 1.0f;
        npy_build(&b, 3, exprs[i], &v, sizeof v);
        char what[96];
        snprintf(what, sizeof what, "code in the .npy header #%zu", i);
        post_case(what, NULL, "application/x-npy", NULL, b.p, b.len, 400, 415, 0,
                  "npy|header|descr|shape|fortran|dict|key|syntax|expected");
        free(b.p);
    }
    /* The 3.0 header is UTF-8: invalid bytes in it. */
    {
        sbuf b = { 0 };
        float v = 1.0f;
        npy_build(&b, 3, "{'descr': '<f4\xff', 'fortran_order': False, 'shape': (1,), }", &v,
                  sizeof v);
        post_case(".npy 3.0 header with invalid UTF-8", NULL, "application/x-npy", NULL, b.p,
                  b.len, 415, 400, 0, "descr|npy|UTF");
        free(b.p);
    }
    sp_sleep_ms(50);
    CHECK(access(marker, F_OK) != 0, "%s exists: a pickle or header was executed", marker);
    unlink(marker);
    free(pk.p);
}

/* ---- 3b. KServe: the JSON around the data arrays ---- */

/*
 * The KServe decoder reads "data" arrays straight into tensors but the rest of the request with
 * cJSON, a node (~40 bytes) per number: an 8 MB "shape" or parameter array must be refused
 * without the server building a third of a gigabyte of nodes (and keeping it: the small blocks
 * fragment the heap).
 */
static void kserve_envelope_case(const char *what, const char *head, const char *tail)
{
    sbuf b = { 0 };
    sb_str(&b, head);
    for (int i = 0; i < 4 << 20; i++)
        sb_add(&b, i ? ",0" : "0", i ? 2 : 1);
    sb_str(&b, tail);
    long before = rss_kb(srv.pid);
    bool peak_ok = sp_peak_reset(srv.pid);
    post_case(what, "/v2/models/quantize_and_dequantize_v2/infer", "application/json", NULL, b.p,
              b.len, 413, 400, 0, "rank|limit|parameter|shape|large|JSON|outputs");
    long peak = sp_proc_kb(srv.pid, "VmHWM:"), after = rss_kb(srv.pid);
    fprintf(stderr, "  KServe %s (%zu bytes): RSS %ld -> %ld KiB, peak %ld KiB\n", what, b.len,
            before, after, peak);
    if (NEED(peak_ok, "%s: /proc/%d/clear_refs is not writable: the peak RSS is unchecked",
             what, (int)srv.pid))
        CHECK(peak - before < 3 * (long)(b.len >> 10) + 32 * 1024,
              "%s: a %zu-byte body took the peak RSS from %ld to %ld KiB", what, b.len, before,
              peak);
    CHECK(after - before < RSS_SLACK_KB, "%s: RSS %ld -> %ld KiB afterwards", what, before,
          after);
    free(b.p);
}

static void test_kserve_envelope(void)
{
    kserve_envelope_case("8 MB shape array",
                         "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", "
                         "\"shape\": [", "], \"data\": []}]}");
    kserve_envelope_case("8 MB unknown parameter array",
                         "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", "
                         "\"shape\": [1], \"data\": [1]}], \"parameters\": {\"x\": [", "]}}");
    kserve_envelope_case("8 MB of outputs",
                         "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", "
                         "\"shape\": [1], \"data\": [1]}], \"outputs\": [", "]}");
}

/* ---- 4. compression bombs ---- */

/*
 * A gzip (or zlib) stream of: prefix, then blocks * 64 KiB of the byte fill, then suffix, with
 * a correct trailer, built without compressing it all: after a full flush the compressor's
 * state depends on nothing before, so one flushed block of fill is repeated.
 */
static unsigned char *bomb(bool gzip, const void *prefix, size_t plen, char fill,
                           uint64_t blocks, const char *suffix, size_t *out_len)
{
    enum { BLK = 65536 };
    static unsigned char in[BLK];
    memset(in, fill, sizeof in);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, gzip ? 31 : 15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = 1 << 20, len = 0;
    unsigned char *out = malloc(cap);
    unsigned char tmp[4 * BLK];
#define DEFLATE(src, n, flush)                                                                  \
    do {                                                                                        \
        z.next_in = (Bytef *)(src);                                                             \
        z.avail_in = (uInt)(n);                                                                 \
        do {                                                                                    \
            z.next_out = tmp;                                                                   \
            z.avail_out = sizeof tmp;                                                           \
            deflate(&z, (flush));                                                               \
            size_t got = sizeof tmp - z.avail_out;                                              \
            while (len + got > cap)                                                             \
                out = realloc(out, cap *= 2);                                                   \
            memcpy(out + len, tmp, got);                                                        \
            len += got;                                                                         \
        } while (z.avail_out == 0);                                                             \
    } while (0)
    DEFLATE(prefix, plen, Z_FULL_FLUSH);
    size_t a0 = len;
    DEFLATE(in, BLK, Z_FULL_FLUSH); /* one block: [a0, a1) */
    size_t a1 = len;
    DEFLATE(in, BLK, Z_FULL_FLUSH); /* the same again: must compress to the same bytes */
    size_t a2 = len;
    bool same = a2 - a1 == a1 - a0 && memcmp(out + a0, out + a1, a1 - a0) == 0;
    for (uint64_t i = 2; i < blocks; i++) {
        if (same) {
            size_t n = a1 - a0;
            while (len + n > cap)
                out = realloc(out, cap *= 2);
            memcpy(out + len, out + a0, n);
            len += n;
        } else {
            DEFLATE(in, BLK, Z_FULL_FLUSH);
        }
    }
    DEFLATE(suffix, strlen(suffix), Z_FINISH);
#undef DEFLATE
    deflateEnd(&z);
    /* The check value of everything (zlib only saw two or three blocks when they repeated). */
    uint64_t total = plen + blocks * BLK + strlen(suffix);
    if (same) {
        uLong blk = gzip ? crc32(0, in, BLK) : adler32(1, in, BLK);
        uLong all = gzip ? crc32(0, (const Bytef *)prefix, (uInt)plen)
                         : adler32(1, (const Bytef *)prefix, (uInt)plen);
        /* blocks * block, by doubling */
        uLong acc = 0;
        bool have = false;
        uLong pow = blk;
        z_off_t pow_len = BLK;
        for (uint64_t n = blocks; n; n >>= 1) {
            if (n & 1) {
                acc = have ? (gzip ? crc32_combine(acc, pow, pow_len)
                                   : adler32_combine(acc, pow, pow_len))
                           : pow;
                have = true;
            }
            pow = gzip ? crc32_combine(pow, pow, pow_len) : adler32_combine(pow, pow, pow_len);
            pow_len *= 2;
        }
        /* acc covers blocks * BLK bytes but was combined in an order where each piece is
         * all fill, so the order does not matter. */
        all = gzip ? crc32_combine(all, acc, (z_off_t)(blocks * BLK))
                   : adler32_combine(all, acc, (z_off_t)(blocks * BLK));
        uLong sfx = gzip ? crc32(0, (const Bytef *)suffix, (uInt)strlen(suffix))
                         : adler32(1, (const Bytef *)suffix, (uInt)strlen(suffix));
        all = gzip ? crc32_combine(all, sfx, (z_off_t)strlen(suffix))
                   : adler32_combine(all, sfx, (z_off_t)strlen(suffix));
        unsigned char *t = out + len - (gzip ? 8 : 4);
        if (gzip) {
            for (int i = 0; i < 4; i++)
                t[i] = (unsigned char)(all >> (8 * i)), t[4 + i] = (unsigned char)(total >> (8 * i));
        } else {
            for (int i = 0; i < 4; i++)
                t[i] = (unsigned char)(all >> (24 - 8 * i));
        }
    }
    *out_len = len;
    return out;
}

/* Inflates a bomb completely (small ones only): the bytes and the trailer check out. */
static bool bomb_self_check(bool gzip)
{
    size_t n;
    unsigned char *b = bomb(gzip, "head", 4, 'z', 16, "tail", &n);
    size_t want = 4 + 16 * 65536 + 4;
    unsigned char *out = malloc(want + 16);
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 32 + MAX_WBITS);
    z.next_in = b;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)want + 16;
    int rc = inflate(&z, Z_FINISH);
    bool ok = rc == Z_STREAM_END && z.total_out == want && !memcmp(out, "head", 4) &&
              out[4] == 'z' && out[want - 5] == 'z' && !memcmp(out + want - 4, "tail", 4);
    inflateEnd(&z);
    free(out);
    free(b);
    return ok;
}

static void bomb_case(const char *what, const char *ctype, const char *encoding,
                      const unsigned char *body, size_t len, const char *path)
{
    long before = rss_kb(srv.pid);
    bool peak_ok = sp_peak_reset(srv.pid);
    char url[256], ce[64];
    snprintf(url, sizeof url, "%s%s", srv.base, path ? path : Q);
    snprintf(ce, sizeof ce, "Content-Encoding: %s", encoding);
    char cth[96];
    snprintf(cth, sizeof cth, "Content-Type: %s", ctype);
    const char *h[] = { cth, ce, NULL };
    hc_opts o = { .timeout_ms = 120000 };
    hc_resp r;
    hc_request_ex("POST", url, h, body, len, &o, &r);
    long peak = sp_proc_kb(srv.pid, "VmHWM:");
    /* The request's memory is freed when its connection is done with it, just after the
     * answer: wait (up to 10 s; on a busy machine that can take a while) for the RSS to come
     * back. */
    long limit = before + before / 10 + RSS_SLACK_KB;
    long after = sp_rss_settle(srv.pid, limit, 10000);
    fprintf(stderr, "  bomb %-40s %zu bytes on the wire: %ld in %.2f s; RSS %ld -> %ld KiB, "
            "peak %s%ld KiB\n", what, len, r.status, r.seconds, before, after,
            peak_ok ? "" : "(since start) ", peak);
    check_error(what, &r, 413, 0, 0, "limit|max-body|large");
    /* While it lasts, a bomb costs what a body at the limit costs (256 MiB, twice that while a
     * growing buffer is copied), never the inflated gigabyte. */
    if (NEED(peak_ok, "%s: /proc/%d/clear_refs is not writable: the peak RSS is unchecked",
             what, (int)srv.pid))
        CHECK(peak - before <= 2 * 256 * 1024 + 32 * 1024, "%s: peak RSS %ld KiB over %ld KiB",
              what, peak, before);
    /* Memory comes back: the inflated bytes are not kept. */
    CHECK(after <= limit, "%s: RSS grew %ld -> %ld KiB (limit %ld: +10%% + %d KiB)", what,
          before, after, limit, RSS_SLACK_KB);
    hc_resp_free(&r);
    good_request(&srv, what);
}

static void test_bombs(void)
{
    CHECK(bomb_self_check(true) && bomb_self_check(false), "the bomb builder is wrong");
    const uint64_t GiB_blocks = 16384; /* 16384 * 64 KiB = 1 GiB */
    size_t n;
    unsigned char *b = bomb(true, "", 0, 0, GiB_blocks, "", &n);
    CHECK(n < 8u << 20, "the 1 GiB gzip bomb is %zu bytes", n);
    bomb_case("1 GiB of zeros, gzip, raw", "application/octet-stream", "gzip", b, n, NULL);
    bomb_case("1 GiB of zeros, gzip, raw with a shape", "application/octet-stream", "gzip", b, n,
              Q "?shape=67108864");
    free(b);
    b = bomb(false, "", 0, 0, GiB_blocks, "", &n);
    bomb_case("1 GiB of zeros, deflate, raw", "application/octet-stream", "deflate", b, n, NULL);
    free(b);
    b = bomb(true, "{\"input\": [1", 12, ' ', GiB_blocks, "]}", &n);
    bomb_case("1 GiB of JSON whitespace, gzip", "application/json", "gzip", b, n, NULL);
    free(b);
    /* A .npy whose header promises exactly --max-body-bytes of data (2^26 float32 = 256 MiB),
     * so the tensor buffer is filled to the limit before the 413. */
    sbuf hdr = { 0 };
    npy_build(&hdr, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (67108864,), }", NULL,
              0);
    b = bomb(true, hdr.p, hdr.len, 0, GiB_blocks, "", &n);
    bomb_case("1 GiB .npy of zeros, gzip", "application/x-npy", "gzip", b, n, NULL);
    free(b);
    free(hdr.p);
    static const char v2[] = "{\"inputs\": [{\"name\": \"input\", \"shape\": [1], "
                             "\"datatype\": \"FP32\", \"data\": [1";
    b = bomb(true, v2, sizeof v2 - 1, ' ', GiB_blocks, "]}]}", &n);
    bomb_case("1 GiB of KServe JSON whitespace, gzip", "application/json", "gzip", b, n,
              "/v2/models/quantize_and_dequantize_v2/infer");
    free(b);
}

/* ---- 5. huge heads ---- */

static void head_case(const char *what, sbuf *msg)
{
    long before = rss_kb(srv.pid);
    raw_out o;
    memset(&o, 0, sizeof o);
    int fd = raw_connect(srv.port);
    size_t sent = fd >= 0 ? raw_send(fd, msg->p, msg->len, 5000) : 0;
    if (fd >= 0)
        raw_read(fd, 1, 200, 15000, &o);
    if (fd >= 0)
        close(fd);
    responses rs;
    parse_responses(o.data.p ? o.data.p : "", o.data.len, NULL, &rs);
    long after = rss_kb(srv.pid);
    if (verbose)
        fprintf(stderr, "  head %-40s sent %zu of %zu: %d answer(s) %d, closed %d reset %d, "
                "RSS %ld -> %ld KiB\n", what, sent, msg->len, rs.n, rs.status[0], o.closed,
                o.reset, before, after);
    /* libmicrohttpd answers 431 (414 for the URI) and closes; the client may see the reset of
     * the unread bytes before it reads the answer. Never a 200, never left open. */
    CHECK(fd >= 0, "%s: cannot connect", what);
    CHECK((rs.n == 1 && (rs.status[0] == 431 || rs.status[0] == 414 || rs.status[0] == 413 ||
                         rs.status[0] == 400)) ||
          (rs.n == 0 && o.closed),
          "%s: %d answer(s), status %d, closed %d", what, rs.n, rs.status[0], o.closed);
    CHECK(o.closed, "%s: the connection was left open", what);
    CHECK(after - before < 8 * 1024, "%s: RSS %ld -> %ld KiB", what, before, after);
    free(o.data.p);
    good_request(&srv, what);
}

static void test_huge_heads(void)
{
    sbuf m = { 0 };
    sb_str(&m, "POST " Q " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "X-Big: ");
    sb_repeat(&m, "abcdefghijklmnop", 65536);
    sb_str(&m, "\r\nContent-Length: 17\r\n\r\n" JBODY);
    head_case("one 1 MiB header", &m);
    m.len = 0;
    sb_str(&m, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (int i = 0; i < 20000; i++)
        sb_printf(&m, "X-H%d: %040d\r\n", i, i);
    sb_str(&m, "\r\n");
    head_case("20000 headers (1 MiB)", &m);
    m.len = 0;
    sb_str(&m, "GET /healthz?");
    sb_repeat(&m, "a=bbbbbbbbbbbbb&", 65536);
    sb_str(&m, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    head_case("1 MiB request line", &m);
    m.len = 0;
    sb_str(&m, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fold: a\r\n");
    for (int i = 0; i < 65536; i++)
        sb_str(&m, " continued-line\r\n");
    sb_str(&m, "\r\n");
    head_case("1 MiB of obs-fold continuation lines", &m);
    free(m.p);
}

/* ---- warm-up and main ---- */

/* One warm-up request on a fresh connection (so that every HTTP thread sees each kind). */
static void warm(const char *path, const char *ctype, const char *extra, const void *body,
                 size_t len, const char *what)
{
    char url[256], cth[96];
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    snprintf(cth, sizeof cth, "Content-Type: %s", ctype);
    const char *h[] = { cth, extra, NULL };
    hc_opts o = { .timeout_ms = 60000, .fresh = true };
    hc_resp r;
    hc_request_ex("POST", url, h, body, len, &o, &r);
    CHECK(r.status == 200, "warm-up %s: %ld %.200s %s", what, r.status, r.body, r.err);
    hc_resp_free(&r);
}

/*
 * Traffic of every kind before the baseline is read: each format, compressed bodies (512 KiB
 * and 32 MiB inflated, arriving without a length), JSON bodies of 2 and 16 MB, 8 MB of KServe
 * JSON, on fresh connections so that every thread (and its malloc arena) has served each. The allocator's
 * thresholds and per-thread arenas settle here, not during the suite.
 */
static void warm_up(void)
{
    size_t n = 1u << 20;
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f[i] = (float)((int)(i % 2001) - 1000) * 0.001f;
    sbuf npy = { 0 }, small = { 0 }, big = { 0 }, huge = { 0 }, v2 = { 0 };
    npy_build(&npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1024, 1024), }", f,
              n * sizeof(float));
    sb_str(&small, "{\"input\": [");
    for (int i = 0; i < 20000; i++)
        sb_printf(&small, "%s%g", i ? "," : "", f[i]);
    sb_str(&small, "]}");
    sb_str(&big, "{\"input\": {\"dtype\": \"float64\", \"data\": [");
    for (int i = 0; i < 200000; i++)
        sb_printf(&big, "%s%g", i ? "," : "", f[i]);
    sb_str(&big, "]}}");
    /* 16 MB of JSON and 8 MB of KServe JSON: bodies as large as the suite's, decoded on the
     * workers (each thread's malloc arena keeps its high-water mark; it is reached here). */
    sb_str(&huge, "{\"input\": [");
    for (int i = 0; i < 2000000; i++)
        sb_printf(&huge, "%s%.5f", i ? "," : "", f[i % n]);
    sb_str(&huge, "]}");
    sb_str(&v2, "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", "
           "\"shape\": [1000000], \"data\": [");
    for (int i = 0; i < 1000000; i++)
        sb_printf(&v2, "%s%.5f", i ? "," : "", f[i % n]);
    sb_str(&v2, "]}]}");
    size_t zn1, zn2;
    unsigned char *z1 = bomb(true, "", 0, 0, 8, "", &zn1);   /* 512 KiB of zeros */
    unsigned char *z2 = bomb(true, "", 0, 0, 512, "", &zn2); /* 32 MiB of zeros */
    for (int round = 0; round < 4; round++) {
        warm(Q "?num_bits=8", "application/octet-stream", NULL, f, n * sizeof(float), "raw");
        warm(Q "?axis=0", "application/x-npy", NULL, npy.p, npy.len, "npy");
        warm(Q, "application/json", "Accept-Encoding: gzip", small.p, small.len, "JSON");
        warm(Q, "application/json", NULL, big.p, big.len, "2 MB JSON");
        warm(Q, "application/json", NULL, huge.p, huge.len, "16 MB JSON");
        warm("/v2/models/quantize_and_dequantize_v2/infer", "application/json", NULL, v2.p,
             v2.len, "8 MB KServe JSON");
        warm(Q, "application/octet-stream", "Content-Encoding: gzip", z1, zn1, "gzip 512 KiB");
        warm(Q, "application/octet-stream", "Content-Encoding: gzip", z2, zn2, "gzip 32 MiB");
        good_request(&srv, "warm-up");
    }
    free(z1);
    free(z2);
    free(npy.p);
    free(small.p);
    free(big.p);
    free(huge.p);
    free(v2.p);
    free(f);
}

int main(void)
{
    long long t0 = sp_now_ms();
    verbose = getenv("QDQ_TEST_VERBOSE") != NULL;
    /* The sanitizer build's server: a small quarantine, so freed memory reads as freed. */
    setenv("ASAN_OPTIONS", "quarantine_size_mb=16:allocator_release_to_os_interval_ms=100", 0);
    /* One libmicrohttpd thread: its malloc arena is warmed up for certain (with several, each
     * thread's arena reaches its own high-water mark whenever a big body first lands there:
     * up to 32 MiB each, glibc's largest mmap threshold, which is not a leak). */
    const char *args[] = { "--workers", "2", "--http-threads", "1", "--request-timeout", "20",
                           NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&srv);
        return check_done();
    }
    warm_up();
    sp_sleep_ms(300);
    long rss0 = rss_kb(srv.pid);
    fprintf(stderr, "  server RSS after warm-up: %ld KiB\n", rss0);

    test_smuggling();
    long long t1 = sp_now_ms();
    test_shapes_and_text();
    test_empty_channels();
    long long t2 = sp_now_ms();
    test_npy_pickles();
    test_kserve_envelope();
    test_bombs();
    long long t3 = sp_now_ms();
    test_huge_heads();

    long limit = rss0 + rss0 / 10 + RSS_SLACK_KB;
    long rss1 = sp_rss_settle(srv.pid, limit, 10000);
    fprintf(stderr, "  server RSS after the suite: %ld KiB (warm-up %ld KiB; limit %ld KiB = "
            "+10%% + %d KiB)\n", rss1, rss0, limit, RSS_SLACK_KB);
    CHECK(rss1 >= 0 && rss1 <= limit, "server RSS %ld KiB after the suite, %ld KiB after "
          "warm-up (limit %ld KiB)", rss1, rss0, limit);
    good_request(&srv, "everything");
    good_request(&srv, "everything");
    CHECK(sp_alive(&srv), "the server died during the tests");
    hc_thread_done();
    CHECK(sp_stop(&srv, 20000) == 0, "the server did not exit 0 on SIGTERM");
    sp_release(&srv);
    fprintf(stderr, "test_hostile: %d smuggling cases; times: smuggling %lld ms, shapes/text "
            "%lld ms, npy+bombs %lld ms, total %lld ms\n", smuggle_no, t1 - t0, t2 - t1,
            t3 - t2, sp_now_ms() - t0);
    return check_done();
}
