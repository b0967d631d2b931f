/* ops_shape.c - ops that move elements without arithmetic: reshape,
 * transpose, broadcast_to, concat, slice and gather (numpy.take).
 *
 * Every row takes int64 as well as float64 (GD_OPF_INT_OK): both dtypes are
 * 8 bytes an element, so the kernels move raw 8-byte words and the output
 * keeps the input's dtype. The one exception is concat of mixed dtypes, which
 * gives float64 (as NumPy does) and converts the int64 parts. Gradients are
 * always float64. No arithmetic on values, no I/O. */
#include <stddef.h>
#include <string.h>

#include "core/kernel.h"

/* An element moved without being interpreted. A struct of unsigned char may
 * alias a double or an int64_t, and an assignment of it compiles to one
 * 8-byte move. */
typedef struct {
    unsigned char b[8];
} word;

_Static_assert(sizeof(word) == 8, "word must be 8 bytes");

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

/* Row-major strides (in elements) of s. */
static void row_strides(const gd_shape *s, int64_t *st) {
    int64_t k = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        st[i] = k;
        k *= s->dim[i];
    }
}

/* Product of dims [from, to) of s; the caller knows the whole shape's size
 * fits, so no overflow is possible here. */
static int64_t dims_prod(const gd_shape *s, int from, int to) {
    int64_t k = 1;
    for (int i = from; i < to; i++) k *= s->dim[i];
    return k;
}

/* Strided move over `shape`: for every multi-index i,
 *   dst[sum i_k * dst_st[k]] = src[sum i_k * src_st[k]].
 * dst and src point at the view's first element. The innermost axis is the
 * tight loop; the others advance an odometer. Polls cancellation every
 * GD_POLL_ELEMS elements; returns 0 or deadline_exceeded. */
static int move_strided(const gd_kctx *c, word *dst, const int64_t *dst_st, const word *src,
                        const int64_t *src_st, const gd_shape *shape) {
    int64_t n;
    if (gd_shape_numel(shape, &n) || n == 0) return 0;
    int r = shape->rank;
    if (r == 0) {
        dst[0] = src[0];
        return 0;
    }
    int64_t len = shape->dim[r - 1], ds = dst_st[r - 1], ss = src_st[r - 1];
    int64_t idx[GD_MAX_RANK] = {0}, doff = 0, soff = 0, since = 0;
    for (;;) {
        word *d = dst + doff;
        const word *s = src + soff;
        /* the innermost run may be the whole tensor: in pieces, polled */
        for (int64_t k0 = 0; k0 < len; k0 += GD_POLL_ELEMS) {
            int64_t k1 = len - k0 < GD_POLL_ELEMS ? len : k0 + GD_POLL_ELEMS;
            if (ds == 1 && ss == 1) memcpy(d + k0, s + k0, (size_t)(k1 - k0) * sizeof(word));
            else
                for (int64_t k = k0; k < k1; k++) d[k * ds] = s[k * ss];
            if ((since += k1 - k0) >= GD_POLL_ELEMS) {
                since = 0;
                if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
            }
        }
        int ax = r - 2;
        for (; ax >= 0; ax--) {
            doff += dst_st[ax];
            soff += src_st[ax];
            if (++idx[ax] < shape->dim[ax]) break;
            doff -= dst_st[ax] * shape->dim[ax];
            soff -= src_st[ax] * shape->dim[ax];
            idx[ax] = 0;
        }
        if (ax < 0) return 0;
    }
}

/* dst[0..n) = src[0..n) in blocks of GD_POLL_ELEMS words, polling cancellation
 * between blocks. Returns 0 or deadline_exceeded. */
static int copy_words(const gd_kctx *c, void *dst, const void *src, int64_t n) {
    for (int64_t i = 0; i < n; i += GD_POLL_ELEMS) {
        int64_t len = n - i < GD_POLL_ELEMS ? n - i : GD_POLL_ELEMS;
        if (i && gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
        memcpy((word *)dst + i, (const word *)src + i, (size_t)len * sizeof(word));
    }
    return 0;
}

/* A single-integer axis attribute (concat, gather): 0 when not given. */
static int single_axis(const gd_node *n, const gd_ints *a, int64_t *axis, gd_error *err) {
    if (!a->given) {
        *axis = 0;
        return 0;
    }
    if (a->is_list || a->n != 1)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (%s): 'axis' must be a single integer.", n->name, n->op->name);
    *axis = a->v[0];
    return 0;
}

/* A list attribute's length must be representable (the slot holds GD_MAX_RANK). */
static int check_list_len(const gd_node *n, const gd_ints *a, const char *attr, gd_error *err) {
    if (a->n < 0 || a->n > GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, attr,
                              "Node '%s' (%s): '%s' has %d entries; at most %d are supported.", n->name,
                              n->op->name, attr + 1, a->n, GD_MAX_RANK);
    return 0;
}

/* ------------------------------------------------------------------ */
/* reshape                                                             */
/* ------------------------------------------------------------------ */

/* The target shape with its -1 resolved against the input's element count.
 * Unknown input: rank -1 when the target has a -1, else the target itself. */
static int infer_reshape(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    const gd_ints *a = &n->attrs->shape;
    char sa[GD_SHAPE_STR_MAX], sb[GD_SHAPE_STR_MAX];
    out->dtype = in[0].dtype;
    if (!a->given)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape", "Node '%s' (reshape) requires 'shape'.",
                              n->name);
    if (a->n < 0 || a->n > GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape",
                              "Node '%s' (reshape): 'shape' has %d dimensions; the maximum rank is %d.", n->name,
                              a->n, GD_MAX_RANK);
    int neg = -1;
    gd_shape t = {.rank = a->n}; /* target with the -1 taken as 1 */
    for (int i = 0; i < a->n; i++) {
        if (a->v[i] == -1) {
            if (neg >= 0)
                return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape",
                                      "Node '%s' (reshape): 'shape' may contain at most one -1.", n->name);
            neg = i;
            t.dim[i] = 1;
        } else if (a->v[i] < 0) {
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape",
                                  "Node '%s' (reshape): 'shape' entries must be >= 0 or a single -1, got %lld.",
                                  n->name, (long long)a->v[i]);
        } else {
            t.dim[i] = a->v[i];
        }
    }
    if (in[0].shape.rank < 0) {
        if (neg >= 0) out->shape.rank = -1;
        else out->shape = t;
        return neg >= 0 ? 0 : gd_check_size(n, &out->shape, lim, err);
    }
    int64_t nin, nt;
    gd_shape shown = gd_shape_make(a->n, a->v);
    if (gd_shape_numel(&in[0].shape, &nin)) return gd_check_size(n, &in[0].shape, lim, err);
    int bad = gd_shape_numel(&t, &nt) != 0;
    if (!bad && neg >= 0) {
        if (nt == 0 || nin % nt != 0) bad = 1; /* NumPy: size 0 with -1 is ambiguous */
        else t.dim[neg] = nin / nt, nt = nin;
    }
    if (bad || nt != nin)
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".shape",
                              "Node '%s' (reshape): cannot reshape '%s' of shape %s (%lld elements) into %s.",
                              n->name, n->in_names[0], gd_shape_str(&in[0].shape, sa, sizeof sa), (long long)nin,
                              gd_shape_str(&shown, sb, sizeof sb));
    out->shape = t;
    return gd_check_size(n, &t, lim, err);
}

static int forward_reshape(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    return copy_words(c, out->data, in[0]->data, out->n);
}

/* d(reshape)/dx: the cotangent, copied into x's shape. */
static int backward_reshape(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                            const int *want, gd_tensor **din) {
    (void)out;
    if (!want[0]) return 0;
    gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0); /* [x shape] */
    if (!dx) return gd_kernel_oom(c);
    int rc = copy_words(c, dx->data, dout->data, dx->n);
    if (rc) return rc;
    din[0] = dx;
    return 0;
}

/* ------------------------------------------------------------------ */
/* transpose                                                           */
/* ------------------------------------------------------------------ */

/* The permutation for rank r: `axes` normalised, or reversed when absent.
 * Returns 0, or invalid_attribute when axes is not a permutation. */
static int transpose_perm(const gd_node *n, int r, int *perm, gd_error *err) {
    const gd_ints *a = &n->attrs->axes;
    if (!a->given) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return 0;
    }
    if (a->n != r)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axes",
                              "Node '%s' (transpose): 'axes' has %d entries but '%s' has rank %d.", n->name, a->n,
                              n->in_names[0], r);
    unsigned seen = 0;
    for (int i = 0; i < r; i++) {
        int ax = gd_norm_axis(a->v[i], r);
        if (ax < 0 || (seen >> ax & 1u))
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axes",
                                  "Node '%s' (transpose): 'axes' must be a permutation of 0..%d; entry %d (%lld) "
                                  "is %s.",
                                  n->name, r - 1, i, (long long)a->v[i], ax < 0 ? "out of range" : "repeated");
        seen |= 1u << ax;
        perm[i] = ax;
    }
    return 0;
}

static int infer_transpose(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out,
                           gd_error *err) {
    (void)lim;
    out->dtype = in[0].dtype;
    int rc = check_list_len(n, &n->attrs->axes, ".axes", err);
    if (rc) return rc;
    if (in[0].shape.rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    int perm[GD_MAX_RANK];
    int r = in[0].shape.rank;
    if ((rc = transpose_perm(n, r, perm, err))) return rc;
    out->shape.rank = r;
    for (int i = 0; i < r; i++) out->shape.dim[i] = in[0].shape.dim[perm[i]];
    return 0;
}

/* out[i_0..] = x[i_perm^-1...]: walk out contiguously, x with permuted strides. */
static int transpose_move(const gd_kctx *c, word *dst, const word *src, const gd_shape *src_shape,
                          const int *perm) {
    int r = src_shape->rank;
    int64_t sst[GD_MAX_RANK], pst[GD_MAX_RANK], dst_st[GD_MAX_RANK];
    gd_shape ds = {.rank = r};
    row_strides(src_shape, sst);
    for (int i = 0; i < r; i++) ds.dim[i] = src_shape->dim[perm[i]], pst[i] = sst[perm[i]];
    row_strides(&ds, dst_st);
    return move_strided(c, dst, dst_st, src, pst, &ds);
}

static int forward_transpose(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    int perm[GD_MAX_RANK];
    int rc = transpose_perm(c->node, in[0]->shape.rank, perm, c->err);
    if (rc) return rc;
    return transpose_move(c, out->data, in[0]->data, &in[0]->shape, perm);
}

/* d(transpose)/dx: the cotangent transposed back by the inverse permutation. */
static int backward_transpose(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                              const int *want, gd_tensor **din) {
    (void)out;
    if (!want[0]) return 0;
    int perm[GD_MAX_RANK], inv[GD_MAX_RANK];
    int r = in[0]->shape.rank;
    int rc = transpose_perm(c->node, r, perm, c->err);
    if (rc) return rc;
    for (int i = 0; i < r; i++) inv[perm[i]] = i;
    gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0); /* [x shape] */
    if (!dx) return gd_kernel_oom(c);
    if ((rc = transpose_move(c, dx->data, dout->data, &dout->shape, inv))) return rc;
    din[0] = dx;
    return 0;
}

/* ------------------------------------------------------------------ */
/* broadcast_to                                                        */
/* ------------------------------------------------------------------ */

/* `shape` itself, after checking that x broadcasts to exactly it (NumPy:
 * x's trailing dims equal the target's or are 1). The size limit is checked
 * here, before any memory is spent. */
static int infer_broadcast_to(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out,
                              gd_error *err) {
    const gd_ints *a = &n->attrs->shape;
    char sa[GD_SHAPE_STR_MAX], sb[GD_SHAPE_STR_MAX];
    out->dtype = in[0].dtype;
    if (!a->given)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape",
                              "Node '%s' (broadcast_to) requires 'shape'.", n->name);
    int rc = check_list_len(n, a, ".shape", err);
    if (rc) return rc;
    for (int i = 0; i < a->n; i++)
        if (a->v[i] < 0)
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".shape",
                                  "Node '%s' (broadcast_to): 'shape' entries must be >= 0, got %lld.", n->name,
                                  (long long)a->v[i]);
    gd_shape t = gd_shape_make(a->n, a->v);
    const gd_shape *s = &in[0].shape;
    if (s->rank >= 0) {
        int ok = s->rank <= t.rank;
        for (int i = 0; ok && i < s->rank; i++) {
            int64_t d = s->dim[i], e = t.dim[t.rank - s->rank + i];
            ok = d == e || d == 1;
        }
        if (!ok)
            return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".shape",
                                  "Node '%s' (broadcast_to): '%s' of shape %s cannot be broadcast to %s.", n->name,
                                  n->in_names[0], gd_shape_str(s, sa, sizeof sa), gd_shape_str(&t, sb, sizeof sb));
    }
    out->shape = t;
    return gd_check_size(n, &t, lim, err);
}

typedef struct {
    word *dst;
    const word *src;
} bcast_ctx;

/* One run (at most GD_POLL_ELEMS long: gd_for_runs_polled cuts them). */
static void bcast_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    bcast_ctx *b = vc;
    word *d = b->dst + o;
    const word *s = b->src + off[0];
    if (inner[0] == 0) {
        word v = *s;
        for (int64_t k = 0; k < len; k++) d[k] = v;
    } else {
        memcpy(d, s, (size_t)len * sizeof(word));
    }
}

/* A scalar broadcast to 16M elements is one run: it is cut and polled like
 * any other, so a deadline lands within a poll (issue 9 row 6). */
static int forward_broadcast_to(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    bcast_ctx b = {.dst = out->data, .src = in[0]->data};
    const gd_shape *ops[1] = {&in[0]->shape};
    return gd_for_runs_polled(&out->shape, 1, ops, bcast_run, &b, c->cancel, c->err);
}

/* d(broadcast_to)/dx: the cotangent as it is, in the broadcast shape; the
 * engine sums the broadcast axes down to x's shape. */
static int backward_broadcast_to(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,
                                 const gd_tensor *dout, const int *want, gd_tensor **din) {
    (void)in, (void)out;
    if (!want[0]) return 0;
    gd_tensor *dx = gd_tensor_new(c->arena, &dout->shape, GD_F64, 0); /* [out shape] */
    if (!dx) return gd_kernel_oom(c);
    int rc = copy_words(c, dx->data, dout->data, dx->n);
    if (rc) return rc;
    din[0] = dx;
    return 0;
}

/* ------------------------------------------------------------------ */
/* concat                                                              */
/* ------------------------------------------------------------------ */

/* float64 as soon as one input is; int64 only when all are. */
static gd_dtype concat_dtype(const gd_meta *in, int n_in) {
    for (int i = 0; i < n_in; i++)
        if (in[i].dtype != GD_I64) return GD_F64;
    return GD_I64;
}

static int infer_concat(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    char sa[GD_SHAPE_STR_MAX], sb[GD_SHAPE_STR_MAX];
    int64_t axis = 0;
    int rc = single_axis(n, &n->attrs->axis, &axis, err);
    if (rc) return rc;
    out->dtype = concat_dtype(in, n->n_in);
    /* Compare every known input with the first known one. */
    int first = -1, unknown = 0, ax = 0;
    gd_shape s = {.rank = -1};
    for (int i = 0; i < n->n_in; i++) {
        const gd_shape *si = &in[i].shape;
        if (si->rank < 0) {
            unknown = 1;
            continue;
        }
        if (first < 0) {
            if (si->rank == 0)
                return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                                      "Node '%s' (concat): input '%s' is a scalar; scalars cannot be concatenated.",
                                      n->name, n->in_names[i]);
            if ((ax = gd_norm_axis(axis, si->rank)) < 0)
                return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                                      "Node '%s' (concat): axis %lld is out of range for inputs of rank %d.",
                                      n->name, (long long)axis, si->rank);
            first = i;
            s = *si;
            continue;
        }
        int ok = si->rank == s.rank;
        for (int k = 0; ok && k < s.rank; k++) ok = k == ax || si->dim[k] == s.dim[k];
        if (!ok)
            return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                                  "Node '%s' (concat): inputs must have equal shapes except along axis %d: '%s' has "
                                  "shape %s, '%s' has shape %s.",
                                  n->name, ax, n->in_names[first], gd_shape_str(&in[first].shape, sa, sizeof sa),
                                  n->in_names[i], gd_shape_str(si, sb, sizeof sb));
        if (s.dim[ax] > INT64_MAX - si->dim[ax])
            return gd_node_errorf(err, n, GD_E_TOO_LARGE, "", "Node '%s' (concat): the output size overflows.",
                                  n->name);
        s.dim[ax] += si->dim[ax];
    }
    if (unknown) {
        out->shape.rank = -1;
        return 0;
    }
    out->shape = s;
    return gd_check_size(n, &s, lim, err);
}

/* out viewed as [outer, sum_i len_i * inner]: each input's block of
 * len_i * inner elements lands beside the others', row after row. */
static int forward_concat(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    int n_in = c->node->n_in;
    int ax = gd_norm_axis(c->node->attrs->axis.given ? c->node->attrs->axis.v[0] : 0, out->shape.rank);
    int64_t outer = dims_prod(&out->shape, 0, ax), inner = dims_prod(&out->shape, ax + 1, out->shape.rank);
    int64_t row = out->shape.dim[ax] * inner, since = 0;
    for (int64_t o = 0; o < outer; o++) {
        int64_t at = o * row;
        for (int i = 0; i < n_in; i++) {
            int64_t blk = in[i]->shape.dim[ax] * inner;
            /* a block may be a whole input (axis 0): copied in polled pieces */
            if (out->dtype == in[i]->dtype) {
                int rc = copy_words(c, (word *)out->data + at, (const word *)in[i]->data + o * blk, blk);
                if (rc) return rc;
            } else { /* int64 part of a float64 result */
                const int64_t *s = gd_i64(in[i]) + o * blk;
                double *d = gd_f64(out) + at;
                for (int64_t k = 0; k < blk; k++) {
                    d[k] = (double)s[k];
                    if ((k & (GD_POLL_ELEMS - 1)) == GD_POLL_ELEMS - 1 && gd_cancel_check(c->cancel, c->err))
                        return GD_E_DEADLINE_EXCEEDED;
                }
            }
            at += blk;
        }
        if ((since += row) >= GD_POLL_ELEMS) {
            since = 0;
            if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
        }
    }
    return 0;
}

/* d(concat)/dx_i: the slice of the cotangent along axis that x_i filled. */
static int backward_concat(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                           const int *want, gd_tensor **din) {
    int n_in = c->node->n_in;
    int ax = gd_norm_axis(c->node->attrs->axis.given ? c->node->attrs->axis.v[0] : 0, out->shape.rank);
    int64_t outer = dims_prod(&out->shape, 0, ax), inner = dims_prod(&out->shape, ax + 1, out->shape.rank);
    int64_t row = out->shape.dim[ax] * inner, at0 = 0, since = 0;
    for (int i = 0; i < n_in; i++) {
        int64_t blk = in[i]->shape.dim[ax] * inner;
        if (want[i]) {
            gd_tensor *dx = gd_tensor_new(c->arena, &in[i]->shape, GD_F64, 0); /* [x_i shape] */
            if (!dx) return gd_kernel_oom(c);
            for (int64_t o = 0; o < outer && blk; o++) {
                int rc = copy_words(c, gd_f64(dx) + o * blk, gd_f64(dout) + o * row + at0, blk);
                if (rc) return rc;
                if ((since += blk + 1) >= GD_POLL_ELEMS) {
                    since = 0;
                    if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
                }
            }
            din[i] = dx;
        }
        at0 += blk;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* slice                                                               */
/* ------------------------------------------------------------------ */

/* Per input axis: first index, step and count, as Python's
 * slice(start, stop, step).indices(len) gives them. */
typedef struct {
    int64_t start[GD_MAX_RANK], step[GD_MAX_RANK], count[GD_MAX_RANK];
} slice_plan;

/* One axis of Python slicing: negative start/stop count from the end, out of
 * range clamps. Overflow-free for any int64 start/stop/step (step != 0). */
static void slice_axis(int64_t len, int64_t start, int64_t stop, int64_t step, int64_t *first, int64_t *count) {
    if (step > 0) {
        if (start < 0) start = start + len < 0 ? 0 : start + len;
        else if (start > len) start = len;
        if (stop < 0) stop = stop + len < 0 ? 0 : stop + len;
        else if (stop > len) stop = len;
        *first = start;
        *count = stop > start ? (int64_t)((uint64_t)(stop - start - 1) / (uint64_t)step) + 1 : 0;
    } else {
        if (start < 0) start = start + len < 0 ? -1 : start + len;
        else if (start >= len) start = len - 1;
        if (stop < 0) stop = stop + len < 0 ? -1 : stop + len;
        else if (stop >= len) stop = len - 1;
        *first = start;
        *count = start > stop ? (int64_t)((uint64_t)(start - stop - 1) / (0u - (uint64_t)step)) + 1 : 0;
    }
}

/* Validate slice's attributes; with a known rank (r >= 0) also the axes and,
 * when shape is given, fill the plan. */
static int slice_check(const gd_node *n, const gd_shape *shape, slice_plan *p, gd_error *err) {
    const gd_attrs *at = n->attrs;
    const char *nm = n->name;
    if (!at->starts.given || !at->ends.given)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, at->starts.given ? ".ends" : ".starts",
                              "Node '%s' (slice) requires 'starts' and 'ends'.", nm);
    int rc;
    if ((rc = check_list_len(n, &at->starts, ".starts", err)) || (rc = check_list_len(n, &at->ends, ".ends", err)) ||
        (rc = check_list_len(n, &at->axes, ".axes", err)) || (rc = check_list_len(n, &at->steps, ".steps", err)))
        return rc;
    int k = at->starts.n;
    if (at->ends.n != k)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".ends",
                              "Node '%s' (slice): 'ends' has %d entries but 'starts' has %d.", nm, at->ends.n, k);
    if (at->axes.given && at->axes.n != k)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axes",
                              "Node '%s' (slice): 'axes' has %d entries but 'starts' has %d.", nm, at->axes.n, k);
    if (at->steps.given && at->steps.n != k)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".steps",
                              "Node '%s' (slice): 'steps' has %d entries but 'starts' has %d.", nm, at->steps.n, k);
    for (int i = 0; at->steps.given && i < k; i++)
        if (at->steps.v[i] == 0)
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".steps",
                                  "Node '%s' (slice): 'steps' entry %d is 0; a step must be nonzero.", nm, i);
    if (shape->rank < 0) return 0;
    int r = shape->rank;
    for (int a = 0; a < r; a++) p->start[a] = 0, p->step[a] = 1, p->count[a] = shape->dim[a];
    unsigned seen = 0;
    for (int i = 0; i < k; i++) {
        int64_t want = at->axes.given ? at->axes.v[i] : i;
        int a = gd_norm_axis(want, r);
        if (a < 0 || (seen >> a & 1u))
            return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, at->axes.given ? ".axes" : ".starts",
                                  "Node '%s' (slice): axis %lld is %s for '%s' of rank %d.", nm, (long long)want,
                                  a < 0 ? "out of range" : "repeated", n->in_names[0], r);
        seen |= 1u << a;
        p->step[a] = at->steps.given ? at->steps.v[i] : 1;
        slice_axis(shape->dim[a], at->starts.v[i], at->ends.v[i], p->step[a], &p->start[a], &p->count[a]);
    }
    return 0;
}

static int infer_slice(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    (void)lim;
    slice_plan p;
    out->dtype = in[0].dtype;
    int rc = slice_check(n, &in[0].shape, &p, err);
    if (rc) return rc;
    out->shape.rank = in[0].shape.rank;
    for (int a = 0; a < in[0].shape.rank; a++) out->shape.dim[a] = p.count[a];
    return 0;
}

/* The strided view of x that the slice selects: its first element's offset
 * and a stride per axis (step times x's stride; negative for negative steps). */
static int64_t slice_view(const gd_shape *x, const slice_plan *p, int64_t *vst) {
    int64_t st[GD_MAX_RANK], base = 0;
    row_strides(x, st);
    for (int a = 0; a < x->rank; a++) {
        vst[a] = p->step[a] * st[a];
        if (p->count[a] > 0) base += p->start[a] * st[a];
    }
    return base;
}

static int forward_slice(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    slice_plan p;
    int rc = slice_check(c->node, &in[0]->shape, &p, c->err);
    if (rc) return rc;
    if (out->n == 0) return 0;
    int64_t vst[GD_MAX_RANK], ost[GD_MAX_RANK];
    int64_t base = slice_view(&in[0]->shape, &p, vst);
    row_strides(&out->shape, ost);
    return move_strided(c, out->data, ost, (const word *)in[0]->data + base, vst, &out->shape);
}

/* d(slice)/dx: zeros of x's shape with the cotangent scattered back into the
 * selected positions (distinct, so a plain store). */
static int backward_slice(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                          const int *want, gd_tensor **din) {
    if (!want[0]) return 0;
    slice_plan p;
    int rc = slice_check(c->node, &in[0]->shape, &p, c->err);
    if (rc) return rc;
    gd_tensor *dx; /* [x shape] */
    if ((rc = gd_kernel_zeros(c, &in[0]->shape, &dx))) return rc;
    if (out->n) {
        int64_t vst[GD_MAX_RANK], ost[GD_MAX_RANK];
        int64_t base = slice_view(&in[0]->shape, &p, vst);
        row_strides(&out->shape, ost);
        if ((rc = move_strided(c, (word *)dx->data + base, vst, dout->data, ost, &out->shape))) return rc;
    }
    din[0] = dx;
    return 0;
}

/* ------------------------------------------------------------------ */
/* gather                                                              */
/* ------------------------------------------------------------------ */

/* numpy.take(params, indices, axis): params.shape[:axis] + indices.shape +
 * params.shape[axis+1:]. indices must be int64. */
static int infer_gather(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    int64_t axis = 0;
    int rc = single_axis(n, &n->attrs->axis, &axis, err);
    if (rc) return rc;
    out->dtype = in[0].dtype;
    if (in[1].dtype != GD_I64)
        return gd_node_errorf(err, n, GD_E_DTYPE_MISMATCH, ".inputs[1]",
                              "Node '%s' (gather): indices '%s' must be int64, got %s.", n->name, n->in_names[1],
                              gd_dtype_name(in[1].dtype));
    const gd_shape *p = &in[0].shape, *ix = &in[1].shape;
    int ax = -1;
    if (p->rank >= 0 && (ax = gd_norm_axis(axis, p->rank)) < 0)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".axis",
                              "Node '%s' (gather): axis %lld is out of range for '%s' of rank %d.", n->name,
                              (long long)axis, n->in_names[0], p->rank);
    if (p->rank < 0 || ix->rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    int r = p->rank - 1 + ix->rank;
    if (r > GD_MAX_RANK)
        return gd_node_errorf(err, n, GD_E_INVALID_VALUE, "",
                              "Node '%s' (gather) would have rank %d; the maximum is %d.", n->name, r, GD_MAX_RANK);
    gd_shape s = {.rank = 0};
    for (int i = 0; i < ax; i++) s.dim[s.rank++] = p->dim[i];
    for (int i = 0; i < ix->rank; i++) s.dim[s.rank++] = ix->dim[i];
    for (int i = ax + 1; i < p->rank; i++) s.dim[s.rank++] = p->dim[i];
    out->shape = s;
    return gd_check_size(n, &s, lim, err);
}

/* params viewed as [outer, len, inner]: the axis and what lies around it. */
typedef struct {
    int64_t outer, len, inner;
} gather_geom;

static gather_geom gather_geometry(const gd_node *n, const gd_shape *p) {
    int ax = gd_norm_axis(n->attrs->axis.given ? n->attrs->axis.v[0] : 0, p->rank);
    return (gather_geom){dims_prod(p, 0, ax), p->dim[ax], dims_prod(p, ax + 1, p->rank)};
}

/* Check every index against the axis length before anything is read;
 * index_out_of_range names the node, the flat position and the value. */
static int gather_check(gd_kctx *c, const gd_tensor *idx, int64_t len) {
    const int64_t *ix = gd_i64(idx);
    for (int64_t j = 0; j < idx->n; j++)
        if (ix[j] < -len || ix[j] >= len)
            return gd_node_errorf(c->err, c->node, GD_E_INDEX_OUT_OF_RANGE, ".inputs[1]",
                                  "Node '%s' (gather): index %lld at flat position %lld of '%s' is out of range "
                                  "for an axis of size %lld.",
                                  c->node->name, (long long)ix[j], (long long)j, c->node->in_names[1],
                                  (long long)len);
    return 0;
}

static int forward_gather(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *p = in[0], *idx = in[1];
    gather_geom g = gather_geometry(c->node, &p->shape);
    int rc = gather_check(c, idx, g.len);
    if (rc) return rc;
    const int64_t *ix = gd_i64(idx);
    const word *src = p->data;   /* [outer, len, inner] */
    word *dst = out->data;       /* [outer, ni, inner] */
    int64_t ni = idx->n, since = 0;
    for (int64_t o = 0; o < g.outer; o++) {
        for (int64_t j = 0; j < ni && g.inner; j++) {
            int64_t k = ix[j] < 0 ? ix[j] + g.len : ix[j];
            memcpy(dst + (o * ni + j) * g.inner, src + (o * g.len + k) * g.inner, (size_t)g.inner * sizeof(word));
            /* polled per row too: along axis 0 there is one outer step */
            if ((since += g.inner + 1) >= GD_POLL_ELEMS) {
                since = 0;
                if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
            }
        }
        if ((since += 1) >= GD_POLL_ELEMS) {
            since = 0;
            if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
        }
    }
    return 0;
}

/* d(gather)/dparams: zeros of params' shape with the cotangent's rows added
 * at the gathered positions (added: a repeated index collects every use). */
static int backward_gather(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                           const int *want, gd_tensor **din) {
    (void)out;
    if (!want[0]) return 0;
    const gd_tensor *p = in[0], *idx = in[1];
    gather_geom g = gather_geometry(c->node, &p->shape);
    int rc = gather_check(c, idx, g.len);
    if (rc) return rc;
    gd_tensor *dp; /* [params shape] */
    if ((rc = gd_kernel_zeros(c, &p->shape, &dp))) return rc;
    const int64_t *ix = gd_i64(idx);
    const double *go = gd_f64(dout); /* [outer, ni, inner] */
    double *gp = gd_f64(dp);         /* [outer, len, inner] */
    int64_t ni = idx->n, since = 0;
    for (int64_t o = 0; o < g.outer; o++) {
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = ix[j] < 0 ? ix[j] + g.len : ix[j];
            double *d = gp + (o * g.len + k) * g.inner;
            const double *s = go + (o * ni + j) * g.inner;
            for (int64_t e = 0; e < g.inner; e++) d[e] += s[e];
            if ((since += g.inner + 1) >= GD_POLL_ELEMS) {
                since = 0;
                if (gd_cancel_check(c->cancel, c->err)) return GD_E_DEADLINE_EXCEEDED;
            }
        }
    }
    din[0] = dp;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

static const gd_attr_spec reshape_attrs[] = {GD_ATTR("shape", GD_ATTR_INTS, shape, NULL)};
static const gd_attr_spec transpose_attrs[] = {GD_ATTR("axes", GD_ATTR_INTS, axes, "null")};
static const gd_attr_spec broadcast_attrs[] = {GD_ATTR("shape", GD_ATTR_INTS, shape, NULL)};
static const gd_attr_spec concat_attrs[] = {GD_ATTR("axis", GD_ATTR_AXIS, axis, "0")};
static const gd_attr_spec slice_attrs[] = {
    GD_ATTR("starts", GD_ATTR_INTS, starts, NULL),
    GD_ATTR("ends", GD_ATTR_INTS, ends, NULL),
    GD_ATTR("axes", GD_ATTR_INTS, axes, "null"),
    GD_ATTR("steps", GD_ATTR_INTS, steps, "null"),
};
static const gd_attr_spec gather_attrs[] = {GD_ATTR("axis", GD_ATTR_AXIS, axis, "0")};

const gd_op_def gd_ops_shape[] = {
    {.name = "reshape", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = reshape_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "x's elements in row-major order with shape `shape`; one entry may be -1 and is inferred. Keeps int64.",
     .infer = infer_reshape, .forward = forward_reshape, .backward = backward_reshape},
    {.name = "transpose", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = transpose_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "x with its axes permuted: output axis i is input axis axes[i] (negative allowed); default: reversed "
            "axes. Keeps int64.",
     .infer = infer_transpose, .forward = forward_transpose, .backward = backward_transpose},
    {.name = "broadcast_to", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = broadcast_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "x broadcast to exactly `shape` by NumPy rules (as numpy.broadcast_to); the gradient sums over the "
            "broadcast axes. Keeps int64.",
     .infer = infer_broadcast_to, .forward = forward_broadcast_to, .backward = backward_broadcast_to},
    {.name = "concat", .min_in = 1, .max_in = -1, .inputs_doc = "x...", .attrs = concat_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "The inputs joined along `axis` (default 0, negative counts from the end); shapes must agree elsewhere. "
            "int64 when all inputs are, else float64.",
     .infer = infer_concat, .forward = forward_concat, .backward = backward_concat},
    {.name = "slice", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = slice_attrs, .n_attrs = 4,
     .differentiable = 1, .flags = GD_OPF_INT_OK, .zero_cause = GD_ZERO_VALUE,
     .doc = "x[starts:ends:steps] on `axes` (default 0..len(starts)-1; steps default 1, nonzero, may be negative) "
            "with Python slice rules: negative bounds count from the end, out-of-range bounds clamp. Keeps int64.",
     .infer = infer_slice, .forward = forward_slice, .backward = backward_slice},
    {.name = "gather", .min_in = 2, .max_in = 2, .inputs_doc = "params, indices", .attrs = gather_attrs,
     .n_attrs = 1, .differentiable = 1, .nograd_inputs = 1u << 1, .flags = GD_OPF_INT_OK,
     .zero_cause = GD_ZERO_VALUE,
     .doc = "numpy.take(params, indices, axis) with int64 indices (axis default 0); negative indices count from "
            "the end, out-of-range ones are index_out_of_range; repeated indices add up in the gradient.",
     .infer = infer_gather, .forward = forward_gather, .backward = backward_gather,
     .hints = {.blocked = "the indices of gather node '{node}', which take no gradient",
               .no_gradient = "'{node}' (gather) passes no gradient to its indices; to learn a selection, use softmax "
                              "weights with matmul instead of gather."}},
    {0},
};
