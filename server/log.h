/* log.h - gradd's log on stderr: one line per request (request id, method,
 * route, status, bytes in and out, queue and compute time) and one per
 * lifecycle event (listening, draining, stopped, errors), as text or as one
 * JSON object per line. Each line goes out whole (one write(2), or within
 * one), so lines from different threads never interleave, and in the order
 * they were logged. Request lines may be batched (gd_log_batch): then they
 * wait in memory until gd_log_flush, an event line, a 5xx line or a full
 * buffer (256 KiB) writes them out.
 * Knows the log format (config.h), core's byte buffer and proto's JSON
 * string escaper; nothing of MHD, requests' contents or the encoder. */
#ifndef GD_SERVER_LOG_H
#define GD_SERVER_LOG_H

#include <stdint.h>

#include "server/config.h"

void gd_log_init(gd_log_format f);
/* From now on, request lines below 5xx wait for gd_log_flush (or the next
 * event) instead of costing a write(2) each: under load that write is a
 * tenth of a small request's CPU. Call before other threads log; the
 * pending lines are also written at exit(). */
void gd_log_batch(void);
/* Write the pending request lines (nothing when not batching). Any thread. */
void gd_log_flush(void);

/* One finished request. Strings may be NULL (logged as "-"). */
typedef struct gd_log_req {
    const char *id;
    const char *method;
    const char *path;
    int status;            /* 0: no response was sent (client gone) */
    uint64_t bytes_in, bytes_out;
    int64_t queue_us, compute_us, total_us;
    const char *code;      /* an error answer's code, else NULL */
    const char *diags;     /* a 422's diagnostic codes, comma-separated, else NULL */
} gd_log_req;

/* The line is logged at "info", or at "error" for a 5xx; an error answer's
 * line ends with code=..., a 422's also with diagnostics=a,b. */
void gd_log_request(const gd_log_req *r);

/* A lifecycle event or an error: level "info", "warn" or "error". */
void gd_log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
