/* fuzz_request.c - the libFuzzer entry point for gradd's in-process path:
 * decode -> run -> encode -> free of one /v1/grad or /v1/eval body, plain
 * JSON or binary-framed, exactly as a worker does it (server/compute.c)
 * minus the HTTP around it; or the same body with its graph registered
 * first (POST /v1/graphs) and named by "graph_id".
 *
 * Built two ways from this one file:
 *   make fuzz     clang -fsanitize=fuzzer,address,undefined (tests/fuzz/fuzz.sh)
 *   make check    gcc, as tests/fuzz/replay: a main() (replay.c) that feeds
 *                 every committed regression input and seed through
 *                 LLVMFuzzerTestOneInput, so a finding stays fixed without clang.
 *
 * Input layout (the corpus generator, tests/fuzz/make_corpus.py, writes it):
 *   byte 0       options, bit by bit:
 *                  0     endpoint: 0 /v1/grad, 1 /v1/eval
 *                  1     binary framing: bytes 1..4 then split the rest
 *                  2-3   the arena's limit (--max-memory): 16M, 4M, 1M, 128K
 *                  4-5   the deadline: 250 ms, 20 ms, 1 ms, already past
 *                  6     the cancel flag is set (a shutdown) before the run
 *                  7     by id: when the JSON part is an object with a "graph",
                        that graph is registered (gd_decode_graph) and the
                        request sent with "graph_id" in its place
 *   bytes 1..4   only with framing: a little-endian uint32 n; the JSON part
 *                is the first n % (rest + 1) bytes of the rest, the binary
 *                section what follows (Gradd-Json-Length)
 *   the rest     the body
 * An empty input is an empty plain /v1/grad body.
 *
 * Work per input is bounded as a server bounds it: small node, element and
 * arena limits, and a deadline in the cancel record (the request's own
 * deadline_ms may only make it earlier, as in compute.c, but with
 * saturating arithmetic: the harness must not be the one to overflow).
 *
 * What counts as a finding: a crash, a sanitizer report, a leak (libFuzzer's
 * ASan), and an answer that breaks the contract's shape: every encoded body
 * must be one JSON object, a success body's binary section must hold the
 * bytes its tensors point at, and the request's own binary section (which
 * its tensors borrow) must come out unwritten. Those abort(). Knows proto and core, not the
 * server: the 422 rule (server/reply.c) is stood in for by encoding the
 * error body with the run's diagnostics whenever it has some. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/cancel.h"
#include "core/run.h"
#include "proto/decode.h"
#include "proto/encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    OPT_BY_ID = 1 << 7,
    OPT_EVAL = 1 << 0,
    OPT_FRAMED = 1 << 1,
    OPT_MEM_SHIFT = 2,
    OPT_DEADLINE_SHIFT = 4,
    OPT_CANCELLED = 1 << 6,
};

#define FUZZ_MAX_NODES 512
#define FUZZ_MAX_ELEMENTS ((int64_t)1 << 16)

static const size_t arena_limits[4] = {16u << 20, 4u << 20, 1u << 20, 128u << 10};
/* Deadlines in ms from the start of the input; -1: already past. */
static const int64_t deadlines_ms[4] = {250, 20, 1, -1};

/* A violated invariant of the answer: name it and stop (a finding). */
static void fail(const char *what, const gd_buf *body) {
    fprintf(stderr, "fuzz_request: %s\n", what);
    if (body && body->data) fprintf(stderr, "body: %.*s\n", (int)(body->len < 2000 ? body->len : 2000), body->data);
    abort();
}

/* The body must be exactly one JSON object (jansson reads NaN nowhere, so a
 * bare NaN or a truncated write fails here). Returns the parsed value. */
static json_t *parse_body(const gd_buf *body) {
    json_error_t je;
    json_t *v = json_loadb(body->data ? body->data : "", body->len, 0, &je);
    if (!v || !json_is_object(v)) {
        if (v) json_decref(v);
        fail("the encoded body is not one JSON object", body);
    }
    return v;
}

/* Every {"offset", "nbytes"} tensor of a binary answer lies inside bin. */
static void check_offsets(json_t *v, size_t bin_len, const gd_buf *body) {
    if (json_is_object(v)) {
        json_t *off = json_object_get(v, "offset"), *nb = json_object_get(v, "nbytes");
        if (json_is_integer(off) && json_is_integer(nb)) {
            json_int_t o = json_integer_value(off), n = json_integer_value(nb);
            if (o < 0 || n < 0 || (uint64_t)o > bin_len || (uint64_t)n > bin_len - (uint64_t)o)
                fail("a binary tensor points outside the binary section", body);
        }
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) check_offsets(x, bin_len, body);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) check_offsets(x, bin_len, body);
    }
}

/* The error body of a failed decode or run (as compute.c's error_reply). */
static void encode_error(const gd_error *err, const gd_diag *diags, int n_diags, const gd_graph *g) {
    gd_buf body;
    gd_buf_init(&body);
    if (err->code == GD_OK || err->code >= GD_E__COUNT) fail("an error without a valid code", NULL);
    if (gd_encode_error(&body, err, diags, n_diags, g) == 0) json_decref(parse_body(&body));
    gd_buf_free(&body);
}

/* The 200 body (and the 422 body when there are diagnostics). */
static void encode_success(const gd_request *req, const gd_run_result *res) {
    gd_stats st;
    gd_stats_from_run(&st, req, res);
    gd_buf body;
    gd_binsec bin; /* tensors of 64 bytes and more as pieces, as the server sends big ones */
    gd_buf_init(&body);
    gd_binsec_init(&bin);
    bin.borrow_min = 64;
    gd_binsec *b = req->tensor_format == GD_TF_BINARY ? &bin : NULL;
    int rc = req->endpoint == GD_EP_EVAL ? gd_encode_eval_response(&body, b, req, res, &st)
                                         : gd_encode_grad_response(&body, b, req, res, &st);
    if (rc == 0) {
        json_t *v = parse_body(&body);
        if (b) check_offsets(v, gd_binsec_len(&bin), &body);
        json_decref(v);
    }
    gd_buf_free(&body);
    gd_binsec_free(&bin);
    if (res->n_diags > 0) {
        gd_error e;
        gd_error_clear(&e);
        gd_errorf(&e, GD_E_NO_GRADIENTS, NULL, "No gradients provided for any variable (fuzz)");
        encode_error(&e, res->diags, res->n_diags, req->graph);
    }
}

/* The request's own deadline may only make the harness's earlier. */
static void apply_deadline(const gd_request *req, int64_t start_ns, gd_cancel *cancel) {
    if (req->deadline_ms <= 0) return;
    int64_t room = (INT64_MAX - start_ns) / 1000000;
    if (req->deadline_ms >= room) return;
    int64_t d = start_ns + req->deadline_ms * 1000000;
    if (d < cancel->deadline_ns) cancel->deadline_ns = d;
}

/* Option 7: the JSON part as {"graph": G} alone (*reg, malloc'd) and as
 * the request with "graph_id": "fuzz" in G's place (*req, malloc'd). 0, or
 * -1 when the part is no JSON object with a "graph". */
static int split_graph(const char *json, size_t len, char **reg, char **req) {
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_DECODE_INT_AS_REAL, &je), *g;
    if (!root || !json_is_object(root) || !(g = json_object_get(root, "graph"))) {
        json_decref(root);
        return -1;
    }
    json_t *r = json_pack("{sO}", "graph", g);
    json_object_del(root, "graph");
    json_object_set_new(root, "graph_id", json_string("fuzz"));
    *reg = r ? json_dumps(r, JSON_COMPACT) : NULL;
    *req = json_dumps(root, JSON_COMPACT);
    json_decref(r);
    json_decref(root);
    if (*reg && *req) return 0;
    free(*reg);
    free(*req);
    return -1;
}

static const gd_graph *fuzz_lookup(void *arg, const char *id) {
    return strcmp(id, "fuzz") ? NULL : arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned opt = size ? data[0] : 0;
    const uint8_t *p = size ? data + 1 : data;
    size_t n = size ? size - 1 : 0;
    size_t json_len = n;
    const unsigned char *bin = NULL;
    size_t bin_len = 0;
    if (opt & OPT_FRAMED) {
        uint32_t split = 0;
        for (int i = 0; i < 4 && n > 0; i++, p++, n--) split |= (uint32_t)*p << (8 * i);
        json_len = split % ((uint64_t)n + 1);
        bin = p + json_len;
        bin_len = n - json_len;
    }
    /* A copy of exactly the body's bytes, so that ASan sees any read past it. */
    char *body = malloc(n ? n : 1);
    if (!body) return 0;
    memcpy(body, p, n);
    if (bin) bin = (const unsigned char *)body + json_len;

    int64_t start = gd_now_ns();
    int64_t dl = deadlines_ms[(opt >> OPT_DEADLINE_SHIFT) & 3];
    gd_cancel cancel = {.deadline_ns = dl < 0 ? start - 1 : start + dl * 1000000};
    atomic_store(&cancel.cancelled, (opt & OPT_CANCELLED) ? 1 : 0);
    gd_decode_limits lim = {.max_nodes = FUZZ_MAX_NODES, .max_elements = FUZZ_MAX_ELEMENTS};

    gd_arena *a = gd_arena_new(arena_limits[(opt >> OPT_MEM_SHIFT) & 3]);
    if (!a) {
        free(body);
        return 0;
    }
    gd_request req;
    gd_run_result res;
    gd_error err;
    memset(&res, 0, sizeof res);
    gd_error_clear(&err);
    int endpoint = (opt & OPT_EVAL) ? GD_EP_EVAL : GD_EP_GRAD;
    /* By id: register the graph in an arena of its own (as compute.c does),
     * then decode the request naming it; the held nodes must come out of
     * the request untouched. */
    char *reg = NULL, *byid = NULL, *nodes_copy = NULL;
    gd_arena *held = NULL;
    gd_graph *hg = NULL;
    size_t held_bytes = 0;
    if ((opt & OPT_BY_ID) && split_graph(body, json_len, &reg, &byid) == 0) {
        held = gd_arena_new_small(1u << 20);
        gd_buf canon;
        gd_buf_init(&canon);
        gd_error rerr;
        gd_error_clear(&rerr);
        if (held && gd_decode_graph(a, held, reg, strlen(reg), &lim, &hg, &canon, &rerr) == 0) {
            json_decref(parse_body(&canon)); /* the canonical text is one JSON object */
            held_bytes = sizeof(gd_node) * (size_t)hg->n;
            nodes_copy = malloc(held_bytes + 1);
            if (nodes_copy) memcpy(nodes_copy, hg->nodes, held_bytes);
            lim.lookup = fuzz_lookup, lim.lookup_arg = hg;
        } else if (held && rerr.code == GD_OK) {
            fail("a failed registration without an error code", NULL);
        }
        gd_buf_free(&canon);
    }
    int rc = byid && hg ? gd_decode_request(a, byid, strlen(byid), bin, bin_len, endpoint, &lim, &req, &err)
                        : gd_decode_request(a, body, json_len, bin, bin_len, endpoint, &lim, &req, &err);
    /* The body lives until the response is encoded, as in compute.c: the
     * binary tensors borrow its bytes (proto/wire.h). Its binary section is
     * compared afterwards: neither the run nor the encoder may write it. */
    char *bin_copy = bin_len ? malloc(bin_len) : NULL;
    if (bin_copy) memcpy(bin_copy, bin, bin_len);
    free(reg);
    free(byid);
    if (!rc) {
        apply_deadline(&req, start, &cancel);
        req.spec.cancel = &cancel;
        rc = gd_run(req.graph, &req.spec, &res, &err);
    }
    if (rc) {
        if (err.code == GD_OK) err.code = (gd_err)rc;
        encode_error(&err, NULL, 0, NULL);
    } else {
        encode_success(&req, &res);
    }
    if (bin_copy && memcmp(bin_copy, bin, bin_len)) fail("a request wrote into its body's binary section", NULL);
    free(bin_copy);
    free(body); /* as compute.c's body_done: after encoding */
    if (nodes_copy && memcmp(nodes_copy, hg->nodes, held_bytes)) fail("a request wrote a held graph's nodes", NULL);
    free(nodes_copy);
    gd_arena_free(held);
    gd_arena_free(a);
    return 0;
}
