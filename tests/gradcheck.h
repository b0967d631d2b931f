/* gradcheck.h - op-level test harness: random tensors, detached nodes, a
 * forward call through the op table, and the central finite-difference check
 * of an op's backward rule. Used by the op tests; no engine involved. */
#ifndef GD_GRADCHECK_H
#define GD_GRADCHECK_H

#include <stdint.h>

#include "core/op.h"

typedef struct gc_rng {
    uint64_t s;
} gc_rng;

double gc_uniform(gc_rng *r, double lo, double hi);
uint64_t gc_next(gc_rng *r);

/* "2,3" -> [2, 3]; "" -> scalar. */
gd_shape gc_shape(const char *spec);
/* Uniform random float64 tensor of the given shape in [lo, hi). */
gd_tensor *gc_rand(gd_arena *a, gc_rng *r, const char *shape, double lo, double hi);
/* Like gc_rand, but |x| >= away from every value in `kinks` (e.g. 0 for relu). */
gd_tensor *gc_rand_away(gd_arena *a, gc_rng *r, const char *shape, double lo, double hi, const double *kinks,
                        int n_kinks, double away);
gd_tensor *gc_f64(gd_arena *a, const char *shape, const double *vals);
gd_tensor *gc_i64(gd_arena *a, const char *shape, const int64_t *vals);

/* A detached node of op `op` with n_in inputs named "in0", "in1", ...; its
 * attributes are zero (not given): set them before use. */
gd_node *gc_node(gd_arena *a, const char *op, int n_in);

/* Infer the output meta from the inputs' shapes/dtypes (attributes checked),
 * allocate the output, run the forward kernel (converting int64 inputs to
 * float64 unless the op takes int64). Returns 0 or an error code (err set). */
int gc_forward(gd_arena *a, gd_node *n, gd_tensor *const *in, gd_tensor **out, gd_error *err);

/* The backward rule's VJP for a random cotangent, against central finite
 * differences of sum(dout * f(x)) for each float64 input whose bit is set in
 * `mask`. Contributions in a broadcast shape are summed down first, as the
 * engine does. Returns the largest error over all checked elements, measured
 * as |analytic - numeric| / max(1, |analytic|, |numeric|); a failing forward or
 * backward returns 1e300. */
double gc_check(gd_arena *a, gc_rng *r, gd_node *n, gd_tensor *const *in, unsigned mask);

/* Tolerance the op tests use with gc_check (float64, central differences). */
#define GC_TOL 1e-6

#endif
