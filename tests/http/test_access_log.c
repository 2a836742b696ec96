/*
 * The access log (server/log.c), against a real server:
 *
 *   1. Under load from several connections, with SIGTERM arriving mid-load: every request that
 *      was answered has exactly one line, every line is whole and parses (JSON format), and
 *      none is lost at the exit. Requests carry their own X-Request-Id, so each line is matched
 *      to its request. Then the same in the text format (every line has its fields).
 *   2. A sink that stops reading (stdout a pipe nobody drains): requests keep being answered,
 *      the lost lines show in qdq_access_log_dropped_lines_total, and the server still exits 0
 *      on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "server_proc.h"

#define THREADS 6
#define PER_THREAD 100000 /* at most: the stop ends a run sooner */

static sp_server srv;

typedef struct worker {
    int id;
    int sent, answered;
    char (*ids)[40]; /* the request ids answered */
} worker;

static void *load(void *arg)
{
    worker *w = arg;
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    static const float body[4] = { -1.0f, -0.5f, 0.0f, 0.3f };
    for (int i = 0; i < PER_THREAD; i++) {
        char rid[64];
        snprintf(rid, sizeof rid, "X-Request-Id: t%d-%d", w->id, i);
        const char *h[] = { "Content-Type: application/octet-stream", rid, NULL };
        hc_resp r;
        hc_request("POST", url, h, body, sizeof body, &r);
        w->sent++;
        if (r.status == 200 || r.status == 503)
            snprintf(w->ids[w->answered++], sizeof w->ids[0], "t%d-%d", w->id, i);
        int failed = r.status == 0;
        hc_resp_free(&r);
        if (failed)
            break; /* the listener closed: the run is over */
    }
    hc_thread_done();
    return NULL;
}

/* The value of "key":"..." in a JSON line (the text between the quotes), into out. */
static bool json_field(const cJSON *o, const char *key, char *out, size_t n)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    if (!v)
        return false;
    snprintf(out, n, "%s", v);
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/* Load, SIGTERM a while in, then match the lines of the log to the requests answered. */
static void run_under_load(bool json)
{
    const char *args[] = { "--access-log", "on", "--log-format", json ? "json" : "text",
                           "--workers", "2", "--http-threads", "2", "--shutdown-grace", "1",
                           "--drain-timeout", "20", NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
        return;
    }
    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ i, 0, 0, calloc(PER_THREAD, sizeof *w[i].ids) };
        pthread_create(&t[i], NULL, load, &w[i]);
    }
    sp_sleep_ms(1500);
    sp_signal(&srv, SIGTERM);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int rc = sp_wait(&srv, 30000);
    CHECK(rc == 0, "%s: exit status %d after SIGTERM under load", json ? "json" : "text", rc);

    /* Every id answered, sorted. */
    int answered = 0;
    for (int i = 0; i < THREADS; i++)
        answered += w[i].answered;
    char (*want)[40] = calloc((size_t)answered + 1, sizeof *want);
    int k = 0;
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < w[i].answered; j++)
            memcpy(want[k++], w[i].ids[j], sizeof want[0]);
    qsort(want, (size_t)answered, sizeof want[0], cmp_str);

    /* Every line of the log: whole, parseable, and for the route, with an id. */
    char *log = sp_log_dup(&srv);
    char (*got)[40] = calloc(strlen(log) / 20 + 1, sizeof *got);
    int ngot = 0, bad_lines = 0, lines = 0;
    for (char *p = log; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) {
            CHECK(0, "%s: the log ends with a cut line: '%.80s'", json ? "json" : "text", p);
            break;
        }
        *nl = '\0';
        lines++;
        char rid[64] = "";
        bool is_access = strstr(p, "/quantize-dequantize") != NULL;
        if (json) {
            cJSON *o = cJSON_Parse(p);
            /* Before issue 17's fix the server also printed a plain "listening on" line. */
            if (!o && strncmp(p, "listening on ", 13) != 0) {
                if (bad_lines++ < 3)
                    CHECK(0, "json: a line that does not parse: '%.120s'", p);
            }
            if (o && is_access) {
                char st[8];
                bool whole = json_field(o, "request_id", rid, sizeof rid) &&
                             json_field(o, "route", st, sizeof st) &&
                             cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "status")) &&
                             cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "duration_ms"));
                if (!whole && bad_lines++ < 3)
                    CHECK(0, "json: a line without its fields: '%.120s'", p);
            }
            cJSON_Delete(o);
        } else if (is_access) {
            const char *id = strstr(p, " id=");
            int fields = 0;
            for (const char *q = p; *q; q++)
                fields += *q == ' ';
            if ((!id || fields != 8) && bad_lines++ < 3)
                CHECK(0, "text: a line without its fields: '%.120s'", p);
            if (id)
                snprintf(rid, sizeof rid, "%s", id + 4);
        }
        if (is_access && rid[0])
            snprintf(got[ngot++], sizeof got[0], "%s", rid);
        p = nl + 1;
    }
    qsort(got, (size_t)ngot, sizeof got[0], cmp_str);
    /* Each answered id exactly once; lines for requests the client never saw answered (cut by
     * the stop) may exist, once each. */
    int missing = 0, twice = 0;
    for (int i = 1; i < ngot; i++)
        if (strcmp(got[i], got[i - 1]) == 0 && twice++ < 3)
            CHECK(0, "%s: two lines for request %s", json ? "json" : "text", got[i]);
    for (int i = 0; i < answered; i++)
        if (!bsearch(want[i], got, (size_t)ngot, sizeof got[0], cmp_str) && missing++ < 3)
            CHECK(0, "%s: no line for request %s, which was answered", json ? "json" : "text",
                  want[i]);
    CHECK(bad_lines == 0 && missing == 0 && twice == 0,
          "%s: %d bad lines, %d answered requests without a line, %d ids twice", json ? "json"
          : "text", bad_lines, missing, twice);
    CHECK(answered > 100, "%s: only %d requests answered before the stop", json ? "json" : "text",
          answered);
    fprintf(stderr, "  %s: %d requests answered, %d access lines, %d log lines\n",
            json ? "json" : "text", answered, ngot, lines);
    free(log);
    free(got);
    free(want);
    for (int i = 0; i < THREADS; i++)
        free(w[i].ids);
    sp_release(&srv);
}

/* ---- 2. a sink that stops reading ---- */

static long long dropped(int port)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    long long v = -1;
    const char *p = r.body ? strstr(r.body, "\nqdq_access_log_dropped_lines_total ") : NULL;
    if (p)
        v = strtoll(p + strlen("\nqdq_access_log_dropped_lines_total "), NULL, 10);
    hc_resp_free(&r);
    return v;
}

/* Requests whose lines are long (a 64-character id): ~160 bytes a line, 3 MB in all, far
 * more than the pipe and the log's queue hold. */
#define SINK_REQUESTS 5000
static int sink_port;

static void *sink_load(void *arg)
{
    int *ok = arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/quantize-dequantize", sink_port);
    static const float body[4] = { -1.0f, -0.5f, 0.0f, 0.3f };
    const char *h[] = { "Content-Type: application/octet-stream",
                        "X-Request-Id: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                        "abcdef", NULL };
    for (int i = 0; i < SINK_REQUESTS; i++) {
        hc_opts o = { .timeout_ms = 10000 };
        hc_resp r;
        hc_request_ex("POST", url, h, body, sizeof body, &o, &r);
        *ok += r.status == 200;
        hc_resp_free(&r);
    }
    hc_thread_done();
    return NULL;
}

static void stalled_sink(void)
{
    const char *bin = getenv("QDQ_SERVER");
    if (!bin || !*bin)
        bin = "build/qdq-server";
    int out[2];
    char errpath[] = "/tmp/qdq-alog-XXXXXX";
    int errfd = mkstemp(errpath);
    if (pipe(out) || errfd < 0) {
        CHECK(0, "pipe/mkstemp: %s", strerror(errno));
        return;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out[1], 1);
        dup2(errfd, 2);
        close(out[0]);
        execl(bin, bin, "--listen", "127.0.0.1:0", "--access-log", "on", "--shutdown-grace", "0",
              "--access-log-flush-ms", "50", (char *)NULL);
        _exit(127);
    }
    close(out[1]); /* out[0] is kept open and never read: the pipe fills and stays full */
    int port = 0;
    for (int i = 0; i < 200 && !port; i++) {
        sp_sleep_ms(50);
        char buf[4096] = "";
        ssize_t n = pread(errfd, buf, sizeof buf - 1, 0);
        const char *p = n > 0 ? strstr(buf, "listening on 127.0.0.1:") : NULL;
        if (p)
            port = atoi(p + strlen("listening on 127.0.0.1:"));
    }
    CHECK(port > 0, "stalled sink: the server did not start");
    if (port) {
        sink_port = port;
        pthread_t t[4];
        int ok[4] = { 0 };
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, sink_load, &ok[i]);
        int total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            total += ok[i];
        }
        CHECK(total == 4 * SINK_REQUESTS, "stalled sink: %d of %d requests answered 200", total,
              4 * SINK_REQUESTS);
        long long d = dropped(port);
        CHECK(d > 0, "stalled sink: qdq_access_log_dropped_lines_total is %lld", d);
        fprintf(stderr, "  stalled sink: %d requests answered, %lld lines dropped\n", total, d);
    }
    hc_thread_done();
    kill(pid, SIGTERM);
    int st = 0;
    long long t0 = sp_now_ms();
    pid_t r = 0;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && sp_now_ms() - t0 < 30000)
        sp_sleep_ms(20);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CHECK(r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "stalled sink: the server did not exit 0 after SIGTERM (status 0x%x)", st);
    close(out[0]);
    close(errfd);
    unlink(errpath);
}

int main(void)
{
    run_under_load(true);
    run_under_load(false);
    stalled_sink();
    return check_done();
}
