/* metrics.h - gradd's counters and their Prometheus text exposition for
 * GET /metrics: requests by route and status, a latency histogram by
 * route, requests rejected before compute by reason, diagnostics sent by
 * code, and build info. The
 * gauges (in flight, queue depth) are read from their owners at render
 * time. Every counter is a relaxed atomic: any thread may count, none
 * takes a lock. No allocation except the rendered text. Knows only its
 * counters, core's byte buffer and the diagnostic codes: nothing of MHD, proto or the pool (the
 * gauges and the version are passed in). */
#ifndef GD_SERVER_METRICS_H
#define GD_SERVER_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/diagnose.h"

/* The route label: each served path, and "other" for everything else. */
typedef enum gd_route {
    GD_ROUTE_GRAD = 0,
    GD_ROUTE_EVAL,
    GD_ROUTE_GRAPHS,  /* POST /v1/graphs */
    GD_ROUTE_GRAPH,   /* /v1/graphs/{id} */
    GD_ROUTE_OPS,
    GD_ROUTE_OPENAPI, /* GET /v1/openapi.json */
    GD_ROUTE_HEALTHZ,
    GD_ROUTE_READYZ,
    GD_ROUTE_METRICS,
    GD_ROUTE_UI,      /* GET /, the playground page */
    GD_ROUTE_EXPLAIN, /* POST /v1/explain */
    GD_ROUTE_OTHER,
    GD_ROUTE__COUNT
} gd_route;

/* The path of a route ("/v1/grad"; "other" for GD_ROUTE_OTHER). */
const char *gd_route_path(gd_route r);

/* Why a request was refused before any compute. */
typedef enum gd_reject {
    GD_REJ_QUEUE_FULL = 0,   /* 503: the job queue was full */
    GD_REJ_BUFFERED,         /* 503: the global cap on buffered body bytes */
    GD_REJ_SHUTDOWN,         /* 503: the server is shutting down */
    GD_REJ_BODY_TOO_LARGE,   /* 413: body over --max-body */
    GD_REJ_UNAUTHORIZED,     /* 401 */
    GD_REJ_QUEUE_DEADLINE,   /* 504: the deadline passed while queued */
    GD_REJ_DRAINING,         /* 503: draining, to a balancer that retries elsewhere (Gradd-Drain-Retry) */
    GD_REJ_SLOW_CLIENT,      /* closed: headers or body not received in time (conns.h) */
    GD_REJ_CONNECTION_LIMIT, /* 503: a connection opened past --max-connections */
    GD_REJ__COUNT
} gd_reject;

typedef struct gd_metrics gd_metrics;

/* The registered graphs' gauges and counters, read from their owner
 * (server/graphs.h) at render time. */
typedef struct gd_graphs_stats {
    int64_t held, bytes, hits, misses;
} gd_graphs_stats;

/* A zeroed set of counters; NULL when out of memory. gd_metrics_free. */
gd_metrics *gd_metrics_new(void);
void gd_metrics_free(gd_metrics *m);

/* A finished request: its route, status (100..599) and receipt-to-response time. */
void gd_metrics_request(gd_metrics *m, gd_route r, int status, int64_t duration_us);
void gd_metrics_reject(gd_metrics *m, gd_reject why);
/* The diagnostics an answer carried: n[c] of code c (core/diagnose.h). */
void gd_metrics_diagnostics(gd_metrics *m, const unsigned n[GD_DIAG__COUNT]);
/* A computation (queued or running) cancelled because its client disconnected (A7). */
void gd_metrics_client_gone(gd_metrics *m);

/* Append the exposition (text format 0.0.4) to out, with the held graphs'
 * gauges and counters (graphs.h). Returns 0, -1 when out of memory. */
int gd_metrics_render(const gd_metrics *m, gd_buf *out, int64_t in_flight, int64_t queue_depth,
                      const gd_graphs_stats *graphs, const char *version);

#endif
