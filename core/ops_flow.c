/* ops_flow.c - ops that steer gradient flow rather than compute: stop_gradient,
 * where (elementwise select) and cond (lazy branch choice). Only the engine
 * knows that cond evaluates one branch; here cond just copies the taken one. */
#include <string.h>

#include "core/kernel.h"

/* Output dtype of a select: int64 only when both branches are int64. */
static gd_dtype select_dtype(gd_dtype a, gd_dtype b) { return a == GD_I64 && b == GD_I64 ? GD_I64 : GD_F64; }

/* Copy src into dst (same element count), converting int64 to float64 when
 * dst is float64, in pieces with a cancellation poll between them. Returns 0
 * or deadline_exceeded. */
static int copy_as(gd_kctx *c, gd_tensor *dst, const gd_tensor *src) {
    for (int64_t s = 0; s < dst->n; s += GD_POLL_ELEMS) {
        int rc;
        if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;
        int64_t e = dst->n - s < GD_POLL_ELEMS ? dst->n : s + GD_POLL_ELEMS;
        if (dst->dtype == src->dtype) memcpy(gd_i64(dst) + s, gd_i64(src) + s, (size_t)(e - s) * 8);
        else for (int64_t i = s; i < e; i++) gd_f64(dst)[i] = (double)gd_i64(src)[i];
    }
    return 0;
}

static int infer_stop(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    (void)n, (void)lim, (void)err;
    *out = in[0];
    return 0;
}

static int forward_stop(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return copy_as(c, out, in[0]);
}

static int infer_where(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    int rc = gd_infer_elementwise(n, in, 3, lim, out, err);
    out->dtype = select_dtype(in[1].dtype, in[2].dtype);
    return rc;
}

typedef struct {
    const gd_tensor *cond, *a, *b;
    gd_tensor *out;
    double *da, *db; /* backward: [out shape] each, may be NULL */
    const double *dout;
} where_ctx;

static double elem(const gd_tensor *t, int64_t i) {
    return t->dtype == GD_F64 ? gd_f64(t)[i] : (double)gd_i64(t)[i];
}

static void where_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    where_ctx *c = vc;
    for (int64_t k = 0; k < len; k++) {
        int take_a = elem(c->cond, off[0] + k * inner[0]) != 0.0;
        const gd_tensor *src = take_a ? c->a : c->b;
        int64_t si = take_a ? off[1] + k * inner[1] : off[2] + k * inner[2];
        if (c->out->dtype == GD_I64) gd_i64(c->out)[o + k] = gd_i64(src)[si];
        else gd_f64(c->out)[o + k] = elem(src, si);
    }
}

static int forward_where(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    where_ctx w = {.cond = in[0], .a = in[1], .b = in[2], .out = out};
    const gd_shape *ops[3] = {&in[0]->shape, &in[1]->shape, &in[2]->shape};
    return gd_for_runs_polled(&out->shape, 3, ops, where_run, &w, c->cancel, c->err);
}

static void where_back_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    where_ctx *c = vc;
    for (int64_t k = 0; k < len; k++) {
        int take_a = elem(c->cond, off[0] + k * inner[0]) != 0.0;
        double g = c->dout[o + k];
        if (c->da) c->da[o + k] = take_a ? g : 0.0;
        if (c->db) c->db[o + k] = take_a ? 0.0 : g;
    }
}

/* Gradients go to whichever branch each element came from, in the output's
 * (broadcast) shape; the engine sums them down to a's and b's shapes. */
static int backward_where(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                          const int *want, gd_tensor **din) {
    where_ctx w = {.cond = in[0], .dout = gd_f64(dout)};
    for (int i = 1; i <= 2; i++) {
        if (!want[i]) continue;
        if (!(din[i] = gd_tensor_new(c->arena, &out->shape, GD_F64, 0)))
            return gd_kernel_oom(c);
    }
    w.da = want[1] ? gd_f64(din[1]) : NULL;
    w.db = want[2] ? gd_f64(din[2]) : NULL;
    const gd_shape *ops[1] = {&in[0]->shape};
    /* where_back_run reads only the cond operand's offsets. */
    return gd_for_runs_polled(&out->shape, 1, ops, where_back_run, &w, c->cancel, c->err);
}

static int infer_cond(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    (void)lim;
    char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    if (in[0].shape.rank > 0)
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs[0]",
                              "Node '%s' (cond): the predicate '%s' must be a scalar, but has shape %s.", n->name,
                              n->in_names[0], gd_shape_str(&in[0].shape, a, sizeof a));
    if (in[1].shape.rank >= 0 && in[2].shape.rank >= 0 && !gd_shape_eq(&in[1].shape, &in[2].shape))
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                              "Node '%s' (cond): the branches differ in shape: '%s' has %s, '%s' has %s.", n->name,
                              n->in_names[1], gd_shape_str(&in[1].shape, a, sizeof a), n->in_names[2],
                              gd_shape_str(&in[2].shape, b, sizeof b));
    out->dtype = select_dtype(in[1].dtype, in[2].dtype);
    out->shape = in[1].shape.rank >= 0 ? in[1].shape : in[2].shape;
    return 0;
}

/* The engine evaluates the predicate, then only the taken branch; the other
 * input arrives as NULL. */
static int forward_cond(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *taken = elem(in[0], 0) != 0.0 ? in[1] : in[2];
    return copy_as(c, out, taken);
}

static int backward_cond(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                         const int *want, gd_tensor **din) {
    (void)out;
    int taken = elem(in[0], 0) != 0.0 ? 1 : 2;
    if (!want[taken]) return 0;
    return gd_kernel_copy(c, dout, &din[taken]);
}

const gd_op_def gd_ops_flow[] = {
    {.name = "stop_gradient", .min_in = 1, .max_in = 1, .inputs_doc = "x", .differentiable = 0,
     .flags = GD_OPF_STOP | GD_OPF_INT_OK, .infer = infer_stop, .forward = forward_stop,
     .doc = "Returns x unchanged and passes no gradient to it."},
    {.name = "where", .min_in = 3, .max_in = 3, .inputs_doc = "cond, a, b", .differentiable = 1,
     .nograd_inputs = 1u << 0, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_MASK, .infer = infer_where,
     .forward = forward_where, .backward = backward_where,
     .hints = {.blocked = "the condition of where node '{node}', which takes no gradient",
               .no_gradient = "'{node}' (where) passes no gradient to its condition; to learn the choice, blend "
                              "instead: s*a + (1-s)*b with s = sigmoid(...).",
               .zero_gradient = "The condition of '{node}' never selects this side. Check the condition, or blend "
                                "both sides."},
     .doc = "Elementwise a where cond is nonzero, else b, with NumPy broadcasting. cond passes no gradient."},
    {.name = "cond", .min_in = 3, .max_in = 3, .inputs_doc = "pred, a, b", .differentiable = 1,
     .nograd_inputs = 1u << 0, .flags = GD_OPF_COND | GD_OPF_INT_OK, .zero_cause = GD_ZERO_MASK,
     .infer = infer_cond, .forward = forward_cond, .backward = backward_cond,
     .hints = {.blocked = "the predicate of cond node '{node}', which takes no gradient",
               .no_gradient = "'{node}' (cond) passes no gradient to its predicate; to learn the choice, blend the "
                              "branches: p*a + (1-p)*b with p = sigmoid(...)."},
     .doc = "a if the scalar pred is nonzero, else b. Only the taken branch is evaluated; the other gets no value and no gradient."},
    {0},
};
