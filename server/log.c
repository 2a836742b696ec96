/* Logs: leveled messages to stderr, and one access-log line per request (text or JSON). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

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

void srv_log(const char *level, const char *fmt, ...)
{
    if (level_of(level) > L.level)
        return;
    char ts[40], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    flockfile(stderr);
    if (L.json) {
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level);
        json_str(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %s %s\n", ts, level, msg);
    }
    funlockfile(stderr);
}

void srv_log_access(const srv_record *r)
{
    if (!L.access)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    double ms = (double)(r->t_end - r->t_start) / 1e6;
    flockfile(stdout);
    if (L.json) {
        fprintf(stdout, "{\"time\":\"%s\",\"method\":\"", ts);
        json_str(stdout, r->method);
        fputs("\",\"path\":\"", stdout);
        json_str(stdout, r->path);
        fprintf(stdout, "\",\"route\":\"%s\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                        "\"duration_ms\":%.3f,\"request_id\":\"", r->route_name,
                r->status, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, ms);
        json_str(stdout, r->request_id);
        fputs("\"}\n", stdout);
    } else {
        fprintf(stdout, "%s %s %s %s %d in=%llu out=%llu %.3fms id=%s\n", ts, r->method, r->path,
                r->route_name, r->status, (unsigned long long)r->bytes_in,
                (unsigned long long)r->bytes_out, ms, r->request_id);
    }
    fflush(stdout);
    funlockfile(stdout);
}
