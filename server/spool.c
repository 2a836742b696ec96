/* Checkpoints' spool files (spool.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clock.h"
#include "spool.h"
#include "status.h"

#define MAX_WARM 16

static struct {
    const char *dir;
    int keep;
    pthread_mutex_t mu;
    struct {
        int fd;
        uint64_t size, since;
    } warm[MAX_WARM];
    int n_warm;
    atomic_llong bytes;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

void srv_spool_init(const char *dir, int keep)
{
    S.dir = dir;
    S.keep = keep < MAX_WARM ? keep : MAX_WARM;
}

void srv_spool_account(int64_t delta) { atomic_fetch_add(&S.bytes, delta); }

long long srv_spool_bytes(void) { return atomic_load(&S.bytes); }

/* Takes warm file i out of the list (S.mu held). */
static int take(int i)
{
    int fd = S.warm[i].fd;
    atomic_fetch_sub(&S.bytes, (long long)S.warm[i].size);
    S.warm[i] = S.warm[--S.n_warm];
    return fd;
}

static uint64_t room(void)
{
    struct statvfs v;
    return statvfs(S.dir, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : UINT64_MAX;
}

/* Of two warm files for an answer of `want` bytes, whether a is the better: one large enough
 * beats one too small; of two large enough the smaller, of two too small the larger. */
static bool better(uint64_t a, uint64_t b, uint64_t want)
{
    if ((a >= want) != (b >= want))
        return a >= want;
    return a >= want ? a < b : a > b;
}

int srv_spool_open(uint64_t bytes, qdq_error *err)
{
    int fd = -1, best = -1;
    uint64_t size = 0;
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n_warm; i++)
        if (best < 0 || better(S.warm[i].size, S.warm[best].size, bytes))
            best = i;
    if (best >= 0) {
        size = S.warm[best].size;
        fd = take(best);
    }
    pthread_mutex_unlock(&S.mu);
    if (fd >= 0 && size > bytes && ftruncate(fd, (off_t)bytes) == 0)
        size = bytes;
    uint64_t need = bytes > size ? bytes - size : 0, have = room();
    if (have < need) { /* the other warm files' room may make it fit */
        srv_spool_idle(0);
        have = room();
    }
    if (have < need) {
        if (fd >= 0)
            close(fd);
        qdq_fail(err, PROTO_ESPACE, "the spool directory %s has %llu bytes free; the answer "
                 "needs %llu (--spool-dir)", S.dir, (unsigned long long)have,
                 (unsigned long long)bytes);
        return -1;
    }
    if (fd >= 0)
        return fd;
    fd = open(S.dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* A file system without O_TMPFILE: a named file, unlinked at once. */
        char path[1100];
        snprintf(path, sizeof path, "%s/qdq-spool-XXXXXX", S.dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0)
        qdq_fail(err, errno == ENOSPC ? PROTO_ESPACE : PROTO_EINTERNAL, "cannot make a spool "
                 "file in %s: %s", S.dir, strerror(errno));
    return fd;
}

void srv_spool_keep(int fd)
{
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || S.keep <= 0) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&S.mu);
    if (S.n_warm < S.keep) {
        S.warm[S.n_warm].fd = fd;
        S.warm[S.n_warm].size = (uint64_t)st.st_size;
        S.warm[S.n_warm++].since = srv_now_ns();
        atomic_fetch_add(&S.bytes, (long long)st.st_size);
        fd = -1;
    }
    pthread_mutex_unlock(&S.mu);
    if (fd >= 0)
        close(fd);
}

void srv_spool_idle(uint64_t idle_ns)
{
    uint64_t now = srv_now_ns();
    for (;;) {
        int fd = -1;
        pthread_mutex_lock(&S.mu);
        for (int i = 0; i < S.n_warm && fd < 0; i++)
            if (!idle_ns || now - S.warm[i].since >= idle_ns)
                fd = take(i);
        pthread_mutex_unlock(&S.mu);
        if (fd < 0)
            return;
        close(fd);
    }
}
