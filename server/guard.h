/*
 * Guards against clients that hold resources (guard.c): a registry of open connections swept
 * four times a second against --request-timeout, and the bearer-token check.
 */
#ifndef SRV_GUARD_H
#define SRV_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>

#include "config.h"

/* libmicrohttpd's connection notification: registers (started) or forgets a connection. */
void srv_guard_conn_event(struct MHD_Connection *conn, void **socket_context, int started);
enum { SRV_GUARD_SUSPEND, SRV_GUARD_RESUME, SRV_GUARD_NEXT };
/* The connection is computing (its deadline paused), back, or done with a request. */
void srv_guard_mark(struct MHD_Connection *conn, int what);
/* The request's deadline moves: the clock restarts now, plus extra_ns (a checkpoint that keeps
 * arriving, or a large answer going out at a useful rate). */
void srv_guard_progress(struct MHD_Connection *conn, uint64_t extra_ns);
/* Starts and stops the deadline sweep, four times a second (--request-timeout). */
int srv_guard_start(const cfg *c);
void srv_guard_stop(void);
/* Connections cut off at the deadline so far. */
unsigned long long srv_guard_cut(void);
/* Open connections (not computing) with bytes received by the kernel and not yet read. */
int srv_guard_unread(void);
/* Whether an Authorization header carries the bearer token (constant-time comparison). */
bool srv_guard_token_ok(const char *token, const char *authorization);

#endif
