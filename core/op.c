/* op.c - joins the op families into one table, defines the three leaf ops and
 * the small helpers every family shares (elementwise inference, the size
 * limit). Kernels live in the family files. */
#include "core/op.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <pthread.h>

const char *gd_zero_cause_name(gd_zero_cause c) {
    static const char *const names[] = {
#define GD__ZERO_NAME(name, wire) wire,
        GD_ZERO_CAUSES(GD__ZERO_NAME)
#undef GD__ZERO_NAME
    };
    _Static_assert(sizeof names / sizeof names[0] == GD_ZERO__COUNT, "one name per zero cause");
    return names[c];
}

int gd_check_size(const gd_node *n, const gd_shape *s, const gd_limits *lim, gd_error *err) {
    int64_t k;
    char buf[GD_SHAPE_STR_MAX];
    if (s->rank < 0) return 0;
    if (s->rank > GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_VALUE, "", "Node '%s' (%s) would have rank %d; the maximum is %d.",
                              n->name, n->op->name, s->rank, GD_MAX_RANK);
    if (gd_shape_numel(s, &k))
        return gd_node_errorf(err, n, GD_E_TOO_LARGE, "", "Node '%s' (%s): the size of shape %s overflows.",
                              n->name, n->op->name, gd_shape_str(s, buf, sizeof buf));
    if (lim && lim->max_elements > 0 && k > lim->max_elements)
        return gd_node_errorf(err, n, GD_E_TOO_LARGE, "",
                              "Node '%s' (%s) would have shape %s = %lld elements; the limit is %lld.", n->name,
                              n->op->name, gd_shape_str(s, buf, sizeof buf), (long long)k,
                              (long long)lim->max_elements);
    return 0;
}

int gd_infer_elementwise(const gd_node *n, const gd_meta *in, int n_in, const gd_limits *lim, gd_meta *out,
                         gd_error *err) {
    out->dtype = GD_F64;
    gd_shape s = gd_shape_scalar();
    for (int i = 0; i < n_in; i++) {
        if (in[i].shape.rank < 0) {
            out->shape.rank = -1;
            return 0;
        }
        gd_shape r;
        if (gd_broadcast_shapes(&s, &in[i].shape, &r)) {
            char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
            return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                                  "Node '%s' (%s): input '%s' has shape %s, which does not broadcast with %s.",
                                  n->name, n->op->name, n->in_names[i], gd_shape_str(&in[i].shape, a, sizeof a),
                                  gd_shape_str(&s, b, sizeof b));
        }
        s = r;
    }
    out->shape = s;
    return gd_check_size(n, &s, lim, err);
}

/* Leaves: the value (or its declaration) is the output. The engine hands the
 * value itself to consumers, so leaves have no forward kernel. */
int gd_infer_leaf(const gd_node *n, const gd_nstate *st, const gd_limits *lim, gd_meta *out, gd_error *err) {
    char a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    const gd_tensor *v = st ? st->value : NULL;
    if (v) {
        const char *where = st->value_index >= 0 ? "values" : "value";
        if (n->has_dtype_decl && v->dtype != n->dtype_decl)
            return gd_node_errorf(err, n, GD_E_DTYPE_MISMATCH, "",
                                  "Node '%s' declares dtype %s but its %s is %s.", n->name,
                                  gd_dtype_name(n->dtype_decl), where, gd_dtype_name(v->dtype));
        if (n->has_shape_decl && !gd_shape_eq(&n->shape_decl, &v->shape))
            return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, "",
                                  "Node '%s' declares shape %s but its value has shape %s.", n->name,
                                  gd_shape_str(&n->shape_decl, a, sizeof a),
                                  gd_shape_str(&v->shape, b, sizeof b));
        out->dtype = v->dtype;
        out->shape = v->shape;
    } else {
        out->dtype = n->has_dtype_decl ? n->dtype_decl : GD_F64;
        if (n->has_shape_decl) out->shape = n->shape_decl;
        else out->shape.rank = -1;
    }
    return gd_check_size(n, &out->shape, lim, err);
}

/* The row's inference: the declaration alone (validate.c calls
 * gd_infer_leaf with the request's value). */
static int infer_leaf(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    (void)in;
    return gd_infer_leaf(n, NULL, lim, out, err);
}

static const gd_attr_spec leaf_attrs[] = {
    GD_ATTR("shape", GD_ATTR_INTS, shape, "null"),
    GD_ATTR("dtype", GD_ATTR_DTYPE, dtype, "null"),
};

#define LEAF_NONFINITE "The value sent for '{node}' already contains NaN or Infinity: check the data."

const gd_op_def gd_ops_leaf[] = {
    {.name = "variable", .min_in = 0, .max_in = 0, .inputs_doc = "", .attrs = leaf_attrs, .n_attrs = 2,
     .differentiable = 1, .flags = GD_OPF_LEAF | GD_OPF_MAKES_INT | GD_OPF_VARIABLE, .infer = infer_leaf, .hints = {.nonfinite_value = LEAF_NONFINITE, .nonfinite_grad = LEAF_NONFINITE},
     .doc = "A trainable leaf; its value comes from the request's `values`. `shape` and `dtype` are declarations the value must match."},
    {.name = "input", .min_in = 0, .max_in = 0, .inputs_doc = "", .attrs = leaf_attrs, .n_attrs = 2,
     .differentiable = 1, .flags = GD_OPF_LEAF | GD_OPF_MAKES_INT | GD_OPF_DATA, .infer = infer_leaf, .hints = {.nonfinite_value = LEAF_NONFINITE, .nonfinite_grad = LEAF_NONFINITE},
     .doc = "A data leaf; its value comes from the request's `values`. Gets a gradient only when named in `wrt`."},
    {.name = "constant", .min_in = 0, .max_in = 0, .inputs_doc = "", .attrs = leaf_attrs, .n_attrs = 2,
     .differentiable = 1, .flags = GD_OPF_LEAF | GD_OPF_MAKES_INT, .infer = infer_leaf, .hints = {.nonfinite_value = LEAF_NONFINITE, .nonfinite_grad = LEAF_NONFINITE},
     .doc = "A leaf whose value sits inline in the node's `value` key."},
    {0},
};

static const gd_op_def *const families[] = {gd_ops_leaf,  gd_ops_elementwise, gd_ops_reduce, gd_ops_shape,
                                            gd_ops_linalg, gd_ops_nn,         gd_ops_flow};

#define MAX_OPS 128
static const gd_op_def *all_ops[MAX_OPS];
static int n_all_ops;

/* The joined list is built on first use. It is immutable afterwards; the
 * first call may race only with other first calls that write the same
 * values, so pthread_once keeps it clean. */

static pthread_once_t join_once = PTHREAD_ONCE_INIT;

static void join_families(void) {
    int k = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const gd_op_def *d = families[f]; d->name; d++) {
            assert(k < MAX_OPS && "raise MAX_OPS in op.c");
            all_ops[k++] = d;
        }
    n_all_ops = k;
}

const gd_op_def *const *gd_op_all(int *n) {
    pthread_once(&join_once, join_families);
    *n = n_all_ops;
    return all_ops;
}

const gd_op_def *gd_op_find(const char *name) {
    int n;
    const gd_op_def *const *ops = gd_op_all(&n);
    for (int i = 0; i < n; i++) /* the first byte spares most strcmp calls: this runs for every node */
        if (ops[i]->name[0] == name[0] && strcmp(ops[i]->name, name) == 0) return ops[i];
    return NULL;
}

const gd_attr_spec *gd_op_attr(const gd_op_def *op, const char *key) {
    for (int i = 0; i < op->n_attrs; i++)
        if (strcmp(op->attrs[i].name, key) == 0) return &op->attrs[i];
    return NULL;
}
