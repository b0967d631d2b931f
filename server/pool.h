/* pool.h - gradd's worker pool: a fixed set of compute threads fed by a
 * bounded FIFO of jobs, and a watchdog thread that answers a job whose
 * deadline passes while it is still queued.
 *
 * The pool knows nothing of HTTP: a job is a gd_cancel plus callbacks that
 * the owner (http.c) provides. A slot is reserved before a job is handed
 * over (gd_pool_reserve), so the owner can prepare (suspend the connection)
 * knowing the job will be taken. Every submitted job ends with exactly one
 * call of `done` (after `run`) or `drop` (never run), on a pool thread or
 * in gd_pool_cancel; after that call the pool no longer touches the job, so
 * the callback may hand the job's memory to another thread. */
#ifndef GD_SERVER_POOL_H
#define GD_SERVER_POOL_H

#include <stdint.h>

#include "core/error.h"
#include "core/cancel.h"

typedef struct gd_job gd_job;

struct gd_job {
    gd_cancel cancel;                      /* deadline_ns set by the owner before submit; run may lower it */
    void (*run)(gd_job *job);              /* the work, on a worker thread */
    void (*done)(gd_job *job);             /* after run, once the pool has let go of the job */
    void (*drop)(gd_job *job, gd_err why); /* instead of run: DEADLINE_EXCEEDED (expired while queued,
                                              or its client left: cancel.cancelled says so)
                                              or OVERLOADED (the pool is shutting down) */
    /* Optional: nonzero once nobody waits for the answer (the client
     * disconnected). The watchdog asks every GD_POOL_LIVENESS_MS while the
     * job is queued or running, with the pool's lock held (so it must be
     * quick and must not call the pool); a yes sets cancel.cancelled to
     * GD_CANCEL_CLIENT_GONE: a queued job is dropped, a running one stops
     * at its next cancellation check. */
    int (*gone)(gd_job *job);
    int64_t queued_ns, started_ns;         /* set by the pool (CLOCK_MONOTONIC) */
    gd_job *prev, *next;                   /* pool-internal list links */
};

/* How often the watchdog asks jobs whether their client is still there. */
#define GD_POOL_LIVENESS_MS 10

typedef struct gd_pool gd_pool;

/* Start `workers` threads and the watchdog; at most `capacity` jobs wait.
 * NULL when threads or memory cannot be had. */
gd_pool *gd_pool_new(int workers, int capacity);

enum { GD_POOL_OK = 0, GD_POOL_FULL = 1, GD_POOL_CLOSED = 2 };

/* Claim a queue slot: GD_POOL_OK, GD_POOL_FULL or GD_POOL_CLOSED. A claimed
 * slot is used by gd_pool_submit or given back by gd_pool_unreserve. */
int gd_pool_reserve(gd_pool *p);
void gd_pool_unreserve(gd_pool *p);
/* Queue a job into a reserved slot. If the pool was cancelled meanwhile,
 * the job is dropped (OVERLOADED) at once, in this thread. */
void gd_pool_submit(gd_pool *p, gd_job *job);

int gd_pool_depth(gd_pool *p); /* jobs waiting now */

/* Refuse new reservations from now on; queued and running jobs go on. */
void gd_pool_close(gd_pool *p);
/* Close, drop every queued job (OVERLOADED) and set `cancelled` on the
 * running ones, which then stop at their next cancellation check. */
void gd_pool_cancel(gd_pool *p);
/* Cancel, join every thread and free the pool. NULL is fine. */
void gd_pool_free(gd_pool *p);

#endif
