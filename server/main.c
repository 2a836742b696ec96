/* qdq-server: configuration, start, and the signal-driven graceful stop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

extern char **environ;

int main(int argc, char **argv)
{
    static cfg c;
    cfg_error err = { 0 };
    /* --healthcheck (anywhere): ask the server configured by the other options. */
    bool healthcheck = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--healthcheck") == 0) {
            healthcheck = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    int rc = cfg_load(&c, argc, argv, environ, stdout, &err);
    if (rc == 2 || rc == 3)
        return 0;
    if (rc) {
        fprintf(stderr, "qdq-server: %s\n", err.msg);
        fprintf(stderr, "Try 'qdq-server --help'.\n");
        return 2;
    }
    if (healthcheck)
        return srv_healthcheck(&c);
    srv_log_init(&c);
    srv_metrics_init();

    /* Signals are taken by sigwait below: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static srv s;
    if (srv_start(&s, &c))
        return 1;
    srv_log("info", "qdq-server listening on %s:%d (%d workers, %d http threads)",
            c.listen_host, s.port, c.workers, c.http_threads);
    fprintf(stderr, "listening on %s:%d\n", c.listen_host, s.port);

    int sig = 0;
    sigwait(&set, &sig);
    srv_log("info", "%s: draining (up to %d s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            c.drain_timeout_s);
    srv_stop(&s);
    srv_log("info", "stopped after %llu requests", (unsigned long long)atomic_load(&s.served));
    return 0;
}
