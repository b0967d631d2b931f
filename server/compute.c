/* compute.c - decode, run, encode for one request on a worker (see
 * compute.h). The arena holds everything the request builds and is freed
 * before returning; only the reply's buffers outlive the call. */
#include "server/compute.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/arena.h"
#include "core/run.h"
#include "server/log.h"
#include "proto/decode.h"
#include "proto/encode.h"

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

/* The 200 (or 422) body of a successful run. */
static void success_reply(const gd_compute_in *in, const gd_request *req, const gd_run_result *res, gd_reply *out) {
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
    out->binary = req->tensor_format == GD_TF_BINARY;
    gd_buf *bin = out->binary ? &out->bin : NULL;
    int rc = req->endpoint == GD_EP_EVAL ? gd_encode_eval_response(&out->body, bin, req, res, &st)
                                         : gd_encode_grad_response(&out->body, bin, req, res, &st);
    if (rc)
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL,
                        "The server ran out of memory while encoding the response; retry later.");
}

/* Each worker thread keeps the big tensor buffers its last requests
 * released (up to GD_WORKER_CACHE_BYTES) and builds the next request's arena
 * from them: a request of the same size then reuses warm pages instead of
 * faulting in fresh ones (about 15% of an MLP step). The cache is created on
 * a thread's first request and freed by the key's destructor when the
 * worker exits. */
#define GD_WORKER_CACHE_BYTES ((size_t)64 << 20)

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *c) { gd_bufcache_free(c); }
static void cache_key_init(void) { (void)pthread_key_create(&cache_key, cache_destroy); }

/* This thread's cache, or NULL (then arenas simply allocate afresh). */
static gd_bufcache *worker_cache(void) {
    pthread_once(&cache_once, cache_key_init);
    gd_bufcache *c = pthread_getspecific(cache_key);
    if (!c && (c = gd_bufcache_new(GD_WORKER_CACHE_BYTES)) && pthread_setspecific(cache_key, c)) {
        gd_bufcache_free(c);
        c = NULL;
    }
    return c;
}

void gd_compute(const gd_compute_in *in, gd_cancel *cancel, gd_reply *out) {
    gd_arena *a = gd_arena_new_cached(in->arena_limit, worker_cache());
    if (!a) {
        if (in->body_done) in->body_done(in->body_done_arg);
        gd_reply_errorf(out, GD_E_OVERLOADED, NULL, "The server is out of memory; retry later.");
        return;
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
    int rc = gd_decode_request(a, in->body, in->json_len, in->bin, in->bin_len, in->endpoint, &lim, &req, &err);
    if (in->body_done) in->body_done(in->body_done_arg);
    if (!rc) {
        apply_deadline(in, &req, cancel);
        req.spec.cancel = cancel;
        rc = gd_run(req.graph, &req.spec, &res, &err);
    }
    if (rc) {
        if (err.code == GD_OK) err.code = (gd_err)rc;
        error_reply(in, cancel, &err, out);
    } else {
        success_reply(in, &req, &res, out);
    }
    gd_arena_free(a);
}
