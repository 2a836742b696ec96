/*
 * What every fuzz target shares: REQUIRE (an invariant: print it and abort, which libFuzzer
 * reports as a crash) and the decoding limits the targets use.
 */
#ifndef FUZZ_REQUIRE_H
#define FUZZ_REQUIRE_H

#include <stdio.h>
#include <stdlib.h>

#include "proto.h"

#define REQUIRE(cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: %s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static const proto_limits LIMITS = { .max_elements = 1u << 16, .max_rank = 32, .max_depth = 64,
                                     .max_body = 1u << 20 };

#endif
