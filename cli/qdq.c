/*
 * qdq: the op on files, without a server (docs/api.md, "The qdq command"). The same codecs as
 * the server's (proto/codec.h) with this program as their host: a safetensors checkpoint (or a
 * directory of shards), or a .npy file, in; the same, out; the same policy flags as the
 * server's query, and the same report.
 *
 *   qdq --num-bits 4 --axis 0 --exclude '*norm*,*.bias' model.safetensors out.safetensors
 *   qdq --rules rules.json --report report.json model-dir/ out-dir/
 *   qdq --num-bits 8 weights.npy out.npy
 *
 * OUT is written under a temporary name and renamed at the end: an error or a signal leaves no
 * OUT. Exit status 0 on success, 2 on a usage error, 1 on any other, with one line on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "files.h"

#ifndef QDQ_SERVER_VERSION
#define QDQ_SERVER_VERSION "0.1.0"
#endif

#define MAX_ARGS 32

static const char usage_text[] =
    "Usage: qdq [OPTION]... IN OUT\n"
    "TensorFlow's QuantizeAndDequantizeV2 on a whole checkpoint or a tensor file, exact to the\n"
    "bit: IN and OUT are both a .safetensors file, both a directory of a sharded checkpoint\n"
    "(its *.safetensors shards processed, every other file copied), or both a .npy file.\n"
    "\n"
    "The op's attributes (TensorFlow's defaults otherwise):\n"
    "  --num-bits N            bits of the quantized values (8)\n"
    "  --signed-input BOOL     signed range (true)\n"
    "  --range-given BOOL      take the range from --input-min/--input-max (false: the data's)\n"
    "  --input-min X[,X...]    the range's low end; one value per channel with --axis\n"
    "  --input-max X[,X...]    the range's high end\n"
    "  --round-mode MODE       HALF_TO_EVEN or HALF_UP (HALF_TO_EVEN)\n"
    "  --narrow-range BOOL     leave the lowest quantized value out (false)\n"
    "  --axis N                per channel along axis N (-1: one range per tensor)\n"
    "Which tensors (checkpoints; F32, F64, F16 and BF16 tensors only, the rest passes through):\n"
    "  --include GLOBS         comma-separated globs of the names to quantize ('*')\n"
    "  --exclude GLOBS         comma-separated globs of the names to leave as they are\n"
    "  --rules FILE            a JSON array of rules, first match wins: {\"match\": GLOB or\n"
    "                          [GLOB...], \"skip\": true} or {\"match\": ..., attributes}\n"
    "  --ranges-tensors        append each quantized tensor's six ranges as tensors\n"
    "                          <name>.qdq_input_min ... <name>.qdq_inverse_scale\n"
    "Output:\n"
    "  --report FILE           the report (JSON: per tensor its action, attributes, ranges and\n"
    "                          error statistics, and a summary); '-' for standard output\n"
    "  --threads N             threads to use (the number of cores)\n"
    "  --quiet                 no progress line on a terminal\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done, 1 failed (no OUT is left), 2 usage error.\n";

/* The settings: the flags as the server's query would carry them. */
static struct {
    const char *keys[MAX_ARGS], *values[MAX_ARGS];
    int n;
    char *rules;        /* the rules file's text */
    const char *report; /* --report FILE */
    int threads;
    bool quiet, progress;
    bool checkpoint_only; /* a flag only checkpoints take was given */
} S;

static void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (S.progress)
        fputs("\r\033[K", stderr);
    fputs("qdq: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    files_cleanup();
    exit(status);
}

static void add_arg(const char *key, const char *value)
{
    for (int i = 0; i < S.n; i++)
        if (strcmp(S.keys[i], key) == 0)
            die(2, "--%s is given twice", key);
    S.keys[S.n] = key;
    S.values[S.n++] = value;
}

/* ---- the host of the codecs ---- */

/* One buffer kept for the next tensor (they come one after another): no page faults twice. */
static struct {
    void *p;
    size_t cap;
} spare;

static void *buf_get(void *cls, size_t size, size_t *cap)
{
    (void)cls;
    if (spare.p && spare.cap >= size) {
        void *p = spare.p;
        *cap = spare.cap;
        spare.p = NULL;
        return p;
    }
    void *p = malloc(size ? size : 1);
    *cap = p ? size : 0;
    return p;
}

static void buf_put(void *cls, void *p, size_t cap, bool keep)
{
    (void)cls, (void)keep;
    if (spare.p && spare.cap >= cap) {
        free(p);
        return;
    }
    free(spare.p);
    spare.p = p;
    spare.cap = cap;
}

static int out_fd = -1; /* the output file being written */

static int spool_open(void *cls, uint64_t bytes, qdq_error *err)
{
    (void)cls, (void)bytes;
    int fd = dup(out_fd);
    if (fd < 0)
        qdq_fail(err, PROTO_EINTERNAL, "dup: %s", strerror(errno));
    return fd;
}

/* The request's "headers": what the server's client would send. */
typedef struct req {
    const char *ctype;
} req;

static const char *header(void *cls, const char *name)
{
    req *r = cls;
    if (strcasecmp(name, "Content-Type") == 0)
        return r->ctype;
    if (strcasecmp(name, "X-QDQ-Rules") == 0)
        return S.rules;
    return NULL;
}

static int query(void *cls, int (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    (void)cls;
    if (!fn)
        return S.n;
    for (int i = 0; i < S.n; i++) {
        int rc = fn(ctx, S.keys[i], S.values[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the threads: parallel work of the codecs (proto_host.parallel) ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int workers;            /* threads besides the caller's */
    unsigned long job;      /* a new job's number, for the workers to see it */
    void (*fn)(void *ctx, int i, int n);
    void *ctx;
    int n, next, finished;  /* items in all, handed out, done */
} T = { .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER };

/* Takes and runs items of the current job until none is left; called with T.mu held. */
static void take_items(void)
{
    while (T.next < T.n) {
        int i = T.next++;
        pthread_mutex_unlock(&T.mu);
        T.fn(T.ctx, i, T.n);
        pthread_mutex_lock(&T.mu);
        if (++T.finished == T.n)
            pthread_cond_signal(&T.done);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&T.mu);
    for (;;) {
        while (T.job == seen)
            pthread_cond_wait(&T.go, &T.mu);
        seen = T.job;
        take_items();
    }
    return NULL;
}

static void parallel(void *cls, void (*fn)(void *ctx, int i, int n), void *ctx, int n)
{
    (void)cls;
    pthread_mutex_lock(&T.mu);
    T.fn = fn, T.ctx = ctx, T.n = n, T.next = T.finished = 0;
    T.job++;
    pthread_cond_broadcast(&T.go);
    take_items();
    while (T.finished < T.n)
        pthread_cond_wait(&T.done, &T.mu);
    pthread_mutex_unlock(&T.mu);
}

/* Threads - 1 workers (they wait for work; the process's exit ends them). */
static void threads_start(int threads)
{
    for (; T.workers < threads - 1; T.workers++) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, worker, NULL);
        pthread_attr_destroy(&a);
        if (rc)
            break; /* fewer threads: slower, not wrong */
    }
}

/* ---- progress ---- */

static struct {
    uint64_t total, done, base;
    double t0, last;
} P;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *b, size_t n, double v)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (v >= 1024 && i < 4)
        v /= 1024, i++;
    snprintf(b, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* The input being fed: its mapping, and how far its pages have been let go. */
static struct {
    const char *map;
    size_t len, released;
} M;

static void consumed(void *cls, const void *p, size_t n)
{
    (void)cls;
    files_release(p, n);
}

/* done: bytes of the file at hand done (those of the files before it are in P.base). */
static void progress(void *cls, uint64_t done)
{
    (void)cls;
    if (done > M.released && done <= M.len) {
        files_release(M.map + M.released, (size_t)done - M.released);
        M.released = (size_t)done;
    }
    P.done = P.base + done;
    if (!S.progress)
        return;
    double t = now_s();
    if (t - P.last < 0.1 && P.done < P.total)
        return;
    P.last = t;
    double rate = t > P.t0 ? (double)P.done / (t - P.t0) : 0;
    char a[32], b[32], r[32];
    human(a, sizeof a, (double)P.done);
    human(b, sizeof b, (double)P.total);
    human(r, sizeof r, rate);
    double left = rate > 0 ? (double)(P.total - P.done) / rate : 0;
    fprintf(stderr, "\r\033[Kqdq: %s of %s, %s/s, %.0f s left", a, b, r, left);
}

/* ---- one file ---- */

typedef struct run_ctx {
    proto_xchg *x;
    qdq_error *err;
} run_ctx;

static void run_item(void *ctx, int i, int n)
{
    run_ctx *c = ctx;
    proto_xchg_run(c->x, i, n, c->err); /* only single-item work can fail: no race on err */
}

/* Runs one exchange over the file at in (a mapping of len bytes): the answer goes to out_fd,
 * the report (checkpoints) appended to report when it is not NULL. */
static void run_file(const char *in_path, const char *ctype, proto_buf *report)
{
    size_t len;
    const char *in = files_map(in_path, &len);
    if (!in)
        die(1, "%s: %s", in_path, strerror(errno));
    /* No limits of a server's: what the file holds is what the user has. */
    proto_host host = { .lim = { UINT64_MAX / 16, PROTO_MAX_RANK, 1 << 20, UINT64_MAX },
                        .buf_get = buf_get, .buf_put = buf_put, .spool_open = spool_open,
                        .parallel = parallel, .threads = S.threads, .progress = progress,
                        .consumed = consumed, .reports = report != NULL };
    req r = { ctype };
    proto_args a = { len, header, query, &r };
    qdq_error err = { 0 };
    M = (typeof(M)){ in, len, 0 };
    /* The whole file in one piece: each tensor is computed from the mapping, with no copy. */
    proto_xchg *x = proto_xchg_new(PROTO_KIND_QDQ, &a, &host, &err);
    if (x && !err.code)
        proto_xchg_feed(x, in, len, &err);
    proto_work w;
    if (x && !err.code && proto_xchg_end(x, &w, &err) == 0 && w.items > 0) {
        run_ctx rc = { x, &err };
        parallel(NULL, run_item, &rc, w.items);
    }
    progress(NULL, len);
    P.base += len;
    proto_answer ans = { 0 };
    if (x && !err.code)
        proto_xchg_answer(x, &ans, &err);
    if (!err.code && !ans.from_file && files_write(out_fd, ans.body, ans.len))
        qdq_fail(&err, PROTO_EINTERNAL, "writing the output: %s", strerror(errno));
    if (!err.code && report && proto_xchg_report(x, report))
        qdq_fail(&err, PROTO_ENOMEM, "out of memory for the report");
    proto_answer_clear(&ans);
    proto_xchg_free(x, true);
    files_unmap(in, len);
    if (err.code)
        die(1, "%s: %s", in_path, err.msg);
}

/* ---- the report of several shards: their tensors in order, their summaries added ---- */

typedef struct sums {
    uint64_t tensors, quantized, skipped, passthrough, bytes, elements;
    double sqnr_min;
    bool have_sqnr;
    char worst[4096];
    proto_buf entries;
} sums;

static uint64_t num_after(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* Adds one shard's report (as the codec writes it) to the sums. */
static void add_report(sums *m, const proto_buf *r)
{
    const char *s = r->data, *sum = NULL;
    for (const char *p = s; (p = strstr(p, "],\"summary\":{")) != NULL; p++)
        sum = p;
    if (!sum)
        die(1, "a shard's report has no summary");
    size_t head = strlen("{\"tensors\":[");
    if ((size_t)(sum - s) > head) {
        if (m->entries.len)
            proto_buf_append(&m->entries, ",", 1);
        proto_buf_append(&m->entries, s + head, (size_t)(sum - s) - head);
    }
    m->tensors += num_after(sum, "\"tensors\":");
    m->quantized += num_after(sum, "\"quantized\":");
    m->skipped += num_after(sum, "\"skipped\":");
    m->passthrough += num_after(sum, "\"passthrough\":");
    m->bytes += num_after(sum, "\"bytes\":");
    m->elements += num_after(sum, "\"elements_quantized\":");
    const char *q = strstr(sum, "\"sqnr_db_min\":");
    if (q && strncmp(q + 14, "null", 4) != 0) {
        double v = strtod(q + 14, NULL);
        if (!m->have_sqnr || v < m->sqnr_min) {
            m->have_sqnr = true;
            m->sqnr_min = v;
            const char *w = strstr(sum, "\"worst_tensor\":");
            size_t n = w ? strlen(w + 15) : 0;
            if (n >= 2 && n - 2 < sizeof m->worst) { /* the JSON text, without the "}}" */
                memcpy(m->worst, w + 15, n - 2);
                m->worst[n - 2] = '\0';
            }
        }
    }
}

static void write_sums(const sums *m, proto_buf *b)
{
    char line[512], n[PROTO_NUM_MAX + 1];
    proto_buf_append(b, "{\"tensors\":[", 12);
    proto_buf_append(b, m->entries.data, m->entries.len);
    snprintf(line, sizeof line, "],\"summary\":{\"tensors\":%llu,\"quantized\":%llu,\"skipped\":"
             "%llu,\"passthrough\":%llu,\"bytes\":%llu,\"elements_quantized\":%llu,"
             "\"sqnr_db_min\":", (unsigned long long)m->tensors,
             (unsigned long long)m->quantized, (unsigned long long)m->skipped,
             (unsigned long long)m->passthrough, (unsigned long long)m->bytes,
             (unsigned long long)m->elements);
    proto_buf_append(b, line, strlen(line));
    if (m->have_sqnr)
        proto_buf_append(b, n, proto_num_format_f64(m->sqnr_min, n));
    else
        proto_buf_append(b, "null", 4);
    proto_buf_append(b, ",\"worst_tensor\":", 16);
    const char *w = m->have_sqnr && m->worst[0] ? m->worst : "null";
    proto_buf_append(b, w, strlen(w));
    proto_buf_append(b, "}}", 2);
}

/* ---- main ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static void on_signal(int sig)
{
    files_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    enum { O_NUM_BITS = 256, O_SIGNED, O_RANGE_GIVEN, O_MIN, O_MAX, O_ROUND, O_NARROW, O_AXIS,
           O_INCLUDE, O_EXCLUDE, O_RULES, O_RANGES, O_REPORT, O_THREADS, O_QUIET, O_HELP,
           O_VERSION };
    static const struct option opts[] = {
        { "num-bits", required_argument, NULL, O_NUM_BITS },
        { "signed-input", required_argument, NULL, O_SIGNED },
        { "range-given", required_argument, NULL, O_RANGE_GIVEN },
        { "input-min", required_argument, NULL, O_MIN },
        { "input-max", required_argument, NULL, O_MAX },
        { "round-mode", required_argument, NULL, O_ROUND },
        { "narrow-range", required_argument, NULL, O_NARROW },
        { "axis", required_argument, NULL, O_AXIS },
        { "include", required_argument, NULL, O_INCLUDE },
        { "exclude", required_argument, NULL, O_EXCLUDE },
        { "rules", required_argument, NULL, O_RULES },
        { "ranges-tensors", no_argument, NULL, O_RANGES },
        { "report", required_argument, NULL, O_REPORT },
        { "threads", required_argument, NULL, O_THREADS },
        { "quiet", no_argument, NULL, O_QUIET },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 },
    };
    static const char *const keys[] = { "num_bits", "signed_input", "range_given", "input_min",
                                        "input_max", "round_mode", "narrow_range", "axis",
                                        "include", "exclude" };
    const char *rules_path = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    S.threads = cores > 0 ? (int)cores : 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_NUM_BITS: case O_SIGNED: case O_RANGE_GIVEN: case O_MIN: case O_MAX:
        case O_ROUND: case O_NARROW: case O_AXIS: case O_INCLUDE: case O_EXCLUDE:
            add_arg(keys[c - O_NUM_BITS], optarg);
            if (c == O_INCLUDE || c == O_EXCLUDE)
                S.checkpoint_only = true;
            break;
        case O_RULES:
            rules_path = optarg;
            S.checkpoint_only = true;
            break;
        case O_RANGES:
            add_arg("ranges", "tensors");
            S.checkpoint_only = true;
            break;
        case O_REPORT:
            S.report = optarg;
            S.checkpoint_only = true;
            break;
        case O_THREADS: {
            char *e;
            long t = strtol(optarg, &e, 10);
            if (*e || t < 1 || t > 1024)
                die(2, "--threads: '%s' is not a number from 1 to 1024", optarg);
            S.threads = (int)t;
            break;
        }
        case O_QUIET:
            S.quiet = true;
            break;
        case 'h':
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        case O_VERSION:
            printf("qdq %s\n", QDQ_SERVER_VERSION);
            return 0;
        default:
            die(2, "%s: %s (try 'qdq --help')", optopt ? "unknown or incomplete option"
                                                      : "unknown option", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        die(2, "expected IN and OUT, got %d argument%s (try 'qdq --help')", argc - optind,
            argc - optind == 1 ? "" : "s");
    const char *in = argv[optind], *out = argv[optind + 1];
    if (rules_path && !(S.rules = files_read_text(rules_path)))
        die(2, "--rules %s: %s", rules_path, strerror(errno));
    struct stat si, so;
    if (stat(in, &si) != 0)
        die(2, "%s: %s", in, strerror(errno));
    if (stat(out, &so) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
        die(2, "OUT is IN (%s): write the result elsewhere", out);
    bool dir = S_ISDIR(si.st_mode), npy = !dir && ends_with(in, ".npy");
    if (!dir && !npy && !ends_with(in, ".safetensors"))
        die(2, "%s: IN must be a .safetensors file, a .npy file or a directory of shards", in);
    if (npy && !ends_with(out, ".npy"))
        die(2, "%s: a .npy IN needs a .npy OUT", out);
    if (!dir && !npy && !ends_with(out, ".safetensors"))
        die(2, "%s: a .safetensors IN needs a .safetensors OUT", out);
    if (npy && S.checkpoint_only)
        die(2, "--include, --exclude, --rules, --ranges-tensors and --report are for "
            "checkpoints, not .npy files");
    S.progress = !S.quiet && isatty(2);
    threads_start(S.threads);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN);

    proto_buf report = { 0 };
    P.t0 = P.last = now_s();
    if (!dir) {
        P.total = (uint64_t)si.st_size;
        if ((out_fd = files_create(out)) < 0)
            die(1, "%s: %s", out, strerror(errno));
        run_file(in, npy ? "application/x-npy" : "application/x-safetensors",
                 S.report ? &report : NULL);
        if (files_commit(out_fd, out))
            die(1, "%s: %s", out, strerror(errno));
    } else {
        char **names = NULL;
        size_t n = 0;
        uint64_t total = 0;
        if (files_list(in, &names, &n, &total))
            die(1, "%s: %s", in, strerror(errno));
        P.total = total;
        if (files_dir_begin(out))
            die(1, "%s: %s", out, strerror(errno));
        sums m = { 0 };
        size_t shards = 0;
        for (size_t i = 0; i < n; i++) {
            char src[PATH_MAX];
            snprintf(src, sizeof src, "%s/%s", in, names[i]);
            if (!ends_with(names[i], ".safetensors")) {
                if (files_dir_copy(src, names[i]))
                    die(1, "%s: %s", src, strerror(errno));
                continue;
            }
            shards++;
            if ((out_fd = files_dir_create(names[i])) < 0)
                die(1, "%s: %s", names[i], strerror(errno));
            proto_buf one = { 0 };
            run_file(src, "application/x-safetensors", S.report ? &one : NULL);
            if (S.report)
                add_report(&m, &one);
            proto_buf_free(&one);
            if (files_dir_done(out_fd, names[i]))
                die(1, "%s: %s", names[i], strerror(errno));
        }
        if (!shards)
            die(1, "%s: no *.safetensors shard in the directory", in);
        if (files_dir_commit(out))
            die(1, "%s: %s", out, strerror(errno));
        if (S.report)
            write_sums(&m, &report);
        proto_buf_free(&m.entries);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (S.progress)
        fputs("\r\033[K", stderr);
    if (S.report) {
        if (strcmp(S.report, "-") == 0) /* the file is the server's answer, byte for byte */
            proto_buf_append(&report, "\n", 1);
        if (strcmp(S.report, "-") == 0 ? files_write(1, report.data, report.len)
                                       : files_write_whole(S.report, report.data, report.len))
            die(1, "--report %s: %s", S.report, strerror(errno));
    }
    proto_buf_free(&report);
    free(S.rules);
    free(spare.p);
    return 0;
}
