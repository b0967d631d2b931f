/* conns.h - the open connections as the edge guards them: how many there
 * are (a connection opened past --max-connections is marked to be answered
 * 503), the request-body bytes buffered per client address and in all
 * (--max-buffered, --max-buffered-per-ip), and the receive deadlines: the
 * headers within --header-timeout-ms of the connection waiting for a
 * request, then the body at --min-body-rate bytes/s over every period of
 * --header-timeout-ms.
 *
 * A watchdog thread enforces the deadlines by shutting the late socket down
 * (shutdown(2), never close: the socket stays its owner's, who sees the end
 * of the stream and closes it). Every record is under one mutex, which
 * gd_conn_close also takes, so a socket is never touched after its owner let
 * go of it. Knows sockets and the metrics; nothing of HTTP or libmicrohttpd. */
#ifndef GD_SERVER_CONNS_H
#define GD_SERVER_CONNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/metrics.h"

typedef struct gd_conns gd_conns;
typedef struct gd_conn gd_conn;

typedef struct gd_conns_limits {
    int max_connections;          /* open connections past this are marked over the cap */
    int64_t header_timeout_ms;    /* headers within this; also the body rate's period */
    int64_t min_body_rate;        /* bytes/s a body must keep up, per period */
    int64_t max_buffered;         /* body bytes held across all connections */
    int64_t max_buffered_per_ip;  /* body bytes held for one client address */
} gd_conns_limits;

/* The registry and its watchdog thread (lim copied; m borrowed, may be
 * NULL). NULL when out of memory or the thread cannot start. */
gd_conns *gd_conns_new(const gd_conns_limits *lim, gd_metrics *m);
/* Stop the watchdog and free. Every connection must be closed first. */
void gd_conns_free(gd_conns *cs);

/* A new connection on socket fd from address sa: waiting for its headers.
 * NULL when out of memory (the caller then drops the connection). */
gd_conn *gd_conn_open(gd_conns *cs, int fd, const struct sockaddr *sa);
/* The connection is gone: forget it (its buffered bytes must be released). */
void gd_conn_close(gd_conns *cs, gd_conn *c);
/* Was it opened past --max-connections? */
int gd_conn_over_cap(const gd_conn *c);

/* The headers are in and a body follows: the body rate is watched from now. */
void gd_conn_body_started(gd_conns *cs, gd_conn *c);
/* n more body bytes arrived. */
void gd_conn_body_bytes(gd_conns *cs, gd_conn *c, size_t n);
/* Nothing is expected from the client now (the request is complete or
 * answered): no receive deadline until gd_conn_wait_request. */
void gd_conn_busy(gd_conns *cs, gd_conn *c);
/* The request is over; the connection waits for the next one's headers. */
void gd_conn_wait_request(gd_conns *cs, gd_conn *c);
/* The connection was answered in the middle of its body and is to close:
 * its owner reads and drops what still comes for a second (so that the
 * client, still sending, reads the answer rather than a reset), then the
 * watchdog shuts it down. */
void gd_conn_linger(gd_conns *cs, gd_conn *c);

/* Reserve n bytes of body buffer for a request on c against both budgets.
 * 0, or -1 (nothing reserved) when either would be exceeded. Any thread. */
int gd_conns_reserve(gd_conns *cs, gd_conn *c, int64_t n);
/* Give n reserved bytes back. Any thread, while c is open. */
void gd_conns_release(gd_conns *cs, gd_conn *c, int64_t n);

#endif
