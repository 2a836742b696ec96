/* `qdq-server --healthcheck` (healthcheck.c). */
#ifndef SRV_HEALTHCHECK_H
#define SRV_HEALTHCHECK_H

/*
 * `--healthcheck` mode with the other arguments and the environment: 0 when the server (the
 * container's, or the one these settings name) answers GET /healthz with 200; 1 when not; 2
 * for settings that do not parse.
 */
int srv_healthcheck(int argc, char **argv, char **envp);

#endif
