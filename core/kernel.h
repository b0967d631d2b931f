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

/* Add m elements of work to *since and poll the cancel flag once
 * GD_POLL_ELEMS have accumulated. Returns 0 or deadline_exceeded. */
static inline int gd_kernel_tick(gd_kctx *c, int64_t *since, int64_t m) {
    if ((*since += m) < GD_POLL_ELEMS) return 0;
    *since = 0;
    return gd_cancel_check(c->cancel, c->err);
}

#endif
