/* pow5.h - 128-bit powers of five and ten, generated (scripts/gen_pow5.py
 * writes core/pow5.c; tests/pow5_check.sh checks it is what the script
 * writes). Read-only tables for the number printer and parser; nothing else.
 * Each entry is {low 64 bits, high 64 bits}. */
#ifndef GD_POW5_H
#define GD_POW5_H

#include <stdint.h>

/* 5^i's top 125 bits, truncated: 5^i >> (bitlen(5^i) - 125). i = 0..325. */
extern const uint64_t gd_pow5_split[326][2];
/* 2^(bitlen(5^q) - 1 + 125) / 5^q, rounded up (floor + 1). q = 0..291. */
extern const uint64_t gd_pow5_inv_split[292][2];
/* 10^k's top 128 bits, truncated (leading bit set), k = -342..308 at
 * index k + 342; 10^k = value * 2^(floor(log2(10^k)) - 127) * (1 + e),
 * 0 <= e < 2^-127, and e = 0 exactly for 0 <= k <= 55. */
#define GD_POW10_MIN (-342)
#define GD_POW10_MAX 308
extern const uint64_t gd_pow10_128[651][2];

#endif
