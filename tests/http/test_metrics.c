/*
 * GET /metrics: valid Prometheus exposition (checked by promtool: Debian's prometheus package,
 * in scripts/install-deps.sh --dev; without it those checks are skipped, or fail with
 * QDQ_CI=1), and the numbers move as requests are served: counts by route/format/status,
 * histograms, bytes, elements by dtype; every request series labelled protocol="http" (gRPC's
 * are tested in tests/grpc). Also X-Request-Id in the access log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "server_proc.h"

static sp_server srv;

#define HTTP "protocol=\"http\"," /* the request families' first label, for HTTP's series */

static char *metrics(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.base);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    CHECK(r.status == 200, "GET /metrics: status %ld", r.status);
    const char *ct = hc_header(&r, "Content-Type");
    CHECK(ct && strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "metrics Content-Type '%s'",
          ct ? ct : "(none)");
    char *body = r.body ? strndup(r.body, r.len) : strdup("");
    hc_resp_free(&r);
    return body;
}

/* The value of the sample whose line starts with `series ` (exact series text), or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* promtool check metrics < text: 0 when it passes (or -1 when promtool is not installed). */
static int promtool(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return -1;
    char path[] = "/tmp/qdq-metrics-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = ok ? system(cmd) : 1;
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.out >&2", path);
        (void)system(cmd);
    }
    snprintf(cmd, sizeof cmd, "%s.out", path);
    unlink(cmd);
    unlink(path);
    return rc == 0 ? 0 : 1;
}

static void post(const char *path, const char *ctype, const void *body, size_t len, long want)
{
    char url[256], h[96];
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    snprintf(h, sizeof h, "Content-Type: %s", ctype);
    const char *hs[] = { h, "X-Request-Id: metrics-test-1", NULL };
    hc_resp r;
    hc_request("POST", url, hs, body, len, &r);
    CHECK(r.status == want, "POST %s (%s): status %ld, want %ld", path, ctype, r.status, want);
    hc_resp_free(&r);
}

int main(void)
{
    const char *args[] = { "--workers", "2", "--access-log", "on", NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&srv);
        return check_done();
    }
    char *before = metrics();
    int pt = promtool(before);
    if (NEED(pt >= 0, "promtool is not installed (Debian package prometheus, in "
             "scripts/install-deps.sh --dev): the idle server's exposition format is unchecked"))
        CHECK(pt == 0, "promtool rejects the idle server's metrics");
    CHECK(strstr(before, "qdq_build_info{") != NULL, "no build info");
    CHECK(sample(before, "process_start_time_seconds") > 1e9, "no process start time");
    CHECK(sample(before, "process_resident_memory_bytes") > 1e5, "no resident memory");
    CHECK(sample(before, "qdq_inflight_requests{protocol=\"http\"}") >= 0, "no HTTP in-flight gauge");
    CHECK(sample(before, "qdq_inflight_requests{protocol=\"grpc\"}") == 0,
          "no idle gRPC in-flight gauge");
    CHECK(sample(before, "qdq_queued_requests") >= 0, "no queued gauge");

    const char *json = "{\"input\": [[-1.0, -0.5], [0.0, 0.3]]}";
    for (int i = 0; i < 3; i++)
        post("/quantize-dequantize", "application/json", json, strlen(json), 200);
    float big[100000];
    for (int i = 0; i < 100000; i++)
        big[i] = (float)(i % 97) - 48.0f;
    post("/quantize-dequantize?num_bits=4", "application/octet-stream", big, sizeof big, 200);
    post("/quantize-dequantize", "application/json", "{\"input\": [1], \"num_bit\": 3}", 29, 400);
    post("/quantize-dequantize", "text/plain", "x", 1, 415);

    char *after = metrics();
    pt = promtool(after);
    if (NEED(pt >= 0, "promtool is not installed (Debian package prometheus, in "
             "scripts/install-deps.sh --dev): the exposition format after traffic is unchecked"))
        CHECK(pt == 0, "promtool rejects the metrics after traffic");
    CHECK(sample(after, "qdq_requests_total{" HTTP "route=\"qdq\",format=\"json\",status=\"200\"}")
              == 3, "json 200 count");
    CHECK(sample(after, "qdq_requests_total{" HTTP "route=\"qdq\",format=\"raw\",status=\"200\"}")
              == 1, "raw 200 count");
    CHECK(sample(after, "qdq_requests_total{" HTTP "route=\"qdq\",format=\"json\",status=\"400\"}")
              == 1, "json 400 count");
    CHECK(sample(after, "qdq_requests_total{" HTTP "route=\"qdq\",format=\"none\",status=\"415\"}")
              == 1, "415 count");
    CHECK(sample(after, "qdq_request_duration_seconds_count{" HTTP "route=\"qdq\"}") == 6,
          "request histogram count");
    CHECK(sample(after, "qdq_request_duration_seconds_bucket{" HTTP "route=\"qdq\",le=\"+Inf\"}")
              == 6, "request histogram +Inf bucket");
    CHECK(sample(after, "qdq_elements_total{dtype=\"float32\"}") == 3 * 4 + 100000,
          "elements counted: %g", sample(after, "qdq_elements_total{dtype=\"float32\"}"));
    CHECK(sample(after, "qdq_request_bytes_total{" HTTP "route=\"qdq\"}") >=
              sample(before, "qdq_request_bytes_total{" HTTP "route=\"qdq\"}") + (double)sizeof big,
          "request bytes");
    CHECK(sample(after, "qdq_response_bytes_total{" HTTP "route=\"qdq\"}") >= (double)sizeof big,
          "response bytes");
    /* Every series of the request families and the in-flight gauge names its protocol. */
    static const char *const fam[] = { "qdq_requests_total", "qdq_request_duration_seconds",
                                       "qdq_request_bytes_total", "qdq_response_bytes_total",
                                       "qdq_inflight_requests" };
    int series = 0, unlabeled = 0;
    for (const char *p = after; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        for (size_t i = 0; i < sizeof fam / sizeof *fam; i++)
            if (strncmp(p, fam[i], strlen(fam[i])) == 0) {
                series++;
                if (strncmp(p + strcspn(p, "{ \n"), "{protocol=\"", 11) != 0) {
                    unlabeled++;
                    fprintf(stderr, "  no protocol label: %.*s\n", (int)strcspn(p, "\n"), p);
                }
            }
    CHECK(series > 20 && unlabeled == 0, "%d of %d request series without a protocol label",
          unlabeled, series);
    CHECK(sample(after, "qdq_compute_duration_seconds_count") >= 1, "compute histogram");
    free(before);
    free(after);
    hc_thread_done();
    CHECK(sp_stop(&srv, 20000) == 0, "the server did not exit 0");
    char *log = sp_log_dup(&srv);
    CHECK(log && strstr(log, "id=metrics-test-1"), "the access log lacks the request id");
    free(log);
    sp_release(&srv);
    return check_done();
}
