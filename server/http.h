/* http.h - gradd's HTTP front: a libmicrohttpd daemon (one internal epoll
 * thread, suspend/resume) that checks the framing and media type, routes
 * requests, buffers bodies under a per-request, a per-address and a global
 * cap (the last two and the receive deadlines are conns.h's), checks auth
 * and CORS, answers the cheap endpoints itself and hands /v1/grad and
 * /v1/eval to the worker pool with the connection suspended until a worker
 * resumes it with the answer. Answers decided from the headers are sent
 * before the body is read.
 *
 * The lifecycle calls (drain, quiesce, stop) come from main's thread; the
 * rest runs on MHD's thread and the pool's. gd_http_stop must only be
 * called once gd_http_in_flight is 0 and the pool takes no more work:
 * MHD must never be stopped with a connection suspended. The only module
 * that knows libmicrohttpd; it knows config, conns, metrics, the pool and compute,
 * and of proto the decode limits and the GET /v1/ops body. */
#ifndef GD_SERVER_HTTP_H
#define GD_SERVER_HTTP_H

#include <stddef.h>

#include "server/config.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/tls.h"

typedef struct gd_http gd_http;

/* Bind cfg->host:cfg->port and start serving with `pool` for compute and
 * `m` for counters, over HTTPS when tls is not NULL (all borrowed; they must
 * outlive the daemon). Returns NULL with a message in msg when the address
 * cannot be bound or MHD does not start. */
gd_http *gd_http_start(const gd_config *cfg, const gd_tls *tls, gd_pool *pool, gd_metrics *m, char *msg,
                       size_t msg_size);

int gd_http_port(const gd_http *h);      /* the bound port (useful with --port 0) */
const char *gd_http_poll_mode(const gd_http *h); /* "epoll" or "poll" */

/* From now on /readyz answers 503 and every response carries
 * "Connection: close"; requests are still served. */
void gd_http_drain(gd_http *h);
/* Stop accepting new connections (the open ones go on). */
void gd_http_quiesce(gd_http *h);
/* Requests accepted for compute and not yet answered (suspended ones). */
int gd_http_in_flight(gd_http *h);
/* Open connections. */
unsigned gd_http_connections(gd_http *h);
/* Stop MHD (closing every connection) and free. NULL is fine. */
void gd_http_stop(gd_http *h);

#endif
