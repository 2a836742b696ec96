/* A growable string for building requests in tests (NUL-terminated; exits on out of memory). */
#ifndef TESTS_SBUF_H
#define TESTS_SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

void sb_add(sbuf *b, const void *data, size_t n);
void sb_str(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s, times times over. */
void sb_repeat(sbuf *b, const char *s, size_t times);

#endif
