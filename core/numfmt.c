/* numfmt.c - shortest round-trip decimals in Python's repr layout (see
 * numfmt.h), computed with integer arithmetic in the manner of Ryu (Ulf
 * Adams, PLDI 2018): the value v = m2 * 2^e2 and its rounding interval
 * (the halfway points to its neighbours) are scaled by a power of ten with
 * one 64 x 128-bit multiplication each against the generated tables of
 * core/pow5.c, giving vm < vr < vp as integers (floor); then decimal digits
 * are dropped while the interval still holds a shorter decimal, and the last
 * digit is rounded to the nearest (exact ties to even, which needs to know
 * whether the dropped digits were all zeros: tracked exactly). float32 goes
 * through the same code with its own mantissa width. It does not parse
 * input, allocate, or call the C library's conversions. */
#include "core/numfmt.h"

#include <stdbool.h>
#include <string.h>

#include "core/pow5.h"

#define POW5_BITS 125     /* bits of gd_pow5_split entries */
#define POW5_INV_BITS 125 /* bits of gd_pow5_inv_split entries, less one */

/* floor(e * log10(2)) for 0 <= e <= 1650; floor(e * log10(5)) for 0 <= e <=
 * 2620; bitlen(5^e) for 0 <= e <= 3528 (scripts/gen_pow5.py checks all
 * three over those ranges). */
static inline int log10_pow2(int e) { return (int)(((uint32_t)e * 78913) >> 18); }
static inline int log10_pow5(int e) { return (int)(((uint32_t)e * 732923) >> 20); }
static inline int pow5_bits(int e) { return (int)(((uint32_t)e * 1217359) >> 19) + 1; }

static inline bool multiple_of_pow5(uint64_t v, int p) {
    for (; p > 0; p--) {
        if (v % 5) return false;
        v /= 5;
    }
    return true;
}

static inline bool multiple_of_pow2(uint64_t v, int p) { return (v & ((1ull << p) - 1)) == 0; }

/* floor(m * mul / 2^j) for a 128-bit mul and j >= 64 (the product has at
 * most 64 + 128 bits; its quotient fits 64 bits for the table's shifts). */
static inline uint64_t mul_shift(uint64_t m, const uint64_t mul[2], int j) {
    unsigned __int128 lo = (unsigned __int128)m * mul[0];
    unsigned __int128 hi = (unsigned __int128)m * mul[1];
    return (uint64_t)((hi + (lo >> 64)) >> (j - 64));
}

/* The shortest decimal output * 10^*exp10 in v's rounding interval, the
 * nearest to v among those (ties to even). v = m2 * 2^e2 > 0 where m2 has
 * the hidden bit (when normal); lower_closer: v is a power of two above the
 * smallest normal (its lower neighbour is half as far). The interval's ends
 * belong to it when m2 is even (round-half-even reads them back as v). */
static uint64_t shortest(uint64_t m2, int e2, bool lower_closer, int *exp10) {
    e2 -= 2; /* mv = 4 m2: room for the halfway points as integers */
    const bool accept_bounds = (m2 & 1) == 0;
    const uint64_t mv = 4 * m2;
    const uint32_t mm_shift = !lower_closer; /* mm = mv - 1 - mm_shift */
    uint64_t vr, vp, vm;
    int e10;
    bool vm_zeros = false, vr_zeros = false;
    if (e2 >= 0) {
        /* Divide by 10^q = multiply by 2^k / 5^q, shift by e2 and q. */
        const int q = log10_pow2(e2) - (e2 > 3);
        e10 = q;
        const int k = POW5_INV_BITS + pow5_bits(q) - 1;
        const int i = -e2 + q + k;
        vr = mul_shift(mv, gd_pow5_inv_split[q], i);
        vp = mul_shift(mv + 2, gd_pow5_inv_split[q], i);
        vm = mul_shift(mv - 1 - mm_shift, gd_pow5_inv_split[q], i);
        if (q <= 21) {
            /* At most one of mm, mv, mp is a multiple of 5; only then can
             * its scaled value be exact (q >= 22: 5^q exceeds mv). */
            if (mv % 5 == 0) vr_zeros = multiple_of_pow5(mv, q);
            else if (accept_bounds) vm_zeros = multiple_of_pow5(mv - 1 - mm_shift, q);
            else vp -= multiple_of_pow5(mv + 2, q); /* exact upper end is excluded */
        }
    } else {
        /* Multiply by 5^i = 10^-e2 / 2^-e2, keeping q digits in reserve. */
        const int q = log10_pow5(-e2) - (-e2 > 1);
        e10 = q + e2;
        const int i = -e2 - q;
        const int k = pow5_bits(i) - POW5_BITS;
        const int j = q - k;
        vr = mul_shift(mv, gd_pow5_split[i], j);
        vp = mul_shift(mv + 2, gd_pow5_split[i], j);
        vm = mul_shift(mv - 1 - mm_shift, gd_pow5_split[i], j);
        if (q <= 1) {
            /* mv = 4 m2 has two factors of two: vr exact; mm is odd unless
             * mm_shift is 1 (mm = mv - 2), mp = mv + 2 has one factor. */
            vr_zeros = true;
            if (accept_bounds) vm_zeros = mm_shift == 1;
            else vp--;
        } else if (q < 63) {
            /* The product v * 5^i / 2^q is exact iff 2^q divides mv. */
            vr_zeros = multiple_of_pow2(mv, q);
        }
    }
    int removed = 0;
    unsigned last = 0; /* the last digit dropped from vr */
    if (vm_zeros || vr_zeros) {
        /* Rare: an end of the interval or v itself is a short decimal. */
        while (vp / 10 > vm / 10) {
            vm_zeros &= vm % 10 == 0;
            vr_zeros &= last == 0;
            last = (unsigned)(vr % 10);
            vr /= 10, vp /= 10, vm /= 10;
            removed++;
        }
        if (vm_zeros) {
            /* The lower end is an exact, acceptable decimal: drop its zeros. */
            while (vm % 10 == 0) {
                vr_zeros &= last == 0;
                last = (unsigned)(vr % 10);
                vr /= 10, vp /= 10, vm /= 10;
                removed++;
            }
        }
        if (vr_zeros && last == 5 && vr % 2 == 0) last = 4; /* exact tie: to even */
        *exp10 = e10 + removed;
        return vr + ((vr == vm && (!accept_bounds || !vm_zeros)) || last >= 5);
    }
    /* Common: no end is exact, no tie possible. Two digits at a time
     * first: most values lose one or two. */
    if (vp / 100 > vm / 100) {
        last = (unsigned)(vr % 100) / 10;
        vr /= 100, vp /= 100, vm /= 100;
        removed += 2;
    }
    while (vp / 10 > vm / 10) {
        last = (unsigned)(vr % 10);
        vr /= 10, vp /= 10, vm /= 10;
        removed++;
    }
    *exp10 = e10 + removed;
    return vr + (vr == vm || last >= 5);
}

/* "00" "01" ... "99": two digits at a time. */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

/* How many decimal digits v (>= 1) has: from its bit length (log10(2) ~
 * 1233 / 4096 rounds the estimate down by at most one digit), then one
 * comparison. */
static const uint64_t pow10_u64[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
                                       10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
                                       100000000000ull, 1000000000000ull, 10000000000000ull,
                                       100000000000000ull, 1000000000000000ull, 10000000000000000ull,
                                       100000000000000000ull, 1000000000000000000ull,
                                       10000000000000000000ull};

static inline int digit_count(uint64_t v) {
    int t = ((64 - __builtin_clzll(v)) * 1233) >> 12; /* <= digits, >= digits - 1 */
    return t + (t < 20 && v >= pow10_u64[t]);
}

/* Four digits of v < 10000 at o, two pairs computed apart. */
static inline void put4(char *o, uint32_t v) {
    memcpy(o, digit_pairs + 2 * (v / 100), 2);
    memcpy(o + 2, digit_pairs + 2 * (v % 100), 2);
}

/* v's n digits (n = digit_count(v)) at o[0..n): the last eight as two
 * independent groups of four (short dependency chains: the divisions of
 * a 17-digit value otherwise run one after the other), the rest two at a
 * time. */
static inline void put_digits(char *o, uint64_t v, int n) {
    char *p = o + n;
    while (v >= 100000000) {
        uint32_t lo = (uint32_t)(v % 100000000);
        v /= 100000000;
        p -= 8;
        put4(p, lo / 10000);
        put4(p + 4, lo % 10000);
    }
    uint32_t w = (uint32_t)v;
    while (w >= 100) {
        unsigned r = w % 100;
        w /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (w >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * w, 2);
    } else {
        *--p = (char)('0' + w);
    }
}

/* Python's repr layout of d x 10^e10 (d >= 1 without trailing zeros, the
 * sign given apart): fixed notation for decimal exponents in [-4, 16),
 * exponent notation (at least two exponent digits) otherwise. The digits
 * are written once, in place, and moved at most once to open the point. */
static int repr_layout(char *out, bool neg, uint64_t d, int e10) {
    int o = 0;
    if (neg) out[o++] = '-';
    int nd = digit_count(d), exp = e10 + nd - 1;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            put_digits(out + o, d, nd);
            if (nd > exp + 1) { /* d.ddd: open the point after exp + 1 digits */
                memmove(out + o + exp + 2, out + o + exp + 1, (size_t)(nd - exp - 1));
                out[o + exp + 1] = '.';
                o += nd + 1;
            } else { /* ddd000.0 */
                o += nd;
                for (int i = nd; i <= exp; i++) out[o++] = '0';
                out[o++] = '.', out[o++] = '0';
            }
        } else {
            out[o++] = '0', out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            put_digits(out + o, d, nd);
            o += nd;
        }
    } else {
        put_digits(out + o + 1, d, nd); /* one to the right, then the lead digit moves back */
        out[o] = out[o + 1];
        if (nd > 1) {
            out[o + 1] = '.';
            o += nd + 1;
        } else {
            o += 1;
        }
        out[o++] = 'e';
        out[o++] = exp < 0 ? '-' : '+';
        int ax = exp < 0 ? -exp : exp;
        if (ax >= 100) out[o++] = (char)('0' + ax / 100);
        out[o++] = (char)('0' + ax / 10 % 10);
        out[o++] = (char)('0' + ax % 10);
    }
    out[o] = '\0';
    return o;
}

static int put_word(char *buf, const char *s) {
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return (int)n;
}

/* A finite value from its IEEE fields: sign, biased exponent, mantissa
 * (without the hidden bit) of a format with mbits mantissa bits and the
 * given bias. */
static int fmt_ieee(char *buf, bool neg, uint32_t bexp, uint64_t mant, int mbits, int bias) {
    if (bexp == 0 && mant == 0) return put_word(buf, neg ? "-0.0" : "0.0");
    int e2 = bexp ? (int)bexp - bias - mbits : 1 - bias - mbits;
    uint64_t m2 = bexp ? (1ull << mbits) | mant : mant;
    uint64_t d;
    int e10 = 0;
    if (e2 <= 0 && -e2 <= mbits && (m2 & ((1ull << -e2) - 1)) == 0) {
        /* An integer below 2^(mbits + 1) (< 10^16: fixed notation): its ulp
         * is at most 1 and every decimal of fewer significant digits is at
         * least 1 away, so its own digits are the shortest. */
        d = m2 >> -e2;
    } else {
        d = shortest(m2, e2, mant == 0 && bexp > 1, &e10);
    }
    while (d % 10 == 0) d /= 10, e10++;
    return repr_layout(buf, neg, d, e10);
}

int gd_fmt_double(char buf[32], double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    bool neg = bits >> 63;
    uint32_t bexp = (uint32_t)(bits >> 52) & 0x7ff;
    uint64_t mant = bits & ((1ull << 52) - 1);
    if (bexp == 0x7ff) return put_word(buf, mant ? "NaN" : neg ? "-Infinity" : "Infinity");
    return fmt_ieee(buf, neg, bexp, mant, 52, 1023);
}

int gd_fmt_float(char buf[32], float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bool neg = bits >> 31;
    uint32_t bexp = (bits >> 23) & 0xff;
    uint64_t mant = bits & ((1u << 23) - 1);
    if (bexp == 0xff) return put_word(buf, mant ? "NaN" : neg ? "-Infinity" : "Infinity");
    return fmt_ieee(buf, neg, bexp, mant, 23, 127);
}
