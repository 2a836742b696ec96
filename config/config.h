/*
 * cfg: the server's settings. Command-line flags, QDQ_* environment variables and an optional
 * config file become one struct, which the rest of the program reads as `const cfg *`. Nothing
 * else in the program looks at argv, the environment or a settings file.
 *
 * Precedence: flag > environment > config file > default. Every option has all three forms:
 *
 *   flag          --max-body-bytes 64M    or --max-body-bytes=64M
 *   environment   QDQ_MAX_BODY_BYTES=64M  (QDQ_ + the name upper-cased, '-' -> '_')
 *   config file   max-body-bytes = 64M    (the name without dashes; '#' comments)
 *
 * The config file is named by --config PATH or QDQ_CONFIG (the flag wins); there is none by
 * default. Within one source, a later flag overrides an earlier one; a key repeated in the file
 * is an error. When --listen and --port come from the same source, --port wins.
 *
 * Sizes (max-body-bytes, max-elements, max-header-bytes, inline-bytes, max-memory) take an optional
 * 1024-based suffix: K, M or G (either case, optionally followed by "iB" or "B"): "64M".
 *
 * Every value is validated: numbers are whole and fully parsed and within the ranges printed by
 * --help; unknown options, unknown file keys and QDQ_* values that do not parse are errors.
 * (Unknown QDQ_* variables are ignored: test harnesses set some of their own.) Error messages
 * name the option as the user spelled it ("--workers", "QDQ_WORKERS", "FILE:LINE: workers")
 * and the bad value, except that the auth token is never echoed.
 */
#ifndef CFG_H
#define CFG_H

#include <stdint.h>
#include <stdio.h>

#include "qdq.h"

#ifndef QDQ_SERVER_VERSION
#define QDQ_SERVER_VERSION "0.1.0"
#endif

/* Ranges of the settings (inclusive). */
#define CFG_MAX_WORKERS 1024     /* libuv's own pool maximum */
#define CFG_MAX_HTTP_THREADS 256
#define CFG_MAX_RANK_CAP 64      /* the decoders' PROTO_MAX_RANK */
#define CFG_MAX_JSON_DEPTH 1000  /* cJSON's nesting limit */

typedef struct cfg {
    /* Listening. listen_host is a host name, an IPv4 literal, or an IPv6 literal without its
     * brackets (it contains ':'); listen_port 0 asks the kernel for a free port. */
    char listen_host[256];
    int listen_port;         /* --listen HOST:PORT or [V6]:PORT; --port N; default 127.0.0.1:8080 */
    int workers;             /* --workers: compute threads, 1..1024; default: the container's
                              * CPU quota rounded up, else the online cores (cfg_defaults) */
    int http_threads;        /* --http-threads: libmicrohttpd threads, 1..256; default
                              * min(that, 4) */
    /* gRPC (KServe v2's GRPCInferenceService): host as listen_host; port 0 picks a free one;
     * grpc_port -1 when --grpc-listen is "none" (no gRPC). Default 127.0.0.1:8081. */
    char grpc_host[256];
    int grpc_port;           /* --grpc-listen HOST:PORT, [V6]:PORT or none */

    /* Limits. */
    uint64_t max_body_bytes;   /* --max-body-bytes: after decompression; default 256 MiB */
    uint64_t max_elements;     /* --max-elements: per tensor; default 64 Mi */
    int max_rank;              /* --max-rank: 1..64; default 32 */
    int max_json_depth;        /* --max-json-depth: 1..1000; default 64 */
    uint64_t max_header_bytes; /* --max-header-bytes: libmicrohttpd per-connection memory; 64 KiB */
    int max_queue;             /* --max-queue: jobs waiting for a worker before 503; 0 = none; 256 */
    int max_inflight;          /* --max-inflight: requests received or computed at once; 1024 */
    int max_connections;       /* --max-connections: >= http_threads; default 1024 */
    int max_connections_per_ip;/* --max-connections-per-ip: 0 = unlimited (default) */
    uint64_t max_memory;       /* --max-memory: bytes that requests and the buffer cache may hold
                                * together; default 3/4 of the container's memory limit, else of
                                * physical memory (cfg_defaults) */
    int cache_idle_ms;         /* --cache-idle-ms: how long the buffer cache keeps memory that no
                                * request uses before giving it back; 0 = at once; 2000 */

    /* Whole checkpoints (application/x-safetensors). */
    uint64_t max_checkpoint_bytes; /* --max-checkpoint-bytes: a checkpoint's body; 64 GiB */
    int max_checkpoint_inflight;   /* --max-checkpoint-inflight: checkpoints at once; 2 */
    char spool_dir[1024];          /* --spool-dir: where answers wait; $TMPDIR or /tmp */
    int spool_keep_ms;             /* --spool-keep-ms: a sent answer's file kept for the next
                                    * checkpoint; 0 = not kept; 30000 */

    /* Timeouts, in seconds. Never 0 except drain_timeout_s (0 = exit without waiting). */
    int idle_timeout_s;        /* --idle-timeout: inactivity before a connection closes; 30 */
    int request_timeout_s;     /* --request-timeout: whole-request deadline; 60 */
    int drain_timeout_s;       /* --drain-timeout: SIGTERM to exit, at most; 30 */
    int shutdown_grace_s;      /* --shutdown-grace: after SIGTERM, keep accepting this long
                                * (lame duck) before closing the listener; counts within
                                * drain_timeout_s; 2 */
    int small_request_bytes;   /* --inline-bytes: bodies up to this run on the receiving thread;
                                * 0 = every request goes to the pool; default 65536 */

    /* Logging. */
    char log_format[8];        /* --log-format: "text" (default) or "json" */
    char log_level[8];         /* --log-level: "error", "warn", "info" (default), "debug" */
    int access_log;            /* --access-log on|off: 1 or 0; default 1 */
    int access_log_flush_ms;   /* --access-log-flush-ms: buffered lines are written at least this
                                  often (and when a buffer fills); default 500 */

    /* Security. auth_token is empty when no token is configured; otherwise requests need
     * "Authorization: Bearer <auth_token>". It is printable ASCII without spaces. When it came
     * from --auth-token-file, auth_token_file names the file it was read from (else ""). */
    char auth_token[512];
    char auth_token_file[1024];
    char tls_cert[1024], tls_key[1024]; /* --tls-cert/--tls-key: PEM paths, both or neither ("") */

    char config_file[1024];    /* --config / QDQ_CONFIG: the file that was read, or "" */
} cfg;

/*
 * The limits of this process's container, from its cgroups (config/cgroup.c): cgroup v1, v2 or
 * hybrid. root is the directory that stands for "/" (NULL or "/" on a real system; tests point
 * it at a fake tree holding proc/self/cgroup, proc/meminfo and sys/fs/cgroup/...).
 */
typedef struct cfg_limits {
    uint64_t memory_limit;  /* the smallest memory limit of the process's cgroups; 0 = none */
    uint64_t memory_total;  /* physical memory (MemTotal); 0 if unknown */
    double cpu_quota;       /* the smallest CPU quota in cores (quota / period); 0 = none */
} cfg_limits;
void cfg_limits_read(const char *root, cfg_limits *out);

/*
 * The defaults for a machine with these limits and this many online cores:
 *   workers       the CPU quota rounded up (at least 1, at most cores), else cores;
 *   http_threads  min(workers' default, 4);
 *   max_memory    3/4 of the memory limit (or of memory_total when there is none, or when the
 *                 limit is larger), rounded down to a MiB; 1 GiB if neither is known.
 * The rest does not depend on the machine.
 */
void cfg_defaults_for(cfg *c, const cfg_limits *lim, long cores);

/* Fills c with the defaults of this machine: cfg_defaults_for with its cgroup limits and its
 * online cores. */
void cfg_defaults(cfg *c);

/*
 * Loads the defaults, then the config file (if --config or QDQ_CONFIG names one), then the
 * environment (envp: a NULL-terminated array of "KEY=VALUE", normally `environ`; NULL = none),
 * then the flags (argv[1..argc-1]; argv[0] is the program name, used by --help).
 *
 * Returns 0 with c filled; 1 with err->msg naming the option and the bad value and c zeroed;
 * 2 for --help/-h (the help text written to out); 3 for --version (the line
 * "qdq-server VERSION" written to out). For 2 and 3, c holds the defaults. --help and --version
 * win over everything except a malformed command line before them (an unknown option, a
 * missing value). c and argv must not be NULL (argc may be 0; err and out may be NULL).
 *
 * The auth token file and the TLS files are checked for readability here, so that a typo is
 * reported at startup with the option's name. The token file is read here; the TLS files are
 * not (the server loads them).
 */
int cfg_load(cfg *c, int argc, char **argv, char **envp, FILE *out, qdq_error *err);

/* Writes the --help text: every option, its environment variable, range, default, meaning. */
void cfg_usage(FILE *out, const char *prog);

/*
 * Writes one line per setting, "name = value", named as in the config file ("max-body-bytes"),
 * numbers in plain decimal. The auth token shows as "(set)" or "(none)", never its value; an
 * unset path as "(none)". For startup logs.
 */
void cfg_dump(const cfg *c, FILE *out);

#endif
