/* The server's clock. */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds. */
uint64_t srv_now_ns(void);

#endif
