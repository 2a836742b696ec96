/*
 * The memory budget (budget.c, --max-memory): the bytes requests hold (bodies, outputs, JSON
 * text, as their codecs reckon them: proto_xchg_memory) and the bytes the buffer cache holds
 * together stay under it. A request takes its share before its body is read; when it does not
 * fit, the cache gives its buffers up first, then the request waits for room (its connection
 * suspended, nothing read) until another gives some back, or until its wait runs out.
 */
#ifndef SRV_BUDGET_H
#define SRV_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

/* The budget, and how long a request may wait for room. */
void srv_budget_init(uint64_t budget, int wait_ms);
uint64_t srv_budget_limit(void);

/* Takes n bytes: true when they fit (after the cache gave up what it had to), else false with
 * nothing taken. Never blocks. */
bool srv_budget_take(uint64_t n);
/* Gives n bytes back, and takes room for waiting requests that now fit (oldest first). */
void srv_budget_give(uint64_t n);

/* A request waiting for room: once need bytes are taken for it, or its wait ran out, ready is
 * called (ok says which), once, from whichever thread freed the room or swept. */
typedef struct srv_waiter {
    uint64_t need;
    uint64_t deadline_ns;
    void (*ready)(struct srv_waiter *w, bool ok);
    struct srv_waiter *next;
} srv_waiter;

/* Queues w (need and ready set) with the configured wait. */
void srv_budget_wait(srv_waiter *w);
/* Times out the waiters whose wait ran out (called four times a second). */
void srv_budget_sweep(void);
/* Lets every waiter go without room (ready with ok false): at the end of a stop. */
void srv_budget_release_all(void);

/* Gauges: bytes held by requests and the cache, requests waiting for room. */
uint64_t srv_budget_held(void);
/* Whether n more bytes may go into the buffer cache with what requests hold now (no budget:
 * always). A request gives its reservation back first, then its buffers to the cache, so that
 * nothing is counted twice. */
bool srv_budget_cache_fits(uint64_t n);
int srv_budget_waiting(void);

#endif
