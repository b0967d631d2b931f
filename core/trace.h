/* trace.h - what one run of the engine observed, for the diagnostics: which
 * nodes ran and in what order, which branch each cond took, the open region,
 * where a cotangent turned all zero and where NaN/Inf was born.
 *
 * The engine writes it (engine.c), the diagnostics read it (diagnose.c);
 * neither module includes the other. Arrays are [g->n] unless said
 * otherwise, and live in the request's arena. */
#ifndef GD_TRACE_H
#define GD_TRACE_H

#include "core/op.h"

/* Where a NaN/Inf was born: the node, and the multi-index of the first such
 * element in `shape`. */
typedef struct gd_origin {
    int node;          /* -1: none */
    gd_shape shape;    /* shape the index refers to */
    int64_t index[GD_MAX_RANK];
} gd_origin;

/* Node `node`'s nonzero cotangent gave input `input` an all-zero
 * contribution, or (input -1) node's cotangent summed to zero. */
typedef struct gd_zero_event {
    int node, input;
    gd_zero_cause cause;
} gd_zero_event;

/* Node `node`'s backward rule made NaN/Inf in input `input`'s contribution
 * from a finite cotangent; zero_cotangent: that cotangent was all zero (a
 * zero met an infinity). */
typedef struct gd_nonfinite_event {
    int node, input;
    int zero_cotangent;
    gd_origin origin;
} gd_nonfinite_event;

typedef struct gd_trace {
    const unsigned char *evaluated;  /* node ran in the forward sweep */
    const int *pos;                  /* position in the evaluation order, -1 when not evaluated */
    const signed char *taken;        /* cond nodes: 1 or 2 (input index taken), 0 otherwise */
    const unsigned char *open;       /* node in the open region */
    const unsigned char *nonfinite;  /* evaluated value holds NaN/Inf */
    /* A node whose output has NaN/Inf though its inputs had none: births[birth[v]] says where (birth[v]
     * -1 elsewhere). Few nodes have one; a gd_origin per node was 1.4 MB to clear for 10k nodes. */
    const int *birth;
    const gd_origin *births;
    const gd_zero_event *zero;       /* [n_zero], in backward order */
    int n_zero;
    const gd_nonfinite_event *nonfinite_born; /* [n_nonfinite_born], in backward order */
    int n_nonfinite_born;
} gd_trace;

#endif
