/* test_numfmt.c - the number printer (core/numfmt.c) against its contract:
 * every printed float64 reads back (strtod) and no decimal of one digit fewer
 * reads back, over every power of two and a million random bit patterns;
 * float32 likewise (strtof); exact strings against Python's repr for classic
 * values. The "no shorter" check is independent of the printer: it takes the
 * C library's correctly rounded decimal of one digit fewer and its
 * neighbours, which include the decimals just below and just above the value
 * at that precision (the only ones of that length that could read back). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"
#include "tests.h"

/* Significant digits of a printed number: "100.0" has 1, "0.0001" 1,
 * "1234567890123456.0" 16, "7.120236347223045e-307" 16. */
static int sig_digits(const char *s) {
    char d[40];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && (n > 0 || *s != '0')) d[n++] = *s;
    while (n > 0 && d[n - 1] == '0') n--;
    return n;
}

/* Whether "M e x" reads back to v (as a float32 when f32). */
static int reads_back(uint64_t m, int x, double v, int f32) {
    char s[48];
    snprintf(s, sizeof s, "%" PRIu64 "e%d", m, x);
    return f32 ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v;
}

/* Whether some decimal of n significant digits (n <= 16) reads back to v > 0.
 * "%.*e" gives the nearest one, M x 10^x. If it does not read back, what it
 * reads as says on which side of v it lies (strtod is monotonic), and the
 * nearest on the other side is M - 1 or M + 1, or, when M is a power of ten
 * above v, 10M - 1 on the finer grid just below it. */
static int some_decimal_reads_back(double v, int n, int f32) {
    char s[48];
    snprintf(s, sizeof s, "%.*e", n - 1, v);
    uint64_t m = 0;
    const char *p = s;
    for (; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') m = m * 10 + (uint64_t)(*p - '0');
    int x = atoi(p + 1) - (n - 1);
    uint64_t pow10 = 1;
    for (int i = 1; i < n; i++) pow10 *= 10;
    if (reads_back(m, x, v, f32)) return 1;
    double r = f32 ? (double)strtof(s, NULL) : strtod(s, NULL);
    if (r < v) return reads_back(m + 1, x, v, f32);
    if (m == pow10) return reads_back(10 * m - 1, x - 1, v, f32);
    return reads_back(m - 1, x, v, f32);
}

/* The contract for one finite value: reads back, has a '.' or an exponent,
 * and no string of one digit fewer reads back. Fails the test with the
 * printed string otherwise. Check calls only on failure: each passing
 * ck_assert costs a write to Check's pipe, too slow for millions of values. */
static void ck_shortest(double v, int f32) {
    char buf[32];
    int len = f32 ? gd_fmt_float(buf, (float)v) : gd_fmt_double(buf, v);
    if (len != (int)strlen(buf)) ck_abort_msg("%s for %a: returned length %d", buf, v, len);
    int back = f32 ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v;
    if (!back) ck_abort_msg("%s does not read back to %a", buf, v);
    if (!strchr(buf, '.') && !strchr(buf, 'e')) ck_abort_msg("%s lacks a '.' or an exponent", buf);
    int n = sig_digits(buf);
    if (n < 1 || n > (f32 ? 9 : 17)) ck_abort_msg("%s: %d digits", buf, n);
    if (n > 1 && some_decimal_reads_back(fabs(v), n - 1, f32))
        ck_abort_msg("%s for %a: %d digits read back too", buf, v, n - 1);
}

/* How many random bit patterns: GD_NUMFMT_PATTERNS, else a million (a
 * hundred thousand under AddressSanitizer); never fewer than a thousand. */
static long pattern_count(void) {
#if defined(__SANITIZE_ADDRESS__)
    long n = 100000;
#else
    long n = 1000000;
#endif
    const char *e = getenv("GD_NUMFMT_PATTERNS");
    if (e && *e) n = atol(e);
    return n < 1000 ? 1000 : n;
}

static uint64_t xorshift64(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

START_TEST(double_powers_of_two) {
    for (int e = -1074; e <= 1023; e++) {
        ck_shortest(ldexp(1.0, e), 0);
        ck_shortest(-ldexp(1.0, e), 0);
    }
}
END_TEST

START_TEST(double_random_bits) {
    uint64_t s = 0x2545F4914F6CDD1Dull;
    long want = pattern_count();
    for (long done = 0; done < want;) {
        uint64_t b = xorshift64(&s);
        double v;
        memcpy(&v, &b, 8);
        if (!isfinite(v)) continue;
        ck_shortest(v, 0);
        done++;
    }
}
END_TEST

/* Subnormals have fewer bits, so shorter strings: their own random run. */
START_TEST(double_random_subnormals) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < pattern_count() / 10; i++) {
        uint64_t b = xorshift64(&s) & ((1ull << 52) - 1);
        b >>= b & 63; /* every magnitude of subnormal, 5e-324 included */
        double v;
        memcpy(&v, &b, 8);
        if (v != 0) ck_shortest(v, 0);
    }
}
END_TEST

START_TEST(float_powers_of_two) {
    for (int e = -149; e <= 127; e++) {
        ck_shortest(ldexp(1.0, e), 1);
        ck_shortest(-ldexp(1.0, e), 1);
    }
}
END_TEST

START_TEST(float_random_bits) {
    uint64_t s = 0xD1B54A32D192ED03ull;
    long want = pattern_count();
    for (long done = 0; done < want;) {
        uint32_t b = (uint32_t)(xorshift64(&s) >> 32);
        float f;
        memcpy(&f, &b, 4);
        if (!isfinite(f)) continue;
        ck_shortest(f, 1);
        done++;
    }
}
END_TEST

/* Expected strings computed by Python 3 (repr(v), v given by v.hex()). */
static const struct {
    double v;
    const char *repr;
} python_repr[] = {
    {0x1.999999999999ap-4, "0.1"},
    {0x1.4f8b588e368f1p-17, "1e-05"},
    {0x1.a36e2eb1c432dp-14, "0.0001"},
    {0x1.0624dd2f1a9fcp-10, "0.001"},
    {0x1.1c37937e08000p+53, "1e+16"},
    {0x1.c6bf526340000p+49, "1000000000000000.0"},
    {0x1.18b54f22aeb00p+50, "1234567890123456.0"},
    {0x1.1c37937e07fffp+53, "9999999999999998.0"},
    {0x1.b69b4ba630f35p+56, "1.2345678901234568e+17"}, /* 123456789012345680.0 */
    {0x1.0000000000000p-1017, "7.120236347223045e-307"},
    {0x1.0000000000000p-1021, "4.450147717014403e-308"},
    {0x1.0000000000000p-1022, "2.2250738585072014e-308"},
    {0x0.0000000000001p-1022, "5e-324"},
    {0x0.0000000000007p-1022, "3.5e-323"},
    {0x0.0000000000020p-1022, "1.6e-322"},
    {0x1.fffffffffffffp+1023, "1.7976931348623157e+308"},
    {0x1.0000000000000p+1000, "1.0715086071862673e+301"},
    {0x1.0000000000000p-1000, "9.332636185032189e-302"},
    {0x1.0000000000000p+63, "9.223372036854776e+18"},
    {0x1.0000000000000p+60, "1.152921504606847e+18"},
    {0x1.0000000000000p+53, "9007199254740992.0"},
    {0x1.0000000000000p-44, "5.684341886080802e-14"},
    {0x1.0f0cf064dd592p+73, "1e+22"},
    {0x1.52d02c7e14af6p+76, "1e+23"},
    {0x1.3333333333334p-2, "0.30000000000000004"},
    {0x1.5555555555555p-2, "0.3333333333333333"},
    {0x1.edd2f1a9fbe77p+6, "123.456"},
    {-0x1.49da7e361ce4cp-33, "-1.5e-10"},
    {0x1.9000000000000p+6, "100.0"},
    {-0.0, "-0.0"},
    {0.0, "0.0"},
    /* two shortest candidates equally near: the even digit, as repr */
    {0x1.0000000000001p+50, "1125899906842624.2"},
    {0x1.0000000000003p+50, "1125899906842624.8"},
};

START_TEST(double_as_python_repr) {
    for (size_t i = 0; i < sizeof python_repr / sizeof python_repr[0]; i++) {
        char buf[32];
        int n = gd_fmt_double(buf, python_repr[i].v);
        ck_assert_str_eq(buf, python_repr[i].repr);
        ck_assert_int_eq(n, (int)strlen(buf));
    }
}
END_TEST

/* float32: the shortest decimal that reads back as a float32, in the same
 * layout (computed exactly with Python's fractions). */
static const struct {
    float v;
    const char *repr;
} float_shortest[] = {
    {0x1p-149f, "1e-45"},
    {0x1p-126f, "1.1754944e-38"},
    {0x1p+87f, "1.5474251e+26"},
    {0x1p+90f, "1.2379401e+27"},
    {0x1p+86f, "7.7371252e+25"},
    {0x1.fffffep+127f, "3.4028235e+38"},
    {0x1.99999ap-4f, "0.1"},
    {0x1.0c49bap+21f, "2197815.2"},
    {0x1.0c49bep+21f, "2197815.8"}, /* 2197815.75: .7 and .8 equally near, the even digit */
    {16777216.0f, "16777216.0"},
    {-0.0f, "-0.0"},
};

START_TEST(float_exact_strings) {
    for (size_t i = 0; i < sizeof float_shortest / sizeof float_shortest[0]; i++) {
        char buf[32];
        gd_fmt_float(buf, float_shortest[i].v);
        ck_assert_str_eq(buf, float_shortest[i].repr);
    }
}
END_TEST

Suite *suite_numfmt(void) {
    Suite *s = suite_create("numfmt");
    TCase *tc = tcase_create("shortest");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, double_as_python_repr);
    tcase_add_test(tc, float_exact_strings);
    tcase_add_test(tc, double_powers_of_two);
    tcase_add_test(tc, float_powers_of_two);
    tcase_add_test(tc, double_random_bits);
    tcase_add_test(tc, double_random_subnormals);
    tcase_add_test(tc, float_random_bits);
    suite_add_tcase(s, tc);
    return s;
}
