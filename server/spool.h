/*
 * Checkpoints' spool files (spool.c): where an answer too large to hold waits to be sent. Each
 * is an unnamed file of --spool-dir, gone when closed however the request ends. A file whose
 * answer was sent is kept warm for the next checkpoint for --spool-keep-ms: writing over pages
 * the page cache already has costs a copy, where fresh pages cost a page fault each (on the
 * machines measured, a new 1 GiB file took 0.2-2.8 s to write, the same file again 0.2 s).
 */
#ifndef SRV_SPOOL_H
#define SRV_SPOOL_H

#include <stdint.h>

#include "qdq.h"

/* The spool directory, and how many files may be kept warm. */
void srv_spool_init(const char *dir, int keep);
/* A file for an answer of about `bytes` (a warm one when there is one), or -1 with the failure
 * recorded: PROTO_ESPACE when the file system has less room than that. */
int srv_spool_open(uint64_t bytes, qdq_error *err);
/* A spool file whose answer went out whole: kept warm (or closed when enough are). */
void srv_spool_keep(int fd);
/* Closes the warm files nobody has wanted for idle_ns (every one for 0). */
void srv_spool_idle(uint64_t idle_ns);
/* Bytes written to spool files in use and held by warm ones: a codec reports what it writes
 * (delta), the warm files are counted here. */
void srv_spool_account(int64_t delta);
long long srv_spool_bytes(void);

#endif
