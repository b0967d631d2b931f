/* cancel.h - the monotonic clock and the cancellation record that every
 * long-running part of gradd polls: a flag any thread may set and a deadline.
 *
 * Knows only error.h (a poll that fires fills a deadline_exceeded error). It
 * does not know ops, graphs or HTTP, so the worker pool and the server's main
 * loop take their clock from here without pulling in the op table. */
#ifndef GD_CANCEL_H
#define GD_CANCEL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/error.h"

/* Set `cancelled` from any thread; deadline_ns is CLOCK_MONOTONIC (0: none). */
typedef struct gd_cancel {
    atomic_int cancelled;
    int64_t deadline_ns;
} gd_cancel;

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t gd_now_ns(void);

/* Nonzero (and err set to deadline_exceeded) once cancelled or past the
 * deadline; 0 when c is NULL. Cheap enough to call between nodes and every
 * few hundred microseconds inside kernels. */
int gd_cancel_check(const gd_cancel *c, gd_error *err);

#endif
