/* compute.h - the work of one POST /v1/grad, /v1/eval or /v1/explain on a
 * worker thread: decode the body (proto), run it (core) in a fresh arena under
 * the request's cancel flag and deadline, and encode the answer (proto) into a
 * gd_reply with the status the contract gives it (200, 4xx, 422, 504 ...);
 * for /v1/explain the answer is the run's picture (proto/explain.h), drawn as
 * SVG by render.h unless DOT text is asked for.
 * Knows proto and core, not HTTP or MHD. */
#ifndef GD_SERVER_COMPUTE_H
#define GD_SERVER_COMPUTE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/request.h"
#include "server/graphs.h"
#include "server/reply.h"

typedef struct gd_compute_in {
    int endpoint;                /* GD_EP_GRAD, GD_EP_EVAL, GD_EP_REGISTER or GD_EP_EXPLAIN */
    int explain_dot;             /* GD_EP_EXPLAIN: answer DOT text, not SVG (Accept, A4) */
    int explain_max_nodes;       /* GD_EP_EXPLAIN: larger graphs are 413 (--explain-max-nodes) */
    gd_graphs *graphs;           /* the held graphs: registered into, and looked up by graph_id */
    const char *body;            /* the JSON text, json_len bytes */
    size_t json_len;
    const unsigned char *bin;    /* binary section or NULL */
    size_t bin_len;
    const gd_decode_limits *lim;
    size_t arena_limit;          /* bytes the request's arena may hold */
    int64_t recv_ns;             /* receipt of the full request (CLOCK_MONOTONIC) */
    int64_t started_ns;          /* when a worker took it */
    const char *request_id;      /* for the log line of an internal error */
    /* Called once the body is no longer needed, so that its memory can be
     * released: after encoding, since the request's binary tensors point
     * into the body (wire.h), or after decoding a registration; may be NULL. */
    void (*body_done)(void *arg);
    void *body_done_arg;
    /* > 0: the caller is the network thread, which runs only small work
     * itself: once decoded, a graph whose gd_graph_work (validate.h) passes
     * this is not run but deferred (see gd_compute). 0: run whatever it is. */
    int64_t inline_work_max;
} gd_compute_in;

/* Compute the answer into `out` (initialised by the caller; replaced): a
 * gradient or an evaluation, or a registration (A3: 201, or 200 when the
 * graph was already held).
 * cancel->deadline_ns holds the server's deadline; the request's own
 * "deadline_ms" (from recv_ns) may only make it earlier. A computation
 * stopped by cancel->cancelled is answered 503 for a shutdown, 504 when the
 * client left (an answer nobody reads). */
/* Returns 0, or GD_COMPUTE_DEFERRED when in->inline_work_max refused the
 * work: nothing was answered (out untouched, body_done not called) and the
 * request should be computed again on a worker. */
#define GD_COMPUTE_DEFERRED 1
int gd_compute(const gd_compute_in *in, gd_cancel *cancel, gd_reply *out);

/* Memory stays warm per worker between requests (each keeps the big
 * buffers of its last requests for the next); once no request has run for
 * idle_ms, the workers' caches are freed and malloc_trim(0) (glibc) hands
 * the free pages of every malloc arena back to the system, so that an idle
 * gradd's RSS returns near where it started (A7). Call it now and then from
 * any thread; it does the trimming once per idle period and returns 1 then,
 * else 0. idle_ms 0: never. */
int gd_compute_trim_idle(int64_t idle_ms);

/* A block of at least n bytes, 64-aligned, uninitialised: recycled warm
 * from the blocks that binary responses and request bodies gave back (the
 * cache gd_compute_trim_idle empties), else new (huge pages asked for from
 * 8 MiB on). For memory that leaves one request's arena, such as a big
 * request body, filled on MHD's thread and released on a worker's. Any
 * thread; NULL when out of memory. The caller hands it back with
 * gd_compute_block_done (any thread). */
void *gd_compute_block(size_t n);
void gd_compute_block_done(void *p);

#endif
