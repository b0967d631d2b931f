/* test_proto.c - proto/: the request decoder and the response encoder.
 *
 * Decoding: every tensor form (number, nested, flat, b64, binary reference)
 * and dtype (float64, float32 transport, int64) with its values checked;
 * every error a request can cause, with its code, its JSON path ("at") and,
 * for a misspelling, its suggestion; limits refused before memory is spent.
 * Encoding: Python-repr numbers, every tensor_format of a decode -> gd_run ->
 * encode round trip (parsed back with jansson), the contract's example
 * response, the 422 rule, the error body, GET /v1/ops. Last, a fixed-seed
 * mutation loop feeds damaged requests to the decoder: each must give 0 or
 * an error with a message (the sanitizer build checks for crashes and leaks).
 *
 * Requests are written with single quotes, turned into JSON by J(). */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/cancel.h"
#include "proto/canon.h"
#include "proto/decode.h"
#include "proto/encode.h"
#include "proto/explain.h"
#include "proto/jpath.h"
#include "proto/jsonstr.h"
#include "proto/peek.h"
#include "server/reply.h"
#include "core/numfmt.h"
#include "tests.h"

/* ---------------------------------------------------------------------------
 * Helpers. Each test gets a fresh arena (checked fixture); R and E hold the
 * last decode's request and error. */

static gd_arena *A;
static gd_request R;
static gd_error E;

static void setup(void) {
    A = gd_arena_new(0);
    ck_assert_ptr_nonnull(A);
    memset(&R, 0, sizeof R);
    gd_error_clear(&E);
}

static void teardown(void) {
    gd_arena_free(A);
    A = NULL;
}

/* s with every ' turned into " (in the arena). */
static const char *J(const char *s) {
    char *d = gd_arena_strdup(A, s);
    ck_assert_ptr_nonnull(d);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

static int dec_full(const char *sq, const unsigned char *bin, size_t bin_len, int ep, const gd_decode_limits *lim) {
    const char *body = J(sq);
    int rc = gd_decode_request(A, body, strlen(body), bin, bin_len, ep, lim, &R, &E);
    if (rc) ck_assert_msg(E.message[0] != '\0', "error %s without a message", gd_err_code(E.code));
    return rc;
}

static int dec(const char *sq) { return dec_full(sq, NULL, 0, GD_EP_GRAD, NULL); }

/* The decode (or run) failed with `code` at `at` with `sugg` ("" = none). */
#define ck_err(rc, code_, at_, sugg_)                                                                        \
    do {                                                                                                     \
        int rc__ = (rc);                                                                                     \
        ck_assert_msg(rc__ == (int)(code_) && E.code == (code_), "got %d %s (%s at '%s'), want %s", rc__,         \
                      gd_err_code(E.code), E.message, E.at, gd_err_code(code_));                            \
        ck_assert_str_eq(E.at, at_);                                                                         \
        ck_assert_str_eq(E.suggestion, sugg_);                                                               \
        ck_assert(E.message[0] != '\0');                                                                     \
    } while (0)

#define ck_ok(rc) ck_assert_msg((rc) == 0, "unexpected %s at '%s': %s", gd_err_code(E.code), E.at, E.message)

static gd_node *node(const char *name) {
    int k = gd_graph_find(R.graph, name);
    ck_assert_msg(k >= 0, "no node %s", name);
    return &R.graph->nodes[k];
}

/* The request's state of a node: its value, meta and transport. */
static gd_nstate *state(const char *name) {
    return &R.graph->st[node(name)->index];
}

static gd_tensor *val(const char *name) {
    gd_tensor *t = state(name)->value;
    ck_assert_ptr_nonnull(t);
    return t;
}

static void ck_shape(const gd_tensor *t, int rank, const int64_t *dims) {
    ck_assert_int_eq(t->shape.rank, rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(t->shape.dim[i], dims[i]);
}

/* Elements equal, NaN matching NaN and the sign of zero counted. */
static void ck_f64s(const gd_tensor *t, const double *v, int64_t n) {
    ck_assert_int_eq(t->dtype, GD_F64);
    ck_assert_int_eq(t->n, n);
    for (int64_t i = 0; i < n; i++) {
        double a = gd_f64(t)[i];
        ck_assert_msg((isnan(a) && isnan(v[i])) || (a == v[i] && signbit(a) == signbit(v[i])),
                      "element %lld: %.17g, want %.17g", (long long)i, a, v[i]);
    }
}

static void ck_i64s(const gd_tensor *t, const int64_t *v, int64_t n) {
    ck_assert_int_eq(t->dtype, GD_I64);
    ck_assert_int_eq(t->n, n);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(gd_i64(t)[i], v[i]);
}

/* A request with one leaf x (variable plus `decl`, e.g. ",'dtype':'int64'")
 * valued `value`, and target s = sum(x). */
static int dec_leaf(const char *decl, const char *value) {
    char *buf = gd_arena_printf(A,
                                "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'%s},"
                                " {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
                                " 'values': {'x': %s}, 'target': 's'}",
                                decl, value);
    ck_assert_ptr_nonnull(buf);
    return dec(buf);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 (padded) of n bytes, in the arena. */
static char *b64(const void *data, size_t n) {
    const unsigned char *s = data;
    char *o = gd_arena_alloc(A, (n + 2) / 3 * 4 + 1), *p = o;
    ck_assert_ptr_nonnull(o);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *p++ = b64chars[v >> 18];
        *p++ = b64chars[(v >> 12) & 63];
        *p++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *p = '\0';
    return o;
}

/* Base64 text -> bytes (malloc'd; *n set). Test-side decoder of encoder output. */
static unsigned char *unb64(const char *s, size_t *n) {
    size_t len = strlen(s);
    unsigned char *o = malloc(len / 4 * 3 + 3);
    ck_assert_ptr_nonnull(o);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *c = strchr(b64chars, s[i]);
        ck_assert_msg(c && *c, "bad base64 character %c", s[i]);
        acc = acc << 6 | (uint32_t)(c - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *n = k;
    return o;
}

static void le64(unsigned char *dst, const void *src) {
    uint64_t u;
    memcpy(&u, src, 8);
    for (int k = 0; k < 8; k++) dst[k] = (unsigned char)(u >> (8 * k));
}

static void le32(unsigned char *dst, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int k = 0; k < 4; k++) dst[k] = (unsigned char)(u >> (8 * k));
}

/* ---------------------------------------------------------------------------
 * Decoding: tensor forms and dtypes. */

START_TEST(decode_number_and_nested) {
    ck_ok(dec_leaf("", "2.5"));
    ck_shape(val("x"), 0, NULL);
    ck_f64s(val("x"), (double[]){2.5}, 1);
    ck_assert_int_eq(state("x")->transport_f32, 0);

    ck_ok(dec_leaf("", "[[1, 2.0], [3e0, -4]]"));
    ck_shape(val("x"), 2, (int64_t[]){2, 2});
    ck_f64s(val("x"), (double[]){1, 2, 3, -4}, 4);

    ck_ok(dec_leaf("", "[[[1], [2]], [[3], [4]], [[5], [6]]]"));
    ck_shape(val("x"), 3, (int64_t[]){3, 2, 1});
    ck_f64s(val("x"), (double[]){1, 2, 3, 4, 5, 6}, 6);

    /* Empty tensors: shape from the lists, no elements. */
    ck_ok(dec_leaf("", "[]"));
    ck_shape(val("x"), 1, (int64_t[]){0});
    ck_ok(dec_leaf("", "[[], []]"));
    ck_shape(val("x"), 2, (int64_t[]){2, 0});
    ck_assert_int_eq(val("x")->n, 0);
}
END_TEST

START_TEST(decode_non_finite_strings) {
    ck_ok(dec_leaf("", "['NaN', 'Infinity', '-Infinity', -0.0, 1]"));
    ck_f64s(val("x"), (double[]){NAN, INFINITY, -INFINITY, -0.0, 1}, 5);
    ck_ok(dec_leaf("", "'-Infinity'"));
    ck_f64s(val("x"), (double[]){-INFINITY}, 1);
    ck_ok(dec_leaf("", "{'shape': [2], 'data': ['NaN', 2]}"));
    ck_f64s(val("x"), (double[]){NAN, 2}, 2);
    /* Spellings other than the contract's: invalid_value, with the right one. */
    ck_err(dec_leaf("", "[1, 'nan']"), GD_E_INVALID_VALUE, "$.values.x[1]", "NaN");
    ck_err(dec_leaf("", "[1, 2, 'inf']"), GD_E_INVALID_VALUE, "$.values.x[2]", "Infinity");
    ck_err(dec_leaf("", "[[1], ['-inf']]"), GD_E_INVALID_VALUE, "$.values.x[1][0]", "-Infinity");
    ck_err(dec_leaf("", "[1, 'one']"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[1, true]"), GD_E_INVALID_REQUEST, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[1, null]"), GD_E_INVALID_REQUEST, "$.values.x[1]", "");
}
END_TEST

START_TEST(decode_flat) {
    ck_ok(dec_leaf("", "{'shape': [2, 3], 'data': [1, 2, 3, 4, 5, 6]}"));
    ck_shape(val("x"), 2, (int64_t[]){2, 3});
    ck_f64s(val("x"), (double[]){1, 2, 3, 4, 5, 6}, 6);
    ck_ok(dec_leaf("", "{'shape': [], 'data': [7]}"));
    ck_shape(val("x"), 0, NULL);
    ck_f64s(val("x"), (double[]){7}, 1);
    ck_ok(dec_leaf("", "{'shape': [3, 0], 'data': []}"));
    ck_shape(val("x"), 2, (int64_t[]){3, 0});
    ck_ok(dec_leaf("", "{'shape': [3], 'dtype': 'int64', 'data': [1, -2, 3.0]}"));
    ck_i64s(val("x"), (int64_t[]){1, -2, 3}, 3);
    ck_ok(dec_leaf("", "{'shape': [2], 'dtype': 'float32', 'data': [0.1, 'Infinity']}"));
    ck_f64s(val("x"), (double[]){(double)0.1f, INFINITY}, 2);
    ck_assert_int_eq(state("x")->transport_f32, 1);
    /* Beyond float32's range: infinity, as NumPy's astype(float32). */
    ck_ok(dec_leaf("", "{'shape': [2], 'dtype': 'float32', 'data': [1e39, -1e39]}"));
    ck_f64s(val("x"), (double[]){INFINITY, -INFINITY}, 2);

    ck_err(dec_leaf("", "{'shape': [2, 2], 'data': [1, 2, 3]}"), GD_E_INVALID_VALUE, "$.values.x.data", "");
    ck_err(dec_leaf("", "{'shape': [2], 'data': [1, [2]]}"), GD_E_INVALID_REQUEST, "$.values.x.data[1]", "");
    ck_err(dec_leaf("", "{'shape': [2, -1], 'data': [1, 2]}"), GD_E_INVALID_VALUE, "$.values.x.shape[1]", "");
    ck_err(dec_leaf("", "{'shape': 2, 'data': [1, 2]}"), GD_E_INVALID_REQUEST, "$.values.x.shape", "");
    ck_err(dec_leaf("", "{'data': [1, 2]}"), GD_E_INVALID_REQUEST, "$.values.x.shape", "");
    ck_err(dec_leaf("", "{'shape': [1,1,1,1,1,1,1,1,1], 'data': [1]}"), GD_E_INVALID_VALUE, "$.values.x.shape",
           "");
    ck_err(dec_leaf("", "{'shape': [2], 'dtype': 'float16', 'data': [1, 2]}"), GD_E_INVALID_VALUE,
           "$.values.x.dtype", "float64");
    ck_err(dec_leaf("", "{'shape': [2], 'dtype': 'int64', 'data': [1, 2.5]}"), GD_E_INVALID_VALUE,
           "$.values.x.data[1]", "");
    ck_err(dec_leaf("", "{'shape': [2], 'dat': [1, 2]}"), GD_E_UNKNOWN_KEY, "$.values.x.dat", "data");
    ck_err(dec_leaf("", "{'shape': [1], 'data': [1], 'b64': 'AAAAAAAA8D8='}"), GD_E_INVALID_REQUEST, "$.values.x",
           "");
    ck_err(dec_leaf("", "{'shape': [1]}"), GD_E_INVALID_REQUEST, "$.values.x", "");
}
END_TEST

START_TEST(decode_b64) {
    double d[3] = {1.5, -0.0, NAN};
    unsigned char raw[24];
    for (int i = 0; i < 3; i++) le64(raw + 8 * i, &d[i]);
    char *body = gd_arena_printf(A, "{'shape': [3], 'dtype': 'float64', 'b64': '%s'}", b64(raw, 24));
    ck_ok(dec_leaf("", body));
    ck_shape(val("x"), 1, (int64_t[]){3});
    ck_f64s(val("x"), d, 3);

    /* int64 beyond 2^53 is fine in raw bytes. */
    int64_t iv[4] = {INT64_MAX, INT64_MIN, -1, 9007199254740993};
    unsigned char iraw[32];
    for (int i = 0; i < 4; i++) le64(iraw + 8 * i, &iv[i]);
    body = gd_arena_printf(A, "{'shape': [2, 2], 'dtype': 'int64', 'b64': '%s'}", b64(iraw, 32));
    ck_ok(dec_leaf("", body));
    ck_shape(val("x"), 2, (int64_t[]){2, 2});
    ck_i64s(val("x"), iv, 4);

    /* float32: 5 elements = 20 bytes, one '=' of padding; widened exactly. */
    float f[5] = {0.1f, -2.5f, 3.4028235e38f, 1e-45f, -0.0f};
    unsigned char fraw[20];
    for (int i = 0; i < 5; i++) le32(fraw + 4 * i, f[i]);
    char *t = b64(fraw, 20);
    body = gd_arena_printf(A, "{'shape': [5], 'dtype': 'float32', 'b64': '%s'}", t);
    ck_ok(dec_leaf("", body));
    ck_f64s(val("x"), (double[]){0.1f, -2.5f, 3.4028235e38f, 1e-45f, -0.0f}, 5);
    ck_assert_int_eq(state("x")->transport_f32, 1);
    /* Padding is optional. */
    t[strlen(t) - 1] = '\0';
    body = gd_arena_printf(A, "{'shape': [5], 'dtype': 'float32', 'b64': '%s'}", t);
    ck_ok(dec_leaf("", body));
    ck_f64s(val("x"), (double[]){0.1f, -2.5f, 3.4028235e38f, 1e-45f, -0.0f}, 5);

    /* Errors: size disagreeing with shape x dtype, bad alphabet, bad length, no dtype. */
    body = gd_arena_printf(A, "{'shape': [4], 'dtype': 'float64', 'b64': '%s'}", b64(raw, 24));
    ck_err(dec_leaf("", body), GD_E_INVALID_VALUE, "$.values.x.b64", "");
    ck_err(dec_leaf("", "{'shape': [1], 'dtype': 'float64', 'b64': 'AAAA*AAA8D8='}"), GD_E_INVALID_VALUE,
           "$.values.x.b64", "");
    ck_err(dec_leaf("", "{'shape': [1], 'dtype': 'float64', 'b64': 'AAAAAAAAA'}"), GD_E_INVALID_VALUE,
           "$.values.x.b64", "");
    ck_err(dec_leaf("", "{'shape': [1], 'b64': 'AAAAAAAA8D8='}"), GD_E_INVALID_REQUEST, "$.values.x", "");
    ck_err(dec_leaf("", "{'shape': [1], 'dtype': 'float64', 'b64': 5}"), GD_E_INVALID_REQUEST, "$.values.x.b64",
           "");
}
END_TEST

START_TEST(decode_int64) {
    ck_ok(dec_leaf(", 'dtype': 'int64'", "[[1, -2], [3.0, 1e2]]"));
    ck_i64s(val("x"), (int64_t[]){1, -2, 3, 100}, 4);
    ck_ok(dec_leaf(", 'dtype': 'int64'", "[9007199254740992, -9007199254740992, 9007199254740991]"));
    ck_i64s(val("x"), (int64_t[]){9007199254740992LL, -9007199254740992LL, 9007199254740991LL}, 3);
    ck_ok(dec_leaf(", 'dtype': 'int64'", "7"));
    ck_i64s(val("x"), (int64_t[]){7}, 1);
    /* |v| > 2^53: refused, including the one that a double would round to 2^53. */
    ck_err(dec_leaf(", 'dtype': 'int64'", "[1, 9007199254740993]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf(", 'dtype': 'int64'", "[[1], [-9007199254740994]]"), GD_E_INVALID_VALUE, "$.values.x[1][0]",
           "");
    ck_err(dec_leaf(", 'dtype': 'int64'", "[1, 100000000000000000000000]"), GD_E_INVALID_VALUE, "$.values.x[1]",
           "");
    ck_err(dec_leaf(", 'dtype': 'int64'", "[1, 9.007199254740993e15]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf(", 'dtype': 'int64'", "[0.5]"), GD_E_INVALID_VALUE, "$.values.x[0]", "");
    ck_err(dec_leaf(", 'dtype': 'int64'", "['NaN']"), GD_E_INVALID_VALUE, "$.values.x[0]", "");
    /* A huge integer literal is still an ordinary float64 number. */
    ck_ok(dec_leaf("", "[1, 100000000000000000000000]"));
    ck_f64s(val("x"), (double[]){1, 1e23}, 2);
    ck_ok(dec_leaf("", "[9007199254740993]"));
    ck_f64s(val("x"), (double[]){9007199254740992.0}, 1);
}
END_TEST

START_TEST(decode_declared_dtypes) {
    /* An untyped value takes its leaf's declared dtype. */
    ck_ok(dec_leaf(", 'dtype': 'float32'", "[0.1, 0.2]"));
    ck_f64s(val("x"), (double[]){0.1f, 0.2f}, 2);
    ck_assert_int_eq(state("x")->transport_f32, 1);
    ck_ok(dec_leaf(", 'dtype': 'float32'", "0.1"));
    ck_f64s(val("x"), (double[]){0.1f}, 1);
    ck_ok(dec_leaf(", 'dtype': 'float64', 'shape': [2]", "{'shape': [2], 'dtype': 'float64', 'data': [0.1, 2]}"));
    ck_f64s(val("x"), (double[]){0.1, 2}, 2);
    /* An explicit dtype must agree with the declaration. */
    ck_err(dec_leaf(", 'dtype': 'int64'", "{'shape': [1], 'dtype': 'float64', 'data': [1]}"), GD_E_DTYPE_MISMATCH,
           "$.values.x.dtype", "");
    ck_err(dec_leaf(", 'dtype': 'float32'", "{'shape': [1], 'dtype': 'float64', 'data': [1]}"), GD_E_DTYPE_MISMATCH,
           "$.values.x.dtype", "");
    ck_err(dec_leaf(", 'dtype': 'float64'", "{'shape': [1], 'dtype': 'int64', 'data': [1]}"), GD_E_DTYPE_MISMATCH,
           "$.values.x.dtype", "");
    /* A declared shape must match too. */
    ck_err(dec_leaf(", 'shape': [3]", "[1, 2]"), GD_E_SHAPE_MISMATCH, "$.graph.nodes[0]", "");
    ck_ok(dec_leaf(", 'shape': [2]", "[1, 2]"));
    /* Leaf declarations are validated as attributes. */
    ck_err(dec_leaf(", 'dtype': 'flaot64'", "1"), GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[0].dtype", "float64");
    ck_err(dec_leaf(", 'shape': [-1]", "1"), GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[0].shape", "");
    ck_err(dec_leaf(", 'shape': 3", "1"), GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[0].shape", "");
}
END_TEST

START_TEST(decode_ragged) {
    ck_err(dec_leaf("", "[[1, 2], [3]]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[[1, 2], 3]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[1, [2]]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[[[1, 2], [3, 4]], [[5, 6], [7, 8, 9]]]"), GD_E_INVALID_VALUE, "$.values.x[1][1]", "");
    ck_err(dec_leaf("", "[[], [1]]"), GD_E_INVALID_VALUE, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[[1], {'a': 1}]"), GD_E_INVALID_REQUEST, "$.values.x[1]", "");
    ck_err(dec_leaf("", "[[[[[[[[[1]]]]]]]]]"), GD_E_INVALID_VALUE, "$.values.x", "");
    ck_err(dec_leaf("", "true"), GD_E_INVALID_REQUEST, "$.values.x", "");
}
END_TEST

/* Two tensors of a binary-framed request, float64 at 0 and int64 at 64, plus
 * float32 at 128. */
START_TEST(decode_binary) {
    unsigned char bin[192];
    memset(bin, 0xAB, sizeof bin);
    double d[4] = {1, -2.5, INFINITY, 1e-300};
    int64_t iv[2] = {-7, 9007199254740999};
    float f[3] = {0.1f, 0.5f, -3};
    for (int i = 0; i < 4; i++) le64(bin + 8 * i, &d[i]);
    for (int i = 0; i < 2; i++) le64(bin + 64 + 8 * i, &iv[i]);
    for (int i = 0; i < 3; i++) le32(bin + 128 + 4 * i, f[i]);
    const char *req =
        "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'k', 'op': 'input', 'dtype': 'int64'},"
        " {'name': 'h', 'op': 'variable'}, {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
        " 'values': {'x': {'shape': [2, 2], 'dtype': 'float64', 'offset': 0, 'nbytes': 32},"
        "            'k': {'shape': [2], 'dtype': 'int64', 'offset': 64, 'nbytes': 16},"
        "            'h': {'shape': [3], 'dtype': 'float32', 'offset': 128, 'nbytes': 12}},"
        " 'target': 's'}";
    ck_ok(dec_full(req, bin, sizeof bin, GD_EP_GRAD, NULL));
    ck_shape(val("x"), 2, (int64_t[]){2, 2});
    ck_f64s(val("x"), d, 4);
    ck_i64s(val("k"), iv, 2);
    ck_f64s(val("h"), (double[]){0.1f, 0.5f, -3}, 3);
    ck_assert_int_eq(state("h")->transport_f32, 1);
    ck_assert_int_eq(state("x")->transport_f32, 0);

    /* Without a binary section, a reference is a structural error. */
    ck_err(dec_full(req, NULL, 0, GD_EP_GRAD, NULL), GD_E_INVALID_REQUEST, "$.values.x", "");

    /* nbytes disagreeing with shape x element size. */
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}]},"
                    " 'values': {'x': {'shape': [2, 2], 'dtype': 'float32', 'offset': 0, 'nbytes': 32}},"
                    " 'target': 'x'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.x", "");
    /* A range past the end of the binary section. */
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}]},"
                    " 'values': {'x': {'shape': [4], 'dtype': 'float64', 'offset': 168, 'nbytes': 32}},"
                    " 'target': 'x'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.x", "");
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}]},"
                    " 'values': {'x': {'shape': [1], 'dtype': 'float64', 'offset': 18446744073709551615,"
                    " 'nbytes': 8}}, 'target': 'x'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.x.offset", "");
    /* Overlapping ranges: the later reference in request order is named,
     * wherever it sits in the binary section. */
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'y', 'op': 'variable'},"
                    " {'name': 's', 'op': 'add', 'inputs': ['x', 'y']}]},"
                    " 'values': {'x': {'shape': [4], 'dtype': 'float64', 'offset': 8, 'nbytes': 32},"
                    "            'y': {'shape': [2], 'dtype': 'float64', 'offset': 0, 'nbytes': 16}},"
                    " 'target': 's'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.y", "");
    ck_assert_ptr_nonnull(strstr(E.message, "overlaps"));
    /* Touching ranges are fine, and so is a constant's value by reference. */
    ck_ok(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'},"
                   " {'name': 'c', 'op': 'constant', 'value': {'shape': [2], 'dtype': 'float64', 'offset': 16,"
                   " 'nbytes': 16}}, {'name': 's', 'op': 'add', 'inputs': ['x', 'c']}]},"
                   " 'values': {'x': {'shape': [2], 'dtype': 'float64', 'offset': 0, 'nbytes': 16}},"
                   " 'target': 's'}",
                   bin, sizeof bin, GD_EP_GRAD, NULL));
    ck_f64s(val("c"), (double[]){INFINITY, 1e-300}, 2);
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}]},"
                    " 'values': {'x': {'shape': [1], 'dtype': 'float64', 'offset': 0}}, 'target': 'x'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_REQUEST, "$.values.x", "");
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}]},"
                    " 'values': {'x': {'shape': [1], 'dtype': 'float64', 'offset': -8, 'nbytes': 8}},"
                    " 'target': 'x'}",
                    bin, sizeof bin, GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.x.offset", "");
}
END_TEST

START_TEST(decode_request_fields) {
    const char *g = "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'y', 'op': 'variable'},"
                    " {'name': 'p', 'op': 'mul', 'inputs': ['x', 'y']}, {'name': 's', 'op': 'sum', 'inputs': ['p']}]},"
                    " 'values': {'x': [1, 2], 'y': [3, 4]}";
    /* Defaults: wrt = every variable, unconnected none, check_numerics on,
     * nested, no deadline, no fetch. */
    ck_ok(dec(gd_arena_printf(A, "%s, 'target': 's'}", g)));
    ck_assert_int_eq(R.spec.n_targets, 1);
    ck_assert_str_eq(R.target_names[0], "s");
    ck_assert_int_eq(R.spec.targets_is_list, 0);
    ck_assert_int_eq(R.spec.n_wrt, 2);
    ck_assert_str_eq(R.wrt_names[0], "x");
    ck_assert_str_eq(R.wrt_names[1], "y");
    ck_assert_int_eq(R.spec.grad, 1);
    ck_assert_int_eq(R.spec.unconnected_zero, 0);
    ck_assert_int_eq(R.spec.check_numerics, 1);
    ck_assert_int_eq(R.spec.n_fetch, 0);
    ck_assert_int_eq(R.fetch_given, 0);
    ck_assert_int_eq(R.deadline_ms, -1);
    ck_assert_int_eq(R.tensor_format, GD_TF_NESTED);
    ck_assert_ptr_null(R.spec.target_grad[0]);

    ck_ok(dec(gd_arena_printf(A,
                              "%s, 'target': ['p', 's'], 'wrt': ['p', 'y'], 'unconnected': 'zero',"
                              " 'check_numerics': false, 'deadline_ms': 250, 'tensor_format': 'b64',"
                              " 'fetch': ['p'], 'target_grad': {'p': [1, -1]}}",
                              g)));
    ck_assert_int_eq(R.spec.n_targets, 2);
    ck_assert_int_eq(R.spec.targets_is_list, 1);
    ck_assert_str_eq(R.target_names[1], "s");
    ck_assert_int_eq(R.spec.n_wrt, 2);
    ck_assert_str_eq(R.wrt_names[0], "p");
    ck_assert_int_eq(R.spec.unconnected_zero, 1);
    ck_assert_int_eq(R.spec.check_numerics, 0);
    ck_assert_int_eq(R.deadline_ms, 250);
    ck_assert_int_eq(R.tensor_format, GD_TF_B64);
    ck_assert_int_eq(R.fetch_given, 1);
    ck_assert_str_eq(R.fetch_names[0], "p");
    ck_f64s(R.spec.target_grad[0], (double[]){1, -1}, 2);
    ck_assert_ptr_null(R.spec.target_grad[1]);

    ck_ok(dec(gd_arena_printf(A, "%s, 'target': 'p', 'target_grad': {'shape': [2], 'data': [0.5, 2]}}", g)));
    ck_f64s(R.spec.target_grad[0], (double[]){0.5, 2}, 2);

    /* Explicit nulls mean "absent". */
    ck_ok(dec(gd_arena_printf(A, "%s, 'target': 's', 'wrt': null, 'fetch': null, 'tensor_format': null}", g)));
    ck_assert_int_eq(R.spec.n_wrt, 2);

    /* Every field's type and values. */
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'unconnected': 'zeros'}", g)), GD_E_INVALID_VALUE,
           "$.unconnected", "zero");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'tensor_format': 'nestd'}", g)), GD_E_INVALID_VALUE,
           "$.tensor_format", "nested");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'tensor_format': 1}", g)), GD_E_INVALID_REQUEST,
           "$.tensor_format", "");
    /* A7: outside [1, 86400000] is invalid_request (2^53 and 1e13 were taken, or overflowed). */
    static const char *const out_of_range[] = {"0", "-1", "86400001", "9007199254740992", "10000000000000",
                                               "1e300", "-1e300", "0.5", "9223372036854775807",
                                               "100000000000000000000"};
    for (size_t i = 0; i < sizeof out_of_range / sizeof *out_of_range; i++)
        ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'deadline_ms': %s}", g, out_of_range[i])),
               GD_E_INVALID_REQUEST, "$.deadline_ms", "");
    ck_ok(dec(gd_arena_printf(A, "%s, 'target': 's', 'deadline_ms': 86400000}", g)));
    ck_assert_int_eq(R.deadline_ms, 86400000);
    ck_ok(dec(gd_arena_printf(A, "%s, 'target': 's', 'deadline_ms': 1}", g)));
    ck_assert_int_eq(R.deadline_ms, 1);
    /* The peek the server does before queueing (proto/peek.h) finds the
     * top-level field wherever it is, and nothing else. */
    static const struct { const char *body; int found; int64_t ms; } peeks[] = {
        {"{\"deadline_ms\": 250}", 1, 250},
        {" {\"graph\": {\"nodes\": [{\"name\": \"x\", \"deadline_ms\": 5}]}, \"s\": \"a\\\"}\", "
         "\"v\": [1, [2, {\"deadline_ms\": 7}]], \"t\": -1.5e3, \"n\": null ,\n\"deadline_ms\" :\t86400000 }", 1, 86400000},
        {"{\"graph\": {\"deadline_ms\": 5}}", 0, 0},
        {"{\"deadline_ms\": 0}", 0, 0},
        {"{\"deadline_ms\": 86400001}", 0, 0},
        {"{\"deadline_ms\": 1.5}", 0, 0},
        {"{\"deadline_ms\": -3}", 0, 0},
        {"{\"deadline_ms\": 99999999999999999999999}", 0, 0},
        {"{\"deadline_ms\": \"100\"}", 0, 0},
        {"{\"deadline\\u005fms\": 100}", 0, 0},
        {"{\"a\": [1, 2", 0, 0},
        {"[{\"deadline_ms\": 100}]", 0, 0},
        {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof peeks / sizeof *peeks; i++) {
        int64_t ms = -1;
        int found = gd_peek_deadline_ms(peeks[i].body, strlen(peeks[i].body), &ms);
        ck_assert_msg(found == peeks[i].found && (!found || ms == peeks[i].ms), "peek %s: found %d, %lld",
                      peeks[i].body, found, (long long)ms);
    }
    /* Decoding stops when the request's cancel record fires (A7). */
    {
        gd_cancel stop = {.deadline_ns = 1}; /* long past */
        gd_decode_limits dl = {.cancel = &stop};
        ck_err(dec_full(gd_arena_printf(A, "%s, 'target': 's'}", g), NULL, 0, GD_EP_GRAD, &dl),
               GD_E_DEADLINE_EXCEEDED, "", "");
        gd_cancel later = {.deadline_ns = gd_now_ns() + (int64_t)60 * 1000000000};
        dl.cancel = &later;
        ck_ok(dec_full(gd_arena_printf(A, "%s, 'target': 's'}", g), NULL, 0, GD_EP_GRAD, &dl));
    }
    /* Deadline arithmetic saturates instead of overflowing (UBSan, row 8). */
    ck_assert(gd_deadline_after(INT64_MAX - 5, 86400000) == INT64_MAX);
    ck_assert(gd_deadline_after(1000, INT64_MAX) == INT64_MAX);
    ck_assert(gd_deadline_after(1000, 2) == 2001000);
    ck_assert(gd_deadline_after(1000, 0) == 1000);
    ck_assert(gd_deadline_min(0, 5) == 5 && gd_deadline_min(7, 0) == 7 && gd_deadline_min(7, 5) == 5);
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'deadline_ms': 1.5}", g)), GD_E_INVALID_VALUE,
           "$.deadline_ms", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'deadline_ms': '100'}", g)), GD_E_INVALID_REQUEST,
           "$.deadline_ms", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'check_numerics': 1}", g)), GD_E_INVALID_REQUEST,
           "$.check_numerics", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 5}", g)), GD_E_INVALID_REQUEST, "$.target", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': []}", g)), GD_E_INVALID_REQUEST, "$.target", "");
    ck_err(dec(gd_arena_printf(A, "%s}", g)), GD_E_INVALID_REQUEST, "$.target", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': ['s', 's']}", g)), GD_E_INVALID_REQUEST, "$.target[1]", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'wrt': 'x'}", g)), GD_E_INVALID_REQUEST, "$.wrt", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'wrt': ['x', 'x']}", g)), GD_E_INVALID_REQUEST, "$.wrt[1]",
           "");
    /* A1: an explicit empty wrt asks for nothing; /v1/eval is for values. */
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'wrt': []}", g)), GD_E_INVALID_REQUEST, "$.wrt", "");
    ck_assert_ptr_nonnull(strstr(E.message, "/v1/eval"));
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 's', 'fetch': [1]}", g)), GD_E_INVALID_REQUEST, "$.fetch[0]", "");
    /* target_grad: an object for a list of targets, naming targets only,
     * and never int64. */
    ck_err(dec(gd_arena_printf(A, "%s, 'target': ['p'], 'target_grad': [1, 1]}", g)), GD_E_INVALID_REQUEST,
           "$.target_grad", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': ['p', 's'], 'target_grad': {'pp': [1, 1]}}", g)),
           GD_E_UNKNOWN_NODE, "$.target_grad.pp", "p");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': 'p', 'target_grad': {'shape': [2], 'dtype': 'int64', "
                                  "'data': [1, 1]}}", g)),
           GD_E_DTYPE_MISMATCH, "$.target_grad", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'target': ['p'], 'target_grad': {'p': [1, 'x']}}", g)),
           GD_E_INVALID_VALUE, "$.target_grad.p[1]", "");
}
END_TEST

START_TEST(decode_eval_endpoint) {
    const char *g = "{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'e', 'op': 'exp', 'inputs': ['x']}]},"
                    " 'values': {'x': [0, 1]}, 'target': 'e'";
    ck_ok(dec_full(gd_arena_printf(A, "%s}", g), NULL, 0, GD_EP_EVAL, NULL));
    ck_assert_int_eq(R.endpoint, GD_EP_EVAL);
    ck_assert_int_eq(R.spec.grad, 0);
    ck_assert_int_eq(R.spec.n_wrt, 0);
    ck_assert_int_eq(R.fetch_given, 1); /* fetch defaults to the targets */
    ck_assert_int_eq(R.spec.n_fetch, 1);
    ck_assert_str_eq(R.fetch_names[0], "e");
    ck_ok(dec_full(gd_arena_printf(A, "%s, 'fetch': ['x', 'e'], 'tensor_format': 'flat', 'deadline_ms': 9}", g),
                   NULL, 0, GD_EP_EVAL, NULL));
    ck_assert_int_eq(R.spec.n_fetch, 2);
    ck_assert_int_eq(R.deadline_ms, 9);
    /* The gradient keys are not part of /v1/eval. */
    ck_err(dec_full(gd_arena_printf(A, "%s, 'wrt': ['x']}", g), NULL, 0, GD_EP_EVAL, NULL), GD_E_UNKNOWN_KEY,
           "$.wrt", "");
    ck_err(dec_full(gd_arena_printf(A, "%s, 'target_grad': 1}", g), NULL, 0, GD_EP_EVAL, NULL), GD_E_UNKNOWN_KEY,
           "$.target_grad", "");
    ck_err(dec_full(gd_arena_printf(A, "%s, 'unconnected': 'zero'}", g), NULL, 0, GD_EP_EVAL, NULL),
           GD_E_UNKNOWN_KEY, "$.unconnected", "");
    ck_err(dec_full(gd_arena_printf(A, "%s, 'fecth': ['x']}", g), NULL, 0, GD_EP_EVAL, NULL), GD_E_UNKNOWN_KEY,
           "$.fecth", "fetch");
}
END_TEST

/* ---------------------------------------------------------------------------
 * Decoding: the error catalogue, each with its code, path and suggestion. */

static const char *two_nodes(const char *second) {
    return gd_arena_printf(A, "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, %s]}, 'values': {'x': [1, 2]},"
                              " 'target': 's'}",
                           second);
}

START_TEST(decode_errors_json_and_structure) {
    ck_err(dec("{'graph': "), GD_E_INVALID_JSON, "", "");
    ck_err(dec(""), GD_E_INVALID_JSON, "", "");
    ck_err(dec("{'a': 1} x"), GD_E_INVALID_JSON, "", "");
    ck_err(dec("{'a': 1e400}"), GD_E_INVALID_JSON, "", "");
    ck_err(dec("[1, 2]"), GD_E_INVALID_REQUEST, "$", "");
    ck_err(dec("{'target': 's'}"), GD_E_INVALID_REQUEST, "$.graph", "");
    ck_err(dec("{'graph': [], 'target': 's'}"), GD_E_INVALID_REQUEST, "$.graph", "");
    ck_err(dec("{'graph': {}, 'target': 's'}"), GD_E_INVALID_REQUEST, "$.graph.nodes", "");
    ck_err(dec("{'graph': {'nodes': {}}, 'target': 's'}"), GD_E_INVALID_REQUEST, "$.graph.nodes", "");
    ck_err(dec("{'graph': {'nodes': [1]}, 'target': 's'}"), GD_E_INVALID_REQUEST, "$.graph.nodes[0]", "");
    ck_err(dec(two_nodes("{'op': 'sum', 'inputs': ['x']}")), GD_E_INVALID_REQUEST, "$.graph.nodes[1].name", "");
    ck_err(dec(two_nodes("{'name': 's', 'inputs': ['x']}")), GD_E_INVALID_REQUEST, "$.graph.nodes[1].op", "");
    ck_err(dec(two_nodes("{'name': 3, 'op': 'sum', 'inputs': ['x']}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].name", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': 'x'}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].inputs", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'add', 'inputs': ['x', 2]}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].inputs[1]", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x', 'x']}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].inputs", "");
    ck_err(dec(two_nodes("{'name': 'has space', 'op': 'sum', 'inputs': ['x']}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].name", "");
    ck_err(dec(two_nodes("{'name': '', 'op': 'sum', 'inputs': ['x']}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].name", "");
    /* Duplicate keys anywhere: the path names the repeated key. */
    ck_err(dec("{'graph': {'nodes': []}, 'values': {'x': 1, 'x': 2}, 'target': 's'}"), GD_E_INVALID_REQUEST,
           "$.values.x", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'op': 'mean'}")), GD_E_INVALID_REQUEST,
           "$.graph.nodes[1].op", "");
    ck_err(dec("{'target': 's', 'target': 't'}"), GD_E_INVALID_REQUEST, "$.target", "");
    ck_err(dec("{'graph': {'nodes': [{'name': 'x', 'op': 'sum', 'a\\\"b': 1, 'a\\\"b': 2}]}}"),
           GD_E_INVALID_REQUEST, "$.graph.nodes[0][\"a\\\"b\"]", "");
}
END_TEST

START_TEST(decode_errors_names) {
    /* unknown_key: request, graph, node, tensor object; with suggestions. */
    ck_err(dec("{'graph': {'nodes': []}, 'valuse': {}, 'target': 's'}"), GD_E_UNKNOWN_KEY, "$.valuse", "values");
    ck_err(dec("{'graph': {'nodes': []}, 'zzzzzz': {}, 'target': 's'}"), GD_E_UNKNOWN_KEY, "$.zzzzzz", "");
    ck_err(dec("{'graph': {'node': []}, 'target': 's'}"), GD_E_UNKNOWN_KEY, "$.graph.node", "nodes");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axsi': 0}")), GD_E_UNKNOWN_KEY,
           "$.graph.nodes[1].axsi", "axis");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'keep_dims': true}")), GD_E_UNKNOWN_KEY,
           "$.graph.nodes[1].keep_dims", "keepdims");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'input': ['x']}")), GD_E_UNKNOWN_KEY,
           "$.graph.nodes[1].input", "inputs");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'variable', 'value': 1}")), GD_E_UNKNOWN_KEY, "$.graph.nodes[1].value",
           "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'a.b': 1}")), GD_E_UNKNOWN_KEY,
           "$.graph.nodes[1][\"a.b\"]", "");
    /* unknown_op. */
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sofmax', 'inputs': ['x']}")), GD_E_UNKNOWN_OP, "$.graph.nodes[1].op",
           "softmax");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'frobnicate', 'inputs': ['x']}")), GD_E_UNKNOWN_OP,
           "$.graph.nodes[1].op", "");
    /* unknown_node: an input, the target, wrt, fetch, a values key. */
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['xx']}")), GD_E_UNKNOWN_NODE,
           "$.graph.nodes[1].inputs[0]", "x");
    const char *g = "{'graph': {'nodes': [{'name': 'weight', 'op': 'variable'}, {'name': 'data', 'op': 'input'},"
                    " {'name': 'c', 'op': 'constant', 'value': 2},"
                    " {'name': 'prod', 'op': 'mul', 'inputs': ['weight', 'data']},"
                    " {'name': 'loss', 'op': 'sum', 'inputs': ['prod']}]}";
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'data': 2}, 'target': 'los'}", g)), GD_E_UNKNOWN_NODE,
           "$.target", "loss");
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'data': 2}, 'target': ['loss', 'prd']}", g)),
           GD_E_UNKNOWN_NODE, "$.target[1]", "prod");
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'data': 2}, 'target': 'loss', 'wrt': ['wieght']}",
                               g)),
           GD_E_UNKNOWN_NODE, "$.wrt[0]", "weight");
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'data': 2}, 'target': 'loss', 'fetch': ['prod',"
                                  " 'nothing_like_it']}", g)),
           GD_E_UNKNOWN_NODE, "$.fetch[1]", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weigth': 1, 'data': 2}, 'target': 'loss'}", g)),
           GD_E_UNKNOWN_NODE, "$.values.weigth", "weight");
    /* A values key that names a node, but no variable or input. */
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'c': 2}, 'target': 'loss'}", g)), GD_E_UNKNOWN_NODE,
           "$.values.c", "");
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'weight': 1, 'prod': 2}, 'target': 'loss'}", g)),
           GD_E_UNKNOWN_NODE, "$.values.prod", "");
    ck_assert_ptr_nonnull(strstr(E.message, "mul"));
    /* A key with characters that need quoting in a path. */
    ck_err(dec(gd_arena_printf(A, "%s, 'values': {'we ig\\\"ht': 1}, 'target': 'loss'}", g)), GD_E_UNKNOWN_NODE,
           "$.values[\"we ig\\\"ht\"]", "weight");
    /* duplicate_node. */
    ck_err(dec(two_nodes("{'name': 'x', 'op': 'sum', 'inputs': ['x']}")), GD_E_DUPLICATE_NODE,
           "$.graph.nodes[1].name", "");
    ck_assert_ptr_nonnull(strstr(E.message, "'x'"));
}
END_TEST

START_TEST(decode_errors_graph) {
    /* cycle: names the loop's nodes. */
    ck_err(dec("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'a', 'op': 'add', 'inputs': ['x', 'b']},"
               " {'name': 'b', 'op': 'exp', 'inputs': ['a']}, {'name': 's', 'op': 'sum', 'inputs': ['b']}]},"
               " 'values': {'x': 1}, 'target': 's'}"),
           GD_E_CYCLE, E.at, "");
    ck_assert_int_eq(strncmp(E.at, "$.graph.nodes[", 14), 0);
    ck_assert_ptr_nonnull(strstr(E.message, "'a'"));
    ck_assert_ptr_nonnull(strstr(E.message, "'b'"));
    /* shape_mismatch between inputs. */
    ck_err(dec("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'y', 'op': 'variable'},"
               " {'name': 'a', 'op': 'add', 'inputs': ['x', 'y']}]},"
               " 'values': {'x': [1, 2], 'y': [1, 2, 3]}, 'target': 'a'}"),
           GD_E_SHAPE_MISMATCH, "$.graph.nodes[2].inputs", "");
    /* invalid_attribute: wrong type, float32 for a cast, misspelt dtype. */
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': 'a'}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].axis", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': 0.5}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].axis", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'keepdims': 1}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].keepdims", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'cast', 'inputs': ['x'], 'dtype': 'float32'}")),
           GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].dtype", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'cast', 'inputs': ['x'], 'dtype': 'int46'}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].dtype", "int64");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'leaky_relu', 'inputs': ['x'], 'alpha': 'big'}")),
           GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].alpha", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'reshape', 'inputs': ['x']}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].shape", "");
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': 3}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].axis", "");
    /* Attribute values accepted: an axis as an int or a list, NaN bounds. */
    ck_ok(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': [0], 'keepdims': true}")));
    ck_assert_int_eq(node("s")->attrs->axis.is_list, 1);
    ck_assert_int_eq(node("s")->attrs->keepdims.v, 1);
    ck_ok(dec(two_nodes("{'name': 's', 'op': 'clip', 'inputs': ['x'], 'min': '-Infinity', 'max': 2}")));
    ck_assert(isinf(node("s")->attrs->min.v) && node("s")->attrs->min.v < 0);
    ck_assert_double_eq(node("s")->attrs->max.v, 2);
    /* missing_value: a constant without "value" (decode) ... */
    ck_err(dec(two_nodes("{'name': 's', 'op': 'constant'}")), GD_E_MISSING_VALUE, "$.graph.nodes[1]", "");
}
END_TEST

/* Errors the core raises while running a decoded request. */
static int dec_run(const char *sq, gd_run_result *res) {
    int rc = dec(sq);
    if (rc) return rc;
    memset(res, 0, sizeof *res);
    return gd_run(R.graph, &R.spec, res, &E);
}

START_TEST(decode_then_run_errors) {
    gd_run_result res;
    /* missing_value: a variable the target needs has no value. */
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
                   " 'target': 's'}", &res),
           GD_E_MISSING_VALUE, "$.values", "");
    ck_assert_ptr_nonnull(strstr(E.message, "'x'"));
    /* target_not_scalar. */
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'e', 'op': 'exp', 'inputs': ['x']}]},"
                   " 'values': {'x': [1, 2]}, 'target': 'e'}", &res),
           GD_E_TARGET_NOT_SCALAR, "$.target", "");
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'e', 'op': 'exp', 'inputs': ['x']},"
                   " {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
                   " 'values': {'x': [1, 2]}, 'target': ['s', 'e']}", &res),
           GD_E_TARGET_NOT_SCALAR, "$.target[1]", "");
    /* ... and a cotangent makes it fine, unless its shape is wrong. */
    ck_ok(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'e', 'op': 'exp', 'inputs': ['x']}]},"
                  " 'values': {'x': [0, 0]}, 'target': 'e', 'target_grad': [2, 3]}", &res));
    ck_f64s(res.grads[0], (double[]){2, 3}, 2);
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'e', 'op': 'exp', 'inputs': ['x']}]},"
                   " 'values': {'x': [0, 0]}, 'target': 'e', 'target_grad': [2, 3, 4]}", &res),
           GD_E_SHAPE_MISMATCH, "$.target_grad", "");
    /* index_out_of_range: gather with an index past the axis. */
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'p', 'op': 'variable'}, {'name': 'i', 'op': 'input', 'dtype': 'int64'},"
                   " {'name': 'g', 'op': 'gather', 'inputs': ['p', 'i']}, {'name': 's', 'op': 'sum', 'inputs': ['g']}]},"
                   " 'values': {'p': [1, 2, 3], 'i': [0, -3, 3]}, 'target': 's'}", &res),
           GD_E_INDEX_OUT_OF_RANGE, "$.graph.nodes[2].inputs[1]", "");
    /* invalid_value at run time: cast of NaN to int64. */
    ck_err(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'c', 'op': 'cast', 'inputs': ['x'],"
                   " 'dtype': 'int64'}, {'name': 'f', 'op': 'cast', 'inputs': ['c'], 'dtype': 'float64'},"
                   " {'name': 's', 'op': 'sum', 'inputs': ['f']}]},"
                   " 'values': {'x': [1, 'NaN']}, 'target': 's', 'wrt': ['x']}", &res),
           GD_E_INVALID_VALUE, E.at, "");
}
END_TEST

/* too_large: nodes, elements (nested, flat, b64, binary), inferred shapes;
 * refused before memory is spent. */
START_TEST(decode_limits) {
    gd_decode_limits lim = {.max_nodes = 3, .max_elements = 4};
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'a', 'op': 'variable'}, {'name': 'b', 'op': 'variable'},"
                    " {'name': 'c', 'op': 'variable'}, {'name': 'd', 'op': 'variable'}]}, 'target': 'a'}",
                    NULL, 0, GD_EP_GRAD, &lim),
           GD_E_TOO_LARGE, "$.graph.nodes", "");
    ck_ok(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
                   " 'values': {'x': [[1, 2], [3, 4]]}, 'target': 's'}",
                   NULL, 0, GD_EP_GRAD, &lim));
    const char *fmt = "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 's', 'op': 'sum', 'inputs': ['x']}]},"
                      " 'values': {'x': %s}, 'target': 's'}";
    ck_err(dec_full(gd_arena_printf(A, fmt, "[[1, 2], [3, 4], [5, 6]]"), NULL, 0, GD_EP_GRAD, &lim), GD_E_TOO_LARGE,
           "$.values.x", "");
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [5], 'data': [1, 2, 3, 4, 5]}"), NULL, 0, GD_EP_GRAD, &lim),
           GD_E_TOO_LARGE, "$.values.x", "");
    /* Issue 9 row 13: inputs per node and over the graph are capped (a
     * concat of 10^6 inputs took 6 s and 420 MB). */
    gd_decode_limits elim = {.max_inputs = 3, .max_edges = 5};
    const char *cat = "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, %s]}, 'target': 'x'}";
    ck_err(dec_full(gd_arena_printf(A, cat, "{'name': 'c', 'op': 'concat', 'inputs': ['x', 'x', 'x', 'x']}"), NULL, 0,
                    GD_EP_GRAD, &elim),
           GD_E_TOO_LARGE, "$.graph.nodes[1].inputs", "");
    ck_err(dec_full(gd_arena_printf(A, cat, "{'name': 'c', 'op': 'concat', 'inputs': ['x', 'x', 'x']},"
                                            " {'name': 'd', 'op': 'concat', 'inputs': ['x', 'c', 'x']}"),
                    NULL, 0, GD_EP_GRAD, &elim),
           GD_E_TOO_LARGE, "$.graph.nodes[2].inputs", "");
    ck_ok(dec_full(gd_arena_printf(A, cat, "{'name': 'c', 'op': 'concat', 'inputs': ['x', 'x', 'x']},"
                                           " {'name': 'd', 'op': 'concat', 'inputs': ['x', 'c']}"),
                   NULL, 0, GD_EP_GRAD, &elim));
    /* An empty tensor whose other dimensions are huge is refused too. */
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [1000000000, 0], 'data': []}"), NULL, 0, GD_EP_GRAD, &lim),
           GD_E_TOO_LARGE, "$.values.x", "");
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [4294967296, 4294967296, 4294967296], 'data': []}"), NULL, 0,
                    GD_EP_GRAD, NULL),
           GD_E_TOO_LARGE, "$.values.x", "");
    /* b64: the shape is judged before the text is decoded. */
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [100], 'dtype': 'float64', 'b64': 'AAAA'}"), NULL, 0,
                    GD_EP_GRAD, &lim),
           GD_E_TOO_LARGE, "$.values.x", "");
    /* A binary reference: the shape is judged before nbytes and the range. */
    unsigned char bin[64] = {0};
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [100], 'dtype': 'float64', 'offset': 0, 'nbytes': 800}"), bin,
                    sizeof bin, GD_EP_GRAD, &lim),
           GD_E_TOO_LARGE, "$.values.x", "");
    /* Without an element limit a b64 text whose length disagrees with a huge
     * shape is refused before the huge buffer is allocated. */
    ck_err(dec_full(gd_arena_printf(A, fmt, "{'shape': [100000000], 'dtype': 'float64', 'b64': 'AAAA'}"), NULL, 0,
                    GD_EP_GRAD, NULL),
           GD_E_INVALID_VALUE, "$.values.x.b64", "");
    ck_assert_uint_lt(gd_arena_peak(A), 1u << 20);
    /* Inferred sizes: broadcast_to and one_hot over the limit. */
    gd_decode_limits lim2 = {.max_elements = 1000};
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'variable'},"
                    " {'name': 'b', 'op': 'broadcast_to', 'inputs': ['x'], 'shape': [1000, 1000]},"
                    " {'name': 's', 'op': 'sum', 'inputs': ['b']}]}, 'values': {'x': 1}, 'target': 's'}",
                    NULL, 0, GD_EP_GRAD, &lim2),
           GD_E_TOO_LARGE, "$.graph.nodes[1]", "");
    ck_err(dec_full("{'graph': {'nodes': [{'name': 'i', 'op': 'input', 'dtype': 'int64'},"
                    " {'name': 'o', 'op': 'one_hot', 'inputs': ['i'], 'depth': 100},"
                    " {'name': 's', 'op': 'sum', 'inputs': ['o']}]}, 'values': {'i': [1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
                    " 11]}, 'target': 's'}",
                    NULL, 0, GD_EP_GRAD, &lim2),
           GD_E_TOO_LARGE, "$.graph.nodes[1]", "");
    ck_assert_uint_lt(gd_arena_peak(A), 1u << 20);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Encoding: numbers. */

static void ck_fmt_d(double v, const char *want) {
    char buf[32];
    int n = gd_fmt_double(buf, v);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(n, (int)strlen(want));
    if (isfinite(v)) ck_assert_msg(strtod(buf, NULL) == v, "%s does not read back", buf);
}

static void ck_fmt_f(float v, const char *want) {
    char buf[32];
    int n = gd_fmt_float(buf, v);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(n, (int)strlen(want));
    if (isfinite(v)) ck_assert_msg(strtof(buf, NULL) == v, "%s does not read back", buf);
}

START_TEST(encode_fmt_double) {
    ck_fmt_d(2.0, "2.0");
    ck_fmt_d(0.1, "0.1");
    ck_fmt_d(1e-05, "1e-05");
    ck_fmt_d(0.0001, "0.0001");
    ck_fmt_d(1e16, "1e+16");
    ck_fmt_d(1e15, "1000000000000000.0");
    ck_fmt_d(123456789012345678.0, "1.2345678901234568e+17");
    ck_fmt_d(-0.0, "-0.0");
    ck_fmt_d(0.0, "0.0");
    ck_fmt_d(5e-324, "5e-324");
    ck_fmt_d(1e-323, "1e-323");
    ck_fmt_d(2.2250738585072014e-308, "2.2250738585072014e-308");
    ck_fmt_d(1.7976931348623157e+308, "1.7976931348623157e+308");
    ck_fmt_d(0.1 + 0.2, "0.30000000000000004");
    ck_fmt_d(1.0 / 3, "0.3333333333333333");
    ck_fmt_d(-1.5, "-1.5");
    ck_fmt_d(12.5, "12.5");
    ck_fmt_d(100.0, "100.0");
    ck_fmt_d(123456.789, "123456.789");
    ck_fmt_d(9007199254740993.0, "9007199254740992.0");
    ck_fmt_d(1.5e300, "1.5e+300");
    ck_fmt_d(-2.5e-7, "-2.5e-07");
    ck_fmt_d(NAN, "NaN");
    ck_fmt_d(INFINITY, "Infinity");
    ck_fmt_d(-INFINITY, "-Infinity");
    /* Round trip of many doubles, and never more than 17 digits. */
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double v;
        memcpy(&v, &s, 8);
        if (!isfinite(v)) continue;
        char buf[32];
        gd_fmt_double(buf, v);
        ck_assert_msg(strtod(buf, NULL) == v, "%s does not read back to %a", buf, v);
        ck_assert_msg(strchr(buf, '.') || strchr(buf, 'e'), "%s lacks a '.' or an exponent", buf);
    }
}
END_TEST

START_TEST(encode_fmt_float) {
    ck_fmt_f(0.1f, "0.1");
    ck_fmt_f(2.0f, "2.0");
    ck_fmt_f(1.0f / 3, "0.33333334");
    ck_fmt_f(16777216.0f, "16777216.0");
    ck_fmt_f(1e20f, "1e+20");
    ck_fmt_f(3.4028235e38f, "3.4028235e+38");
    ck_fmt_f(1e-45f, "1e-45");
    ck_fmt_f(1.17549435e-38f, "1.1754944e-38");
    ck_fmt_f(-0.0f, "-0.0");
    ck_fmt_f(4.1f, "4.1");
    ck_fmt_f(1e-5f, "1e-05");
    ck_fmt_f(NAN, "NaN");
    ck_fmt_f(-INFINITY, "-Infinity");
    uint32_t s = 2463534242u;
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        float v;
        memcpy(&v, &s, 4);
        if (!isfinite(v)) continue;
        char buf[32];
        gd_fmt_float(buf, v);
        ck_assert_msg(strtof(buf, NULL) == v, "%s does not read back to %a", buf, (double)v);
    }
}
END_TEST

START_TEST(encode_json_string) {
    gd_buf b;
    gd_buf_init(&b);
    gd_buf_json_string(&b, "a\"b\\c\n\t\x01 \xc3\xa9 \xe2\x82");
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9 \\ufffd\\ufffd\"");
    json_error_t je;
    json_t *j = json_loads(b.data, JSON_DECODE_ANY, &je);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    gd_buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Encoding: every tensor_format of a full round trip. */

/* x float64 [2,3], h float32 [3], k int64 [2]; loss = sum(x * h); fetches an
 * int64 argmax, the int64 input, infinities and a NaN. */
static const char *roundtrip_req =
    "{'graph': {'nodes': ["
    " {'name': 'x', 'op': 'variable', 'shape': [2, 3]},"
    " {'name': 'h', 'op': 'variable', 'dtype': 'float32'},"
    " {'name': 'k', 'op': 'input', 'dtype': 'int64'},"
    " {'name': 'z', 'op': 'constant', 'value': [0.0, -0.0, 2.0]},"
    " {'name': 'm1', 'op': 'constant', 'value': -1},"
    " {'name': 'y', 'op': 'mul', 'inputs': ['x', 'h']},"
    " {'name': 'loss', 'op': 'sum', 'inputs': ['y']},"
    " {'name': 'am', 'op': 'argmax', 'inputs': ['x'], 'axis': 1},"
    " {'name': 'r', 'op': 'reciprocal', 'inputs': ['z']},"
    " {'name': 'n', 'op': 'sqrt', 'inputs': ['m1']}]},"
    " 'values': {'x': [[0.1, -2, 3], [4, 5, -6]], 'h': [0.1, 0.2, 0.3], 'k': [2, 0]},"
    " 'target': 'loss', 'fetch': ['am', 'k', 'r', 'n'], 'tensor_format': '%s'}";

/* Expected: name, dtype on the wire, shape, values. */
typedef struct xt {
    const char *name, *dtype;
    int rank;
    int64_t dims[2];
    double v[6];
} xt;

/* The element `k` of an encoded tensor j (any format) as a double; NaN and
 * infinities from their strings. */
static double wire_num(const json_t *e) {
    if (json_is_number(e)) return json_number_value(e);
    ck_assert_msg(json_is_string(e), "element is neither a number nor a string");
    const char *s = json_string_value(e);
    if (!strcmp(s, "NaN")) return NAN;
    if (!strcmp(s, "Infinity")) return INFINITY;
    ck_assert_str_eq(s, "-Infinity");
    return -INFINITY;
}

static void ck_same(double got, double want, const char *what, int k) {
    if (strcmp(what, "h") == 0) got = (float)got, want = (float)want; /* float32 on the wire */
    ck_assert_msg((isnan(got) && isnan(want)) || (got == want && signbit(got) == signbit(want)),
                  "%s[%d]: %.17g, want %.17g", what, k, got, want);
}

/* Check the wire tensor j against x in format f (bin: the binary section). */
static void ck_wire(const json_t *j, gd_tensor_format f, const gd_buf *bin, const xt *x) {
    int64_t n = 1;
    for (int i = 0; i < x->rank; i++) n *= x->dims[i];
    int is_f32 = !strcmp(x->dtype, "float32"), is_i64 = !strcmp(x->dtype, "int64");
    if (f == GD_TF_NESTED) {
        /* walk nested lists row-major (rank <= 2 here) */
        const json_t *row;
        if (x->rank == 0) {
            ck_same(wire_num(j), x->v[0], x->name, 0);
            if (is_i64) ck_assert(json_is_integer(j));
            return;
        }
        ck_assert_int_eq(json_array_size(j), x->dims[0]);
        int k = 0;
        for (int64_t a = 0; a < x->dims[0]; a++) {
            if (x->rank == 1) {
                const json_t *e = json_array_get(j, (size_t)a);
                if (is_i64) ck_assert(json_is_integer(e));
                ck_same(wire_num(e), x->v[k], x->name, k);
                k++;
                continue;
            }
            row = json_array_get(j, (size_t)a);
            ck_assert_int_eq(json_array_size(row), x->dims[1]);
            for (int64_t b = 0; b < x->dims[1]; b++) {
                ck_same(wire_num(json_array_get(row, (size_t)b)), x->v[k], x->name, k);
                k++;
            }
        }
        return;
    }
    ck_assert_msg(json_is_object(j), "%s: not an object", x->name);
    const json_t *shape = json_object_get(j, "shape");
    ck_assert_int_eq(json_array_size(shape), x->rank);
    for (int i = 0; i < x->rank; i++) ck_assert_int_eq(json_integer_value(json_array_get(shape, (size_t)i)), x->dims[i]);
    const json_t *dt = json_object_get(j, "dtype");
    if (f == GD_TF_FLAT && !strcmp(x->dtype, "float64")) ck_assert_ptr_null(dt);
    else ck_assert_str_eq(json_string_value(dt), x->dtype);
    if (f == GD_TF_FLAT) {
        ck_assert_int_eq(json_object_size(j), dt ? 3 : 2);
        const json_t *data = json_object_get(j, "data");
        ck_assert_int_eq(json_array_size(data), n);
        for (int64_t k = 0; k < n; k++) ck_same(wire_num(json_array_get(data, (size_t)k)), x->v[k], x->name, (int)k);
        return;
    }
    const unsigned char *raw;
    unsigned char *owned = NULL;
    size_t nbytes;
    if (f == GD_TF_B64) {
        ck_assert_int_eq(json_object_size(j), 3);
        owned = unb64(json_string_value(json_object_get(j, "b64")), &nbytes);
        raw = owned;
    } else {
        ck_assert_int_eq(json_object_size(j), 4);
        json_int_t off = json_integer_value(json_object_get(j, "offset"));
        nbytes = (size_t)json_integer_value(json_object_get(j, "nbytes"));
        ck_assert_int_eq(off % 64, 0);
        ck_assert_uint_le((size_t)off + nbytes, bin->len);
        raw = (const unsigned char *)bin->data + off;
    }
    size_t esz = is_f32 ? 4 : 8;
    ck_assert_uint_eq(nbytes, (size_t)n * esz);
    for (int64_t k = 0; k < n; k++) {
        uint64_t u = 0;
        for (size_t b = 0; b < esz; b++) u |= (uint64_t)raw[k * (int64_t)esz + (int64_t)b] << (8 * b);
        double got;
        if (is_f32) {
            uint32_t w = (uint32_t)u;
            float fl;
            memcpy(&fl, &w, 4);
            got = fl;
        } else if (is_i64) {
            int64_t iv;
            memcpy(&iv, &u, 8);
            got = (double)iv;
        } else {
            memcpy(&got, &u, 8);
        }
        ck_same(got, x->v[k], x->name, (int)k);
    }
    free(owned);
}

static void roundtrip(gd_tensor_format f) {
    ck_ok(dec(gd_arena_printf(A, roundtrip_req, gd_tensor_format_name(f))));
    ck_assert_int_eq(R.tensor_format, f);
    gd_run_result res;
    memset(&res, 0, sizeof res);
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    gd_stats st;
    gd_stats_from_run(&st, &R, &res);
    gd_buf out, bin;
    gd_binsec sec; /* the big tensors as pieces, as the server sends them */
    gd_buf_init(&out);
    gd_buf_init(&bin);
    gd_binsec_init(&sec);
    sec.borrow_min = 16;
    ck_assert_int_eq(gd_encode_grad_response(&out, &sec, &R, &res, &st), 0);
    ck_assert_int_eq(gd_binsec_flatten(&sec, &bin), 0);
    if (f == GD_TF_BINARY) ck_assert_int_gt(sec.n_seg, 0);
    gd_binsec_free(&sec);
    json_error_t je;
    json_t *j = json_loads(out.data, 0, &je);
    ck_assert_msg(j != NULL, "response does not parse: %s\n%s", je.text, out.data);

    const float h[3] = {0.1f, 0.2f, 0.3f};
    const double hd[3] = {h[0], h[1], h[2]};
    const xt expect_t = {"loss", "float64", 0, {0},
                         {0.1 * hd[0] - 2 * hd[1] + 3 * hd[2] + 4 * hd[0] + 5 * hd[1] - 6 * hd[2]}};
    const xt grads[] = {
        {"x", "float64", 2, {2, 3}, {h[0], h[1], h[2], h[0], h[1], h[2]}},
        {"h", "float32", 1, {3}, {4.1f, 3.0f, -3.0f}},
    };
    const xt vals[] = {
        {"am", "int64", 1, {2}, {2, 1}},
        {"k", "int64", 1, {2}, {2, 0}},
        {"r", "float64", 1, {3}, {INFINITY, -INFINITY, 0.5}},
        {"n", "float64", 0, {0}, {NAN}},
    };
    const json_t *jt = json_object_get(j, "target"), *jg = json_object_get(j, "gradients"),
                 *jv = json_object_get(j, "values");
    ck_assert_int_eq(json_object_size(jt), 1);
    /* The target's value: float64 in every format; compare loosely since
     * the sum's order is the core's. */
    const json_t *lt = json_object_get(jt, "loss");
    ck_assert_ptr_nonnull(lt);
    if (f == GD_TF_NESTED) ck_assert_double_eq_tol(json_number_value(lt), expect_t.v[0], 1e-12);
    ck_assert_int_eq(json_object_size(jg), 2);
    for (size_t i = 0; i < 2; i++) ck_wire(json_object_get(jg, grads[i].name), f, &bin, &grads[i]);
    ck_assert_int_eq(json_object_size(jv), 4);
    for (size_t i = 0; i < 4; i++) ck_wire(json_object_get(jv, vals[i].name), f, &bin, &vals[i]);
    /* r and n are non-finite: the diagnostics say where they were born. */
    const json_t *jd = json_object_get(j, "diagnostics");
    ck_assert(json_array_size(jd) >= 2);
    for (size_t i = 0; i < json_array_size(jd); i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(jd, i), "code")), "non_finite_value");
    const json_t *js = json_object_get(j, "stats");
    ck_assert_int_eq(json_integer_value(json_object_get(js, "nodes")), 10);
    if (f == GD_TF_NESTED) {
        /* Exact text: float64 as repr, float32 narrowed, int64 as integers. */
        ck_assert_ptr_nonnull(strstr(out.data, "\"x\":[[0.10000000149011612,0.20000000298023224,0.30000001192092896],"));
        ck_assert_ptr_nonnull(strstr(out.data, "\"h\":[4.1,3.0,-3.0]"));
        ck_assert_ptr_nonnull(strstr(out.data, "\"am\":[2,1],\"k\":[2,0],\"r\":[\"Infinity\",\"-Infinity\",0.5],"
                                               "\"n\":\"NaN\""));
    }
    if (f != GD_TF_BINARY) ck_assert_uint_eq(bin.len, 0);
    json_decref(j);
    gd_buf_free(&out);
    gd_buf_free(&bin);
}

/* gd_wire_put_bound bounds what gd_wire_put writes, in every format, for
 * the longest numbers there are (17 digits with a three-digit exponent,
 * fixed notation just under 10^16, 4 leading zeros, int64's extremes,
 * float32 narrowing, non-finite values), odd shapes (a dimension of 1 at
 * every level, an empty one, a scalar) and random values: the server
 * reserves an answer's room from it. */
START_TEST(encode_put_bound) {
    static const double hard[] = {-2.2250738585072014e-308, -1.2345678901234567e-100, -1234567890123456.7,
                                  -9.999999999999999e15,    -0.00012345678901234567, -1.1754943508222875e-38,
                                  -3.4028234663852886e38,   NAN,                     -INFINITY,
                                  -5e-324,                  -1.2345678e15,           0.0};
    static const int64_t shapes[][4] = {{0}, {1, 7}, {2, 3, 1}, {3, 1, 1, 1}, {1, 0}, {4, 1, 5}};
    static const int ranks[] = {0, 2, 3, 4, 2, 3};
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    for (int f = GD_TF_NESTED; f <= GD_TF_B64; f++)
        for (int si = 0; si < (int)(sizeof ranks / sizeof ranks[0]); si++)
            for (int kind = 0; kind < 4; kind++) { /* f64 hard, f64 random, f32 hard, int64 */
                gd_shape sh = gd_shape_make(ranks[si], shapes[si]);
                gd_tensor *t = gd_tensor_new(A, &sh, kind == 3 ? GD_I64 : GD_F64, 0);
                ck_assert_ptr_nonnull(t);
                for (int64_t k = 0; k < t->n; k++) {
                    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                    if (kind == 3) gd_i64(t)[k] = (k & 1) ? INT64_MIN : (int64_t)seed;
                    else if (kind == 1) memcpy(&gd_f64(t)[k], &seed, 8);
                    else gd_f64(t)[k] = hard[(k + si) % (int64_t)(sizeof hard / sizeof hard[0])];
                }
                gd_buf b;
                gd_buf_init(&b);
                gd_wire_put(&b, NULL, (gd_tensor_format)f, t, kind == 2, NULL);
                ck_assert(!b.failed);
                size_t bound = gd_wire_put_bound((gd_tensor_format)f, t, kind == 2);
                ck_assert_msg(b.len <= bound, "format %d, shape %d, kind %d: %zu bytes written, bound %zu: %s", f,
                              si, kind, b.len, bound, b.data);
                gd_buf_free(&b);
            }
    ck_assert_uint_ge(gd_wire_put_bound(GD_TF_NESTED, NULL, 0), 4); /* null */
}
END_TEST

START_TEST(encode_roundtrip_nested) { roundtrip(GD_TF_NESTED); }
END_TEST
START_TEST(encode_roundtrip_flat) { roundtrip(GD_TF_FLAT); }
END_TEST
START_TEST(encode_roundtrip_b64) { roundtrip(GD_TF_B64); }
END_TEST
START_TEST(encode_roundtrip_binary) { roundtrip(GD_TF_BINARY); }
END_TEST

/* A binary response can be fed back as a binary request: the gradients
 * decode to what was encoded. Also: the binary format needs a bin buffer. */
/* Binary float64 tensors borrow the request body's bytes (wire.h), so
 * nothing may write them: the binary section below sits in read-only pages
 * while the request is decoded, run (a chain of maps that write in place,
 * starting straight over the borrowed input) and encoded with its big
 * tensors as pieces; a write is a SIGSEGV. An 8-aligned tensor is borrowed,
 * a misaligned one copied; both answer exactly. */
START_TEST(binary_body_read_only) {
    const char *json = J("{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'w', 'op': 'variable'},"
                         " {'name': 'a', 'op': 'neg', 'inputs': ['x']}, {'name': 'b', 'op': 'abs', 'inputs': ['a']},"
                         " {'name': 'c', 'op': 'square', 'inputs': ['b']},"
                         " {'name': 'm', 'op': 'mul', 'inputs': ['c', 'w']},"
                         " {'name': 'loss', 'op': 'sum', 'inputs': ['m']}]},"
                         " 'values': {'x': {'shape': [64], 'dtype': 'float64', 'offset': 0, 'nbytes': 512},"
                         " 'w': {'shape': [64], 'dtype': 'float64', 'offset': 516, 'nbytes': 512}},"
                         " 'target': 'loss', 'fetch': ['c'], 'tensor_format': 'binary'}");
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *bin = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(bin, MAP_FAILED);
    double x[64], w[64];
    for (int i = 0; i < 64; i++) x[i] = i - 31.5, w[i] = 0.25 * i;
    memcpy(bin, x, sizeof x);
    memcpy(bin + 516, w, sizeof w);
    ck_assert_int_eq(mprotect(bin, (size_t)page, PROT_READ), 0);
    ck_ok(gd_decode_request(A, json, strlen(json), bin, 1028, GD_EP_GRAD, NULL, &R, &E));
    const gd_tensor *tx = R.graph->st[0].value, *tw = R.graph->st[1].value;
    ck_assert_int_eq(tx->borrowed, 1);
    ck_assert_ptr_eq(tx->data, bin);
    ck_assert_int_eq(tw->borrowed, 0); /* bin + 516 is not 8-aligned: copied */
    gd_run_result res;
    memset(&res, 0, sizeof res);
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    gd_buf out, flat;
    gd_binsec sec;
    gd_buf_init(&out);
    gd_buf_init(&flat);
    gd_binsec_init(&sec);
    sec.borrow_min = 16;
    ck_assert_int_eq(gd_encode_grad_response(&out, &sec, &R, &res, NULL), 0);
    ck_assert_int_eq(sec.n_seg, 2); /* dw and c, each sent from its own buffer */
    ck_assert_int_eq(gd_binsec_flatten(&sec, &flat), 0);
    json_t *j = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *gw = json_object_get(json_object_get(j, "gradients"), "w");
    json_t *vc = json_object_get(json_object_get(j, "values"), "c");
    const double *dw = (const double *)(flat.data + json_integer_value(json_object_get(gw, "offset")));
    const double *fc = (const double *)(flat.data + json_integer_value(json_object_get(vc, "offset")));
    for (int i = 0; i < 64; i++) {
        ck_assert_double_eq(dw[i], x[i] * x[i]);
        ck_assert_double_eq(fc[i], x[i] * x[i]);
    }
    ck_assert_int_eq(memcmp(bin, x, sizeof x), 0);
    json_decref(j);
    gd_buf_free(&out);
    gd_buf_free(&flat);
    gd_binsec_free(&sec);
    munmap(bin, (size_t)page);
}
END_TEST

START_TEST(encode_binary_feeds_back) {
    ck_ok(dec(gd_arena_printf(A, roundtrip_req, "binary")));
    gd_run_result res;
    memset(&res, 0, sizeof res);
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    gd_buf out, bin;
    gd_binsec sec;
    gd_buf_init(&out);
    gd_buf_init(&bin);
    gd_binsec_init(&sec);
    sec.borrow_min = 16;
    ck_assert_int_eq(gd_encode_grad_response(&out, NULL, &R, &res, NULL), -1);
    gd_buf_reset(&out);
    ck_assert_int_eq(gd_encode_grad_response(&out, &sec, &R, &res, NULL), 0);
    ck_assert_int_eq(gd_binsec_flatten(&sec, &bin), 0);
    gd_binsec_free(&sec);
    json_t *j = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    char *gx = json_dumps(json_object_get(json_object_get(j, "gradients"), "x"), JSON_COMPACT);
    char *gh = json_dumps(json_object_get(json_object_get(j, "gradients"), "h"), JSON_COMPACT);
    char *body = gd_arena_printf(A,
                                 "{\"graph\": {\"nodes\": [{\"name\": \"a\", \"op\": \"variable\"},"
                                 " {\"name\": \"b\", \"op\": \"variable\"}, {\"name\": \"s\", \"op\": \"sum\","
                                 " \"inputs\": [\"a\"]}]}, \"values\": {\"a\": %s, \"b\": %s}, \"target\": \"s\"}",
                                 gx, gh);
    free(gx);
    free(gh);
    gd_request r2;
    ck_ok(gd_decode_request(A, body, strlen(body), (const unsigned char *)bin.data, bin.len, GD_EP_GRAD, NULL, &r2,
                            &E));
    const gd_tensor *a = r2.graph->st[0].value, *b = r2.graph->st[1].value;
    ck_f64s(a, gd_f64(res.grads[0]), 6);
    ck_f64s(b, (double[]){4.1f, 3.0f, -3.0f}, 3);
    ck_assert_int_eq(r2.graph->st[1].transport_f32, 1);
    json_decref(j);
    gd_buf_free(&out);
    gd_buf_free(&bin);
}
END_TEST

/* ---------------------------------------------------------------------------
 * The contract's example, reproduced. */

static const char *contract_req =
    "{'graph': {'nodes': ["
    " {'name': 'x',    'op': 'variable', 'shape': [3]},"
    " {'name': 'b',    'op': 'variable'},"
    " {'name': 't',    'op': 'input'},"
    " {'name': 'two',  'op': 'constant', 'value': 2.0},"
    " {'name': 'd',    'op': 'sub',  'inputs': ['x', 't']},"
    " {'name': 'p',    'op': 'pow',  'inputs': ['d', 'two']},"
    " {'name': 'sg',   'op': 'stop_gradient', 'inputs': ['b']},"
    " {'name': 's',    'op': 'add',  'inputs': ['p', 'sg']},"
    " {'name': 'loss', 'op': 'sum',  'inputs': ['s']}"
    "]},"
    " 'values': {'x': [1, 2, 3], 'b': [0.5, 0.5, 0.5], 't': [0, 1, 0]},"
    " 'target': 'loss',"
    " 'fetch': ['d']}";

static const char *contract_resp =
    "{'target': {'loss': 12.5},"
    " 'gradients': {'x': [2.0, 2.0, 6.0], 'b': null},"
    " 'values': {'d': [1.0, 1.0, 3.0]},"
    " 'diagnostics': ["
    "  {'code': 'stop_gradient', 'severity': 'error', 'wrt': 'b',"
    "   'message': \"No gradient for 'b': its only path to 'loss' passes through stop_gradient node 'sg'.\","
    "   'blocked_at': [{'node': 'sg', 'op': 'stop_gradient', 'reason': 'stop_gradient', 'input': 0}],"
    "   'path': ['b', 'sg', 's', 'loss'],"
    "   'hint': \"Remove 'sg' (stop_gradient) if 'b' should receive a gradient.\"}"
    " ]}";

/* J() for the expected body, whose messages hold apostrophes: only ' outside
 * a "..." string is a quote. */
static json_t *load_sq(const char *sq) {
    char *d = gd_arena_strdup(A, sq);
    int in_dq = 0;
    for (char *p = d; *p; p++) {
        if (*p == '"') in_dq = !in_dq;
        else if (*p == '\'' && !in_dq) *p = '"';
    }
    json_error_t je;
    json_t *j = json_loads(d, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    return j;
}

START_TEST(encode_contract_example) {
    ck_ok(dec(contract_req));
    gd_run_result res;
    memset(&res, 0, sizeof res);
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    gd_buf out;
    gd_buf_init(&out);
    ck_assert_int_eq(gd_encode_grad_response(&out, NULL, &R, &res, NULL), 0);
    json_t *got = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(got);
    json_t *want = load_sq(contract_resp);
    const char *keys[] = {"target", "gradients", "values", "diagnostics"};
    for (int i = 0; i < 4; i++) {
        char *g = json_dumps(json_object_get(got, keys[i]), JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(json_object_get(want, keys[i]), JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_msg(json_equal(json_object_get(got, keys[i]), json_object_get(want, keys[i])), "%s:\n got  %s\n want %s",
                      keys[i], g, w);
        free(g);
        free(w);
    }
    /* The numbers print as the contract prints them, keys in its order. */
    const char prefix[] = "{\"target\":{\"loss\":12.5},\"gradients\":{\"x\":[2.0,2.0,6.0],\"b\":null},"
                          "\"values\":{\"d\":[1.0,1.0,3.0]},\"diagnostics\":[{\"code\":\"stop_gradient\","
                          "\"severity\":\"error\",\"wrt\":\"b\",\"message\":";
    ck_assert_msg(strncmp(out.data, prefix, sizeof prefix - 1) == 0, "body starts %.200s", out.data);
    /* stats: present with exactly the contract's keys. */
    const json_t *st = json_object_get(got, "stats");
    const char *sk[] = {"nodes", "forward_us", "backward_us", "queue_us", "total_us", "peak_bytes"};
    ck_assert_int_eq(json_object_size(st), 6);
    for (int i = 0; i < 6; i++) ck_assert_msg(json_is_integer(json_object_get(st, sk[i])), "stats.%s", sk[i]);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "nodes")), 9);
    ck_assert_int_eq(json_object_size(got), 5);
    json_decref(got);
    json_decref(want);
    gd_buf_free(&out);
}
END_TEST

/* 422: no wrt gets a gradient with unconnected "none"; "zero" answers 200. */
/* A7: the deadline covers encoding. The tensor writers poll the request's
 * cancel record every GD_POLL_ELEMS elements, in every tensor form (the 2-D
 * nested form row by row, rows of one element included): a cancelled
 * record stops a 3 x GD_POLL_ELEMS fetch with GD_E_DEADLINE_EXCEEDED after
 * its first piece, where the same encoding without it is complete. */
START_TEST(encode_stops_when_cancelled) {
    static const char *const forms[] = {"nested", "flat", "b64", "binary"};
    static const char *const shapes[] = {"[3, 65536]", "[196608, 1]"};
    gd_cancel cancel = {0};
    for (int f = 0; f < 4; f++)
        for (int k = 0; k < 2; k++) {
            const char *req = gd_arena_printf(
                A, "{'graph': {'nodes': [{'name': 'x', 'op': 'input'},"
                   " {'name': 'b', 'op': 'broadcast_to', 'inputs': ['x'], 'shape': %s}]},"
                   " 'values': {'x': 0.3333333333333333}, 'target': 'x', 'fetch': ['b'], 'tensor_format': '%s'}",
                shapes[k], forms[f]);
            ck_assert_int_eq(3 * 65536, 3 * GD_POLL_ELEMS);
            ck_ok(dec_full(req, NULL, 0, GD_EP_EVAL, NULL));
            gd_run_result res;
            memset(&res, 0, sizeof res);
            ck_ok(gd_run(R.graph, &R.spec, &res, &E));
            size_t full = 0;
            for (int cancelled = 0; cancelled < 2; cancelled++) {
                atomic_store(&cancel.cancelled, cancelled);
                R.spec.cancel = &cancel;
                gd_buf out;
                gd_binsec bin;
                gd_buf_init(&out);
                gd_binsec_init(&bin);
                int rc = gd_encode_eval_response(&out, &bin, &R, &res, NULL);
                size_t len = out.len + gd_binsec_len(&bin);
                if (!cancelled) {
                    ck_assert_int_eq(rc, 0);
                    full = len;
                } else {
                    ck_assert_msg(rc == GD_E_DEADLINE_EXCEEDED, "%s %s: %d", forms[f], shapes[k], rc);
                    ck_assert_msg(len < full / 2, "%s %s: %zu of %zu bytes written", forms[f], shapes[k], len, full);
                }
                gd_buf_free(&out);
                gd_binsec_free(&bin);
            }
            R.spec.cancel = NULL;
        }
}
END_TEST

START_TEST(encode_no_gradients) {
    const char *fmt =
        "{'graph': {'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'b', 'op': 'variable'},"
        " {'name': 'c', 'op': 'variable'}, {'name': 'sg', 'op': 'stop_gradient', 'inputs': ['b']},"
        " {'name': 's', 'op': 'add', 'inputs': ['x', 'sg']}, {'name': 'loss', 'op': 'sum', 'inputs': ['s']}]},"
        " 'values': {'x': [1, 2], 'b': [1, 1], 'c': 3}, 'target': 'loss', 'wrt': %s}";
    gd_run_result res;
    ck_ok(dec_run(gd_arena_printf(A, fmt, "['b', 'c']"), &res));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 1);
    ck_assert_int_eq(E.code, GD_E_NO_GRADIENTS);
    ck_assert_int_eq(gd_err_status(E.code), 422);
    ck_assert_str_eq(E.message, "No gradients provided for any variable: b, c");
    gd_buf out;
    gd_buf_init(&out);
    ck_assert_int_eq(gd_encode_error(&out, &E, res.diags, res.n_diags, R.graph), 0);
    json_t *j = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_object_size(j), 1);
    const json_t *e = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "no_gradients");
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "No gradients provided for any variable: b, c");
    ck_assert_ptr_null(json_object_get(e, "at"));
    const json_t *d = json_object_get(e, "diagnostics");
    ck_assert_int_eq(json_array_size(d), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "code")), "stop_gradient");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "wrt")), "b");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 1), "code")), "disconnected");
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(d, 1), "consumers")), 0);
    json_decref(j);
    gd_buf_free(&out);

    /* One wrt with a gradient: 200. */
    ck_ok(dec_run(gd_arena_printf(A, fmt, "['b', 'x']"), &res));
    gd_error_clear(&E);
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    ck_assert_int_eq(E.code, GD_OK);
    /* unconnected "zero": 200 with zeros, the diagnostic still there. */
    const char *zero = gd_arena_printf(A, fmt, "['b', 'c'], 'unconnected': 'zero'");
    ck_ok(dec_run(zero, &res));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    ck_f64s(res.grads[0], (double[]){0, 0}, 2);
    ck_assert_int_eq(res.n_diags, 2);
    /* eval never answers 422. */
    ck_ok(dec_full("{'graph': {'nodes': [{'name': 'x', 'op': 'input'}]}, 'values': {'x': 1}, 'target': 'x'}", NULL, 0,
                   GD_EP_EVAL, NULL));
    memset(&res, 0, sizeof res);
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
}
END_TEST

/* The 422 body of a run (gd_no_gradients must fire), parsed. */
static json_t *no_gradients_body(const gd_run_result *res) {
    ck_assert_int_eq(gd_no_gradients(&R, res, &E), 1);
    ck_assert_int_eq(E.code, GD_E_NO_GRADIENTS);
    gd_buf out;
    gd_buf_init(&out);
    ck_assert_int_eq(gd_encode_error(&out, &E, res->diags, res->n_diags, R.graph), 0);
    json_t *j = json_loads(out.data, 0, NULL);
    gd_buf_free(&out);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* A1: weights declared as inputs (forgetting tf.Variable) used to answer
 * 200 with no gradients at all; now 422 no_variables naming the inputs on a
 * gradient-carrying path, whatever unconnected says. The hint's fix, applied
 * to the request, gives the gradient. */
START_TEST(encode_no_variables) {
    const char *fmt =
        "{'graph': {'nodes': [{'name': 'X', 'op': 'input'}, {'name': 'w', 'op': '%s'},"
        " {'name': 'k', 'op': 'input', 'dtype': 'int64'}, {'name': 'sg', 'op': 'stop_gradient', 'inputs': ['X']},"
        " {'name': 'Xw', 'op': 'matmul', 'inputs': ['X', 'w']}, {'name': 'loss', 'op': 'mean', 'inputs': ['Xw']}]},"
        " 'values': {'X': [[1, 2], [3, 4]], 'w': [0.5, -1], 'k': 3}, 'target': 'loss'%s}";
    const char *unconn[] = {"", ", 'unconnected': 'none'", ", 'unconnected': 'zero'"};
    for (int u = 0; u < 3; u++) {
        gd_run_result res;
        ck_ok(dec_run(gd_arena_printf(A, fmt, "input", unconn[u]), &res));
        json_t *j = no_gradients_body(&res);
        const json_t *e = json_object_get(j, "error");
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "no_gradients");
        const json_t *ds = json_object_get(e, "diagnostics");
        ck_assert_int_eq(json_array_size(ds), 1);
        const json_t *d = json_array_get(ds, 0);
        ck_assert_str_eq(json_string_value(json_object_get(d, "code")), "no_variables");
        ck_assert_str_eq(json_string_value(json_object_get(d, "severity")), "error");
        ck_assert_ptr_null(json_object_get(d, "wrt"));
        /* X and w, graph order; not k (int64) */
        json_t *want = json_loads(J("[{'node': 'X', 'op': 'input'}, {'node': 'w', 'op': 'input'}]"), 0, NULL);
        ck_assert(json_equal(json_object_get(d, "candidates"), want));
        json_decref(want);
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(d, "message")), "'loss'"));
        const char *hint = json_string_value(json_object_get(d, "hint"));
        ck_assert_str_eq(hint, "Declare 'X' and 'w' with \"op\": \"variable\" instead of \"input\" if they should be "
                               "trained, or name them in \"wrt\".");
        json_decref(j);
    }
    /* The fix: w declared a variable gets its gradient (200). */
    gd_run_result res;
    ck_ok(dec_run(gd_arena_printf(A, fmt, "variable", ""), &res));
    gd_error_clear(&E);
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    ck_assert_int_eq(R.spec.n_wrt, 1);
    ck_f64s(res.grads[0], (double[]){2, 3}, 2);
    ck_assert_int_eq(res.n_diags, 0);
    /* The other fix: name the inputs in wrt. */
    ck_ok(dec_run(gd_arena_printf(A, fmt, "input", ", 'wrt': ['w']"), &res));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    ck_f64s(res.grads[0], (double[]){2, 3}, 2);

    /* No input reaches the target through carrying edges: no candidates, and
     * the hint says so. */
    ck_ok(dec_run("{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'sg', 'op': 'stop_gradient', "
                  "'inputs': ['x']}, {'name': 'loss', 'op': 'sum', 'inputs': ['sg']}]}, 'values': {'x': [1, 2]}, "
                  "'target': 'loss'}",
                  &res));
    json_t *j = no_gradients_body(&res);
    const json_t *d = json_array_get(json_object_get(json_object_get(j, "error"), "diagnostics"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d, "code")), "no_variables");
    ck_assert_int_eq(json_array_size(json_object_get(d, "candidates")), 0);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(d, "hint")),
                                 "No input reaches 'loss' through gradient-carrying edges"));
    json_decref(j);
}
END_TEST

/* Issue 11: float labels given to softmax_cross_entropy. The error names the
 * node and the labels and says the simplest fix first: declare the input
 * int64; applied to the request, the logits' variable gets its gradient. */
START_TEST(sce_float_labels_hint) {
    const char *fmt =
        "{'graph': {'nodes': [{'name': 'z', 'op': 'variable'}, {'name': 'y', 'op': 'input'%s},"
        " {'name': 'loss', 'op': 'softmax_cross_entropy', 'inputs': ['z', 'y']}]},"
        " 'values': {'z': [[1, 2, 3], [1, 1, 1]], 'y': [2, 0]}, 'target': 'loss'}";
    gd_run_result res;
    ck_err(dec_run(gd_arena_printf(A, fmt, ""), &res), GD_E_DTYPE_MISMATCH, "$.graph.nodes[2].inputs[1]", "");
    const char *m = E.message, *decl = strstr(m, "\"dtype\": \"int64\""), *cast = strstr(m, "cast them");
    ck_assert_msg(strstr(m, "Node 'loss' (softmax_cross_entropy): labels 'y'") && decl && cast && decl < cast,
                  "the message should name 'loss' and 'y' and say \"dtype\": \"int64\" before the cast: %s", m);
    ck_ok(dec_run(gd_arena_printf(A, fmt, ", 'dtype': 'int64'"), &res));
    ck_assert_int_eq(gd_no_gradients(&R, &res, &E), 0);
    ck_assert_ptr_nonnull(res.grads[0]);
    ck_assert_int_eq(res.n_diags, 0);
}
END_TEST

START_TEST(encode_error_body) {
    gd_buf out;
    gd_buf_init(&out);
    ck_assert_int_eq(dec(two_nodes("{'name': 's', 'op': 'sofmax', 'inputs': ['x']}")), GD_E_UNKNOWN_OP);
    ck_assert_int_eq(gd_encode_error(&out, &E, NULL, 0, NULL), 0);
    json_t *j = json_loads(out.data, 0, NULL);
    ck_assert_ptr_nonnull(j);
    const json_t *e = json_object_get(j, "error");
    ck_assert_int_eq(json_object_size(e), 4);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "unknown_op");
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), E.message);
    ck_assert_str_eq(json_string_value(json_object_get(e, "at")), "$.graph.nodes[1].op");
    ck_assert_str_eq(json_string_value(json_object_get(e, "suggestion")), "softmax");
    json_decref(j);
    /* No path, no suggestion: the keys are left out; a default message. */
    gd_buf_reset(&out);
    gd_error e2;
    gd_error_clear(&e2);
    e2.code = GD_E_OVERLOADED;
    ck_assert_int_eq(gd_encode_error(&out, &e2, NULL, 0, NULL), 0);
    ck_assert_str_eq(out.data, "{\"error\":{\"code\":\"overloaded\",\"message\":\"The server is overloaded; retry later.\"}}");
    gd_buf_free(&out);
}
END_TEST

/* ---------------------------------------------------------------------------
 * GET /v1/ops. */

START_TEST(encode_ops) {
    gd_buf out;
    gd_buf_init(&out);
    ck_assert_int_eq(gd_encode_ops(&out), 0);
    json_error_t je;
    json_t *j = json_loads(out.data, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    ck_assert_int_eq(json_object_size(j), 1);
    const json_t *ops = json_object_get(j, "ops");
    int n;
    const gd_op_def *const *all = gd_op_all(&n);
    ck_assert_int_eq((int)json_array_size(ops), n);
    ck_assert_int_ge(n, 59);
    for (int i = 0; i < n; i++) {
        const json_t *o = json_array_get(ops, (size_t)i);
        ck_assert_int_eq(json_object_size(o), 5);
        ck_assert_str_eq(json_string_value(json_object_get(o, "name")), all[i]->name);
        ck_assert(json_is_boolean(json_object_get(o, "differentiable")));
        ck_assert_int_eq(json_is_true(json_object_get(o, "differentiable")), all[i]->differentiable != 0);
        ck_assert(strlen(json_string_value(json_object_get(o, "doc"))) > 10);
        const json_t *in = json_object_get(o, "inputs");
        ck_assert_int_eq(json_integer_value(json_object_get(in, "min")), all[i]->min_in);
        if (all[i]->max_in < 0) ck_assert(json_is_null(json_object_get(in, "max")));
        else ck_assert_int_eq(json_integer_value(json_object_get(in, "max")), all[i]->max_in);
        const json_t *names = json_object_get(in, "names");
        ck_assert(json_is_array(names));
        if (all[i]->max_in >= 0) ck_assert_int_eq(json_array_size(names), all[i]->max_in);
        const json_t *at = json_object_get(o, "attributes");
        ck_assert_int_eq((int)json_object_size(at), all[i]->n_attrs);
        for (int k = 0; k < all[i]->n_attrs; k++) {
            const json_t *a = json_object_get(at, all[i]->attrs[k].name);
            ck_assert_msg(a != NULL, "%s.%s", all[i]->name, all[i]->attrs[k].name);
            ck_assert(json_is_string(json_object_get(a, "type")));
            ck_assert_ptr_nonnull(json_object_get(a, "default"));
            ck_assert_int_eq(json_is_true(json_object_get(a, "required")), all[i]->attrs[k].dflt == NULL);
        }
    }
    /* A few rows in full. */
    char *s;
    const char *want[][2] = {
        {"leaky_relu", "{\"attributes\":{\"alpha\":{\"default\":0.01,\"required\":false,\"type\":\"number\"}},"
                       "\"inputs\":{\"max\":1,\"min\":1,\"names\":[\"x\"],\"no_gradient\":[]}}"},
        {"where", "{\"attributes\":{},\"inputs\":{\"max\":3,\"min\":3,\"names\":[\"cond\",\"a\",\"b\"],"
                  "\"no_gradient\":[\"cond\"]}}"},
        {"concat", "{\"attributes\":{\"axis\":{\"default\":0,\"required\":false,\"type\":\"int|[int]\"}},"
                   "\"inputs\":{\"max\":null,\"min\":1,\"names\":[\"x\"],\"no_gradient\":[]}}"},
        {"reshape", "{\"attributes\":{\"shape\":{\"default\":null,\"required\":true,\"type\":\"[int]\"}},"
                    "\"inputs\":{\"max\":1,\"min\":1,\"names\":[\"x\"],\"no_gradient\":[]}}"},
        {"gather", "{\"attributes\":{\"axis\":{\"default\":0,\"required\":false,\"type\":\"int|[int]\"}},"
                   "\"inputs\":{\"max\":2,\"min\":2,\"names\":[\"params\",\"indices\"],\"no_gradient\":[\"indices\"]}}"},
        {"argmax", "{\"attributes\":{\"axis\":{\"default\":null,\"required\":false,\"type\":\"int|[int]\"}},"
                   "\"inputs\":{\"max\":1,\"min\":1,\"names\":[\"x\"],\"no_gradient\":[\"x\"]}}"},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        const json_t *o = NULL;
        for (size_t i = 0; i < json_array_size(ops); i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(ops, i), "name")), want[w][0]))
                o = json_array_get(ops, i);
        ck_assert_msg(o != NULL, "op %s missing", want[w][0]);
        json_t *part = json_pack("{sOsO}", "attributes", json_object_get(o, "attributes"), "inputs",
                                 json_object_get(o, "inputs"));
        s = json_dumps(part, JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_str_eq(s, want[w][1]);
        free(s);
        json_decref(part);
    }
    /* Every op of the contract is in the table. */
    const char *contract_ops[] = {
        "neg", "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sin", "cos", "tanh", "sigmoid", "relu",
        "softplus", "reciprocal", "leaky_relu", "clip", "add", "sub", "mul", "div", "pow", "maximum", "minimum",
        "sum", "mean", "max", "min", "logsumexp", "reshape", "transpose", "broadcast_to", "concat", "slice",
        "gather", "matmul", "softmax", "log_softmax", "softmax_cross_entropy", "stop_gradient", "where", "cond",
        "argmax", "argmin", "round", "floor", "ceil", "sign", "greater", "greater_equal", "less", "less_equal",
        "equal", "not_equal", "cast", "one_hot", "variable", "input", "constant"};
    for (size_t c = 0; c < sizeof contract_ops / sizeof contract_ops[0]; c++) {
        int found = 0;
        for (size_t i = 0; i < json_array_size(ops); i++)
            found |= !strcmp(json_string_value(json_object_get(json_array_get(ops, i), "name")), contract_ops[c]);
        ck_assert_msg(found, "op %s missing from /v1/ops", contract_ops[c]);
    }
    json_decref(j);
    gd_buf_free(&out);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Mutation loop: damaged requests never crash, leak or return an error
 * without a message; the ones that still decode run and encode to JSON. */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* Replace s[at, end) by r when it fits. */
static void splice(char *s, size_t *len, size_t cap, size_t at, size_t end, const char *r) {
    size_t n = *len, rl = strlen(r);
    if (n - (end - at) + rl >= cap) return;
    memmove(s + at + rl, s + end, n - end);
    memcpy(s + at, r, rl);
    *len = n - (end - at) + rl;
}

/* One random edit: half of them keep the JSON well-formed (a number or a
 * string swapped for a troublesome one) so that the decoder's deeper checks
 * are reached, half damage bytes anywhere. */
static void mutate(char *s, size_t *len, size_t cap) {
    static const char alphabet[] = "{}[]\",:0123456789.-+eE aNnIfty\\tu'x";
    static const char *const numbers[] = {"1e308", "9007199254740993", "-1", "99999999999999999999999", "0",
                                          "1e-320", "\"NaN\"", "[]", "{}", "null", "1000000", "2", "-3", "0.5",
                                          "[1, 2]", "[[1], [2]]", "{\"shape\": [2], \"data\": [1, 2]}"};
    static const char *const strings[] = {"x", "b", "d", "s", "k", "w", "g", "loss", "NaN", "Infinity", "int64",
                                          "float32", "float64", "sum", "matmul", "cond", "where", "nested", "flat",
                                          "b64", "binary", "zero", "none", "", "shape", "axis", "inputs", "wrt",
                                          "AAAA", "value", "constant", "input", "variable", "stop_gradient"};
    size_t n = *len;
    uint32_t kind = rnd(10);
    if (kind >= 6 && n) { /* swap the contents of the k-th string */
        size_t quotes = 0;
        for (size_t i = 0; i < n; i++) quotes += s[i] == '"';
        if (quotes < 2) return;
        size_t k = rnd((uint32_t)(quotes / 2)), seen = 0, at = 0, end = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] == '"' && seen++ == 2 * k) {
                at = i + 1;
                for (end = at; end < n && s[end] != '"'; end++) {}
                break;
            }
        if (end < n) splice(s, len, cap, at, end, strings[rnd(sizeof strings / sizeof strings[0])]);
        return;
    }
    switch (kind) {
    case 0: /* truncate */
        n = n ? rnd((uint32_t)n) : 0;
        break;
    case 1: /* overwrite a byte */
        if (n) s[rnd((uint32_t)n)] = alphabet[rnd(sizeof alphabet - 1)];
        break;
    case 2: { /* delete a short range */
        if (!n) break;
        size_t at = rnd((uint32_t)n), k = 1 + rnd(8);
        if (at + k > n) k = n - at;
        memmove(s + at, s + at + k, n - at - k);
        n -= k;
        break;
    }
    case 3: /* insert a byte */
        if (n + 1 < cap) {
            size_t at = rnd((uint32_t)n + 1);
            memmove(s + at + 1, s + at, n - at);
            s[at] = alphabet[rnd(sizeof alphabet - 1)];
            n++;
        }
        break;
    case 4: { /* duplicate a slice */
        if (!n) break;
        size_t from = rnd((uint32_t)n), k = 1 + rnd(40), at = rnd((uint32_t)n + 1);
        if (from + k > n) k = n - from;
        if (n + k >= cap) break;
        char tmp[64];
        memcpy(tmp, s + from, k);
        memmove(s + at + k, s + at, n - at);
        memcpy(s + at, tmp, k);
        n += k;
        break;
    }
    default: { /* replace a number by a troublesome value */
        size_t at = n ? rnd((uint32_t)n) : 0;
        while (at < n && !(s[at] >= '0' && s[at] <= '9')) at++;
        if (at >= n) break;
        size_t end = at;
        while (end < n && ((s[end] >= '0' && s[end] <= '9') || s[end] == '.')) end++;
        splice(s, &n, cap, at, end, numbers[rnd(sizeof numbers / sizeof numbers[0])]);
        break;
    }
    }
    *len = n;
}

static int fuzz_ran, fuzz_refused; /* outcomes, so the loop is seen to reach both */

static void fuzz_one(const char *body, size_t len, const unsigned char *bin, size_t bin_len, int ep) {
    gd_arena *a = gd_arena_new(64u << 20);
    ck_assert_ptr_nonnull(a);
    gd_decode_limits lim = {.max_nodes = 64, .max_elements = 4096};
    gd_request r;
    gd_error e;
    int rc = gd_decode_request(a, body, len, bin, bin_len, ep, &lim, &r, &e);
    gd_buf out;
    gd_binsec ob;
    gd_buf_init(&out);
    gd_binsec_init(&ob);
    ob.borrow_min = 64;
    if (rc == 0) {
        gd_run_result res;
        memset(&res, 0, sizeof res);
        rc = gd_run(r.graph, &r.spec, &res, &e);
        if (rc == 0) {
            fuzz_ran++;
            int enc = ep == GD_EP_EVAL ? gd_encode_eval_response(&out, &ob, &r, &res, NULL)
                                       : gd_encode_grad_response(&out, &ob, &r, &res, NULL);
            ck_assert_int_eq(enc, 0);
        }
    }
    if (rc) {
        fuzz_refused++;
        if (getenv("GD_FUZZ_DEBUG")) fprintf(stderr, "%s %s\n", gd_err_code(e.code), e.at);
        ck_assert_msg(rc == (int)e.code && rc > 0 && rc < GD_E__COUNT, "rc %d vs code %d", rc, (int)e.code);
        ck_assert_msg(e.message[0] != '\0', "%s without a message", gd_err_code(e.code));
        int st = gd_err_status(e.code);
        ck_assert_msg(st == 400 || st == 413 || st == 504, "status %d for %s", st, gd_err_code(e.code));
        ck_assert_int_eq(gd_encode_error(&out, &e, NULL, 0, NULL), 0);
    }
    json_error_t je;
    json_t *j = json_loadb(out.data, out.len, 0, &je);
    ck_assert_msg(j != NULL, "output does not parse: %s", je.text);
    json_decref(j);
    gd_buf_free(&out);
    gd_binsec_free(&ob);
    gd_arena_free(a);
}

START_TEST(decode_mutations) {
    rng_state = 20240611;
    const char *seeds[2];
    seeds[0] = J(contract_req);
    seeds[1] = J("{'graph': {'nodes': [{'name': 'x', 'op': 'variable', 'dtype': 'float32'},"
                 " {'name': 'k', 'op': 'input', 'dtype': 'int64'},"
                 " {'name': 'g', 'op': 'gather', 'inputs': ['x', 'k'], 'axis': 0},"
                 " {'name': 'r', 'op': 'reshape', 'inputs': ['g'], 'shape': [-1, 2]},"
                 " {'name': 'm', 'op': 'matmul', 'inputs': ['r', 'w']},"
                 " {'name': 'w', 'op': 'variable'},"
                 " {'name': 's', 'op': 'softmax_cross_entropy', 'inputs': ['m', 'lab']},"
                 " {'name': 'lab', 'op': 'input', 'dtype': 'int64'}]},"
                 " 'values': {'x': {'shape': [3, 2], 'dtype': 'float32', 'offset': 0, 'nbytes': 24},"
                 "  'k': {'shape': [2], 'dtype': 'int64', 'b64': 'AgAAAAAAAAAAAAAAAAAAAA=='},"
                 "  'w': {'shape': [2, 2], 'data': [1, 'NaN', -1, 0.5]}, 'lab': [1, 0]},"
                 " 'target': ['s'], 'fetch': ['g'], 'tensor_format': 'binary', 'deadline_ms': 1000}");
    unsigned char bin[64];
    for (int i = 0; i < 6; i++) le32(bin + 4 * i, (float)i * 0.25f);
    memset(bin + 24, 0, sizeof bin - 24);
    /* Both seeds are valid as they stand. */
    fuzz_one(seeds[0], strlen(seeds[0]), NULL, 0, GD_EP_GRAD);
    fuzz_one(seeds[1], strlen(seeds[1]), bin, sizeof bin, GD_EP_GRAD);
    char buf[4096];
    for (int it = 0; it < 4000; it++) {
        int which = (int)rnd(2);
        size_t len = strlen(seeds[which]);
        memcpy(buf, seeds[which], len);
        for (int m = 1 + (int)rnd(2); m > 0; m--) mutate(buf, &len, sizeof buf);
        int ep = rnd(4) == 0 ? GD_EP_EVAL : GD_EP_GRAD;
        fuzz_one(buf, len, which ? bin : NULL, which ? sizeof bin : 0, ep);
    }
    ck_assert_int_eq(fuzz_ran + fuzz_refused, 4002);
    ck_assert_msg(fuzz_ran > 60 && fuzz_refused > 2000, "ran %d, refused %d", fuzz_ran, fuzz_refused);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Integer attributes take any int64 exactly (A8); what is not one is refused
 * with a message that says why, at the entry. */

static const char *slice_req(const char *attrs) {
    return gd_arena_printf(A, "{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'y', 'op': 'slice',"
                              " 'inputs': ['x'], %s}]}, 'values': {'x': [0, 1, 2, 3, 4]}, 'target': 'y'}",
                           attrs);
}

/* The slice of [0, 1, 2, 3, 4] that the decoded request evaluates to. */
static void ck_slice_run(const char *attrs, int n, const double *want) {
    gd_run_result res;
    memset(&res, 0, sizeof res);
    ck_ok(dec_full(slice_req(attrs), NULL, 0, GD_EP_EVAL, NULL));
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    ck_assert_int_eq(res.targets[0]->n, n);
    for (int i = 0; i < n; i++) ck_assert_double_eq(gd_f64(res.targets[0])[i], want[i]);
}

START_TEST(decode_int64_attributes) {
    /* The usual "to the end", and the other extremes, exactly; Python's
     * range(5)[s:e:k] for each. */
    ck_slice_run("'starts': [1], 'ends': [9223372036854775807]", 4, (double[]){1, 2, 3, 4});
    ck_assert_int_eq(node("y")->attrs->ends.v[0], INT64_MAX);
    ck_slice_run("'starts': [-9223372036854775808], 'ends': [9223372036854775807]", 5, (double[]){0, 1, 2, 3, 4});
    ck_assert_int_eq(node("y")->attrs->starts.v[0], INT64_MIN);
    ck_slice_run("'starts': [9223372036854775807], 'ends': [-9223372036854775808], 'steps': [-1]", 5,
                 (double[]){4, 3, 2, 1, 0});
    ck_slice_run("'starts': [-9223372036854775808], 'ends': [9223372036854775807], 'steps': [-1]", 0, NULL);
    ck_slice_run("'starts': [9223372036854775807], 'ends': [-9223372036854775808], 'steps': [-9223372036854775808]",
                 1, (double[]){4});
    ck_slice_run("'starts': [9007199254740993], 'ends': [-9007199254740993], 'steps': [-2]", 3, (double[]){4, 2, 0});
    /* Every integer attribute is read the same way: exact values past 2^53
     * reach the op, whose own check answers. */
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': -9223372036854775808}")),
           GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].axis", "");
    ck_assert_ptr_nonnull(strstr(E.message, "axis -9223372036854775808 is out of range"));
    ck_err(dec(two_nodes("{'name': 's', 'op': 'transpose', 'inputs': ['x'], 'axes': [9223372036854775807]}")),
           GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].axes", "");
    ck_assert_ptr_nonnull(strstr(E.message, "(9223372036854775807) is out of range"));
    ck_err(dec(two_nodes("{'name': 's', 'op': 'reshape', 'inputs': ['x'], 'shape': [9007199254740993, -1]}")),
           GD_E_SHAPE_MISMATCH, "$.graph.nodes[1].shape", "");
    ck_assert_ptr_nonnull(strstr(E.message, "into [9007199254740993, -1]"));
    ck_err(dec(two_nodes("{'name': 's', 'op': 'broadcast_to', 'inputs': ['x'], 'shape': [9223372036854775807, 2]}")),
           GD_E_TOO_LARGE, "$.graph.nodes[1]", "");
    ck_ok(dec("{'graph': {'nodes': [{'name': 'i', 'op': 'input', 'dtype': 'int64'}, {'name': 's', 'op': 'one_hot',"
              " 'inputs': ['i'], 'depth': 9007199254740993}]}, 'values': {'i': {'shape': [0], 'data': []}},"
              " 'target': 's', 'wrt': ['i']}"));
    ck_assert_int_eq(node("s")->attrs->depth.v[0], 9007199254740993);
    ck_assert_int_eq(state("s")->meta.shape.dim[1], 9007199254740993);
    ck_err(dec("{'graph': {'nodes': [{'name': 'x', 'op': 'input', 'shape': [9223372036854775807]}]},"
               " 'values': {'x': [1]}, 'target': 'x'}"),
           GD_E_SHAPE_MISMATCH, "$.graph.nodes[0]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "[9223372036854775807]"));
    /* Beyond int64, and doubles past 2^53 (maybe rounded): refused, at the entry. */
    ck_err(dec(slice_req("'starts': [0], 'ends': [9223372036854775808]")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].ends[0]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "outside the int64 range"));
    ck_err(dec(slice_req("'starts': [0, -9223372036854775809], 'ends': [1, 1]")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].starts[1]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "not exact beyond 2^53"));
    ck_err(dec(slice_req("'starts': [0, -99999999999999999999], 'ends': [1, 1]")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].starts[1]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "outside the int64 range"));
    /* An integer beyond int64 elsewhere in the body (a float64 value here)
     * leaves the attributes' integers exact. */
    ck_ok(dec("{'graph': {'nodes': [{'name': 'x', 'op': 'input'}, {'name': 'y', 'op': 'slice', 'inputs': ['x'],"
              " 'starts': [9007199254740993], 'ends': [9223372036854775807], 'steps': [-1]}]},"
              " 'values': {'x': [100000000000000000000, -1]}, 'target': 'y'}"));
    ck_assert_int_eq(node("y")->attrs->starts.v[0], 9007199254740993);
    ck_assert_int_eq(node("y")->attrs->ends.v[0], INT64_MAX);
    ck_assert_double_eq(gd_f64(val("x"))[0], 1e20);
    ck_err(dec(slice_req("'starts': [0], 'ends': [1e17]")), GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].ends[0]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "not exact beyond 2^53"));
    ck_err(dec(two_nodes("{'name': 's', 'op': 'sum', 'inputs': ['x'], 'axis': 1e300}")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].axis", "");
    ck_assert_ptr_nonnull(strstr(E.message, "outside the int64 range"));
    ck_err(dec("{'graph': {'nodes': [{'name': 'i', 'op': 'input', 'dtype': 'int64'}, {'name': 's', 'op': 'one_hot',"
               " 'inputs': ['i'], 'depth': 18446744073709551616}]}, 'values': {'i': [0]}, 'target': 's'}"),
           GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].depth", "");
    ck_assert_ptr_nonnull(strstr(E.message, "outside the int64 range"));
    /* Small integral doubles stay exact; non-integers and long lists keep their message. */
    ck_ok(dec(slice_req("'starts': [1.0], 'ends': [3e0]")));
    ck_assert_int_eq(node("y")->attrs->ends.v[0], 3);
    ck_err(dec(slice_req("'starts': [0], 'ends': [1.5]")), GD_E_INVALID_ATTRIBUTE, "$.graph.nodes[1].ends", "");
    ck_assert_ptr_nonnull(strstr(E.message, "must be a list of at most 8 integers"));
    ck_err(dec(slice_req("'starts': [0], 'ends': [1, 1, 1, 1, 1, 1, 1, 1, 1]")), GD_E_INVALID_ATTRIBUTE,
           "$.graph.nodes[1].ends", "");
}
END_TEST

/* A8: the errors of a node that only an untaken cond branch needs never
 * fire, through the decoder (which knows the targets and fetches) too. */
static const char *empty_max_req(int p, const char *target, const char *fetch) {
    return gd_arena_printf(A, "{'graph': {'nodes': [{'name': 'p', 'op': 'input'}, {'name': 'e', 'op': 'input'},"
                              " {'name': 'b', 'op': 'variable'}, {'name': 'm', 'op': 'max', 'inputs': ['e']},"
                              " {'name': 'c', 'op': 'cond', 'inputs': ['p', 'm', 'b']}]},"
                              " 'values': {'p': %d, 'e': {'shape': [0], 'data': []}, 'b': 2.5},"
                              " 'target': '%s', 'fetch': [%s]}",
                           p, target, fetch);
}

START_TEST(decode_untaken_branch_errors) {
    gd_run_result res;
    ck_ok(dec_run(empty_max_req(0, "c", "'m'"), &res));
    ck_assert_double_eq(gd_f64(res.targets[0])[0], 2.5);
    ck_assert_ptr_null(res.fetched[0]);
    ck_err(dec_run(empty_max_req(1, "c", "'m'"), &res), GD_E_INVALID_VALUE, "$.graph.nodes[3]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "no elements"));
    /* Named as the target, m is needed outright: refused by the decoder. */
    ck_err(dec(empty_max_req(0, "m", "")), GD_E_INVALID_VALUE, "$.graph.nodes[3]", "");
}
END_TEST

/* A taken branch's static errors come before its missing values, as
 * everywhere else: e declares shape [0] and is not sent, so max(e) fails on
 * its shape alone whatever e's value (k, evaluated first, is missing too). */
static const char *declared_empty_req(int p) {
    return gd_arena_printf(A, "{'graph': {'nodes': [{'name': 'p', 'op': 'input'},"
                              " {'name': 'e', 'op': 'input', 'shape': [0]}, {'name': 'k', 'op': 'input'},"
                              " {'name': 'b', 'op': 'variable'}, {'name': 'm', 'op': 'max', 'inputs': ['e']},"
                              " {'name': 's', 'op': 'add', 'inputs': ['k', 'm']},"
                              " {'name': 'c', 'op': 'cond', 'inputs': ['p', 's', 'b']}]},"
                              " 'values': {'p': %d, 'b': 2.5}, 'target': 'c'}",
                           p);
}

/* A leaf whose value has another shape than it declares is a check on a
 * value's shape: it fires only when a taken branch needs the leaf. */
static const char *declared_mismatch_req(int p) {
    return gd_arena_printf(A, "{'graph': {'nodes': [{'name': 'p', 'op': 'input'},"
                              " {'name': 'a', 'op': 'variable', 'shape': [2]}, {'name': 'b', 'op': 'variable'},"
                              " {'name': 'n', 'op': 'neg', 'inputs': ['a']},"
                              " {'name': 'c', 'op': 'cond', 'inputs': ['p', 'n', 'b']}]},"
                              " 'values': {'p': %d, 'a': [1, 2, 3], 'b': [4, 5]}, 'target': 'c',"
                              " 'target_grad': [1, 1]}",
                           p);
}

START_TEST(decode_taken_branch_error_order) {
    gd_run_result res;
    ck_ok(dec_run(declared_empty_req(0), &res));
    ck_assert_double_eq(gd_f64(res.targets[0])[0], 2.5);
    ck_err(dec_run(declared_empty_req(1), &res), GD_E_INVALID_VALUE, "$.graph.nodes[4]", "");

    ck_ok(dec_run(declared_mismatch_req(0), &res));
    ck_assert_int_eq(res.targets[0]->shape.rank, 1);
    ck_assert_int_eq(res.targets[0]->shape.dim[0], 2);
    ck_assert_double_eq(gd_f64(res.targets[0])[1], 5);
    ck_err(dec_run(declared_mismatch_req(1), &res), GD_E_SHAPE_MISMATCH, "$.graph.nodes[1]", "");
    ck_assert_ptr_nonnull(strstr(E.message, "declares shape [2] but its value has shape [3]"));
}
END_TEST

/* ---- registered graphs (A3) ---------------------------------------------------- */

/* Numbers as RFC 8785 lays them out (ECMAScript's Number::toString). */
START_TEST(canon_numbers) {
    static const struct { double v; const char *want; } cases[] = {
        {0.0, "0"}, {-0.0, "0"}, {1.0, "1"}, {-2.0, "-2"}, {0.1, "0.1"}, {100.0, "100"}, {1.5, "1.5"},
        {123456.789, "123456.789"}, {1e-6, "0.000001"}, {1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {2.5e-5, "0.000025"},
        {1e16, "10000000000000000"}, {1e20, "100000000000000000000"}, {1e21, "1e+21"}, {1.5e21, "1.5e+21"},
        {1e300, "1e+300"}, {-1e-300, "-1e-300"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123456789012345680.0, "123456789012345680"}, {0.000123, "0.000123"}, {4.35, "4.35"}, {1e-5, "0.00001"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[40];
        gd_canon_number(b, cases[i].v);
        ck_assert_msg(!strcmp(b, cases[i].want), "%.17g: got %s, want %s", cases[i].v, b, cases[i].want);
    }
}
END_TEST

/* Keys sorted by UTF-8 bytes, strings escaped as RFC 8785, integers exact. */
START_TEST(canon_json) {
    const char *text = "{\"b\": [1, 1.0, 9223372036854775807, -9223372036854775808, 1e300, true, null],"
                       " \"a\\u00e9\": \"q\\\"\\\\\\/\\u0001\\u001f\\b\\t\\n\\f\\r\\u007f\\u00e9\\ud83d\\ude00\","
                       " \"a\": {}, \"\\u00e9\": [], \"B\": false}";
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    gd_buf b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_canon_json(&b, j), 0);
    ck_assert_str_eq(b.data, "{\"B\":false,\"a\":{},\"a\xc3\xa9\":\"q\\\"\\\\/\\u0001\\u001f\\b\\t\\n\\f\\r\x7f\xc3\xa9"
                             "\xf0\x9f\x98\x80\",\"b\":[1,1,9223372036854775807,-9223372036854775808,1e+300,true,null],"
                             "\"\xc3\xa9\":[]}");
    gd_buf_free(&b);
    json_decref(j);
}
END_TEST

/* A registered graph decoded once (gd_decode_graph), then used by requests
 * through a lookup: the answers are those of the inline graph, errors keep
 * their $.graph paths, and the held graph is never written by a request. */
static const gd_graph *HELD;
static const gd_graph *lookup_one(void *arg, const char *id) {
    return !strcmp(id, (const char *)arg) ? HELD : NULL;
}

START_TEST(decode_registered) {
    gd_arena *held = gd_arena_new_small(0);
    gd_graph *g;
    gd_buf canon;
    gd_buf_init(&canon);
    const char *reg = J("{'graph': {'nodes': [{'name': 'x', 'op': 'variable', 'shape': [2]},"
                        " {'name': 'c', 'op': 'constant', 'value': [2, 3]}, {'name': 'p', 'op': 'input', 'dtype': 'float32'},"
                        " {'name': 'm', 'op': 'mul', 'inputs': ['x', 'c']}, {'name': 'loss', 'op': 'sum', 'inputs': ['m']}]}}");
    ck_ok(gd_decode_graph(A, held, reg, strlen(reg), NULL, &g, &canon, &E));
    ck_assert_str_eq(canon.data, "{\"nodes\":[{\"name\":\"x\",\"op\":\"variable\",\"shape\":[2]},{\"name\":\"c\",\"op\":"
                                 "\"constant\",\"value\":[2,3]},{\"dtype\":\"float32\",\"name\":\"p\",\"op\":\"input\"},"
                                 "{\"inputs\":[\"x\",\"c\"],\"name\":\"m\",\"op\":\"mul\"},{\"inputs\":[\"m\"],\"name\":"
                                 "\"loss\",\"op\":\"sum\"}]}");
    gd_buf_free(&canon);
    HELD = g;
    size_t bytes = gd_arena_live(held);
    unsigned char *before = malloc(sizeof(gd_node) * (size_t)g->n);
    memcpy(before, g->nodes, sizeof(gd_node) * (size_t)g->n);
    gd_nstate st2 = g->st[2];
    gd_decode_limits lim = {.lookup = lookup_one, .lookup_arg = (void *)"id1"};
    ck_ok(dec_full("{'graph_id': 'id1', 'values': {'x': [1, 5], 'p': {'shape': [1], 'dtype': 'float32', 'data': [1]}},"
                   " 'target': 'loss'}", NULL, 0, GD_EP_GRAD, &lim));
    ck_assert_ptr_eq(R.graph->nodes, g->nodes); /* shared, not copied */
    gd_run_result res;
    ck_ok(gd_run(R.graph, &R.spec, &res, &E));
    ck_assert_double_eq(gd_f64(res.targets[0])[0], 17.0);
    ck_assert_double_eq(gd_f64(res.grads[0])[1], 3.0);
    ck_assert_int_eq(R.graph->st[2].transport_f32, 1);
    /* errors: values, names and inferred shapes, at the inline paths */
    ck_err(dec_full("{'graph_id': 'id1', 'values': {'x': [1, 5, 6]}, 'target': 'loss'}", NULL, 0, GD_EP_GRAD, &lim),
           GD_E_SHAPE_MISMATCH, "$.graph.nodes[0]", "");
    ck_err(dec_full("{'graph_id': 'id1', 'values': {'x': [1, 5]}, 'target': 'los'}", NULL, 0, GD_EP_GRAD, &lim),
           GD_E_UNKNOWN_NODE, "$.target", "loss");
    ck_err(dec_full("{'graph_id': 'id2', 'values': {'x': [1, 5]}, 'target': 'loss'}", NULL, 0, GD_EP_GRAD, &lim),
           GD_E_UNKNOWN_GRAPH, "$.graph_id", "");
    ck_err(dec_full("{'graph_id': 'id1', 'graph': {'nodes': []}, 'target': 'loss'}", NULL, 0, GD_EP_GRAD, &lim),
           GD_E_INVALID_REQUEST, "$.graph_id", "");
    ck_err(dec_full("{'graph_id': 'id1', 'target': 'loss'}", NULL, 0, GD_EP_GRAD, NULL), GD_E_UNKNOWN_GRAPH,
           "$.graph_id", "");
    ck_assert_msg(!memcmp(before, g->nodes, sizeof(gd_node) * (size_t)g->n), "a request wrote the held nodes");
    ck_assert_msg(!memcmp(&st2, &g->st[2], sizeof st2), "a request wrote the held states");
    ck_assert_int_eq(gd_arena_live(held), bytes);
    free(before);
    /* Registration errors are /v1/grad's, at the same paths. */
    gd_arena *h2 = gd_arena_new_small(0);
    const char *cyc = J("{'graph': {'nodes': [{'name': 'a', 'op': 'exp', 'inputs': ['b']},"
                        " {'name': 'b', 'op': 'exp', 'inputs': ['a']}]}}");
    gd_buf_init(&canon);
    ck_err(gd_decode_graph(A, h2, cyc, strlen(cyc), NULL, &g, &canon, &E), GD_E_CYCLE, "$.graph.nodes[0].inputs", "");
    const char *extra = J("{'graph': {'nodes': []}, 'values': {}}");
    ck_err(gd_decode_graph(A, h2, extra, strlen(extra), NULL, &g, &canon, &E), GD_E_UNKNOWN_KEY, "$.values", "");
    gd_buf_free(&canon);
    gd_arena_free(h2);
    gd_arena_free(held);
}
END_TEST

/* The answer of one request as text, bit for bit: the code (and error path),
 * every target, gradient and fetched element in %a, every diagnostic's code,
 * severity, nodes, message and origin. In A, like the request. */
static const char *answer_text(const char *body_sq, int ep, const gd_decode_limits *lim) {
    gd_buf b;
    gd_buf_init(&b);
    memset(&R, 0, sizeof R);
    int rc = dec_full(body_sq, NULL, 0, ep, lim);
    gd_run_result res;
    if (!rc) rc = gd_run(R.graph, &R.spec, &res, &E);
    gd_buf_printf(&b, "rc %d %s at %s\n", rc, rc ? E.message : "", rc ? E.at : "");
    if (!rc) {
        const gd_tensor *const *lists[3] = {(const gd_tensor *const *)res.targets, (const gd_tensor *const *)res.grads,
                                            (const gd_tensor *const *)res.fetched};
        int counts[3] = {R.spec.n_targets, R.spec.grad ? R.spec.n_wrt : 0, R.spec.n_fetch};
        for (int l = 0; l < 3; l++)
            for (int k = 0; k < counts[l]; k++) {
                const gd_tensor *t = lists[l][k];
                gd_buf_printf(&b, "%d.%d:", l, k);
                for (int64_t i = 0; t && i < t->n; i++) {
                    uint64_t u;
                    memcpy(&u, (const char *)t->data + 8 * i, 8);
                    gd_buf_printf(&b, " %016llx", (unsigned long long)u);
                }
                gd_buf_printf(&b, "\n");
            }
        for (int k = 0; k < res.n_diags; k++) {
            const gd_diag *d = &res.diags[k];
            gd_buf_printf(&b, "diag %d %d %d %d %s\n", (int)d->code, d->is_error, d->wrt, d->node, d->message);
        }
        ck_assert_msg(!res.planned_bytes || res.planned_bytes >= res.peak_bytes, "plan %zu under the peak %zu",
                      res.planned_bytes, res.peak_bytes);
    }
    char *text = gd_arena_strdup(A, b.data ? b.data : "");
    gd_buf_free(&b);
    return text;
}

static int memo_ready(const gd_graph *g, int plans) {
    int n = 0;
    for (int i = 0; i < GD_MEMO_SLOTS; i++)
        n += atomic_load(plans ? &g->memo->plan[i].state : &g->memo->infer[i].state) == GD_MEMO_READY;
    return n;
}

/* A held graph keeps the metas and the memory plan of a request signature
 * (graph.h's gd_memo): a request with the same leaf shapes and spec reuses
 * them, any other shape, target, wrt set or endpoint computes them afresh
 * (and keeps them while a slot is free), and every answer, values,
 * gradients and diagnostics included, is the one the same graph sent
 * inline (never memoized) gives. */
START_TEST(registered_memo_by_signature) {
    gd_arena *held = gd_arena_new_small(0);
    gd_graph *g;
    gd_buf canon;
    gd_buf_init(&canon);
    const char *nodes = "{'nodes': [{'name': 'x', 'op': 'variable'}, {'name': 'w', 'op': 'variable'},"
                        " {'name': 'm', 'op': 'mul', 'inputs': ['x', 'w']}, {'name': 's', 'op': 'sum', 'inputs': ['m']},"
                        " {'name': 'lg', 'op': 'log', 'inputs': ['s']}, {'name': 't', 'op': 'tanh', 'inputs': ['m']}]}";
    char reg[1024];
    snprintf(reg, sizeof reg, "{'graph': %s}", nodes);
    const char *regj = J(reg);
    ck_ok(gd_decode_graph(A, held, regj, strlen(regj), NULL, &g, &canon, &E));
    gd_buf_free(&canon);
    ck_assert_ptr_nonnull(g->memo);
    HELD = g;
    gd_decode_limits lim = {.lookup = lookup_one, .lookup_arg = (void *)"id1"};
    static const struct {
        int ep;
        const char *rest;       /* the request after its graph */
        int infer, plans;       /* ready slots after it */
        int memo_infer;         /* the slot its metas came from (0: none) */
    } cases[] = {
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 'lg'", 1, 1, 1},
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 'lg'", 1, 1, 1},  /* both reused */
        {GD_EP_GRAD, "'values': {'x': [5, 6], 'w': [7, 8]}, 'target': 'lg'", 1, 1, 1},  /* other values: reused */
        {GD_EP_GRAD, "'values': {'x': [1, 2, 3], 'w': [1, 1, 1]}, 'target': 'lg'", 2, 2, 2}, /* shape: afresh */
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 'lg', 'wrt': ['x']", 2, 3, 1}, /* wrt */
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 's', 'wrt': ['x']", 2, 4, 1}, /* target */
        {GD_EP_GRAD, "'values': {'x': [-1, -2], 'w': [3, 4]}, 'target': 'lg'", 2, 4, 1},  /* NaN: diagnosed */
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [0, 0]}, 'target': 'lg'", 2, 4, 1},    /* log(0): diagnosed */
        {GD_EP_GRAD, "'values': {'x': [1e-300, 1], 'w': [1e-300, 0]}, 'target': 'lg', 'wrt': ['x']", 2, 4, 1},
        {GD_EP_EVAL, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 'lg', 'fetch': ['t']", 2, 4, 1}, /* every slot taken */
        {GD_EP_GRAD, "'values': {'x': 2, 'w': [3, 4]}, 'target': 'lg'", 3, 4, 3},          /* broadcast */
        {GD_EP_GRAD, "'values': {'x': [[1], [2]], 'w': [3, 4]}, 'target': 'lg'", 4, 4, 4},
        {GD_EP_GRAD, "'values': {'x': [[1, 2]], 'w': [3, 4]}, 'target': 'lg'", 4, 4, 0},  /* no slot left */
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4, 5]}, 'target': 'lg'", 4, 4, 0},  /* an error, as inline */
        {GD_EP_GRAD, "'values': {'x': [1, 2], 'w': [3, 4]}, 'target': 'lg'", 4, 4, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body, "{'graph': %s, %s}", nodes, cases[i].rest);
        const char *inline_text = answer_text(body, cases[i].ep, NULL);
        ck_assert_ptr_null(R.graph ? R.graph->memo : NULL); /* a graph of one request keeps nothing */
        snprintf(body, sizeof body, "{'graph_id': 'id1', %s}", cases[i].rest);
        const char *held_text = answer_text(body, cases[i].ep, &lim);
        ck_assert_msg(!strcmp(inline_text, held_text), "case %zu: registered\n%s\ninline\n%s", i, held_text,
                      inline_text);
        ck_assert_msg(memo_ready(g, 0) == cases[i].infer && memo_ready(g, 1) == cases[i].plans,
                      "case %zu: %d inference and %d plan slots, want %d and %d", i, memo_ready(g, 0),
                      memo_ready(g, 1), cases[i].infer, cases[i].plans);
        if (!strncmp(held_text, "rc 0", 4))
            ck_assert_msg(R.graph->memo_infer == cases[i].memo_infer, "case %zu: metas from slot %d, want %d", i,
                          R.graph->memo_infer, cases[i].memo_infer);
    }
    gd_arena_free(held);
}
END_TEST

/* The paths built without printf read as printf would write them, up to
 * and past the fixed size (truncated, NUL-terminated, n == strlen). */
START_TEST(jpath_appends_match_printf) {
    gd_jpath p;
    char want[GD_ERR_AT_MAX + 64];
    gd_jp_set(&p, "$.graph.nodes");
    gd_jp_index(&p, 0);
    gd_jp_key(&p, "inputs");
    gd_jp_index(&p, 18446744073709551615u);
    gd_jp_key(&p, "a.b");
    ck_assert_str_eq(p.s, "$.graph.nodes[0].inputs[18446744073709551615][\"a.b\"]");
    ck_assert_uint_eq(p.n, strlen(p.s));
    char longkey[400];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    for (int cut = 0; cut < 40; cut++) { /* every truncation point near the end */
        char base[GD_ERR_AT_MAX + 16];
        memset(base, 'b', sizeof base - 1);
        base[GD_ERR_AT_MAX - 30 + cut] = 0;
        gd_jp_set(&p, base);
        gd_jp_index(&p, 123456789);
        gd_jp_key(&p, "name");
        gd_jp_index(&p, 7);
        snprintf(want, sizeof want, "%s[123456789].name[7]", base);
        want[GD_ERR_AT_MAX - 1] = 0; /* what fits the path */
        ck_assert_str_eq(p.s, want);
        ck_assert_uint_eq(p.n, strlen(p.s));
    }
    gd_jp_set(&p, longkey);
    ck_assert_uint_eq(p.n, GD_ERR_AT_MAX - 1);
    gd_jp_pop(&p, 1);
    gd_jp_key(&p, longkey);
    ck_assert_uint_eq(p.n, GD_ERR_AT_MAX - 1);
    ck_assert(p.s[1] == '.' && p.s[2] == 'k');
}
END_TEST

/* The parsed tree is charged to the request's arena as malloc would hold
 * it, also now that its small blocks come from the decoding thread's pages:
 * the same body costs the same in every arena, all of it is handed back
 * when the decode ends (live afterwards is the graph's alone, the same
 * every time), and a limit one byte below the peak refuses the request
 * (too_large) while the peak itself admits it, decode after decode. */
START_TEST(json_tree_charged_like_malloc) {
    gd_buf b;
    gd_buf_init(&b);
    gd_buf_printf(&b, "{\"graph\":{\"nodes\":[{\"name\":\"n0\",\"op\":\"variable\"}");
    for (int i = 1; i < 500; i++)
        gd_buf_printf(&b, ",{\"name\":\"n%d\",\"op\":\"tanh\",\"inputs\":[\"n%d\"]}", i, i - 1);
    gd_buf_printf(&b, "]},\"values\":{\"n0\":0.5},\"target\":\"n499\",\"wrt\":[\"n0\"]}");
    size_t peak = 0, live = 0;
    for (int round = 0; round < 4; round++) {
        gd_arena *a = gd_arena_new(0);
        gd_request r;
        gd_error e;
        ck_assert_int_eq(gd_decode_request(a, b.data, b.len, NULL, 0, GD_EP_GRAD, NULL, &r, &e), 0);
        if (round == 0) peak = gd_arena_peak(a), live = gd_arena_live(a);
        ck_assert_uint_eq(gd_arena_peak(a), peak);
        ck_assert_uint_eq(gd_arena_live(a), live);
        gd_arena_free(a);
    }
    ck_assert_uint_gt(peak, live + 500 * 100); /* the tree was charged: ~300 bytes a node */
    for (int round = 0; round < 2; round++) {
        gd_arena *tight = gd_arena_new(peak - 1), *exact = gd_arena_new(peak);
        gd_request r;
        gd_error e;
        ck_assert_int_eq(gd_decode_request(tight, b.data, b.len, NULL, 0, GD_EP_GRAD, NULL, &r, &e), GD_E_TOO_LARGE);
        ck_assert_int_eq(gd_decode_request(exact, b.data, b.len, NULL, 0, GD_EP_GRAD, NULL, &r, &e), 0);
        gd_arena_free(tight);
        gd_arena_free(exact);
    }
    gd_buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------------------
 * The picture's DOT text (proto/explain.h). */

/* The DOT text of a decoded and run request, in the arena. */
static const char *explain_text(const char *sq) {
    gd_run_result res;
    ck_assert_int_eq(dec_run(sq, &res), 0);
    gd_buf b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_explain_dot(&b, &R, &res), 0);
    const char *t = gd_arena_strdup(A, b.data);
    gd_buf_free(&b);
    return t;
}

/* A name is quoted and escaped wherever it appears, so that no name adds a
 * statement or an attribute, and shown as typed (a label's backslash
 * doubled for Graphviz's escapes, `&` as an entity). */
START_TEST(explain_dot_escapes_names) {
    const char *t = explain_text("{'graph': {'nodes': [{'name': 'a\\'];x', 'op': 'variable'},"
                                 " {'name': 'b\\\\&', 'op': 'neg', 'inputs': ['a\\'];x']}]},"
                                 " 'values': {'a\\'];x': 1.0}, 'target': 'b\\\\&'}");
    ck_assert_ptr_nonnull(strstr(t, "  \"a\\\"];x\" [id=\"n0\", class=\"leaf wrt\", label=\"a\\\"];x\\nvariable []\\nwrt\""));
    ck_assert_ptr_nonnull(strstr(t, "  \"b\\\\&\" [id=\"n1\", class=\"op target\", label=\"b\\\\&amp;\\nneg []\\ntarget\""));
    ck_assert_ptr_nonnull(strstr(t, "  \"a\\\"];x\" -> \"b\\\\&\" [id=\"e1_0\", class=\"grad\"];\n"));
}
END_TEST

/* The marks: a stop_gradient edge blocked with its reason and on the error's
 * path; an int64 edge blocked as such; the target and wrt classes. */
START_TEST(explain_dot_marks) {
    const char *t = explain_text("{'graph': {'nodes': [{'name': 'w', 'op': 'variable'}, {'name': 'x', 'op': 'variable'},"
                                 " {'name': 's', 'op': 'stop_gradient', 'inputs': ['w']},"
                                 " {'name': 'k', 'op': 'cast', 'inputs': ['x'], 'dtype': 'int64'},"
                                 " {'name': 'y', 'op': 'mul', 'inputs': ['s', 'k']}, {'name': 'l', 'op': 'sum', 'inputs': ['y']}]},"
                                 " 'values': {'w': [1, 2], 'x': [3, 4]}, 'target': 'l'}");
    ck_assert_ptr_nonnull(strstr(t, "\"w\" -> \"s\" [id=\"e2_0\", class=\"blocked stop_gradient path\", color=\"" GD_EXPLAIN_BLOCKED "\""));
    ck_assert_ptr_nonnull(strstr(t, "style=dashed, label=\"stop_gradient\""));
    ck_assert_ptr_nonnull(strstr(t, "\"x\" -> \"k\" [id=\"e3_0\", class=\"blocked non_differentiable path\""));
    ck_assert_ptr_nonnull(strstr(t, "\"k\" -> \"y\" [id=\"e4_1\", class=\"blocked int64 path\""));
    ck_assert_ptr_nonnull(strstr(t, "\"l\" [id=\"n5\", class=\"op target path\""));
    ck_assert_ptr_nonnull(strstr(t, "\"w\" [id=\"n0\", class=\"leaf wrt nograd path\""));
    ck_assert_ptr_nonnull(strstr(t, "label=\"k\\ncast [2] int64\""));
}
END_TEST

Suite *suite_proto(void) {
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, decode_number_and_nested);
    tcase_add_test(tc, jpath_appends_match_printf);
    tcase_add_test(tc, json_tree_charged_like_malloc);
    tcase_add_test(tc, decode_non_finite_strings);
    tcase_add_test(tc, decode_flat);
    tcase_add_test(tc, decode_b64);
    tcase_add_test(tc, decode_int64);
    tcase_add_test(tc, decode_declared_dtypes);
    tcase_add_test(tc, decode_ragged);
    tcase_add_test(tc, decode_binary);
    tcase_add_test(tc, decode_request_fields);
    tcase_add_test(tc, decode_eval_endpoint);
    tcase_add_test(tc, decode_errors_json_and_structure);
    tcase_add_test(tc, decode_errors_names);
    tcase_add_test(tc, decode_errors_graph);
    tcase_add_test(tc, decode_then_run_errors);
    tcase_add_test(tc, decode_limits);
    tcase_add_test(tc, decode_int64_attributes);
    tcase_add_test(tc, decode_untaken_branch_errors);
    tcase_add_test(tc, decode_taken_branch_error_order);
    tcase_add_test(tc, decode_registered);
    tcase_add_test(tc, registered_memo_by_signature);
    tcase_add_test(tc, canon_numbers);
    tcase_add_test(tc, canon_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_set_timeout(tc, 30); /* encode_fmt_double/float sweep many values: ~0.1 s here */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, encode_fmt_double);
    tcase_add_test(tc, encode_fmt_float);
    tcase_add_test(tc, encode_json_string);
    tcase_add_test(tc, encode_roundtrip_nested);
    tcase_add_test(tc, encode_roundtrip_flat);
    tcase_add_test(tc, encode_roundtrip_b64);
    tcase_add_test(tc, encode_put_bound);
    tcase_add_test(tc, encode_roundtrip_binary);
    tcase_add_test(tc, encode_binary_feeds_back);
    tcase_add_test(tc, binary_body_read_only);
    tcase_add_test(tc, encode_contract_example);
    tcase_add_test(tc, encode_no_gradients);
    tcase_add_test(tc, encode_no_variables);
    tcase_add_test(tc, sce_float_labels_hint);
    tcase_add_test(tc, encode_stops_when_cancelled);
    tcase_add_test(tc, encode_error_body);
    tcase_add_test(tc, encode_ops);
    suite_add_tcase(s, tc);

    tc = tcase_create("explain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, explain_dot_escapes_names);
    tcase_add_test(tc, explain_dot_marks);
    suite_add_tcase(s, tc);

    tc = tcase_create("mutations");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, decode_mutations);
    suite_add_tcase(s, tc);
    return s;
}
