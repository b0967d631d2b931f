/* kernel.h - what every op family file (ops_*.c) shares: the kernel's
 * out-of-memory error, the one cancellation-poll granularity and small
 * counting helpers.
 *
 * Knows the op table (op.h) and the cancel record; included only by the
 * family files, never by the engine, proto or server. */
#ifndef GD_KERNEL_H
#define GD_KERNEL_H

#include "core/op.h"

/* Number of elements of a static array (attribute specs of a row). */
#define GD_NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* too_large for a kernel whose scratch or output does not fit the request's
 * memory limit; names the node. Returns the error code. */
static inline int gd_kernel_oom(gd_kctx *c) {
    return gd_errorf(c->err, GD_E_TOO_LARGE, NULL,
                     "Node '%s' (%s): the computation needs more memory than the request's memory limit allows.",
                     c->node->name, c->node->op->name);
}

/* The polled whole-tensor passes of tensor.h for a kernel: a copy of t, t
 * as float64 (t itself when float64), zeros of a shape. 0 with *out set, or
 * too_large naming the node, or deadline_exceeded. */
static inline int gd_kernel_pass_rc(gd_kctx *c, int rc) { return rc < 0 ? gd_kernel_oom(c) : rc; }
static inline int gd_kernel_copy(gd_kctx *c, const gd_tensor *t, gd_tensor **out) {
    return gd_kernel_pass_rc(c, gd_tensor_copy_polled(c->arena, t, out, c->cancel, c->err));
}
static inline int gd_kernel_to_f64(gd_kctx *c, const gd_tensor *t, const gd_tensor **out) {
    gd_tensor *o;
    int rc = gd_kernel_pass_rc(c, gd_tensor_to_f64_polled(c->arena, t, &o, c->cancel, c->err));
    *out = rc ? NULL : o;
    return rc;
}
static inline int gd_kernel_zeros(gd_kctx *c, const gd_shape *s, gd_tensor **out) {
    return gd_kernel_pass_rc(c, gd_tensor_zeros_polled(c->arena, s, GD_F64, out, c->cancel, c->err));
}

/* Add m elements of work to *since and poll the cancel flag once
 * GD_POLL_ELEMS have accumulated. Returns 0 or deadline_exceeded. */
static inline int gd_kernel_tick(gd_kctx *c, int64_t *since, int64_t m) {
    if ((*since += m) < GD_POLL_ELEMS) return 0;
    *since = 0;
    return gd_cancel_check(c->cancel, c->err);
}

#endif
