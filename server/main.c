/* qdq-server: configuration, start, and the signal-driven graceful stop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clock.h"
#include "grpc.h"
#include "healthcheck.h"
#include "http.h"
#include "log.h"
#include "unsent.h"

extern char **environ;

/*
 * Every connection is a descriptor: the soft open-file limit (often 1024) is raised, within the
 * hard one, to what --max-connections needs, plus room for the listener, the logs, and
 * libmicrohttpd's and libuv's own descriptors.
 */
static void raise_fd_limit(const cfg *c)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)c->max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = want;
    if (want > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        srv_log("debug", "open-file limit raised from %llu to %llu", (unsigned long long)was,
                (unsigned long long)want);
    else
        want = was;
    if (want < need)
        srv_log("warn", "the open-file limit is %llu (hard limit %llu): fewer than "
                "--max-connections %d needs (%llu); connections past it are refused",
                (unsigned long long)want, (unsigned long long)rl.rlim_max, c->max_connections,
                (unsigned long long)need);
}

int main(int argc, char **argv)
{
    static cfg c;
    qdq_error err = { 0 };
    /* --healthcheck (anywhere): ask the running server (server/healthcheck.c). */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--healthcheck") == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            return srv_healthcheck(argc - 1, argv, environ);
        }
    int rc = cfg_load(&c, argc, argv, environ, stdout, &err);
    if (rc == 2 || rc == 3)
        return 0;
    if (rc) {
        fprintf(stderr, "qdq-server: %s\n", err.msg);
        fprintf(stderr, "Try 'qdq-server --help'.\n");
        return 2;
    }
    /* Signals are taken by sigwait below: block them before any thread starts (the access
     * log's writer is the first). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a spool file past RLIMIT_FSIZE fails its write (507) instead */
    srv_log_init(&c);
    raise_fd_limit(&c);

    static srv s;
    if (srv_start(&s, &c)) {
        srv_log_stop();
        return 1;
    }
    /* Announced once gRPC is up too: whoever waits for the line (scripts, tests) then finds the
     * whole server, /metrics' gRPC series included. */
    if (srv_grpc_start(&c, s.pool))
        return 1;
    srv_log("info", "qdq-server listening on %s:%d (%d workers, %d http threads, max-memory %llu)",
            c.listen_host, s.port, c.workers, c.http_threads, (unsigned long long)c.max_memory);
    /* For scripts (and tests) that wait for the port; JSON logs carry it in the line above. */
    bool text = strcmp(c.log_format, "json") != 0;
    if (text)
        fprintf(stderr, "listening on %s:%d\n", c.listen_host, s.port);
    if (c.grpc_port >= 0) {
        const char *fmt = strchr(c.grpc_host, ':') ? "[%s]:%d" : "%s:%d";
        char addr[300];
        snprintf(addr, sizeof addr, fmt, c.grpc_host, srv_grpc_port());
        srv_log("info", "grpc serving on %s", addr);
        if (text)
            fprintf(stderr, "grpc serving on %s\n", addr);
    }

    int sig = 0;
    sigwait(&set, &sig);
    srv_log("info", "%s: not ready; still serving for %d s (--shutdown-grace), then draining; "
            "exit within %d s (--drain-timeout)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            c.shutdown_grace_s < c.drain_timeout_s ? c.shutdown_grace_s : c.drain_timeout_s,
            c.drain_timeout_s);
    uint64_t deadline = srv_now_ns() + (uint64_t)c.drain_timeout_s * 1000000000u;
    srv_grpc_drain();
    srv_stop(&s);
    srv_grpc_stop(deadline);
    srv_pool_stop(s.pool); /* both transports' work is done */
    /* The last answers out of the send queues before the process (and, in a container, its
     * network) goes: until the drain's deadline, and a second at least. */
    int ports[2] = { s.port, srv_grpc_port() };
    uint64_t now = srv_now_ns();
    uint64_t unsent = srv_wait_unsent(ports, 2, deadline > now + 1000000000u ? deadline
                                                                          : now + 1000000000u);
    if (unsent)
        srv_log("warn", "%llu bytes of answers still unsent at exit (a client not reading)",
                (unsigned long long)unsent);
    srv_log("info", "stopped after %llu requests", (unsigned long long)atomic_load(&s.served));
    srv_log_stop();
    return 0;
}
