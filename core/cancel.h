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

/* Why `cancelled` was set (0: it was not). */
enum {
    GD_CANCEL_SHUTDOWN = 1,    /* the server is stopping (answered 503) */
    GD_CANCEL_CLIENT_GONE = 2, /* the client disconnected (A7): nobody will read the answer */
};

/* Set `cancelled` (to a GD_CANCEL_ reason) from any thread; deadline_ns is
 * CLOCK_MONOTONIC (0: none). */
typedef struct gd_cancel {
    atomic_int cancelled;
    int64_t deadline_ns;
} gd_cancel;

/* Elements a loop processes between two polls of the cancel flag: a few
 * hundred microseconds for the costliest elementwise formulas, well under a
 * millisecond of memory traffic (first-touch page faults included) for
 * copies and reductions. A poll is one clock read, so finer costs nothing
 * measurable. */
#define GD_POLL_ELEMS (1 << 16)

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t gd_now_ns(void);

/* The longest deadline a request or the server may ask for: one day (A7). */
#define GD_DEADLINE_MS_MAX ((int64_t)86400000)

/* from_ns + ms milliseconds, saturating at INT64_MAX (never a signed
 * overflow, whatever ms is); ms <= 0 gives from_ns. */
int64_t gd_deadline_after(int64_t from_ns, int64_t ms);

/* The earlier of two deadlines, where 0 means "none". */
static inline int64_t gd_deadline_min(int64_t a, int64_t b) {
    return !a ? b : !b ? a : a < b ? a : b;
}

/* The one message of a 504: A7 makes the deadline cover the queue, decoding,
 * compute and encoding alike, and where it passes is a race on a loaded
 * machine (a 1 ms deadline may pass before a free worker is even woken), so
 * the answer does not say where; the log line's queue_us does. */
#define GD_DEADLINE_MESSAGE \
    "The computation was stopped: the compute deadline passed or the request was cancelled."

/* Nonzero (and err set to deadline_exceeded) once cancelled or past the
 * deadline; 0 when c is NULL. Cheap enough to call between nodes and every
 * few hundred microseconds inside kernels. */
int gd_cancel_check(const gd_cancel *c, gd_error *err);

#endif
