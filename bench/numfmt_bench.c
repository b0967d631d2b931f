/* numfmt_bench.c - the number printer before and after issue 10, timed and
 * compared: N random doubles (default 10^7; argv[1] overrides) printed by
 * the old printer (bench/numfmt_old.c: snprintf("%.*e") + strtod) and by
 * core/numfmt.c, ns per number for each, and every pair of strings compared
 * (any difference is printed and fails the run: the old printer is an
 * independent oracle for "shortest, and the nearest of the shortest").
 * Three sets: random bit patterns (every magnitude), uniform [0, 1) values
 * (what tensors hold), and float32 random bit patterns. Then the reader:
 * the uniform set's strings read by strtod and by gd_parse_double (every
 * result compared bit for bit). Times are the
 * process's CPU time (steadier than wall time on a shared machine). Not a
 * test: run by `make bench-numfmt`. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/numfmt.h"
#include "core/numparse.h"

int old_fmt_double(char buf[32], double v);
int old_fmt_float(char buf[32], float f);

static uint64_t xorshift64(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints every value with fmt, returns seconds; out gets the strings
 * (32 bytes each) when non-NULL. */
static double run_double(int (*fmt)(char *, double), const double *v, long n, char *out) {
    char buf[32];
    size_t sink = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        char *b = out ? out + 32 * i : buf;
        sink += (size_t)fmt(b, v[i]);
    }
    double t = now() - t0;
    if (sink == 0) puts("");
    return t;
}

static double run_float(int (*fmt)(char *, float), const float *v, long n, char *out) {
    char buf[32];
    size_t sink = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        char *b = out ? out + 32 * i : buf;
        sink += (size_t)fmt(b, v[i]);
    }
    double t = now() - t0;
    if (sink == 0) puts("");
    return t;
}

static long compare(const char *a, const char *b, long n, const char *set) {
    long bad = 0;
    for (long i = 0; i < n; i++)
        if (strcmp(a + 32 * i, b + 32 * i) && bad++ < 10)
            printf("  %s #%ld: old %s new %s\n", set, i, a + 32 * i, b + 32 * i);
    return bad;
}

/* Reads the n strings (32 bytes apart) with strtod (mine = 0) or
 * gd_parse_double into out; returns seconds. */
static double run_parse(const char *s, long n, double *out, int mine) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
        const char *p = s + 32 * i;
        if (mine) {
            unsigned fl;
            gd_parse_double(p, p + strlen(p), &out[i], &fl);
        } else {
            out[i] = strtod(p, NULL);
        }
    }
    return now() - t0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    double *v = malloc(sizeof *v * (size_t)n);
    float *f = malloc(sizeof *f * (size_t)n);
    char *s_old = malloc(32 * (size_t)n), *s_new = malloc(32 * (size_t)n);
    if (!v || !f || !s_old || !s_new) return 2;
    memset(s_old, 0, 32 * (size_t)n); /* no page faults inside the timed loops */
    memset(s_new, 0, 32 * (size_t)n);
    long bad = 0;
    uint64_t s = 0x853c49e6748fea9bull;
    printf("%-26s %12s %12s %8s\n", "set (n values)", "old ns/num", "new ns/num", "speedup");
    for (int set = 0; set < 3; set++) {
        const char *name = set == 0 ? "float64 random bits" : set == 1 ? "float64 uniform [0,1)" : "float32 random bits";
        for (long i = 0; i < n;) {
            uint64_t b = xorshift64(&s);
            if (set == 0) {
                memcpy(&v[i], &b, 8);
                if (isfinite(v[i])) i++;
            } else if (set == 1) {
                v[i++] = (double)(b >> 11) * 0x1p-53;
            } else {
                uint32_t b32 = (uint32_t)(b >> 32);
                memcpy(&f[i], &b32, 4);
                if (isfinite(f[i])) i++;
            }
        }
        double t_old, t_new;
        if (set < 2) {
            t_old = run_double(old_fmt_double, v, n, s_old);
            t_new = run_double(gd_fmt_double, v, n, s_new);
        } else {
            t_old = run_float(old_fmt_float, f, n, s_old);
            t_new = run_float(gd_fmt_float, f, n, s_new);
        }
        long b = compare(s_old, s_new, n, name);
        bad += b;
        printf("%-26s %12.1f %12.1f %7.1fx%s\n", name, 1e9 * t_old / (double)n, 1e9 * t_new / (double)n, t_old / t_new,
               b ? "  STRINGS DIFFER" : "");
        if (set == 1) {
            /* the reader, on what the printer just wrote (v is free: refilled next set) */
            double *ref = malloc(sizeof *ref * (size_t)n);
            if (!ref) return 2;
            memset(ref, 0, sizeof *ref * (size_t)n);
            double p_old = run_parse(s_new, n, ref, 0), p_new = run_parse(s_new, n, v, 1);
            long pb = 0;
            for (long i = 0; i < n; i++) pb += memcmp(&ref[i], &v[i], 8) != 0;
            bad += pb;
            printf("%-26s %12.1f %12.1f %7.1fx%s\n", "read back (strtod / new)", 1e9 * p_old / (double)n,
                   1e9 * p_new / (double)n, p_old / p_new, pb ? "  VALUES DIFFER" : "");
            free(ref);
        }
    }
    printf("%ld differences in %ld x 3 values\n", bad, n);
    return bad != 0;
}
