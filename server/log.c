/* Logs: leveled messages to stderr, and one access-log line per request (text or JSON). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "srv.h"

static struct {
    bool json;
    bool access;
    int level; /* 0 error, 1 warn, 2 info, 3 debug */
} L = { false, true, 2 };

static int level_of(const char *s)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return 2;
}

void srv_log_init(const cfg *c)
{
    L.json = strcmp(c->log_format, "json") == 0;
    L.access = c->access_log != 0;
    L.level = level_of(c->log_level);
}

static void timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Writes s as the inside of a JSON string. */
static void json_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
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

void srv_log_access(const srv_req *r)
{
    if (!L.access)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    double ms = (double)(srv_now_ns() - r->t_start) / 1e6;
    flockfile(stdout);
    if (L.json) {
        fprintf(stdout, "{\"time\":\"%s\",\"method\":\"", ts);
        json_str(stdout, r->method);
        fputs("\",\"path\":\"", stdout);
        json_str(stdout, r->path);
        fprintf(stdout, "\",\"route\":\"%s\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                        "\"duration_ms\":%.3f,\"request_id\":\"", r->route ? r->route->name : "",
                r->status, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, ms);
        json_str(stdout, r->request_id);
        fputs("\"}\n", stdout);
    } else {
        fprintf(stdout, "%s %s %s %s %d in=%llu out=%llu %.3fms id=%s\n", ts, r->method, r->path,
                r->route ? r->route->name : "-", r->status, (unsigned long long)r->bytes_in,
                (unsigned long long)r->bytes_out, ms, r->request_id);
    }
    fflush(stdout);
    funlockfile(stdout);
}
