/* numparse.c - the exact decimal reader (see numparse.h).
 *
 * The number is w x 10^q with w its first 19 significant digits. Three
 * routes, fastest first:
 *  1. w <= 2^53 and |q| <= 22: w and 10^|q| are exact doubles, so one IEEE
 *     multiplication or division rounds correctly (Clinger).
 *  2. Otherwise w (normalized) times 10^q's top 128 bits (core/pow5.c,
 *     truncated) as an exact 192-bit product P. The table's truncation
 *     makes the true product lie in [P, P + 2^64): it can change the result
 *     only if adding less than 2^64 carries into the rounding bit, i.e. if
 *     every bit between bit 64 and the rounding bit is one (about 2^-64 of
 *     inputs); and it decides the sticky bit only when P has no bit below
 *     the rounding bit at all, where 10^q is either exact (0 <= q <= 55, so
 *     the product is exact) or not (then the true value lies above P).
 *     Digits beyond 19 leave the value in [w, w + 1) x 10^q: both ends are
 *     computed, and if they round alike so does everything between.
 *  3. Else (the two ends differ, or the carry case): strtod on a copy of the
 *     text, the C library's exact big-number conversion. This is the only
 *     allocation (texts of 512 bytes and more) and it is rare: inputs with
 *     more than 19 digits lying within 10^-19 relative of a rounding
 *     boundary (halfway cases written out in full, say). */
#include "core/numparse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pow5.h"

/* 10^0 .. 10^22, every one exact in a double; checked against strtod by
 * tests/test_numparse.c. */
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define NO_RESULT UINT64_MAX /* route 2 cannot decide */

/* The bits of the double nearest w x 10^q (w > 0, 19 digits at most,
 * GD_POW10_MIN <= q <= GD_POW10_MAX), or NO_RESULT when the table's
 * truncation could matter. */
static uint64_t scaled_bits(uint64_t w, int q) {
    int lz = __builtin_clzll(w);
    uint64_t wn = w << lz;
    const uint64_t *t = gd_pow10_128[q - GD_POW10_MIN];
    unsigned __int128 lo = (unsigned __int128)wn * t[0], hi = (unsigned __int128)wn * t[1];
    uint64_t p0 = (uint64_t)lo;
    unsigned __int128 mid = (lo >> 64) + (uint64_t)hi;
    uint64_t p1 = (uint64_t)mid;
    uint64_t p2 = (uint64_t)((hi >> 64) + (mid >> 64));
    /* value = P x 2^(lg - 127 - lz), lg = floor(log2(10^q)); P's top bit is 191 or 190. */
    int lg = (q * 217706) >> 16;
    int scale = lg - 127 - lz;
    int top = (p2 >> 63) ? 191 : 190;
    int e_lead = top + scale; /* the value's leading binary exponent */
    if (e_lead > 1023) return 0x7ffull << 52;
    int unit = e_lead - 52 < -1074 ? -1074 : e_lead - 52; /* the result's ulp exponent */
    int s = unit - scale;                                  /* bits of P below the result's ulp, >= 138 */
    if (s >= 193) return 0;                                /* below half the smallest subnormal */
    uint64_t m = (uint64_t)((unsigned __int128)p2 >> (s - 128));
    unsigned round = (unsigned)((p2 >> (s - 129)) & 1);
    uint64_t below_mask = (1ull << (s - 129)) - 1; /* p2's bits below the rounding bit */
    uint64_t r2 = p2 & below_mask;
    int exact_table = q >= 0 && q <= 55;
    if (!exact_table && r2 == below_mask && p1 == UINT64_MAX) return NO_RESULT;
    int sticky = r2 || p1 || p0 || !exact_table;
    m += round && (sticky || (m & 1));
    /* m x 2^unit: m < 2^53 (or 2^53 after rounding up, or < 2^52 when subnormal);
     * the biased exponent and mantissa come out of one addition. */
    uint64_t bits = ((uint64_t)(unit + 1074) << 52) + m;
    return bits >= 0x7ffull << 52 ? 0x7ffull << 52 : bits;
}

/* Route 3: strtod on a NUL-terminated copy of s[0..n). */
static double exact_fallback(const char *s, size_t n) {
    char small[512];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return 0; /* unreachable in practice: a caller's body of this size exists already */
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    return v;
}

static inline int is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EIGHT_AT_ONCE 1
/* 1 when the 8 bytes of v (loaded little-endian) are all ASCII digits:
 * each byte's high nibble is 3, and adding 6 does not carry into it. */
static inline int eight_digits(uint64_t v) {
    return ((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
           0x3333333333333333ull;
}

/* Their value: neighbouring digits combined into pairs, then pairs into
 * fours and fours into the eight with two multiplications whose partial
 * products fall into the high half. */
static inline uint32_t eight_value(uint64_t v) {
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8); /* byte 2i: the pair of digits 2i, 2i + 1 */
    v = ((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32)) +
         ((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32))) >> 32;
    return (uint32_t)v;
}
#else
#define EIGHT_AT_ONCE 0
#endif

/* The digits from p into w (significant digits, at most 19: nd counts
 * them; a fraction's eight at a time where they fit: an integer part is
 * mostly short, and a failed try costs it more than it saves), q (the exponent of w's last digit: each fraction digit taken
 * lowers it, each integer digit left out raises it), *truncated (a
 * nonzero digit left out). Returns the first byte past them. */
static inline const char *digits(const char *p, const char *end, int frac, uint64_t *w, int *nd, int64_t *q,
                                 int *truncated) {
    for (;;) {
#if EIGHT_AT_ONCE
        if (frac && *nd <= 11 && end - p >= 8) { /* all eight fit in w: 8 at once (most of a 17-digit number) */
            uint64_t v;
            memcpy(&v, p, 8);
            if (eight_digits(v)) {
                uint32_t x = eight_value(v);
                if (*w) {
                    *w = *w * 100000000u + x, *nd += 8;
                } else if (x) { /* leading zeros (the low bytes '0') are not significant */
                    *w = x;
                    *nd = 8 - __builtin_ctzll(v - 0x3030303030303030ull) / 8;
                }
                if (frac) *q -= 8;
                p += 8;
                continue;
            }
        }
#endif
        if (!is_digit(p, end)) return p;
        unsigned d = (unsigned)(*p++ - '0');
        if (*nd < 19) {
            if (*nd || d) *w = 10 * *w + d, ++*nd;
            if (frac) --*q;
        } else {
            if (!frac) ++*q;
            *truncated |= d != 0;
        }
    }
}

const char *gd_parse_double(const char *s, const char *end, double *out, unsigned *flags) {
    const char *p = s;
    int neg = 0;
    if (p < end && *p == '-') neg = 1, p++;
    if (!is_digit(p, end)) return NULL;
    uint64_t w = 0;
    int nd = 0;          /* significant digits taken into w (at most 19) */
    int truncated = 0;   /* a nonzero digit did not fit */
    int64_t q = 0;       /* decimal exponent of w's last digit, before the exponent part */
    p = digits(p, end, 0, &w, &nd, &q, &truncated);
    unsigned fl = GD_NUM_INT;
    if (p < end && *p == '.') {
        if (!is_digit(p + 1, end)) return NULL;
        fl = 0;
        p = digits(p + 1, end, 1, &w, &nd, &q, &truncated);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *e = p + 1;
        int eneg = 0;
        if (e < end && (*e == '+' || *e == '-')) eneg = *e == '-', e++;
        if (!is_digit(e, end)) return NULL;
        int64_t x = 0;
        for (; is_digit(e, end); e++)
            if (x < 100000000) x = 10 * x + (*e - '0'); /* saturates far past any double */
        q += eneg ? -x : x;
        p = e;
        fl = 0;
    }
    if ((fl & GD_NUM_INT) && (q > 0 || w >= (1ull << 53))) fl |= GD_NUM_BIG; /* q > 0: over 19 digits */
    *flags = fl;
    double v;
    if (w == 0) {
        v = 0;
    } else if (!truncated && w <= (1ull << 53) && q >= -22 && q <= 22) {
        v = q >= 0 ? (double)w * exact_pow10[q] : (double)w / exact_pow10[-q];
    } else if (q < GD_POW10_MIN) {
        v = 0; /* (w + 1) x 10^q <= 10^(19 - 343): under half the smallest subnormal */
    } else if (q > GD_POW10_MAX) {
        v = HUGE_VAL; /* w >= 1: at least 10^309 */
    } else {
        uint64_t bits = scaled_bits(w, (int)q);
        if (truncated && bits != NO_RESULT) {
            uint64_t up = scaled_bits(w + 1, (int)q);
            if (up != bits) bits = NO_RESULT;
        }
        if (bits == NO_RESULT) {
            *out = exact_fallback(s, (size_t)(p - s));
            return p;
        }
        memcpy(&v, &bits, 8);
    }
    *out = neg ? -v : v;
    return p;
}
