/* Logs (log.c): leveled messages to stderr, and one access-log line per request to stdout,
 * buffered per thread and written by a thread of its own. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include "config.h"
#include "record.h"

/* Reads the settings and starts the access log's writer. */
void srv_log_init(const cfg *c);
/* Writes every buffered access-log line and stops the writer (at exit). */
void srv_log_stop(void);
/* Access-log lines lost so far: the sink did not keep up, or memory ran out. */
unsigned long long srv_log_dropped(void);
void srv_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The access-log line of a finished request (text or JSON, per --log-format). */
void srv_log_access(const srv_record *r);

#endif
