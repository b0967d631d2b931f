/* gradcheck.c - see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gc_next(gc_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double gc_uniform(gc_rng *r, double lo, double hi) {
    return lo + (hi - lo) * (double)(gc_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

gd_shape gc_shape(const char *spec) {
    gd_shape s = {.rank = 0};
    const char *p = spec;
    while (*p) {
        char *end;
        s.dim[s.rank++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p) break;
    }
    return s;
}

gd_tensor *gc_rand(gd_arena *a, gc_rng *r, const char *shape, double lo, double hi) {
    return gc_rand_away(a, r, shape, lo, hi, NULL, 0, 0);
}

gd_tensor *gc_rand_away(gd_arena *a, gc_rng *r, const char *shape, double lo, double hi, const double *kinks,
                        int n_kinks, double away) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(a, &s, GD_F64, 0);
    for (int64_t i = 0; i < t->n; i++) {
        double v;
        int ok;
        do {
            v = gc_uniform(r, lo, hi);
            ok = 1;
            for (int k = 0; k < n_kinks; k++)
                if (fabs(v - kinks[k]) < away) ok = 0;
        } while (!ok);
        gd_f64(t)[i] = v;
    }
    return t;
}

gd_tensor *gc_f64(gd_arena *a, const char *shape, const double *vals) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(a, &s, GD_F64, 0);
    if (t->n) memcpy(t->data, vals, (size_t)t->n * 8);
    return t;
}

gd_tensor *gc_i64(gd_arena *a, const char *shape, const int64_t *vals) {
    gd_shape s = gc_shape(shape);
    gd_tensor *t = gd_tensor_new(a, &s, GD_I64, 0);
    if (t->n) memcpy(t->data, vals, (size_t)t->n * 8);
    return t;
}

gd_node *gc_node(gd_arena *a, const char *op, int n_in) {
    gd_node *n = gd_arena_alloc(a, sizeof *n);
    n->name = gd_arena_strdup(a, op);
    n->op = gd_op_find(op);
    if (!n->op) {
        fprintf(stderr, "gc_node: unknown op %s\n", op);
        abort();
    }
    n->n_in = n_in;
    n->attrs = gd_arena_alloc(a, sizeof *n->attrs);
    n->in = gd_arena_alloc(a, sizeof(int) * (size_t)(n_in + 1));
    n->in_names = gd_arena_alloc(a, sizeof(char *) * (size_t)(n_in + 1));
    for (int i = 0; i < n_in; i++) n->in_names[i] = gd_arena_printf(a, "in%d", i);
    return n;
}

int gc_forward(gd_arena *a, gd_node *n, gd_tensor *const *in, gd_tensor **out, gd_error *err) {
    gd_meta meta[16], om;
    const gd_tensor *conv[16];
    gd_limits lim = {0};
    for (int i = 0; i < n->n_in; i++) meta[i] = (gd_meta){in[i]->dtype, in[i]->shape};
    int rc = n->op->infer(n, meta, &lim, &om, err);
    if (rc) return rc;
    gd_tensor *o = gd_tensor_new(a, &om.shape, om.dtype, 0);
    if (!o) return gd_errorf(err, GD_E_TOO_LARGE, NULL, "gc_forward: out of arena");
    for (int i = 0; i < n->n_in; i++)
        conv[i] = (n->op->flags & GD_OPF_INT_OK) ? in[i] : gd_tensor_to_f64(a, in[i]);
    gd_kctx c = {.arena = a, .err = err, .node = n};
    rc = n->op->forward(&c, conv, o);
    if (rc) return rc;
    *out = o;
    return 0;
}

static double weighted(const gd_tensor *out, const gd_tensor *dout) {
    double s = 0;
    for (int64_t i = 0; i < out->n; i++)
        s += gd_f64(dout)[i] * (out->dtype == GD_F64 ? gd_f64(out)[i] : (double)gd_i64(out)[i]);
    return s;
}

double gc_check(gd_arena *a, gc_rng *r, gd_node *n, gd_tensor *const *in, unsigned mask) {
    gd_error err;
    gd_tensor *out;
    if (gc_forward(a, n, in, &out, &err)) {
        fprintf(stderr, "gc_check %s: forward failed: %s\n", n->op->name, err.message);
        return 1e300;
    }
    gd_tensor *dout = gd_tensor_new(a, &out->shape, GD_F64, 0);
    for (int64_t i = 0; i < dout->n; i++) gd_f64(dout)[i] = gc_uniform(r, -1, 1);
    int want[16] = {0};
    gd_tensor *din[16] = {0};
    const gd_tensor *conv[16];
    for (int i = 0; i < n->n_in; i++) {
        want[i] = (mask >> i) & 1;
        conv[i] = (n->op->flags & GD_OPF_INT_OK) ? in[i] : gd_tensor_to_f64(a, in[i]);
    }
    gd_kctx c = {.arena = a, .err = &err, .node = n};
    if (n->op->backward(&c, conv, out, dout, want, din)) {
        fprintf(stderr, "gc_check %s: backward failed: %s\n", n->op->name, err.message);
        return 1e300;
    }
    double worst = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!want[i]) continue;
        gd_tensor *x = in[i];
        double *g = gd_arena_buf(a, (size_t)(x->n ? x->n : 1) * 8, 1);
        if (din[i]) {
            if (gd_shape_eq(&din[i]->shape, &x->shape)) { if (x->n) memcpy(g, din[i]->data, (size_t)x->n * 8); }
            else gd_sum_to(g, &x->shape, gd_f64(din[i]), &din[i]->shape, NULL, NULL);
        }
        for (int64_t j = 0; j < x->n; j++) {
            double *xp = gd_f64(x) + j, x0 = *xp;
            double h = 1e-6 * fmax(1.0, fabs(x0));
            gd_tensor *o1, *o2;
            *xp = x0 + h;
            if (gc_forward(a, n, in, &o1, &err)) return 1e300;
            double fp = weighted(o1, dout);
            *xp = x0 - h;
            if (gc_forward(a, n, in, &o2, &err)) return 1e300;
            double fm = weighted(o2, dout);
            *xp = x0;
            gd_tensor_release(a, o1);
            gd_tensor_release(a, o2);
            double num = (fp - fm) / (2 * h);
            double e = fabs(g[j] - num) / fmax(1.0, fmax(fabs(g[j]), fabs(num)));
            if (e > worst) worst = e;
            if (e > GC_TOL)
                fprintf(stderr, "gc_check %s: input %d element %lld: analytic %.12g numeric %.12g\n", n->op->name, i,
                        (long long)j, g[j], num);
        }
    }
    return worst;
}
