/* numfmt_old.c - the printer gradd used before issue 10 (core/numfmt.c at
 * main 3410ea3), kept for bench/numfmt_bench.c to time and compare against.
 * Shortest round-trip decimals in Python's repr layout (see
 * numfmt.h). The digits come from the C library's correctly rounded
 * conversions ("%.*e" and strtod/strtof are exact in glibc): for each length
 * n, the two n-digit decimals nearest the value (below and above) are the
 * only ones that can read back if any n-digit decimal does, so checking the
 * correctly rounded one and, when it fails, its neighbour on the value's other
 * side finds the shortest decimal that reads back, and among those the nearest
 * (as repr picks). It does not parse input or allocate. */
int old_fmt_double(char buf[32], double v);
int old_fmt_float(char buf[32], float f);

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A positive decimal d[0].d[1]...d[n-1] x 10^exp, n significant digits. */
typedef struct {
    char d[24];
    int n, exp;
} decimal;

/* The digits and exponent of a "%.*e" rendering of a positive value. */
static void decimal_from_e(decimal *x, const char *e) {
    x->n = 0;
    for (; *e && *e != 'e'; e++)
        if (*e >= '0' && *e <= '9') x->d[x->n++] = *e;
    x->exp = *e == 'e' ? atoi(e + 1) : 0;
}

/* Adds dir (+1 or -1) in the last digit: the next n-digit decimal above or
 * below. 9.99 + 1 becomes 1.00e+1; 1.00 - 1 becomes 9.99e-1 (n digits on
 * the finer grid below a power of ten). */
static void decimal_step(decimal *x, int dir) {
    int i = x->n - 1;
    if (dir > 0) {
        while (i >= 0 && x->d[i] == '9') x->d[i--] = '0';
        if (i >= 0) {
            x->d[i]++;
        } else {
            x->d[0] = '1';
            x->exp++;
        }
    } else {
        while (i >= 0 && x->d[i] == '0') x->d[i--] = '9';
        x->d[i]--;
        if (x->d[0] == '0') {
            memmove(x->d, x->d + 1, (size_t)x->n - 1);
            x->d[x->n - 1] = '9';
            x->exp--;
        }
    }
}

/* The n-digit decimal nearest a (ties to even, as printf rounds), where full
 * is a's correctly rounded decimal of more than n digits. full decides unless
 * the digits it drops are exactly 5 then zeros (full's own rounding may hide
 * which side of the midpoint a lies); then printf rounds a itself. */
static void decimal_round(decimal *out, const decimal *full, int n, double a) {
    int half = full->d[n] == '5';
    for (int i = n + 1; half && i < full->n; i++) half = full->d[i] == '0';
    if (half) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.*e", n - 1, a);
        decimal_from_e(out, tmp);
        return;
    }
    memcpy(out->d, full->d, (size_t)n);
    out->n = n;
    out->exp = full->exp;
    if (full->d[n] >= '5') decimal_step(out, +1);
}

/* x as strtod reads it, as a double, or as strtof rounds it to a float. The
 * digits go as an integer with a scaled exponent ("ddddde-XX"): no decimal
 * point, so the locale's radix character cannot matter. */
static double decimal_read(const decimal *x, int f32) {
    char s[40];
    memcpy(s, x->d, (size_t)x->n);
    snprintf(s + x->n, sizeof s - (size_t)x->n, "e%d", x->exp - (x->n - 1));
    return f32 ? (double)strtof(s, NULL) : strtod(s, NULL);
}

/* The shortest decimal that reads back to a (> 0, finite; a float's value
 * when f32), the nearest to a among the shortest. max digits always read
 * back (17 for float64, 9 for float32). Up to uniq digits, at most one
 * decimal of each length can read back and it is the correctly rounded one
 * (such decimals are spaced wider than the value's ulp), so lengths up to
 * uniq need no neighbour check and shorter lengths show in uniq's trailing
 * zeros: the search starts at uniq. For subnormals (fewer bits) uniq is 0
 * and every length is tried from 1. */
static void shortest(decimal *out, double a, int f32, int max, int uniq) {
    char tmp[40];
    decimal full;
    snprintf(tmp, sizeof tmp, "%.*e", max - 1, a);
    decimal_from_e(&full, tmp);
    for (int n = uniq > 0 ? uniq : 1; n < max; n++) {
        decimal_round(out, &full, n, a);
        double r = decimal_read(out, f32);
        if (r == a) return;
        if (n <= uniq) continue;
        /* The nearest n-digit decimal lies outside a's rounding interval;
         * the nearest one on a's other side is the only other candidate. */
        decimal_step(out, r > a ? -1 : +1);
        if (decimal_read(out, f32) == a) return;
    }
    *out = full;
}

/* Python's repr layout of a decimal (sign given apart): digits with
 * trailing zeros dropped, then fixed notation for exponents in [-4, 16),
 * exponent notation with at least two exponent digits otherwise. */
static int repr_layout(char *out, int neg, const decimal *x) {
    const char *dig = x->d;
    int nd = x->n, exp = x->exp, o = 0;
    if (neg) out[o++] = '-';
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? dig[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) out[o++] = dig[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0', out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = dig[i];
        }
    } else {
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = dig[i];
        }
        o += sprintf(out + o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    out[o] = '\0';
    return o;
}

static int fmt_special(char *buf, double v) {
    const char *s = isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    strcpy(buf, s);
    return (int)strlen(s);
}

int old_fmt_double(char buf[32], double v) {
    if (!isfinite(v)) return fmt_special(buf, v);
    if (v == 0) return sprintf(buf, signbit(v) ? "-0.0" : "0.0");
    /* Integers below 10^15 have at most 15 digits: their shortest form is the
     * integer itself, and the exponent is < 16, so fixed notation. */
    if (fabs(v) < 1e15 && v == trunc(v)) return sprintf(buf, "%lld.0", (long long)v);
    decimal x;
    /* 15-digit decimals are spaced wider than a normal double's ulp. */
    shortest(&x, fabs(v), 0, 17, fabs(v) < DBL_MIN ? 0 : 15);
    return repr_layout(buf, signbit(v) != 0, &x);
}

int old_fmt_float(char buf[32], float f) {
    if (!isfinite(f)) return fmt_special(buf, f);
    if (f == 0) return sprintf(buf, signbit(f) ? "-0.0" : "0.0");
    if (fabsf(f) < 1e6f && f == truncf(f)) return sprintf(buf, "%lld.0", (long long)f);
    decimal x;
    /* 6-digit decimals are spaced wider than a normal float's ulp. */
    shortest(&x, fabs((double)f), 1, 9, fabsf(f) < FLT_MIN ? 0 : 6);
    return repr_layout(buf, signbit(f) != 0, &x);
}
