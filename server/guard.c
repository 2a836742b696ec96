/*
 * Guards against clients that hold resources: a registry of open connections with the time
 * their current request began, swept four times a second (a deadline is kept to within a
 * quarter of a second); a connection whose request has run past --request-timeout (headers or
 * body dripped slowly, or a response never read) is shut down.
 * Time spent computing (the connection suspended) does not count.
 * The same sweep times out requests waiting for room in the memory budget (budget.c) and frees
 * cached buffers nobody wanted for --cache-idle-ms (bufcache.c) and warm spool files for
 * --spool-keep-ms (spool.c).
 * Every TRIM_SWEEPS sweeps the same thread gives the heaps' free pages back to the system
 * (malloc_trim): request buffers of every size come and go, and the pages freed between the live
 * ones would otherwise stay resident, so RSS crept up under a steady mixed load. Big buffers keep
 * coming from the heaps, already mapped, between trims.
 *
 * Also the bearer-token check (constant time).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "bufcache.h"
#include "clock.h"
#include "guard.h"
#include "spool.h"

#define SWEEP_NS 250000000L /* the sweep's period */
#define TRIM_SWEEPS 20      /* malloc_trim every 5 s */

typedef struct srv_conn srv_conn;
struct srv_conn {
    int fd;
    uint64_t t_begin;  /* start of the current request (or of the wait for it) */
    bool suspended;    /* computing: the deadline does not run */
    struct srv_conn *prev, *next;
};

static struct {
    pthread_mutex_t mu;
    srv_conn head;     /* circular list */
    pthread_t thread;
    bool running;
    pthread_cond_t cv;
    bool stop;
    uint64_t timeout_ns;
    uint64_t cache_idle_ns; /* the buffer cache frees what nobody wanted for this long */
    uint64_t spool_keep_ns; /* and the spool closes the warm files nobody wanted */
    atomic_ullong cut;
} G = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

void srv_guard_conn_event(struct MHD_Connection *conn, void **socket_context, int started)
{
    if (started) {
        srv_conn *c = calloc(1, sizeof *c);
        if (!c)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->t_begin = srv_now_ns();
        pthread_mutex_lock(&G.mu);
        if (!G.head.next)
            G.head.next = G.head.prev = &G.head;
        c->next = G.head.next, c->prev = &G.head;
        G.head.next->prev = c, G.head.next = c;
        pthread_mutex_unlock(&G.mu);
        *socket_context = c;
        return;
    }
    srv_conn *c = *socket_context;
    if (!c)
        return;
    /* libmicrohttpd closes the socket after this returns: unlinked here, never touched again. */
    pthread_mutex_lock(&G.mu);
    c->prev->next = c->next, c->next->prev = c->prev;
    pthread_mutex_unlock(&G.mu);
    free(c);
    *socket_context = NULL;
}

static srv_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void srv_guard_mark(struct MHD_Connection *conn, int what)
{
    srv_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&G.mu);
    if (what == SRV_GUARD_SUSPEND) {
        c->suspended = true;
    } else if (what == SRV_GUARD_RESUME) {
        c->suspended = false;
    } else { /* SRV_GUARD_NEXT: a request completed; the next one's clock starts */
        c->suspended = false;
        c->t_begin = srv_now_ns();
    }
    pthread_mutex_unlock(&G.mu);
}

void srv_guard_progress(struct MHD_Connection *conn, uint64_t extra_ns)
{
    srv_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&G.mu);
    c->t_begin = srv_now_ns() + extra_ns;
    pthread_mutex_unlock(&G.mu);
}

static void *sweep(void *arg)
{
    (void)arg;
    unsigned n = 0;
    pthread_mutex_lock(&G.mu);
    while (!G.stop) {
        if (++n % TRIM_SWEEPS == 0) {
            pthread_mutex_unlock(&G.mu);
            malloc_trim(0);
            pthread_mutex_lock(&G.mu);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_NS;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&G.cv, &G.mu, &ts);
        if (G.stop)
            break;
        /* Waits for room in the memory budget that ran out, and cached buffers gone idle. */
        pthread_mutex_unlock(&G.mu);
        srv_budget_sweep();
        srv_buf_idle(G.cache_idle_ns);
        srv_spool_idle(G.spool_keep_ns);
        pthread_mutex_lock(&G.mu);
        uint64_t now = srv_now_ns();
        for (srv_conn *c = G.head.next; c && c != &G.head; c = c->next)
            if (!c->suspended && c->fd >= 0 && now > c->t_begin &&
                now - c->t_begin > G.timeout_ns) {
                shutdown(c->fd, SHUT_RDWR); /* libmicrohttpd sees the error and closes it */
                c->t_begin = now;           /* once */
                atomic_fetch_add(&G.cut, 1);
            }
    }
    pthread_mutex_unlock(&G.mu);
    return NULL;
}

int srv_guard_start(const cfg *c)
{
    G.timeout_ns = (uint64_t)c->request_timeout_s * 1000000000u;
    G.cache_idle_ns = (uint64_t)c->cache_idle_ms * 1000000u;
    G.spool_keep_ns = (uint64_t)c->spool_keep_ms * 1000000u;
    G.stop = false;
    if (pthread_create(&G.thread, NULL, sweep, NULL))
        return -1;
    G.running = true;
    return 0;
}

void srv_guard_stop(void)
{
    if (!G.running)
        return;
    pthread_mutex_lock(&G.mu);
    G.stop = true;
    pthread_cond_signal(&G.cv);
    pthread_mutex_unlock(&G.mu);
    pthread_join(G.thread, NULL);
    G.running = false;
}

unsigned long long srv_guard_cut(void) { return atomic_load(&G.cut); }

int srv_guard_unread(void)
{
    int n = 0;
    pthread_mutex_lock(&G.mu); /* a registered connection's socket is open (conn_event) */
    for (srv_conn *c = G.head.next; c && c != &G.head; c = c->next) {
        int k = 0;
        if (!c->suspended && c->fd >= 0 && ioctl(c->fd, FIONREAD, &k) == 0 && k > 0)
            n++;
    }
    pthread_mutex_unlock(&G.mu);
    return n;
}

bool srv_guard_token_ok(const char *want, const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *got = authorization + 7;
    while (*got == ' ')
        got++;
    size_t n = strlen(want), m = strlen(got);
    /* Constant time in the token's content: every byte of the longer one is compared. */
    unsigned diff = (unsigned)(n ^ m);
    size_t len = n > m ? n : m;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)(i < n ? want[i] : 0) ^ (unsigned char)(i < m ? got[i] : 0);
    return diff == 0;
}
