/* test_numparse.c - the decimal reader (core/numparse.c) against strtod, bit
 * for bit: a fixed corpus (subnormals, the smallest and largest normals,
 * overflow and underflow, exponents far out of range, leading zeros,
 * negative zero, 17 to 800 digits), exact halfway points between adjacent
 * doubles written out in full (both round-to-even directions) and their
 * neighbours one unit in the 780th digit away, and a million strings printed
 * from random doubles at 1 to 20 significant digits, and a million shortest
 * strings of core/numfmt read back. Also the grammar (what
 * is a number, where it ends) and the integer flags. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/numparse.h"
#include "tests.h"

/* Fails unless gd_parse_double reads all of s as strtod does, bit for bit. */
static void ck_same(const char *s) {
    size_t n = strlen(s);
    double mine, ref;
    unsigned fl;
    char *endp;
    ref = strtod(s, &endp);
    const char *e = gd_parse_double(s, s + n, &mine, &fl);
    if (!e) ck_abort_msg("%.80s: not read as a number", s);
    if (e != s + n || endp != s + n) ck_abort_msg("%.80s: read %td bytes, strtod %td", s, e - s, endp - s);
    if (memcmp(&mine, &ref, 8)) ck_abort_msg("%.120s (%zu chars): %a, strtod %a", s, n, mine, ref);
}

static const char *const corpus[] = {
    "0", "-0", "0.0", "-0.0", "0e0", "0e999999999999", "-0e-5", "1", "-1", "9", "10", "123456789",
    "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740994", "9007199254740995",
    "18446744073709551615", "18446744073709551616", "99999999999999999999", "100000000000000000000",
    "123456789012345678901234567890", "0.1", "0.2", "0.3", "0.30000000000000004", "3.141592653589793",
    "2.718281828459045", "1e22", "1e23", "1e-22", "1e-23", "8.98846567431158e307", "1.7976931348623157e308",
    "1.7976931348623158e308", "1.7976931348623159e308", "1.797693134862315807e308", "1.7976931348623157e309",
    "1e308", "1e309", "-1e309", "1e400", "1e99999999999999999999", "2.2250738585072014e-308",
    "2.2250738585072011e-308", "2.2250738585072012e-308", "2.225073858507201136057409796709131975934819546351645648e-308",
    "4.9406564584124654e-324", "5e-324", "4e-324", "3e-324", "2.4703282292062328e-324",
    "2.4703282292062327e-324", "2.470328229206232720882538e-324", "2.47032822920623272088e-324", "1e-324",
    "1e-400", "1e-99999999999999999999", "-4.9406564584124654e-324", "1.5e-323", "9.8813129168249309e-324",
    "0000000000000000000000000000001", "000.0000000000000000000000000000001", "00000123.456000e-2",
    "0.000000000000000000000000000000000000000000000000000000000000000000000000000000001e80",
    "1000000000000000000000000000000000000000000000000000000000000000000000000000000e-80",
    "7.2057594037927933e16", "7.2057594037927934e16", "7.2057594037927935e16", "9007199254740993.0000000001",
    "9007199254740992.9999999999", "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124", "1.00000000000000011102230246251565404236316680908203126",
    "1.000000000000000111022302462515654042363166809082031250000000000000000000000000000000001",
    "123456789012345678901234567890e-30", "4.4501477170144023e-308", "4.4501477170144028e-308",
    "6.631236846766476e-316", "3.2379086165851934e-319", "1E5", "1e+5", "1e-5", "1E+05", "-12.5E-1",
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416"
    "692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959"
    "6223655736879934978150016e0",
};

START_TEST(corpus_against_strtod) {
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) ck_same(corpus[i]);
    char s[40];
    for (int k = 0; k <= 22; k++) {
        snprintf(s, sizeof s, "1e%d", k);
        ck_same(s);
    }
    for (int k = -350; k <= 320; k++) { /* every power of ten through the table and past both ends */
        snprintf(s, sizeof s, "1e%d", k);
        ck_same(s);
        snprintf(s, sizeof s, "9.999999999999999999e%d", k);
        ck_same(s);
        snprintf(s, sizeof s, "4.94065645841246544e%d", k);
        ck_same(s);
    }
}
END_TEST

static uint64_t xorshift64(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* The exact decimal of the midpoint between v > 0 and the next double up: a
 * long double holds it exactly (64-bit significand), and glibc prints a
 * binary fraction's full decimal expansion. Trailing zeros dropped. */
static void midpoint_text(char *buf, size_t cap, double v) {
    long double mid = ((long double)v + (long double)nextafter(v, INFINITY)) / 2;
    snprintf(buf, cap, "%.1100Le", mid);
    char *e = strchr(buf, 'e');
    char *z = e;
    while (z[-1] == '0') z--;
    if (z[-1] == '.') z--;
    memmove(z, e, strlen(e) + 1);
}

/* Replaces the last significant digit d of a midpoint text by d - 1 and
 * appends "9" (just below the midpoint) or appends "0...01" (just above). */
static void nudge(char *dst, size_t cap, const char *mid, int up) {
    const char *e = strchr(mid, 'e');
    size_t m = (size_t)(e - mid);
    if (up) {
        snprintf(dst, cap, "%.*s00000000000000000001%s", (int)m, mid, e);
    } else {
        snprintf(dst, cap, "%.*s", (int)m, mid);
        char *last = dst + m - 1;
        if (*last == '.' || *last < '1') { /* cannot happen: the midpoint ends in 5 */
            dst[0] = '\0';
            return;
        }
        (*last)--;
        snprintf(dst + m, cap - m, "9999999%s", e);
    }
}

START_TEST(halfway_cases) {
    static char mid[1400], near[1500];
    uint64_t s = 0x5DEECE66Dull;
    int long_ones = 0;
    for (int i = 0; i < 3000; i++) {
        uint64_t b = xorshift64(&s);
        /* spread over every exponent, subnormals included; even and odd mantissas alike */
        if (i % 3 == 0) b &= (1ull << 52) - 1;
        else b &= 0x7fefffffffffffffull;
        double v;
        memcpy(&v, &b, 8);
        if (v == 0 || !isfinite(nextafter(v, INFINITY))) continue;
        midpoint_text(mid, sizeof mid, v);
        ck_same(mid);
        long_ones += strlen(mid) > 700;
        nudge(near, sizeof near, mid, 1);
        ck_same(near);
        nudge(near, sizeof near, mid, 0);
        if (near[0]) ck_same(near);
    }
    ck_assert_int_gt(long_ones, 10); /* some midpoints really have 700+ digits */
    /* Both directions of a tie: 2^53 + 1 lies between an even mantissa below
     * and an odd one above (to 2^53); 2^53 + 3 between an odd one below and an
     * even one above (to 2^53 + 4). */
    ck_same("9007199254740993");
    ck_same("9007199254740995");
    ck_same("9007199254740993.0000000000000000000000000000000000000000000000001");
    ck_same("9007199254740992.9999999999999999999999999999999999999999999999999");
}
END_TEST

START_TEST(random_printed_doubles) {
    uint64_t s = 0x2545F4914F6CDD1Dull;
    char buf[64];
    for (long i = 0; i < 1000000; i++) {
        uint64_t b = xorshift64(&s);
        double v;
        memcpy(&v, &b, 8);
        if (!isfinite(v)) continue;
        int digits = 1 + (int)(i % 20);
        snprintf(buf, sizeof buf, (i & 32) ? "%.*e" : "%.*g", digits - (i & 32 ? 1 : 0), v);
        if (strchr(buf, 'n')) continue;
        size_t n = strlen(buf);
        double mine, ref = strtod(buf, NULL);
        unsigned fl;
        const char *e = gd_parse_double(buf, buf + n, &mine, &fl);
        if (!e || e != buf + n || memcmp(&mine, &ref, 8)) ck_abort_msg("%s: %a, strtod %a", buf, mine, ref);
    }
}
END_TEST

/* The printer's shortest strings often lie near an end of the value's
 * rounding interval: every one must read back to its double. */
START_TEST(shortest_strings_read_back) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    char buf[32];
    for (long i = 0; i < 1000000; i++) {
        uint64_t b = xorshift64(&s);
        double v;
        memcpy(&v, &b, 8);
        if (!isfinite(v)) continue;
        int n = gd_fmt_double(buf, v);
        double back;
        unsigned fl;
        if (gd_parse_double(buf, buf + n, &back, &fl) != buf + n || memcmp(&back, &v, 8))
            ck_abort_msg("%s: read as %a, printed from %a", buf, back, v);
    }
}
END_TEST

/* Random digit strings shaped to cross the reader's eight-at-a-time
 * path at every offset: integer parts of 0-24 digits, fractions of 0-40
 * digits with runs of leading zeros, an exponent or not, and the text's
 * end right after the number or a byte later (the path must not read
 * past it). Each is read as strtod reads it. */
START_TEST(digit_runs_against_strtod) {
    uint64_t s = 0xD1B54A32D192ED03ull;
    char buf[96];
    for (long i = 0; i < 400000; i++) {
        uint64_t r = xorshift64(&s);
        int n = 0, ni = (int)(r % 25), nf = (int)((r >> 5) % 41), zeros = (int)((r >> 11) % 12);
        if (r >> 63) buf[n++] = '-';
        if (ni == 0) buf[n++] = '0';
        for (int k = 0; k < ni; k++) buf[n++] = (char)('0' + (k == 0 ? 1 + xorshift64(&s) % 9 : xorshift64(&s) % 10));
        if (nf) {
            buf[n++] = '.';
            for (int k = 0; k < nf; k++) buf[n++] = (char)('0' + (k < zeros ? 0 : xorshift64(&s) % 10));
        }
        if ((r >> 17) & 1) n += snprintf(buf + n, 12, "e%d", (int)((r >> 20) % 700) - 350);
        buf[n] = ',';
        const char *end = buf + n + ((r >> 40) & 1);
        buf[n + 1] = '\0';
        double want = strtod(buf, NULL), got;
        unsigned fl;
        if (gd_parse_double(buf, end, &got, &fl) != buf + n || memcmp(&got, &want, 8))
            ck_abort_msg("%.*s: read as %a, strtod says %a", n, buf, got, want);
    }
}
END_TEST

START_TEST(grammar_and_flags) {
    static const char *const not_numbers[] = {"", "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-e5", "e5", "x",
                                              "- 1", "Infinity", "NaN"};
    for (size_t i = 0; i < sizeof not_numbers / sizeof not_numbers[0]; i++) {
        const char *t = not_numbers[i];
        double v;
        unsigned fl;
        const char *e = gd_parse_double(t, t + strlen(t), &v, &fl);
        /* "1." and "1e" end the number after "1" in strtod; JSON forbids both */
        if (e) ck_abort_msg("\"%s\" was read as a number", t);
    }
    static const struct {
        const char *s;
        size_t len;
        unsigned flags;
    } ends[] = {
        {"12,", 2, GD_NUM_INT},       {"-3]", 2, GD_NUM_INT},       {"1.5 ", 3, 0},
        {"2e3}", 3, 0},               {"9007199254740991", 16, GD_NUM_INT},
        {"9007199254740992", 16, GD_NUM_INT | GD_NUM_BIG},           {"-9007199254740992", 17, GD_NUM_INT | GD_NUM_BIG},
        {"12345678901234567890123", 23, GD_NUM_INT | GD_NUM_BIG},    {"1.0", 3, 0}, {"0", 1, GD_NUM_INT},
    };
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        double v;
        unsigned fl = 99;
        const char *t = ends[i].s;
        const char *e = gd_parse_double(t, t + strlen(t), &v, &fl);
        ck_assert_msg(e == t + ends[i].len, "%s: ends at %td", t, e ? e - t : -1);
        ck_assert_msg(fl == ends[i].flags, "%s: flags %u", t, fl);
    }
    /* never past end: "12" of "123" */
    double v;
    unsigned fl;
    const char *t = "123";
    ck_assert_ptr_eq(gd_parse_double(t, t + 2, &v, &fl), t + 2);
    ck_assert(v == 12.0);
    ck_assert_ptr_null(gd_parse_double(t, t, &v, &fl));
    t = "1.5e7";
    ck_assert_ptr_null(gd_parse_double(t, t + 2, &v, &fl)); /* "1." */
    ck_assert_ptr_null(gd_parse_double(t, t + 4, &v, &fl)); /* "1.5e" */
}
END_TEST

Suite *suite_numparse(void) {
    Suite *s = suite_create("numparse");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, corpus_against_strtod);
    tcase_add_test(tc, halfway_cases);
    tcase_add_test(tc, random_printed_doubles);
    tcase_add_test(tc, shortest_strings_read_back);
    tcase_add_test(tc, grammar_and_flags);
    tcase_add_test(tc, digit_runs_against_strtod);
    suite_add_tcase(s, tc);
    return s;
}
