/*
 * `qdq-server --healthcheck [OPTION]...`: asks a running server for GET /healthz and exits 0
 * when it answers 200, 1 when not, 2 for options that do not parse. Container HEALTHCHECKs use
 * it, so the image needs no curl. With TLS configured it checks only that the port accepts
 * connections.
 *
 * Which server, so which address: a HEALTHCHECK runs beside the server in its container but
 * does not see the server's command line (`docker run IMAGE --port 9000`). So, given no option
 * of its own, it asks the server of its container: PID 1 when PID 1 is this same program (the
 * image's exec-form ENTRYPOINT), or the one child of PID 1 that is, when PID 1 is a container
 * init (`--init`: catatonit, tini, docker-init, dumb-init). That server's settings come from
 * its own /proc/PID/cmdline and /proc/PID/environ (the environment it started with; this
 * process's own when that cannot be read, which in a container is the same), relative paths
 * against its working directory.
 * Otherwise (options given, or no such server, as on a host) the options and QDQ_* variables
 * given to --healthcheck say where.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "healthcheck.h"

/* Process names of the inits that container engines put at PID 1 in front of the program. */
static const char *const inits[] = { "catatonit", "podman-init", "tini", "tini-static",
                                     "docker-init", "dumb-init", NULL };

/* The whole of /proc/PID/NAME (malloc'ed, NUL-terminated; *len without that NUL), or NULL. */
static char *read_proc(int pid, const char *name, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k;
    while (buf && (k = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)k;
        if (n == cap && cap < (1 << 20)) {
            char *p = realloc(buf, 2 * cap + 1);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        } else if (n == cap) {
            break;
        }
    }
    close(fd);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* The NUL-separated strings of buf as a NULL-terminated vector (malloc'ed; the strings stay in
 * buf); *count of them. NULL when there are none. */
static char **split0(char *buf, size_t len, int *count)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\0' || i + 1 == len;
    char **v = n ? calloc((size_t)n + 1, sizeof *v) : NULL;
    if (!v)
        return NULL;
    int k = 0;
    for (size_t i = 0; i < len && k < n; i += strlen(buf + i) + 1)
        v[k++] = buf + i;
    *count = k;
    return v;
}

/* The command name of pid (its /proc/PID/comm, world-readable), or "". */
static void comm_of(int pid, char *out, size_t n)
{
    size_t len;
    char *c = read_proc(pid, "comm", &len);
    snprintf(out, n, "%s", c ? c : "");
    out[strcspn(out, "\n")] = '\0';
    free(c);
}

/* Is pid this same program: the same executable file, or (when its executable cannot be looked
 * at, as for another user's process) the same command name? And not another --healthcheck. */
static bool is_server(int pid)
{
    char path[64], a[32], b[32];
    struct stat self, other;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    if (stat("/proc/self/exe", &self) == 0 && stat(path, &other) == 0) {
        if (self.st_dev != other.st_dev || self.st_ino != other.st_ino)
            return false;
    } else {
        comm_of(pid, a, sizeof a);
        comm_of(getpid(), b, sizeof b);
        if (!a[0] || strcmp(a, b) != 0)
            return false;
    }
    size_t len;
    char *cmd = read_proc(pid, "cmdline", &len);
    bool server = cmd != NULL;
    for (size_t i = 0; cmd && i < len; i += strlen(cmd + i) + 1)
        server &= strcmp(cmd + i, "--healthcheck") != 0;
    free(cmd);
    return server;
}

/* The parent of pid, from /proc/PID/stat ("PID (COMM) STATE PPID ..."); -1 if unknown. */
static int parent_of(int pid)
{
    size_t len;
    char *st = read_proc(pid, "stat", &len);
    char *paren = st ? strrchr(st, ')') : NULL; /* the command name may hold ')' or spaces */
    int ppid = -1;
    if (paren && sscanf(paren + 1, " %*c %d", &ppid) != 1)
        ppid = -1;
    free(st);
    return ppid;
}

/* The server of this container, as described at the top; 0 when there is none. */
static int container_server(void)
{
    char init[32];
    if (getpid() == 1)
        return 0;
    if (is_server(1))
        return 1;
    comm_of(1, init, sizeof init);
    bool known = false;
    for (int i = 0; inits[i]; i++)
        known |= strcmp(init, inits[i]) == 0;
    if (!known)
        return 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0, n = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        int pid = atoi(e->d_name);
        if (pid != getpid() && parent_of(pid) == 1 && is_server(pid))
            found = pid, n++;
    }
    if (d)
        closedir(d);
    return n == 1 ? found : 0;
}

/* GET /healthz from the server configured by c. 0 when it answers 200. who: whose settings. */
static int ask(const cfg *c, const char *who)
{
    const char *host = c->listen_host;
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    char port[16];
    snprintf(port, sizeof port, "%d", c->listen_port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "healthcheck: cannot resolve %s (%s)\n", host, who);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    /* Below the image's HEALTHCHECK --timeout (3 s): a server that does not answer is
     * reported as such, rather than as the engine's timeout. */
    struct timeval tv = { 2, 0 };
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!ok) {
        fprintf(stderr, "healthcheck: cannot connect to %s:%s (%s)\n", host, port, who);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (c->tls_cert[0]) {
        close(fd);
        return 0;
    }
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char buf[64] = { 0 };
    ok = write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
         read(fd, buf, sizeof buf - 1) >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 &&
         strncmp(buf + 9, "200", 3) == 0;
    close(fd);
    if (!ok)
        fprintf(stderr, "healthcheck: %s:%s did not answer 200 in time (%s)\n", host, port, who);
    return ok ? 0 : 1;
}

int srv_healthcheck(int argc, char **argv, char **envp)
{
    static cfg c;
    qdq_error err = { 0 };
    char who[64] = "the settings given to --healthcheck";
    char *cmd = NULL, *env = NULL, **sargv = NULL, **senv = NULL;
    size_t clen = 0, elen = 0;
    int pid = argc > 1 ? 0 : container_server(), sargc = 0, n;
    if (pid && (cmd = read_proc(pid, "cmdline", &clen)) != NULL &&
        (sargv = split0(cmd, clen, &sargc)) != NULL) {
        argc = sargc;
        argv = sargv;
        env = read_proc(pid, "environ", &elen);
        if (env) /* an empty environment is NULL here: none */
            envp = senv = split0(env, elen, &n);
        char cwd[64];
        snprintf(cwd, sizeof cwd, "/proc/%d/cwd", pid);
        if (chdir(cwd) != 0) {
            /* relative paths are then taken from this process's directory */
        }
        snprintf(who, sizeof who, "the settings of PID %d, the container's server", pid);
    }
    int rc = cfg_load(&c, argc, argv, envp, stdout, &err);
    if (rc == 2 || rc == 3) {
        rc = 0; /* --help, --version */
    } else if (rc == 1) {
        fprintf(stderr, "qdq-server --healthcheck: %s (%s)\n", err.msg, who);
        rc = 2;
    } else {
        rc = ask(&c, who);
    }
    free(sargv);
    free(senv);
    free(cmd);
    free(env);
    return rc;
}
