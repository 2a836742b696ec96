/*
 * bench_cjson: a 1M-element float32 JSON request end to end through qdq-server, against the
 * round trip a straightforward service would do with cJSON, timed in the same run.
 *
 * The document is {"input": [[...1000 numbers...], ... 1000 rows]} with deterministic random
 * float32 values printed shortest (the fewest digits that read back to the same float32).
 *
 *   baseline   in process: cJSON_Parse, read the numbers into a float array, the op (libqdq),
 *              build the output object with one cJSON node per element (nested like the input,
 *              plus the six range numbers), cJSON_PrintUnformatted. Freeing the trees is not
 *              timed (which favours the baseline).
 *   end to end a POST of the same bytes to a qdq-server started here (--listen 127.0.0.1:0,
 *              --access-log off; $QDQ_SERVER, or qdq-server next to this program's directory),
 *              with libcurl on one kept-alive connection, until the whole response is in memory.
 *
 * One untimed warm-up of each, then BENCH_RUNS (default 5) timed runs of each, alternating;
 * medians are compared. The server's answer is checked: a JSON object whose "output" has the
 * input's nesting and, value for value, the bits libqdq computes here.
 *
 * Prints the core count, both medians, the ratio (target: the server >= 5x faster) and a line
 *   JSON_RESULT cjson_s=... e2e_s=... speedup=...
 * Exits 0, also when it skips (no server binary) or a target is missed; 1 when the server's
 * answer is wrong or a step fails.
 */
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qdq.h"

#define ROWS 1000
#define COLS 1000
#define COUNT ((size_t)ROWS * COLS)
#define MAX_RUNS 50

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

/* Appends n bytes (and keeps a NUL after them). Exits when out of memory. */
static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "bench_cjson: out of memory\n");
            exit(1);
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The request document: ROWS x COLS deterministic float32 values in [-3.7, 3.8), shortest. */
static void make_document(buf *doc)
{
    uint64_t seed = 20240611;
    char num[32];
    buf_add(doc, "{\"input\":[", 10);
    for (size_t r = 0; r < ROWS; r++) {
        buf_add(doc, r ? ",[" : "[", r ? 2 : 1);
        for (size_t c = 0; c < COLS; c++) {
            float f = (float)((double)(splitmix64(&seed) >> 11) * 0x1p-53 * 7.5 - 3.7);
            int n = 0;
            for (int prec = 6; prec <= 9; prec++) {
                n = snprintf(num, sizeof num, "%.*g", prec, (double)f);
                if (strtof(num, NULL) == f)
                    break;
            }
            if (c)
                buf_add(doc, ",", 1);
            buf_add(doc, num, (size_t)n);
        }
        buf_add(doc, "]", 1);
    }
    buf_add(doc, "]}", 2);
}

/* Phases of one baseline round trip, in seconds. */
typedef struct phases {
    double parse, compute, build, print, total;
} phases;

/*
 * The cJSON round trip of doc. Fills out[] with the op's output (for checking the server) and
 * *range with its ranges. Returns the printed size, or 0 on a failure (message printed).
 */
static size_t cjson_round_trip(const char *doc, float *in, float *out, qdq_range *range,
                               phases *ph)
{
    double t0 = now_s();
    cJSON *root = cJSON_Parse(doc);
    cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    size_t k = 0, rows = 0;
    const cJSON *row, *num;
    cJSON_ArrayForEach(row, input) {
        size_t cols = 0;
        cJSON_ArrayForEach(num, row) {
            if (k < COUNT)
                in[k] = (float)num->valuedouble;
            k++, cols++;
        }
        if (cols != COLS)
            break;
        rows++;
    }
    if (!root || rows != ROWS || k != COUNT) {
        fprintf(stderr, "bench_cjson: cJSON read %zu rows, %zu numbers\n", rows, k);
        cJSON_Delete(root);
        return 0;
    }
    double t1 = now_s();

    qdq_attrs attrs = QDQ_ATTRS_DEFAULT;
    qdq_plan plan;
    qdq_error err = { 0 };
    int64_t dims[2] = { ROWS, COLS };
    static _Alignas(64) char acc[4096], params[4096];
    if (qdq_plan_init(&plan, QDQ_FLOAT32, dims, 2, &attrs, &err) ||
        qdq_acc_size(&plan) > sizeof acc || qdq_params_size(&plan) > sizeof params ||
        qdq_run(&plan, in, out, NULL, 0, NULL, 0, acc, params, &err)) {
        fprintf(stderr, "bench_cjson: libqdq: %s\n", err.msg);
        cJSON_Delete(root);
        return 0;
    }
    qdq_params_get(&plan, params, 0, range);
    double t2 = now_s();

    cJSON *res = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(res, "output");
    k = 0;
    for (size_t r = 0; r < ROWS; r++) {
        cJSON *a = cJSON_CreateArray();
        for (size_t c = 0; c < COLS; c++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)out[k++]));
        cJSON_AddItemToArray(arr, a);
    }
    cJSON_AddNumberToObject(res, "input_min", range->input_min);
    cJSON_AddNumberToObject(res, "input_max", range->input_max);
    cJSON_AddNumberToObject(res, "output_min", range->output_min);
    cJSON_AddNumberToObject(res, "output_max", range->output_max);
    cJSON_AddNumberToObject(res, "scale", range->scale);
    cJSON_AddNumberToObject(res, "inverse_scale", range->inverse_scale);
    double t3 = now_s();

    char *text = cJSON_PrintUnformatted(res);
    double t4 = now_s();

    size_t n = text ? strlen(text) : 0;
    if (!text)
        fprintf(stderr, "bench_cjson: cJSON_PrintUnformatted failed\n");
    free(text);
    cJSON_Delete(res);
    cJSON_Delete(root);
    *ph = (phases){ t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0 };
    return n;
}

/* ---- the server process ---- */

static pid_t server_pid;
static char server_log[64];

/* The server binary: $QDQ_SERVER, else ../qdq-server relative to this program's directory. */
static void server_path(char *out, size_t n)
{
    const char *env = getenv("QDQ_SERVER");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) {
        snprintf(out, n, "build/qdq-server");
        return;
    }
    exe[k] = '\0';
    for (int up = 0; up < 2; up++) { /* BUILD/bench/bench_cjson -> BUILD */
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(out, n, "%s/qdq-server", exe);
}

/* Starts the server with its stderr in a temporary file; returns its port, or 0. */
static int server_start(const char *path)
{
    snprintf(server_log, sizeof server_log, "/tmp/bench_cjson.XXXXXX");
    int fd = mkstemp(server_log);
    if (fd < 0) {
        perror("bench_cjson: mkstemp");
        return 0;
    }
    server_pid = fork();
    if (server_pid < 0) {
        perror("bench_cjson: fork");
        close(fd);
        return 0;
    }
    if (server_pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        dup2(fd, 2);
        execl(path, "qdq-server", "--listen", "127.0.0.1:0", "--access-log", "off",
              (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(fd);
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        FILE *f = fopen(server_log, "r");
        char line[512];
        int port = 0;
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "listening on ", 13) == 0) {
                char *colon = strrchr(line, ':');
                port = colon ? atoi(colon + 1) : 0;
                break;
            }
        if (f)
            fclose(f);
        if (port > 0)
            return port;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = 0;
            break;
        }
        usleep(50000);
    }
    fprintf(stderr, "bench_cjson: the server did not start; its log:\n");
    FILE *f = fopen(server_log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fputs(line, stderr);
    if (f)
        fclose(f);
    return 0;
}

/* SIGTERM, up to 10 s for the drain, then SIGKILL. */
static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        int i;
        for (i = 0; i < 200 && waitpid(server_pid, NULL, WNOHANG) == 0; i++)
            usleep(50000);
        if (i == 200) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, NULL, 0);
        }
        server_pid = 0;
    }
    if (server_log[0])
        unlink(server_log);
    server_log[0] = '\0';
}

/* After a failed request: says whether the server process is gone, and how. */
static void server_report(void)
{
    int st = 0;
    if (server_pid > 0 && waitpid(server_pid, &st, WNOHANG) == server_pid) {
        if (WIFSIGNALED(st))
            printf("the server process was killed by signal %d\n", WTERMSIG(st));
        else
            printf("the server process exited with status %d\n", WEXITSTATUS(st));
        server_pid = 0;
    }
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    buf_add(cls, data, size * n);
    return size * n;
}

/* One POST of doc; the response lands in resp. Returns the seconds taken, or -1. */
static double post(CURL *h, const buf *doc, buf *resp, long *status)
{
    resp->len = 0;
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, doc->p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)doc->len);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(h);
    double t = now_s() - t0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "bench_cjson: POST failed: %s\n", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return t;
}

/* Checks the server's answer against the baseline's output. 0 when it matches. */
static int check_answer(const buf *resp, const float *want, const qdq_range *range)
{
    cJSON *root = cJSON_ParseWithLength(resp->p, resp->len);
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(root, "output");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(out)) {
        printf("FAIL: the answer is not a JSON object with an \"output\" array: %.200s\n",
               resp->p ? resp->p : "");
        cJSON_Delete(root);
        return 1;
    }
    size_t rows = 0, k = 0, bad_shape = 0, differ = 0;
    const cJSON *row, *num;
    cJSON_ArrayForEach(row, out) {
        size_t cols = 0;
        cJSON_ArrayForEach(num, row) {
            if (!cJSON_IsNumber(num)) {
                bad_shape++;
                continue;
            }
            float got = (float)num->valuedouble;
            if (k < COUNT && memcmp(&got, &want[k], sizeof got) != 0)
                differ++;
            k++, cols++;
        }
        bad_shape += cols != COLS;
        rows++;
    }
    const char *names[6] = { "input_min", "input_max", "output_min", "output_max", "scale",
                             "inverse_scale" };
    const double vals[6] = { range->input_min, range->input_max, range->output_min,
                             range->output_max, range->scale, range->inverse_scale };
    int bad_ranges = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
        if (!cJSON_IsNumber(v) || (float)v->valuedouble != (float)vals[i])
            bad_ranges++;
    }
    cJSON_Delete(root);
    printf("check: \"output\" has %zu rows, %zu numbers; %zu differ from libqdq's bits; "
           "%d of 6 ranges differ\n", rows, k, differ, bad_ranges);
    if (rows != ROWS || k != COUNT || bad_shape) {
        printf("FAIL: the output does not have the input's shape [%d, %d]\n", ROWS, COLS);
        return 1;
    }
    if (differ || bad_ranges) {
        printf("FAIL: the server's values differ from libqdq's\n");
        return 1;
    }
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int runs = 5;
    const char *e = getenv("BENCH_RUNS");
    if (e && atoi(e) > 0)
        runs = atoi(e) < MAX_RUNS ? atoi(e) : MAX_RUNS;

    buf doc = { 0 };
    make_document(&doc);
    printf("bench_cjson: %ld cores; document {\"input\": [%d x %d] float32, nested}, %.1f MB; "
           "%d timed runs each (median), after one warm-up\n",
           cores, ROWS, COLS, (double)doc.len / 1e6, runs);

    float *in = malloc(COUNT * sizeof *in), *out = malloc(COUNT * sizeof *out);
    if (!in || !out)
        return 1;
    qdq_range range;
    phases ph[MAX_RUNS], warm;
    if (!cjson_round_trip(doc.p, in, out, &range, &warm))
        return 1;

    char path[PATH_MAX + 16];
    server_path(path, sizeof path);
    int port = 0;
    if (access(path, X_OK) != 0)
        printf("SKIP: no server binary at %s (set QDQ_SERVER or run make): baseline only\n", path);
    else if (!(port = server_start(path)))
        printf("SKIP: the server at %s did not start: baseline only\n", path);

    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    buf resp = { 0 };
    double e2e[MAX_RUNS];
    int rc = 0;
    if (port) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        h = curl_easy_init();
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/quantize-dequantize", port);
        hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        long status = 0;
        double t = post(h, &doc, &resp, &status);
        if (t < 0 || status != 200) {
            printf("FAIL: warm-up POST: status %ld: %.300s\n", status, resp.p ? resp.p : "");
            server_report();
            rc = 1;
        } else {
            printf("first request (cold server): %.4f s, response %.1f MB\n", t,
                   (double)resp.len / 1e6);
            rc = check_answer(&resp, out, &range);
        }
    }

    for (int i = 0; i < runs && rc == 0; i++) {
        if (!cjson_round_trip(doc.p, in, out, &range, &ph[i]))
            return server_stop(), 1;
        if (port) {
            long status = 0;
            e2e[i] = post(h, &doc, &resp, &status);
            if (e2e[i] < 0 || status != 200) {
                printf("FAIL: POST %d: status %ld\n", i + 1, status);
                server_report();
                rc = 1;
            }
        }
    }
    server_stop();
    if (rc)
        return rc;

    double tot[MAX_RUNS], p[4][MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        tot[i] = ph[i].total;
        p[0][i] = ph[i].parse, p[1][i] = ph[i].compute, p[2][i] = ph[i].build,
        p[3][i] = ph[i].print;
    }
    double base = median(tot, runs);
    printf("cJSON round trip: median %.4f s (range %.4f..%.4f): parse+read %.4f, op %.4f, "
           "build %.4f, print %.4f\n", base, vmin(tot, runs), vmax(tot, runs),
           median(p[0], runs), median(p[1], runs), median(p[2], runs), median(p[3], runs));
    if (!port) {
        printf("JSON_SKIPPED cjson_s=%.4f\n", base);
        return 0;
    }
    double mine = median(e2e, runs), speedup = base / mine;
    printf("qdq-server end to end: median %.4f s (range %.4f..%.4f), response %.1f MB\n",
           mine, vmin(e2e, runs), vmax(e2e, runs), (double)resp.len / 1e6);
    printf("speedup cJSON/qdq-server: %.2fx (target >= 5) %s; %ld cores\n", speedup,
           speedup >= 5 ? "PASS" : "MISS", cores);
    printf("JSON_RESULT cjson_s=%.4f e2e_s=%.4f speedup=%.2f\n", base, mine, speedup);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    free(resp.p);
    free(doc.p);
    free(in);
    free(out);
    return 0;
}
