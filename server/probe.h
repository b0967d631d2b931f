/* probe.h - `gradd --healthcheck`: ask a running gradd for GET /healthz
 * over a plain socket or TLS (HTTP/1.0), for container health checks that
 * have no curl. Only the status line is read. Knows sockets, GnuTLS and
 * HTTP/1.0, nothing of gradd's other modules. */
#ifndef GD_SERVER_PROBE_H
#define GD_SERVER_PROBE_H

#include <stddef.h>

/* 0 when http://host:port/healthz (https:// when tls, the server's
 * certificate not verified) answers 200 within timeout_ms, else 1 with the
 * reason in msg. A wildcard host (0.0.0.0, ::) probes loopback. */
int gd_probe_healthz(const char *host, int port, int tls, int timeout_ms, char *msg, size_t msg_size);

#endif
