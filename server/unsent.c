/* Answers the kernel has not sent yet (unsent.h). */
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "unsent.h"

/* Bytes in the send queues of the sockets on the given local ports, from one /proc/net file. */
static uint64_t queued(const char *path, const int *ports, int n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    uint64_t total = 0;
    if (!fgets(line, sizeof line, f)) { /* the column heads */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        /* "  0: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 ..." (tcp6: longer addresses) */
        char local[64];
        unsigned port;
        unsigned long tx, rx;
        if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %*x %lx:%lx", local, &port, &tx, &rx) != 4)
            continue;
        for (int i = 0; i < n; i++)
            if (ports[i] > 0 && (unsigned)ports[i] == port)
                total += tx;
    }
    fclose(f);
    return total;
}

uint64_t srv_wait_unsent(const int *ports, int n, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t left = queued("/proc/net/tcp", ports, n) + queued("/proc/net/tcp6", ports, n);
        if (!left || srv_now_ns() >= deadline_ns)
            return left;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}
