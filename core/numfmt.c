/* numfmt.c - shortest round-trip decimals in Python's repr layout (see
 * numfmt.h): find the fewest significant digits that read back exactly with
 * "%.*e", then lay the digits out as repr does. */
#include "core/numfmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's repr layout from a "%.*e" rendering ("-d.ddde+XX"): digits with
 * trailing zeros dropped, then fixed notation for exponents in [-4, 16),
 * exponent notation with at least two exponent digits otherwise. */
static int repr_from_e(char *out, const char *e) {
    char dig[40];
    int nd = 0, o = 0;
    const char *s = e;
    if (*s == '-') out[o++] = '-', s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') dig[nd++] = *s;
    int exp = *s == 'e' ? atoi(s + 1) : 0;
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

int gd_fmt_double(char buf[32], double v) {
    if (!isfinite(v)) return fmt_special(buf, v);
    if (v == 0) return sprintf(buf, signbit(v) ? "-0.0" : "0.0");
    /* Integers below 10^15 have at most 15 digits: their shortest form is the
     * integer itself, and the exponent is < 16, so fixed notation. */
    if (fabs(v) < 1e15 && v == trunc(v)) return sprintf(buf, "%lld.0", (long long)v);
    char tmp[40];
    /* For a normal double, any decimal of <= 15 significant digits that
     * round-trips is the one 15-digit rounding finds (15-digit decimals are
     * spaced wider than a double's ulp), so trying 15, 16, 17 digits in turn
     * yields the shortest. Subnormals have fewer bits (5e-324 has one), so
     * there every length from 1 up is tried. */
    for (int p = fabs(v) < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (p == 17 || strtod(tmp, NULL) == v) break;
    }
    return repr_from_e(buf, tmp);
}

int gd_fmt_float(char buf[32], float f) {
    if (!isfinite(f)) return fmt_special(buf, f);
    if (f == 0) return sprintf(buf, signbit(f) ? "-0.0" : "0.0");
    if (fabsf(f) < 1e6f && f == truncf(f)) return sprintf(buf, "%lld.0", (long long)f);
    char tmp[40];
    /* As for doubles: 6-digit decimals are spaced wider than a normal
     * float's ulp; subnormal floats try every length. */
    for (int p = fabsf(f) < FLT_MIN ? 1 : 6; p <= 9; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, (double)f);
        if (p == 9 || strtof(tmp, NULL) == f) break;
    }
    return repr_from_e(buf, tmp);
}
