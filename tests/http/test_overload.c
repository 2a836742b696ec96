/*
 * Overload, slow clients, authentication and TLS, each against its own real server:
 *
 *   1. --workers 1 --max-queue 2: three big JSON requests fill the worker and the queue
 *      (qdq_queued_requests reads 3 in /metrics); new work that needs the pool then gets a JSON
 *      503 with Retry-After at once, while a small request (computed inline) and /healthz are
 *      still served ("at once" and "still served" judged by order: before the last holder's
 *      answer, not by the clock). The three finish with the exact answer; once they have, the
 *      server takes work again. Three such bursts: the peak memory of the last is no higher
 *      than the first's (admission bounds it), and the RSS afterwards is back where it was. The
 *      big request is sized at run time to take about 1.4 s of the worker, and the big probes
 *      are half its size: the server judges a request when its whole body has arrived, so the
 *      first holder must still be computing when a probe's body is in (probes as big as the
 *      holders took as long to send as a holder took to compute, and on a busy machine a slot
 *      was sometimes free). In the normal and in the sanitizer build alike.
 *   2. --request-timeout 3: 500 slowloris connections (raw non-blocking sockets) dripping one
 *      byte a second (half of them in the request head, half in the body after a complete
 *      head), and 8 clients that never read a 16 MiB response. A normal client meanwhile gets
 *      every answer right, some while every slow connection is still open; the slow
 *      connections are cut off at the deadline (not before 2.5 s; all within 20 s, where
 *      without a deadline they would drip forever) and the non-readers too. The server's own
 *      open-file limit is raised to fit --max-connections (default 1024).
 *   3. --auth-token: 401 with WWW-Authenticate without a token, with a wrong one, a prefix of
 *      it, another scheme; 200 with it; /healthz, /readyz and the KServe health routes open; a
 *      big unauthenticated upload with Expect: 100-continue refused before its body is sent.
 *   4. --tls-cert/--tls-key with a self-signed certificate made here by openssl (a temporary
 *      directory): an https request trusting that certificate gets the exact answer; plain
 *      http to the same port fails, and so does https without trusting the certificate.
 *
 * Every loop is bounded in count and time. QDQ_TEST_VERBOSE=1 prints the figures.
 */
#include <arpa/inet.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "qdq.h"
#include "sbuf.h"
#include "server_proc.h"
#include "testutil.h"

#define Q "/quantize-dequantize"
#define RSS_SLACK_KB (8 * 1024)

static bool verbose;

/* ---- small helpers ---- */

/* The value of a gauge in the /metrics text, or -1. */
static long metric(const sp_server *s, const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", s->base);
    hc_resp r;
    hc_opts o = { .timeout_ms = 30000, .fresh = true };
    hc_request_ex("GET", url, NULL, NULL, 0, &o, &r);
    long v = -1;
    size_t n = strlen(name);
    for (const char *p = r.status == 200 ? r.body : NULL; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtol(p + n + 1, NULL, 10);
            break;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    hc_resp_free(&r);
    return v;
}

/* A request whose Content-Type is JSON, on a fresh connection; fills r. */
static void post_json(const sp_server *s, const char *body, size_t len, long timeout_ms,
                      hc_resp *r)
{
    char url[128];
    snprintf(url, sizeof url, "%s" Q, s->base);
    const char *h[] = { "Content-Type: application/json", NULL };
    hc_opts o = { .timeout_ms = timeout_ms, .fresh = true };
    hc_request_ex("POST", url, h, body, len, &o, r);
}

/* A JSON body of n float32 numbers (deterministic values in [-1, 1)). */
static char *json_body(size_t n, uint64_t seed, size_t *len)
{
    sbuf b = { 0 };
    sb_str(&b, "{\"input\": [");
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    char num[32];
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = snprintf(num, sizeof num, "%s%.6f", i ? "," : "",
                         (double)(x >> 11) / 9007199254740992.0 * 2 - 1);
        sb_add(&b, num, (size_t)k);
    }
    sb_str(&b, "], \"num_bits\": 6}");
    *len = b.len;
    return b.p;
}

/* ---- 1. a full queue ---- */

typedef struct job {
    const sp_server *s;
    const char *body;
    size_t len;
    long status;
    bool retry_after, json_error;
    double seconds;
    long long t_end; /* sp_now_ms() when the answer was in */
    char *answer;
    size_t answer_len;
    char err[256];
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    hc_resp r;
    post_json(j->s, j->body, j->len, 120000, &r);
    j->t_end = sp_now_ms();
    j->status = r.status;
    j->seconds = r.seconds;
    j->retry_after = hc_header(&r, "Retry-After") != NULL;
    const char *ct = hc_header(&r, "Content-Type");
    j->json_error = ct && !strcmp(ct, "application/json") && strstr(r.body, "\"error\"");
    snprintf(j->err, sizeof j->err, "%s", r.err);
    j->answer = r.body;
    j->answer_len = r.len;
    r.body = NULL;
    hc_resp_free(&r);
    hc_thread_done();
    return NULL;
}

typedef struct burst_result {
    long peak_growth_kb;
    long probes_503, probes_early; /* 503s, and those answered before the last holder's 200 */
    bool saw_full;
} burst_result;

static void burst(const sp_server *s, const char *big, size_t big_len, const char *want,
                  size_t want_len, const char *probe, size_t probe_len, const char *medium,
                  size_t medium_len, int round,
                  burst_result *out)
{
    memset(out, 0, sizeof *out);
    long before = sp_proc_kb(s->pid, "VmRSS:");
    bool peak_ok = sp_peak_reset(s->pid);
    job holders[3], probes[4];
    pthread_t th[3], tp[4];
    for (int i = 0; i < 3; i++) {
        holders[i] = (job){ .s = s, .body = big, .len = big_len };
        pthread_create(&th[i], NULL, job_main, &holders[i]);
    }
    /* Wait (bounded) until the worker and the queue are full. */
    long long t0 = sp_now_ms();
    long q = -1;
    while (sp_now_ms() - t0 < 20000 && (q = metric(s, "qdq_queued_requests")) < 3)
        sp_sleep_ms(5);
    out->saw_full = q >= 3;
    CHECK(out->saw_full, "burst %d: the queue never filled (qdq_queued_requests %ld)", round, q);
    /* New work that needs the pool: two big, two medium (over --inline-bytes). */
    for (int i = 0; i < 4; i++) {
        probes[i] = (job){ .s = s, .body = i < 2 ? probe : medium,
                           .len = i < 2 ? probe_len : medium_len };
        pthread_create(&tp[i], NULL, job_main, &probes[i]);
    }
    /* Meanwhile, work that needs no pool is served: a small JSON request and /healthz. "At
     * once" is judged by order, not by the clock: before the last holder's answer (had it
     * waited for the pool, it would come after the three holders, or be refused). */
    long long small_end = 0;
    {
        hc_resp r;
        const char *small = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
        post_json(s, small, strlen(small), 60000, &r);
        small_end = sp_now_ms();
        CHECK(r.status == 200 && strstr(r.body, "0.296875"),
              "burst %d: a small request while the queue is full: %ld %.200s", round, r.status,
              r.body);
        hc_resp_free(&r);
        char url[128];
        snprintf(url, sizeof url, "%s/healthz", s->base);
        hc_opts o = { .timeout_ms = 30000, .fresh = true };
        hc_request_ex("GET", url, NULL, NULL, 0, &o, &r);
        CHECK(r.status == 200, "burst %d: /healthz while the queue is full: %ld", round,
              r.status);
        hc_resp_free(&r);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    long long last_holder = 0;
    for (int i = 0; i < 3; i++)
        last_holder = holders[i].t_end > last_holder ? holders[i].t_end : last_holder;
    CHECK(small_end < last_holder, "burst %d: the small request was answered %lld ms after the "
          "last holder: it waited for the pool", round, small_end - last_holder);
    for (int i = 0; i < 4; i++) {
        pthread_join(tp[i], NULL);
        job *p = &probes[i];
        out->probes_503 += p->status == 503;
        out->probes_early += p->status == 503 && p->t_end < last_holder;
        CHECK(p->status == 503 && p->retry_after && p->json_error,
              "burst %d: probe %d (%s) while the queue was full: status %ld, Retry-After %s, "
              "JSON error %s (%.2f s) %s", round, i, i < 2 ? "big" : "medium", p->status,
              p->retry_after ? "yes" : "no", p->json_error ? "yes" : "no", p->seconds, p->err);
        CHECK(p->status != 503 || p->t_end < last_holder, "burst %d: the 503 came %lld ms after "
              "the last holder's answer: it waited for the queue", round,
              p->t_end - last_holder);
        if (verbose)
            fprintf(stderr, "  burst %d probe %d: %ld in %.3f s\n", round, i, p->status,
                    p->seconds);
        free(p->answer);
    }
    for (int i = 0; i < 3; i++) {
        job *h = &holders[i];
        CHECK(h->status == 200 && h->answer_len == want_len &&
              memcmp(h->answer, want, want_len) == 0,
              "burst %d: holder %d: status %ld, %zu bytes (want the %zu-byte answer) %s", round,
              i, h->status, h->answer_len, want_len, h->err);
        if (verbose)
            fprintf(stderr, "  burst %d holder %d: %ld in %.3f s\n", round, i, h->status,
                    h->seconds);
        free(h->answer);
    }
    long peak = sp_proc_kb(s->pid, "VmHWM:");
    out->peak_growth_kb = peak_ok ? peak - before : -1;
}

static void test_queue(void)
{
    sp_server s;
    const char *args[] = { "--workers", "1", "--max-queue", "2", "--request-timeout", "60",
                           NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the queue server did not start");
        sp_release(&s);
        return;
    }
    /* Calibrate: a request of n elements should hold the worker for about 1.4 s. */
    size_t n = 1000000, len;
    char *big = json_body(n, 1, &len);
    hc_resp r;
    post_json(&s, big, len, 60000, &r);
    double t = r.status == 200 ? r.seconds : 0.2;
    hc_resp_free(&r);
    size_t want_n = (size_t)((double)n * 1.4 / (t > 0.01 ? t : 0.01));
    n = want_n < 1000000 ? 1000000 : want_n > 16000000 ? 16000000 : want_n;
    free(big);
    big = json_body(n, 1, &len);
    post_json(&s, big, len, 60000, &r);
    CHECK(r.status == 200, "the big request alone: %ld %s", r.status, r.err);
    char *want = r.body;
    size_t want_len = r.len;
    double t_alone = r.seconds;
    r.body = NULL;
    hc_resp_free(&r);
    size_t medium_len;
    char *medium = json_body(20000, 2, &medium_len); /* ~200 KB: over --inline-bytes */
    size_t probe_len;
    char *probe = json_body(n / 2, 3, &probe_len);
    fprintf(stderr, "  queue: big request of %zu elements (%zu bytes): %.2f s alone\n", n, len,
            t_alone);

    sp_sleep_ms(200);
    long rss0 = sp_proc_kb(s.pid, "VmRSS:");
    burst_result b[3];
    for (int i = 0; i < 3; i++) {
        burst(&s, big, len, want, want_len, probe, probe_len, medium, medium_len, i + 1,
              &b[i]);
        /* Load drops: the server takes work again once the queue has drained. */
        long long t0 = sp_now_ms();
        while (sp_now_ms() - t0 < 10000 && metric(&s, "qdq_queued_requests") != 0)
            sp_sleep_ms(10);
        for (int k = 0; k < 3; k++) {
            post_json(&s, medium, medium_len, 30000, &r);
            CHECK(r.status == 200, "burst %d: after the load, request %d: %ld %.200s", i + 1, k,
                  r.status, r.body);
            hc_resp_free(&r);
        }
        post_json(&s, big, len, 60000, &r);
        CHECK(r.status == 200 && r.len == want_len && !memcmp(r.body, want, want_len),
              "burst %d: the big request after the load: %ld", i + 1, r.status);
        hc_resp_free(&r);
    }
    /* Pages freed between live buffers go back at the server's next malloc_trim (every 5 s). */
    long rss1 = sp_rss_settle(s.pid, rss0 + rss0 / 10 + RSS_SLACK_KB, 15000);
    fprintf(stderr, "  queue: peak growth per burst %ld, %ld, %ld KiB; 503s %ld+%ld+%ld of 12; "
            "RSS %ld -> %ld KiB\n", b[0].peak_growth_kb, b[1].peak_growth_kb,
            b[2].peak_growth_kb, b[0].probes_503, b[1].probes_503, b[2].probes_503, rss0, rss1);
    if (NEED(b[0].peak_growth_kb >= 0 && b[2].peak_growth_kb >= 0, "/proc/%d/clear_refs is "
             "not writable: the peak memory of the bursts is unchecked", (int)s.pid))
        CHECK(b[2].peak_growth_kb <= b[0].peak_growth_kb + b[0].peak_growth_kb / 4 + 16384,
              "peak memory grows from burst to burst: %ld then %ld KiB", b[0].peak_growth_kb,
              b[2].peak_growth_kb);
    CHECK(rss1 <= rss0 + rss0 / 10 + RSS_SLACK_KB, "RSS %ld KiB after the bursts, %ld before",
          rss1, rss0);
    CHECK(sp_stop(&s, 30000) == 0, "the queue server did not exit 0");
    sp_release(&s);
    free(big);
    free(want);
    free(medium);
    free(probe);
}

/* ---- 2. slow clients ---- */

/* Whether the server has closed fd: reads (and drops) what is there; true on EOF or error. */
static bool peer_closed(int fd)
{
    char buf[65536];
    for (int i = 0; i < 1024; i++) {
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k > 0)
            continue;
        if (k == 0)
            return true;
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
    return false;
}

/*
 * The TCP state of the server's end of the connection fd (from /proc/net/tcp: 1 established,
 * 4 FIN-WAIT-1, ...), or 0 when the server's end is gone. A client that never reads cannot see
 * the end of its connection (the server's FIN waits behind unsent data), but the kernel knows
 * that the server has shut it down.
 */
static int server_end_state(int fd, int server_port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    unsigned client_port = ntohs(a.sin_port);
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    char line[512];
    int state = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned lp, rp, st;
        if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lp, &rp, &st) == 3 &&
            lp == (unsigned)server_port && rp == client_port) {
            state = (int)st;
            break;
        }
    }
    fclose(f);
    return state;
}

typedef struct normal_client {
    const sp_server *s;
    atomic_int stop;
    int requests, ok;
    double max_s, sum_s;
    long bad_status;
    long long ok_at[200]; /* sp_now_ms() of each right answer */
} normal_client;

static void *normal_main(void *arg)
{
    normal_client *c = arg;
    const char *body = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
    for (int i = 0; i < 200 && !atomic_load(&c->stop); i++) {
        hc_resp r;
        /* A new connection each time: a client arriving while the slow ones hold theirs. */
        post_json(c->s, body, strlen(body), 60000, &r);
        c->requests++;
        if (r.status == 200 && strstr(r.body, "0.296875"))
            c->ok_at[c->ok++] = sp_now_ms();
        else
            c->bad_status = r.status;
        c->sum_s += r.seconds;
        if (r.seconds > c->max_s)
            c->max_s = r.seconds;
        hc_resp_free(&r);
        sp_sleep_ms(100);
    }
    hc_thread_done();
    return NULL;
}

#define SLOW 500
#define NONREADERS 8

static void test_slow_clients(void)
{
    /* 500 sockets here and as many in the server (which inherits this limit, and raises its
     * own soft limit to what --max-connections needs): up to the hard limit. */
    struct rlimit rl;
    int slow = SLOW;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)SLOW + 128) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)SLOW + 128
                          ? (rlim_t)SLOW + 128 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)SLOW + 128) {
            slow = (int)rl.rlim_cur - 128;
            fprintf(stderr, "  note: the open-file hard limit is %llu: %d slow connections, "
                    "not %d\n", (unsigned long long)rl.rlim_max, slow, SLOW);
        }
    }
    sp_server s;
    /* The default --max-connections (1024, shared among the --http-threads) holds them. */
    const char *args[] = { "--request-timeout", "3", "--workers", "2", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the slow-client server did not start");
        sp_release(&s);
        return;
    }
    long rss0 = sp_proc_kb(s.pid, "VmRSS:");
    /* The slow ones: half drip the head, half send the head at once and drip the body. */
    static const char head[] = "POST " Q " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    int fds[SLOW];
    size_t pos[SLOW];
    long long opened[SLOW], closed_at[SLOW];
    int nfd = 0;
    for (int i = 0; i < slow; i++) {
        int fd = hc_raw_connect(s.port);
        if (fd < 0)
            break;
        fds[nfd] = fd;
        pos[nfd] = 0;
        opened[nfd] = sp_now_ms();
        closed_at[nfd] = 0;
        if (i % 2 == 1) {
            send(fd, head, sizeof head - 1, MSG_NOSIGNAL);
            pos[nfd] = sizeof head - 1;
        }
        nfd++;
    }
    CHECK(nfd == slow, "opened %d of %d slow connections", nfd, slow);
    /* Clients that never read: a 16 MiB raw answer each, never read. */
    size_t big_n = 4u << 20;
    float *data = calloc(big_n, sizeof(float));
    for (size_t i = 0; i < big_n; i++)
        data[i] = (float)(i % 1000) * 0.001f;
    int nr[NONREADERS];
    long long nr_opened = sp_now_ms(), nr_closed[NONREADERS];
    for (int i = 0; i < NONREADERS; i++) {
        nr_closed[i] = 0;
        nr[i] = hc_raw_connect(s.port);
        if (nr[i] < 0)
            continue;
        int small = 4096;
        setsockopt(nr[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        char h[256];
        int hn = snprintf(h, sizeof h, "POST " Q " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                          big_n * sizeof(float));
        send(nr[i], h, (size_t)hn, MSG_NOSIGNAL);
        /* The body (16 MiB) goes out as the server takes it; bounded by time below. */
    }
    normal_client nc = { .s = &s };
    pthread_t nt;
    pthread_create(&nt, NULL, normal_main, &nc);

    /* Drip for up to 20 s: one byte a second to each slow connection still open; push the
     * non-readers' bodies; note when the server closes each. Done once every slow connection
     * is closed and every non-reader cut (and 4.6 s have passed). */
    size_t nr_sent[NONREADERS] = { 0 };
    long long t0 = sp_now_ms(), next_drip = t0;
    while (sp_now_ms() - t0 < 20000) {
        long long now = sp_now_ms();
        if (now >= next_drip) {
            for (int i = 0; i < nfd; i++) {
                if (closed_at[i])
                    continue;
                char c = pos[i] < sizeof head - 1 ? head[pos[i]] : '1';
                ssize_t k = send(fds[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k == 1)
                    pos[i]++;
                else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                    closed_at[i] = now;
            }
            next_drip += 1000;
        }
        for (int i = 0; i < nfd; i++)
            if (!closed_at[i] && peer_closed(fds[i]))
                closed_at[i] = sp_now_ms();
        for (int i = 0; i < NONREADERS; i++) {
            if (nr[i] < 0 || nr_closed[i])
                continue;
            size_t total = big_n * sizeof(float);
            if (nr_sent[i] < total) {
                ssize_t k = send(nr[i], (const char *)data + nr_sent[i], total - nr_sent[i],
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0)
                    nr_sent[i] += (size_t)k;
                else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                    nr_closed[i] = sp_now_ms();
            } else {
                /* Never read: only look whether the server gave up on it (an error on the
                 * socket; EOF cannot be seen without reading). */
                int err = 0;
                socklen_t el = sizeof err;
                struct pollfd p = { nr[i], 0, 0 };
                if ((poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP))) ||
                    (getsockopt(nr[i], SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err))
                    nr_closed[i] = sp_now_ms();
            }
        }
        bool all = true;
        for (int i = 0; i < nfd && all; i++)
            all = closed_at[i] != 0;
        for (int i = 0; i < NONREADERS && all && sp_now_ms() - t0 > 4600; i++) {
            int st = nr[i] < 0 ? 0 : server_end_state(nr[i], s.port);
            all = nr[i] < 0 || nr_closed[i] || (st >= 0 && st != 1);
        }
        if (all && sp_now_ms() - t0 > 4600)
            break;
        sp_sleep_ms(20);
    }
    long rss_mid = sp_proc_kb(s.pid, "VmRSS:");
    atomic_store(&nc.stop, 1);
    pthread_join(nt, NULL);

    /* The slow ones: cut at the deadline (3 s; the sweep runs four times a second), never
     * before it. */
    int cut = 0, early = 0, late = 0;
    long long first = -1, last = -1;
    for (int i = 0; i < nfd; i++) {
        if (!closed_at[i]) {
            late++;
            continue;
        }
        long long d = closed_at[i] - opened[i];
        cut++;
        if (d < 2500)
            early++;
        if (first < 0 || d < first)
            first = d;
        if (d > last)
            last = d;
    }
    /* The non-readers: by now the server has shut their connections down. */
    int nr_cut = 0;
    for (int i = 0; i < NONREADERS; i++) {
        if (nr[i] < 0)
            continue;
        int st = server_end_state(nr[i], s.port);
        bool closed = nr_closed[i] || (st >= 0 && st != 1);
        if (verbose)
            fprintf(stderr, "  non-reader %d: sent %zu, server end in TCP state %d: %s\n", i,
                    nr_sent[i], st, closed ? "shut down by the server" : "still open");
        nr_cut += closed;
    }
    /* The normal client's right answers that came while every slow connection was open. */
    long long first_close = 0;
    for (int i = 0; i < nfd; i++)
        if (closed_at[i] && (!first_close || closed_at[i] < first_close))
            first_close = closed_at[i];
    int ok_held = 0;
    for (int i = 0; i < nc.ok; i++)
        ok_held += first_close && nc.ok_at[i] < first_close;
    fprintf(stderr, "  slow clients: %d slowloris cut between %lld and %lld ms (%d early, %d "
            "still open); %d/%d non-readers cut; normal client: %d/%d answered (%d while all "
            "slow ones were open), max %.0f ms, mean %.0f ms; RSS %ld -> %ld KiB\n", cut, first,
            last, early, late, nr_cut, NONREADERS, nc.ok, nc.requests, ok_held, nc.max_s * 1000,
            nc.requests ? nc.sum_s / nc.requests * 1000 : 0.0, rss0, rss_mid);
    CHECK(late == 0, "%d of %d slow connections were still open after 20 s (--request-timeout "
          "3)", late, nfd);
    CHECK(early == 0, "%d slow connections were cut before 2.5 s (--request-timeout 3)", early);
    CHECK(nr_cut == NONREADERS, "%d of %d clients that never read were cut", nr_cut, NONREADERS);
    CHECK(nc.requests >= 1 && nc.ok == nc.requests, "normal client: %d of %d answered right "
          "(last bad status %ld)", nc.ok, nc.requests, nc.bad_status);
    CHECK(ok_held >= 1, "normal client: no answer while the %d slow connections were all open "
          "(%d answers in all)", nfd, nc.ok);
    /* 64 KiB of connection memory per slow connection, and the non-readers' 16 MiB tensor
     * buffers, which the buffer cache keeps warm afterwards (by design, up to 768 MiB). */
    CHECK(rss_mid - rss0 < 64 * 1024 + NONREADERS * 17 * 1024, "RSS %ld -> %ld KiB with %d slow "
          "connections", rss0, rss_mid, nfd);
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    for (int i = 0; i < NONREADERS; i++)
        if (nr[i] >= 0)
            close(nr[i]);
    free(data);
    /* The server is fine afterwards. */
    hc_resp r;
    const char *body = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
    post_json(&s, body, strlen(body), 5000, &r);
    CHECK(r.status == 200 && strstr(r.body, "0.296875"), "after the slow clients: %ld",
          r.status);
    hc_resp_free(&r);
    (void)nr_opened;
    CHECK(sp_stop(&s, 20000) == 0, "the slow-client server did not exit 0");
    sp_release(&s);
}

/* ---- 3. bearer token ---- */

static void auth_case(const sp_server *s, const char *method, const char *path,
                      const char *authorization, long want)
{
    char url[160], hdr[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *h[3] = { "Content-Type: application/json", NULL, NULL };
    if (authorization) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", authorization);
        h[1] = hdr;
    }
    const char *body = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
    bool post = !strcmp(method, "POST");
    hc_opts o = { .timeout_ms = 30000, .fresh = true };
    hc_resp r;
    hc_request_ex(method, url, h, post ? body : NULL, post ? strlen(body) : 0, &o, &r);
    CHECK(r.status == want, "%s %s with '%s': %ld, want %ld (%.200s)", method, path,
          authorization ? authorization : "(no Authorization)", r.status, want, r.body);
    if (want == 401) {
        const char *w = hc_header(&r, "WWW-Authenticate");
        CHECK(w && strncasecmp(w, "Bearer", 6) == 0, "%s %s: 401 without WWW-Authenticate: "
              "Bearer (%s)", method, path, w ? w : "none");
        const char *ct = hc_header(&r, "Content-Type");
        CHECK(ct && !strcmp(ct, "application/json") && strstr(r.body, "\"error\""),
              "%s %s: 401 is not a JSON error: %.200s", method, path, r.body);
        CHECK(!strstr(r.body, "s3cr3t-t0ken"), "the 401 echoes the token");
    }
    if (want == 200 && post)
        CHECK(strstr(r.body, "0.296875") != NULL, "authorized request: %.200s", r.body);
    hc_resp_free(&r);
}

static void test_auth(void)
{
    sp_server s;
    const char *args[] = { "--auth-token", "s3cr3t-t0ken", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the auth server did not start");
        sp_release(&s);
        return;
    }
    auth_case(&s, "POST", Q, NULL, 401);
    auth_case(&s, "POST", Q, "Bearer wrong", 401);
    auth_case(&s, "POST", Q, "Bearer s3cr3t-t0ke", 401);
    auth_case(&s, "POST", Q, "Bearer s3cr3t-t0ken2", 401);
    auth_case(&s, "POST", Q, "Bearer ", 401);
    auth_case(&s, "POST", Q, "Basic czNjcjN0LXQwa2Vu", 401);
    auth_case(&s, "POST", Q, "s3cr3t-t0ken", 401);
    auth_case(&s, "POST", Q, "Bearer S3CR3T-T0KEN", 401);
    auth_case(&s, "POST", Q, "Bearer s3cr3t-t0ken", 200);
    auth_case(&s, "POST", Q, "bearer s3cr3t-t0ken", 200); /* the scheme is case-insensitive */
    auth_case(&s, "POST", "/v2/models/quantize_and_dequantize_v2/infer", NULL, 401);
    auth_case(&s, "GET", "/metrics", NULL, 401);
    auth_case(&s, "GET", "/metrics", "Bearer s3cr3t-t0ken", 200);
    auth_case(&s, "GET", "/v2", NULL, 401);
    auth_case(&s, "GET", "/nope", NULL, 401); /* routes are not revealed without the token */
    auth_case(&s, "GET", "/healthz", NULL, 200);
    auth_case(&s, "GET", "/readyz", NULL, 200);
    auth_case(&s, "GET", "/v2/health/live", NULL, 200);
    auth_case(&s, "GET", "/v2/health/ready", NULL, 200);
    auth_case(&s, "GET", "/healthz", "Bearer wrong", 200);
    /* A big unauthenticated upload is refused without being read (Expect lets curl wait). */
    {
        char url[128];
        snprintf(url, sizeof url, "%s" Q, s.base);
        size_t n = 32u << 20;
        char *body = calloc(n, 1);
        const char *h[] = { "Content-Type: application/octet-stream", "Expect: 100-continue",
                            NULL };
        hc_opts o = { .timeout_ms = 60000, .fresh = true };
        hc_resp r;
        hc_request_ex("POST", url, h, body, n, &o, &r);
        CHECK(r.status == 401, "unauthenticated 32 MiB upload: %ld %s", r.status, r.err);
        CHECK(r.sent == 0, "unauthenticated upload: %lld of its %zu bytes were sent before the "
              "401 (the server let curl go on past Expect: 100-continue)", r.sent, n);
        hc_resp_free(&r);
        free(body);
    }
    CHECK(sp_stop(&s, 20000) == 0, "the auth server did not exit 0");
    sp_release(&s);
}

/* ---- 4. TLS ---- */

static size_t tls_write(char *d, size_t size, size_t n, void *cls)
{
    sb_add(cls, d, size * n);
    return size * n;
}

/* One request with curl directly (the shared client has no TLS options). */
static long tls_request(const char *url, int port, const char *cainfo, sbuf *out, char *err,
                        size_t errn)
{
    CURL *h = curl_easy_init();
    char resolve[64], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(resolve, sizeof resolve, "localhost:%d:127.0.0.1", port);
    struct curl_slist *res = curl_slist_append(NULL, resolve);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *body = "{\"input\": [[-1, -0.5], [0, 0.3]]}";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tls_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (cainfo) {
        curl_easy_setopt(h, CURLOPT_CAINFO, cainfo);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    snprintf(err, errn, "%s%s%s", rc ? curl_easy_strerror(rc) : "", rc ? ": " : "", errbuf);
    curl_slist_free_all(res);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? status : 0;
}

static void test_tls(void)
{
    if (system("command -v openssl > /dev/null 2>&1") != 0) {
        CHECK(0, "openssl is not installed (a dev dependency of this test)");
        return;
    }
    char dir[] = "/tmp/qdq-tls-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    char cert[96], key[96], cmd[512];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s > %s/openssl.log 2>&1", key, cert, dir);
    int rc = system(cmd);
    CHECK(rc == 0, "openssl req failed (%d): see %s/openssl.log", rc, dir);
    sp_server s;
    const char *args[] = { "--tls-cert", cert, "--tls-key", key, NULL };
    if (rc == 0 && sp_start(&s, args) == 0) {
        char url[128], err[512];
        sbuf out = { 0 };
        snprintf(url, sizeof url, "https://localhost:%d" Q, s.port);
        long st = tls_request(url, s.port, cert, &out, err, sizeof err);
        CHECK(st == 200 && out.p && strstr(out.p, "0.296875"), "https with the certificate "
              "trusted: %ld %s %.200s", st, err, out.p ? out.p : "");
        if (verbose)
            fprintf(stderr, "  tls: https %ld %s\n", st, err);
        out.len = 0;
        snprintf(url, sizeof url, "http://localhost:%d" Q, s.port);
        st = tls_request(url, s.port, NULL, &out, err, sizeof err);
        CHECK(st == 0 || st >= 400, "plain http to the TLS port: %ld (%.100s)", st,
              out.p ? out.p : "");
        if (verbose)
            fprintf(stderr, "  tls: plain http -> %ld %s\n", st, err);
        out.len = 0;
        snprintf(url, sizeof url, "https://localhost:%d" Q, s.port);
        st = tls_request(url, s.port, "/nonexistent-ca.pem", &out, err, sizeof err);
        CHECK(st == 0, "https without trusting the certificate succeeded: %ld", st);
        free(out.p);
        CHECK(sp_alive(&s), "the TLS server died");
        CHECK(sp_stop(&s, 20000) == 0, "the TLS server did not exit 0");
        sp_release(&s);
    } else if (rc == 0) {
        CHECK(0, "the TLS server did not start");
        sp_release(&s);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  note: could not remove %s\n", dir);
}

int main(void)
{
    long long t0 = sp_now_ms();
    verbose = getenv("QDQ_TEST_VERBOSE") != NULL;
    setenv("ASAN_OPTIONS", "quarantine_size_mb=16:allocator_release_to_os_interval_ms=100", 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_queue();
    long long t1 = sp_now_ms();
    test_slow_clients();
    long long t2 = sp_now_ms();
    test_auth();
    test_tls();
    hc_thread_done();
    curl_global_cleanup();
    fprintf(stderr, "test_overload: queue %lld ms, slow clients %lld ms, auth+TLS %lld ms\n",
            t1 - t0, t2 - t1, sp_now_ms() - t2);
    return check_done();
}
