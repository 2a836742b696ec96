/*
 * Settings from flags, environment and file. The options are data: one table row per option
 * gives its name (flag, QDQ_* variable and file key all derive from it), its type, its field in
 * struct cfg, its range and its help. Each source is first collected into a layer (one value
 * slot per option), then the layers are applied in order: file, environment, flags. So a layer
 * is always applied whole, in table order, whatever order its values came in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

enum kind {
    K_CONFIG,     /* the config file's path (flags and environment only) */
    K_LISTEN,     /* HOST:PORT -> listen_host, listen_port */
    K_GRPC_LISTEN,/* HOST:PORT or none -> grpc_host, grpc_port */
    K_PORT,       /* N -> listen_port */
    K_NUM,        /* a whole number, no suffix (int or uint64_t field) */
    K_SIZE,       /* a whole number with an optional K/M/G suffix (int or uint64_t field) */
    K_CHOICE,     /* one word of choices -> char[] field */
    K_BOOL,       /* on|off -> int field */
    K_TOKEN,      /* the bearer token */
    K_TOKEN_FILE, /* a file holding the bearer token */
    K_PATH,       /* a file path -> char[] field */
};

struct opt {
    const char *name;
    enum kind kind;
    size_t off, size;      /* the field in struct cfg */
    uint64_t min, max;     /* K_NUM, K_SIZE, K_PORT */
    const char *arg;       /* the value's name in --help */
    const char *choices;   /* K_CHOICE: "a|b|c" */
    const char *group;     /* a --help heading printed before this option, or NULL */
    const char *help;
    const char *note;      /* said after the default in --help, or NULL */
};

#define F(field) offsetof(cfg, field), sizeof(((cfg *)0)->field)
#define KiB 1024ULL
#define MiB (1024ULL * 1024)
#define GiB (1024ULL * 1024 * 1024)
#define TiB (1024ULL * GiB)

static const struct opt opts[] = {
    { "config", K_CONFIG, F(config_file), 0, 0, "PATH", NULL, "General",
      "Read settings from PATH: \"key = value\" lines with the option names, '#' comments. "
      "Flags and environment override it.", NULL },
    { "listen", K_LISTEN, F(listen_host), 0, 0, "HOST:PORT", NULL, "Listening",
      "Address to listen on. IPv6 in brackets: [::1]:8080. 0.0.0.0 or [::] listens on every "
      "interface; port 0 picks a free port.", NULL },
    { "port", K_PORT, F(listen_port), 0, 65535, "N", NULL, NULL,
      "Port to listen on, keeping the host of --listen (overrides its port).", NULL },
    { "grpc-listen", K_GRPC_LISTEN, F(grpc_host), 0, 0, "HOST:PORT", NULL, NULL,
      "Address of the gRPC service (KServe v2's inference.GRPCInferenceService and "
      "grpc.health.v1.Health), as --listen; \"none\" turns it off. It takes the same body "
      "limit (as its largest message), bearer token and TLS certificate as HTTP.", NULL },
    { "workers", K_NUM, F(workers), 1, CFG_MAX_WORKERS, "N", NULL, NULL,
      "Compute threads: the worker pool that runs the op on large requests.",
      "the container's CPU quota, cgroup cpu.max or cpu.cfs_quota_us / cpu.cfs_period_us, "
      "rounded up; else the number of online cores" },
    { "http-threads", K_NUM, F(http_threads), 1, CFG_MAX_HTTP_THREADS, "N", NULL, NULL,
      "libmicrohttpd threads that receive requests and send responses.",
      "the default of --workers, at most 4" },
    { "max-body-bytes", K_SIZE, F(max_body_bytes), 1, TiB, "SIZE", NULL, "Limits",
      "Largest request body, counted after decompression; larger ones get 413.", NULL },
    { "max-elements", K_SIZE, F(max_elements), 1, TiB, "N", NULL, NULL,
      "Most elements in one tensor; more get 413. Suffixes count 1024-based: 64M.", NULL },
    { "max-rank", K_NUM, F(max_rank), 1, CFG_MAX_RANK_CAP, "N", NULL, NULL,
      "Most dimensions of one tensor.", NULL },
    { "max-json-depth", K_NUM, F(max_json_depth), 1, CFG_MAX_JSON_DEPTH, "N", NULL, NULL,
      "Deepest nesting of arrays and objects accepted in a JSON request.", NULL },
    { "max-header-bytes", K_SIZE, F(max_header_bytes), 4 * KiB, 64 * MiB, "SIZE", NULL, NULL,
      "Memory per connection (libmicrohttpd's connection memory): the request line and "
      "headers, the read buffer, and the response headers; per-channel X-QDQ-* ranges take "
      "about 70 bytes a channel and are left out (X-QDQ-Ranges-Omitted) when they do not fit. "
      "libmicrohttpd clears it for every request, so more costs small-request throughput.", NULL },
    { "max-queue", K_NUM, F(max_queue), 0, 1000000, "N", NULL, NULL,
      "Requests that may wait for a free worker; more get 503 with Retry-After. "
      "0: none wait.", NULL },
    { "max-inflight", K_NUM, F(max_inflight), 1, 1000000, "N", NULL, NULL,
      "Requests being received or computed at once; more get 503.", NULL },
    { "max-connections", K_NUM, F(max_connections), 1, 1000000, "N", NULL, NULL,
      "Open connections at once (at least --http-threads), shared among the HTTP threads; "
      "the soft open-file limit is raised to fit them (within the hard limit).", NULL },
    { "max-connections-per-ip", K_NUM, F(max_connections_per_ip), 0, 1000000, "N", NULL, NULL,
      "Open connections from one client address; 0: unlimited.", NULL },
    { "max-memory", K_SIZE, F(max_memory), 1 * MiB, 64 * TiB, "SIZE", NULL, NULL,
      "Memory that requests (bodies, outputs, JSON text) and the buffer cache may hold "
      "together.",
      "three quarters of the container's memory limit, cgroup memory.max or "
      "memory.limit_in_bytes, else of physical memory" },
    { "cache-idle-ms", K_NUM, F(cache_idle_ms), 0, 3600000, "MILLISECONDS", NULL, NULL,
      "How long the buffer cache keeps memory that no request is using before giving it back "
      "to the system; 0: at once.", NULL },
    { "max-checkpoint-bytes", K_SIZE, F(max_checkpoint_bytes), 1, 64 * TiB, "SIZE", NULL,
      "Checkpoints", "The largest safetensors checkpoint a request may send (it is streamed, "
      "never held whole, so it may be far larger than --max-body-bytes and than memory).",
      NULL },
    { "max-checkpoint-inflight", K_NUM, F(max_checkpoint_inflight), 1, 1024, "N", NULL, NULL,
      "Checkpoints processed at once; more get 503 with Retry-After.", NULL },
    { "spool-dir", K_PATH, F(spool_dir), 0, 0, "DIR", NULL, NULL,
      "Where a checkpoint's answer waits while its request streams in (an unnamed file, gone "
      "when the request ends however it ends; one whose answer was sent is kept for the next "
      "checkpoint for --spool-keep-ms). Its free space bounds the checkpoints taken: a "
      "declared length over it gets 507.", "$TMPDIR or /tmp" },
    { "spool-keep-ms", K_NUM, F(spool_keep_ms), 0, 3600000, "MILLISECONDS", NULL, NULL,
      "How long the file of a checkpoint's answer, once sent, is kept for the next checkpoint "
      "to write over (pages already cached cost a copy, fresh ones a page fault each); at most "
      "--max-checkpoint-inflight files, given up first when the spool's file system is short "
      "of room; 0: not kept.", NULL },
    { "idle-timeout", K_NUM, F(idle_timeout_s), 1, 86400, "SECONDS", NULL, "Timeouts",
      "Close a connection after this many seconds without traffic.", NULL },
    { "request-timeout", K_NUM, F(request_timeout_s), 1, 86400, "SECONDS", NULL, NULL,
      "Deadline for a whole request, so that a client sending a byte at a time is cut off "
      "(checked four times a second).", NULL },
    { "drain-timeout", K_NUM, F(drain_timeout_s), 0, 3600, "SECONDS", NULL, NULL,
      "On SIGTERM or SIGINT, exit at most this long after the signal: requests in flight "
      "(and those that arrive during --shutdown-grace) get until then to finish.", NULL },
    { "shutdown-grace", K_NUM, F(shutdown_grace_s), 0, 3600, "SECONDS", NULL, NULL,
      "Lame duck: for this long after SIGTERM or SIGINT, /readyz answers 503 but the server "
      "still accepts connections and serves every request (each answer with Connection: "
      "close), so that nothing a client sent around the signal is refused while load "
      "balancers move away; then the listener closes and requests in flight drain. Counts "
      "within --drain-timeout (capped at it).", NULL },
    { "inline-bytes", K_SIZE, F(small_request_bytes), 0, 64 * MiB, "SIZE", NULL, NULL,
      "Bodies up to this size are computed on the thread that received them, skipping the "
      "worker pool's hand-off; 0 sends every request to the pool.", NULL },
    { "log-format", K_CHOICE, F(log_format), 0, 0, "FORMAT", "text|json", "Logging",
      "Log lines as text or as one JSON object per line.", NULL },
    { "log-level", K_CHOICE, F(log_level), 0, 0, "LEVEL", "error|warn|info|debug", NULL,
      "Least severe messages logged.", NULL },
    { "access-log", K_BOOL, F(access_log), 0, 0, "on|off", NULL, NULL,
      "One log line per request (also true/false, yes/no, 1/0).", NULL },
    { "access-log-flush-ms", K_NUM, F(access_log_flush_ms), 1, 60000, "MS", NULL, NULL,
      "Access-log lines are buffered per HTTP thread and written in whole lines when a "
      "buffer fills or after this long; a sink that does not keep up loses lines (counted in "
      "qdq_access_log_dropped_lines_total), never a request's time.", NULL },
    { "auth-token", K_TOKEN, F(auth_token), 0, 0, "TOKEN", NULL, "Security",
      "Require \"Authorization: Bearer TOKEN\" on every request except health checks; "
      "401 otherwise. Prefer --auth-token-file: flags show in ps.", NULL },
    { "auth-token-file", K_TOKEN_FILE, F(auth_token_file), 0, 0, "PATH", NULL, NULL,
      "Read the bearer token from the first line of PATH.", NULL },
    { "tls-cert", K_PATH, F(tls_cert), 0, 0, "PATH", NULL, NULL,
      "Serve HTTPS with this PEM certificate (chain); needs --tls-key.", NULL },
    { "tls-key", K_PATH, F(tls_key), 0, 0, "PATH", NULL, NULL,
      "The PEM private key of --tls-cert.", NULL },
};

#define NOPT (sizeof opts / sizeof opts[0])

enum { L_DEFAULT = -1, L_FILE, L_ENV, L_FLAG };

/* One source's values: one slot per option (NULL: not given), and where each came from. */
struct layer {
    int src;
    const char *val[NOPT];
    int line[NOPT]; /* L_FILE: the line number */
};

/* Where the current value of each option came from, for messages about combinations. */
struct origin {
    int src[NOPT];
    int line[NOPT];
};

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_alnum(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

static const struct opt *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPT; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* "QDQ_MAX_BODY_BYTES" for "max-body-bytes". */
static void env_name(char *buf, size_t n, const char *name)
{
    size_t k = (size_t)snprintf(buf, n, "QDQ_");
    for (; *name && k + 1 < n; name++)
        buf[k++] = *name == '-' ? '_' : (*name >= 'a' && *name <= 'z') ? *name - 32 : *name;
    buf[k] = '\0';
}

/* How the user spelled option o in source src: "--workers", "QDQ_WORKERS", "FILE:3: workers". */
static void src_name(char *buf, size_t n, const struct opt *o, int src, int line,
                     const char *file)
{
    if (src == L_ENV)
        env_name(buf, n, o->name);
    else if (src == L_FILE)
        snprintf(buf, n, "%.300s:%d: %s", file, line, o->name);
    else
        snprintf(buf, n, "--%s", o->name);
}

/* Parses digits and, if units, a K/M/G suffix. 0 ok; 1 not a number; 2 bad suffix; 3 too big. */
static int parse_uint(const char *s, int units, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (!is_digit(*p))
        return 1;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 3;
        v = v * 10 + d;
    }
    if (*p && units && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
        int shift;
        switch (*p++) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return 2;
        }
        if (*p && strcmp(p, "iB") != 0 && strcmp(p, "B") != 0)
            return 2;
        if (v > UINT64_MAX >> shift)
            return 3;
        v <<= shift;
    } else if (*p) {
        return 1;
    }
    *out = v;
    return 0;
}

/* "256M" for 268435456; plain digits when no suffix divides it. */
static void fmt_size(char *buf, size_t n, uint64_t v)
{
    if (v && v % GiB == 0)
        snprintf(buf, n, "%lluG", (unsigned long long)(v / GiB));
    else if (v && v % MiB == 0)
        snprintf(buf, n, "%lluM", (unsigned long long)(v / MiB));
    else if (v && v % KiB == 0)
        snprintf(buf, n, "%lluK", (unsigned long long)(v / KiB));
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

/* The range of a numeric option, as --help and range errors say it: "1..1024", "4K..64M". */
static void fmt_range(char *buf, size_t n, const struct opt *o)
{
    char lo[32], hi[32];
    if (o->kind == K_SIZE) {
        fmt_size(lo, sizeof lo, o->min);
        fmt_size(hi, sizeof hi, o->max);
    } else {
        snprintf(lo, sizeof lo, "%llu", (unsigned long long)o->min);
        snprintf(hi, sizeof hi, "%llu", (unsigned long long)o->max);
    }
    snprintf(buf, n, "%s..%s", lo, hi);
}

static int parse_port(const char *s, int *port)
{
    uint64_t v;
    if (parse_uint(s, 0, &v) != 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* A host name or IPv4 literal (no brackets). 0 ok, else -1. */
static int check_host(const char *h)
{
    size_t n = strlen(h);
    int numeric = 1;
    unsigned char a4[4];
    if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
        return -1;
    for (const char *p = h; *p; p++) {
        if (!is_alnum(*p) && *p != '-' && *p != '.')
            return -1;
        if (!is_digit(*p) && *p != '.')
            numeric = 0;
    }
    return numeric && inet_pton(AF_INET, h, a4) != 1 ? -1 : 0;
}

/* An IPv6 literal, with an optional "%zone". 0 ok, else -1. */
static int check_host6(const char *h)
{
    char addr[64];
    unsigned char a6[16];
    const char *pct = strchr(h, '%');
    size_t n = pct ? (size_t)(pct - h) : strlen(h);
    if (n == 0 || n >= sizeof addr)
        return -1;
    memcpy(addr, h, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET6, addr, a6) != 1)
        return -1;
    if (pct) {
        if (!pct[1])
            return -1;
        for (const char *p = pct + 1; *p; p++)
            if (!is_alnum(*p) && *p != '-' && *p != '_' && *p != '.')
                return -1;
    }
    return 0;
}

/* HOST:PORT or [V6]:PORT into out_host (256 bytes) and *out_port. 0 ok, or 1 with err filled
 * (prefixed by who). */
static int parse_listen(char *out_host, int *out_port, const char *v, const char *who,
                        qdq_error *err)
{
    char host[256];
    const char *colon;
    size_t n;
    int v6 = v[0] == '[', port;
    if (v6) {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not [ADDRESS]:PORT", who, v);
        n = (size_t)(close - v - 1);
        colon = close + 1;
        if (n >= sizeof host)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s': the address is too long", who, v);
        memcpy(host, v + 1, n);
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not HOST:PORT (e.g. 127.0.0.1:8080)", who, v);
        n = (size_t)(colon - v);
        if (memchr(v, ':', n))
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s': an IPv6 address needs brackets, as in [::1]:8080",
                        who, v);
        if (n == 0)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' has no host (use 0.0.0.0:PORT or [::]:PORT for "
                        "every interface)", who, v);
        if (n >= sizeof host)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s': the host is too long", who, v);
        memcpy(host, v, n);
    }
    host[n] = '\0';
    if ((v6 ? check_host6(host) : check_host(host)) != 0)
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s': '%s' is not a valid %s", who, v, host,
                    v6 ? "IPv6 address" : "host name or IPv4 address");
    if (parse_port(colon + 1, &port) != 0)
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s': the port must be a number from 0 to 65535", who, v);
    memcpy(out_host, host, n + 1);
    *out_port = port;
    return 0;
}

/* Printable ASCII without spaces: what an HTTP header value can carry unambiguously. */
static int check_token(const char *t, const char *who, qdq_error *err)
{
    size_t n = strlen(t);
    if (n == 0)
        return qdq_fail(err, QDQ_EINVAL, "%s: the token is empty", who);
    if (n >= sizeof ((cfg *)0)->auth_token)
        return qdq_fail(err, QDQ_EINVAL, "%s: the token is longer than %zu characters", who,
                    sizeof ((cfg *)0)->auth_token - 1);
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x21 || t[i] > 0x7e)
            return qdq_fail(err, QDQ_EINVAL, "%s: the token has a space, control or non-ASCII character at "
                        "offset %zu", who, i);
    return 0;
}

/* Parses value v of option o (spelled `who` in messages) into c. 0, or 1 with err filled. */
static int apply(cfg *c, const struct opt *o, const char *v, const char *who, qdq_error *err)
{
    char *field = (char *)c + o->off;
    char range[80];
    uint64_t u = 0;
    int rc;

    if (o->kind == K_TOKEN) { /* checked without echoing it */
        if (check_token(v, who, err))
            return 1;
        strcpy(c->auth_token, v);
        c->auth_token_file[0] = '\0';
        return 0;
    }
    if (!*v)
        return qdq_fail(err, QDQ_EINVAL, "%s: empty value", who);
    switch (o->kind) {
    case K_LISTEN:
        return parse_listen(c->listen_host, &c->listen_port, v, who, err);
    case K_GRPC_LISTEN:
        if (strcmp(v, "none") == 0) {
            c->grpc_host[0] = '\0';
            c->grpc_port = -1;
            return 0;
        }
        return parse_listen(c->grpc_host, &c->grpc_port, v, who, err);
    case K_PORT:
        if (parse_port(v, &c->listen_port) != 0)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not a port number from 0 to 65535", who, v);
        return 0;
    case K_NUM:
    case K_SIZE:
        rc = parse_uint(v, o->kind == K_SIZE, &u);
        fmt_range(range, sizeof range, o);
        if (rc == 1)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not a whole number%s", who, v,
                        o->kind == K_SIZE ? " (optionally with K, M or G)" : "");
        if (rc == 2)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' has an unknown suffix (use K, M or G, 1024-based)",
                        who, v);
        if (rc == 3 || u < o->min || u > o->max)
            return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is out of range (%s)", who, v, range);
        if (o->size == sizeof(int))
            *(int *)field = (int)u;
        else
            *(uint64_t *)field = u;
        return 0;
    case K_CHOICE: {
        size_t n = strlen(v);
        for (const char *p = o->choices; *p;) {
            size_t k = strcspn(p, "|");
            if (k == n && memcmp(p, v, n) == 0) {
                memcpy(field, v, n + 1);
                return 0;
            }
            p += k + (p[k] == '|');
        }
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not one of %s", who, v, o->choices);
    }
    case K_BOOL: {
        static const char *const on[] = { "on", "true", "yes", "1" };
        static const char *const off[] = { "off", "false", "no", "0" };
        for (int i = 0; i < 4; i++) {
            if (strcmp(v, on[i]) == 0 || strcmp(v, off[i]) == 0) {
                *(int *)field = strcmp(v, on[i]) == 0;
                return 0;
            }
        }
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not on or off", who, v);
    }
    case K_CONFIG:
    case K_TOKEN_FILE:
    case K_PATH:
        if (strlen(v) >= o->size)
            return qdq_fail(err, QDQ_EINVAL, "%s: the path '%.100s...' is longer than %zu bytes", who, v,
                        o->size - 1);
        strcpy(field, v);
        if (o->kind == K_TOKEN_FILE)
            c->auth_token[0] = '\0';
        return 0;
    case K_TOKEN:
        break;
    }
    return 0;
}

/* Applies every value of layer l, in table order, recording where each came from. */
static int apply_layer(cfg *c, const struct layer *l, struct origin *org, qdq_error *err)
{
    const struct opt *tok = opt_find("auth-token", 10), *tokf = opt_find("auth-token-file", 15);
    char who[400], who2[400];
    if (l->val[tok - opts] && l->val[tokf - opts]) {
        src_name(who, sizeof who, tok, l->src, l->line[tok - opts], c->config_file);
        src_name(who2, sizeof who2, tokf, l->src, l->line[tokf - opts], c->config_file);
        return qdq_fail(err, QDQ_EINVAL, "%s and %s are both set: give the token one way", who, who2);
    }
    for (size_t i = 0; i < NOPT; i++) {
        if (!l->val[i] || opts[i].kind == K_CONFIG)
            continue;
        src_name(who, sizeof who, &opts[i], l->src, l->line[i], c->config_file);
        if (apply(c, &opts[i], l->val[i], who, err))
            return 1;
        org->src[i] = l->src;
        org->line[i] = l->line[i];
    }
    return 0;
}

/* Reads the whole of a small file (at most max bytes) into a malloc'ed, NUL-terminated
 * buffer the caller frees. NULL with errno set on failure (EFBIG: too large). */
static char *read_small_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (!f)
        return NULL;
    buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        int e = ferror(f) ? (errno ? errno : EIO) : EFBIG;
        fclose(f);
        free(buf);
        errno = e;
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * Parses config file text (modified in place: values are NUL-terminated where they lie) into l.
 * A line is blank, a '#' comment, or "key = value"; keys are option names ('_' works as '-');
 * a value may be "double-quoted"; a '#' after whitespace starts a comment.
 */
static int parse_file(char *text, size_t len, const char *path, struct layer *l, qdq_error *err)
{
    char *line = text, *next;
    int lineno = 0;
    if (memchr(text, '\0', len))
        return qdq_fail(err, QDQ_EINVAL, "%.300s: contains a NUL byte (not a text file?)", path);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    for (; line; line = next) {
        char key[64], *p = line, *v, *end;
        size_t k = 0;
        const struct opt *o;
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (is_space(*p))
            p++;
        if (!*p || *p == '#')
            continue;
        for (; *p && *p != '=' && !is_space(*p); p++) {
            char ch = *p == '_' ? '-' : (*p >= 'A' && *p <= 'Z') ? *p + 32 : *p;
            if (k + 1 < sizeof key)
                key[k++] = ch;
        }
        key[k] = '\0';
        while (is_space(*p))
            p++;
        if (*p != '=') /* the rest of the line is not echoed: it may be a token */
            return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: expected 'key = value', but '%s' has no '='", path,
                        lineno, key);
        o = opt_find(key, k);
        if (!o)
            return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: unknown key '%s'", path, lineno, key);
        if (o->kind == K_CONFIG)
            return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: 'config' cannot be set in a config file", path,
                        lineno);
        for (p++; is_space(*p); p++)
            ;
        if (*p == '"') {
            v = ++p;
            end = strchr(p, '"');
            if (!end)
                return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: %s: unterminated quote", path, lineno, o->name);
            *end = '\0';
            for (p = end + 1; is_space(*p); p++)
                ;
            if (*p && *p != '#')
                return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: %s: text after the closing quote", path, lineno,
                            o->name);
        } else {
            v = p;
            for (end = p; *end && !(*end == '#' && end > v && is_space(end[-1])); end++)
                ;
            while (end > v && is_space(end[-1]))
                end--;
            *end = '\0';
        }
        if (l->val[o - opts])
            return qdq_fail(err, QDQ_EINVAL, "%.300s:%d: %s is repeated (first set on line %d)", path, lineno,
                        o->name, l->line[o - opts]);
        l->val[o - opts] = v;
        l->line[o - opts] = lineno;
    }
    return 0;
}

/* Fills l from argv. 0; 1 with err filled; 2 for --help; 3 for --version. */
static int scan_flags(int argc, char **argv, struct layer *l, qdq_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name = a + 2, *eq;
        const struct opt *o;
        size_t n;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 2;
        if (strcmp(a, "--version") == 0)
            return 3;
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc)
                return qdq_fail(err, QDQ_EINVAL, "unexpected argument '%.200s'", argv[i + 1]);
            break;
        }
        if (a[0] != '-')
            return qdq_fail(err, QDQ_EINVAL, "unexpected argument '%.200s' (options start with --)", a);
        if (a[1] != '-')
            return qdq_fail(err, QDQ_EINVAL, "unknown option '%.200s'", a);
        eq = strchr(name, '=');
        n = eq ? (size_t)(eq - name) : strlen(name);
        o = opt_find(name, n);
        if (!o) {
            if ((n == 4 && memcmp(name, "help", 4) == 0) ||
                (n == 7 && memcmp(name, "version", 7) == 0))
                return qdq_fail(err, QDQ_EINVAL, "option '--%.*s' takes no value", (int)n, name);
            return qdq_fail(err, QDQ_EINVAL, "unknown option '--%.*s'", (int)(n > 200 ? 200 : n), name);
        }
        if (eq)
            l->val[o - opts] = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            l->val[o - opts] = argv[++i];
        else
            return qdq_fail(err, QDQ_EINVAL, "option '--%s' needs a value", o->name);
    }
    return 0;
}

static void scan_env(char **envp, struct layer *l)
{
    char name[64];
    for (size_t i = 0; i < NOPT; i++) {
        size_t n;
        env_name(name, sizeof name, opts[i].name);
        n = strlen(name);
        for (char **e = envp; e && *e; e++) {
            if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
                l->val[i] = *e + n + 1;
                break;
            }
        }
    }
}

/* A file another program will open later: it must exist, be readable, and not be a directory. */
static int check_readable(const char *path, const char *who, qdq_error *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qdq_fail(err, QDQ_EINVAL, "%s: cannot read '%.300s': %s", who, path, strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.300s' is a directory", who, path);
    }
    close(fd);
    return 0;
}

/* Reads c->auth_token from c->auth_token_file: its first line, surrounding space removed. */
static int read_token_file(cfg *c, const char *who, qdq_error *err)
{
    size_t len, b = 0, e;
    char *text = read_small_file(c->auth_token_file, 64 * KiB, &len);
    int rc;
    if (!text)
        return qdq_fail(err, QDQ_EINVAL, "%s: cannot read '%.300s': %s", who, c->auth_token_file,
                    errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
    e = strcspn(text, "\n");
    while (b < e && is_space(text[b]))
        b++;
    while (e > b && is_space(text[e - 1]))
        e--;
    text[e] = '\0';
    if (b == e)
        rc = qdq_fail(err, QDQ_EINVAL, "%s: '%.300s' holds no token on its first line", who,
                  c->auth_token_file);
    else if ((rc = check_token(text + b, who, err)) == 0)
        strcpy(c->auth_token, text + b);
    memset(text, 0, len); /* leave no copy of the secret behind in freed memory */
    free(text);
    return rc;
}

/* The checks that involve more than one option, or files, once every layer is applied. */
static int check_final(cfg *c, const struct origin *org, qdq_error *err)
{
    const struct opt *cert = opt_find("tls-cert", 8), *key = opt_find("tls-key", 7);
    const struct opt *tokf = opt_find("auth-token-file", 15);
    const struct opt *conns = opt_find("max-connections", 15);
    char who[400];
#define WHO(o) src_name(who, sizeof who, (o), org->src[(o) - opts], org->line[(o) - opts], \
                        c->config_file)
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        WHO(c->tls_cert[0] ? cert : key);
        return qdq_fail(err, QDQ_EINVAL, "%s is set but %s is not: TLS needs both a certificate and a key", who,
                    c->tls_cert[0] ? "tls-key" : "tls-cert");
    }
    if (c->tls_cert[0]) {
        WHO(cert);
        if (check_readable(c->tls_cert, who, err))
            return 1;
        WHO(key);
        if (check_readable(c->tls_key, who, err))
            return 1;
    }
    if (c->auth_token_file[0]) {
        WHO(tokf);
        if (read_token_file(c, who, err))
            return 1;
    }
    if (access(c->spool_dir, W_OK | X_OK) != 0) {
        const struct opt *sd = opt_find("spool-dir", 9);
        WHO(sd);
        return qdq_fail(err, QDQ_EINVAL, "%s: '%.200s' is not a directory this process can write "
                        "(%s)", who, c->spool_dir, strerror(errno));
    }
    if (c->max_connections < c->http_threads) {
        WHO(conns);
        return qdq_fail(err, QDQ_EINVAL, "%s: %d is less than http-threads (%d): libmicrohttpd shares the "
                    "connections among its threads", who, c->max_connections, c->http_threads);
    }
#undef WHO
    return 0;
}

/*
 * Three quarters of the memory limit: the budget counts the bytes of requests and of the buffer
 * cache, and the last quarter is for what it does not count: per-connection memory
 * (--max-connections x --max-header-bytes, 64 MiB by default), thread stacks, the program and
 * its libraries, and the allocator's fragmentation. Without a limit, of physical memory, as the
 * ceiling a lone server can use; a machine shared with other services sets --max-memory itself.
 */
void cfg_defaults_for(cfg *c, const cfg_limits *lim, long cores)
{
    uint64_t mem = lim->memory_total;
    if (lim->memory_limit && (!mem || lim->memory_limit < mem))
        mem = lim->memory_limit;
    mem = mem ? mem / 4 * 3 / MiB * MiB : GiB;
    if (mem < MiB)
        mem = MiB;
    if (mem > 64 * TiB)
        mem = 64 * TiB;
    if (cores < 1)
        cores = 1;
    if (lim->cpu_quota > 0) {
        /* Rounded up: 1.5 cores of quota is used best by two threads. */
        long cpus = (long)ceil(lim->cpu_quota - 1e-9);
        if (cpus < cores)
            cores = cpus < 1 ? 1 : cpus;
    }
    if (cores > CFG_MAX_WORKERS)
        cores = CFG_MAX_WORKERS;
    memset(c, 0, sizeof *c);
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    strcpy(c->grpc_host, "127.0.0.1");
    c->grpc_port = 8081;
    c->workers = (int)cores;
    c->http_threads = cores < 4 ? (int)cores : 4;
    c->max_memory = mem;
    c->cache_idle_ms = 2000;
    c->spool_keep_ms = 30000;
    c->max_body_bytes = 256 * MiB;
    c->max_checkpoint_bytes = 64 * GiB;
    c->max_checkpoint_inflight = 2;
    const char *tmp = getenv("TMPDIR");
    snprintf(c->spool_dir, sizeof c->spool_dir, "%s", tmp && *tmp ? tmp : "/tmp");
    c->max_elements = 64 * MiB;
    c->max_rank = 32;
    c->max_json_depth = 64;
    c->max_header_bytes = 64 * KiB;
    c->max_queue = 256;
    c->max_inflight = 1024;
    c->max_connections = 1024;
    c->max_connections_per_ip = 0;
    c->idle_timeout_s = 30;
    c->request_timeout_s = 60;
    c->drain_timeout_s = 30;
    c->shutdown_grace_s = 2;
    c->small_request_bytes = 65536;
    strcpy(c->log_format, "text");
    strcpy(c->log_level, "info");
    c->access_log = 1;
    c->access_log_flush_ms = 500;
}

void cfg_defaults(cfg *c)
{
    cfg_limits lim;
    cfg_limits_read(NULL, &lim);
    cfg_defaults_for(c, &lim, sysconf(_SC_NPROCESSORS_ONLN));
}

static int load(cfg *c, int argc, char **argv, char **envp, FILE *out, qdq_error *err)
{
    struct layer flags = { .src = L_FLAG }, env = { .src = L_ENV }, file = { .src = L_FILE };
    struct origin org;
    const struct opt *conf = opt_find("config", 6);
    const char *path;
    char who[400];
    int rc;

    cfg_defaults(c);
    for (size_t i = 0; i < NOPT; i++)
        org.src[i] = L_DEFAULT, org.line[i] = 0;

    rc = scan_flags(argc, argv, &flags, err);
    if (rc == 2 && out)
        cfg_usage(out, argc > 0 && argv[0] ? argv[0] : "qdq-server");
    if (rc == 3 && out)
        fprintf(out, "qdq-server %s\n", QDQ_SERVER_VERSION);
    if (rc)
        return rc;
    scan_env(envp, &env);

    path = flags.val[conf - opts] ? flags.val[conf - opts] : env.val[conf - opts];
    if (path) {
        char *text;
        size_t len;
        src_name(who, sizeof who, conf, flags.val[conf - opts] ? L_FLAG : L_ENV, 0, "");
        if (apply(c, conf, path, who, err))
            return 1;
        text = read_small_file(path, 1 * MiB, &len);
        if (!text)
            return qdq_fail(err, QDQ_EINVAL, "%s: cannot read '%.300s': %s", who, path,
                        errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        rc = parse_file(text, len, c->config_file, &file, err);
        if (rc == 0)
            rc = apply_layer(c, &file, &org, err);
        free(text);
        if (rc)
            return rc;
    }
    if (apply_layer(c, &env, &org, err) || apply_layer(c, &flags, &org, err))
        return 1;
    return check_final(c, &org, err);
}

int cfg_load(cfg *c, int argc, char **argv, char **envp, FILE *out, qdq_error *err)
{
    qdq_error local;
    int rc;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    rc = load(c, argc, argv, envp, out, err);
    if (rc == 1)
        memset(c, 0, sizeof *c);
    else if (rc != 0)
        cfg_defaults(c);
    return rc;
}

/* The value of option o in c as text: for --help (human: sizes with suffixes) or cfg_dump. */
static void fmt_value(char *buf, size_t n, const cfg *c, const struct opt *o, int human)
{
    const char *field = (const char *)c + o->off;
    uint64_t u;
    switch (o->kind) {
    case K_LISTEN:
        snprintf(buf, n, strchr(c->listen_host, ':') ? "[%s]:%d" : "%s:%d", c->listen_host,
                 c->listen_port);
        return;
    case K_PORT:
        snprintf(buf, n, "%d", c->listen_port);
        return;
    case K_GRPC_LISTEN:
        if (c->grpc_port < 0)
            snprintf(buf, n, "none");
        else
            snprintf(buf, n, strchr(c->grpc_host, ':') ? "[%s]:%d" : "%s:%d", c->grpc_host,
                     c->grpc_port);
        return;
    case K_NUM:
    case K_SIZE:
        u = o->size == sizeof(int) ? (uint64_t)*(const int *)field : *(const uint64_t *)field;
        if (human && o->kind == K_SIZE)
            fmt_size(buf, n, u);
        else
            snprintf(buf, n, "%llu", (unsigned long long)u);
        return;
    case K_BOOL:
        snprintf(buf, n, "%s", *(const int *)field ? "on" : "off");
        return;
    case K_TOKEN:
        snprintf(buf, n, "%s", c->auth_token[0] ? "(set)" : "(none)");
        return;
    case K_CHOICE:
    case K_CONFIG:
    case K_TOKEN_FILE:
    case K_PATH:
        snprintf(buf, n, "%s", field[0] ? field : "(none)");
        return;
    }
}

/* Writes text word-wrapped to width columns, every line indented by indent spaces. */
static void wrap(FILE *out, const char *text, int indent, int width)
{
    int col = 0;
    while (*text) {
        int w = (int)strcspn(text, " ");
        if (col > 0 && col + 1 + w > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0)
            col = fprintf(out, "%*s", indent, "");
        else
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", w, text);
        text += w;
        while (*text == ' ')
            text++;
    }
    fputc('\n', out);
}

void cfg_usage(FILE *out, const char *prog)
{
    cfg d;
    cfg_defaults(&d);
    fprintf(out,
            "Usage: %s [OPTION]...\n"
            "Serves TensorFlow's QuantizeAndDequantizeV2 over HTTP, exact to the bit.\n\n",
            prog);
    wrap(out,
         "Every option can also be set by the environment variable shown with it, or by a "
         "line \"name = value\" in the config file (the option's name without dashes, e.g. "
         "\"max-body-bytes = 64M\"). Precedence: flag, then environment, then file, then "
         "default. Flags take \"--name value\" or \"--name=value\". SIZE is a number of bytes "
         "with an optional 1024-based suffix K, M or G.", 0, 78);
    fprintf(out, "\n  -h, --help          print this help and exit\n"
                 "      --version       print the version and exit\n"
                 "      --healthcheck   ask the running server for GET /healthz; exit 0 when\n"
                 "                      it answers 200 (container health checks). Alone, in a\n"
                 "                      container, it asks the container's server (PID 1, or\n"
                 "                      the child of an init) where its own flags and\n"
                 "                      variables say; else where the options and QDQ_*\n"
                 "                      variables given say\n");
    for (size_t i = 0; i < NOPT; i++) {
        const struct opt *o = &opts[i];
        char env[64], head[128], def[1100], range[80], text[1600];
        int k;
        if (o->group)
            fprintf(out, "\n%s:\n", o->group);
        env_name(env, sizeof env, o->name);
        snprintf(head, sizeof head, "  --%s %s", o->name, o->arg);
        fprintf(out, "%-44s %s\n", head, env);
        if (o->kind == K_PORT)
            snprintf(def, sizeof def, "the port of --listen");
        else
            fmt_value(def, sizeof def, &d, o, 1);
        k = snprintf(text, sizeof text, "%s", o->help);
        if (o->choices)
            k += snprintf(text + k, sizeof text - (size_t)k, " One of: %s.", o->choices);
        if (o->kind == K_NUM || o->kind == K_SIZE) {
            fmt_range(range, sizeof range, o);
            k += snprintf(text + k, sizeof text - (size_t)k, " Range: %s.", range);
        }
        k += snprintf(text + k, sizeof text - (size_t)k, " Default: %s", def);
        snprintf(text + k, sizeof text - (size_t)k, o->note ? " (%s)." : ".%s",
                 o->note ? o->note : "");
        wrap(out, text, 6, 78);
    }
}

void cfg_dump(const cfg *c, FILE *out)
{
    char v[1100];
    for (size_t i = 0; i < NOPT; i++) {
        if (opts[i].kind == K_PORT) /* part of listen */
            continue;
        fmt_value(v, sizeof v, c, &opts[i], 0);
        fprintf(out, "%s = %s\n", opts[i].name, v);
    }
}
