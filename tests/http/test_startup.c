/*
 * How the server presents itself at start and in its logs, as containers and log collectors
 * meet it:
 *  - --listen [::]:PORT listens on every interface of both families: answered over IPv4
 *    (127.0.0.1) and IPv6 (::1), as a published container port needs;
 *  - with --log-format json, every line the server writes, on stdout and stderr, from start to
 *    exit, is one JSON object (no plain "listening on" line), and the start line still gives
 *    the address and port; text logs keep the plain "listening on" line scripts wait for;
 *  - each log line is one write(): a container engine records every write of the server's
 *    stdout and stderr as its own log record, and joins records that do not end a line with the
 *    next one from either stream, so a line written in pieces comes out broken and mixed with
 *    others (podman's `logs` did so). Checked with the server's stdout and stderr a datagram
 *    socket, which keeps each write whole: every datagram must be exactly one JSON line;
 *  - the start line reports the worker and thread counts and the memory budget.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "server_proc.h"

static long get(const char *base, const char *path)
{
    char url[128];
    hc_resp r;
    snprintf(url, sizeof url, "%s%s", base, path);
    hc_request("GET", url, NULL, NULL, 0, &r);
    long status = r.status;
    hc_resp_free(&r);
    return status;
}

static void test_dual_stack(void)
{
    sp_server s;
    const char *args[] = { "--listen", "[::]:0", NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start with --listen [::]:0");
        sp_release(&s);
        return;
    }
    char v6[64];
    snprintf(v6, sizeof v6, "http://[::1]:%d", s.port);
    CHECK(get(s.base, "/healthz") == 200, "--listen [::]: not answered on IPv4 %s", s.base);
    CHECK(get(v6, "/healthz") == 200, "--listen [::]: not answered on IPv6 %s", v6);
    hc_thread_done();
    CHECK(sp_stop(&s, 20000) == 0, "[::]: the server did not exit 0");
    sp_release(&s);
}

/* Every line of text is a JSON object; returns the number of lines, or -1 after reporting the
 * first that is not. */
static int json_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        cJSON *j = hc_json_parse_exact(p, len);
        bool ok = j && cJSON_IsObject(j);
        cJSON_Delete(j);
        if (!ok) {
            CHECK(0, "log line %d is not a JSON object: '%.*s'", n + 1, (int)len, p);
            return -1;
        }
        n++;
        p += len + (eol != NULL);
    }
    return n;
}

static void test_json_logs(void)
{
    sp_server s;
    const char *args[] = { "--log-format", "json", "--access-log", "on", "--log-level", "debug",
                           "--max-memory", "600M", "--workers", "1", "--http-threads", "2",
                           NULL };
    if (sp_start(&s, args) != 0) {
        CHECK(0, "the server did not start with --log-format json");
        sp_release(&s);
        return;
    }
    char url[128];
    hc_resp r;
    snprintf(url, sizeof url, "%s/quantize-dequantize", s.base);
    const char *json = "{\"input\": [-1.0, -0.5, 0.0, 0.3]}";
    const char *hs[] = { "Content-Type: application/json", NULL };
    hc_request("POST", url, hs, json, strlen(json), &r);
    CHECK(r.status == 200, "JSON request: %ld", r.status);
    hc_resp_free(&r);
    hc_request("POST", url, hs, "{", 1, &r);
    CHECK(r.status == 400, "bad JSON request: %ld", r.status);
    hc_resp_free(&r);
    CHECK(get(s.base, "/nowhere") == 404, "404");
    hc_thread_done();
    CHECK(sp_stop(&s, 20000) == 0, "json logs: the server did not exit 0");
    char *log = sp_log_dup(&s);
    int n = log ? json_lines(log) : -1;
    /* start, 3 access lines, SIGTERM, drain, stop: at least 7 */
    CHECK(n >= 7, "%d JSON log lines, expected at least 7", n);
    char want[96];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d (1 workers, 2 http threads, "
             "max-memory 629145600)", s.port);
    CHECK(log && strstr(log, want), "the start line lacks '%s'", want);
    CHECK(log && !strstr(log, "\nlistening on") && strncmp(log, "listening on", 12) != 0,
          "a plain 'listening on' line in JSON logs");
    free(log);
    sp_release(&s);

    /* Text logs keep it, for the scripts that wait for it. */
    const char *targs[] = { "--log-format", "text", NULL };
    if (sp_start(&s, targs) == 0) {
        log = sp_log_dup(&s);
        snprintf(want, sizeof want, "\nlistening on 127.0.0.1:%d\n", s.port);
        CHECK(log && (strstr(log, want) || strncmp(log, want + 1, strlen(want + 1)) == 0),
              "text logs lack '%s'", want + 1);
        free(log);
        CHECK(sp_stop(&s, 20000) == 0, "text logs: the server did not exit 0");
    } else {
        CHECK(0, "the server did not start with --log-format text");
    }
    sp_release(&s);
}

/* Reads one datagram within ms milliseconds into buf (NUL-terminated); its length, or -1. */
static ssize_t recv_within(int fd, char *buf, size_t n, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, ms) <= 0)
        return -1;
    ssize_t k = recv(fd, buf, n - 1, 0);
    if (k >= 0)
        buf[k] = '\0';
    return k;
}

/*
 * Is one datagram (one write) whole lines, each a JSON object? Returns how many it holds, or -1
 * (the first such datagram is printed). The access log writes many lines at once; no line may
 * be cut between writes (a container engine's log driver records each write).
 */
static int whole_lines(const char *d, ssize_t k, int i)
{
    static int told;
    int lines = 0;
    bool ok = k > 0 && d[k - 1] == '\n';
    for (const char *p = d; ok && p < d + k;) {
        const char *nl = memchr(p, '\n', (size_t)(d + k - p));
        cJSON *j = hc_json_parse_exact(p, (size_t)(nl - p));
        ok = j && cJSON_IsObject(j);
        cJSON_Delete(j);
        lines++;
        p = nl + 1;
    }
    if (!ok && !told++)
        fprintf(stderr, "write %d of the server's output is not whole JSON lines: '%.*s'\n", i,
                (int)k, d);
    return ok ? lines : -1;
}

static void test_one_write_per_line(void)
{
    int sv[2];
    const char *bin = getenv("QDQ_SERVER");
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
        CHECK(0, "socketpair: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sv[1], 1);
        dup2(sv[1], 2);
        execl(bin ? bin : "build/qdq-server", "qdq-server", "--listen", "127.0.0.1:0",
              "--log-format", "json", "--log-level", "debug", "--shutdown-grace", "0",
              (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    static char d[1 << 17];
    char base[64] = "";
    int n = 0, bad = 0, lines = 0, l;
    ssize_t k = recv_within(sv[0], d, sizeof d, 10000);
    const char *at = k > 0 ? strstr(d, "listening on 127.0.0.1:") : NULL;
    if (k > 0) {
        if ((l = whole_lines(d, k, ++n)) < 0)
            bad++;
        else
            lines += l;
        if (at)
            snprintf(base, sizeof base, "http://127.0.0.1:%d", atoi(at + 23));
    }
    CHECK(base[0], "no start line in the first write: '%s'", k > 0 ? d : "(none)");
    if (base[0]) {
        char url[128];
        hc_resp r;
        const char *hs[] = { "Content-Type: application/json", NULL };
        snprintf(url, sizeof url, "%s/quantize-dequantize", base);
        for (int i = 0; i < 20; i++) {
            hc_request("POST", url, hs, i % 2 ? "{" : "{\"input\": [1.0, 2.0]}", i % 2 ? 1 : 20,
                       &r);
            hc_resp_free(&r);
        }
        hc_thread_done();
    }
    kill(pid, SIGTERM);
    while ((k = recv_within(sv[0], d, sizeof d, 3000)) > 0) {
        if ((l = whole_lines(d, k, ++n)) < 0)
            bad++;
        else
            lines += l;
    }
    int st;
    waitpid(pid, &st, 0);
    close(sv[0]);
    CHECK(bad == 0 && lines >= 24, "%d of %d writes were not whole JSON lines; %d lines in the "
          "others (want at least 24)", bad, n, lines);
}

int main(void)
{
    test_dual_stack();
    test_json_logs();
    test_one_write_per_line();
    return check_done();
}
