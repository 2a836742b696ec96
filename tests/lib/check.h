/*
 * Minimal test harness: CHECK counts, prints failures with file:line, and check_done() prints
 * the closing line "N passed, N failed, N skipped" and returns the exit status.
 *
 *   CHECK(cond, "fmt", ...)   one assertion; the message is printed only on failure
 *   SKIP("fmt", ...)          a check that cannot run here (printed "skip: ..." and counted):
 *                             for what no machine of ours has, or what chance left unexercised
 *   NEED(cond, "fmt", ...)    a precondition a check needs (a tool, a kernel feature): true when
 *                             it holds; otherwise a skip, or a failure when QDQ_CI=1 (CI runs on
 *                             a machine where everything scripts/install-deps.sh --dev installs
 *                             is present, so nothing may be skipped for want of it there)
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            check_passed++;                                                       \
        } else {                                                                  \
            check_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

#define SKIP(...)                                                                 \
    do {                                                                          \
        check_skipped++;                                                          \
        fprintf(stderr, "skip %s:%d: ", __FILE__, __LINE__);                      \
        fprintf(stderr, __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                      \
    } while (0)

/* Whether this run is CI's (QDQ_CI=1): a missing precondition is then a failure. */
static inline bool check_ci(void)
{
    const char *s = getenv("QDQ_CI");
    return s && strcmp(s, "1") == 0;
}

__attribute__((format(printf, 4, 5))) static inline bool check_need(bool cond, const char *file,
                                                                    int line, const char *fmt, ...)
{
    if (cond)
        return true;
    bool ci = check_ci();
    if (ci)
        check_failed++;
    else
        check_skipped++;
    fprintf(stderr, "%s %s:%d: ", ci ? "FAIL" : "skip", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(ci ? " (QDQ_CI=1: the CI machine must run this)\n" : "\n", stderr);
    return false;
}

#define NEED(cond, ...) check_need((cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int check_done(void)
{
    printf("%d passed, %d failed, %d skipped\n", check_passed, check_failed, check_skipped);
    return check_failed ? 1 : 0;
}

#endif
