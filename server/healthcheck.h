/* `qdq-server --healthcheck` (healthcheck.c). */
#ifndef SRV_HEALTHCHECK_H
#define SRV_HEALTHCHECK_H

#include "config.h"

/* 0 when the configured server answers GET /healthz with 200, else 1. */
int srv_healthcheck(const cfg *c);

#endif
