/* check_float.c - `make check-float`: every finite float32 bit pattern
 * printed by gd_fmt_float, read back with strtof (must give the same
 * float), and checked to be the shortest: with the printed decimal D x 10^X
 * of n significant digits, no decimal of n - 1 digits reads back. The only
 * two candidates are trunc(D / 10) x 10^(X+1) and one grid step above: they
 * are the value's neighbours on the (n-1)-digit grid, or, if a grid point
 * lies between the value and the printed decimal, that point is one of
 * them (and it would read back, the set that reads back being an interval);
 * a power of ten between them is on that grid too. Decimals of fewer
 * digits are on the same grid. About 4.3 billion values: minutes to an
 * hour; not part of `make check`. Optional arguments: first and last bit
 * pattern (hex) to check a range. Prints the count and the time; exits 1 on
 * the first few failures. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/numfmt.h"

/* "<m>e<x>" into s. */
static void put_decimal(char *s, uint64_t m, int x) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    while (n) *s++ = tmp[--n];
    *s++ = 'e';
    if (x < 0) *s++ = '-', x = -x;
    if (x >= 10) *s++ = (char)('0' + x / 10);
    *s++ = (char)('0' + x % 10);
    *s = '\0';
}

/* The significant digits D (trailing zeros dropped) and exponent X of a
 * printed number, value = D x 10^X; returns the digit count. */
static int parse_printed(const char *p, uint64_t *d, int *x) {
    uint64_t m = 0;
    int n = 0, frac = 0, seen_point = 0, lead = 1;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') {
            seen_point = 1;
            continue;
        }
        if (*p < '0' || *p > '9') continue;
        if (seen_point) frac++;
        if (lead && *p == '0') continue;
        lead = 0;
        m = m * 10 + (uint64_t)(*p - '0');
        n++;
    }
    int e = *p == 'e' ? atoi(p + 1) : 0;
    e -= frac;
    while (n > 1 && m % 10 == 0) m /= 10, n--, e++;
    *d = m;
    *x = e;
    return n;
}

static int check_one(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    char buf[32], s[40];
    int len = gd_fmt_float(buf, f);
    if (len != (int)strlen(buf)) return printf("%08" PRIx32 ": %s: length %d\n", bits, buf, len), 1;
    float back = strtof(buf, NULL);
    if (memcmp(&back, &f, 4)) return printf("%08" PRIx32 ": %s reads back as %a\n", bits, buf, (double)back), 1;
    if (f == 0) return 0;
    uint64_t d;
    int x, n = parse_printed(buf, &d, &x);
    if (n > 9) return printf("%08" PRIx32 ": %s: %d digits\n", bits, buf, n), 1;
    if (n < 2) return 0;
    float a = fabsf(f);
    for (uint64_t c = d / 10; c <= d / 10 + 1; c++) {
        if (c == 0) continue;
        put_decimal(s, c, x + 1);
        if (strtof(s, NULL) == a) return printf("%08" PRIx32 ": %s, but %s reads back too\n", bits, buf, s), 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    uint64_t first = argc > 1 ? strtoull(argv[1], NULL, 16) : 0;
    uint64_t last = argc > 2 ? strtoull(argv[2], NULL, 16) : 0xffffffffu;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t checked = 0;
    int failures = 0;
    for (uint64_t b = first; b <= last; b++) {
        if (((b >> 23) & 0xff) == 0xff) continue; /* Infinity, NaN */
        failures += check_one((uint32_t)b);
        checked++;
        if (failures >= 10) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("check-float: %" PRIu64 " finite float32 values checked, %d failures, %.1f s\n", checked, failures, secs);
    return failures != 0;
}
