/* Logs (log.c): leveled messages to stderr, and one access-log line per request to stdout. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include "config.h"
#include "record.h"

void srv_log_init(const cfg *c);
void srv_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The access-log line of a finished request (text or JSON, per --log-format). */
void srv_log_access(const srv_record *r);

#endif
