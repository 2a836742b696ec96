/* The memory budget (budget.h). */
#include <pthread.h>
#include <stddef.h>

#include "budget.h"
#include "bufcache.h"
#include "clock.h"

static struct {
    pthread_mutex_t mu;
    uint64_t limit;     /* 0: no budget */
    uint64_t taken;     /* by requests */
    uint64_t wait_ns;
    srv_waiter *head, **tail;
    int waiting;
} B = { .mu = PTHREAD_MUTEX_INITIALIZER, .tail = &B.head };

void srv_budget_init(uint64_t budget, int wait_ms)
{
    B.limit = budget;
    B.wait_ns = (uint64_t)(wait_ms > 0 ? wait_ms : 1) * 1000000u;
    /* The cache keeps at most half the budget (and never more than 768 MiB), so that requests
     * have room and the cache gives way first. */
    uint64_t c = budget / 2;
    srv_buf_init(budget && c < ((uint64_t)768 << 20) ? (size_t)c : (size_t)768 << 20);
}

uint64_t srv_budget_limit(void) { return B.limit; }

/* Whether n more bytes fit, making room in the cache if that is what it takes (B.mu held). */
static bool fits(uint64_t n)
{
    if (!B.limit)
        return true;
    if (n > B.limit || B.taken > B.limit - n)
        return false;
    uint64_t room = B.limit - B.taken - n, cached = srv_buf_cached();
    if (cached > room)
        srv_buf_evict((size_t)(cached - room));
    return true;
}

bool srv_budget_take(uint64_t n)
{
    pthread_mutex_lock(&B.mu);
    /* Waiters come first: a new request does not pass one that waits for room. */
    bool ok = !B.head && fits(n);
    if (ok)
        B.taken += n;
    pthread_mutex_unlock(&B.mu);
    return ok;
}

void srv_budget_give(uint64_t n)
{
    srv_waiter *ready = NULL, **rt = &ready;
    pthread_mutex_lock(&B.mu);
    B.taken = n < B.taken ? B.taken - n : 0;
    while (B.head && fits(B.head->need)) {
        srv_waiter *w = B.head;
        B.head = w->next;
        if (!B.head)
            B.tail = &B.head;
        B.taken += w->need;
        B.waiting--;
        w->next = NULL;
        *rt = w, rt = &w->next;
    }
    pthread_mutex_unlock(&B.mu);
    while (ready) {
        srv_waiter *w = ready;
        ready = w->next;
        w->ready(w, true);
    }
}

void srv_budget_wait(srv_waiter *w)
{
    w->deadline_ns = srv_now_ns() + B.wait_ns;
    w->next = NULL;
    pthread_mutex_lock(&B.mu);
    bool now = !B.head && fits(w->need);
    if (now) {
        B.taken += w->need;
    } else {
        *B.tail = w;
        B.tail = &w->next;
        B.waiting++;
    }
    pthread_mutex_unlock(&B.mu);
    if (now)
        w->ready(w, true);
}

static void expire(uint64_t now)
{
    srv_waiter *late = NULL, **lt = &late;
    pthread_mutex_lock(&B.mu);
    for (srv_waiter **p = &B.head; *p;) {
        srv_waiter *w = *p;
        if (now >= w->deadline_ns) {
            *p = w->next;
            B.waiting--;
            w->next = NULL;
            *lt = w, lt = &w->next;
        } else {
            p = &w->next;
        }
    }
    B.tail = &B.head;
    while (*B.tail)
        B.tail = &(*B.tail)->next;
    pthread_mutex_unlock(&B.mu);
    while (late) {
        srv_waiter *w = late;
        late = w->next;
        w->ready(w, false);
    }
}

void srv_budget_sweep(void) { expire(srv_now_ns()); }

void srv_budget_release_all(void) { expire(UINT64_MAX); }

uint64_t srv_budget_held(void)
{
    pthread_mutex_lock(&B.mu);
    uint64_t t = B.taken;
    pthread_mutex_unlock(&B.mu);
    return t + srv_buf_cached();
}

bool srv_budget_cache_fits(uint64_t n)
{
    pthread_mutex_lock(&B.mu);
    uint64_t used = B.taken + srv_buf_cached();
    bool ok = !B.limit || (used <= B.limit && n <= B.limit - used);
    pthread_mutex_unlock(&B.mu);
    return ok;
}

int srv_budget_waiting(void)
{
    pthread_mutex_lock(&B.mu);
    int n = B.waiting;
    pthread_mutex_unlock(&B.mu);
    return n;
}
