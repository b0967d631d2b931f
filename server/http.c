/* http.c - the libmicrohttpd front of gradd (see http.h).
 *
 * A request's life, all on MHD's thread unless said otherwise:
 *   1. headers: the framing (Content-Length, Transfer-Encoding: 400 when
 *      ambiguous or unknown), the connection cap (503), route, method, auth,
 *      CORS preflight, media type (415) and a Content-Length over --max-body
 *      (413) are decided here. An answer decided here for a request with a
 *      body is sent at once: MHD then reads none of the body, sends no
 *      100 Continue and closes the connection;
 *   2. body: buffered as it arrives, each piece reserved against
 *      --max-buffered and the client's --max-buffered-per-ip (conns.h); a
 *      body that outgrows --max-body (chunked) or the budget is answered
 *      413 or 503 at once (answer_midbody) and the connection closed; the
 *      watchdog of conns.h closes connections whose headers or body come
 *      too slowly;
 *   3. complete: cheap endpoints are answered here; /v1/grad and /v1/eval
 *      claim a pool slot (503 with Retry-After when full), suspend the
 *      connection, then queue the job (in that order: a resume must never
 *      come before its suspend); a small one (--inline-work) is computed
 *      right here instead (run_inline) and answered at once;
 *   4. a worker computes the reply (compute.c; binary tensors are read
 *      in place from the body, which is freed once the reply is encoded)
 *      or the pool drops the job (deadline passed in the queue: 504;
 *      shutdown: 503), then resumes the connection; MHD calls us again and
 *      the reply is queued (a binary one as iovecs over its tensors);
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
#include "server/conns.h"
#include "gd_config.h"
#include "server/log.h"
#include "server/openapi.h"
#include "proto/encode.h"
#include "proto/peek.h"
#include "server/reply.h"
#include "server/tls.h"
#include "server/ui.h"

#define ID_MAX 128        /* longest X-Request-Id echoed back */
#define GD_DRAIN_RETRY_HEADER "Gradd-Drain-Retry" /* sent by balancers that retry a 503 elsewhere */
#define PATH_LOG_MAX 200  /* longest path kept for the log */

struct gd_http {
    const gd_config *cfg;
    gd_pool *pool;
    gd_metrics *metrics;
    struct MHD_Daemon *d;
    const gd_tls *tls;        /* NULL: plain HTTP; the caller's */
    int listen_fd, port;
    int quiesced_fd;          /* the listening socket after quiesce: closed after MHD stops */
    const char *poll_mode;
    atomic_int draining;
    atomic_int in_flight;     /* suspended requests */
    gd_conns *conns;          /* open connections, buffered bytes, receive deadlines */
    int raw_closing;          /* MHD's thread: answer_midbody's MHD_NO is not an error to log */
    gd_decode_limits lim;
    gd_buf ops;               /* the GET /v1/ops body, built once */
    gd_graphs *graphs;        /* the registered graphs (A3) */
    uint64_t id_seed;
    atomic_ullong id_next;
};

typedef enum meth { M_GET, M_HEAD, M_POST, M_OPTIONS, M_DELETE, M_OTHER } meth;

typedef struct route_def {
    const char *path;
    gd_route route;
    int compute;              /* 1: POST to the pool; 0: GET/HEAD answered here */
    int auth;                 /* a /v1/ route: needs the bearer token when --token-file is set */
    const char *allow;
    int prefix;               /* path is a prefix: the rest names a resource (/v1/graphs/{id}); DELETE allowed */
} route_def;

static const route_def routes[] = {
    {"/v1/grad", GD_ROUTE_GRAD, 1, 1, "POST, OPTIONS", 0},
    {"/v1/eval", GD_ROUTE_EVAL, 1, 1, "POST, OPTIONS", 0},
    {"/v1/graphs", GD_ROUTE_GRAPHS, 1, 1, "POST, OPTIONS", 0},
    {"/v1/explain", GD_ROUTE_EXPLAIN, 1, 1, "POST, OPTIONS", 0},
    {"/v1/graphs/", GD_ROUTE_GRAPH, 0, 1, "GET, HEAD, DELETE, OPTIONS", 1},
    {"/v1/ops", GD_ROUTE_OPS, 0, 1, "GET, HEAD, OPTIONS", 0},
    {"/v1/openapi.json", GD_ROUTE_OPENAPI, 0, 1, "GET, HEAD, OPTIONS", 0},
    {"/healthz", GD_ROUTE_HEALTHZ, 0, 0, "GET, HEAD, OPTIONS", 0},
    {"/readyz", GD_ROUTE_READYZ, 0, 0, "GET, HEAD, OPTIONS", 0},
    {"/metrics", GD_ROUTE_METRICS, 0, 0, "GET, HEAD, OPTIONS", 0},
    /* The playground (A4): a static page without data, served without the
     * token (a browser's address bar cannot send one); its own calls to
     * the API carry the token typed into it. --no-ui removes the route. */
    {"/", GD_ROUTE_UI, 0, 0, "GET, HEAD, OPTIONS", 0},
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
    char *mem;                /* lead + cap bytes: a gd_compute_block when mem_block, else malloc'd */
    char *body;               /* mem + lead, cap bytes */
    size_t len, cap, lead;    /* lead: puts a binary section 8-aligned (align_body) */
    size_t budgeted;          /* body capacity counted against the buffer budgets (grow_body) */
    int mem_block;            /* mem is a gd_compute_block (body_mem_alloc) */
    gd_conn *cn;              /* the connection's record in h->conns (NULL: out of memory) */
    long long reserved;       /* bytes of the buffer budgets held for this body */
    int64_t announced;        /* Content-Length, or -1 (chunked or none) */
    int binary_ct;            /* Content-Type is the binary framing type */
    int raw;                  /* answered by answer_midbody, on the socket itself */
    int discard;              /* body bytes are dropped: the answer is decided */
    uint64_t bytes_in;
    size_t json_len;          /* the JSON part of the body (all of it unless binary framing) */
    int framed;               /* binary framing: the rest of the body is the binary section */
    int want_dot;             /* /v1/explain: Accept prefers DOT text to SVG */
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
    uint64_t x = splitmix64(h->id_seed ^ (k * 0xd1b54a32d192ed03ULL));
    for (int i = 15; i >= 0; i--, x >>= 4) r->id[i] = "0123456789abcdef"[x & 15]; /* %016llx */
    r->id[16] = '\0';
}

static meth parse_method(const char *m) {
    if (strcmp(m, "GET") == 0) return M_GET;
    if (strcmp(m, "HEAD") == 0) return M_HEAD;
    if (strcmp(m, "POST") == 0) return M_POST;
    if (strcmp(m, "OPTIONS") == 0) return M_OPTIONS;
    if (strcmp(m, "DELETE") == 0) return M_DELETE;
    return M_OTHER;
}

static const route_def *find_route(const gd_http *h, const char *url) {
    for (int i = 0; i < N_ROUTES; i++) {
        if (routes[i].route == GD_ROUTE_UI && h->cfg->no_ui) continue;
        size_t n = strlen(routes[i].path);
        if (routes[i].prefix ? strncmp(url, routes[i].path, n) == 0 && url[n] && !strchr(url + n, '/')
                             : strcmp(url, routes[i].path) == 0)
            return &routes[i];
    }
    return NULL;
}

/* Count n more body bytes against the buffer budgets; -1 (nothing
 * counted) past either. */
static int reserve_bytes(gd_http *h, req *r, long long n) {
    if (!r->cn || gd_conns_reserve(h->conns, r->cn, n)) return -1;
    r->reserved += n;
    return 0;
}

/* Bodies of at least this many bytes live in blocks recycled across
 * requests (compute.h: gd_compute_block), warm: copying a 16 MB body into
 * fresh pages faulted them in 4 KiB at a time, the largest cost of its
 * receipt on a virtual machine (docs/benchmarks.md, xfer10). */
#define BODY_BLOCK_MIN ((size_t)64 << 10)

/* Memory of `total` bytes for a body: a recycled block from BODY_BLOCK_MIN on (*block
 * set), else malloc'd. NULL when out of memory. */
static char *body_mem_alloc(size_t total, int *block) {
    *block = total >= BODY_BLOCK_MIN;
    return *block ? gd_compute_block(total) : malloc(total);
}

static void body_mem_free(char *mem, int block) {
    if (block) gd_compute_block_done(mem);
    else free(mem);
}

/* Free the body and give its bytes back to the global budget. Called by
 * whichever thread holds the request. */
static void release_body(req *r) {
    body_mem_free(r->mem, r->mem_block);
    r->mem = r->body = NULL;
    r->len = r->cap = r->budgeted = 0;
    if (r->reserved) gd_conns_release(r->h->conns, r->cn, r->reserved);
    r->reserved = 0;
}

/* Decide the answer now: the body (if any) will be discarded. */
static void decide(req *r) {
    r->have_reply = 1;
    r->discard = 1;
    release_body(r);
}

/* ---- responses ------------------------------------------------------------------ */

/* A binary-framed answer's own parts (JSON, binary section, the tensor
 * buffers its pieces point into), freed with the response. */
static void free_framed(void *p) {
    gd_reply_reset(p);
    free(p);
}

/* The iovecs of a binary-framed answer: the JSON, then the binary section
 * with its pieces sent from their own buffers (wire.h: gd_binsec), not
 * copied into one. Returns the count (at most 2 + 2 * n_seg). */
static unsigned framed_iov(const gd_reply *f, struct MHD_IoVec *iov) {
    unsigned n = 0;
    const gd_binsec *b = &f->bin;
    size_t from = 0;
    iov[n++] = (struct MHD_IoVec){f->body.data, f->body.len};
    for (int k = 0; k < b->n_seg; k++) {
        if (b->seg[k].at > from) iov[n++] = (struct MHD_IoVec){b->bytes.data + from, b->seg[k].at - from};
        if (b->seg[k].len) iov[n++] = (struct MHD_IoVec){b->seg[k].p, b->seg[k].len};
        from = b->seg[k].at;
    }
    if (b->bytes.len > from) iov[n++] = (struct MHD_IoVec){b->bytes.data + from, b->bytes.len - from};
    return n;
}

/* Turn the reply's body into an MHD response, taking its buffers. */
static struct MHD_Response *make_response(gd_reply *p) {
    if (p->static_body)
        return MHD_create_response_from_buffer(p->static_len, (void *)p->static_body, MHD_RESPMEM_PERSISTENT);
    if (!p->binary) {
        if (!p->body.data) return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        struct MHD_Response *resp =
            p->body.pooled ? MHD_create_response_from_buffer_with_free_callback(p->body.len, p->body.data,
                                                                                 gd_compute_block_done)
                           : MHD_create_response_from_buffer(p->body.len, p->body.data, MHD_RESPMEM_MUST_FREE);
        if (resp) gd_buf_init(&p->body); /* MHD frees (or gives back) the data now */
        return resp;
    }
    gd_reply *f = malloc(sizeof *f);
    struct MHD_IoVec *iov = malloc(sizeof *iov * (2 + 2 * (size_t)p->bin.n_seg));
    if (!f || !iov) {
        free(f);
        free(iov);
        return NULL;
    }
    *f = *p; /* the parts move to f; p keeps status and headers */
    gd_buf_init(&p->body);
    gd_binsec_init(&p->bin);
    p->blocks = NULL, p->n_blocks = 0;
    struct MHD_Response *resp = MHD_create_response_from_iovec(iov, framed_iov(f, iov), free_framed, f);
    free(iov); /* MHD copied the array */
    if (!resp) free_framed(f);
    return resp;
}

/* Headers every answer carries, and those the reply asks for. */
static void add_headers(gd_http *h, req *r, struct MHD_Response *resp, const gd_reply *p, size_t json_len) {
    const gd_config *cfg = h->cfg;
    char num[32];
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    MHD_add_response_header(resp, "Gradd-Api-Version", GD_API_VERSION);
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
    if (p->csp) {
        MHD_add_response_header(resp, "Content-Security-Policy", p->csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
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
    if (!p->static_body && (p->body.failed || p->bin.bytes.failed)) {
        gd_log_event("error", "request %s: out of memory building a %d response", r->id, p->status);
        gd_reply_static(p, 500, INTERNAL_BODY, sizeof INTERNAL_BODY - 1);
        p->code = GD_E_INTERNAL;
    }
    size_t json_len = p->static_body ? p->static_len : p->body.len;
    uint64_t total = json_len + (p->binary ? gd_binsec_len(&p->bin) : 0);
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

/* One "Name: value" line of a response's header into a buffer. */
static enum MHD_Result put_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    gd_buf_printf(cls, "%s: %s\r\n", key, value ? value : "");
    return MHD_YES;
}

/* The decided reply, in the middle of a body: libmicrohttpd 0.9.75 takes a
 * response only at the headers or once the body is complete, so the answer
 * is written on the socket here, followed by the end of our side of the
 * stream. The rest of the body is then read and dropped for a second (a
 * lingering close: a client still sending would otherwise get a reset
 * before it reads the answer), and the connection closed (conns.h), or at
 * once when the body ends (on_access returns MHD_NO). Over TLS only the
 * closing is possible (MHD_NO now). The answer is small and the socket has
 * nothing else to send, so one send suffices. */
static enum MHD_Result answer_midbody(gd_http *h, req *r) {
    gd_reply *p = &r->reply;
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    gd_buf out;
    gd_buf_init(&out);
    if (resp && fd && !MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION)) {
        const char *reason = MHD_get_reason_phrase_for((unsigned)p->status);
        size_t body_len = p->static_body ? p->static_len : p->body.len;
        const char *body = p->static_body ? p->static_body : p->body.data;
        add_headers(h, r, resp, p, body_len);
        gd_buf_printf(&out, "HTTP/1.1 %d %s\r\n", p->status, reason ? reason : "");
        MHD_get_response_headers(resp, put_header, &out);
        gd_buf_printf(&out, "Content-Length: %zu\r\nConnection: close\r\n\r\n", body_len);
        if (body_len) gd_buf_append(&out, body, body_len);
        if (!out.failed && send(fd->connect_fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)out.len) {
            r->raw = 1;
            r->status = p->status;
            r->bytes_out = body_len;
            shutdown(fd->connect_fd, SHUT_WR);
        }
    }
    gd_buf_free(&out);
    if (resp) MHD_destroy_response(resp);
    r->have_reply = 0;
    r->answered_ns = gd_now_ns();
    if (r->raw && r->cn) {
        gd_conn_linger(h->conns, r->cn);
        return MHD_YES; /* r->discard is set: the rest is dropped */
    }
    r->sent = 1;
    h->raw_closing = 1;
    return MHD_NO;
}

/* ---- the cheap endpoints ---------------------------------------------------------- */

/* 204 to OPTIONS on a known path, with Allow (add_headers adds the CORS
 * preflight headers when --cors-origin is set). Never needs auth. */
static void preflight(req *r) {
    gd_reply_static(&r->reply, 204, "", 0);
    r->reply.allow = r->rd->allow;
}

/* GET, HEAD and DELETE of /v1/graphs/{id} (A3): the graph's canonical
 * JSON (whose SHA-256 is its id), or 204 once unlisted; 404 unknown_graph
 * when this replica does not hold it. */
static void answer_graph(gd_http *h, req *r) {
    gd_reply *p = &r->reply;
    const char *id = r->path + strlen(r->rd->path);
    if (r->m == M_DELETE) {
        if (gd_graphs_public_id(id) && gd_graphs_delete(h->graphs, id)) gd_reply_static(p, 204, "", 0);
        else gd_reply_errorf(p, GD_E_UNKNOWN_GRAPH, NULL, "No graph '%.80s' is registered here.", id);
        return;
    }
    gd_held *g = gd_graphs_public_id(id) ? gd_graphs_get(h->graphs, id, 0) : NULL;
    if (!g) {
        gd_reply_errorf(p, GD_E_UNKNOWN_GRAPH, NULL, "No graph '%.80s' is registered here.", id);
        return;
    }
    gd_reply_reset(p);
    p->status = 200;
    gd_buf_append(&p->body, g->canon, g->canon_len);
    gd_graphs_release(h->graphs, g);
}

/* Answer GET/HEAD of /v1/ops, /v1/openapi.json, /healthz, /readyz, /metrics, and
 * GET/HEAD/DELETE of /v1/graphs/{id}. */
static void answer_get(gd_http *h, req *r) {
    gd_reply *p = &r->reply;
    gd_graphs_stats gs;
    switch (r->rd->route) {
    case GD_ROUTE_GRAPH:
        answer_graph(h, r);
        break;
    case GD_ROUTE_OPS:
        gd_reply_static(p, 200, h->ops.data, h->ops.len);
        break;
    case GD_ROUTE_UI:
        gd_reply_static(p, 200, gd_ui_page, gd_ui_page_len);
        p->content_type = "text/html; charset=utf-8";
        p->csp = gd_ui_csp;
        break;
    case GD_ROUTE_OPENAPI:
        gd_reply_static(p, 200, (const char *)gd_openapi_json, gd_openapi_json_len);
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
        gd_graphs_stats_get(h->graphs, &gs);
        gd_metrics_render(h->metrics, &p->body, atomic_load(&h->in_flight), gd_pool_depth(h->pool), &gs,
                          PACKAGE_VERSION);
        break;
    }
    r->have_reply = 1;
}

/* Route, method and auth, decided from the headers alone. Returns 1 when
 * the answer is decided (404, 405, 401, OPTIONS), 0 to go on. */
static int precheck(gd_http *h, req *r) {
    if (!r->rd) {
        gd_reply_errorf(&r->reply, GD_E_NOT_FOUND, NULL, "No route %s %s; the routes are POST /v1/grad, "
                        "POST /v1/eval, POST /v1/graphs, GET or DELETE /v1/graphs/{id}, GET /v1/ops, GET /v1/openapi.json, "
                        "GET /healthz, "
                        "GET /readyz, GET /metrics.", r->method, r->path);
        return 1;
    }
    if (r->m == M_OPTIONS) {
        preflight(r);
        return 1;
    }
    int ok = r->rd->compute ? r->m == M_POST : (r->m == M_GET || r->m == M_HEAD || (r->m == M_DELETE && r->rd->prefix));
    if (!ok) {
        gd_reply_errorf(&r->reply, GD_E_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s; allowed: %s.", r->method,
                        r->rd->prefix ? r->path : r->rd->path, r->rd->allow);
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
    if (r->rd->auth && !gd_tls_client_ok(h->tls, r->conn)) {
        gd_reply_errorf(&r->reply, GD_E_UNAUTHORIZED, NULL,
                        "This server requires a TLS client certificate issued by its --tls-client-ca authority.");
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

/* ---- the headers ---------------------------------------------------------------------- */

/* The framing headers as sent: MHD frames a body by the first
 * Transfer-Encoding, else the first Content-Length, and ignores the rest. */
typedef struct framing {
    int n_cl, n_te, cl_differ;
    const char *cl, *te;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    framing *f = cls;
    (void)kind;
    value = value ? value : "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->n_cl++ == 0) f->cl = value;
        else if (strcmp(f->cl, value) != 0) f->cl_differ = 1;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (f->n_te++ == 0) f->te = value;
    }
    return MHD_YES;
}

/* RFC 9112 6.3: a body framed two ways could be read one way here and
 * another by a proxy in front (request smuggling), and an unknown coding
 * cannot be framed at all. Returns 1 with a 400 reply when the framing is
 * not exactly one Content-Length (repeats equal) or one chunked
 * Transfer-Encoding; sets r->announced. */
static int bad_framing(req *r) {
    framing f = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_framing, &f);
    r->announced = -1;
    const char *why = NULL;
    if (f.n_cl && f.n_te) why = "The request has both Content-Length and Transfer-Encoding; send one of them.";
    else if (f.cl_differ) why = "The request has Content-Length headers with different values.";
    else if (f.n_te > 1) why = "The request has more than one Transfer-Encoding header; send one: chunked.";
    else if (f.n_te && strcasecmp(f.te, "chunked") != 0) why = "The only Transfer-Encoding accepted is chunked.";
    if (why) {
        gd_reply_errorf(&r->reply, GD_E_INVALID_REQUEST, f.n_te ? "header Transfer-Encoding" : "header Content-Length",
                        "%s", why);
        return 1;
    }
    if (f.n_cl) r->announced = (int64_t)strtoll(f.cl, NULL, 10); /* MHD has checked its digits */
    return 0;
}

/* Does the request announce a body (a non-zero Content-Length, or chunked)? */
static int has_body(const req *r) {
    return r->announced != 0 && (r->announced > 0 || header(r->conn, MHD_HTTP_HEADER_TRANSFER_ENCODING));
}

/* Is the header value, without parameters and surrounding blanks, `want`
 * (case-insensitive)? */
static int value_is(const char *v, const char *want) {
    v += strspn(v, " \t");
    size_t n = strcspn(v, ";");
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* The media-type rule of the contract (A7): absent, JSON and form-encoded
 * (what curl -d sends) read as JSON; the binary framing type as binary;
 * anything else, or a Content-Encoding other than identity, is 415.
 * Returns 1 with the reply set when refused; sets r->binary_ct. */
static int bad_media_type(req *r) {
    const char *ct = header(r->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *ce = header(r->conn, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (ce && !value_is(ce, "identity")) {
        gd_reply_errorf(&r->reply, GD_E_UNSUPPORTED_MEDIA_TYPE, "header Content-Encoding",
                        "Content-Encoding '%.64s' is not supported; send the body uncompressed.", ce);
        return 1;
    }
    r->binary_ct = ct && value_is(ct, GD_CT_BINARY);
    if (!ct || r->binary_ct || value_is(ct, "") || value_is(ct, GD_CT_JSON) ||
        value_is(ct, "application/x-www-form-urlencoded"))
        return 0;
    gd_reply_errorf(&r->reply, GD_E_UNSUPPORTED_MEDIA_TYPE, "header Content-Type",
                    "Content-Type '%.64s' is not supported; send %s or %s.", ct, GD_CT_JSON, GD_CT_BINARY);
    return 1;
}

/* A Content-Length over --max-body: 1 with a 413 reply. */
static int too_large(gd_http *h, req *r) {
    if (r->announced <= h->cfg->max_body) return 0;
    gd_reply_errorf(&r->reply, GD_E_TOO_LARGE, NULL, "The request body has %lld bytes; the limit is %lld bytes.",
                    (long long)r->announced, (long long)h->cfg->max_body);
    gd_metrics_reject(h->metrics, GD_REJ_BODY_TOO_LARGE);
    return 1;
}

/* A connection opened past --max-connections gets 503 to anything but
 * /healthz (a liveness probe must not fail because the server is busy). */
static int over_cap(gd_http *h, req *r) {
    if (!r->cn || !gd_conn_over_cap(r->cn) || (r->rd && r->rd->route == GD_ROUTE_HEALTHZ)) return 0;
    gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                    "The server has %d connections open, its limit; retry later.", h->cfg->max_connections);
    gd_metrics_reject(h->metrics, GD_REJ_CONNECTION_LIMIT);
    return 1;
}

/* The answer decided at the headers: with a body announced, sent now (MHD
 * then reads no body and closes the connection); without one, at the end
 * of the request as usual, so that the connection may stay open. */
static enum MHD_Result answer_at_headers(gd_http *h, req *r) {
    decide(r);
    if (r->cn) gd_conn_busy(h->conns, r->cn);
    if (!has_body(r)) return MHD_YES;
    return send_reply(h, r);
}

/* A binary-framed body is kept `lead` bytes into its buffer, so that its
 * binary section starts 8-aligned (malloc aligns to 16 at least): the
 * decoder then reads float64 and int64 tensors in place instead of copying
 * them (wire.h). The header is checked for real once the body is in
 * (parse_framing); a bad one just leaves the lead at 0 here. */
static void align_body(req *r) {
    const char *jl = r->binary_ct ? header(r->conn, "Gradd-Json-Length") : NULL;
    unsigned long long n = jl ? strtoull(jl, NULL, 10) : 0;
    r->lead = (size_t)(8 - n % 8) % 8;
}

/* Headers are in: check, route, and prepare for the body. */
static enum MHD_Result on_headers(gd_http *h, req *r) {
    if (over_cap(h, r) || bad_framing(r)) {
        r->announced = 1; /* whatever was sent: answer now and close */
        return answer_at_headers(h, r);
    }
    if (precheck(h, r)) return answer_at_headers(h, r);
    if (r->rd->compute && (bad_media_type(r) || too_large(h, r))) return answer_at_headers(h, r);
    if (!r->rd->compute) r->discard = 1; /* a GET with a body: ignore it */
    else align_body(r);
    if (r->cn) {
        if (has_body(r)) gd_conn_body_started(h->conns, r->cn);
        else gd_conn_busy(h->conns, r->cn);
    }
    return MHD_YES;
}

/* ---- the body ------------------------------------------------------------------------ */

/* Make room for `need` body bytes. The buffer budgets count the body as
 * it arrives: a capacity doubling from 4 KiB up to the announced length
 * (or --max-body when chunked), reserved before the bytes are kept. The
 * memory follows that capacity while it is under BODY_BLOCK_MIN (so that a
 * client announcing a big body and sending a trickle holds little); past
 * it, a body with a Content-Length gets its whole length at once, a
 * recycled block (no copies as it grows, pages already faulted in; a new
 * block's untouched pages cost nothing until the bytes arrive). 0, or -1
 * past the budgets or out of memory. */
static int grow_body(gd_http *h, req *r, size_t need) {
    size_t limit = r->announced > 0 ? (size_t)r->announced : (size_t)h->cfg->max_body;
    if (need > r->budgeted) {
        size_t c = r->budgeted ? r->budgeted : 4096;
        while (c < need) c *= 2;
        if (c > limit) c = limit;
        if (reserve_bytes(h, r, (long long)(c - r->budgeted + (r->budgeted ? 0 : r->lead)))) return -1;
        r->budgeted = c;
    }
    if (need <= r->cap) return 0;
    size_t cap = r->announced > 0 && r->budgeted >= BODY_BLOCK_MIN ? limit : r->budgeted;
    int block;
    char *b = body_mem_alloc(r->lead + cap, &block);
    if (!b) return -1;
    if (r->len) memcpy(b + r->lead, r->body, r->len);
    body_mem_free(r->mem, r->mem_block);
    r->mem = b, r->body = b + r->lead, r->cap = cap, r->mem_block = block;
    return 0;
}

/* A piece of the body: kept, or dropped when the answer is decided. A body
 * that cannot be kept is answered at once (MHD_NO: the connection closes). */
static enum MHD_Result on_body(gd_http *h, req *r, const char *data, size_t n) {
    r->bytes_in += n;
    if (r->cn) gd_conn_body_bytes(h->conns, r->cn, n);
    if (r->discard) return MHD_YES;
    size_t need = r->len + n;
    if (need > (size_t)h->cfg->max_body) {
        gd_reply_errorf(&r->reply, GD_E_TOO_LARGE, NULL, "The request body exceeds the limit of %lld bytes.",
                        (long long)h->cfg->max_body);
        gd_metrics_reject(h->metrics, GD_REJ_BODY_TOO_LARGE);
        decide(r);
        return answer_midbody(h, r);
    }
    if ((need > r->budgeted || need > r->cap) && grow_body(h, r, need)) {
        gd_reply_errorf(&r->reply, GD_E_OVERLOADED, NULL,
                        "The server holds too many request bodies right now; retry later.");
        gd_metrics_reject(h->metrics, GD_REJ_BUFFERED);
        decide(r);
        return answer_midbody(h, r);
    }
    memcpy(r->body + r->len, data, n);
    r->len = need;
    return MHD_YES;
}

/* Binary framing (Content-Type application/vnd.gradd.v1+binary) needs
 * Gradd-Json-Length N <= body length. Sets r->json_len; -1 with a 400
 * reply when the framing is wrong. */
static int parse_framing(req *r) {
    r->json_len = r->len;
    if (!r->binary_ct) return 0;
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

/* The q of the most specific range of an Accept header that matches the
 * media type: the type itself, then its "type/star" range, then "star/star";
 * -1 when none does. */
static double accept_q(const char *accept, const char *type) {
    size_t tl = strcspn(type, "/");
    double q[3] = {-1, -1, -1};
    for (const char *p = accept; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",;");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        int k = n == strlen(type) && strncasecmp(p, type, n) == 0         ? 0
                : n == tl + 2 && strncasecmp(p, type, tl + 1) == 0 && p[tl + 1] == '*' ? 1
                : n == 3 && strncmp(p, "*/*", 3) == 0                       ? 2
                                                                            : -1;
        double v = 1;
        const char *end = p + strcspn(p, ",");
        for (const char *a = p + strcspn(p, ";"); a < end; a += 1 + strcspn(a + 1, ";,")) {
            const char *t = a + 1 + strspn(a + 1, " \t");
            if ((t[0] == 'q' || t[0] == 'Q') && t[1] == '=') v = strtod(t + 2, NULL);
        }
        if (k >= 0 && q[k] < 0) q[k] = v;
        p = *end ? end + 1 : end;
    }
    return q[0] >= 0 ? q[0] : q[1] >= 0 ? q[1] : q[2];
}

/* A4: /v1/explain answers SVG unless Accept prefers DOT text (a missing
 * Accept, or one that takes both alike, gets SVG). */
static int wants_dot(const char *accept) {
    return accept && accept_q(accept, GD_CT_DOT) > 0 && accept_q(accept, GD_CT_DOT) > accept_q(accept, GD_CT_SVG);
}

/* ---- compute jobs (pool threads) ------------------------------------------------------- */

static void job_body_done(void *arg) { release_body(arg); }

/* The compute call's input for request r, started at started_ns. */
static gd_compute_in compute_in(req *r, int64_t started_ns) {
    const gd_config *cfg = r->h->cfg;
    static const char empty[] = "";
    return (gd_compute_in){
        .endpoint = r->rd->route == GD_ROUTE_EVAL      ? GD_EP_EVAL
                    : r->rd->route == GD_ROUTE_GRAPHS  ? GD_EP_REGISTER
                    : r->rd->route == GD_ROUTE_EXPLAIN ? GD_EP_EXPLAIN
                                                       : GD_EP_GRAD,
        .explain_dot = r->want_dot,
        .explain_max_nodes = cfg->explain_max_nodes,
        .graphs = r->h->graphs,
        .body = r->body ? r->body : empty,
        .json_len = r->json_len,
        .bin = !r->framed ? NULL : r->body ? (const unsigned char *)r->body + r->json_len
                                           : (const unsigned char *)empty,
        .bin_len = r->len - r->json_len,
        .lim = &r->h->lim,
        .arena_limit = (size_t)cfg->max_memory,
        .recv_ns = r->recv_ns,
        .started_ns = started_ns,
        .request_id = r->id,
        .body_done = job_body_done,
        .body_done_arg = r,
    };
}

/* On a worker: decode, run, encode into r->reply. */
static void job_run(gd_job *job) {
    req *r = (req *)job;
    gd_compute_in in = compute_in(r, job->started_ns);
    gd_compute(&in, &job->cancel, &r->reply);
    r->queue_us = (job->started_ns - r->recv_ns) / 1000;
    r->compute_us = (gd_now_ns() - job->started_ns) / 1000;
}

/* A small request (--inline-work) is computed right here on MHD's thread:
 * handing it to a worker and back (a wake-up, a suspend and a resume)
 * would cost more than the work itself. Whether the work is small is known
 * only once the graph is decoded, so only bodies of at most INLINE_BODY_MAX
 * bytes are tried (their decoding is short too); a graph whose work is
 * larger goes to the pool, which decodes it again. 1 when answered. */
#define INLINE_BODY_MAX ((size_t)16 << 10)

static int run_inline(gd_http *h, req *r) {
    if (h->cfg->inline_work <= 0 || r->len > INLINE_BODY_MAX ||
        (r->rd->route != GD_ROUTE_GRAD && r->rd->route != GD_ROUTE_EVAL))
        return 0;
    int64_t t0 = gd_now_ns();
    gd_compute_in in = compute_in(r, t0);
    in.inline_work_max = h->cfg->inline_work;
    if (gd_compute(&in, &r->job.cancel, &r->reply) == GD_COMPUTE_DEFERRED) return 0;
    r->queue_us = (t0 - r->recv_ns) / 1000;
    r->compute_us = (gd_now_ns() - t0) / 1000;
    return 1;
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
    r->job.cancel.deadline_ns = gd_deadline_after(r->recv_ns, h->cfg->deadline_ms);
    if (run_inline(h, r)) { /* its own deadline_ms is applied once decoded (compute.c) */
        gd_pool_unreserve(h->pool);
        return send_reply(h, r);
    }
    /* A7: the request's own deadline_ms counts in the queue too, so the pool's
     * watchdog must know it now; a peek finds it without parsing (the
     * decoder checks it, and applies it again, on the worker). */
    int64_t ms;
    if (r->body && gd_peek_deadline_ms(r->body, r->json_len, &ms))
        r->job.cancel.deadline_ns = gd_deadline_min(r->job.cancel.deadline_ns, gd_deadline_after(r->recv_ns, ms));
    r->want_dot = wants_dot(header(r->conn, MHD_HTTP_HEADER_ACCEPT)); /* headers are MHD's: read them here */
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

/* s into buf (size bytes), cut to fit. */
static void copy_cut(char *buf, size_t size, const char *s) {
    size_t n = strnlen(s, size - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* A request's state, at its first access-handler call; freed by
 * on_completed. NULL when out of memory (MHD then drops the connection). */
static req *req_new(gd_http *h, struct MHD_Connection *c, const char *url, const char *method) {
    req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->h = h;
    r->conn = c;
    r->start_ns = gd_now_ns();
    r->m = parse_method(method);
    r->rd = find_route(h, url);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->cn = ci ? ci->socket_context : NULL;
    copy_cut(r->method, sizeof r->method, method);
    copy_cut(r->path, sizeof r->path, url);
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
        size_t n = *upload_size;
        *upload_size = 0;
        return on_body(h, r, upload, n);
    }
    if (r->raw) { /* answered mid-body; the body has ended: close now */
        h->raw_closing = 1;
        return MHD_NO;
    }
    if (r->cn) gd_conn_busy(h->conns, r->cn);
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
    if (r->cn) gd_conn_wait_request(h->conns, r->cn);
    int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->raw ? r->status : 0;
    int64_t end = r->answered_ns ? r->answered_ns : gd_now_ns();
    char diags[256];
    gd_reply_diag_codes(&r->reply, diags, sizeof diags);
    int sent = status && status == r->reply.status; /* the reply's code and diagnostics are what was sent */
    gd_log_req line = {r->id, r->method, r->path, status, r->bytes_in, status ? r->bytes_out : 0,
                       r->queue_us, r->compute_us, (end - r->start_ns) / 1000,
                       sent && r->reply.code != GD_OK ? gd_err_code(r->reply.code) : NULL,
                       sent && status == 422 && diags[0] ? diags : NULL};
    gd_log_request(&line);
    if (status) gd_metrics_request(h->metrics, r->rd ? r->rd->route : GD_ROUTE_OTHER, status, line.total_us);
    if (sent) gd_metrics_diagnostics(h->metrics, r->reply.diag_n);
    release_body(r);
    gd_reply_reset(&r->reply);
    free(r);
    *con_cls = NULL;
}

/* A connection opens or closes: its record in h->conns. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    gd_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        gd_conn_close(h->conns, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context = fd ? gd_conn_open(h->conns, fd->connect_fd, addr ? addr->client_addr : NULL) : NULL;
}

/* MHD's own messages (bad HTTP, socket errors) go to the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    gd_http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    if (h->raw_closing && strncmp(msg, "Application reported internal error", 35) == 0) {
        h->raw_closing = 0; /* the MHD_NO of answer_midbody: the answer was sent and logged */
        return;
    }
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

/* MHD's own cap: --max-connections and room for the connections past it,
 * which are answered 503 (or closed within a second when they send no
 * request); beyond this MHD closes new connections unanswered. */
static unsigned long conn_limit(int max_connections) {
    unsigned long extra = (unsigned long)max_connections / 8;
    return (unsigned long)max_connections + (extra < 16 ? 16 : extra);
}

/* Start MHD on the bound socket: epoll when this libmicrohttpd has it. */
static int start_daemon(gd_http *h, int v6, char *msg, size_t size) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL, h->poll_mode = "epoll";
    else flags |= MHD_USE_AUTO, h->poll_mode = "auto";
    if (v6) flags |= MHD_USE_IPv6;
    /* TLS options in an array (the last one ends the list when there is no TLS). */
    struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}};
    if (h->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(msg, size, "this libmicrohttpd was built without TLS: --tls-cert cannot be used");
            return -1;
        }
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls->cert_pem};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls->key_pem};
        if (h->tls->ca_pem) tls[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls->ca_pem};
    }
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, /* first: it covers the rest */
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->cfg->conn_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)conn_limit(h->cfg->max_connections),
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)h->cfg->max_conns_per_ip,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_ARRAY, tls,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(msg, size, "libmicrohttpd did not start on %s:%d", h->cfg->host, h->port);
        return -1;
    }
    return 0;
}

gd_http *gd_http_start(const gd_config *cfg, const gd_tls *tls, gd_pool *pool, gd_metrics *m, char *msg,
                       size_t msg_size) {
    gd_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    h->cfg = cfg, h->tls = tls, h->pool = pool, h->metrics = m;
    h->listen_fd = h->quiesced_fd = -1;
    h->lim.max_nodes = cfg->max_nodes;
    h->lim.max_inputs = cfg->max_inputs;
    h->lim.max_edges = cfg->max_edges;
    h->lim.max_elements = cfg->max_elements;
    h->id_seed = random_seed();
    atomic_init(&h->draining, 0);
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->id_next, 0);
    gd_buf_init(&h->ops);
    gd_conns_limits cl = {cfg->max_connections, cfg->header_timeout_ms, cfg->min_body_rate, cfg->max_buffered,
                          cfg->max_buffered_per_ip};
    int v6 = 0;
    if (gd_encode_ops(&h->ops)) snprintf(msg, msg_size, "out of memory building the /v1/ops body");
    else if (!(h->graphs = gd_graphs_new((size_t)cfg->graph_cache))) snprintf(msg, msg_size, "out of memory");
    else if (!(h->conns = gd_conns_new(&cl, m))) snprintf(msg, msg_size, "cannot start the connection watchdog");
    else if (open_listener(h, &v6, msg, msg_size) == 0 && start_daemon(h, v6, msg, msg_size) == 0) return h;
    if (h->listen_fd >= 0) close(h->listen_fd);
    gd_conns_free(h->conns);
    gd_graphs_free(h->graphs);
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
    gd_conns_free(h->conns);
    gd_graphs_free(h->graphs);
    gd_buf_free(&h->ops);
    free(h);
}
