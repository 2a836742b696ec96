/*
 * Logs: leveled messages to stderr, and one access-log line per request to stdout.
 *
 * The access log costs a request almost nothing, as nginx's `access_log ... buffer= flush=`
 * does: each thread formats its lines into a buffer of its own (under a lock nobody else takes
 * but the writer, for an instant), with the timestamp's text made once a second. A full buffer
 * goes on a queue and the thread takes an empty one; a writer thread writes the queued buffers
 * (and, every --access-log-flush-ms, the partly filled ones) with one write each, whole lines
 * only. Nothing else writes to stdout, so no line is torn or interleaved. A request never
 * waits for the sink: when it stops reading (a pipe nobody drains), the writer blocks, the
 * queue reaches its bound (QUEUE_MAX buffers), and further lines are dropped and counted
 * (srv_log_dropped). srv_log_stop writes what is left.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define BUF_CAP (64u << 10)  /* one buffer */
#define QUEUE_MAX 16          /* buffers waiting for the writer, at most (1 MiB) */
#define LINE_MAX_BYTES 4096   /* one line, formatted on the stack */
#define STOP_WAIT_S 5         /* how long srv_log_stop waits for a sink that does not read */

typedef struct lbuf {
    char *data;
    size_t len;
    struct lbuf *next;
} lbuf;

/* One thread's buffer. */
typedef struct tbuf {
    pthread_mutex_t mu;
    lbuf *cur;
    time_t ts_sec;    /* the second ts_text is for (owner thread only) */
    char ts_text[24]; /* "2026-12-07T04:03:47" */
    struct tbuf *next;
} tbuf;

static struct {
    bool json;
    bool access;
    int level; /* 0 error, 1 warn, 2 info, 3 debug */
    int flush_ms;
    pthread_mutex_t mu; /* the lists below; the writer's wake-up */
    pthread_cond_t cv;
    tbuf *threads;      /* every thread's buffer */
    lbuf *full, **full_tail; /* queued for the writer, in order */
    int nfull;
    lbuf *empty;         /* empty buffers to reuse */
    bool running, stop;
    pthread_t writer;
    atomic_ullong dropped;
} L = { .access = true, .level = 2, .flush_ms = 500, .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER, .full_tail = &L.full };

static __thread tbuf *mine;

static int level_of(const char *s)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return 2;
}

/* Writes n bytes to fd, whole (a pipe may take them in pieces). false when it cannot. */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Counts the lines of a buffer that could not be written. */
static void drop_lines(const char *p, size_t n)
{
    unsigned long long lines = 0;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))) != NULL; q++)
        lines++;
    atomic_fetch_add(&L.dropped, lines);
}

/* An empty buffer (L.mu held): reused, or new. NULL when out of memory. */
static lbuf *take_empty(void)
{
    lbuf *b = L.empty;
    if (b) {
        L.empty = b->next;
        b->next = NULL;
        return b;
    }
    b = calloc(1, sizeof *b);
    if (b && !(b->data = malloc(BUF_CAP))) {
        free(b);
        b = NULL;
    }
    return b;
}

/* Queues a buffer with lines for the writer (L.mu held): false when the queue is full. */
static bool queue_full(lbuf *b)
{
    if (L.nfull >= QUEUE_MAX)
        return false;
    b->next = NULL;
    *L.full_tail = b;
    L.full_tail = &b->next;
    L.nfull++;
    pthread_cond_signal(&L.cv);
    return true;
}

/* Moves every thread's partly filled buffer to the queue. Locks in the owners' order: a
 * thread's lock, then L.mu. */
static void queue_partial(void)
{
    pthread_mutex_lock(&L.mu);
    tbuf *threads = L.threads; /* the list only grows at its head, and is never freed */
    pthread_mutex_unlock(&L.mu);
    for (tbuf *t = threads; t; t = t->next) {
        pthread_mutex_lock(&t->mu);
        if (t->cur && t->cur->len) {
            pthread_mutex_lock(&L.mu);
            lbuf *e = take_empty();
            if (e && queue_full(t->cur))
                t->cur = e;
            else if (e)
                e->next = L.empty, L.empty = e;
            pthread_mutex_unlock(&L.mu);
        }
        pthread_mutex_unlock(&t->mu);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&L.mu);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += L.flush_ms / 1000;
        ts.tv_nsec += (long)(L.flush_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        bool timed_out = false;
        while (!L.full && !L.stop && !timed_out)
            timed_out = pthread_cond_timedwait(&L.cv, &L.mu, &ts) != 0;
        bool stopping = L.stop;
        if (timed_out || stopping) {
            pthread_mutex_unlock(&L.mu);
            queue_partial();
            pthread_mutex_lock(&L.mu);
        }
        lbuf *list = L.full;
        L.full = NULL;
        L.full_tail = &L.full;
        L.nfull = 0;
        pthread_mutex_unlock(&L.mu);
        for (lbuf *b = list; b; b = b->next)
            if (!write_all(STDOUT_FILENO, b->data, b->len))
                drop_lines(b->data, b->len);
        pthread_mutex_lock(&L.mu);
        while (list) {
            lbuf *next = list->next;
            list->len = 0;
            list->next = L.empty;
            L.empty = list;
            list = next;
        }
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

void srv_log_init(const cfg *c)
{
    L.json = strcmp(c->log_format, "json") == 0;
    L.access = c->access_log != 0;
    L.level = level_of(c->log_level);
    L.flush_ms = c->access_log_flush_ms > 0 ? c->access_log_flush_ms : 500;
    if (L.access && !L.running) {
        L.stop = false;
        L.running = pthread_create(&L.writer, NULL, writer_main, NULL) == 0;
        if (!L.running)
            L.access = false;
    }
}

void srv_log_stop(void)
{
    if (!L.running)
        return;
    pthread_mutex_lock(&L.mu);
    L.stop = true;
    pthread_cond_signal(&L.cv);
    pthread_mutex_unlock(&L.mu);
    /* A sink that never reads again would hold the writer in write() for good: wait a while,
     * then leave it (the process is exiting) and count what is still queued as lost. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += STOP_WAIT_S;
    if (pthread_timedjoin_np(L.writer, NULL, &ts) == 0) {
        L.running = false;
        return;
    }
    pthread_mutex_lock(&L.mu);
    for (lbuf *b = L.full; b; b = b->next)
        drop_lines(b->data, b->len);
    for (tbuf *t = L.threads; t; t = t->next)
        if (t->cur)
            drop_lines(t->cur->data, t->cur->len);
    pthread_mutex_unlock(&L.mu);
}

unsigned long long srv_log_dropped(void) { return atomic_load(&L.dropped); }

static void timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

/*
 * One line in one write: stderr is unbuffered, so a line written piece by piece reaches a
 * container engine's log as several partial records, which it may interleave with stdout's
 * (podman's `logs` then shows broken JSON lines). The message is at most 1023 bytes, so its
 * escaped form (6 bytes per byte at worst) and the rest always fit the buffer.
 */
void srv_log(const char *level, const char *fmt, ...)
{
    if (level_of(level) > L.level)
        return;
    char ts[40], msg[1024], line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    size_t k;
    if (L.json) {
        k = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                             ts, level);
        for (const char *s = msg; *s; s++) {
            unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\')
                k += (size_t)snprintf(line + k, sizeof line - k, "\\%c", c);
            else if (c < 0x20)
                k += (size_t)snprintf(line + k, sizeof line - k, "\\u%04x", c);
            else
                line[k++] = (char)c;
        }
        k += (size_t)snprintf(line + k, sizeof line - k, "\"}\n");
    } else {
        k = (size_t)snprintf(line, sizeof line, "%s %s %s\n", ts, level, msg);
    }
    fwrite(line, 1, k < sizeof line ? k : sizeof line - 1, stderr);
}

/* The calling thread's buffer, made on its first line. */
static tbuf *my_buf(void)
{
    if (mine)
        return mine;
    tbuf *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->ts_sec = -1;
    pthread_mutex_lock(&L.mu);
    t->cur = take_empty();
    t->next = L.threads;
    L.threads = t;
    pthread_mutex_unlock(&L.mu);
    return mine = t;
}

/* A line under construction, on the stack; what does not fit is cut (lines stay whole). */
typedef struct line {
    char s[LINE_MAX_BYTES];
    size_t n;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (n > sizeof l->s - 1 - l->n)
        n = sizeof l->s - 1 - l->n;
    memcpy(l->s + l->n, s, n);
    l->n += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

/* A number in decimal. */
static void put_u64(line *l, unsigned long long v)
{
    char d[24];
    int k = (int)sizeof d;
    do
        d[--k] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(l, d + k, sizeof d - (size_t)k);
}

/* Nanoseconds as milliseconds with three decimals ("0.046"), as %.3f would print them. */
static void put_ms(line *l, uint64_t ns)
{
    uint64_t us = (ns + 500) / 1000;
    put_u64(l, us / 1000);
    char f[4] = { '.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                  (char)('0' + us % 10) };
    put(l, f, 4);
}

/* The inside of a JSON string. */
static void put_json(line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\')
            esc[0] = '\\', esc[1] = (char)c, put(l, esc, 2);
        else if (c < 0x20)
            put(l, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
        else
            put(l, s, 1);
    }
}

/* "2026-12-07T04:03:47.123Z", the seconds' text made once a second per thread. */
static void put_time(line *l, tbuf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != b->ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(b->ts_text, sizeof b->ts_text, "%Y-%m-%dT%H:%M:%S", &tm);
        b->ts_sec = ts.tv_sec;
    }
    puts_(l, b->ts_text);
    char ms[8] = { '.', (char)('0' + ts.tv_nsec / 100000000), (char)('0' + ts.tv_nsec / 10000000 % 10),
                   (char)('0' + ts.tv_nsec / 1000000 % 10), 'Z' };
    put(l, ms, 5);
}

void srv_log_access(const srv_record *r)
{
    if (!L.access)
        return;
    tbuf *b = my_buf();
    if (!b) {
        atomic_fetch_add(&L.dropped, 1);
        return;
    }
    line l;
    l.n = 0;
    uint64_t ns = r->t_end - r->t_start;
    if (L.json) {
        puts_(&l, "{\"time\":\"");
        put_time(&l, b);
        puts_(&l, "\",\"method\":\"");
        put_json(&l, r->method);
        puts_(&l, "\",\"path\":\"");
        put_json(&l, r->path);
        puts_(&l, "\",\"route\":\"");
        puts_(&l, r->route_name);
        puts_(&l, "\",\"status\":");
        put_u64(&l, (unsigned long long)r->status);
        puts_(&l, ",\"bytes_in\":");
        put_u64(&l, r->bytes_in);
        puts_(&l, ",\"bytes_out\":");
        put_u64(&l, r->bytes_out);
        puts_(&l, ",\"duration_ms\":");
        put_ms(&l, ns);
        puts_(&l, ",\"request_id\":\"");
        put_json(&l, r->request_id);
        puts_(&l, "\"}");
    } else {
        put_time(&l, b);
        put(&l, " ", 1);
        puts_(&l, r->method);
        put(&l, " ", 1);
        puts_(&l, r->path);
        put(&l, " ", 1);
        puts_(&l, r->route_name);
        put(&l, " ", 1);
        put_u64(&l, (unsigned long long)r->status);
        puts_(&l, " in=");
        put_u64(&l, r->bytes_in);
        puts_(&l, " out=");
        put_u64(&l, r->bytes_out);
        put(&l, " ", 1);
        put_ms(&l, ns);
        puts_(&l, "ms id=");
        puts_(&l, r->request_id);
    }
    l.s[l.n++] = '\n';
    bool kept = false;
    pthread_mutex_lock(&b->mu);
    if (b->cur && b->cur->len + l.n > BUF_CAP) { /* full: to the writer, and a fresh one */
        pthread_mutex_lock(&L.mu);
        lbuf *e = take_empty();
        if (e && queue_full(b->cur))
            b->cur = e;
        else if (e)
            e->next = L.empty, L.empty = e;
        pthread_mutex_unlock(&L.mu);
    }
    if (b->cur && b->cur->len + l.n <= BUF_CAP) {
        memcpy(b->cur->data + b->cur->len, l.s, l.n);
        b->cur->len += l.n;
        kept = true;
    }
    pthread_mutex_unlock(&b->mu);
    if (!kept)
        atomic_fetch_add(&L.dropped, 1);
}
