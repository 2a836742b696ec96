/*
 * config/: defaults, and those that follow the container's cgroup limits (v1, v2, hybrid, in
 * fake trees); file < environment < flag precedence; every option in every source
 * (--name value, --name=value, QDQ_NAME=value, "name = value"); size suffixes; --help and
 * --version; the dump; the config file's syntax; the example config file; and invalid input,
 * each naming the option, the source and the bad value.
 *
 * config/ is linked into the server only, so config.c is included here whole.
 */
#include "../../config/cgroup.c"
#include "../../config/config.c"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];
static char *noenv[] = { NULL };
static cfg zero_cfg;

/* Writes n bytes of text to tmpdir/name; returns the path (static; four rotate). */
static const char *write_file_n(const char *name, const char *text, size_t n)
{
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    FILE *f;
    snprintf(p, 256, "%s/%s", tmpdir, name);
    f = fopen(p, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(2);
    }
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    return write_file_n(name, text, strlen(text));
}

/* argv is NULL-terminated and starts after the program name. */
static int load_argv(cfg *c, qdq_error *e, char **env, char **args)
{
    char *argv[64] = { "qdq-server" };
    int argc = 1;
    while (args[argc - 1])
        argv[argc] = args[argc - 1], argc++;
    return cfg_load(c, argc, argv, env, NULL, e);
}
#define ENV(...) ((char *[]){ __VA_ARGS__, NULL })
#define LOAD(c, e, env, ...) load_argv(c, e, env, (char *[]){ __VA_ARGS__, NULL })

static char *dump_of(const cfg *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cfg_dump(c, f);
    fclose(f);
    return buf;
}

/* Does cfg_dump(c) have the line "key = val"? */
static int dump_has(const cfg *c, const char *key, const char *val)
{
    char line[1200];
    char *d = dump_of(c);
    int found;
    snprintf(line, sizeof line, "\n%s = %s\n", key, val);
    /* the first line has no '\n' before it */
    found = strstr(d, line) != NULL || strncmp(d, line + 1, strlen(line + 1)) == 0;
    free(d);
    return found;
}

static void test_defaults(void)
{
    cfg c, d;
    qdq_error e;
    cfg_limits lim;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    /* This machine's cgroups may set a CPU quota (the reading is tested in test_limits). */
    cfg_limits_read(NULL, &lim);
    if (lim.cpu_quota > 0 && ceil(lim.cpu_quota - 1e-9) < (double)cores)
        cores = (long)ceil(lim.cpu_quota - 1e-9);
    cfg_defaults(&d);
    CHECK(strcmp(d.listen_host, "127.0.0.1") == 0 && d.listen_port == 8080, "default listen %s:%d",
          d.listen_host, d.listen_port);
    CHECK(d.workers == (cores > 1024 ? 1024 : cores), "workers %d, cores %ld", d.workers, cores);
    CHECK(d.http_threads == (cores < 4 ? cores : 4), "http_threads %d", d.http_threads);
    CHECK(d.max_memory >= 1 << 20 && d.max_memory % (1 << 20) == 0 &&
              d.max_memory <= (lim.memory_total ? lim.memory_total : 1ULL << 30),
          "max_memory %llu: whole MiB, within physical memory %llu",
          (unsigned long long)d.max_memory, (unsigned long long)lim.memory_total);
    CHECK(d.cache_idle_ms == 2000, "cache_idle_ms %d", d.cache_idle_ms);
    CHECK(d.max_body_bytes == 256ULL << 20, "max_body_bytes %llu",
          (unsigned long long)d.max_body_bytes);
    CHECK(d.max_elements == 67108864ULL, "max_elements");
    CHECK(d.max_rank == 32 && d.max_json_depth == 64, "max_rank/max_json_depth");
    CHECK(d.max_header_bytes == 65536, "max_header_bytes");
    CHECK(d.max_queue == 256 && d.max_inflight == 1024, "max_queue/max_inflight");
    CHECK(d.max_connections == 1024 && d.max_connections_per_ip == 0, "max_connections");
    CHECK(d.idle_timeout_s == 30 && d.request_timeout_s == 60 && d.drain_timeout_s == 30 &&
          d.shutdown_grace_s == 2, "timeouts");
    CHECK(d.small_request_bytes == 65536, "small_request_bytes");
    CHECK(strcmp(d.log_format, "text") == 0 && strcmp(d.log_level, "info") == 0 && d.access_log,
          "logging defaults");
    CHECK(!d.auth_token[0] && !d.auth_token_file[0] && !d.tls_cert[0] && !d.tls_key[0] &&
          !d.config_file[0], "no token, TLS or config file by default");

    CHECK(cfg_load(&c, 1, (char *[]){ "qdq-server", NULL }, noenv, NULL, &e) == 0, "%s", e.msg);
    CHECK(memcmp(&c, &d, sizeof c) == 0, "cfg_load with nothing equals cfg_defaults");
    CHECK(cfg_load(&c, 0, (char *[]){ NULL }, NULL, NULL, &e) == 0, "argc 0, envp NULL: %s",
          e.msg);
    CHECK(memcmp(&c, &d, sizeof c) == 0, "argc 0 gives the defaults");
    CHECK(LOAD(&c, &e, ENV("PATH=/bin", "QDQ_SERVER=/x", "QDQ_WORKERSX=9"), "--")
              == 0 && c.workers == d.workers,
          "unrelated and unknown QDQ_* variables are ignored, '--' alone is fine: %s", e.msg);
}

static void test_precedence(void)
{
    cfg c;
    qdq_error e;
    const char *conf = write_file("prec.conf", "workers = 3\nmax-rank = 5\nlisten = 10.0.0.1:1\n"
                                               "auth-token = fromfile\n");
    const char *other = write_file("other.conf", "workers = 11\n");
    char qconf[300], qother[300];
    snprintf(qconf, sizeof qconf, "QDQ_CONFIG=%s", conf);
    snprintf(qother, sizeof qother, "QDQ_CONFIG=%s", other);

    CHECK(LOAD(&c, &e, noenv, "--config", (char *)conf) == 0 && c.workers == 3 &&
              c.max_rank == 5 && strcmp(c.config_file, conf) == 0,
          "file over default: %s (workers %d)", e.msg, c.workers);
    CHECK(LOAD(&c, &e, ENV(qconf, "QDQ_WORKERS=5"), "--max-json-depth", "9") == 0
              && c.workers == 5 && c.max_rank == 5 && c.max_json_depth == 9,
          "env over file, layers merge: %s", e.msg);
    CHECK(LOAD(&c, &e, ENV(qconf, "QDQ_WORKERS=5"), "--workers", "7") == 0 &&
              c.workers == 7 && c.max_rank == 5,
          "flag over env over file: %s (workers %d)", e.msg, c.workers);
    CHECK(LOAD(&c, &e, ENV("QDQ_WORKERS=5"), "--workers=7") == 0 && c.workers == 7,
          "flag over env: %s", e.msg);
    CHECK(LOAD(&c, &e, ENV(qother), "--config", (char *)conf) == 0 &&
              c.workers == 3 && strcmp(c.config_file, conf) == 0,
          "--config wins over QDQ_CONFIG: %s", e.msg);
    CHECK(LOAD(&c, &e, ENV(qother), "--max-rank", "6") == 0 && c.workers == 11 &&
              strcmp(c.config_file, other) == 0,
          "QDQ_CONFIG alone: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--workers", "2", "--workers", "4") == 0 && c.workers == 4,
          "a repeated flag: the last wins");

    /* --listen and --port */
    CHECK(LOAD(&c, &e, ENV("QDQ_LISTEN=0.0.0.0:9000"), "--port", "1234") == 0 &&
              strcmp(c.listen_host, "0.0.0.0") == 0 && c.listen_port == 1234,
          "--port keeps the host of QDQ_LISTEN: %s:%d", c.listen_host, c.listen_port);
    CHECK(LOAD(&c, &e, ENV(qconf, "QDQ_PORT=99"), "--") == 0 &&
              strcmp(c.listen_host, "10.0.0.1") == 0 && c.listen_port == 99,
          "QDQ_PORT over the file's listen: %s:%d", c.listen_host, c.listen_port);
    CHECK(LOAD(&c, &e, noenv, "--port", "5", "--listen", "[::]:6") == 0 && c.listen_port == 5 &&
              strcmp(c.listen_host, "::") == 0,
          "in one source --port wins over --listen's port whatever the order: %d", c.listen_port);

    /* The token: the higher source wins, whichever way each gives it. */
    const char *tokf = write_file("prec.token", "fromfile2\n");
    char qtokf[300];
    snprintf(qtokf, sizeof qtokf, "QDQ_AUTH_TOKEN_FILE=%s", tokf);
    CHECK(LOAD(&c, &e, ENV(qconf), "--") == 0 &&
              strcmp(c.auth_token, "fromfile") == 0,
          "token from the config file: %s", e.msg);
    CHECK(LOAD(&c, &e, ENV(qconf, qtokf), "--") == 0 &&
              strcmp(c.auth_token, "fromfile2") == 0 && strcmp(c.auth_token_file, tokf) == 0,
          "QDQ_AUTH_TOKEN_FILE over the file's auth-token: %s '%s'", e.msg, c.auth_token);
    CHECK(LOAD(&c, &e, ENV(qtokf), "--auth-token", "flagtok") == 0 &&
              strcmp(c.auth_token, "flagtok") == 0 && c.auth_token_file[0] == '\0',
          "--auth-token over QDQ_AUTH_TOKEN_FILE: %s", e.msg);
}

/* One option given in one source, and the dump line that shows it took. */
struct opt_case {
    const char *name, *value, *dump_key, *dump_val;
    const char *with, *with_value; /* an option that must come in the same source, or NULL */
};

enum { VIA_FLAG, VIA_FLAG_EQ, VIA_ENV, VIA_FILE };

static int load_via(int via, const struct opt_case *t, cfg *c, qdq_error *e)
{
    char env1[1200], env2[1200], flag1[64], flag2[64], eq1[1200], eq2[1200], text[2400];
    char *env[3] = { NULL }, *args[8] = { NULL };
    int n = 0;
    switch (via) {
    case VIA_FLAG:
        snprintf(flag1, sizeof flag1, "--%s", t->name);
        args[n++] = flag1, args[n++] = (char *)t->value;
        if (t->with) {
            snprintf(flag2, sizeof flag2, "--%s", t->with);
            args[n++] = flag2, args[n++] = (char *)t->with_value;
        }
        return load_argv(c, e, noenv, args);
    case VIA_FLAG_EQ:
        snprintf(eq1, sizeof eq1, "--%s=%s", t->name, t->value);
        args[n++] = eq1;
        if (t->with) {
            snprintf(eq2, sizeof eq2, "--%s=%s", t->with, t->with_value);
            args[n++] = eq2;
        }
        return load_argv(c, e, noenv, args);
    case VIA_ENV:
        env_name(flag1, sizeof flag1, t->name);
        snprintf(env1, sizeof env1, "%s=%s", flag1, t->value);
        env[n++] = env1;
        if (t->with) {
            env_name(flag2, sizeof flag2, t->with);
            snprintf(env2, sizeof env2, "%s=%s", flag2, t->with_value);
            env[n++] = env2;
        }
        args[0] = "--";
        return load_argv(c, e, env, args);
    default:
        snprintf(text, sizeof text, "# one option\n%s = %s\n%s%s%s\n", t->name, t->value,
                 t->with ? t->with : "", t->with ? " = " : "", t->with ? t->with_value : "");
        args[0] = "--config";
        args[1] = (char *)write_file("one.conf", text);
        return load_argv(c, e, noenv, args);
    }
}

static void test_every_option_every_source(void)
{
    static const char *const via_name[] = { "--name value", "--name=value", "QDQ_NAME", "file" };
    const char *tok = write_file("tok", "  t0ken-from-file \r\n second line ignored\n");
    const char *cert = write_file("cert.pem", "cert\n"), *key = write_file("key.pem", "key\n");
    char cert_path[256], key_path[256], tok_path[256];
    snprintf(cert_path, sizeof cert_path, "%s", cert);
    snprintf(key_path, sizeof key_path, "%s", key);
    snprintf(tok_path, sizeof tok_path, "%s", tok);
    const struct opt_case cases[] = {
        { "listen", "0.0.0.0:9090", "listen", "0.0.0.0:9090", NULL, NULL },
        { "port", "0", "listen", "127.0.0.1:0", NULL, NULL },
        { "grpc-listen", "[::1]:0", "grpc-listen", "[::1]:0", NULL, NULL },
        { "workers", "7", "workers", "7", NULL, NULL },
        { "http-threads", "3", "http-threads", "3", NULL, NULL },
        { "max-body-bytes", "64M", "max-body-bytes", "67108864", NULL, NULL },
        { "max-elements", "1000", "max-elements", "1000", NULL, NULL },
        { "max-rank", "64", "max-rank", "64", NULL, NULL },
        { "max-json-depth", "100", "max-json-depth", "100", NULL, NULL },
        { "max-header-bytes", "1M", "max-header-bytes", "1048576", NULL, NULL },
        { "max-queue", "0", "max-queue", "0", NULL, NULL },
        { "max-inflight", "5000", "max-inflight", "5000", NULL, NULL },
        { "max-connections", "64", "max-connections", "64", NULL, NULL },
        { "max-connections-per-ip", "8", "max-connections-per-ip", "8", NULL, NULL },
        { "max-memory", "600M", "max-memory", "629145600", NULL, NULL },
        { "cache-idle-ms", "0", "cache-idle-ms", "0", NULL, NULL },
        { "max-checkpoint-bytes", "1024G", "max-checkpoint-bytes", "1099511627776", NULL, NULL },
        { "max-checkpoint-inflight", "4", "max-checkpoint-inflight", "4", NULL, NULL },
        { "spool-dir", "/", "spool-dir", "/", NULL, NULL },
        { "spool-keep-ms", "0", "spool-keep-ms", "0", NULL, NULL },
        { "idle-timeout", "5", "idle-timeout", "5", NULL, NULL },
        { "request-timeout", "120", "request-timeout", "120", NULL, NULL },
        { "drain-timeout", "0", "drain-timeout", "0", NULL, NULL },
        { "shutdown-grace", "5", "shutdown-grace", "5", NULL, NULL },
        { "inline-bytes", "4k", "inline-bytes", "4096", NULL, NULL },
        { "log-format", "json", "log-format", "json", NULL, NULL },
        { "log-level", "debug", "log-level", "debug", NULL, NULL },
        { "access-log", "off", "access-log", "off", NULL, NULL },
        { "access-log-flush-ms", "50", "access-log-flush-ms", "50", NULL, NULL },
        { "auth-token", "s3cr3t!", "auth-token", "(set)", NULL, NULL },
        { "auth-token-file", tok_path, "auth-token-file", tok_path, NULL, NULL },
        { "tls-cert", cert_path, "tls-cert", cert_path, "tls-key", key_path },
        { "tls-key", key_path, "tls-key", key_path, "tls-cert", cert_path },
    };
    size_t ncase = sizeof cases / sizeof cases[0];

    /* The table covers every option except config (tested in test_precedence). */
    for (size_t i = 0; i < NOPT; i++) {
        int found = opts[i].kind == K_CONFIG;
        for (size_t j = 0; j < ncase; j++)
            found |= strcmp(cases[j].name, opts[i].name) == 0;
        CHECK(found, "option %s has no case", opts[i].name);
    }
    for (size_t j = 0; j < ncase; j++) {
        for (int via = 0; via < 4; via++) {
            cfg c;
            qdq_error e;
            int rc = load_via(via, &cases[j], &c, &e);
            CHECK(rc == 0, "%s via %s: rc %d: %s", cases[j].name, via_name[via], rc, e.msg);
            CHECK(rc == 0 && dump_has(&c, cases[j].dump_key, cases[j].dump_val),
                  "%s via %s: no line '%s = %s'", cases[j].name, via_name[via],
                  cases[j].dump_key, cases[j].dump_val);
            if (rc == 0 && strcmp(cases[j].name, "auth-token") == 0)
                CHECK(strcmp(c.auth_token, "s3cr3t!") == 0, "token via %s", via_name[via]);
            if (rc == 0 && strcmp(cases[j].name, "auth-token-file") == 0)
                CHECK(strcmp(c.auth_token, "t0ken-from-file") == 0,
                      "token file via %s: '%s' (first line, trimmed)", via_name[via],
                      c.auth_token);
        }
    }
}

static void test_values(void)
{
    cfg c;
    qdq_error e;
    static const struct { const char *in; uint64_t want; } sizes[] = {
        { "0", 0 }, { "1", 1 }, { "1k", 1024 }, { "1K", 1024 }, { "2m", 2 << 20 },
        { "2M", 2 << 20 }, { "3G", 3ULL << 30 }, { "3g", 3ULL << 30 }, { "1KiB", 1024 },
        { "1MB", 1 << 20 }, { "64MiB", 64 << 20 }, { "1024G", 1ULL << 40 },
        { "007", 7 }, { "1099511627776", 1ULL << 40 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t v = 12345;
        CHECK(parse_uint(sizes[i].in, 1, &v) == 0 && v == sizes[i].want, "size '%s' -> %llu",
              sizes[i].in, (unsigned long long)v);
    }
    static const char *const bad_sizes[] = { "1T", "1KB2", "1.5M", "1 M", "-1", "+1", " 1",
                                             "1e6", "0x10", "M", "", "1Mi", "1KK" };
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        uint64_t v;
        CHECK(parse_uint(bad_sizes[i], 1, &v) != 0, "size '%s' accepted", bad_sizes[i]);
    }
    uint64_t v;
    CHECK(parse_uint("18446744073709551615", 0, &v) == 0 && v == UINT64_MAX, "UINT64_MAX");
    CHECK(parse_uint("18446744073709551616", 0, &v) == 3, "UINT64_MAX + 1 overflows");
    CHECK(parse_uint("17179869184G", 1, &v) == 3, "suffix overflow");
    CHECK(parse_uint("4k", 0, &v) == 1, "no suffix where none is allowed");

    CHECK(LOAD(&c, &e, noenv, "--workers", "1") == 0 && strcmp(c.grpc_host, "127.0.0.1") == 0 &&
              c.grpc_port == 8081, "grpc-listen defaults to 127.0.0.1:8081");
    CHECK(LOAD(&c, &e, noenv, "--grpc-listen", "none") == 0 && c.grpc_port == -1,
          "grpc-listen none turns gRPC off: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--grpc-listen", "8081") != 0 &&
              strstr(e.msg, "--grpc-listen") != NULL, "grpc-listen without a host: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--max-elements", "64M") == 0 && c.max_elements == 64ULL << 20,
          "max-elements with a suffix: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--inline-bytes", "64M") == 0 &&
              c.small_request_bytes == 64 << 20, "inline-bytes 64M into an int: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--listen", "[fe80::1%eth0]:80") == 0 &&
              strcmp(c.listen_host, "fe80::1%eth0") == 0, "IPv6 with a zone: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--listen", "localhost:65535") == 0 &&
              strcmp(c.listen_host, "localhost") == 0 && c.listen_port == 65535,
          "host name and the highest port: %s", e.msg);
    CHECK(LOAD(&c, &e, noenv, "--listen=[::1]:8080") == 0 && strcmp(c.listen_host, "::1") == 0
              && dump_has(&c, "listen", "[::1]:8080"), "[::1]:8080 stored bare, dumped in brackets");
    static const char *const bools[] = { "on", "true", "yes", "1", "off", "false", "no", "0" };
    for (int i = 0; i < 8; i++)
        CHECK(LOAD(&c, &e, noenv, "--access-log", (char *)bools[i]) == 0 &&
                  c.access_log == (i < 4), "access-log %s", bools[i]);
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        CHECK(LOAD(&c, &e, noenv, "--log-level", (char *)levels[i]) == 0 &&
                  strcmp(c.log_level, levels[i]) == 0, "log-level %s", levels[i]);
}

static void test_file_syntax(void)
{
    cfg c;
    qdq_error e;
    const char *p;
    char text[2048];
    const char *cert = write_file("c 1.pem", "x"), *key = write_file("k#1.pem", "x");
    snprintf(text, sizeof text,
             "\xEF\xBB\xBF# a BOM, then a comment\r\n\r\n   # indented comment\n"
             "MAX_RANK=7\n\tworkers\t=\t6   # trailing comment\r\n"
             "auth-token = abc#def\n"
             "tls-cert = \"%s\"  # quoted: a space in the path\n"
             "tls-key = \"%s\"\n"
             "log-format = json", /* no final newline */
             cert, key);
    p = write_file("syntax.conf", text);
    CHECK(LOAD(&c, &e, noenv, "--config", (char *)p) == 0, "syntax file: %s", e.msg);
    CHECK(c.max_rank == 7 && c.workers == 6, "keys with '_' and capitals; tabs: %d %d",
          c.max_rank, c.workers);
    CHECK(strcmp(c.auth_token, "abc#def") == 0, "'#' not after a space stays: '%s'",
          c.auth_token);
    CHECK(strcmp(c.tls_cert, cert) == 0 && strcmp(c.tls_key, key) == 0, "quoted paths '%s' '%s'",
          c.tls_cert, c.tls_key);
    CHECK(strcmp(c.log_format, "json") == 0, "last line without a newline");
    cfg d;
    cfg_defaults(&d);
    p = write_file("empty.conf", "");
    strcpy(d.config_file, p);
    CHECK(LOAD(&c, &e, noenv, "--config", (char *)p) == 0 && memcmp(&c, &d, sizeof c) == 0,
          "an empty file gives the defaults: %s", e.msg);
}

/* The example file parses, documents every key, and its commented values are the defaults. */
static void test_example_file(void)
{
    const char *root = getenv("QDQ_TESTDATA");
    char path[1024], *text;
    size_t len;
    cfg c, d;
    qdq_error e;
    snprintf(path, sizeof path, "%s/../config/qdq-server.conf.example", root ? root : "tests");
    text = read_small_file(path, 1 << 20, &len);
    CHECK(text != NULL, "cannot read %s", path);
    if (!text)
        return;
    for (size_t i = 0; i < NOPT; i++) {
        char key[80];
        if (opts[i].kind == K_CONFIG)
            continue;
        snprintf(key, sizeof key, "\n#%s = ", opts[i].name);
        CHECK(strstr(text, key) != NULL, "the example does not document '%s'", opts[i].name);
    }
    CHECK(LOAD(&c, &e, noenv, "--config", path) == 0, "example as is: %s", e.msg);

    /* Uncomment every setting that has a machine-independent default. */
    char *out = malloc(len + 1), *o = out;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        int skip = line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
                   strncmp(line + 1, "workers", 7) != 0 && strncmp(line + 1, "http-", 5) != 0 &&
                   strncmp(line + 1, "max-memory", 10) != 0 &&
                   strncmp(line + 1, "auth-", 5) != 0 && strncmp(line + 1, "tls-", 4) != 0;
        memcpy(o, line + skip, n - (size_t)skip);
        o += n - (size_t)skip;
        line += n;
    }
    *o = '\0';
    const char *p = write_file("example.conf", out);
    cfg_defaults(&d);
    CHECK(LOAD(&c, &e, noenv, "--config", (char *)p) == 0, "uncommented example: %s", e.msg);
    strcpy(d.config_file, p);
    CHECK(memcmp(&c, &d, sizeof c) == 0, "the example's values are the defaults");
    free(out);
    free(text);
}

static void test_help_version_dump(void)
{
    cfg c, d;
    qdq_error e;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    char *argv[] = { "qdq-server", "--workers", "3", "--help", "--bogus", NULL };
    CHECK(cfg_load(&c, 5, argv, noenv, f, &e) == 2, "--help returns 2, before a later error");
    fclose(f);
    cfg_defaults(&d);
    CHECK(memcmp(&c, &d, sizeof c) == 0, "after --help c holds the defaults");
    CHECK(strstr(buf, "Usage: qdq-server") != NULL, "usage line");
    for (size_t i = 0; i < NOPT; i++) {
        char flag[64], env[64];
        snprintf(flag, sizeof flag, "--%s ", opts[i].name);
        env_name(env, sizeof env, opts[i].name);
        CHECK(strstr(buf, flag) != NULL, "--help lacks %s", flag);
        CHECK(strstr(buf, env) != NULL, "--help lacks %s", env);
    }
    CHECK(strstr(buf, "--help") && strstr(buf, "--version"), "--help lists --help, --version");
    CHECK(strstr(buf, "Default: 256M") && strstr(buf, "Range: 1..1024"), "defaults and ranges");
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &n);
    CHECK(cfg_load(&c, 2, (char *[]){ "x", "-h", NULL }, noenv, f, NULL) == 2, "-h");
    CHECK(cfg_load(&c, 2, (char *[]){ "x", "--version", NULL }, noenv, f, &e) == 3,
          "--version returns 3");
    fclose(f);
    CHECK(strstr(buf, "Usage: x") && strstr(buf, "qdq-server " QDQ_SERVER_VERSION "\n"),
          "help with the given program name, then the version line");
    free(buf);
    CHECK(cfg_load(&c, 2, (char *[]){ "x", "--help", NULL }, noenv, NULL, &e) == 2,
          "out may be NULL");

    CHECK(LOAD(&c, &e, noenv, "--auth-token", "hunter2", "--workers", "5") == 0, "%s", e.msg);
    char *d1 = dump_of(&c);
    int lines = 0;
    for (char *p = d1; *p; p++)
        lines += *p == '\n';
    CHECK(lines == (int)NOPT - 1, "one dump line per setting (port is in listen): %d", lines);
    CHECK(strstr(d1, "auth-token = (set)\n") && !strstr(d1, "hunter2"), "the token is hidden");
    CHECK(strstr(d1, "workers = 5\n") && strstr(d1, "tls-cert = (none)\n"), "dump values");
    free(d1);
}

/* One invalid input: rc 1, c zeroed, and the message contains each of the given words. */
static void bad(const char *what, char **env, char **args, const char *want1, const char *want2)
{
    cfg c;
    qdq_error e;
    int rc = load_argv(&c, &e, env, args);
    CHECK(rc == 1, "%s: rc %d, expected 1", what, rc);
    CHECK(memcmp(&c, &zero_cfg, sizeof c) == 0, "%s: c not zeroed on error", what);
    CHECK(strstr(e.msg, want1) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, want1);
    CHECK(!want2 || strstr(e.msg, want2) != NULL, "%s: message '%s' lacks '%s'", what, e.msg,
          want2);
}
#define BAD(what, env, w1, w2, ...) bad(what, env, (char *[]){ __VA_ARGS__, NULL }, w1, w2)
#define BADF(what, w1, w2, ...) BAD(what, noenv, w1, w2, __VA_ARGS__)

static char *conf_arg(const char *text)
{
    return (char *)write_file("bad.conf", text);
}

static void test_invalid(void)
{
    char longv[2100], *p;
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';

    /* Command line. */
    BADF("unknown option", "unknown option '--foo'", NULL, "--foo");
    BADF("unknown option=value", "unknown option '--foo'", NULL, "--foo=bar");
    BADF("short option", "unknown option '-w'", NULL, "-w", "3");
    BADF("stray argument", "unexpected argument 'stray'", NULL, "stray");
    BADF("argument after --", "unexpected argument 'x'", NULL, "--", "x");
    BADF("missing value at the end", "option '--workers' needs a value", NULL, "--workers");
    BADF("option as value", "option '--workers' needs a value", NULL, "--workers", "--max-rank",
         "3");
    BADF("--help=x", "'--help' takes no value", NULL, "--help=x");
    BADF("error before --help", "unknown option '--bogus'", NULL, "--bogus", "--help");

    /* Listen address and port. */
    BADF("port too big", "--listen", "'127.0.0.1:65536'", "--listen", "127.0.0.1:65536");
    BADF("negative port", "--listen", "port", "--listen", "127.0.0.1:-1");
    BADF("no port", "--listen", "HOST:PORT", "--listen", "127.0.0.1");
    BADF("empty port", "--listen", "port", "--listen", "127.0.0.1:");
    BADF("no host", "--listen", "no host", "--listen", ":8080");
    BADF("IPv6 without brackets", "--listen", "brackets", "--listen", "::1:8080");
    BADF("IPv6 without port", "--listen", "[ADDRESS]:PORT", "--listen", "[::1]");
    BADF("bad IPv6", "--listen", "not a valid IPv6", "--listen", "[::g]:80");
    BADF("bad IPv4", "--listen", "'300.1.1.1'", "--listen", "300.1.1.1:80");
    BADF("bad host name", "--listen", "'bad_host!'", "--listen", "bad_host!:80");
    BADF("--port 70000", "--port: '70000'", NULL, "--port", "70000");
    BADF("--port x", "--port: 'x'", NULL, "--port=x");

    /* Numbers and ranges. */
    BADF("workers 0", "--workers: '0' is out of range (1..1024)", NULL, "--workers", "0");
    BADF("workers 1025", "--workers: '1025' is out of range", NULL, "--workers", "1025");
    BADF("workers 3x", "--workers: '3x' is not a whole number", NULL, "--workers", "3x");
    BADF("max-memory 0", "--max-memory: '0' is out of range (1M..65536G)", NULL, "--max-memory",
         "0");
    BADF("max-memory 1.5G", "--max-memory: '1.5G' is not a whole number", NULL, "--max-memory",
         "1.5G");
    BAD("QDQ_CACHE_IDLE_MS over an hour", ENV("QDQ_CACHE_IDLE_MS=3600001"),
        "QDQ_CACHE_IDLE_MS: '3600001' is out of range (0..3600000)", NULL, "--");
    BADF("workers with a suffix", "--workers: '1K' is not a whole number", NULL, "--workers",
         "1K");
    BADF("workers empty", "--workers: empty value", NULL, "--workers=");
    BADF("workers huge", "--workers: '99999999999999999999' is out of range", NULL, "--workers",
         "99999999999999999999");
    BADF("http-threads 0", "--http-threads: '0'", "out of range", "--http-threads", "0");
    BADF("bad suffix", "--max-body-bytes: '64X' has an unknown suffix", NULL,
         "--max-body-bytes", "64X");
    BADF("fraction", "--max-body-bytes: '1.5M' is not a whole number", NULL,
         "--max-body-bytes", "1.5M");
    BADF("body 0", "--max-body-bytes: '0' is out of range (1..1024G)", NULL, "--max-body-bytes",
         "0");
    BADF("body 2T", "--max-body-bytes: '2048G' is out of range", NULL, "--max-body-bytes",
         "2048G");
    BADF("max-elements 0", "--max-elements: '0'", "out of range", "--max-elements", "0");
    BADF("max-rank 65", "--max-rank: '65' is out of range (1..64)", NULL, "--max-rank", "65");
    BADF("max-json-depth 0", "--max-json-depth: '0'", "out of range", "--max-json-depth", "0");
    BADF("header bytes 1K", "--max-header-bytes: '1K' is out of range (4K..64M)", NULL,
         "--max-header-bytes", "1K");
    BADF("negative queue", "--max-queue: '-1' is not a whole number", NULL, "--max-queue", "-1");
    BADF("max-inflight 0", "--max-inflight: '0'", "out of range", "--max-inflight", "0");
    BADF("max-connections 0", "--max-connections: '0'", "out of range", "--max-connections",
         "0");
    BADF("per-ip", "--max-connections-per-ip: 'many'", NULL, "--max-connections-per-ip", "many");
    BADF("idle-timeout 0", "--idle-timeout: '0' is out of range (1..86400)", NULL,
         "--idle-timeout", "0");
    BADF("request-timeout", "--request-timeout: '86401'", "out of range", "--request-timeout",
         "86401");
    BADF("drain-timeout", "--drain-timeout: '3601'", "out of range", "--drain-timeout", "3601");
    BADF("shutdown-grace", "--shutdown-grace: '3601'", "out of range", "--shutdown-grace", "3601");
    BADF("inline-bytes 65M", "--inline-bytes: '65M' is out of range (0..64M)", NULL,
         "--inline-bytes", "65M");
    BADF("connections under threads", "--max-connections: 1 is less than http-threads", NULL,
         "--http-threads", "2", "--max-connections", "1");

    /* Words. */
    BADF("log-format xml", "--log-format: 'xml' is not one of text|json", NULL, "--log-format",
         "xml");
    BADF("log-level verbose", "--log-level: 'verbose'", "error|warn|info|debug", "--log-level",
         "verbose");
    BADF("log-level case", "--log-level: 'INFO'", NULL, "--log-level", "INFO");
    BADF("access-log maybe", "--access-log: 'maybe' is not on or off", NULL, "--access-log",
         "maybe");

    /* Token: never echoed. */
    BADF("token with a space", "--auth-token: the token has a space", NULL, "--auth-token",
         "se cret");
    {
        cfg c;
        qdq_error e;
        LOAD(&c, &e, noenv, "--auth-token", "se cret");
        CHECK(!strstr(e.msg, "se cret"), "the token is not echoed: %s", e.msg);
    }
    BADF("empty token", "--auth-token: the token is empty", NULL, "--auth-token=");
    BADF("long token", "--auth-token: the token is longer than 511", NULL, "--auth-token",
         longv);
    BADF("token both ways", "--auth-token and --auth-token-file are both set", NULL,
         "--auth-token", "a", "--auth-token-file", "/etc/hostname");
    BAD("token both ways in env", ENV("QDQ_AUTH_TOKEN=a", "QDQ_AUTH_TOKEN_FILE=/x"),
        "QDQ_AUTH_TOKEN and QDQ_AUTH_TOKEN_FILE are both set", NULL, "--");
    BADF("missing token file", "--auth-token-file: cannot read", "No such file",
         "--auth-token-file", "/nonexistent/token");
    BADF("empty token file", "--auth-token-file:", "holds no token", "--auth-token-file",
         (char *)write_file("empty.token", "\n\n"));
    BADF("token file with a space", "--auth-token-file: the token has a space", NULL,
         "--auth-token-file", (char *)write_file("space.token", "a b\n"));
    {
        char *big = malloc(70000);
        memset(big, 'a', 70000);
        p = (char *)write_file_n("big.token", big, 70000);
        free(big);
        BADF("token file too big", "--auth-token-file: cannot read", "larger than 64 KiB",
             "--auth-token-file", p);
    }

    /* TLS. */
    const char *cert = write_file("c.pem", "x");
    BADF("cert without key", "--tls-cert is set but tls-key is not", NULL, "--tls-cert",
         (char *)cert);
    BADF("key without cert", "--tls-key is set but tls-cert is not", NULL, "--tls-key",
         (char *)cert);
    BADF("missing cert", "--tls-cert: cannot read '/nonexistent/c.pem'", "No such file",
         "--tls-cert", "/nonexistent/c.pem", "--tls-key", (char *)cert);
    BADF("cert is a directory", "--tls-key:", "is a directory", "--tls-cert", (char *)cert,
         "--tls-key", tmpdir);
    BADF("path too long", "--tls-cert: the path", "longer than 1023 bytes", "--tls-cert", longv);

    /* Environment. */
    BAD("env bad number", ENV("QDQ_MAX_RANK=abc"),
        "QDQ_MAX_RANK: 'abc' is not a whole number", NULL, "--");
    BAD("env empty", ENV("QDQ_WORKERS="), "QDQ_WORKERS: empty value", NULL,
        "--");
    BAD("env listen", ENV("QDQ_LISTEN=nohost"), "QDQ_LISTEN: 'nohost'", NULL,
        "--");
    BAD("env missing config", ENV("QDQ_CONFIG=/nonexistent.conf"),
        "QDQ_CONFIG: cannot read '/nonexistent.conf'", NULL, "--");

    /* Config file. */
    BADF("missing config file", "--config: cannot read '/nonexistent.conf'", "No such file",
         "--config", "/nonexistent.conf");
    BADF("config is a directory", "--config: cannot read", "Is a directory", "--config", tmpdir);
    p = conf_arg("# ok\nworkers = 2\nbogus = 1\n");
    char want[400];
    snprintf(want, sizeof want, "%s:3: unknown key 'bogus'", p);
    BADF("unknown key with its line", want, NULL, "--config", p);
    p = conf_arg("\nworkers = 0\n");
    snprintf(want, sizeof want, "%s:2: workers: '0' is out of range", p);
    BADF("bad value with its line", want, NULL, "--config", p);
    p = conf_arg("workers 2\n");
    BADF("no '='", ":1: expected 'key = value', but 'workers' has no '='", NULL, "--config", p);
    {
        cfg c;
        qdq_error e;
        LOAD(&c, &e, noenv, "--config", conf_arg("auth-token hunter2\n"));
        CHECK(strstr(e.msg, "has no '='") && !strstr(e.msg, "hunter2"),
              "a malformed line is not echoed (it may hold the token): %s", e.msg);
    }
    p = conf_arg("workers = 2\n\nworkers = 3\n");
    BADF("repeated key", ":3: workers is repeated (first set on line 1)", NULL, "--config", p);
    p = conf_arg("config = /etc/other.conf\n");
    BADF("config in a config file", ":1: 'config' cannot be set", NULL, "--config", p);
    p = conf_arg("tls-cert = \"/x\n");
    BADF("unterminated quote", ":1: tls-cert: unterminated quote", NULL, "--config", p);
    p = conf_arg("tls-cert = \"/x\" y\n");
    BADF("text after a quote", ":1: tls-cert: text after the closing quote", NULL, "--config",
         p);
    p = conf_arg("log-level =\n");
    BADF("empty value in the file", ":1: log-level: empty value", NULL, "--config", p);
    p = (char *)write_file_n("nul.conf", "workers = 2\n\0\n", 14);
    BADF("NUL byte", "contains a NUL byte", NULL, "--config", p);
    p = conf_arg("tls-cert = /etc/hostname\n\n");
    snprintf(want, sizeof want, "%s:1: tls-cert is set but tls-key is not", p);
    BADF("a combination error names the file line", want, NULL, "--config", p);
    p = conf_arg("help = 1\n");
    BADF("help is not a key", ":1: unknown key 'help'", NULL, "--config", p);
}

/* Writes text to ROOT/rel, making its directories. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* A fresh fake root under tmpdir (the previous one removed); returns its path (static).
 * done = 1 only removes the previous one. */
static const char *fake_root_(int done)
{
    static char root[128];
    static int n;
    if (root[0])
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
    if (done)
        return NULL;
    snprintf(root, sizeof root, "%s/root%d", tmpdir, n++);
    mkdir(root, 0755);
    return root;
}
#define fake_root() fake_root_(0)

#define GiB_ (1ULL << 30)
#define V1_UNLIMITED "9223372036854771712\n"

/* cfg_limits_read in fake trees: the layouts of a v2 host, a v2 container, a hybrid (v1)
 * container as podman makes it here, a v1 host with comounted cpu,cpuacct, and no cgroups. */
static void test_limits(void)
{
    cfg_limits l;
    const char *r;

    /* v2 host: the process in /user.slice/app; limits at both levels, the smaller wins. */
    r = fake_root();
    put(r, "proc/self/cgroup", "0::/user.slice/app\n");
    put(r, "proc/meminfo", "MemTotal:       24683720 kB\nMemFree:  1 kB\n");
    put(r, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    put(r, "sys/fs/cgroup/user.slice/memory.max", "max\n");
    put(r, "sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
    put(r, "sys/fs/cgroup/user.slice/app/memory.max", "1073741824\n");
    put(r, "sys/fs/cgroup/user.slice/app/cpu.max", "150000 100000\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == GiB_ && l.cpu_quota == 1.5 && l.memory_total == 24683720ULL * 1024,
          "v2: memory %llu, cpus %g, total %llu", (unsigned long long)l.memory_limit,
          l.cpu_quota, (unsigned long long)l.memory_total);
    put(r, "sys/fs/cgroup/user.slice/memory.max", "536870912\n");
    put(r, "sys/fs/cgroup/user.slice/cpu.max", "50000 100000\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == GiB_ / 2 && l.cpu_quota == 0.5,
          "v2: the parent's smaller limits apply: %llu, %g", (unsigned long long)l.memory_limit,
          l.cpu_quota);
    put(r, "sys/fs/cgroup/user.slice/memory.max", "lots\n");
    put(r, "sys/fs/cgroup/user.slice/app/memory.max", "max\n");
    put(r, "sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
    put(r, "sys/fs/cgroup/user.slice/app/cpu.max", "max 100000\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == 0 && l.cpu_quota == 0, "v2: max and garbage are no limit: %llu %g",
          (unsigned long long)l.memory_limit, l.cpu_quota);

    /* v2 container (its own cgroup namespace): "0::/", the limits at the mount's root. */
    r = fake_root();
    put(r, "proc/self/cgroup", "0::/\n");
    put(r, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    put(r, "sys/fs/cgroup/memory.max", "2147483648\n");
    put(r, "sys/fs/cgroup/cpu.max", "200000 100000\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == 2 * GiB_ && l.cpu_quota == 2.0, "v2 container: %llu %g",
          (unsigned long long)l.memory_limit, l.cpu_quota);

    /* Hybrid, in a podman (runc) container: /proc/self/cgroup names the host's path, and each
     * v1 hierarchy has the container's cgroup at its root; no unified mount inside. */
    r = fake_root();
    put(r, "proc/self/cgroup",
        "9:name=systemd:/libpod_parent/libpod-3f2a\n4:memory:/libpod_parent/libpod-3f2a\n"
        "2:cpuacct:/libpod_parent/libpod-3f2a\n1:cpu:/libpod_parent/libpod-3f2a\n"
        "0::/libpod_parent/libpod-3f2a\n");
    put(r, "sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n");
    put(r, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n");
    put(r, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    put(r, "sys/fs/cgroup/cpuacct/cpuacct.usage", "0\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == GiB_ && l.cpu_quota == 1.0, "v1 container: %llu %g",
          (unsigned long long)l.memory_limit, l.cpu_quota);
    /* A process in a cgroup below the container's: the tail of its path under the mount. */
    put(r, "proc/self/cgroup", "4:memory:/libpod_parent/libpod-3f2a/inner\n");
    put(r, "sys/fs/cgroup/memory/inner/memory.limit_in_bytes", "536870912\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == GiB_ / 2, "v1 container, a cgroup inside it: %llu",
          (unsigned long long)l.memory_limit);

    /* v1 host: nested cgroups, cpu and cpuacct comounted; unlimited memory; a 2.5-core quota
     * below an unlimited parent. */
    r = fake_root();
    put(r, "proc/self/cgroup", "5:memory:/a/b\n3:cpu,cpuacct:/a/b\n0::/a/b\n");
    put(r, "sys/fs/cgroup/memory/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, "sys/fs/cgroup/memory/a/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, "sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, "sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us", "-1\n");
    put(r, "sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us", "100000\n");
    put(r, "sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us", "250000\n");
    put(r, "sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us", "100000\n");
    put(r, "sys/fs/cgroup/unified/cgroup.procs", "1\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == 0 && l.cpu_quota == 2.5, "v1 host: %llu %g",
          (unsigned long long)l.memory_limit, l.cpu_quota);
    put(r, "sys/fs/cgroup/memory/a/memory.limit_in_bytes", "805306368\n");
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == 768ULL << 20, "v1 host: the parent's limit applies: %llu",
          (unsigned long long)l.memory_limit);

    /* No cgroups at all (and no meminfo: sysconf's physical memory). */
    r = fake_root();
    cfg_limits_read(r, &l);
    CHECK(l.memory_limit == 0 && l.cpu_quota == 0 && l.memory_total > 0,
          "no cgroups: %llu %g, total %llu", (unsigned long long)l.memory_limit, l.cpu_quota,
          (unsigned long long)l.memory_total);
    fake_root_(1);
}

/* The defaults that follow the limits: threads from the CPU quota, the memory budget. */
static void test_defaults_for(void)
{
    cfg c;
    cfg_limits l = { .memory_limit = GiB_, .memory_total = 24 * GiB_, .cpu_quota = 1.5 };
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.workers == 2 && c.http_threads == 2 && c.max_memory == 768ULL << 20,
          "1.5 cores, 1 GiB: %d %d %llu", c.workers, c.http_threads,
          (unsigned long long)c.max_memory);
    l.cpu_quota = 1.0;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.workers == 1 && c.http_threads == 1, "1 core: %d %d", c.workers, c.http_threads);
    l.cpu_quota = 0.2;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.workers == 1 && c.http_threads == 1, "0.2 cores: at least 1: %d", c.workers);
    l.cpu_quota = 8;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.workers == 2, "8 cores of quota on 2 cores: %d", c.workers);
    l.cpu_quota = 0;
    cfg_defaults_for(&c, &l, 16);
    CHECK(c.workers == 16 && c.http_threads == 4, "no quota, 16 cores: %d %d", c.workers,
          c.http_threads);
    cfg_defaults_for(&c, &l, 5000);
    CHECK(c.workers == 1024, "at most 1024 workers: %d", c.workers);
    l.memory_limit = 0;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.max_memory == 18 * GiB_, "no limit: 3/4 of 24 GiB: %llu",
          (unsigned long long)c.max_memory);
    l.memory_limit = 64 * GiB_;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.max_memory == 18 * GiB_, "a limit above physical memory: %llu",
          (unsigned long long)c.max_memory);
    l.memory_limit = 1000000000;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.max_memory == 715ULL << 20, "3/4 of 10^9 rounded down to a MiB: %llu",
          (unsigned long long)c.max_memory);
    l.memory_limit = 1 << 20;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.max_memory == 1 << 20, "at least 1 MiB: %llu", (unsigned long long)c.max_memory);
    l.memory_limit = 0;
    l.memory_total = 0;
    cfg_defaults_for(&c, &l, 2);
    CHECK(c.max_memory == GiB_, "nothing known: 1 GiB: %llu", (unsigned long long)c.max_memory);
}

/* Removes tmpdir and the files the tests wrote in it. */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *ent;
    char path[512];
    while (d && (ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, ent->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qdq-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_defaults();
    test_limits();
    test_defaults_for();
    test_precedence();
    test_every_option_every_source();
    test_values();
    test_file_syntax();
    test_example_file();
    test_help_version_dump();
    test_invalid();

    remove_tmpdir();
    return check_done();
}
