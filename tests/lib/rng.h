/*
 * Random numbers for the tests: the same sequence on every platform for a given seed, so that a
 * failure reproduces from the seed a test prints.
 *
 *   rng_gen r;
 *   rng_seed(&r, 42);
 *   uint64_t x = rng_next(&r);            xoshiro256** (seeded through SplitMix64)
 *   double v = rng_value(&r, 3.0);        a tensor element of many magnitudes (see below)
 *
 * rng_splitmix steps a bare 64-bit state (SplitMix64): for a test that wants one stream and no
 * struct. A generator is not shared between threads: give each thread its own.
 */
#ifndef RNG_H
#define RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rng_gen {
    uint64_t s[4];
} rng_gen;

/* SplitMix64: advances *state and returns the next value. */
uint64_t rng_splitmix(uint64_t *state);
void rng_seed(rng_gen *r, uint64_t seed);
uint64_t rng_next(rng_gen *r);
/* Uniform in [0, n) (0 when n is 0; the modulo bias is negligible for test sizes). */
uint64_t rng_below(rng_gen *r, uint64_t n);
/* Uniform in [0, 1), 53 bits. */
double rng_unit(rng_gen *r);
/* True with probability p. */
bool rng_chance(rng_gen *r, double p);
/* Uniform in [lo, hi], both included. */
int64_t rng_range(rng_gen *r, int64_t lo, int64_t hi);
/*
 * A tensor element for the black-box tests: mostly uniform in [-scale, scale], with zeros of
 * both signs, exact halves of scale/64 (ties once scaled), repeats of scale/4, and now and then
 * a NaN.
 */
double rng_value(rng_gen *r, double scale);

#endif
