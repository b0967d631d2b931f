/* test_fixtures.c - golden gradients computed once by PyTorch.
 *
 * Each tests/data/fixture_<name>.json (written by tests/make_fixtures.py)
 * holds a /v1/grad request and the target value and gradients that PyTorch
 * computed for it in float64. Here the request goes the way the server sends
 * it: proto's decoder (gd_decode_request) builds and checks the graph, the
 * core's gd_run evaluates and differentiates it, and every element of the
 * target and of each gradient is compared with the fixture's relative
 * tolerance, |actual - expected| <= tol * max(1, |expected|). A failure names
 * every gradient that disagrees, with its worst element and how many are off.
 * No HTTP and no response encoding are involved. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/decode.h"
#include "tests.h"

#ifndef GD_TEST_DATA
#error "GD_TEST_DATA must name the tests/data directory (a string literal)"
#endif

/* A fixture may tighten the bar, never loosen it past this. */
#define FIXTURE_MAX_TOL 1e-9

/* ---------------------------------------------------------------------------
 * The failure report: one buffer per test, appended to, asserted empty at the
 * end, so that every disagreement of a fixture is listed, not just the first. */

typedef struct report {
    char text[8192];
    size_t len;
} report;

static void report_add(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_add(report *r, const char *fmt, ...) {
    if (r->len + 1 >= sizeof r->text) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
    va_end(ap);
    if (k > 0) r->len += (size_t)k < sizeof r->text - r->len ? (size_t)k : sizeof r->text - r->len - 1;
}

/* ---------------------------------------------------------------------------
 * Expected tensors: nested JSON lists (or a bare number) to shape + values. */

typedef struct expected_tensor {
    gd_shape shape;
    int64_t n;
    double *v; /* [n], malloc'ed: expected_free */
} expected_tensor;

static void expected_free(expected_tensor *e) {
    free(e->v);
    e->v = NULL;
}

/* Fill e->v from j at nesting `depth`, checking that every list at a depth
 * has the length the shape says (rectangular) and that numbers sit at the
 * deepest level only. Returns 0 or -1. */
static int fill_values(const json_t *j, int depth, expected_tensor *e, int64_t *k) {
    if (depth == e->shape.rank) {
        if (!json_is_number(j)) return -1;
        e->v[(*k)++] = json_number_value(j);
        return 0;
    }
    if (!json_is_array(j) || (int64_t)json_array_size(j) != e->shape.dim[depth]) return -1;
    for (size_t i = 0; i < json_array_size(j); i++)
        if (fill_values(json_array_get(j, i), depth + 1, e, k)) return -1;
    return 0;
}

/* Parse j into *e (shape from the first element at each level). The caller
 * owns e->v (expected_free) on success. Returns 0 or -1. */
static int expected_parse(const json_t *j, expected_tensor *e) {
    memset(e, 0, sizeof *e);
    const json_t *p = j;
    while (json_is_array(p)) {
        if (e->shape.rank == GD_MAX_RANK) return -1;
        e->shape.dim[e->shape.rank++] = (int64_t)json_array_size(p);
        p = json_array_size(p) ? json_array_get(p, 0) : NULL;
    }
    if (p && !json_is_number(p)) return -1;
    e->n = 1;
    for (int d = 0; d < e->shape.rank; d++) e->n *= e->shape.dim[d];
    e->v = malloc((size_t)(e->n ? e->n : 1) * sizeof *e->v);
    if (!e->v) return -1;
    int64_t k = 0;
    if (fill_values(j, 0, e, &k) || k != e->n) {
        expected_free(e);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Comparison. */

/* Compare `got` with `exp` element-wise: |a - e| <= tol * max(1, |e|). The
 * element counts and shapes must match first. Appends one line to r naming
 * `what`, the worst element and the number of elements off; returns the
 * number of elements off (or 1 for a count/shape mismatch). */
static int64_t compare(report *r, const char *what, const gd_tensor *got, const expected_tensor *exp, double tol) {
    char gs[GD_SHAPE_STR_MAX], es[GD_SHAPE_STR_MAX];
    if (got->n != exp->n) {
        report_add(r, "  %s: %lld elements, expected %lld (shape %s, expected %s)\n", what, (long long)got->n,
                   (long long)exp->n, gd_shape_str(&got->shape, gs, sizeof gs),
                   gd_shape_str(&exp->shape, es, sizeof es));
        return 1;
    }
    if (!gd_shape_eq(&got->shape, &exp->shape)) {
        report_add(r, "  %s: shape %s, expected %s\n", what, gd_shape_str(&got->shape, gs, sizeof gs),
                   gd_shape_str(&exp->shape, es, sizeof es));
        return 1;
    }
    if (got->dtype != GD_F64) {
        report_add(r, "  %s: dtype %s, expected float64\n", what, gd_dtype_name(got->dtype));
        return 1;
    }
    const double *a = gd_f64(got);
    int64_t off = 0, worst_i = -1;
    double worst = 0.0;
    for (int64_t i = 0; i < exp->n; i++) {
        double e = exp->v[i];
        double scale = fabs(e) > 1.0 ? fabs(e) : 1.0;
        double rel = fabs(a[i] - e) / scale;
        /* A NaN in the result fails: rel is NaN, and !(NaN <= tol). */
        if (!(rel <= tol)) {
            off++;
            if (worst_i < 0 || !(rel <= worst)) worst = rel, worst_i = i;
        }
    }
    if (off) {
        int64_t idx[GD_MAX_RANK];
        char at[GD_SHAPE_STR_MAX];
        gd_unravel(&got->shape, worst_i, idx);
        gd_shape ix = gd_shape_make(got->shape.rank, idx);
        report_add(r,
                   "  %s %s: %lld of %lld elements beyond tol %g; worst at %s: got %.17g, expected %.17g, "
                   "|diff|/max(1,|expected|) = %.3g\n",
                   what, gd_shape_str(&got->shape, gs, sizeof gs), (long long)off, (long long)exp->n, tol,
                   gd_shape_str(&ix, at, sizeof at), a[worst_i], exp->v[worst_i], worst);
    }
    return off;
}

static int find_name(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------------------
 * One fixture end to end: load, decode the request, run, compare. Fills r
 * with everything that disagrees (empty when the fixture passes). Everything
 * it allocates is released before it returns. */
static void run_fixture(const char *name, report *r) {
    char path[1024];
    snprintf(path, sizeof path, "%s/fixture_%s.json", GD_TEST_DATA, name);
    json_error_t jerr;
    json_t *fx = json_load_file(path, 0, &jerr);
    if (!fx) {
        report_add(r, "%s: cannot load: %s (line %d)\n", path, jerr.text, jerr.line);
        return;
    }
    gd_arena *arena = NULL;
    char *body = NULL;
    const json_t *request = json_object_get(fx, "request");
    const json_t *expected = json_object_get(fx, "expected");
    const json_t *exp_target = json_object_get(expected, "target");
    const json_t *exp_grads = json_object_get(expected, "gradients");
    const json_t *tol_j = json_object_get(fx, "tolerance");
    double tol = json_number_value(tol_j);
    if (!json_is_object(request) || !json_is_object(exp_target) || !json_is_object(exp_grads) ||
        !json_is_number(tol_j)) {
        report_add(r, "%s: not a fixture (request, expected.target, expected.gradients, tolerance)\n", path);
        goto done;
    }
    if (!(tol > 0 && tol <= FIXTURE_MAX_TOL)) {
        report_add(r, "%s: tolerance %g is outside (0, %g]\n", path, tol, FIXTURE_MAX_TOL);
        goto done;
    }

    /* The request as a client would post it. jansson prints doubles with 17
     * significant digits, which read back to the same double. */
    body = json_dumps(request, JSON_COMPACT);
    arena = gd_arena_new(0);
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_nonnull(arena);
    gd_request req;
    gd_error err;
    gd_error_clear(&err);
    if (gd_decode_request(arena, body, strlen(body), NULL, 0, GD_EP_GRAD, NULL, &req, &err)) {
        report_add(r, "%s: decode failed: %s at %s: %s%s%s\n", name, gd_err_code(err.code), err.at, err.message,
                   err.suggestion[0] ? " suggestion: " : "", err.suggestion);
        goto done;
    }
    gd_run_result res;
    memset(&res, 0, sizeof res);
    if (gd_run(req.graph, &req.spec, &res, &err)) {
        report_add(r, "%s: gd_run failed: %s at %s: %s\n", name, gd_err_code(err.code), err.at, err.message);
        goto done;
    }

    /* The response a user would get carries no diagnostics: every wrt is
     * connected, finite and nonzero. */
    for (int i = 0; i < res.n_diags; i++) {
        const gd_diag *d = &res.diags[i];
        int who = d->wrt >= 0 ? d->wrt : d->node;
        report_add(r, "  unexpected diagnostic %s on '%s': %s\n", gd_diag_code_name(d->code),
                   who >= 0 ? req.graph->nodes[who].name : "?", d->message ? d->message : "");
    }

    /* Target value(s). */
    const char *key;
    const json_t *val;
    if ((int)json_object_size(exp_target) != req.spec.n_targets)
        report_add(r, "  %d targets, the fixture expects %d\n", req.spec.n_targets, (int)json_object_size(exp_target));
    json_object_foreach((json_t *)exp_target, key, val) {
        int t = find_name(req.target_names, req.spec.n_targets, key);
        expected_tensor e;
        char what[300];
        snprintf(what, sizeof what, "target '%s'", key);
        if (t < 0 || !res.targets[t]) {
            report_add(r, "  %s: no value\n", what);
            continue;
        }
        if (expected_parse(val, &e)) {
            report_add(r, "  %s: unreadable expected value\n", what);
            continue;
        }
        compare(r, what, res.targets[t], &e, tol);
        expected_free(&e);
    }

    /* Gradients: one per wrt, each compared in full. */
    if ((int)json_object_size(exp_grads) != req.spec.n_wrt)
        report_add(r, "  %d wrt, the fixture expects %d gradients\n", req.spec.n_wrt, (int)json_object_size(exp_grads));
    json_object_foreach((json_t *)exp_grads, key, val) {
        int w = find_name(req.wrt_names, req.spec.n_wrt, key);
        expected_tensor e;
        char what[300];
        snprintf(what, sizeof what, "gradient '%s'", key);
        if (w < 0) {
            report_add(r, "  %s: not among the decoded wrt\n", what);
            continue;
        }
        if (!res.grads[w]) {
            report_add(r, "  %s: null (no gradient)\n", what);
            continue;
        }
        if (expected_parse(val, &e)) {
            report_add(r, "  %s: unreadable expected value\n", what);
            continue;
        }
        compare(r, what, res.grads[w], &e, tol);
        expected_free(&e);
    }

done:
    gd_arena_free(arena);
    free(body);
    json_decref(fx);
}

static void check_fixture(const char *name) {
    report r = {.len = 0};
    r.text[0] = '\0';
    run_fixture(name, &r);
    ck_assert_msg(r.len == 0, "fixture %s disagrees with PyTorch:\n%s", name, r.text);
}

START_TEST(test_fixture_mlp) { check_fixture("mlp"); }
END_TEST

START_TEST(test_fixture_embedding) { check_fixture("embedding"); }
END_TEST

START_TEST(test_fixture_attention) { check_fixture("attention"); }
END_TEST

START_TEST(test_fixture_elementwise_mix) { check_fixture("elementwise_mix"); }
END_TEST

/* The comparison itself must be able to fail: a result one part in 1e8 off
 * one expected element, a wrong element count and a NaN are all caught. */
START_TEST(test_compare_catches_errors) {
    gd_arena *a = gd_arena_new(0);
    const int64_t dims[2] = {2, 2};
    gd_shape s = gd_shape_make(2, dims);
    gd_tensor *t = gd_tensor_new(a, &s, GD_F64, 0);
    double vals[4] = {1.0, -2.5, 1e-12, 300.0};
    expected_tensor e = {.shape = s, .n = 4, .v = vals};
    memcpy(gd_f64(t), vals, sizeof vals);
    report r = {.len = 0};
    ck_assert_int_eq(compare(&r, "same", t, &e, 1e-9), 0);
    gd_f64(t)[3] = 300.0 * (1 + 1e-8);
    ck_assert_int_eq(compare(&r, "off", t, &e, 1e-9), 1);
    ck_assert_ptr_nonnull(strstr(r.text, "worst at [1, 1]"));
    gd_f64(t)[3] = NAN;
    ck_assert_int_eq(compare(&r, "nan", t, &e, 1e-9), 1);
    expected_tensor e3 = {.shape = gd_shape_make(1, (const int64_t[]){3}), .n = 3, .v = vals};
    ck_assert_int_eq(compare(&r, "count", t, &e3, 1e-9), 1);
    ck_assert_ptr_nonnull(strstr(r.text, "4 elements, expected 3"));
    gd_arena_free(a);
}
END_TEST

Suite *suite_fixtures(void) {
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_compare_catches_errors);
    tcase_add_test(tc, test_fixture_mlp);
    tcase_add_test(tc, test_fixture_embedding);
    tcase_add_test(tc, test_fixture_attention);
    tcase_add_test(tc, test_fixture_elementwise_mix);
    suite_add_tcase(s, tc);
    return s;
}
