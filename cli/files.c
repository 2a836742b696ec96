/* The qdq command's files (files.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/* What exists only until the end: a named temporary file, a temporary directory and its
 * files. Paths kept whole so that a signal handler can remove them with unlink and rmdir. */
#define MAX_TEMP 4096
#define LONG_PATH (2 * PATH_MAX + 64) /* a directory, a name, and a suffix */
static char temp_file[LONG_PATH];
static char temp_dir[LONG_PATH];
static char *temp_names[MAX_TEMP];
static size_t n_temp;

void files_cleanup(void)
{
    if (temp_file[0])
        unlink(temp_file);
    if (temp_dir[0]) {
        char p[LONG_PATH];
        for (size_t i = 0; i < n_temp; i++) {
            size_t a = strlen(temp_dir), b = strlen(temp_names[i]);
            if (a + b + 2 <= sizeof p) {
                memcpy(p, temp_dir, a);
                p[a] = '/';
                memcpy(p + a + 1, temp_names[i], b + 1);
                unlink(p);
            }
        }
        rmdir(temp_dir);
    }
}

void files_release(const void *p, size_t n)
{
    static uintptr_t page;
    if (!page)
        page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + n) & ~(page - 1);
    if (b < e)
        madvise((void *)b, e - b, MADV_DONTNEED);
}

const char *files_map(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    *len = (size_t)st.st_size;
    if (!*len) {
        close(fd);
        return "";
    }
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        errno = e;
        return NULL;
    }
    madvise(p, *len, MADV_SEQUENTIAL);
    return p;
}

void files_unmap(const char *p, size_t len)
{
    if (len)
        munmap((void *)p, len);
}

char *files_read_text(const char *path)
{
    size_t len;
    const char *m = files_map(path, &len);
    if (!m)
        return NULL;
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, m, len);
        t[len] = '\0';
    }
    files_unmap(m, len);
    return t;
}

int files_write(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* The directory of path (".": none given). */
static void dir_of(const char *path, char *out, size_t n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(out, n, "%s", dirname(tmp));
}

int files_create(const char *path)
{
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd >= 0)
        return fd;
    /* No unnamed files here: a hidden name beside path, removed at an error or a signal. */
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", path);
    snprintf(temp_file, sizeof temp_file, "%s/.%s.qdq-XXXXXX", dir, basename(base));
    fd = mkostemp(temp_file, O_CLOEXEC);
    if (fd < 0)
        temp_file[0] = '\0';
    else
        fchmod(fd, 0644);
    return fd;
}

int files_commit(int fd, const char *path)
{
    int rc = 0;
    if (temp_file[0]) { /* a named temporary file */
        rc = close(fd) || rename(temp_file, path);
        if (!rc)
            temp_file[0] = '\0';
        return rc ? -1 : 0;
    }
    /* An unnamed file: linked under a temporary name, then renamed over path (link cannot
     * replace a file). */
    char dir[PATH_MAX], base[PATH_MAX], proc[64];
    dir_of(path, dir, sizeof dir);
    snprintf(base, sizeof base, "%s", path);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int i = 0; i < 100; i++) {
        snprintf(temp_file, sizeof temp_file, "%s/.%s.qdq-%d-%d", dir, basename(base),
                 (int)getpid(), i);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, temp_file, AT_SYMLINK_FOLLOW) == 0)
            break;
        if (errno != EEXIST) {
            temp_file[0] = '\0';
            close(fd);
            return -1;
        }
    }
    rc = close(fd) || rename(temp_file, path);
    if (rc)
        unlink(temp_file);
    temp_file[0] = '\0';
    return rc ? -1 : 0;
}

int files_write_whole(const char *path, const char *p, size_t n)
{
    int fd = files_create(path);
    if (fd < 0)
        return -1;
    if (files_write(fd, p, n)) {
        int e = errno;
        close(fd);
        files_cleanup();
        temp_file[0] = '\0';
        errno = e;
        return -1;
    }
    return files_commit(fd, path);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int files_list(const char *dir, char ***names, size_t *n, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t cap = 0;
    *names = NULL, *n = 0, *bytes = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* hidden files and subdirectories stay out */
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(*names, cap * sizeof *v);
            if (!v) {
                closedir(d);
                return -1;
            }
            *names = v;
        }
        (*names)[(*n)++] = strdup(e->d_name);
        *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    qsort(*names, *n, sizeof **names, cmp);
    return 0;
}

int files_dir_begin(const char *out)
{
    char dir[PATH_MAX], base[PATH_MAX];
    dir_of(out, dir, sizeof dir);
    snprintf(base, sizeof base, "%s", out);
    size_t k = strlen(base);
    while (k > 1 && base[k - 1] == '/')
        base[--k] = '\0';
    snprintf(temp_dir, sizeof temp_dir, "%s/.%s.qdq-XXXXXX", dir, basename(base));
    if (!mkdtemp(temp_dir)) {
        temp_dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int dir_path(const char *name, char *out, size_t n)
{
    if (n_temp == MAX_TEMP || strchr(name, '/')) {
        errno = EINVAL;
        return -1;
    }
    temp_names[n_temp++] = strdup(name);
    snprintf(out, n, "%s/%s", temp_dir, name);
    return 0;
}

int files_dir_create(const char *name)
{
    char p[2 * LONG_PATH];
    if (dir_path(name, p, sizeof p))
        return -1;
    return open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

int files_dir_done(int fd, const char *name)
{
    (void)name;
    return close(fd);
}

int files_dir_copy(const char *src, const char *name)
{
    char p[2 * LONG_PATH];
    if (dir_path(name, p, sizeof p))
        return -1;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    int rc = 0;
    for (;;) {
        ssize_t k = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (k == 0)
            break;
        if (k < 0) {
            if (errno == EINTR)
                continue;
            /* Not between these file systems: plain reads and writes. */
            char buf[1 << 16];
            ssize_t r;
            while ((r = read(in, buf, sizeof buf)) > 0)
                if (files_write(out, buf, (size_t)r)) {
                    rc = -1;
                    break;
                }
            if (r < 0)
                rc = -1;
            break;
        }
    }
    close(in);
    return close(out) || rc ? -1 : 0;
}

int files_dir_commit(const char *out)
{
    rmdir(out); /* an empty OUT may be replaced; a non-empty one makes rename fail */
    if (rename(temp_dir, out) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST)
            errno = EEXIST;
        return -1;
    }
    temp_dir[0] = '\0';
    for (size_t i = 0; i < n_temp; i++)
        free(temp_names[i]);
    n_temp = 0;
    return 0;
}
