/*
 * Graceful stop (api.md section 5): on SIGTERM readiness turns 503, the listener stops
 * accepting, requests already accepted finish with the right answer, and the process exits 0
 * within the drain timeout. SIGINT on an idle server exits 0 too, and a request that cannot
 * finish does not hold the process past the drain timeout.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

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
    qdq_plan p;
    qdq_error err;
    int64_t dims[1] = { ELEMS };
    qdq_plan_init(&p, QDQ_FLOAT32, dims, 1, &a, &err);
    void *acc = malloc(qdq_acc_size(&p)), *params = malloc(qdq_params_size(&p));
    qdq_run(&p, c->in, c->want, NULL, 0, NULL, 0, acc, params, &err);
    free(acc);
    free(params);
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

/* A client with an idle keep-alive connection that sends the op once draining has begun. */
typedef struct late_client {
    const sp_server *s;
    atomic_int connected, go;
    long status, new_conns;
    bool retry_after, json;
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
        sleep_ms(1);
    snprintf(url, sizeof url, "%s/quantize-dequantize", c->s->base);
    const char *h[] = { "Content-Type: application/json", NULL };
    const char *body = "{\"input\": [1, 2]}";
    hc_request("POST", url, h, body, strlen(body), &r);
    c->status = r.status;
    c->new_conns = r.new_conns;
    c->retry_after = hc_header(&r, "Retry-After") != NULL;
    const char *ct = hc_header(&r, "Content-Type");
    c->json = ct && !strcmp(ct, "application/json") && strstr(r.body, "\"error\"");
    hc_resp_free(&r);
    hc_thread_done();
    return NULL;
}

/* Eight slow uploads in flight, SIGTERM, and what the server must do about them. */
static void test_drain(void)
{
    sp_server s;
    const char *args[] = { "--workers", "2", "--drain-timeout", "10", NULL };
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
        sleep_ms(1);

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
            sleep_ms(1);
    sleep_ms(300); /* every request is now accepted and part-way through its body */
    long long t_sig = sp_now_ms();
    sp_signal(&s, SIGTERM);

    /* Readiness turns 503 on the existing connection (or the connection is refused). */
    bool saw_503 = false, refused = false;
    for (int i = 0; i < 100 && !saw_503 && !refused; i++) {
        hc_request("GET", ready, NULL, NULL, 0, &r);
        if (r.status == 503) {
            saw_503 = true;
            const char *ct = hc_header(&r, "Content-Type");
            CHECK(ct && strcmp(ct, "application/json") == 0 && strstr(r.body, "\"error\""),
                  "/readyz 503 must be a JSON error: '%s' %.200s", ct ? ct : "(none)", r.body);
            CHECK(hc_header(&r, "Retry-After") != NULL, "/readyz 503 without Retry-After");
            CHECK(r.new_conns == 0, "the 503 came on a new connection, not the kept-alive one");
        } else if (r.status == 0) {
            refused = true;
        } else {
            CHECK(r.status == 200, "/readyz while the signal is delivered: %ld", r.status);
            sleep_ms(10);
        }
        hc_resp_free(&r);
    }
    CHECK(saw_503 || refused, "/readyz did not turn 503 after SIGTERM");
    fprintf(stderr, "  readiness: %s %lld ms after the signal\n",
            saw_503 ? "503" : refused ? "connection refused" : "still 200",
            sp_now_ms() - t_sig);

    /* The op on a connection kept alive from before: 503 with Retry-After, as JSON. */
    atomic_store(&late.go, 1);
    pthread_join(late_th, NULL);
    if (saw_503) {
        CHECK(late.status == 503 && late.retry_after && late.json,
              "the op on a kept-alive connection while draining: status %ld, Retry-After %s, "
              "JSON %s", late.status, late.retry_after ? "yes" : "no", late.json ? "yes" : "no");
        CHECK(late.new_conns == 0, "the draining 503 came on a new connection");
    }

    /* A new connection is refused (or told 503): the listener has stopped accepting. */
    char op[128];
    snprintf(op, sizeof op, "%s/quantize-dequantize", s.base);
    const char *h[] = { "Content-Type: application/json", NULL };
    const char *body = "{\"input\": [1, 2]}";
    hc_opts fresh = { .fresh = true, .timeout_ms = 5000 };
    hc_request_ex("POST", op, h, body, strlen(body), &fresh, &r);
    CHECK(r.status == 0 || r.status == 503, "a new request after SIGTERM: status %ld", r.status);
    if (r.status == 503)
        CHECK(hc_header(&r, "Retry-After") != NULL, "503 without Retry-After");
    hc_resp_free(&r);

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
    CHECK(t_exit - t_sig < 10000 + 2000, "exit %lld ms after SIGTERM (drain timeout 10 s)",
          t_exit - t_sig);
    fprintf(stderr, "  drain: exit %lld ms after SIGTERM\n", t_exit - t_sig);
    sp_release(&s);
}

/* A request that cannot finish in time does not keep the server past the drain timeout. */
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
    c.send_bps = 512 << 10; /* about eight seconds */
    pthread_t th;
    pthread_create(&th, NULL, client_main, &c);
    while (!atomic_load(&c.started))
        sleep_ms(1);
    sleep_ms(300);
    long long t_sig = sp_now_ms();
    sp_signal(&s, SIGTERM);
    int rc = sp_wait(&s, 10000);
    long long t_exit = sp_now_ms();
    CHECK(rc == 0, "exit status %d after the drain timeout, want 0", rc);
    CHECK(t_exit - t_sig < 1000 + 2000, "exit %lld ms after SIGTERM with --drain-timeout 1",
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

/* SIGINT and SIGTERM on an idle server (with an idle keep-alive connection open). */
static void test_idle(int sig, const char *name)
{
    sp_server s;
    if (sp_start(&s, NULL) != 0) {
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
    long long t0 = sp_now_ms();
    sp_signal(&s, sig);
    int rc = sp_wait(&s, 10000);
    CHECK(rc == 0, "%s on an idle server: exit status %d, want 0", name, rc);
    CHECK(sp_now_ms() - t0 < 3000, "%s on an idle server: exit took %lld ms", name,
          sp_now_ms() - t0);
    fprintf(stderr, "  %s idle: exit %lld ms after the signal\n", name, sp_now_ms() - t0);
    hc_thread_done(); /* the connection to the dead server */
    sp_release(&s);
}

int main(void)
{
    long long t0 = sp_now_ms();
    test_idle(SIGINT, "SIGINT");
    test_idle(SIGTERM, "SIGTERM");
    test_drain();
    test_drain_timeout();
    hc_thread_done();
    fprintf(stderr, "test_shutdown: %lld ms\n", sp_now_ms() - t0);
    return check_done();
}
