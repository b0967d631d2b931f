/* numparse.h - decimal text -> the nearest double, exactly as strtod rounds
 * (to nearest, ties to even), without calling strtod on the common path.
 *
 * A pure function for the JSON reader's numeric arrays (proto/numscan.c):
 * it reads one number in the grammar below, never past `end`, and reports
 * what the text was (an integer literal or not). It does not skip
 * whitespace, know JSON's stricter rules (no leading zeros, which the caller
 * checks), round to float32 (the caller's business), or allocate except in
 * the rare exact fallback (see numparse.c). Assumes the "C" numeric locale. */
#ifndef GD_NUMPARSE_H
#define GD_NUMPARSE_H

#include <stddef.h>

enum {
    GD_NUM_INT = 1,  /* written without a fraction or exponent */
    GD_NUM_BIG = 2,  /* an integer literal of magnitude >= 2^53 */
};

/* Reads  -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?  at s (leading zeros
 * allowed) and stores the double nearest its value in *out (+-Infinity past
 * the largest double, +-0 below the smallest subnormal's half, -0 for a
 * negative zero). *flags gets GD_NUM_* bits. Returns the first byte past the
 * number, or NULL (and nothing stored) when s does not start one. */
const char *gd_parse_double(const char *s, const char *end, double *out, unsigned *flags);

#endif
