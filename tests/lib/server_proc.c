#include "server_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SP_MAX_ARGS 64

long long sp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

char *sp_log_dup(const sp_server *s)
{
    FILE *f = fopen(s->log_path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void print_log(const sp_server *s, const char *why)
{
    char *log = sp_log_dup(s);
    size_t n = log ? strlen(log) : 0;
    const char *tail = n > 4000 ? log + n - 4000 : log;
    fprintf(stderr, "server_proc: %s; server output:\n%s\n", why, tail ? tail : "");
    free(log);
}

/* The port of a complete "listening on HOST:PORT" line, or 0. */
static int find_port(const char *log)
{
    const char *p = log;
    while ((p = strstr(p, "listening on ")) != NULL) {
        p += strlen("listening on ");
        const char *eol = strchr(p, '\n');
        if (!eol)
            return 0; /* the line is not complete yet */
        const char *end = p;
        while (end < eol && *end != ' ' && *end != '\t' && *end != '\r')
            end++;
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (colon) {
            int port = atoi(colon + 1);
            if (port > 0 && port < 65536)
                return port;
        }
        p = eol;
    }
    return 0;
}

/* Reaps the child if it has exited; records the status. True when it has. */
static bool reap(sp_server *s, int options)
{
    int st;
    pid_t r = waitpid(s->pid, &st, options);
    if (r != s->pid)
        return false;
    s->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    s->pid = 0;
    return true;
}

int sp_start(sp_server *s, const char *const *args)
{
    memset(s, 0, sizeof *s);
    const char *bin = getenv("QDQ_SERVER");
    if (!bin || !*bin)
        bin = "build/qdq-server";
    const char *argv[SP_MAX_ARGS + 8];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--grpc-listen"; /* a free port too: servers of a test run side by side */
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--access-log";
    argv[n++] = "off";
    argv[n++] = "--shutdown-grace"; /* no lame duck: every test stops its servers at once */
    argv[n++] = "0";
    for (int i = 0; args && args[i] && i < SP_MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    const char *tmp = getenv("TMPDIR");
    snprintf(s->log_path, sizeof s->log_path, "%s/qdq-srv-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    int fd = mkstemp(s->log_path);
    if (fd < 0) {
        perror("server_proc: mkstemp");
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("server_proc: fork");
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the parent died before prctl took effect */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "server_proc: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    s->pid = pid;

    const char *to = getenv("QDQ_START_TIMEOUT_MS");
    long long deadline = sp_now_ms() + (to && atoi(to) > 0 ? atoi(to) : 30000);
    for (;;) {
        char *log = sp_log_dup(s);
        int port = log ? find_port(log) : 0;
        free(log);
        if (port) {
            s->port = port;
            snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (reap(s, WNOHANG)) {
            char why[128];
            snprintf(why, sizeof why, "%s exited (status %d) before listening", bin,
                     s->exit_status);
            print_log(s, why);
            return -1;
        }
        if (sp_now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            reap(s, 0);
            print_log(s, "no \"listening on\" line within the start timeout");
            return -1;
        }
        sleep_ms(5);
    }
}

int sp_signal(sp_server *s, int sig)
{
    if (s->pid <= 0)
        return -1;
    return kill(s->pid, sig);
}

bool sp_alive(sp_server *s)
{
    return s->pid > 0 && !reap(s, WNOHANG);
}

int sp_wait(sp_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return s->exit_status;
    long long deadline = sp_now_ms() + timeout_ms;
    while (!reap(s, WNOHANG)) {
        if (sp_now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            reap(s, 0);
            char why[96];
            snprintf(why, sizeof why, "the server did not exit within %d ms (killed)",
                     timeout_ms);
            print_log(s, why);
            s->exit_status = -1;
            return -1;
        }
        sleep_ms(5);
    }
    if (s->exit_status != 0) {
        char why[96];
        snprintf(why, sizeof why, "the server exited with status %d", s->exit_status);
        print_log(s, why);
    }
    return s->exit_status;
}

int sp_stop(sp_server *s, int timeout_ms)
{
    if (sp_signal(s, SIGTERM))
        return s->pid == 0 ? s->exit_status : -1;
    return sp_wait(s, timeout_ms);
}

void sp_release(sp_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        reap(s, 0);
    }
    if (s->log_path[0] && getenv("QDQ_TEST_KEEP_LOGS"))
        fprintf(stderr, "server_proc: server output kept in %s\n", s->log_path);
    else if (s->log_path[0])
        unlink(s->log_path);
    s->log_path[0] = '\0';
}

void sp_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

long sp_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

long sp_rss_settle(pid_t pid, long limit_kb, int wait_ms)
{
    long rss = sp_proc_kb(pid, "VmRSS:");
    for (long long t0 = sp_now_ms(); rss > limit_kb && sp_now_ms() - t0 < wait_ms;) {
        sp_sleep_ms(50);
        rss = sp_proc_kb(pid, "VmRSS:");
    }
    return rss;
}

bool sp_peak_reset(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}
