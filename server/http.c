/* http.c - the libmicrohttpd front of gradd (see http.h).
 *
 * A request's life, all on MHD's thread unless said otherwise:
 *   1. headers: route, method, auth and CORS preflight are decided; a
 *      Content-Length over --max-body is answered 413 at once (MHD then
 *      closes the connection without reading the body); the body's bytes
 *      are reserved against the global --max-buffered cap (503 past it);
 *   2. body: buffered, or discarded when an answer is already decided (a
 *      chunked body that grows past the cap is discarded, then 413);
 *   3. complete: cheap endpoints are answered here; /v1/grad and /v1/eval
 *      claim a pool slot (503 with Retry-After when full), suspend the
 *      connection, then queue the job (in that order: a resume must never
 *      come before its suspend);
 *   4. a worker computes the reply (compute.c) or the pool drops the job
 *      (deadline passed in the queue: 504; shutdown: 503), then resumes
 *      the connection; MHD calls us again and the reply is queued;
 *   5. completed: one log line, the metrics, and the request is freed.
 * A request's memory (struct req) is touched by one thread at a time: MHD
 * does not look at a suspended connection, and the worker's last touch is
 * MHD_resume_connection, whose lock orders it before MHD's next call. */
#include "server/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "server/compute.h"
#include "gd_config.h"
#include "server/log.h"
#include "proto/encode.h"
#include "proto/peek.h"
#include "server/reply.h"

#define ID_MAX 128        /* longest X-Request-Id echoed back */
#define GD_DRAIN_RETRY_HEADER "Gradd-Drain-Retry" /* sent by balancers that retry a 503 elsewhere */
#define PATH_LOG_MAX 200  /* longest path kept for the log */

struct gd_http {
    const gd_config *cfg;
    gd_pool *pool;
    gd_metrics *metrics;
    struct MHD_Daemon *d;
    int listen_fd, port;
    int quiesced_fd;          /* the listening socket after quiesce: closed after MHD stops */
    const char *poll_mode;
    atomic_int draining;
    atomic_int in_flight;     /* suspended requests */
    atomic_llong buffered;    /* body bytes reserved across connections */
    gd_decode_limits lim;
    gd_buf ops;               /* the GET /v1/ops body, built once */
    uint64_t id_seed;
    atomic_ullong id_next;
};

typedef enum meth { M_GET, M_HEAD, M_POST, M_OPTIONS, M_OTHER } meth;

typedef struct route_def {
    const char *path;
    gd_route route;
    int compute;              /* 1: POST to the pool; 0: GET/HEAD answered here */
    int auth;                 /* a /v1/ route: needs the bearer token when --token-file is set */
    const char *allow;
} route_def;

static const route_def routes[] = {
    {"/v1/grad", GD_ROUTE_GRAD, 1, 1, "POST, OPTIONS"},
    {"/v1/eval", GD_ROUTE_EVAL, 1, 1, "POST, OPTIONS"},
    {"/v1/ops", GD_ROUTE_OPS, 0, 1, "GET, HEAD, OPTIONS"},
    {"/healthz", GD_ROUTE_HEALTHZ, 0, 0, "GET, HEAD, OPTIONS"},
    {"/readyz", GD_ROUTE_READYZ, 0, 0, "GET, HEAD, OPTIONS"},
    {"/metrics", GD_ROUTE_METRICS, 0, 0, "GET, HEAD, OPTIONS"},
};
#define N_ROUTES ((int)(sizeof routes / sizeof routes[0]))

/* One request, from its headers to its completion. */
typedef struct req {
    gd_job job;               /* the pool's view of the request */
    gd_http *h;
    struct MHD_Connection *conn;
    const route_def *rd;      /* NULL: no such path */
    meth m;
    char method[16];
    char path[PATH_LOG_MAX + 1];
    char id[ID_MAX + 1];
    int64_t start_ns, recv_ns, answered_ns;
    char *body;               /* malloc'd, cap bytes */
    size_t len, cap;
    long long reserved;       /* bytes of h->buffered held for this body */
    int discard;              /* body bytes are dropped: the answer is decided */
    uint64_t bytes_in;
    size_t json_len;          /* the JSON part of the body (all of it unless binary framing) */
    int framed;               /* binary framing: the rest of the body is the binary section */
    gd_reply reply;
    int have_reply;           /* reply is ready to be queued */
    int sent;                 /* a response is queued: MHD has no more use for us */
    int counted;              /* counted in h->in_flight */
    int64_t queue_us, compute_us;
    int fd;                   /* the client's socket, polled while the job waits or runs (-1: unknown) */
    int status;
    uint64_t bytes_out;
} req;

static const char HEALTHZ_BODY[] = "{\"status\":\"ok\"}";
static const char READYZ_BODY[] = "{\"status\":\"ready\"}";
static const char INTERNAL_BODY[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"The response could not be built.\"}}";

/* ---- small helpers ------------------------------------------------------------ */

static const char *header(struct MHD_Connection *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Constant-time comparison: the time depends on the secret's length only. */
static int ct_equal(const char *given, size_t n_given, const char *secret, size_t n_secret) {
    volatile unsigned char diff = (unsigned char)(n_given != n_secret);
    for (size_t i = 0; i < n_secret; i++) {
        unsigned char g = i < n_given ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

/* Does the request carry "Authorization: Bearer <the token>"? */
static int authorized(const gd_http *h, struct MHD_Connection *c) {
    if (!h->cfg->token_len) return 1;
    const char *v = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncasecmp(v, "Bearer ", 7) != 0) return 0;
    v += 7;
    while (*v == ' ') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return ct_equal(v, n, h->cfg->token, h->cfg->token_len);
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The client's X-Request-Id when it is 1..128 printable non-space ASCII
 * characters, else 16 fresh hex digits. */
static void set_request_id(gd_http *h, req *r) {
    const char *v = header(r->conn, "X-Request-Id");
    size_t n = v ? strlen(v) : 0;
    int ok = n > 0 && n <= ID_MAX;
    for (size_t i = 0; ok && i < n; i++) ok = v[i] > 0x20 && v[i] < 0x7f;
    if (ok) {
        memcpy(r->id, v, n + 1);
        return;
    }
    uint64_t k = atomic_fetch_add(&h->id_next, 1);
    snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)splitmix64(h->id_seed ^ (k * 0xd1b54a32d192ed03ULL)));
}

static meth parse_method(const char *m) {
    if (strcmp(m, "GET") == 0) return M_GET;
    if (strcmp(m, "HEAD") == 0) return M_HEAD;
    if (strcmp(m, "POST") == 0) return M_POST;
    if (strcmp(m, "OPTIONS") == 0) return M_OPTIONS;
    return M_OTHER;
}

static const route_def *find_route(const char *url) {
    for (int i = 0; i < N_ROUTES; i++)
        if (strcmp(url, routes[i].path) == 0) return &routes[i];
    return NULL;
}

/* Count n more body bytes against the global cap; -1 (nothing counted) past it. */
static int reserve_bytes(gd_http *h, req *r, long long n) {
    long long now = atomic_fetch_add(&h->buffered, n) + n;
    if (now > (long long)h->cfg->max_buffered) {
        atomic_fetch_sub(&h->buffered, n);
        return -1;
    }
    r->reserved += n;
    return 0;
}

/* Free the body and give its bytes back to the global budget. Called by
 * whichever thread holds the request. */
static void release_body(req *r) {
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    if (r->reserved) atomic_fetch_sub(&r->h->buffered, r->reserved);
    r->reserved = 0;
}

/* Decide the answer now: the body (if any) will be discarded. */
static void decide(req *r) {
    r->have_reply = 1;
    r->discard = 1;
    release_body(r);
}

/* ---- responses ------------------------------------------------------------------ */

/* JSON and binary section of a binary-framed answer, freed with the response. */
typedef struct framed {
    gd_buf json, bin;
} framed;

static void free_framed(void *p) {
    framed *f = p;
    gd_buf_free(&f->json);
    gd_buf_free(&f->bin);
    free(f);
}

/* Turn the reply's body into an MHD response, taking its buffers. */
static struct MHD_Response *make_response(gd_reply *p) {
    if (p->static_body)
        return MHD_create_response_from_buffer(p->static_len, (void *)p->static_body, MHD_RESPMEM_PERSISTENT);
    if (!p->binary) {
        if (!p->body.data) return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(p->body.len, p->body.data, MHD_RESPMEM_MUST_FREE);
        if (resp) gd_buf_init(&p->body); /* MHD frees the data now */
        return resp;
    }
    framed *f = malloc(sizeof *f);
    if (!f) return NULL;
    f->json = p->body, f->bin = p->bin;
    gd_buf_init(&p->body);
    gd_buf_init(&p->bin);
    struct MHD_IoVec iov[2] = {{f->json.data, f->json.len}, {f->bin.data, f->bin.len}};
    struct MHD_Response *resp = MHD_create_response_from_iovec(iov, f->bin.len ? 2 : 1, free_framed, f);
    if (!resp) free_framed(f);
    return resp;
}

/* Headers every answer carries, and those the reply asks for. */
static void add_headers(gd_http *h, req *r, struct MHD_Response *resp, const gd_reply *p, size_t json_len) {
    const gd_config *cfg = h->cfg;
    char num[32];
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (p->status != 204) {
        const char *ct = p->binary ? GD_CT_BINARY : p->content_type ? p->content_type : GD_CT_JSON;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    }
    if (p->binary) {
        snprintf(num, sizeof num, "%zu", json_len);
        MHD_add_response_header(resp, "Gradd-Json-Length", num);
    }
    if (p->retry_after) {
        snprintf(num, sizeof num, "%d", p->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (p->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, p->allow);
    if (p->www_authenticate) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"gradd\"");
    if (cfg->cors_origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", cfg->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id, Gradd-Json-Length, Retry-After");
        if (strcmp(cfg->cors_origin, "*") != 0) MHD_add_response_header(resp, "Vary", "Origin");
        if (r->m == M_OPTIONS && r->rd) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->rd->allow);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, Gradd-Json-Length, X-Request-Id");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
        }
    }
    if (atomic_load(&h->draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Queue the decided reply on the connection (MHD's thread only). */
static enum MHD_Result send_reply(gd_http *h, req *r) {
    gd_reply *p = &r->reply;
    if (!p->static_body && (p->body.failed || p->bin.failed)) {
        gd_log_event("error", "request %s: out of memory building a %d response", r->id, p->status);
        gd_reply_static(p, 500, INTERNAL_BODY, sizeof INTERNAL_BODY - 1);
    }
    size_t json_len = p->static_body ? p->static_len : p->body.len;
    uint64_t total = json_len + (p->binary ? p->bin.len : 0);
    struct MHD_Response *resp = make_response(p);
    r->have_reply = 0;
    if (r->counted) {
        r->counted = 0;
        atomic_fetch_sub(&h->in_flight, 1);
    }
    if (!resp) return MHD_NO;
    add_headers(h, r, resp, p, json_len);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    r->sent = 1;
    r->status = p->status;
    r->bytes_out = total;
    r->answered_ns = gd_now_ns();
    return ok;
}

/* ---- the cheap endpoints ---------------------------------------------------------- */

/* 204 to OPTIONS on a known path, with Allow (add_headers adds the CORS
 * preflight headers when --cors-origin is set). Never needs auth. */
static void preflight(req *r) {
    gd_reply_static(&r->reply, 204, "", 0);
    r->reply.allow = r->rd->allow;
}

/* Answer GET/HEAD of /v1/ops, /healthz, /readyz, /metrics. */
static void answer_get(gd_http *h, req *r) {
    gd_reply *p = &r->reply;
    switch (r->rd->route) {
    case GD_ROUTE_OPS:
        gd_reply_static(p, 200, h->ops.data, h->ops.len);
        break;
    case GD_ROUTE_HEALTHZ:
        gd_reply_static(p, 200, HEALTHZ_BODY, sizeof HEALTHZ_BODY - 1);
        break;
    case GD_ROUTE_READYZ:
        if (atomic_load(&h->draining))
            gd_reply_errorf(p, GD_E_OVERLOADED, NULL, "The server is draining and takes no new work.");
        else gd_reply_static(p, 200, READYZ_BODY, sizeof READYZ_BODY - 1);
        p->retry_after = 0;
        break;
    default:
        gd_reply_reset(p);
        p->status = 200;
        p->content_type = "text/plain; version=0.0.4; charset=utf-8";
        gd_metrics_render(h->metrics, &p->body, atomic_load(&h->in_flight), gd_pool_depth(h->pool), PACKAGE_VERSION);
        break;
    }
    r->have_reply = 1;
}

/* Route, method and auth, decided from the headers alone. Returns 1 when
 * the answer is decided (404, 405, 401, OPTIONS), 0 to go on. */
static int precheck(gd_http *h, req *r) {
    if (!r->rd) {
        gd_reply_errorf(&r->reply, GD_E_NOT_FOUND, NULL, "No route %s %s; the routes are POST /v1/grad, "
                        "POST /v1/eval, GET /v1/ops, GET /healthz, GET /readyz, GET /metrics.", r->method, r->path);
        return 1;
    }
    if (r->m == M_OPTIONS) {
        preflight(r);
        return 1;
    }
    int ok = r->rd->compute ? r->m == M_POST : (r->m == M_GET || r->m == M_HEAD);
    if (!ok) {
        gd_reply_errorf(&r->reply, GD_E_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s; allowed: %s.", r->method,
                        r->rd->path, r->rd->allow);
        r->reply.allow = r->rd->allow;
        return 1;
    }
    if (r->rd->auth && !authorized(h, r->conn)) {
        gd_reply_errorf(&r->reply, GD_E_UNAUTHORIZED, NULL,
                        "This server requires the header 'Authorization: Bearer <token>' with a valid token.");
        r->reply.www_authenticate = 1;
        gd_metrics_reject(h->metrics, GD_REJ_UNAUTHORIZED);
        return 1;
    }
    /* A balancer that sends Gradd-Drain-Retry promises to retry a 503 on
     * another replica (deploy/nginx does, with proxy_next_upstream http_503),
     * so a draining replica turns its work away at once: it leaves such a
     * balancer's rotation while it drains, before it stops accepting, even
     * when the balancer cannot watch /readyz. Clients without the header are
     * served until the drain ends, as --drain-ms promises. */
    if (r->rd->compute && atomic_load(&h->draining) && header(r->conn, GD_DRAIN_RETRY_HEADER)) {
        gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                        "This replica is draining; the balancer should retry the request on another one.");
        gd_metrics_reject(h->metrics, GD_REJ_DRAINING);
        return 1;
    }
    return 0;
}

/* ---- the body ------------------------------------------------------------------------ */

/* A body announced by Content-Length: over --max-body is answered 413 now;
 * otherwise its bytes are reserved and its buffer allocated at once. */
static enum MHD_Result expect_body(gd_http *h, req *r, const char *cl) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end || n > (unsigned long long)h->cfg->max_body) {
        gd_reply_errorf(&r->reply, GD_E_TOO_LARGE, NULL, "The request body has %s bytes; the limit is %lld bytes.",
                        cl, (long long)h->cfg->max_body);
        gd_metrics_reject(h->metrics, GD_REJ_BODY_TOO_LARGE);
        decide(r);
        return send_reply(h, r);
    }
    if (n == 0) return MHD_YES;
    if (reserve_bytes(h, r, (long long)n) || !(r->body = malloc((size_t)n))) {
        gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                        "The server holds too many request bodies right now; retry later.");
        gd_metrics_reject(h->metrics, GD_REJ_BUFFERED);
        decide(r);
        return send_reply(h, r);
    }
    r->cap = (size_t)n;
    return MHD_YES;
}

/* Headers are in: route, check, and prepare for the body. */
static enum MHD_Result on_headers(gd_http *h, req *r) {
    if (precheck(h, r)) {
        decide(r);
        return MHD_YES;
    }
    if (!r->rd->compute) {
        r->discard = 1; /* a GET with a body: ignore it */
        return MHD_YES;
    }
    const char *cl = header(r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl ? expect_body(h, r, cl) : MHD_YES;
}

/* Grow the buffer of a body without Content-Length (chunked) to hold `need`
 * bytes, counting the growth against the global cap. 0, or -1 past it. */
static int grow_body(gd_http *h, req *r, size_t need) {
    size_t cap = r->cap ? r->cap : 16384;
    while (cap < need) cap *= 2;
    if (cap > (size_t)h->cfg->max_body) cap = (size_t)h->cfg->max_body;
    if (reserve_bytes(h, r, (long long)(cap - r->cap))) return -1;
    char *b = realloc(r->body, cap);
    if (!b) return -1;
    r->body = b, r->cap = cap;
    return 0;
}

/* A piece of the body: kept, or dropped when the answer is decided. */
static void on_body(gd_http *h, req *r, const char *data, size_t n) {
    r->bytes_in += n;
    if (r->discard) return;
    size_t need = r->len + n;
    if (need > (size_t)h->cfg->max_body) {
        gd_reply_errorf(&r->reply, GD_E_TOO_LARGE, NULL, "The request body exceeds the limit of %lld bytes.",
                        (long long)h->cfg->max_body);
        gd_metrics_reject(h->metrics, GD_REJ_BODY_TOO_LARGE);
        decide(r);
        return;
    }
    if (need > r->cap && grow_body(h, r, need)) {
        gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                        "The server holds too many request bodies right now; retry later.");
        gd_metrics_reject(h->metrics, GD_REJ_BUFFERED);
        decide(r);
        return;
    }
    memcpy(r->body + r->len, data, n);
    r->len = need;
}

/* Binary framing: Content-Type application/vnd.gradd.v1+binary and
 * Gradd-Json-Length N <= body length. Sets r->json_len; -1 with a 400
 * reply when the framing is wrong. */
static int parse_framing(req *r) {
    const char *ct = header(r->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t tl = strlen(GD_CT_BINARY);
    r->json_len = r->len;
    if (!ct || strncasecmp(ct, GD_CT_BINARY, tl) != 0 || (ct[tl] && ct[tl] != ';' && ct[tl] != ' ')) return 0;
    const char *jl = header(r->conn, "Gradd-Json-Length");
    if (!jl) {
        gd_reply_errorf(&r->reply, GD_E_INVALID_REQUEST, "header Gradd-Json-Length",
                        "A body of type %s needs the header Gradd-Json-Length: the length of its JSON part.",
                        GD_CT_BINARY);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(jl, &end, 10);
    if (errno || end == jl || *end || jl[0] == '-' || jl[0] == '+' || n > r->len) {
        gd_reply_errorf(&r->reply, GD_E_INVALID_REQUEST, "header Gradd-Json-Length",
                        "Gradd-Json-Length must be a decimal byte count from 0 to the body's length %zu, got '%.64s'.",
                        r->len, jl);
        return -1;
    }
    r->json_len = (size_t)n;
    r->framed = 1;
    return 0;
}

/* ---- compute jobs (pool threads) ------------------------------------------------------- */

static void job_body_done(void *arg) { release_body(arg); }

/* On a worker: decode, run, encode into r->reply. */
static void job_run(gd_job *job) {
    req *r = (req *)job;
    const gd_config *cfg = r->h->cfg;
    static const char empty[] = "";
    gd_compute_in in = {
        .endpoint = r->rd->route == GD_ROUTE_EVAL ? GD_EP_EVAL : GD_EP_GRAD,
        .body = r->body ? r->body : empty,
        .json_len = r->json_len,
        .bin = !r->framed ? NULL : r->body ? (const unsigned char *)r->body + r->json_len
                                           : (const unsigned char *)empty,
        .bin_len = r->len - r->json_len,
        .lim = &r->h->lim,
        .arena_limit = (size_t)cfg->max_memory,
        .recv_ns = r->recv_ns,
        .started_ns = job->started_ns,
        .request_id = r->id,
        .body_done = job_body_done,
        .body_done_arg = r,
    };
    gd_compute(&in, &job->cancel, &r->reply);
    r->queue_us = (job->started_ns - r->recv_ns) / 1000;
    r->compute_us = (gd_now_ns() - job->started_ns) / 1000;
}

/* The pool's liveness question (pool.h), with its lock held: has the client
 * closed its end? A suspended connection's socket stays open (MHD closes it
 * only after the resume), so polling it here is safe. A client that only
 * half-closes after sending counts as gone too. */
static int job_gone(gd_job *job) {
    req *r = (req *)job;
    struct pollfd pf = {.fd = r->fd, .events = POLLRDHUP};
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* A7: a client that disconnects cancels its computation; say so once. */
static void note_client_gone(req *r) {
    if (atomic_load(&r->job.cancel.cancelled) != GD_CANCEL_CLIENT_GONE) return;
    gd_metrics_client_gone(r->h->metrics);
    gd_log_event("info", "request %s: the client disconnected; its computation was cancelled after %lld ms", r->id,
                 (long long)((gd_now_ns() - r->recv_ns) / 1000000));
}

/* Hand the request back to MHD: the last touch of r on this thread. */
static void job_hand_back(req *r) {
    r->have_reply = 1;
    MHD_resume_connection(r->conn);
}

static void job_done(gd_job *job) {
    note_client_gone((req *)job);
    job_hand_back((req *)job);
}

/* The pool did not run the job: its deadline passed in the queue (504) or
 * the server is shutting down (503). */
static void job_drop(gd_job *job, gd_err why) {
    req *r = (req *)job;
    gd_http *h = r->h;
    release_body(r);
    r->queue_us = (gd_now_ns() - r->recv_ns) / 1000;
    if (atomic_load(&job->cancel.cancelled) == GD_CANCEL_CLIENT_GONE) {
        note_client_gone(r);
        gd_reply_errorf(&r->reply, GD_E_DEADLINE_EXCEEDED, NULL, "%s", GD_DEADLINE_MESSAGE);
    } else if (why == GD_E_DEADLINE_EXCEEDED) {
        gd_reply_errorf(&r->reply, GD_E_DEADLINE_EXCEEDED, NULL, "%s", GD_DEADLINE_MESSAGE);
        gd_metrics_reject(h->metrics, GD_REJ_QUEUE_DEADLINE);
    } else {
        gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                        "The server is shutting down and did not start this computation; retry later.");
        gd_metrics_reject(h->metrics, GD_REJ_SHUTDOWN);
    }
    job_hand_back(r);
}

/* The full request is in: claim a queue slot, suspend, hand the job over. */
static enum MHD_Result start_compute(gd_http *h, req *r) {
    if (parse_framing(r)) {
        decide(r);
        return send_reply(h, r);
    }
    /* Counted before the slot is claimed: once main has closed the pool and
     * seen in_flight at 0, no request can still be on its way to a suspend. */
    r->counted = 1;
    atomic_fetch_add(&h->in_flight, 1);
    int rc = gd_pool_reserve(h->pool);
    if (rc != GD_POOL_OK) {
        if (rc == GD_POOL_FULL)
            gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL, "All workers are busy and the queue is full; retry later.");
        else gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL, "The server is shutting down; retry later.");
        gd_metrics_reject(h->metrics, rc == GD_POOL_FULL ? GD_REJ_QUEUE_FULL : GD_REJ_SHUTDOWN);
        decide(r);
        return send_reply(h, r);
    }
    r->recv_ns = gd_now_ns();
    /* A7: the request's own deadline_ms counts in the queue too, so the pool's
     * watchdog must know it now; a peek finds it without parsing (the
     * decoder checks it, and applies it again, on the worker). */
    int64_t ms;
    r->job.cancel.deadline_ns = gd_deadline_after(r->recv_ns, h->cfg->deadline_ms);
    if (r->body && gd_peek_deadline_ms(r->body, r->json_len, &ms))
        r->job.cancel.deadline_ns = gd_deadline_min(r->job.cancel.deadline_ns, gd_deadline_after(r->recv_ns, ms));
    r->job.run = job_run;
    r->job.done = job_done;
    r->job.drop = job_drop;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? (int)ci->connect_fd : -1;
    r->job.gone = r->fd >= 0 ? job_gone : NULL;
    MHD_suspend_connection(r->conn);
    gd_pool_submit(h->pool, &r->job);
    return MHD_YES;
}

/* ---- MHD callbacks ----------------------------------------------------------------------- */

/* A request's state, at its first access-handler call; freed by
 * on_completed. NULL when out of memory (MHD then drops the connection). */
static req *req_new(gd_http *h, struct MHD_Connection *c, const char *url, const char *method) {
    req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->h = h;
    r->conn = c;
    r->start_ns = gd_now_ns();
    r->m = parse_method(method);
    r->rd = find_route(url);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    atomic_init(&r->job.cancel.cancelled, 0);
    gd_reply_init(&r->reply);
    set_request_id(h, r);
    return r;
}

/* MHD's access handler: called at the headers, for each piece of the body,
 * at the end of the body, and again after a resume. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    gd_http *h = cls;
    req *r = *con_cls;
    (void)version;
    if (!r) {
        if (!(r = req_new(h, c, url, method))) return MHD_NO;
        *con_cls = r;
        return on_headers(h, r);
    }
    if (r->sent) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        on_body(h, r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->have_reply) return send_reply(h, r);
    if (!r->rd->compute) {
        answer_get(h, r);
        return send_reply(h, r);
    }
    return start_compute(h, r);
}

/* The request is over (answered, or the connection failed): log, count, free. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    gd_http *h = cls;
    req *r = *con_cls;
    (void)c;
    if (!r) return;
    if (r->counted) atomic_fetch_sub(&h->in_flight, 1);
    int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->status : 0;
    int64_t end = r->answered_ns ? r->answered_ns : gd_now_ns();
    gd_log_req line = {r->id, r->method, r->path, status, r->bytes_in, status ? r->bytes_out : 0,
                       r->queue_us, r->compute_us, (end - r->start_ns) / 1000};
    gd_log_request(&line);
    if (status) gd_metrics_request(h->metrics, r->rd ? r->rd->route : GD_ROUTE_OTHER, status, line.total_us);
    release_body(r);
    gd_reply_reset(&r->reply);
    free(r);
    *con_cls = NULL;
}

/* MHD's own messages (bad HTTP, socket errors) go to the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    gd_log_event("warn", "libmicrohttpd: %s", msg);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* Bind and listen on cfg->host:cfg->port (the first address that works). */
static int open_listener(gd_http *h, int *v6, char *msg, size_t size) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", h->cfg->port);
    int rc = getaddrinfo(h->cfg->host, port, &hints, &res);
    if (rc) {
        snprintf(msg, size, "cannot resolve --host '%s': %s", h->cfg->host, gai_strerror(rc));
        return -1;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            *v6 = ai->ai_family == AF_INET6;
            h->listen_fd = fd;
            freeaddrinfo(res);
            return 0;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(msg, size, "cannot listen on %s:%d: %s", h->cfg->host, h->cfg->port, strerror(err));
    return -1;
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    return s;
}

/* Start MHD on the bound socket: epoll when this libmicrohttpd has it. */
static int start_daemon(gd_http *h, int v6, char *msg, size_t size) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL, h->poll_mode = "epoll";
    else flags |= MHD_USE_AUTO, h->poll_mode = "auto";
    if (v6) flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, /* first: it covers the rest */
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->cfg->conn_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->cfg->max_connections,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(msg, size, "libmicrohttpd did not start on %s:%d", h->cfg->host, h->port);
        return -1;
    }
    return 0;
}

gd_http *gd_http_start(const gd_config *cfg, gd_pool *pool, gd_metrics *m, char *msg, size_t msg_size) {
    gd_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    h->cfg = cfg, h->pool = pool, h->metrics = m;
    h->listen_fd = h->quiesced_fd = -1;
    h->lim.max_nodes = cfg->max_nodes;
    h->lim.max_inputs = cfg->max_inputs;
    h->lim.max_edges = cfg->max_edges;
    h->lim.max_elements = cfg->max_elements;
    h->id_seed = random_seed();
    atomic_init(&h->draining, 0);
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->buffered, 0);
    atomic_init(&h->id_next, 0);
    gd_buf_init(&h->ops);
    int v6 = 0;
    if (gd_encode_ops(&h->ops)) snprintf(msg, msg_size, "out of memory building the /v1/ops body");
    else if (open_listener(h, &v6, msg, msg_size) == 0 && start_daemon(h, v6, msg, msg_size) == 0) return h;
    if (h->listen_fd >= 0) close(h->listen_fd);
    gd_buf_free(&h->ops);
    free(h);
    return NULL;
}

int gd_http_port(const gd_http *h) { return h->port; }
const char *gd_http_poll_mode(const gd_http *h) { return h->poll_mode; }

void gd_http_drain(gd_http *h) { atomic_store(&h->draining, 1); }

void gd_http_quiesce(gd_http *h) {
    if (h->quiesced_fd >= 0) return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd == MHD_INVALID_SOCKET) return;
    h->quiesced_fd = fd;
    /* Quiescing only stops MHD from accepting: the socket still listens, so
     * new clients would wait in the kernel's backlog until exit and then be
     * reset. Shutting it down refuses them at once (a load balancer retries
     * another replica); the fd stays valid until gd_http_stop closes it. */
    shutdown(fd, SHUT_RDWR);
}

int gd_http_in_flight(gd_http *h) { return atomic_load(&h->in_flight); }

unsigned gd_http_connections(gd_http *h) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

void gd_http_stop(gd_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    /* MHD closes the listening socket it still owns; after a quiesce it is ours. */
    if (h->quiesced_fd >= 0) close(h->quiesced_fd);
    gd_buf_free(&h->ops);
    free(h);
}
