/*
 * Answers the kernel has not sent yet (unsent.c). At exit, a closed connection's last bytes may
 * still sit in its socket's send queue: outside a container the kernel sends them after the
 * process has gone, but a container's network goes with its last process, and they are lost
 * (an answer cut short at `podman stop`, one run in four or five). So the server waits for them.
 */
#ifndef SRV_UNSENT_H
#define SRV_UNSENT_H

#include <stdint.h>

/* Waits until no TCP socket of this network namespace on one of the n local ports has bytes in
 * its send queue (/proc/net/tcp and tcp6), or until deadline_ns (srv_now_ns); returns the bytes
 * still unsent then. */
uint64_t srv_wait_unsent(const int *ports, int n, uint64_t deadline_ns);

#endif
