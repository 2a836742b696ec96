/*
 * The limits a container puts on this process, read from its cgroups, for the defaults of
 * --max-memory, --workers and --http-threads (config.c).
 *
 * Both cgroup versions, and the hybrid layout (v1 controllers, an empty v2 tree beside them):
 *   v2  ROOT/sys/fs/cgroup (or .../unified): memory.max ("max" or bytes), cpu.max
 *       ("max PERIOD" or "QUOTA PERIOD", in microseconds);
 *   v1  ROOT/sys/fs/cgroup/memory: memory.limit_in_bytes (a huge number when unlimited);
 *       ROOT/sys/fs/cgroup/cpu (or cpu,cpuacct): cpu.cfs_quota_us (-1: none), cpu.cfs_period_us.
 * The process's cgroup in each hierarchy comes from ROOT/proc/self/cgroup. A container usually
 * sees its own cgroup mounted as the hierarchy's root while /proc/self/cgroup still names the
 * host's path, so the deepest existing directory for a tail of that path is taken (the whole
 * path, then without its first component, ..., the root). Limits of enclosing cgroups apply
 * too: every level from there up to the root is read and the smallest limit wins.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Above this, a memory limit means "none" (v1 writes 0x7ffffffffffff000 for unlimited). */
#define HUGE_LIMIT (1ULL << 60)

/* The first line of a small file, without its newline; 0, or -1 when it cannot be read. */
static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *ok = fgets(buf, (int)n, f);
    fclose(f);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A whole unsigned decimal number (possibly signed "-1": returns -1 for any negative). */
static int parse_u64(const char *s, unsigned long long *v)
{
    char *end;
    if (*s == '-')
        return -1;
    *v = strtoull(s, &end, 10);
    return end != s && (*end == '\0' || *end == ' ') ? 0 : -1;
}

struct acc {
    uint64_t mem;          /* smallest memory limit seen; 0 = none */
    double cpus;           /* smallest quota/period seen; 0 = none */
};

static void take_mem(struct acc *a, const char *text)
{
    unsigned long long v;
    if (parse_u64(text, &v) == 0 && v > 0 && v < HUGE_LIMIT && (a->mem == 0 || v < a->mem))
        a->mem = v;
}

static void take_cpu(struct acc *a, unsigned long long quota, unsigned long long period)
{
    if (quota == 0 || period == 0)
        return;
    double cpus = (double)quota / (double)period;
    if (a->cpus == 0 || cpus < a->cpus)
        a->cpus = cpus;
}

/* Reads the limit files of one cgroup directory. v2: the unified hierarchy's names. */
static void read_level(const char *dir, int v2, struct acc *a)
{
    char path[4096 + 64], line[256], *sp;
    unsigned long long q, p;
    if (v2) {
        snprintf(path, sizeof path, "%s/memory.max", dir);
        if (read_line(path, line, sizeof line) == 0)
            take_mem(a, line);
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        if (read_line(path, line, sizeof line) == 0 && (sp = strchr(line, ' ')) != NULL &&
            parse_u64(line, &q) == 0 && parse_u64(sp + 1, &p) == 0)
            take_cpu(a, q, p);
        return;
    }
    snprintf(path, sizeof path, "%s/memory.limit_in_bytes", dir);
    if (read_line(path, line, sizeof line) == 0)
        take_mem(a, line);
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (read_line(path, line, sizeof line) == 0 && parse_u64(line, &q) == 0) {
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
        if (read_line(path, line, sizeof line) == 0 && parse_u64(line, &p) == 0)
            take_cpu(a, q, p);
    }
}

/*
 * The hierarchy mounted at mount, for the process's cgroup path cg ("/a/b/c"): finds the deepest
 * existing directory for a tail of cg, then reads every level from it up to mount.
 */
static void read_hierarchy(const char *mount, const char *cg, int v2, struct acc *a)
{
    char dir[4096];
    const char *tail = cg;
    if (!is_dir(mount))
        return;
    for (;;) {
        snprintf(dir, sizeof dir, "%s%s", mount, tail);
        if (is_dir(dir))
            break;
        const char *next = strchr(tail + 1, '/'); /* drop the first component */
        if (!next) {
            snprintf(dir, sizeof dir, "%s", mount);
            break;
        }
        tail = next;
    }
    size_t root_len = strlen(mount);
    for (;;) {
        read_level(dir, v2, a);
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= root_len || !slash || (size_t)(slash - dir) < root_len)
            break;
        *slash = '\0';
    }
}

/* Total physical memory, from ROOT/proc/meminfo (kB), else sysconf; 0 if unknown. */
static uint64_t mem_total(const char *root)
{
    char path[4200], line[256];
    snprintf(path, sizeof path, "%s/proc/meminfo", root);
    FILE *f = fopen(path, "re");
    if (f) {
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
                fclose(f);
                return kb * 1024;
            }
        fclose(f);
    }
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

void cfg_limits_read(const char *root, cfg_limits *out)
{
    char path[4200], line[4096], base[4200];
    struct acc a = { 0, 0 };
    if (!root || strcmp(root, "/") == 0)
        root = "";
    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    FILE *f = fopen(path, "re");
    while (f && fgets(line, sizeof line, f)) {
        /* "ID:CONTROLLERS:PATH"; v2 is "0::PATH". */
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *cg = c2 + 1;
        if (*ctrls == '\0') {
            /* The unified tree: /sys/fs/cgroup itself on a v2 system, .../unified on a hybrid. */
            snprintf(base, sizeof base, "%s/sys/fs/cgroup/cgroup.controllers", root);
            snprintf(base, sizeof base, access(base, F_OK) == 0 ? "%s/sys/fs/cgroup"
                                                                  : "%s/sys/fs/cgroup/unified",
                     root);
            read_hierarchy(base, cg, 1, &a);
            continue;
        }
        /* A v1 hierarchy with memory or cpu among its controllers ("cpu,cpuacct"). */
        char list[256];
        snprintf(list, sizeof list, ",%s,", ctrls);
        int mem = strstr(list, ",memory,") != NULL, cpu = strstr(list, ",cpu,") != NULL;
        if (!mem && !cpu)
            continue;
        snprintf(base, sizeof base, "%s/sys/fs/cgroup/%s", root, ctrls);
        if (!is_dir(base))
            snprintf(base, sizeof base, "%s/sys/fs/cgroup/%s", root, mem ? "memory" : "cpu");
        read_hierarchy(base, cg, 0, &a);
    }
    if (f)
        fclose(f);
    out->memory_limit = a.mem;
    out->cpu_quota = a.cpus;
    out->memory_total = mem_total(root);
}
