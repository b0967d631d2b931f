/* test_memory.c - what one request may hold (A7): the memory plan against
 * the arena's measured peak (over the golden corpus, the PyTorch fixtures
 * and graphs of large tensors), a request refused from its plan before any
 * kernel runs, the parsed JSON counted against the limit (413 first), and a
 * response buffer counted against it. The server side (RSS of a real gradd,
 * the idle trim) is in test_http.c. */
#include <jansson.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/run.h"
#include "proto/decode.h"
#include "tests.h"

#define MIB ((size_t)1 << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GD_TEST_TIME_SCALE (>= 1) stretches the one time window here, as in the
 * HTTP tests. */
static double time_scale(void) {
    const char *e = getenv("GD_TEST_TIME_SCALE");
    double s = e ? atof(e) : 1;
    return s >= 1 ? s : 1;
}

/* The server's default limits, so that a corpus case meant to be refused
 * is refused here too rather than computed. */
static const gd_decode_limits server_limits = {.max_nodes = 10000, .max_elements = (int64_t)1 << 24};

typedef struct measured {
    int ran;              /* decoded and ran without error */
    int err;              /* else the error code */
    size_t planned, peak; /* the plan, and the arena's peak over gd_run */
} measured;

/* Decode and run body on a fresh arena of `limit` bytes (0: none). */
static measured run_body(const char *body, size_t len, int endpoint, size_t limit) {
    measured m = {0};
    gd_arena *a = gd_arena_new(limit);
    ck_assert_ptr_nonnull(a);
    gd_request req;
    gd_error err;
    gd_run_result res;
    memset(&res, 0, sizeof res);
    int rc = gd_decode_request(a, body, len, NULL, 0, endpoint, &server_limits, &req, &err);
    if (!rc) rc = gd_run(req.graph, &req.spec, &res, &err);
    m.ran = rc == 0;
    m.err = rc ? (int)err.code : 0;
    m.planned = res.planned_bytes;
    m.peak = gd_arena_peak(a); /* the engine restarts the mark: the run and its diagnostics */
    gd_arena_free(a);
    return m;
}

/* plan >= measured always; and not absurdly above it: within `factor` of it
 * plus `slack` bytes (the bookkeeping bound's fixed part). */
static void check_bound(const char *what, const measured *m, double factor, size_t slack, double *worst) {
    ck_assert_msg(m->planned > 0, "%s: no plan (planned_bytes 0)", what);
    ck_assert_msg(m->planned >= m->peak, "%s: the plan (%zu bytes) is below the measured peak (%zu bytes)", what,
                  m->planned, m->peak);
    ck_assert_msg((double)m->planned <= factor * (double)m->peak + (double)slack,
                  "%s: the plan (%zu bytes) is far above the measured peak (%zu bytes)", what, m->planned, m->peak);
    double r = (double)m->planned / (double)m->peak;
    if (getenv("GD_MEMPLAN_VERBOSE")) printf("  %s: plan %zu, peak %zu (%.2f)\n", what, m->planned, m->peak, r);
    if (r > *worst) *worst = r;
}

/* Every /v1/grad and /v1/eval case of the golden corpus with a JSON body
 * that decodes and runs under the server's default limits. */
START_TEST(plan_bounds_golden_corpus) {
    static const char *const files[] = {"contract", "diagnostics", "errors", "readme", "tensors", "metrics"};
    int checked = 0, unbounded = 0;
    double worst = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/golden/%s.json", GD_TEST_DATA, files[f]);
        json_error_t je;
        /* reals for integers: one case holds an integer beyond int64, which
         * jansson cannot load otherwise (integral reals decode as integers) */
        json_t *doc = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
        ck_assert_msg(doc != NULL, "%s: %s", path, je.text);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(doc, "cases"), i, c) {
            const char *p = json_string_value(json_object_get(c, "path"));
            if (!p || json_object_get(c, "server") || json_object_get(c, "headers")) continue;
            int ep = strcmp(p, "/v1/grad") == 0 ? GD_EP_GRAD : strcmp(p, "/v1/eval") == 0 ? GD_EP_EVAL : -1;
            if (ep < 0) continue;
            const json_t *j = json_object_get(c, "json"), *t = json_object_get(c, "text");
            char *body = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : t ? strdup(json_string_value(t)) : NULL;
            if (!body || strstr(body, "\"deadline_ms\"")) { /* made to be stopped by their deadline */
                free(body);
                continue;
            }
            measured m = run_body(body, strlen(body), ep, (size_t)1 << 30);
            free(body);
            if (!m.ran) continue;
            if (!m.planned) { /* a shape deferred behind a cond: no bound, and no early refusal */
                unbounded++;
                continue;
            }
            char what[300];
            snprintf(what, sizeof what, "%s.json case '%s'", files[f], json_string_value(json_object_get(c, "name")));
            check_bound(what, &m, 4.0, 512 * 1024, &worst);
            checked++;
        }
        json_decref(doc);
    }
    printf("memory plan: %d golden requests, plan at most %.2f x the measured peak (%d without a bound)\n", checked,
           worst, unbounded);
    ck_assert_msg(checked >= 80, "only %d golden requests ran", checked);
}
END_TEST

START_TEST(plan_bounds_fixtures) {
    static const char *const names[] = {"mlp", "embedding", "attention", "elementwise_mix"};
    double worst = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/fixture_%s.json", GD_TEST_DATA, names[k]);
        json_error_t je;
        json_t *fx = json_load_file(path, 0, &je);
        ck_assert_msg(fx != NULL, "%s: %s", path, je.text);
        char *body = json_dumps(json_object_get(fx, "request"), JSON_COMPACT);
        measured m = run_body(body, strlen(body), GD_EP_GRAD, 0);
        ck_assert_msg(m.ran, "fixture %s: error %d", names[k], m.err);
        check_bound(names[k], &m, 3.0, 512 * 1024, &worst);
        free(body);
        json_decref(fx);
    }
    printf("memory plan: 4 fixtures, plan at most %.2f x the measured peak\n", worst);
}
END_TEST

/* Graphs whose tensors (megabytes) outweigh the bookkeeping: the plan is
 * close to what the arena really held. */
static const char *const big_graphs[][2] = {
    {"matmul_softmax",
     "{\"graph\":{\"nodes\":[{\"name\":\"a\",\"op\":\"variable\"},"
     "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[300,400]},"
     "{\"name\":\"B\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[400,200]},"
     "{\"name\":\"M\",\"op\":\"matmul\",\"inputs\":[\"A\",\"B\"]},"
     "{\"name\":\"S\",\"op\":\"softmax\",\"inputs\":[\"M\"],\"axis\":0},"
     "{\"name\":\"L\",\"op\":\"sum\",\"inputs\":[\"S\"]}]},\"values\":{\"a\":0.01},\"target\":\"L\"}"},
    {"broadcast_chain",
     "{\"graph\":{\"nodes\":[{\"name\":\"u\",\"op\":\"variable\"},{\"name\":\"v\",\"op\":\"variable\"},"
     "{\"name\":\"U\",\"op\":\"broadcast_to\",\"inputs\":[\"u\"],\"shape\":[1,600]},"
     "{\"name\":\"V\",\"op\":\"broadcast_to\",\"inputs\":[\"v\"],\"shape\":[500,1]},"
     "{\"name\":\"w\",\"op\":\"add\",\"inputs\":[\"U\",\"V\"]},{\"name\":\"e\",\"op\":\"tanh\",\"inputs\":[\"w\"]},"
     "{\"name\":\"m\",\"op\":\"mul\",\"inputs\":[\"e\",\"w\"]},{\"name\":\"r\",\"op\":\"max\",\"inputs\":[\"m\"],\"axis\":1},"
     "{\"name\":\"l\",\"op\":\"logsumexp\",\"inputs\":[\"r\"]}]},"
     "\"values\":{\"u\":0.5,\"v\":-0.25},\"target\":\"l\",\"wrt\":[\"u\",\"v\",\"w\"]}"},
    {"eval_fetch",
     "{\"graph\":{\"nodes\":[{\"name\":\"c\",\"op\":\"input\"},"
     "{\"name\":\"p\",\"op\":\"broadcast_to\",\"inputs\":[\"c\"],\"shape\":[700,700]},"
     "{\"name\":\"q\",\"op\":\"exp\",\"inputs\":[\"p\"]},{\"name\":\"s\",\"op\":\"log_softmax\",\"inputs\":[\"q\"]},"
     "{\"name\":\"i\",\"op\":\"argmax\",\"inputs\":[\"s\"],\"axis\":1},{\"name\":\"t\",\"op\":\"sum\",\"inputs\":[\"s\"]}]},"
     "\"values\":{\"c\":1.5},\"target\":\"t\",\"fetch\":[\"q\",\"i\"]}"},
    {"cross_entropy",
     "{\"graph\":{\"nodes\":[{\"name\":\"z\",\"op\":\"variable\"},{\"name\":\"y\",\"op\":\"input\",\"dtype\":\"int64\"},"
     "{\"name\":\"Z\",\"op\":\"broadcast_to\",\"inputs\":[\"z\"],\"shape\":[4,300000]},"
     "{\"name\":\"l\",\"op\":\"softmax_cross_entropy\",\"inputs\":[\"Z\",\"y\"]}]},"
     "\"values\":{\"z\":[0.5],\"y\":[1,2,3,0]},\"target\":\"l\"}"},
};

START_TEST(plan_bounds_large_tensors) {
    double worst = 0;
    for (size_t k = 0; k < sizeof big_graphs / sizeof big_graphs[0]; k++) {
        const char *body = big_graphs[k][1];
        int ep = strstr(body, "\"fetch\"") ? GD_EP_EVAL : GD_EP_GRAD;
        measured m = run_body(body, strlen(body), ep, 0);
        ck_assert_msg(m.ran, "%s: error %d", big_graphs[k][0], m.err);
        ck_assert_msg(m.peak > 4 * MIB, "%s: only %zu bytes measured: not a large graph", big_graphs[k][0], m.peak);
        check_bound(big_graphs[k][0], &m, 1.5, MIB, &worst);
    }
    printf("memory plan: large tensors, plan at most %.2f x the measured peak\n", worst);
}
END_TEST

/* With conds the plan replays the engine once per combination of their
 * choices: above the measured peak whichever branches run (predicates p and
 * q, 0 and 1 each), and a big branch that is not taken costs nothing. */
static const char *const cond_graphs[][2] = {
    {"cond",
     "{\"graph\":{\"nodes\":[{\"name\":\"p\",\"op\":\"input\"},{\"name\":\"q\",\"op\":\"input\"},"
     "{\"name\":\"a\",\"op\":\"variable\"},"
     "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[400,400]},"
     "{\"name\":\"x\",\"op\":\"exp\",\"inputs\":[\"A\"]},{\"name\":\"y\",\"op\":\"square\",\"inputs\":[\"A\"]},"
     "{\"name\":\"c\",\"op\":\"cond\",\"inputs\":[\"p\",\"x\",\"y\"]},{\"name\":\"l\",\"op\":\"sum\",\"inputs\":[\"c\"]}]},"
     "\"values\":{\"p\":%d,\"q\":%d,\"a\":0.5},\"target\":\"l\"}"},
    /* nested, a branch shared with the predicate's graph, a fetch behind a
     * branch, and a wrt on each side */
    {"nested_cond",
     "{\"graph\":{\"nodes\":[{\"name\":\"p\",\"op\":\"input\"},{\"name\":\"q\",\"op\":\"input\"},"
     "{\"name\":\"a\",\"op\":\"variable\"},{\"name\":\"b\",\"op\":\"variable\"},"
     "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[300,500]},"
     "{\"name\":\"B\",\"op\":\"broadcast_to\",\"inputs\":[\"b\"],\"shape\":[300,500]},"
     "{\"name\":\"M\",\"op\":\"mul\",\"inputs\":[\"A\",\"B\"]},{\"name\":\"T\",\"op\":\"tanh\",\"inputs\":[\"M\"]},"
     "{\"name\":\"E\",\"op\":\"exp\",\"inputs\":[\"B\"]},"
     "{\"name\":\"i\",\"op\":\"cond\",\"inputs\":[\"q\",\"T\",\"E\"]},"
     "{\"name\":\"o\",\"op\":\"cond\",\"inputs\":[\"p\",\"i\",\"A\"]},"
     "{\"name\":\"l\",\"op\":\"sum\",\"inputs\":[\"o\"]}]},"
     "\"values\":{\"p\":%d,\"q\":%d,\"a\":0.5,\"b\":-0.5},\"target\":\"l\",\"wrt\":[\"a\",\"b\"],\"fetch\":[\"T\",\"E\"]}"},
    /* the same with computed predicates: the plan tries every choice */
    {"computed_predicates",
     "{\"graph\":{\"nodes\":[{\"name\":\"p\",\"op\":\"input\"},{\"name\":\"q\",\"op\":\"input\"},"
     "{\"name\":\"h\",\"op\":\"constant\",\"value\":0.5},"
     "{\"name\":\"P\",\"op\":\"greater\",\"inputs\":[\"p\",\"h\"]},"
     "{\"name\":\"Q\",\"op\":\"greater\",\"inputs\":[\"q\",\"h\"]},"
     "{\"name\":\"a\",\"op\":\"variable\"},{\"name\":\"b\",\"op\":\"variable\"},"
     "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[300,500]},"
     "{\"name\":\"B\",\"op\":\"broadcast_to\",\"inputs\":[\"b\"],\"shape\":[300,500]},"
     "{\"name\":\"M\",\"op\":\"mul\",\"inputs\":[\"A\",\"B\"]},{\"name\":\"T\",\"op\":\"tanh\",\"inputs\":[\"M\"]},"
     "{\"name\":\"E\",\"op\":\"exp\",\"inputs\":[\"B\"]},"
     "{\"name\":\"i\",\"op\":\"cond\",\"inputs\":[\"Q\",\"T\",\"E\"]},"
     "{\"name\":\"o\",\"op\":\"cond\",\"inputs\":[\"P\",\"i\",\"A\"]},"
     "{\"name\":\"l\",\"op\":\"sum\",\"inputs\":[\"o\"]}]},"
     "\"values\":{\"p\":%d,\"q\":%d,\"a\":0.5,\"b\":-0.5},\"target\":\"l\",\"wrt\":[\"a\",\"b\"],\"fetch\":[\"T\",\"E\"]}"},
    /* a [64, 400, 400] branch (80 MB) beside a [400, 400] one (1.3 MB) */
    {"big_untaken",
     "{\"graph\":{\"nodes\":[{\"name\":\"p\",\"op\":\"input\"},{\"name\":\"q\",\"op\":\"input\"},"
     "{\"name\":\"a\",\"op\":\"variable\"},"
     "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[400,400]},"
     "{\"name\":\"x\",\"op\":\"exp\",\"inputs\":[\"A\"]},"
     "{\"name\":\"G\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[64,400,400]},"
     "{\"name\":\"H\",\"op\":\"sin\",\"inputs\":[\"G\"]},{\"name\":\"y\",\"op\":\"sum\",\"inputs\":[\"H\"],\"axis\":0},"
     "{\"name\":\"c\",\"op\":\"cond\",\"inputs\":[\"p\",\"x\",\"y\"]},{\"name\":\"l\",\"op\":\"sum\",\"inputs\":[\"c\"]}]},"
     "\"values\":{\"p\":%d,\"q\":%d,\"a\":0.5},\"target\":\"l\"}"},
};

START_TEST(plan_bounds_cond) {
    double worst = 0;
    for (size_t k = 0; k < sizeof cond_graphs / sizeof cond_graphs[0]; k++)
        for (int pq = 0; pq < 4; pq++) {
            char body[4096], what[64];
            snprintf(body, sizeof body, cond_graphs[k][1], pq & 1, pq >> 1);
            snprintf(what, sizeof what, "%s p=%d q=%d", cond_graphs[k][0], pq & 1, pq >> 1);
            measured m = run_body(body, strlen(body), strstr(body, "\"wrt\"") ? GD_EP_GRAD : GD_EP_EVAL, 0);
            ck_assert_msg(m.ran, "%s: error %d", what, m.err);
            check_bound(what, &m, 16.0, MIB, &worst);
        }
    printf("memory plan: conds, plan at most %.2f x the measured peak\n", worst);
}
END_TEST

/* Under 24 MiB the big branch does not fit, the small one does: p = 1 runs
 * (it was 413 when the plan held both branches at once), p = 0 is refused
 * from the plan before any kernel runs. */
START_TEST(plan_cond_untaken_branch_free) {
    char body[4096];
    snprintf(body, sizeof body, cond_graphs[3][1], 1, 0);
    measured m = run_body(body, strlen(body), GD_EP_EVAL, 24 * MIB);
    ck_assert_msg(m.ran, "the small branch under 24 MiB: error %d (plan %zu)", m.err, m.planned);
    printf("memory plan: cond with an 80 MB untaken branch planned %.1f MiB, measured %.1f MiB\n",
           (double)m.planned / MIB, (double)m.peak / MIB);
    snprintf(body, sizeof body, cond_graphs[3][1], 0, 0);
    m = run_body(body, strlen(body), GD_EP_EVAL, 24 * MIB);
    ck_assert_msg(!m.ran && m.err == GD_E_TOO_LARGE, "the big branch under 24 MiB: error %d", m.err);
    ck_assert_msg(m.peak < 4 * MIB, "the arena held %zu bytes: a kernel ran before the refusal", m.peak);
}
END_TEST

/* Row 7 of issue 9: two 4096 x 4096 matmuls under 512 MiB are refused from
 * their plan: no kernel runs (the arena never holds a tensor of them), and
 * at once, not after 25 s of CPU. */
static const char two_matmuls[] =
    "{\"graph\":{\"nodes\":[{\"name\":\"a\",\"op\":\"variable\"},"
    "{\"name\":\"A\",\"op\":\"broadcast_to\",\"inputs\":[\"a\"],\"shape\":[%d,%d]},"
    "{\"name\":\"M\",\"op\":\"matmul\",\"inputs\":[\"A\",\"A\"]},"
    "{\"name\":\"N\",\"op\":\"matmul\",\"inputs\":[\"M\",\"A\"]},"
    "{\"name\":\"L\",\"op\":\"sum\",\"inputs\":[\"N\"]}]},\"values\":{\"a\":0.001},\"target\":\"L\"}";

START_TEST(plan_refuses_before_running) {
    char body[1024];
    snprintf(body, sizeof body, two_matmuls, 4096, 4096);
    double t0 = now_s();
    measured m = run_body(body, strlen(body), GD_EP_GRAD, 512 * MIB);
    double dt = now_s() - t0;
    ck_assert_msg(!m.ran && m.err == GD_E_TOO_LARGE, "expected too_large, got error %d", m.err);
    ck_assert_msg(m.peak < 4 * MIB, "the arena held %zu bytes: a kernel ran before the refusal", m.peak);
    ck_assert_msg(dt < 1.0 * time_scale(), "the refusal took %.3f s", dt); /* 25 s when the kernels ran */
    printf("memory plan: two 4096^2 matmuls under 512 MiB refused in %.1f ms\n", dt * 1e3);
    /* The same at 512 x 512 fits and runs. */
    snprintf(body, sizeof body, two_matmuls, 512, 512);
    m = run_body(body, strlen(body), GD_EP_GRAD, 512 * MIB);
    ck_assert_msg(m.ran, "512 x 512 under 512 MiB: error %d", m.err);
}
END_TEST

/* {"pad":[{},{},...]} of about `bytes` bytes, malloc'd. */
static char *pad_body(size_t bytes, const char *tail) {
    size_t n = bytes / 3, tl = strlen(tail);
    char *b = malloc(n * 3 + tl + 16);
    size_t o = (size_t)sprintf(b, "{\"pad\":[");
    for (size_t i = 0; i < n; i++) memcpy(b + o, i ? ",{}" : "{}", i ? 3 : 2), o += i ? 3 : 2;
    b[o++] = ']';
    memcpy(b + o, tail, tl + 1);
    return b;
}

/* Row 9 of issue 9: the parsed JSON counts against the limit. A 3.9 MB body
 * of empty objects would take about 300 MB as a tree: under 64 MiB it is
 * too_large (not the invalid_request its unknown key would give), the arena
 * never held more than its limit, and nothing stays charged. */
START_TEST(json_parse_counts_against_limit) {
    char *body = pad_body(3900000, "}");
    gd_arena *a = gd_arena_new(64 * MIB);
    gd_request req;
    gd_error err;
    int rc = gd_decode_request(a, body, strlen(body), NULL, 0, GD_EP_GRAD, &server_limits, &req, &err);
    ck_assert_msg(rc == GD_E_TOO_LARGE, "expected too_large, got %s: %s", gd_err_code(err.code), err.message);
    ck_assert_int_eq(err.code, GD_E_TOO_LARGE);
    ck_assert_msg(gd_arena_peak(a) <= 64 * MIB, "peak %zu", gd_arena_peak(a));
    ck_assert_msg(gd_arena_peak(a) > 32 * MIB, "peak %zu: the tree was not counted", gd_arena_peak(a));
    ck_assert_msg(gd_arena_live(a) < MIB, "%zu bytes still charged after the decode", gd_arena_live(a));
    gd_arena_free(a);
    free(body);

    /* 413 takes precedence over an error later in the body (here invalid JSON). */
    body = pad_body(3900000, ", \"graph\": }");
    a = gd_arena_new(64 * MIB);
    rc = gd_decode_request(a, body, strlen(body), NULL, 0, GD_EP_GRAD, &server_limits, &req, &err);
    ck_assert_msg(rc == GD_E_TOO_LARGE, "expected too_large, got %s: %s", gd_err_code(err.code), err.message);
    gd_arena_free(a);
    free(body);

    /* A small one under the same limit is read, and refused for what it says. */
    body = pad_body(30000, "}");
    a = gd_arena_new(64 * MIB);
    rc = gd_decode_request(a, body, strlen(body), NULL, 0, GD_EP_GRAD, &server_limits, &req, &err);
    ck_assert_msg(rc != 0 && err.code != GD_E_TOO_LARGE, "expected another error, got %s", gd_err_code(err.code));
    ck_assert_msg(gd_arena_live(a) < MIB, "%zu bytes still charged after the decode", gd_arena_live(a));
    gd_arena_free(a);
    free(body);
}
END_TEST

/* Row 10 of issue 9: a response buffer counted against an arena's limit
 * fails past it, with over_limit, and gives its bytes back when freed. */
START_TEST(response_buffer_counts_against_limit) {
    gd_arena *a = gd_arena_new(4 * MIB);
    void *held = gd_arena_buf(a, 2 * MIB, 0);
    ck_assert_ptr_nonnull(held);
    size_t before = gd_arena_live(a);
    gd_buf b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_charge_to(&b, a), 0);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    int rc = 0;
    size_t appended = 0;
    while (!rc && appended < 8 * MIB) rc = gd_buf_append(&b, chunk, sizeof chunk), appended += sizeof chunk;
    ck_assert_msg(rc == -1 && b.over_limit, "a 8 MiB response beside 2 MiB of tensors fit a 4 MiB limit");
    ck_assert_msg(b.len <= 2 * MIB, "the buffer grew to %zu bytes", b.len);
    ck_assert(gd_arena_live(a) <= 4 * MIB);
    gd_buf_free(&b);
    ck_assert_uint_eq(gd_arena_live(a), before);
    /* Detached, a buffer is the caller's again and no longer counted. */
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_charge_to(&b, a), 0);
    ck_assert_int_eq(gd_buf_append(&b, chunk, sizeof chunk), 0);
    ck_assert(gd_arena_live(a) > before);
    ck_assert_int_eq(gd_buf_charge_to(&b, NULL), 0);
    ck_assert_uint_eq(gd_arena_live(a), before);
    gd_arena_free(a);
    gd_buf_free(&b);
}
END_TEST

/* A pool for gd_buf: blocks from malloc, counted, each put checked to be
 * one that get gave. */
static int pool_gets, pool_puts;
static void *pool_last;
static void *pool_get(size_t n) {
    pool_gets++;
    return pool_last = malloc(n);
}
static void pool_put(void *p) {
    pool_puts++;
    free(p);
}
static const gd_buf_pool test_pool = {64 << 10, pool_get, pool_put};

/* A buffer that uses a pool keeps small storage in malloc, moves to the
 * pool's blocks from the pool's minimum on (its text intact), and gives
 * them back through the pool, once each. */
START_TEST(buffer_storage_from_pool) {
    pool_gets = pool_puts = 0;
    gd_buf b;
    gd_buf_init(&b);
    gd_buf_use_pool(&b, &test_pool);
    char chunk[1000];
    for (int i = 0; i < (int)sizeof chunk; i++) chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 30; i++) ck_assert_int_eq(gd_buf_append(&b, chunk, sizeof chunk), 0);
    ck_assert_int_eq(pool_gets, 0); /* 30 kB in 32 KiB: malloc's */
    ck_assert(!b.pooled);
    for (int i = 0; i < 230; i++) ck_assert_int_eq(gd_buf_append(&b, chunk, sizeof chunk), 0);
    ck_assert(b.pooled);
    ck_assert_ptr_eq(b.data, pool_last);
    ck_assert_int_eq(pool_puts, pool_gets - 1); /* every block but the last went back as it grew */
    ck_assert_uint_eq(b.len, 260 * sizeof chunk);
    for (int i = 0; i < 260; i++) ck_assert_int_eq(memcmp(b.data + (size_t)i * sizeof chunk, chunk, sizeof chunk), 0);
    ck_assert_int_eq(b.data[b.len], '\0');
    gd_buf_free(&b);
    ck_assert_int_eq(pool_puts, pool_gets);
    ck_assert_ptr_null(b.pool); /* a freed buffer is plain again */
}
END_TEST

/* gd_buf_reserve_soft: room that does not fit the charged arena's limit is
 * refused without failing the buffer or marking the arena (the text may
 * still fit as it is written); room that fits is taken, exactly. */
START_TEST(buffer_soft_reserve) {
    gd_arena *a = gd_arena_new(4 * MIB);
    gd_buf b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_charge_to(&b, a), 0);
    ck_assert_int_eq(gd_buf_append(&b, "{", 1), 0);
    ck_assert_int_eq(gd_buf_reserve_soft(&b, 5 * MIB), -1);
    ck_assert(!b.failed && !b.over_limit && !gd_arena_refused(a));
    ck_assert_int_eq(gd_buf_append(&b, "}", 1), 0);
    ck_assert_int_eq(gd_buf_reserve_soft(&b, 3 * MIB), 0);
    ck_assert_uint_eq(b.cap, 2 + 3 * MIB + 1); /* no doubling past a hint */
    ck_assert_uint_eq(gd_arena_live(a), b.cap);
    ck_assert_str_eq(b.data, "{}");
    gd_buf_free(&b);
    ck_assert_uint_eq(gd_arena_live(a), 0);
    gd_arena_free(a);
}
END_TEST

/* gd_bufcache_take: a cached block that fits (the smallest, within an
 * eighth) or NULL, never a new one. */
START_TEST(bufcache_take_only_cached) {
    gd_bufcache *c = gd_bufcache_new(64 * MIB);
    gd_arena *a = gd_arena_new(0);
    char *p = gd_arena_buf(a, 4 * MIB, 0), *q = gd_arena_buf(a, 2 * MIB, 0);
    ck_assert_ptr_eq(gd_arena_detach(a, p), p);
    ck_assert_ptr_eq(gd_arena_detach(a, q), q);
    gd_arena_free(a);
    memset(p, 1, 4 * MIB);
    gd_bufcache_adopt(c, p);
    gd_bufcache_adopt(c, q);
    ck_assert_ptr_null(gd_bufcache_take(c, 5 * MIB));      /* none big enough */
    ck_assert_ptr_null(gd_bufcache_take(c, 1 * MIB));      /* 2 MiB is more than an eighth over */
    ck_assert_ptr_eq(gd_bufcache_take(c, 3900 * 1024), p); /* the one that fits */
    ck_assert_ptr_null(gd_bufcache_take(c, 3900 * 1024));  /* taken once */
    ck_assert_uint_eq(gd_bufcache_bytes(c) >= 2 * MIB, 1);
    memset(p, 2, 4 * MIB); /* the caller's to write (ASan: not poisoned) */
    gd_arena_block_free(p);
    gd_bufcache_free(c);
}
END_TEST

/* gd_malloc_keep_warm: after a burst of frees the process keeps the pages
 * (glibc's default gives the top of the heap back at once, so the next
 * request faults them in again). Only with glibc's own allocator: a
 * sanitizer's replaces malloc and ignores mallopt. */
START_TEST(malloc_stays_warm) {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc.")) return;
    ck_assert_int_eq(gd_malloc_keep_warm((size_t)64 << 20), 1);
    enum { N = 256, SZ = 64 << 10 };
    static char *blk[N];
    struct mallinfo2 m0 = mallinfo2();
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(SZ);
        ck_assert_ptr_nonnull(blk[i]);
        memset(blk[i], i, SZ); /* touched, as a request's buffers are */
    }
    /* The heap grew by what its free space at the start could not hold
     * (that depends on what ran before: not a fixed figure). */
    size_t peak = mallinfo2().arena;
    ck_assert_uint_ge(peak + m0.fordblks, m0.arena + (size_t)N * SZ);
    for (int i = N - 1; i >= 0; i--) free(blk[i]);
    /* Still held for the next request (default glibc: back near the start). */
    ck_assert_uint_ge(mallinfo2().arena, peak);
    malloc_trim(0); /* what the server does when idle */
    ck_assert_uint_lt(mallinfo2().arena, peak - (size_t)N * SZ / 2);
#endif
}
END_TEST

Suite *suite_memory(void) {
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plan_bounds_golden_corpus);
    tcase_add_test(tc, plan_bounds_fixtures);
    tcase_add_test(tc, plan_bounds_large_tensors);
    tcase_add_test(tc, plan_bounds_cond);
    tcase_add_test(tc, plan_cond_untaken_branch_free);
    tcase_add_test(tc, plan_refuses_before_running);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, json_parse_counts_against_limit);
    tcase_add_test(tc, response_buffer_counts_against_limit);
    tcase_add_test(tc, malloc_stays_warm);
    tcase_add_test(tc, buffer_storage_from_pool);
    tcase_add_test(tc, buffer_soft_reserve);
    tcase_add_test(tc, bufcache_take_only_cached);
    suite_add_tcase(s, tc);
    return s;
}
