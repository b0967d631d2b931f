/* triad.c - STREAM's triad, a[i] = b[i] + s * c[i] over N float64, single
 * threaded: the memory bandwidth this machine gives one core right now,
 * measured in the same run as gradd's elementwise chain (bench/issue10.py,
 * targets table of issue 10, row 7). Built only by `make bench-http` /
 * `make bench-smoke`.
 *
 *   triad [--n N] [--reps R]
 *
 * The arrays are touched once before timing (no page faults in the timed
 * loop). Per rep: 3 x 8 x N bytes (read b, read c, write a; STREAM's
 * count, no write-allocate traffic). Prints
 *   RESULT triad n=N reps=R best_ms=... median_ms=... best_gbs=... median_gbs=... check=ok|BAD
 * check: every a[i] equals b[i] + s * c[i] after the last rep.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Kept out of line so that the compiler cannot fold the reps together. */
__attribute__((noinline)) static void triad(double *restrict a, const double *restrict b,
                                            const double *restrict c, double s, long n) {
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

int main(int argc, char **argv) {
    long n = 16L << 20;
    int reps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else break;
    }
    if (n < 1 || reps < 1) {
        fprintf(stderr, "usage: triad [--n N] [--reps R]\n");
        return 2;
    }
    double *a = malloc((size_t)n * 8), *b = malloc((size_t)n * 8), *c = malloc((size_t)n * 8);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!a || !b || !c || !t) {
        fprintf(stderr, "triad: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) a[i] = 0.0, b[i] = (double)(i % 1000), c[i] = 0.5 * (double)(i % 7);
    const double s = 3.0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        triad(a, b, c, s, n);
        t[r] = now_s() - t0;
    }
    int ok = 1;
    for (long i = 0; i < n && ok; i++) ok = a[i] == b[i] + s * c[i];
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double best = t[0], med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    double bytes = 3.0 * 8.0 * (double)n;
    printf("RESULT triad n=%ld reps=%d best_ms=%.3f median_ms=%.3f best_gbs=%.3f median_gbs=%.3f check=%s\n", n, reps,
           1e3 * best, 1e3 * med, bytes / best * 1e-9, bytes / med * 1e-9, ok ? "ok" : "BAD");
    free(a), free(b), free(c), free(t);
    return ok ? 0 : 1;
}
