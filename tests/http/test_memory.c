/*
 * The memory budget (--max-memory, server/budget.c), against a real server: twelve concurrent
 * 256 MiB raw requests with a 600 MiB budget. Every one is answered 200 with the right bytes
 * or 503 with Retry-After (it waited for room and the wait ran out), none is lost to a crash,
 * the server's peak RSS stays under the budget plus a small constant, and its RSS comes back
 * near idle once the cache's idle time has passed. Also: a request larger than the whole
 * budget is refused at once (413), a chunked body that outgrows the room gets 503, and
 * /metrics shows the budget, the bytes held and the requests waiting.
 *
 * The tensor holds whole numbers in [-128, 127] and the request gives that range (num_bits 8,
 * range_given): the op's scale is 1, so the right answer is the input itself, compared as it
 * streams in (no client holds twelve answers).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "server_proc.h"

#define REQS 12
#define MIB (1024L * 1024)
#define BYTES (256 * MIB)
#define BUDGET_MIB 600
#define RSS_SLACK_MIB 96 /* libmicrohttpd's connection memory, threads' stacks, the heap */

static sp_server srv;
static float *input;

typedef struct req {
    long status;
    bool retry_after;
    size_t got;      /* body bytes received */
    size_t mismatch; /* the first differing byte + 1, or 0 */
    size_t sent;
    char err[CURL_ERROR_SIZE];
} req;

static size_t on_body(char *p, size_t size, size_t n, void *cls)
{
    req *r = cls;
    size_t k = size * n;
    if (r->got + k <= BYTES && !r->mismatch && memcmp((char *)input + r->got, p, k) != 0)
        for (size_t i = 0; i < k; i++)
            if (((char *)input)[r->got + i] != p[i]) {
                r->mismatch = r->got + i + 1;
                break;
            }
    r->got += k;
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *cls)
{
    req *r = cls;
    if (size * n >= 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        r->retry_after = true;
    return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *cls)
{
    req *r = cls;
    size_t k = size * n < BYTES - r->sent ? size * n : BYTES - r->sent;
    memcpy(p, (char *)input + r->sent, k);
    r->sent += k;
    return k;
}

static void *one(void *arg)
{
    req *r = arg;
    char url[256];
    snprintf(url, sizeof url, "%s/quantize-dequantize?shape=%ld&num_bits=8&range_given=true"
             "&input_min=-128&input_max=127", srv.base, BYTES / 4);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)BYTES);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 180L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static long metric(const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.base);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = r.body ? strstr(r.body, key) : NULL;
    long v = p ? strtol(p + strlen(key), NULL, 10) : -1;
    hc_resp_free(&r);
    return v;
}

static void concurrent(void)
{
    long idle = sp_proc_kb(srv.pid, "VmRSS:");
    bool peak_ok = sp_peak_reset(srv.pid);
    CHECK(peak_ok, "cannot reset the server's peak RSS (/proc/PID/clear_refs)");
    req r[REQS];
    pthread_t t[REQS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < REQS; i++)
        pthread_create(&t[i], NULL, one, &r[i]);
    /* While they run: the budget shows, and some wait for room. */
    long waiting = 0, held = 0;
    for (int i = 0; i < 40; i++) {
        sp_sleep_ms(100);
        long w = metric("qdq_memory_waiting_requests"), h = metric("qdq_memory_held_bytes");
        waiting = w > waiting ? w : waiting;
        held = h > held ? h : held;
    }
    for (int i = 0; i < REQS; i++)
        pthread_join(t[i], NULL);
    int ok = 0, busy = 0;
    for (int i = 0; i < REQS; i++) {
        if (r[i].status == 200 && r[i].got == BYTES && !r[i].mismatch)
            ok++;
        else if (r[i].status == 503 && r[i].retry_after)
            busy++;
        else
            CHECK(0, "request %d: status %ld, %zu bytes, mismatch at %zu, Retry-After %d (%s)",
                  i, r[i].status, r[i].got, r[i].mismatch, r[i].retry_after, r[i].err);
    }
    long peak = sp_proc_kb(srv.pid, "VmHWM:");
    fprintf(stderr, "  %d x 256 MiB, budget %d MiB: %d answered 200 with the right bytes, %d "
            "503; RSS idle %ld MiB, peak %ld MiB; at most %ld waiting, %ld MiB held\n", REQS,
            BUDGET_MIB, ok, busy, idle / 1024, peak / 1024, waiting, held / MIB);
    CHECK(ok + busy == REQS, "%d of %d requests answered 200 or 503", ok + busy, REQS);
    CHECK(ok >= 2, "only %d requests got through", ok);
    CHECK(sp_alive(&srv), "the server died");
    CHECK(peak < (BUDGET_MIB + RSS_SLACK_MIB) * 1024L,
          "peak RSS %ld MiB is over the budget (%d MiB) plus %d MiB", peak / 1024, BUDGET_MIB,
          RSS_SLACK_MIB);
    CHECK(waiting > 0, "no request waited for room (qdq_memory_waiting_requests stayed 0)");
    CHECK(held > 0 && held <= BUDGET_MIB * MIB, "qdq_memory_held_bytes peaked at %ld", held);
    /* The cache lets go after --cache-idle-ms (1 s here), the heap at the next trim (5 s). */
    long after = sp_rss_settle(srv.pid, idle + 32 * 1024, 15000);
    CHECK(after <= idle + 32 * 1024, "RSS %ld MiB after the idle time (idle was %ld MiB)",
          after / 1024, idle / 1024);
    CHECK(metric("qdq_memory_held_bytes") == 0, "bytes still held when idle: %ld",
          metric("qdq_memory_held_bytes"));
}

/* Larger than the whole budget: refused at once, unread; a chunked one grows past it: 503. */
static void too_big(void)
{
    char url[256];
    snprintf(url, sizeof url, "%s/quantize-dequantize?shape=%ld", srv.base, 200 * MIB);
    const char *h[] = { "Content-Type: application/octet-stream", NULL };
    hc_resp r;
    /* 800 MiB declared, nothing sent: the answer comes before the body. */
    int fd = hc_raw_connect(srv.port);
    char head[256], resp[2048] = "";
    int hn = snprintf(head, sizeof head, "POST /quantize-dequantize?shape=%ld HTTP/1.1\r\n"
                      "Host: x\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %ld\r\n\r\n", 200 * MIB, 800 * MIB);
    size_t got = 0;
    if (fd >= 0 && write(fd, head, (size_t)hn) == hn) {
        long long t0 = sp_now_ms();
        while (got < sizeof resp - 1 && sp_now_ms() - t0 < 10000) {
            ssize_t k = read(fd, resp + got, sizeof resp - 1 - got);
            if (k > 0)
                got += (size_t)k;
            else if (k == 0)
                break;
            else
                sp_sleep_ms(10);
            resp[got] = '\0';
            if (strstr(resp, "\r\n\r\n") && strchr(strstr(resp, "\r\n\r\n"), '}'))
                break;
        }
    }
    if (fd >= 0)
        close(fd);
    CHECK(strncmp(resp, "HTTP/1.1 413", 12) == 0 && strstr(resp, "--max-memory"),
          "800 MiB against a 600 MiB budget: %.300s", resp);
    /* Chunked, 700 MiB: its share grows with it, and the room runs out. */
    size_t n = 700 * MIB;
    char *big = malloc(n);
    memset(big, 0, n);
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    hc_opts oc = { .timeout_ms = 120000, .chunked = true };
    hc_request_ex("POST", url, h, big, n, &oc, &r);
    CHECK(r.status == 503 && hc_header(&r, "Retry-After") && strstr(r.body, "outgrew"),
          "a 700 MiB chunked body: %ld %s", r.status, r.body);
    hc_resp_free(&r);
    free(big);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    input = malloc(BYTES);
    for (long i = 0; i < BYTES / 4; i++)
        input[i] = (float)((i * 2654435761u >> 7) % 256) - 128.0f;
    const char *args[] = { "--max-memory", "600M", "--cache-idle-ms", "1000", "--workers", "2",
                           "--request-timeout", "30", "--max-body-bytes", "1G", "--max-elements", "1G",
                           NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
    } else {
        CHECK(metric("qdq_memory_budget_bytes") == BUDGET_MIB * MIB,
              "qdq_memory_budget_bytes %ld", metric("qdq_memory_budget_bytes"));
        concurrent();
        too_big();
        CHECK(sp_stop(&srv, 60000) == 0, "exit status %d", srv.exit_status);
    }
    sp_release(&srv);
    free(input);
    hc_thread_done();
    curl_global_cleanup();
    return check_done();
}
