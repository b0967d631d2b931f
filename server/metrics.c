/* metrics.c - atomic counters and the Prometheus text rendering (see
 * metrics.h). Status codes index a 600-wide array per route so that any
 * status is counted without a lookup; only nonzero series are rendered. */
#include "server/metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#define N_STATUS 600

/* Histogram bucket upper bounds in microseconds (and as rendered). */
static const int64_t bucket_us[] = {250, 500, 1000, 2500, 5000, 10000, 25000,
                                    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};
static const char *const bucket_le[] = {"0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                        "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"};
#define N_BUCKETS ((int)(sizeof bucket_us / sizeof bucket_us[0]))

static const char *const route_path[GD_ROUTE__COUNT] = {"/v1/grad", "/v1/eval", "/v1/graphs", "/v1/graphs/{id}",
                                                        "/v1/ops",  "/v1/openapi.json", "/healthz", "/readyz",
                                                        "/metrics", "/",        "/v1/explain", "other"};
static const char *const reject_name[GD_REJ__COUNT] = {"queue_full", "buffered_bytes", "shutdown",
                                                       "body_too_large", "unauthorized", "queue_deadline", "draining",
                                                       "slow_client", "connection_limit"};

struct gd_metrics {
    atomic_uint_fast64_t requests[GD_ROUTE__COUNT][N_STATUS];
    atomic_uint_fast64_t bucket[GD_ROUTE__COUNT][N_BUCKETS]; /* not cumulative; summed when rendered */
    atomic_uint_fast64_t count[GD_ROUTE__COUNT];
    atomic_uint_fast64_t sum_us[GD_ROUTE__COUNT];
    atomic_uint_fast64_t rejected[GD_REJ__COUNT];
    atomic_uint_fast64_t client_gone;
    atomic_uint_fast64_t diagnostics[GD_DIAG__COUNT];
};

const char *gd_route_path(gd_route r) { return r >= 0 && r < GD_ROUTE__COUNT ? route_path[r] : "other"; }

gd_metrics *gd_metrics_new(void) {
    gd_metrics *m = calloc(1, sizeof *m); /* all-zero bits are zero atomics on every target we build for */
    return m;
}

void gd_metrics_free(gd_metrics *m) { free(m); }

static void inc(atomic_uint_fast64_t *c, uint64_t by) { atomic_fetch_add_explicit(c, by, memory_order_relaxed); }
static uint64_t get(const atomic_uint_fast64_t *c) {
    return atomic_load_explicit((atomic_uint_fast64_t *)c, memory_order_relaxed);
}

void gd_metrics_request(gd_metrics *m, gd_route r, int status, int64_t duration_us) {
    if (r < 0 || r >= GD_ROUTE__COUNT) r = GD_ROUTE_OTHER;
    if (status >= 100 && status < N_STATUS) inc(&m->requests[r][status], 1);
    if (duration_us < 0) duration_us = 0;
    for (int b = 0; b < N_BUCKETS; b++)
        if (duration_us <= bucket_us[b]) {
            inc(&m->bucket[r][b], 1);
            break;
        }
    inc(&m->count[r], 1);
    inc(&m->sum_us[r], (uint64_t)duration_us);
}

void gd_metrics_reject(gd_metrics *m, gd_reject why) {
    if (why >= 0 && why < GD_REJ__COUNT) inc(&m->rejected[why], 1);
}

void gd_metrics_diagnostics(gd_metrics *m, const unsigned n[GD_DIAG__COUNT]) {
    for (int c = 0; c < GD_DIAG__COUNT; c++)
        if (n[c]) inc(&m->diagnostics[c], n[c]);
}

void gd_metrics_client_gone(gd_metrics *m) { inc(&m->client_gone, 1); }

static void render_requests(const gd_metrics *m, gd_buf *out) {
    gd_buf_puts(out, "# HELP gradd_requests_total HTTP requests answered, by route and status.\n"
                     "# TYPE gradd_requests_total counter\n");
    for (int r = 0; r < GD_ROUTE__COUNT; r++)
        for (int s = 100; s < N_STATUS; s++) {
            uint64_t v = get(&m->requests[r][s]);
            if (v)
                gd_buf_printf(out, "gradd_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64 "\n", route_path[r],
                              s, v);
        }
}

/* Cumulative buckets per route that has seen requests. */
static void render_histogram(const gd_metrics *m, gd_buf *out) {
    gd_buf_puts(out, "# HELP gradd_request_duration_seconds Receipt-to-response time of requests, by route.\n"
                     "# TYPE gradd_request_duration_seconds histogram\n");
    for (int r = 0; r < GD_ROUTE__COUNT; r++) {
        uint64_t n = get(&m->count[r]), cum = 0;
        if (!n) continue;
        for (int b = 0; b < N_BUCKETS; b++) {
            cum += get(&m->bucket[r][b]);
            gd_buf_printf(out, "gradd_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %" PRIu64 "\n",
                          route_path[r], bucket_le[b], cum);
        }
        /* count is read after the buckets: +Inf is never below the last bucket */
        uint64_t total = get(&m->count[r]);
        gd_buf_printf(out, "gradd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                      route_path[r], total < cum ? cum : total);
        uint64_t us = get(&m->sum_us[r]);
        gd_buf_printf(out, "gradd_request_duration_seconds_sum{route=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n",
                      route_path[r], us / 1000000, us % 1000000);
        gd_buf_printf(out, "gradd_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", route_path[r],
                      total < cum ? cum : total);
    }
}

int gd_metrics_render(const gd_metrics *m, gd_buf *out, int64_t in_flight, int64_t queue_depth,
                      const gd_graphs_stats *graphs, const char *version) {
    render_requests(m, out);
    render_histogram(m, out);
    gd_buf_printf(out,
                  "# HELP gradd_in_flight Requests accepted for compute and not yet answered.\n"
                  "# TYPE gradd_in_flight gauge\n"
                  "gradd_in_flight %" PRId64 "\n"
                  "# HELP gradd_queue_depth Jobs waiting for a worker.\n"
                  "# TYPE gradd_queue_depth gauge\n"
                  "gradd_queue_depth %" PRId64 "\n"
                  "# HELP gradd_rejected_total Requests refused before compute, by reason.\n"
                  "# TYPE gradd_rejected_total counter\n",
                  in_flight, queue_depth);
    for (int k = 0; k < GD_REJ__COUNT; k++)
        gd_buf_printf(out, "gradd_rejected_total{reason=\"%s\"} %" PRIu64 "\n", reject_name[k],
                      get(&m->rejected[k]));
    gd_buf_printf(out,
                  "# HELP gradd_client_gone_total Computations cancelled, queued or running, because the client "
                  "disconnected.\n"
                  "# TYPE gradd_client_gone_total counter\n"
                  "gradd_client_gone_total %" PRIu64 "\n",
                  get(&m->client_gone));
    gd_buf_puts(out, "# HELP gradd_diagnostics_total Diagnostics sent in answers (200 and 422), by code.\n"
                     "# TYPE gradd_diagnostics_total counter\n");
    for (int c = 0; c < GD_DIAG__COUNT; c++)
        gd_buf_printf(out, "gradd_diagnostics_total{code=\"%s\"} %" PRIu64 "\n", gd_diag_code_name((gd_diag_code)c),
                      get(&m->diagnostics[c]));
    gd_buf_printf(out,
                  "# HELP gradd_graphs_held Graphs held: registered (POST /v1/graphs) and sent inline more than once.\n"
                  "# TYPE gradd_graphs_held gauge\n"
                  "gradd_graphs_held %" PRId64 "\n"
                  "# HELP gradd_graph_cache_bytes Bytes the held graphs take (bounded by --graph-cache).\n"
                  "# TYPE gradd_graph_cache_bytes gauge\n"
                  "gradd_graph_cache_bytes %" PRId64 "\n"
                  "# HELP gradd_graph_cache_hits_total Requests whose graph_id named a held graph.\n"
                  "# TYPE gradd_graph_cache_hits_total counter\n"
                  "gradd_graph_cache_hits_total %" PRId64 "\n"
                  "# HELP gradd_graph_cache_misses_total Requests whose graph_id named no held graph (404).\n"
                  "# TYPE gradd_graph_cache_misses_total counter\n"
                  "gradd_graph_cache_misses_total %" PRId64 "\n",
                  graphs->held, graphs->bytes, graphs->hits, graphs->misses);
    gd_buf_printf(out,
                  "# HELP gradd_build_info Build information; the value is always 1.\n"
                  "# TYPE gradd_build_info gauge\n"
                  "gradd_build_info{version=\"%s\"} 1\n",
                  version);
    return out->failed ? -1 : 0;
}
