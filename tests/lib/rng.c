/* Random numbers for the tests (rng.h). */
#include "rng.h"

#include <math.h>

uint64_t rng_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(rng_gen *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(rng_gen *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return out;
}

uint64_t rng_below(rng_gen *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

double rng_unit(rng_gen *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

bool rng_chance(rng_gen *r, double p) { return rng_unit(r) < p; }

int64_t rng_range(rng_gen *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

double rng_value(rng_gen *r, double scale)
{
    uint64_t x = rng_next(r);
    switch (x % 16) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return (double)((int64_t)(x >> 40) % 256 - 128) * 0.5 * scale / 64;
    case 3: return (x >> 20) % 1000 == 0 ? NAN : scale * 0.25;
    default: return ((double)(x >> 11) * 0x1p-53 * 2 - 1) * scale;
    }
}
