/* compute.c - decode, run, encode for one request on a worker (see
 * compute.h). The arena holds everything the request builds and is freed
 * before returning; only the reply's buffers outlive the call, with the
 * tensor buffers a binary reply sends from (taken out of the arena, handed
 * back to the workers' caches once sent). */
#include "server/compute.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/run.h"
#include "server/log.h"
#include "proto/canon.h"
#include "proto/decode.h"
#include "proto/encode.h"
#include "proto/explain.h"
#include "proto/peek.h"
#include "server/render.h"

/* The request's own deadline_ms may only make the server's deadline earlier. */
static void apply_deadline(const gd_compute_in *in, const gd_request *req, gd_cancel *cancel) {
    if (req->deadline_ms <= 0) return;
    cancel->deadline_ns = gd_deadline_min(cancel->deadline_ns, gd_deadline_after(in->recv_ns, req->deadline_ms));
}

/* The error answer for a failed decode or run. A run stopped by shutdown
 * is 503 rather than 504; an internal error is logged with the request id. */
static void error_reply(const gd_compute_in *in, const gd_cancel *cancel, gd_error *err, gd_reply *out) {
    if (err->code == GD_E_DEADLINE_EXCEEDED && atomic_load(&cancel->cancelled) == GD_CANCEL_SHUTDOWN) {
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server is shutting down; the computation was stopped.");
        return;
    }
    if (err->code == GD_OK || err->code >= GD_E__COUNT) err->code = GD_E_INTERNAL;
    if (err->code == GD_E_INTERNAL)
        gd_log_event("error", "request %s: internal error: %s", in->request_id, err->message);
    gd_reply_error(out, err, NULL, 0, NULL);
}

/* Tensors of at least this many bytes go out of a binary response from
 * their own buffers instead of a copy (wire.h: gd_binsec); below it a copy
 * costs less than the piece's bookkeeping. */
#define GD_PIECE_MIN ((size_t)64 << 10)

static void return_block(void *p);

/* Make the reply own the memory of its binary pieces, which must outlive
 * the arena: each tensor buffer is taken out of it (gd_arena_detach); a
 * piece that is no arena block of its own (a value borrowed from the
 * request body, a registered graph's constant) is first copied into one,
 * counted against the limit. 0, or -1 when the limit or memory refused. */
static int own_pieces(gd_arena *a, gd_reply *out) {
    gd_binsec *b = &out->bin;
    if (!b->n_seg) return 0;
    if (!(out->blocks = malloc(sizeof *out->blocks * (size_t)b->n_seg))) return -1;
    out->drop_block = return_block;
    for (int k = 0; k < b->n_seg; k++) {
        int again = 0; /* the same tensor sent twice: its block is owned already */
        for (int j = 0; j < out->n_blocks; j++) again |= out->blocks[j] == b->seg[k].p;
        if (again) continue;
        void *blk = gd_arena_detach(a, (void *)b->seg[k].p);
        if (!blk) {
            if (!(blk = gd_arena_buf(a, b->seg[k].len, 0))) return -1;
            memcpy(blk, b->seg[k].p, b->seg[k].len);
            b->seg[k].p = gd_arena_detach(a, blk);
        }
        out->blocks[out->n_blocks++] = blk;
    }
    return 0;
}

static void *reply_block(size_t n);

/* Where a big answer's JSON text is written: the blocks that request
 * bodies and sent answers gave back, not fresh pages (a 20 MB answer
 * faulted in 5,000 of them, more time than printing its numbers); the
 * response gives the block back once sent. */
static const gd_buf_pool reply_pool = {GD_PIECE_MIN, reply_block, gd_compute_block_done};

/* The 200 (or 422) body of a successful run. The encoded response counts
 * against the request's memory limit, beside what the arena still holds: a
 * response that outgrows it is 413 (A7). The deadline covers encoding too
 * (A7): an encoding stopped by it is answered as a stopped computation is. */
static void success_reply(const gd_compute_in *in, const gd_request *req, const gd_run_result *res, gd_arena *a,
                          gd_cancel *cancel, gd_reply *out) {
    gd_error err;
    if (gd_no_gradients(req, res, &err)) {
        gd_reply_error(out, &err, res->diags, res->n_diags, req->graph);
        return;
    }
    gd_stats st;
    gd_stats_from_run(&st, req, res);
    int64_t now = gd_now_ns();
    st.queue_us = (in->started_ns - in->recv_ns) / 1000;
    st.total_us = (now - in->recv_ns) / 1000;
    gd_reply_reset(out);
    out->status = 200;
    gd_buf_use_pool(&out->body, &reply_pool); /* a big answer's text lands in warm pages */
    gd_reply_count_diags(out, res->diags, res->n_diags);
    out->binary = req->tensor_format == GD_TF_BINARY;
    gd_binsec *bin = out->binary ? &out->bin : NULL;
    out->bin.borrow_min = GD_PIECE_MIN;
    gd_buf_charge_to(&out->body, a);
    gd_buf_charge_to(&out->bin.bytes, a);
    int rc = req->endpoint == GD_EP_EVAL ? gd_encode_eval_response(&out->body, bin, req, res, &st)
                                         : gd_encode_grad_response(&out->body, bin, req, res, &st);
    if (!rc && own_pieces(a, out)) rc = -1;
    int over = out->body.over_limit || out->bin.bytes.over_limit || gd_arena_refused(a);
    gd_buf_charge_to(&out->body, NULL); /* the reply outlives the arena */
    gd_buf_charge_to(&out->bin.bytes, NULL);
    if (rc == GD_E_DEADLINE_EXCEEDED) {
        gd_errorf(&err, GD_E_DEADLINE_EXCEEDED, NULL, "%s", GD_DEADLINE_MESSAGE);
        error_reply(in, cancel, &err, out);
    } else if (rc && over)
        gd_reply_errorf(out, GD_E_TOO_LARGE, NULL,
                        "The response would need more memory than this server allows for one request "
                        "(with the request's tensors); fetch fewer or smaller values, or ask for the "
                        "\"binary\" tensor format.");
    else if (rc)
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL,
                        "The server ran out of memory while encoding the response; retry later.");
}

/* The picture of a run (A4), whatever its diagnostics (a run without any
 * gradient is what it is most useful for): DOT text, laid out and drawn as
 * SVG by a Graphviz child unless the client asked for DOT or Graphviz is not
 * built in. Both count against the request's memory limit. */
static void explain_reply(const gd_compute_in *in, const gd_request *req, const gd_run_result *res, gd_arena *a,
                          gd_cancel *cancel, gd_reply *out) {
    gd_error err;
    gd_error_clear(&err);
    gd_buf dot;
    gd_buf_init(&dot);
    gd_buf_charge_to(&dot, a);
    int rc = 0, svg = !in->explain_dot && gd_render_available();
    if (gd_explain_dot(&dot, req, res))
        rc = dot.failed && !dot.over_limit ? GD_E_OVERLOADED /* malloc said no */
                                           : gd_errorf(&err, GD_E_TOO_LARGE, NULL,
                                                       "The picture would need more memory than this server allows "
                                                       "for one request; send a smaller graph.");
    gd_reply_reset(out);
    if (!rc && svg) {
        gd_buf_charge_to(&out->body, a);
        rc = gd_render_svg(dot.data, dot.len, cancel, in->arena_limit, &out->body, &err);
        gd_buf_charge_to(&out->body, NULL); /* the reply outlives the arena */
    }
    gd_buf_charge_to(&dot, NULL);
    if (!rc && !svg) {
        out->body = dot; /* the reply takes the text */
        gd_buf_init(&dot);
    }
    gd_buf_free(&dot);
    if (rc == GD_E_OVERLOADED) {
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server ran out of memory while drawing the picture; retry later.");
    } else if (rc) {
        error_reply(in, cancel, &err, out);
    } else {
        out->status = 200;
        out->content_type = svg ? GD_CT_SVG : GD_CT_DOT;
    }
}

/* /v1/explain draws graphs of at most --explain-max-nodes nodes: the
 * layout's time grows faster than linearly (A4). Checked before the run. */
static int explain_too_large(const gd_compute_in *in, const gd_request *req, int by_id, gd_error *err) {
    if (req->graph->n <= in->explain_max_nodes) return 0;
    return gd_errorf(err, GD_E_TOO_LARGE, by_id ? "$.graph_id" : "$.graph.nodes",
                     "The graph has %d nodes; /v1/explain draws at most %d (--explain-max-nodes), since a layout's "
                     "time grows faster than linearly. POST the same body to /v1/grad for the diagnostics as JSON.",
                     req->graph->n, in->explain_max_nodes);
}

/* Each worker thread keeps the big tensor buffers its last requests
 * released (up to GD_WORKER_CACHE_BYTES) and builds the next request's arena
 * from them: a request of the same size then reuses warm pages instead of
 * faulting in fresh ones (about 15% of an MLP step). 128 MiB: at 64 the
 * 2048-wide MLP's buffers did not fit, and each step mapped four fresh 4 MB
 * ones (4100 page faults and a third more CPU per step, docs/benchmarks.md
 * xfer10). The cache is created on
 * a thread's first request and freed by the key's destructor when the
 * worker exits. Every cache is also on a list, so that gd_compute_trim_idle
 * can empty it while its worker waits; the worker holds its cache's mutex
 * while it computes (never contended but by the trimmer). */
#define GD_WORKER_CACHE_BYTES ((size_t)128 << 20)

typedef struct worker_mem {
    gd_bufcache *cache;
    pthread_mutex_t mu;
    struct worker_mem *prev, *next;
} worker_mem;

/* Blocks that binary responses sent from (own_pieces) come back here
 * once sent, on MHD's thread; the next request on any worker takes them
 * into its cache, so that the next response's tensors land in warm pages.
 * Request bodies come back here too (gd_compute_block_done), and MHD's
 * thread takes the next body's block from here: it holds up to
 * GD_RETURNED_BYTES, room for a response's gradients beside a body of the
 * same size (the 2048-wide MLP: 46 MB of gradients, a 48 MB body). */
#define GD_RETURNED_BYTES ((size_t)128 << 20)
static pthread_mutex_t returned_mu = PTHREAD_MUTEX_INITIALIZER;
static gd_bufcache *returned; /* under returned_mu; made on first use */

static void return_block(void *p) {
    pthread_mutex_lock(&returned_mu);
    if (!returned) returned = gd_bufcache_new(GD_RETURNED_BYTES);
    if (returned) gd_bufcache_adopt(returned, p);
    else gd_arena_block_free(p);
    pthread_mutex_unlock(&returned_mu);
}

void gd_compute_block_done(void *p) { return_block(p); }

void *gd_compute_block(size_t n) {
    pthread_mutex_lock(&returned_mu);
    if (!returned) returned = gd_bufcache_new(GD_RETURNED_BYTES);
    gd_arena *a = gd_arena_new_cached(0, returned); /* returned NULL: a new block */
    void *p = a ? gd_arena_buf(a, n, 0) : NULL;
    if (p) gd_arena_detach(a, p);
    gd_arena_free(a);
    pthread_mutex_unlock(&returned_mu);
    return p;
}

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t workers_mu = PTHREAD_MUTEX_INITIALIZER;
static worker_mem *workers;          /* every thread's, under workers_mu */
static atomic_int busy;              /* requests computing now */
static _Atomic int64_t last_done_ns; /* when the last one finished */
static atomic_int trimmed;           /* trimmed since then */

static void cache_destroy(void *p) {
    worker_mem *w = p;
    pthread_mutex_lock(&workers_mu);
    if (w->prev) w->prev->next = w->next;
    else workers = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&workers_mu);
    gd_bufcache_free(w->cache);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void cache_key_init(void) { (void)pthread_key_create(&cache_key, cache_destroy); }

/* This thread's cache and its mutex, or NULL (then arenas simply allocate
 * afresh). */
static worker_mem *worker_cache(void) {
    pthread_once(&cache_once, cache_key_init);
    worker_mem *w = pthread_getspecific(cache_key);
    if (w) return w;
    if (!(w = calloc(1, sizeof *w))) return NULL;
    if (!(w->cache = gd_bufcache_new(GD_WORKER_CACHE_BYTES)) || pthread_mutex_init(&w->mu, NULL)) {
        gd_bufcache_free(w->cache);
        free(w);
        return NULL;
    }
    if (pthread_setspecific(cache_key, w)) {
        gd_bufcache_free(w->cache);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    pthread_mutex_lock(&workers_mu);
    w->next = workers;
    if (workers) workers->prev = w;
    workers = w;
    pthread_mutex_unlock(&workers_mu);
    return w;
}

int gd_compute_trim_idle(int64_t idle_ms) {
    if (idle_ms <= 0 || atomic_load(&busy) || atomic_load(&trimmed) ||
        gd_now_ns() - atomic_load(&last_done_ns) < idle_ms * 1000000)
        return 0;
    pthread_mutex_lock(&workers_mu);
    for (worker_mem *w = workers; w; w = w->next)
        if (pthread_mutex_trylock(&w->mu) == 0) { /* busy again: that worker keeps its cache */
            gd_bufcache_clear(w->cache);
            pthread_mutex_unlock(&w->mu);
        }
    pthread_mutex_unlock(&workers_mu);
    pthread_mutex_lock(&returned_mu);
    if (returned) gd_bufcache_clear(returned);
    pthread_mutex_unlock(&returned_mu);
    gd_decode_trim();
    malloc_trim(0);
    atomic_store(&trimmed, 1);
    return 1;
}

/* Move the blocks given back since into w's cache (w's mutex held). */
static void take_returned(worker_mem *w) {
    pthread_mutex_lock(&returned_mu);
    if (returned) gd_bufcache_move(w->cache, returned);
    pthread_mutex_unlock(&returned_mu);
}

/* The request's arena, under its worker's cache (locked until compute_end). */
static gd_arena *compute_begin(const gd_compute_in *in, worker_mem **wm) {
    atomic_fetch_add(&busy, 1);
    *wm = worker_cache();
    if (*wm) {
        pthread_mutex_lock(&(*wm)->mu);
        /* Not on the network thread: its requests are small, and a big
         * block moved into its cache stays there while the workers,
         * including the one this request may be deferred to, make new
         * ones (each 3.6 MB answer took a fresh 5 MB block). */
        if (!in->inline_work_max) take_returned(*wm);
    }
    return gd_arena_new_cached(in->arena_limit, *wm ? (*wm)->cache : NULL);
}

/* A block of n bytes for an answer's text, called while this thread
 * computes (holding its cache's mutex): from its cache, where
 * compute_begin moved the blocks that earlier answers and bodies gave
 * back, else as gd_compute_block gives one: from those returned since (the
 * previous answer's block comes back when MHD is done with its connection,
 * which may be after this request began), else new. */
static void *reply_block(size_t n) {
    worker_mem *w = pthread_getspecific(cache_key);
    void *p = w ? gd_bufcache_take(w->cache, n) : NULL;
    return p ? p : gd_compute_block(n);
}

static void compute_end(gd_arena *a, worker_mem *wm) {
    gd_arena_free(a);
    if (wm) pthread_mutex_unlock(&wm->mu);
    atomic_store(&last_done_ns, gd_now_ns());
    atomic_store(&trimmed, 0);
    atomic_fetch_sub(&busy, 1);
}

/* The held graph a request's graph_id names, for the decoder (request.h):
 * the reference is kept in the holder and given back once the request is
 * answered. */
typedef struct holder {
    gd_graphs *graphs;
    gd_held *held;
    int64_t inline_max;  /* the network thread's --inline-work, or 0 */
    int too_big;         /* the graph has more nodes than inline_max allows: not looked up */
} holder;

/* Whether a graph of n nodes is too much for the network thread whatever its
 * shapes (gd_graph_work counts GD_NODE_WORK per node): deferred before any
 * of its request is decoded. */
static int too_big_inline(int64_t inline_max, int n) { return inline_max > 0 && (int64_t)n * GD_NODE_WORK > inline_max; }

static const gd_graph *lookup_held(void *arg, const char *id) {
    holder *k = arg;
    if (!k->graphs || !gd_graphs_public_id(id)) return NULL;
    gd_graphs_release(k->graphs, k->held); /* a request names one graph; never two references */
    k->held = gd_graphs_get(k->graphs, id, 1);
    if (k->held && too_big_inline(k->inline_max, k->held->g->n)) {
        gd_graphs_release(k->graphs, k->held);
        k->held = NULL;
        k->too_big = 1; /* the decode fails here; the caller defers the request */
    }
    return k->held ? k->held->g : NULL;
}

/* A registration failed with err: a graph whose held form outgrew its
 * arena's limit is too large for --graph-cache, whatever it was doing. */
static void register_error(const gd_compute_in *in, const gd_cancel *cancel, gd_arena *held, gd_error *err,
                           gd_reply *out) {
    if (err->code == GD_E_TOO_LARGE && gd_arena_refused(held))
        gd_errorf(err, GD_E_TOO_LARGE, NULL,
                  "The graph's held form needs more than the %zu bytes of --graph-cache; send a smaller graph "
                  "(or ask the operator for a larger cache).", gd_graphs_limit(in->graphs));
    error_reply(in, cancel, err, out);
}

/* POST /v1/graphs: decode and check the graph into an arena of its own,
 * bounded by --graph-cache, then list it under its id (A3). */
static void register_graph(const gd_compute_in *in, gd_cancel *cancel, const gd_decode_limits *lim, gd_arena *a,
                           gd_reply *out) {
    gd_error err;
    gd_error_clear(&err);
    size_t limit = in->graphs ? gd_graphs_limit(in->graphs) : 0;
    gd_arena *held = in->graphs ? gd_arena_new_small(limit) : NULL;
    if (!held) {
        if (in->body_done) in->body_done(in->body_done_arg);
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server is out of memory; retry later.");
        return;
    }
    gd_graph *g = NULL;
    gd_buf canon;
    gd_buf_init(&canon);
    gd_buf_charge_to(&canon, a);
    int rc = gd_decode_graph(a, held, in->body, in->json_len, lim, &g, &canon, &err);
    if (in->body_done) in->body_done(in->body_done_arg);
    char *text = NULL;
    if (!rc && !(text = gd_arena_alloc(held, canon.len + 1))) rc = gd_error_oom(&err);
    if (text) memcpy(text, canon.data, canon.len);
    size_t canon_len = canon.len;
    gd_buf_charge_to(&canon, NULL);
    gd_buf_free(&canon);
    gd_held *h = rc ? NULL : gd_held_new(held, g, text, canon_len);
    if (!rc && !h) rc = gd_error_oom(&err);
    if (!rc && h->bytes > limit) /* the arena counts its buffers only; the whole of it counts here */
        rc = gd_errorf(&err, GD_E_TOO_LARGE, NULL,
                       "The graph's held form takes %zu bytes, more than the %zu bytes of --graph-cache; send a "
                       "smaller graph (or ask the operator for a larger cache).", h->bytes, limit);
    if (rc) {
        register_error(in, cancel, held, &err, out);
        gd_arena_free(held);
        return;
    }
    int created;
    h = gd_graphs_put(in->graphs, h, &created);
    gd_reply_reset(out);
    out->status = created ? 201 : 200;
    if (gd_encode_registered(&out->body, h->id, h->g))
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server ran out of memory while encoding the response; retry later.");
    gd_graphs_release(in->graphs, h);
}

/* ---- the cache of graphs sent inline ------------------------------------------------------
 *
 * A client that sends the same "graph" with every request (a training loop
 * that never registered it) gets the registered path anyway: the graph's
 * text, found by a scan (proto/peek.h) and hashed, names a held graph in the
 * registered graphs' cache (same --graph-cache bytes and LRU) under an id of
 * its own, "inline:" and the hash, which clients can neither name nor read
 * (lookup_held and GET /v1/graphs/{id} take "sha256:" ids only). A graph is
 * held from the second time its text is seen (one-off graphs cost nothing
 * but the hash), and used only when its text is byte for byte the one sent.
 * The request is then decoded with the "graph" member's text replaced by 0
 * and the held graph standing for it (decode.h's graph_given); if that
 * decode fails for any reason, the body is decoded again as sent, so that
 * every error is the one the body itself gives. */

#define SEEN_SLOTS 4096
static _Atomic uint64_t seen[SEEN_SLOTS]; /* hashes of graph texts seen once (0: none) */

/* 64-bit hash of n bytes: eight at a time, multiply and fold. Not for
 * adversaries: a match is confirmed by comparing the texts. */
static uint64_t text_hash(const char *p, size_t n) {
    const uint64_t k = 0x9fb21c651e98df25ULL;
    uint64_t h = 0x243f6a8885a308d3ULL ^ (n * k);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    h = (h ^ w ^ (uint64_t)(n - i) << 56) * k;
    h ^= h >> 32;
    return h ? h : 1;
}

static void inline_id(char id[GD_GRAPH_ID_LEN + 1], uint64_t h) {
    static const char hex[] = "0123456789abcdef";
    memcpy(id, "inline:", 7);
    for (int i = 0; i < 16; i++) id[7 + i] = hex[h >> (60 - 4 * i) & 15];
    id[23] = '\0';
}

/* Decode the graph text t (n bytes) into a held graph listed under id, as a
 * registration would (its arena bounded by --graph-cache), keeping the text
 * for comparison. The entry with a reference, or NULL (an invalid graph is
 * left to the ordinary decode, which reports it). */
static gd_held *hold_inline(const gd_compute_in *in, gd_arena *a, const gd_decode_limits *lim, const char *t, size_t n,
                            const char *id) {
    static const char head[] = "{\"graph\":";
    size_t limit = gd_graphs_limit(in->graphs);
    char *wrapped = gd_arena_buf(a, sizeof head + n + 1, 0);
    gd_arena *held = wrapped ? gd_arena_new_small(limit) : NULL;
    if (!held) {
        if (wrapped) gd_arena_release(a, wrapped);
        return NULL;
    }
    memcpy(wrapped, head, sizeof head - 1);
    memcpy(wrapped + sizeof head - 1, t, n);
    wrapped[sizeof head - 1 + n] = '}';
    gd_graph *g = NULL;
    gd_buf canon;
    gd_buf_init(&canon);
    gd_buf_charge_to(&canon, a);
    gd_error err;
    int rc = gd_decode_graph(a, held, wrapped, sizeof head + n, lim, &g, &canon, &err);
    gd_buf_charge_to(&canon, NULL);
    gd_buf_free(&canon);
    gd_arena_release(a, wrapped);
    char *text = rc ? NULL : gd_arena_alloc(held, n + 1);
    gd_held *h = NULL;
    if (text) {
        memcpy(text, t, n);
        text[n] = '\0';
        h = gd_held_new(held, g, text, n);
    }
    if (!h || h->bytes > limit) {
        gd_arena_free(held);
        return NULL;
    }
    snprintf(h->id, sizeof h->id, "%s", id);
    int created;
    return gd_graphs_put(in->graphs, h, &created);
}

/* The held graph for the request's inline "graph" (a reference in *held),
 * and the body with that member's text replaced by 0 (*text, *len, in the
 * arena); 0 when there is none to use. */
static int recent_graph(const gd_compute_in *in, gd_arena *a, const gd_decode_limits *lim, gd_held **held,
                        char **text, size_t *len) {
    size_t gs, ge;
    if (!in->graphs || !gd_peek_member(in->body, in->json_len, "graph", &gs, &ge) || ge - gs < 2) return 0;
    const char *t = in->body + gs;
    size_t n = ge - gs;
    uint64_t hv = text_hash(t, n);
    char id[GD_GRAPH_ID_LEN + 1];
    inline_id(id, hv);
    gd_held *h = gd_graphs_get(in->graphs, id, 0);
    if (!h) {
        _Atomic uint64_t *slot = &seen[hv % SEEN_SLOTS];
        if (atomic_load_explicit(slot, memory_order_relaxed) != hv) {
            atomic_store_explicit(slot, hv, memory_order_relaxed);
            return 0;
        }
        if (!(h = hold_inline(in, a, lim, t, n, id))) return 0;
    }
    if (h->canon_len != n || memcmp(h->canon, t, n) || !(*text = gd_arena_buf(a, in->json_len - n + 2, 0))) {
        gd_graphs_release(in->graphs, h);
        return 0;
    }
    memcpy(*text, in->body, gs);
    (*text)[gs] = '0';
    memcpy(*text + gs + 1, in->body + ge, in->json_len - ge);
    *len = in->json_len - n + 1;
    (*text)[*len] = '\0';
    *held = h;
    return 1;
}

int gd_compute(const gd_compute_in *in, gd_cancel *cancel, gd_reply *out) {
    worker_mem *wm;
    gd_arena *a = compute_begin(in, &wm);
    if (!a) {
        compute_end(NULL, wm);
        if (in->body_done) in->body_done(in->body_done_arg);
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server is out of memory; retry later.");
        return 0;
    }
    gd_request req;
    gd_run_result res;
    gd_error err;
    memset(&res, 0, sizeof res);
    gd_error_clear(&err);
    /* Decoding and checking stop at the deadline too (A7): the limits are
     * shared by every request, so this one's cancel record goes in a copy. */
    gd_decode_limits lim = *in->lim;
    lim.cancel = cancel;
    if (in->endpoint == GD_EP_REGISTER) {
        register_graph(in, cancel, &lim, a, out);
        compute_end(a, wm);
        return 0;
    }
    holder hold = {in->graphs, NULL, in->inline_work_max, 0};
    lim.lookup = lookup_held, lim.lookup_arg = &hold;
    int explain = in->endpoint == GD_EP_EXPLAIN, rc = -1;
    char *text;
    size_t text_len;
    gd_held *recent = NULL;
    if (!explain && recent_graph(in, a, &lim, &recent, &text, &text_len) && too_big_inline(in->inline_work_max, recent->g->n)) {
        gd_graphs_release(in->graphs, recent);
        compute_end(a, wm);
        return GD_COMPUTE_DEFERRED;
    }
    if (recent) {
        gd_decode_limits given = lim;
        given.graph_given = recent->g;
        if ((rc = gd_decode_request(a, text, text_len, in->bin, in->bin_len, in->endpoint, &given, &req, &err))) {
            /* decoded again as sent, in a fresh arena: the error is the body's own */
            gd_graphs_release(in->graphs, recent);
            recent = NULL;
            if (hold.held) gd_graphs_release(in->graphs, hold.held);
            hold.held = NULL;
            gd_arena_free(a);
            a = gd_arena_new_cached(in->arena_limit, wm ? wm->cache : NULL);
            gd_error_clear(&err);
            if (!a) {
                compute_end(NULL, wm);
                if (in->body_done) in->body_done(in->body_done_arg);
                gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server is out of memory; retry later.");
                return 0;
            }
        }
    }
    if (rc)
        rc = gd_decode_request(a, in->body, in->json_len, in->bin, in->bin_len, explain ? GD_EP_GRAD : in->endpoint,
                               &lim, &req, &err);
    if (rc && hold.too_big) { /* a graph_id naming a graph too big for the network thread */
        compute_end(a, wm);
        return GD_COMPUTE_DEFERRED;
    }
    if (!rc && explain) rc = explain_too_large(in, &req, hold.held != NULL, &err);
    if (!rc && in->inline_work_max > 0 && gd_graph_work(req.graph, in->inline_work_max) > in->inline_work_max) {
        compute_end(a, wm); /* too much for the network thread: a worker decodes it again */
        if (hold.held) gd_graphs_release(in->graphs, hold.held);
        if (recent) gd_graphs_release(in->graphs, recent);
        return GD_COMPUTE_DEFERRED;
    }
    if (!rc) {
        apply_deadline(in, &req, cancel);
        req.spec.cancel = cancel;
        rc = gd_run(req.graph, &req.spec, &res, &err);
    }
    if (rc) {
        if (err.code == GD_OK) err.code = (gd_err)rc;
        error_reply(in, cancel, &err, out);
    } else if (explain) {
        explain_reply(in, &req, &res, a, cancel, out);
    } else {
        success_reply(in, &req, &res, a, cancel, out);
    }
    /* Binary tensors borrow the body's bytes (wire.h): it is let go of only
     * now that the response is encoded. */
    if (in->body_done) in->body_done(in->body_done_arg);
    compute_end(a, wm);
    if (hold.held) gd_graphs_release(in->graphs, hold.held); /* after the last read of its graph */
    if (recent) gd_graphs_release(in->graphs, recent);
    return 0;
}
