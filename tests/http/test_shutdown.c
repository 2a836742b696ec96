/*
 * Graceful stop (docs/api.md, "Graceful shutdown"): on SIGTERM readiness turns 503 at once;
 * for --shutdown-grace the server is a lame duck (it still accepts connections and serves every
 * request, each answer with Connection: close), then the listener closes (new connections are
 * refused) and requests in flight finish with the right answer; the process exits 0 within the
 * drain timeout. Every request a client had sent before the signal is answered 200: slow
 * uploads in flight, requests on idle keep-alive connections, and requests on connections still
 * in the listen backlog or not yet read (the server stopped with SIGSTOP while they are sent).
 * SIGINT and SIGTERM on an idle server exit 0 too (after the grace), and a request that cannot
 * finish does not hold the process past the drain timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "check.h"
#include "http_client.h"
#include "qdq.h"
#include "server_proc.h"
#include "testutil.h"

#define CLIENTS 8
#define ELEMS (1u << 20) /* 4 MiB of float32 per request */

typedef struct client {
    int id;
    const sp_server *s;
    long long send_bps;
    float *in, *want;
    qdq_attrs attrs;
    atomic_int started;
    long long t_start, t_end;
    long status;
    bool correct;
    char err[256];
} client;

static void client_prepare(client *c, int id)
{
    c->id = id;
    c->in = malloc(ELEMS * sizeof(float));
    c->want = malloc(ELEMS * sizeof(float));
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    for (uint32_t i = 0; i < ELEMS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        c->in[i] = (float)(((double)(x >> 11) / 9007199254740992.0 * 2 - 1) * (id + 1));
    }
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.num_bits = 4 + id;
    a.round_mode = id % 2 ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    c->attrs = a;
    int64_t dims[1] = { ELEMS };
    CHECK(tc_reference(QDQ_FLOAT32, dims, 1, &a, c->in, c->want) == 0, "client %d: the reference",
          id);
}

static void *client_main(void *arg)
{
    client *c = arg;
    char url[256];
    snprintf(url, sizeof url, "%s/quantize-dequantize?num_bits=%d&round_mode=%s", c->s->base,
             c->attrs.num_bits, c->attrs.round_mode ? "HALF_UP" : "HALF_TO_EVEN");
    const char *h[] = { "Content-Type: application/octet-stream", NULL };
    hc_opts o = { .timeout_ms = 60000, .max_send_bps = c->send_bps };
    hc_resp r;
    c->t_start = sp_now_ms();
    atomic_store(&c->started, 1);
    hc_request_ex("POST", url, h, c->in, ELEMS * sizeof(float), &o, &r);
    c->t_end = sp_now_ms();
    c->status = r.status;
    snprintf(c->err, sizeof c->err, "%s", r.err);
    c->correct = r.status == 200 && r.len == ELEMS * sizeof(float);
    for (uint32_t i = 0; c->correct && i < ELEMS; i++)
        c->correct = tu_same_f32(((const float *)r.body)[i], c->want[i]);
    hc_resp_free(&r);
    hc_thread_done();
    return NULL;
}

/* Waits (up to timeout_ms) until the server's output contains text; whether it does. */
static bool log_wait(const sp_server *s, const char *text, int timeout_ms)
{
    for (long long t0 = sp_now_ms();; sp_sleep_ms(10)) {
        char *log = sp_log_dup(s);
        bool has = log && strstr(log, text);
        free(log);
        if (has || sp_now_ms() - t0 > timeout_ms)
            return has;
    }
}

/* The "listener closed X s after the signal" of the server's log in ms, or -1. */
static long long log_close_ms(const sp_server *s)
{
    char *log = sp_log_dup(s);
    const char *line = log ? strstr(log, "listener closed ") : NULL;
    long long ms = line ? llround(strtod(line + strlen("listener closed "), NULL) * 1000) : -1;
    free(log);
    return ms;
}

/* A client with an idle keep-alive connection that sends the op once draining has begun. */
typedef struct late_client {
    const sp_server *s;
    atomic_int connected, go;
    long status, new_conns;
    bool answered, closes;
} late_client;

static void *late_main(void *arg)
{
    late_client *c = arg;
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", c->s->base);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    hc_resp_free(&r);
    atomic_store(&c->connected, 1);
    while (!atomic_load(&c->go))
        sp_sleep_ms(1);
    snprintf(url, sizeof url, "%s/quantize-dequantize", c->s->base);
    const char *h[] = { "Content-Type: application/json", NULL };
    const char *body = "{\"input\": [1, 2]}";
    hc_request("POST", url, h, body, strlen(body), &r);
    c->status = r.status;
    c->new_conns = r.new_conns;
    c->answered = strstr(r.body, "\"output\":[") != NULL;
    const char *conn = hc_header(&r, "Connection");
    c->closes = conn && !strcasecmp(conn, "close");
    hc_resp_free(&r);
    hc_thread_done();
    return NULL;
}

/*
 * Eight slow uploads in flight, SIGTERM, and what the server must do about them. Each step waits
 * for an event (an answer, a line of the server's log), not for a time, so that a slow machine
 * cannot trip it: the 3 s grace only needs to outlast a few requests.
 */
static void test_drain(void)
{
    sp_server s;
    const char *args[] = { "--workers", "2", "--drain-timeout", "10", "--shutdown-grace", "3",
                           NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&s);
        return;
    }
    char ready[128];
    snprintf(ready, sizeof ready, "%s/readyz", s.base);
    hc_resp r;
    hc_request("GET", ready, NULL, NULL, 0, &r); /* opens the keep-alive connection we probe on */
    CHECK(r.status == 200, "/readyz before the signal: %ld", r.status);
    hc_resp_free(&r);

    static late_client late;
    memset(&late, 0, sizeof late);
    late.s = &s;
    pthread_t late_th;
    pthread_create(&late_th, NULL, late_main, &late);
    while (!atomic_load(&late.connected))
        sp_sleep_ms(1);

    static client cs[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&cs[i], 0, sizeof cs[i]);
        client_prepare(&cs[i], i);
        cs[i].s = &s;
        cs[i].send_bps = 4 << 20; /* about one second per request */
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    for (int i = 0; i < CLIENTS; i++)
        while (!atomic_load(&cs[i].started))
            sp_sleep_ms(1);
    sp_sleep_ms(300); /* every request is now accepted and part-way through its body */
    long long t_sig = sp_now_ms();
    sp_signal(&s, SIGTERM);

    /* Readiness turns 503 on the existing connection (polled up to 20 s). A 200 read just
     * before draining began may carry Connection: close, answered just after (the server reads
     * its draining flag for the route and again for the headers): the next request then needs a
     * new connection, and that is the only reason one may be opened. */
    bool saw_503 = false, refused = false, told_close = false;
    for (long long t0 = sp_now_ms(); !saw_503 && !refused && sp_now_ms() - t0 < 20000;) {
        hc_request("GET", ready, NULL, NULL, 0, &r);
        if (r.status == 503) {
            saw_503 = true;
            const char *ct = hc_header(&r, "Content-Type");
            CHECK(ct && strcmp(ct, "application/json") == 0 && strstr(r.body, "\"error\""),
                  "/readyz 503 must be a JSON error: '%s' %.200s", ct ? ct : "(none)", r.body);
            CHECK(hc_header(&r, "Retry-After") != NULL, "/readyz 503 without Retry-After");
            CHECK(r.new_conns == 0 || told_close, "the 503 came on a new connection, not the "
                  "kept-alive one, and no answer before it said Connection: close");
        } else if (r.status == 0) {
            refused = true;
        } else {
            CHECK(r.status == 200, "/readyz while the signal is delivered: %ld", r.status);
            const char *conn = hc_header(&r, "Connection");
            told_close = conn && !strcasecmp(conn, "close");
            if (told_close)
                fprintf(stderr, "  note: a /readyz 200 came with Connection: close\n");
            sp_sleep_ms(10);
        }
        hc_resp_free(&r);
    }
    CHECK(saw_503, "/readyz did not turn 503 after SIGTERM (%s)",
          refused ? "the connection was refused" : "still 200");
    fprintf(stderr, "  readiness: %s %lld ms after the signal\n",
            saw_503 ? "503" : refused ? "connection refused" : "still 200",
            sp_now_ms() - t_sig);

    /* The op on a connection kept alive from before: served, on that connection, with
     * Connection: close (the client goes elsewhere next time). */
    atomic_store(&late.go, 1);
    pthread_join(late_th, NULL);
    CHECK(late.status == 200 && late.answered && late.closes,
          "the op on a kept-alive connection while draining: status %ld, answer %s, "
          "Connection: close %s", late.status, late.answered ? "yes" : "no",
          late.closes ? "yes" : "no");
    CHECK(late.new_conns == 0, "the draining answer came on a new connection");

    /* Within the grace, a new connection is still served, with Connection: close; the log must
     * not say the listener closed before the answer came. */
    char op[128];
    snprintf(op, sizeof op, "%s/quantize-dequantize", s.base);
    const char *h[] = { "Content-Type: application/json", NULL };
    const char *body = "{\"input\": [1, 2]}";
    hc_opts fresh = { .fresh = true, .timeout_ms = 10000 };
    hc_request_ex("POST", op, h, body, strlen(body), &fresh, &r);
    long long t_new = sp_now_ms() - t_sig;
    bool open = !log_wait(&s, "listener closed", 0);
    const char *conn = hc_header(&r, "Connection");
    CHECK(r.status == 200 && conn && !strcasecmp(conn, "close") && open,
          "a new connection %lld ms after SIGTERM (grace 3 s): status %ld, Connection %s%s",
          t_new, r.status, conn ? conn : "(none)",
          open ? "" : "; the listener had closed by then (the grace was over: a slow machine?)");
    hc_resp_free(&r);

    /* Once the server says the listener is closed, new connections are refused, and that was
     * no earlier than the grace. */
    CHECK(log_wait(&s, "listener closed", 30000), "no 'listener closed' in the server's log");
    hc_request_ex("POST", op, h, body, strlen(body), &fresh, &r);
    CHECK(r.status == 0, "a new connection once the listener closed: status %ld", r.status);
    hc_resp_free(&r);
    long long close_ms = log_close_ms(&s);
    CHECK(close_ms >= 3000, "the listener closed %lld ms after the signal (grace 3 s)",
          close_ms);

    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    int rc = sp_wait(&s, 15000);
    long long t_exit = sp_now_ms();
    for (int i = 0; i < CLIENTS; i++) {
        CHECK(cs[i].t_start < t_sig, "client %d started after the signal", i);
        CHECK(cs[i].t_end > t_sig, "client %d finished before the signal (not in flight: make "
              "the upload slower)", i);
        CHECK(cs[i].status == 200, "client %d (accepted before SIGTERM): status %ld %s", i,
              cs[i].status, cs[i].err);
        CHECK(cs[i].correct, "client %d: the answer is not right", i);
        free(cs[i].in);
        free(cs[i].want);
    }
    CHECK(rc == 0, "exit status %d after SIGTERM, want 0", rc);
    /* The server enforces the drain timeout itself; 5 s more for a busy machine's exit. */
    CHECK(t_exit - t_sig < 10000 + 5000, "exit %lld ms after SIGTERM (drain timeout 10 s)",
          t_exit - t_sig);
    fprintf(stderr, "  drain: exit %lld ms after SIGTERM\n", t_exit - t_sig);
    sp_release(&s);
}

/* A request that cannot finish in time (its upload would take 16 s) does not keep the server
 * past the drain timeout (1 s). */
static void test_drain_timeout(void)
{
    sp_server s;
    const char *args[] = { "--workers", "2", "--drain-timeout", "1", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&s);
        return;
    }
    static client c;
    memset(&c, 0, sizeof c);
    client_prepare(&c, 1);
    c.s = &s;
    c.send_bps = 256 << 10; /* about sixteen seconds */
    pthread_t th;
    pthread_create(&th, NULL, client_main, &c);
    while (!atomic_load(&c.started))
        sp_sleep_ms(1);
    sp_sleep_ms(300);
    long long t_sig = sp_now_ms();
    sp_signal(&s, SIGTERM);
    int rc = sp_wait(&s, 20000);
    long long t_exit = sp_now_ms();
    CHECK(rc == 0, "exit status %d after the drain timeout, want 0", rc);
    /* Well before the request could finish (16 s), whatever the machine's load. */
    CHECK(t_exit - t_sig < 1000 + 9000, "exit %lld ms after SIGTERM with --drain-timeout 1",
          t_exit - t_sig);
    CHECK(t_exit - t_sig >= 900, "exit %lld ms after SIGTERM: the slow request was not waited for",
          t_exit - t_sig);
    fprintf(stderr, "  drain timeout: exit %lld ms after SIGTERM\n", t_exit - t_sig);
    pthread_join(th, NULL);
    CHECK(c.status != 200, "the unfinished request cannot have succeeded (status %ld)", c.status);
    free(c.in);
    free(c.want);
    sp_release(&s);
}

/* SIGINT and SIGTERM on an idle server (with an idle keep-alive connection open): exit 0 once
 * the grace is over, not after the drain timeout (30 s by default) that the idle connection
 * might hold it for. */
static void test_idle(int sig, const char *name, const char *grace)
{
    sp_server s;
    const char *args[] = { "--shutdown-grace", grace, NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&s);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", s.base);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    CHECK(r.status == 200, "/healthz: %ld", r.status);
    hc_resp_free(&r);
    long long t0 = sp_now_ms(), g = atoi(grace) * 1000LL;
    sp_signal(&s, sig);
    int rc = sp_wait(&s, 40000);
    long long t = sp_now_ms() - t0;
    CHECK(rc == 0, "%s on an idle server: exit status %d, want 0", name, rc);
    CHECK(t >= g && t < g + 15000, "%s on an idle server, --shutdown-grace %s: exit took "
          "%lld ms (want after the grace, well before the 30 s drain timeout)", name, grace, t);
    fprintf(stderr, "  %s idle (grace %s s): exit %lld ms after the signal\n", name, grace, t);
    hc_thread_done(); /* the connection to the dead server */
    sp_release(&s);
}

/* ---- requests sent before the signal, which the server has not read yet ---- */

#define REQ_BODY "{\"input\": [[-1, -0.5], [0, 0.3]]}"
#define KEPT 16   /* keep-alive connections: one request answered, the next sent before SIGTERM */
#define FRESH 64  /* new connections (left in the listen backlog) with a request, before SIGTERM */
#define LATE 32   /* new connections left in the backlog when the grace ends */
#define BIG_N 4000000 /* elements of the JSON request that holds the only HTTP thread */

typedef struct raw_conn {
    int fd;
    char buf[8192];
    size_t len;
    int status;      /* 0 until a whole answer is in; -1 when the connection failed */
    bool closes, right;
} raw_conn;

static int raw_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 5, 0 };
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) { /* the kernel completes it */
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool raw_send(int fd)
{
    char req[512];
    int n = snprintf(req, sizeof req, "POST /quantize-dequantize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(REQ_BODY), REQ_BODY);
    return fd >= 0 && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
}

/* Closes the connections of cs[0..n) still open. */
static void raw_close(raw_conn *cs, int n)
{
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
}

/* Reads what is there; sets c->status once a whole answer (head and Content-Length body) is. */
static void raw_read(raw_conn *c)
{
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, MSG_DONTWAIT);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        c->status = -1;
        return;
    }
    if (k < 0)
        return;
    c->len += (size_t)k;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return;
    const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    size_t want = (size_t)(end + 4 - c->buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
    if (c->len < want)
        return;
    c->status = atoi(c->buf + 9);
    c->closes = strcasestr(c->buf, "\r\nConnection: close\r\n") != NULL;
    c->right = strstr(end, "0.296875") != NULL;
}

/* Reads one answer on each connection (up to 60 s); returns how many came. */
static int raw_collect(raw_conn *cs, int n)
{
    long long t0 = sp_now_ms();
    int done = 0;
    while (done < n && sp_now_ms() - t0 < 60000) {
        struct pollfd p[FRESH + KEPT];
        int map[FRESH + KEPT], m = 0;
        for (int i = 0; i < n && m < FRESH + KEPT; i++)
            if (cs[i].fd >= 0 && cs[i].status == 0)
                p[m] = (struct pollfd){ cs[i].fd, POLLIN, 0 }, map[m++] = i;
        if (!m)
            break;
        if (poll(p, (nfds_t)m, 100) <= 0)
            continue;
        for (int j = 0; j < m; j++)
            if (p[j].revents)
                raw_read(&cs[map[j]]);
        done = 0;
        for (int i = 0; i < n; i++)
            done += cs[i].status != 0;
    }
    return done;
}

/* Checks every connection's answer: 200 and the right answer, and (when `closes`) Connection:
 * close, which says the server read the request after it began draining. */
static void raw_verdict(raw_conn *cs, int n, const char *what, bool closes)
{
    int ok = 0, with_close = 0, failed = 0, other = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].status == 200 && cs[i].right)
            ok++, with_close += cs[i].closes;
        else if (cs[i].status <= 0)
            failed++;
        else
            other++;
    }
    fprintf(stderr, "  %s: %d of %d answered 200 (%d with Connection: close); %d connections "
            "failed or unanswered, %d other answers\n", what, ok, n, with_close, failed, other);
    CHECK(ok == n, "%s: %d of %d answered 200 with the right answer (%d connections failed or "
          "unanswered, %d other answers)", what, ok, n, failed, other);
    if (closes)
        CHECK(with_close == n, "%s: %d of %d answers read while draining (Connection: close)",
              what, with_close, n);
}

/* A JSON request of BIG_N numbers, sent whole on a new connection (the answer is not read). */
static int big_send(int port, const char *body, size_t len)
{
    int fd = raw_open(port);
    char head[256];
    int n = snprintf(head, sizeof head, "POST /quantize-dequantize HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", len);
    struct timeval tv = { 30, 0 };
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || send(fd, head, (size_t)n, MSG_NOSIGNAL) != n)
        return fd;
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    return fd;
}

/* Whether the server has begun to answer on fd (bytes to read, or the connection ended). */
static bool big_answering(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 0) == 1;
}

/*
 * Requests sent before SIGTERM that the server reads only after it, and connections still in
 * the listen backlog when the grace ends. The server has one HTTP thread, and a big JSON request
 * computed on it (--inline-bytes 64M) holds it for a while: meanwhile nothing is accepted or
 * read. While it is held:
 *   A. KEPT idle keep-alive connections send their next request and FRESH new connections (left
 *      in the backlog) send theirs; then SIGTERM. Each is read after draining began, and must be
 *      answered 200 (with Connection: close).
 *   B. at the end of the grace (the server stopped with SIGSTOP while it passes), LATE new
 *      connections wait in the backlog: when the listener closes they are taken from it, not
 *      reset, and answered 200.
 * Then the exit: 0, within the drain timeout.
 */
static void test_sent_before_signal(void)
{
    size_t big_len;
    char *big = NULL;
    {
        size_t cap = (size_t)BIG_N * 12 + 64, n = 0;
        big = malloc(cap);
        n += (size_t)snprintf(big, cap, "{\"input\": [");
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < BIG_N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            n += (size_t)snprintf(big + n, cap - n, "%s%.5f", i ? "," : "",
                                  (double)(x >> 11) / 9007199254740992.0 * 2 - 1);
        }
        n += (size_t)snprintf(big + n, cap - n, "]}");
        big_len = n;
    }
    sp_server s;
    const char *args[] = { "--workers", "2", "--http-threads", "1", "--inline-bytes", "64M",
                           "--drain-timeout", "60", "--shutdown-grace", "10", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&s);
        free(big);
        return;
    }
    static raw_conn kept[KEPT], fresh[FRESH], late[LATE];
    memset(kept, 0, sizeof kept);
    memset(fresh, 0, sizeof fresh);
    memset(late, 0, sizeof late);
    for (int i = 0; i < KEPT; i++) {
        kept[i].fd = raw_open(s.port);
        CHECK(raw_send(kept[i].fd), "keep-alive connection %d: first request not sent", i);
    }
    CHECK(raw_collect(kept, KEPT) == KEPT, "the first requests on keep-alive connections");
    for (int i = 0; i < KEPT; i++) {
        CHECK(kept[i].status == 200 && kept[i].right && !kept[i].closes,
              "keep-alive connection %d before the signal: %d%s", i, kept[i].status,
              kept[i].closes ? " (Connection: close)" : "");
        kept[i].len = 0;
        kept[i].status = 0;
    }

    /* A. */
    long long t_big = sp_now_ms();
    int big_fd = big_send(s.port, big, big_len);
    sp_sleep_ms(50); /* the thread reads the rest and computes */
    bool held = !big_answering(big_fd);
    int opened = 0;
    for (int i = 0; i < FRESH; i++) {
        fresh[i].fd = raw_open(s.port);
        opened += fresh[i].fd >= 0;
        CHECK(raw_send(fresh[i].fd), "new connection %d: request not sent", i);
    }
    for (int i = 0; i < KEPT; i++)
        CHECK(raw_send(kept[i].fd), "keep-alive connection %d: second request not sent", i);
    CHECK(opened == FRESH, "%d of %d connections made", opened, FRESH);
    long long t_sig = sp_now_ms();
    sp_signal(&s, SIGTERM);
    sp_sleep_ms(100);
    held = held && !big_answering(big_fd); /* still computing when the signal was handled */
    raw_collect(fresh, FRESH);
    raw_collect(kept, KEPT);
    long long t_answered = sp_now_ms();
    fprintf(stderr, "  the big request held the HTTP thread %s (sent %lld ms before SIGTERM; "
            "the others answered %lld ms after it)\n", held ? "past the signal" : "NOT past "
            "the signal: A is not exercised", t_sig - t_big, t_answered - t_sig);
    if (!held)
        SKIP("A: the big request did not hold the HTTP thread past the signal, so whether the "
             "others were read while draining (Connection: close) is unchecked");
    raw_verdict(fresh, FRESH, "A: requests sent before SIGTERM on new connections", held);
    raw_verdict(kept, KEPT, "A: requests sent before SIGTERM on idle keep-alive connections",
                held);
    close(big_fd);

    /* B: held again, and stopped until the grace is over; it needs the grace still running
     * (the log says when it ends). */
    if (log_wait(&s, "listener closed", 0)) {
        SKIP("B: the 10 s grace was over when A was done (%lld ms after the signal): the "
             "backlog at the listener's close is unchecked", sp_now_ms() - t_sig);
        raw_close(kept, KEPT);
        raw_close(fresh, FRESH);
        CHECK(sp_wait(&s, 70000) == 0, "exit status after SIGTERM, want 0");
        sp_release(&s);
        free(big);
        return;
    }
    big_fd = big_send(s.port, big, big_len);
    sp_sleep_ms(50);
    sp_signal(&s, SIGSTOP);
    held = !big_answering(big_fd);
    /* Stopped, the server cannot close its listener: wait (on the clock, so a slow machine
     * only waits longer) until its grace is surely over, then fill the backlog. */
    while (sp_now_ms() - t_sig < 10200)
        sp_sleep_ms(10);
    opened = 0;
    for (int i = 0; i < LATE; i++) {
        late[i].fd = raw_open(s.port);
        opened += late[i].fd >= 0;
        raw_send(late[i].fd);
    }
    CHECK(opened == LATE, "%d of %d connections made at the end of the grace", opened, LATE);
    sp_signal(&s, SIGCONT);
    raw_collect(late, LATE);
    raw_verdict(late, LATE, "B: requests in the backlog when the listener closed", false);
    close(big_fd);

    int rc = sp_wait(&s, 70000);
    long long t_exit = sp_now_ms() - t_sig;
    CHECK(rc == 0, "exit status %d after SIGTERM, want 0", rc);
    CHECK(t_exit >= 10000 && t_exit < 60000 + 5000, "exit %lld ms after SIGTERM (grace 10 s, "
          "drain timeout 60 s)", t_exit);
    char *log = sp_log_dup(&s);
    const char *line = log ? strstr(log, "listener closed") : NULL;
    const char *taken = line ? strstr(line, "s after the signal (") : NULL;
    int adopted = taken ? atoi(taken + 20) : -1;
    fprintf(stderr, "  exit %lld ms after SIGTERM; server: %.*s\n", t_exit,
            line ? (int)strcspn(line, "\n") : 4, line ? line : "(no log line)");
    if (held)
        CHECK(adopted == LATE, "B: %d of %d connections taken from the backlog (the HTTP thread "
              "was held)", adopted, LATE);
    else
        SKIP("B: the big request did not hold the HTTP thread while the server was stopped: how "
             "many connections were taken from the backlog is unchecked");
    free(log);
    raw_close(kept, KEPT);
    raw_close(fresh, FRESH);
    raw_close(late, LATE);
    sp_release(&s);
    free(big);
}

int main(void)
{
    long long t0 = sp_now_ms();
    test_idle(SIGINT, "SIGINT", "0");
    test_idle(SIGTERM, "SIGTERM", "2"); /* the default grace */
    test_drain();
    test_sent_before_signal();
    test_drain_timeout();
    hc_thread_done();
    fprintf(stderr, "test_shutdown: %lld ms\n", sp_now_ms() - t0);
    return check_done();
}
