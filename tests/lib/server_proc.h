/*
 * server_proc: runs the real qdq-server binary for black-box tests.
 *
 *   sp_server s;
 *   const char *args[] = { "--workers", "2", NULL };
 *   if (sp_start(&s, args) == 0) { ... s.base ... ; sp_stop(&s, 15000); }
 *   sp_release(&s);
 *
 * The binary is $QDQ_SERVER (default "build/qdq-server"). It runs with "--listen 127.0.0.1:0
 * --grpc-listen 127.0.0.1:0 --access-log off --shutdown-grace 0" followed by the caller's
 * arguments (a later flag wins, so a test can override any). Its stdout and stderr go to a
 * temporary file; sp_start waits (bounded) for the "listening on 127.0.0.1:PORT" line and fills
 * s->port and s->base.
 *
 * The child gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG), so a test that
 * crashes leaves no server behind. Start servers from the main thread only: the signal follows
 * the creating thread, not the process.
 */
#ifndef SERVER_PROC_H
#define SERVER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct sp_server {
    pid_t pid;          /* 0 when not running (never started, or already reaped) */
    int port;
    char base[64];      /* "http://127.0.0.1:PORT" */
    char log_path[64];  /* the child's stdout+stderr */
    int exit_status;    /* after sp_wait/sp_stop: as returned by them */
} sp_server;

/*
 * Starts the server with the default arguments followed by args (NULL-terminated; args may be
 * NULL). Waits up to 30 s (or $QDQ_START_TIMEOUT_MS) for it to listen: a bound, not a speed (it
 * returns as soon as the server listens). Returns 0,
 * or -1 after printing why and the child's output (the child is killed and reaped).
 */
int sp_start(sp_server *s, const char *const *args);

/* Sends sig to the server. 0, or -1 when it is not running. */
int sp_signal(sp_server *s, int sig);

/*
 * Waits up to timeout_ms for the server to exit. Returns its exit code (0..255), 128 + signal
 * when a signal ended it, or -1 on timeout: then it is killed with SIGKILL, reaped, and the
 * failure printed. The result is also kept in s->exit_status.
 */
int sp_wait(sp_server *s, int timeout_ms);

/* SIGTERM, then sp_wait(timeout_ms). 0 means a clean exit. */
int sp_stop(sp_server *s, int timeout_ms);

/* Whether the process is still running (reaps it if it has exited). */
bool sp_alive(sp_server *s);

/* The child's output so far, NUL-terminated (malloc'ed: the caller frees). */
char *sp_log_dup(const sp_server *s);

/* Kills the server if it still runs and removes its log file (kept, and its path printed, when
 * $QDQ_TEST_KEEP_LOGS is set). */
void sp_release(sp_server *s);

/* Milliseconds on the monotonic clock, for tests that time things. */
long long sp_now_ms(void);

/* Sleeps ms milliseconds (resumed after signals). */
void sp_sleep_ms(int ms);

/* A "VmRSS:"-style field of /proc/PID/status in KiB, or -1. */
long sp_proc_kb(pid_t pid, const char *field);

/* The RSS of pid in KiB as soon as it is at most limit_kb, or after wait_ms (then its last
 * value): a request's memory goes back when its connection is done with it, and pages freed
 * between live buffers at the server's next malloc_trim (every 5 s). */
long sp_rss_settle(pid_t pid, long limit_kb, int wait_ms);

/* Resets VmHWM (the peak) to the current RSS (Linux 4.0+); false when not allowed. */
bool sp_peak_reset(pid_t pid);

#endif
