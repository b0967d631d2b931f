/* decode.c - JSON request -> checked gd_graph + gd_run_spec (see decode.h).
 *
 * The body is parsed once by jansson (integers as reals, duplicate keys
 * rejected); this file then walks the tree: request keys, nodes (op, inputs,
 * attributes decoded generically from the op table's attribute specs), leaf
 * values in every tensor form of the contract, targets, wrt, fetch. Sizes are
 * checked before allocation. It does not run anything and never speaks HTTP. */
#include "decode.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: integers a double holds exactly */

const char *gd_tensor_format_name(gd_tensor_format f) {
    static const char *names[] = {"nested", "flat", "b64", "binary"};
    return (f >= GD_TF_NESTED && f <= GD_TF_BINARY) ? names[f] : "nested";
}

float gd_to_f32(double v) {
    /* Halfway between FLT_MAX and the next power of two: from here on
     * round-to-nearest gives infinity. */
    const double overflow = 0x1.ffffffp127;
    if (isnan(v)) return NAN;
    if (v >= overflow) return INFINITY;
    if (v <= -overflow) return -INFINITY;
    if (v > FLT_MAX) return FLT_MAX;
    if (v < -FLT_MAX) return -FLT_MAX;
    return (float)v;
}

/* ---- decoding context and JSON paths -------------------------------------- */

typedef struct bref {
    uint64_t off, len;   /* byte range in the binary section */
    int ordinal;         /* order of appearance in the request */
    const char *path;    /* arena copy, for the error */
} bref;

typedef struct dctx {
    gd_arena *a;
    const unsigned char *bin; /* NULL: plain JSON */
    size_t bin_len;
    int64_t max_elements;
    gd_error *err;
    gd_graph *g;
    bref *refs; /* binary references, checked for overlap once all are read */
    int n_refs, cap_refs;
} dctx;

/* A JSON path being built in place; appends truncate (never overrun) and
 * `pop` restores an earlier length. */
typedef struct jpath {
    char s[GD_ERR_AT_MAX];
    size_t n;
} jpath;

static void jp_set(jpath *p, const char *s) {
    snprintf(p->s, sizeof p->s, "%s", s);
    p->n = strlen(p->s);
}

static void jp_addf(jpath *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jp_addf(jpath *p, const char *fmt, ...) {
    if (p->n >= sizeof p->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->s + p->n, sizeof p->s - p->n, fmt, ap);
    va_end(ap);
    p->n = strlen(p->s);
}

static void jp_index(jpath *p, size_t i) { jp_addf(p, "[%zu]", i); }

/* ".key" when the key reads unambiguously after a dot, else ["key"] with the
 * key as a JSON string (names may hold dots, brackets and quotes). */
static void jp_key(jpath *p, const char *key) {
    int plain = key[0] != '\0';
    for (const char *k = key; *k && plain; k++)
        if (strchr(".[]\"'\\", *k) || (unsigned char)*k <= 0x20 || (unsigned char)*k == 0x7f) plain = 0;
    if (plain) {
        jp_addf(p, ".%s", key);
        return;
    }
    jp_addf(p, "[\"");
    for (const char *k = key; *k && p->n < sizeof p->s - 1; k++) {
        if (*k == '"' || *k == '\\') jp_addf(p, "\\%c", *k);
        else if ((unsigned char)*k < 0x20) jp_addf(p, "\\u%04x", (unsigned)(unsigned char)*k);
        else jp_addf(p, "%c", *k);
    }
    jp_addf(p, "\"]");
}

static void jp_pop(jpath *p, size_t n) {
    p->n = n;
    p->s[n] = '\0';
}

static int oom(dctx *c) {
    return gd_errorf(c->err, GD_E_TOO_LARGE, NULL,
                     "The request needs more memory than this server allows for one request.");
}

/* "a number", "a string", ... for messages about wrong types. */
static const char *json_kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static int wrong_type(dctx *c, const jpath *p, const char *what, const json_t *j) {
    return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s, "%s must be %s, not %s.", p->s, what, json_kind(j));
}

/* An exact integer with |v| <= 2^53, read from a JSON number. The body is
 * parsed with integers kept as integers (see gd_decode_request), so a JSON
 * integer is exact and is compared as one; a number written with a fraction
 * or an exponent ("3.0", "1e3") arrives as a double and is accepted when it is
 * integral with |v| < 2^53, since a double at 2^53 may be a rounded 2^53 + 1.
 * (A body holding an integer beyond json_int_t is read with every integer as
 * a double; there the same strict bound applies to all of them.)
 * Returns 1 with *out set, or 0. */
static int exact_int(const json_t *j, int64_t *out) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v > (json_int_t)MAX_SAFE_INT || v < -(json_int_t)MAX_SAFE_INT) return 0;
        *out = (int64_t)v;
        return 1;
    }
    if (!json_is_real(j)) return 0;
    double v = json_real_value(j);
    if (v != floor(v) || !(fabs(v) < MAX_SAFE_INT)) return 0;
    *out = (int64_t)v;
    return 1;
}

/* ---- invalid JSON: locating a duplicate key -------------------------------- */

/* The JSON path of the object key that ends at byte `end` of `s`: jansson
 * reports a duplicate key just past the key's closing quote, and everything
 * before it is valid JSON, so a small scanner that tracks containers, object
 * keys and array indices can name it. Writes "" when it cannot tell. */
typedef struct scan_frame {
    int is_obj;
    size_t index;          /* arrays: current element */
    size_t key_at, key_len; /* objects: current key (raw text between the quotes) */
} scan_frame;

static void path_of_offset(const char *s, size_t end, jpath *out) {
    jp_set(out, "");
    size_t cap = 64, depth = 0;
    scan_frame *st = malloc(cap * sizeof *st);
    if (!st) return;
    int expect_key = 0;
    for (size_t i = 0; i < end;) {
        char ch = s[i];
        if (ch == '{' || ch == '[') {
            if (depth == cap) {
                scan_frame *bigger = realloc(st, 2 * cap * sizeof *st);
                if (!bigger) { free(st); return; }
                st = bigger, cap *= 2;
            }
            st[depth++] = (scan_frame){.is_obj = ch == '{'};
            expect_key = ch == '{';
            i++;
        } else if (ch == '}' || ch == ']') {
            if (depth) depth--;
            expect_key = 0;
            i++;
        } else if (ch == ',') {
            if (depth && st[depth - 1].is_obj) expect_key = 1;
            else if (depth) st[depth - 1].index++;
            i++;
        } else if (ch == '"') {
            size_t start = ++i;
            while (i < end && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
            if (expect_key && depth) {
                st[depth - 1].key_at = start;
                st[depth - 1].key_len = (i < end ? i : end) - start;
                expect_key = 0;
            }
            i++;
        } else {
            i++;
        }
    }
    jp_set(out, "$");
    for (size_t d = 0; d < depth; d++) {
        if (!st[d].is_obj) {
            jp_index(out, st[d].index);
            continue;
        }
        /* The key's raw text, with the escapes a key is likely to hold
         * undone (\" \\ \/); jp_key quotes it again as a path needs. */
        char key[GD_ERR_AT_MAX];
        size_t len = 0;
        const char *k = s + st[d].key_at, *kend = k + st[d].key_len;
        while (k < kend && len < sizeof key - 1) {
            if (*k == '\\' && k + 1 < kend && k[1] && strchr("\"\\/", k[1])) k++;
            key[len++] = *k++;
        }
        key[len] = '\0';
        jp_key(out, key);
    }
    free(st);
}

/* ---- tensors ---------------------------------------------------------------- */

/* How a value is to be read: the dtype it takes when untyped (-1: none
 * declared, so float64) and whether its leaf declared float32. */
typedef struct want {
    int dtype;
    int decl_f32;
} want;

/* Element count of `s` with the configured limit; too_large on overflow or
 * over the limit. Dimensions of size zero do not excuse the others: a
 * [10^12, 0] tensor is refused as well, since printing it nested would not be
 * cheap. */
static int check_numel(dctx *c, const gd_shape *s, const jpath *p, int64_t *n) {
    char buf[GD_SHAPE_STR_MAX];
    int64_t span = 1;
    for (int i = 0; i < s->rank; i++) {
        int64_t d = s->dim[i] ? s->dim[i] : 1;
        if (span > INT64_MAX / d) { span = INT64_MAX; break; }
        span *= d;
    }
    if (gd_shape_numel(s, n) || span > INT64_MAX / 8)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p->s, "The tensor at %s has shape %s, whose size overflows.", p->s,
                         gd_shape_str(s, buf, sizeof buf));
    if (c->max_elements > 0 && *n > c->max_elements)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p->s,
                         "The tensor at %s has shape %s = %lld elements; the limit is %lld.", p->s,
                         gd_shape_str(s, buf, sizeof buf), (long long)*n, (long long)c->max_elements);
    if (c->max_elements > 0 && span > c->max_elements)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p->s,
                         "The tensor at %s has shape %s: empty, but its nonzero dimensions multiply to %lld, over "
                         "the limit of %lld elements.", p->s, gd_shape_str(s, buf, sizeof buf), (long long)span,
                         (long long)c->max_elements);
    return 0;
}

/* The non-finite spellings; anything else is invalid_value, with a hint when
 * only the case (or "inf"/"nan" style) is off. */
static int parse_special(dctx *c, const char *s, const jpath *p, double *v) {
    if (!strcmp(s, "NaN")) *v = NAN;
    else if (!strcmp(s, "Infinity")) *v = INFINITY;
    else if (!strcmp(s, "-Infinity")) *v = -INFINITY;
    else {
        const char *sugg = NULL;
        if (!strcasecmp(s, "nan")) sugg = "NaN";
        else if (!strcasecmp(s, "inf") || !strcasecmp(s, "infinity") || !strcasecmp(s, "+inf")) sugg = "Infinity";
        else if (!strcasecmp(s, "-inf") || !strcasecmp(s, "-infinity")) sugg = "-Infinity";
        gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                  "%s is the string \"%.40s\"; a tensor element is a number or one of \"NaN\", \"Infinity\", "
                  "\"-Infinity\".", p->s, s);
        gd_error_suggest(c->err, sugg);
        return GD_E_INVALID_VALUE;
    }
    return 0;
}

/* One element from JSON into t's slot k: int64 must be integers with
 * |v| <= 2^53 and finite; float32 values are rounded to float32 first.
 * t->data NULL: check only. */
static int put_elem(dctx *c, const json_t *j, const jpath *p, gd_tensor *t, int f32, int64_t k) {
    double v;
    if (json_is_number(j)) v = json_number_value(j);
    else if (json_is_string(j)) {
        int rc = parse_special(c, json_string_value(j), p, &v);
        if (rc) return rc;
        if (t->dtype == GD_I64)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s is \"%s\", but the tensor is int64, which has no "
                             "NaN or Infinity.", p->s, json_string_value(j));
    } else {
        return wrong_type(c, p, "a number", j);
    }
    if (t->dtype == GD_I64) {
        int64_t iv;
        if (!exact_int(j, &iv))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "%s is %.17g, but the tensor is int64: elements must be integers with |v| <= 2^53.",
                             p->s, v);
        if (t->data) gd_i64(t)[k] = iv;
    } else if (t->data) {
        gd_f64(t)[k] = f32 ? (double)gd_to_f32(v) : v;
    }
    return 0;
}

/* Nested lists: shape from the first element at each depth, then a fill
 * that checks every list against it (ragged -> the first offending path). */
static int fill_nested(dctx *c, const json_t *j, jpath *p, const gd_shape *s, int depth, gd_tensor *t, int f32,
                       int64_t *k) {
    if (depth == s->rank) {
        char buf[GD_SHAPE_STR_MAX];
        if (json_is_array(j))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "The nested lists are ragged: %s is a list where a number was expected (shape %s "
                             "inferred from the first elements).", p->s, gd_shape_str(s, buf, sizeof buf));
        return put_elem(c, j, p, t, f32, (*k)++);
    }
    if (!json_is_array(j)) {
        if (json_is_number(j) || json_is_string(j))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "The nested lists are ragged: %s is a number where a list of %lld was expected.", p->s,
                             (long long)s->dim[depth]);
        return wrong_type(c, p, "a list or a number", j);
    }
    size_t n = json_array_size(j);
    if ((int64_t)n != s->dim[depth])
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The nested lists are ragged: %s has %zu elements where %lld were expected.", p->s, n,
                         (long long)s->dim[depth]);
    size_t mark = p->n;
    for (size_t i = 0; i < n; i++) {
        jp_index(p, i);
        int rc = fill_nested(c, json_array_get(j, i), p, s, depth + 1, t, f32, k);
        if (rc) return rc;
        jp_pop(p, mark);
    }
    return 0;
}

static int decode_nested(dctx *c, const json_t *j, jpath *p, gd_dtype dt, int f32, gd_tensor **out) {
    gd_shape s = {.rank = 0};
    const json_t *e = j;
    while (json_is_array(e)) {
        if (s.rank == GD_MAX_RANK)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "The tensor at %s has more than %d dimensions.", p->s,
                             GD_MAX_RANK);
        size_t n = json_array_size(e);
        s.dim[s.rank++] = (int64_t)n;
        if (n == 0) break;
        e = json_array_get(e, 0);
    }
    int64_t numel, k = 0;
    int rc = check_numel(c, &s, p, &numel);
    if (rc) return rc;
    /* Check the lists are rectangular and the elements valid before any
     * buffer is allocated: the first elements alone fix the shape. */
    gd_tensor probe = {.dtype = dt, .shape = s, .n = numel, .data = NULL};
    if ((rc = fill_nested(c, j, p, &s, 0, &probe, f32, &k))) return rc;
    gd_tensor *t = gd_tensor_new(c->a, &s, dt, 0);
    if (!t) return oom(c);
    k = 0;
    if ((rc = fill_nested(c, j, p, &s, 0, t, f32, &k))) return rc;
    *out = t;
    return 0;
}

/* Little-endian bytes -> elements. The tensor buffer (8 bytes an element)
 * receives the raw bytes first; float32 is then widened in place from the
 * back, where each write lands on floats already read. */
static void from_le(gd_tensor *t, int f32) {
    unsigned char *b = t->data;
    if (f32) {
        for (int64_t i = t->n - 1; i >= 0; i--) {
            uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                         (uint32_t)b[4 * i + 3] << 24;
            float f;
            memcpy(&f, &u, 4);
            double d = f;
            memcpy(b + 8 * i, &d, 8);
        }
        return;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)b;
#else
    for (int64_t i = 0; i < t->n; i++) {
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--) u = u << 8 | b[8 * i + k];
        memcpy(b + 8 * i, &u, 8);
    }
#endif
}

static int b64_digit(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Length check of standard base64 text (padding optional) against the
 * `want` bytes that shape and dtype need; *body is the text without padding.
 * Done before the tensor is allocated. */
static int check_b64(dctx *c, const char *s, size_t len, uint64_t want, size_t *body_out, const jpath *p) {
    size_t body = len;
    while (body > 0 && s[body - 1] == '=' && len - body < 2) body--;
    if ((body < len && len % 4 != 0) || body % 4 == 1)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s is not valid base64: its length is wrong.", p->s);
    uint64_t got = (uint64_t)(body / 4) * 3 + (body % 4 ? body % 4 - 1 : 0);
    if (got != want)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "%s decodes to %llu bytes, but shape and dtype need %llu.", p->s, (unsigned long long)got,
                         (unsigned long long)want);
    *body_out = body;
    return 0;
}

/* Base64 text of `body` characters (checked by check_b64) into dst. */
static int decode_b64(dctx *c, const char *s, size_t body, unsigned char *dst, const jpath *p) {
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int d = b64_digit((unsigned char)s[i]);
        if (d < 0)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "%s is not valid base64: character %zu is not in the base64 alphabet.", p->s, i);
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return 0;
}

static int add_ref(dctx *c, uint64_t off, uint64_t len, const jpath *p) {
    if (c->n_refs == c->cap_refs) {
        int cap = c->cap_refs ? 2 * c->cap_refs : 16;
        bref *r = gd_arena_alloc(c->a, sizeof *r * (size_t)cap);
        if (!r) return oom(c);
        if (c->n_refs) memcpy(r, c->refs, sizeof *r * (size_t)c->n_refs);
        c->refs = r, c->cap_refs = cap;
    }
    const char *path = gd_arena_strdup(c->a, p->s);
    if (!path) return oom(c);
    c->refs[c->n_refs] = (bref){off, len, c->n_refs, path};
    c->n_refs++;
    return 0;
}

static int cmp_ref(const void *x, const void *y) {
    const bref *a = x, *b = y;
    if (a->off != b->off) return a->off < b->off ? -1 : 1;
    return a->ordinal - b->ordinal;
}

/* No two binary references may share a byte. Sorted by offset, an overlap
 * always shows between neighbours (counting the furthest end so far); the
 * error names the later of the two in request order. */
static int check_overlaps(dctx *c) {
    if (c->n_refs < 2) return 0;
    qsort(c->refs, (size_t)c->n_refs, sizeof *c->refs, cmp_ref);
    int far = -1; /* reference reaching furthest so far */
    for (int i = 0; i < c->n_refs; i++) {
        const bref *r = &c->refs[i];
        if (r->len == 0) continue;
        if (far >= 0 && c->refs[far].off + c->refs[far].len > r->off) {
            const bref *a = &c->refs[far], *b = r;
            if (a->ordinal > b->ordinal) { const bref *t = a; a = b; b = t; }
            return gd_errorf(c->err, GD_E_INVALID_VALUE, b->path,
                             "The binary range of %s (bytes %llu..%llu) overlaps that of %s (bytes %llu..%llu).",
                             b->path, (unsigned long long)b->off, (unsigned long long)(b->off + b->len),
                             a->path, (unsigned long long)a->off, (unsigned long long)(a->off + a->len));
        }
        if (far < 0 || r->off + r->len > c->refs[far].off + c->refs[far].len) far = i;
    }
    return 0;
}

static const char *const tensor_keys[] = {"shape", "dtype", "data", "b64", "offset", "nbytes", NULL};

/* A non-negative integer field of a tensor object (offset, nbytes). */
static int get_count(dctx *c, const json_t *j, jpath *p, const char *key, uint64_t *v) {
    size_t mark = p->n;
    jp_key(p, key);
    if (!json_is_number(j)) return wrong_type(c, p, "a non-negative integer", j);
    int64_t d;
    if (!exact_int(j, &d) || d < 0)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s must be a non-negative integer, got %.17g.", p->s,
                         json_number_value(j));
    *v = (uint64_t)d;
    jp_pop(p, mark);
    return 0;
}

/* The object forms: {"shape", "data"[, "dtype"]}, {"shape", "dtype", "b64"}
 * and {"shape", "dtype", "offset", "nbytes"}. */
static int decode_object(dctx *c, json_t *j, jpath *p, want w, gd_tensor **out, int *f32_out) {
    const char *key;
    json_t *v;
    size_t mark = p->n;
    json_object_foreach(j, key, v) {
        int known = 0;
        for (int i = 0; tensor_keys[i]; i++) known |= !strcmp(key, tensor_keys[i]);
        if (!known) {
            jp_key(p, key);
            gd_errorf(c->err, GD_E_UNKNOWN_KEY, p->s,
                      "Unknown key \"%s\" in the tensor at %.200s; a tensor object has \"shape\" and one of "
                      "\"data\", \"b64\" or \"offset\"+\"nbytes\" (and \"dtype\").", key, p->s);
            gd_error_suggest(c->err, gd_closest(key, tensor_keys, -1));
            return GD_E_UNKNOWN_KEY;
        }
    }
    json_t *js = json_object_get(j, "shape"), *jt = json_object_get(j, "dtype"), *jd = json_object_get(j, "data"),
           *jb = json_object_get(j, "b64"), *jo = json_object_get(j, "offset"), *jn = json_object_get(j, "nbytes");
    int forms = !!jd + !!jb + !!(jo || jn);
    if (forms != 1)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         forms ? "The tensor at %s has more than one of \"data\", \"b64\" and \"offset\"/\"nbytes\"; "
                                 "give exactly one."
                               : "The tensor at %s has none of \"data\", \"b64\" or \"offset\"+\"nbytes\".",
                         p->s);
    /* shape */
    gd_shape s = {.rank = 0};
    jp_key(p, "shape");
    if (!js) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s, "The tensor object has no \"shape\" (%s).", p->s);
    if (!json_is_array(js)) return wrong_type(c, p, "a list of dimensions", js);
    if (json_array_size(js) > GD_MAX_RANK)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s has %zu dimensions; at most %d are supported.", p->s,
                         json_array_size(js), GD_MAX_RANK);
    for (size_t i = 0; i < json_array_size(js); i++) {
        json_t *d = json_array_get(js, i);
        size_t m2 = p->n;
        jp_index(p, i);
        if (!json_is_number(d)) return wrong_type(c, p, "a non-negative integer", d);
        int64_t x;
        if (!exact_int(d, &x) || x < 0)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s must be a non-negative integer, got %.17g.", p->s,
                             json_number_value(d));
        s.dim[s.rank++] = x;
        jp_pop(p, m2);
    }
    jp_pop(p, mark);
    /* dtype */
    int dt = w.dtype, f32 = w.decl_f32;
    if (jt) {
        jp_key(p, "dtype");
        static const char *const dtypes[] = {"float64", "float32", "int64", NULL};
        if (!json_is_string(jt)) return wrong_type(c, p, "\"float64\", \"float32\" or \"int64\"", jt);
        const char *name = json_string_value(jt);
        if (!strcmp(name, "float64")) dt = GD_F64, f32 = 0;
        else if (!strcmp(name, "float32")) dt = GD_F64, f32 = 1;
        else if (!strcmp(name, "int64")) dt = GD_I64, f32 = 0;
        else {
            gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "Unknown dtype \"%.40s\" at %s; use \"float64\", "
                      "\"float32\" or \"int64\".", name, p->s);
            gd_error_suggest(c->err, gd_closest(name, dtypes, -1));
            return GD_E_INVALID_VALUE;
        }
        /* A leaf's "dtype" is a declaration the value must match; float32
         * counts as its own transport dtype here. */
        if (w.dtype >= 0 && (dt != w.dtype || f32 != w.decl_f32))
            return gd_errorf(c->err, GD_E_DTYPE_MISMATCH, p->s, "%s is \"%s\", but the node declares dtype %s.",
                             p->s, name, w.decl_f32 ? "float32" : gd_dtype_name((gd_dtype)w.dtype));
        jp_pop(p, mark);
    } else if (!jd) {
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         "The tensor at %s carries raw bytes, so it needs a \"dtype\" (\"float64\", \"float32\" or "
                         "\"int64\").", p->s);
    }
    if (dt < 0) dt = GD_F64;
    int64_t numel;
    int rc = check_numel(c, &s, p, &numel);
    if (rc) return rc;
    uint64_t nbytes = (uint64_t)numel * (f32 ? 4u : 8u);

    if (jd) {
        jp_key(p, "data");
        if (!json_is_array(jd)) return wrong_type(c, p, "a flat list of numbers", jd);
        if ((int64_t)json_array_size(jd) != numel) {
            char buf[GD_SHAPE_STR_MAX];
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s has %zu elements, but shape %s needs %lld.",
                             p->s, json_array_size(jd), gd_shape_str(&s, buf, sizeof buf), (long long)numel);
        }
        gd_tensor *t = gd_tensor_new(c->a, &s, (gd_dtype)dt, 0);
        if (!t) return oom(c);
        size_t m2 = p->n;
        for (int64_t i = 0; i < numel; i++) {
            jp_index(p, (size_t)i);
            if ((rc = put_elem(c, json_array_get(jd, (size_t)i), p, t, f32, i))) return rc;
            jp_pop(p, m2);
        }
        *out = t, *f32_out = f32;
        return 0;
    }
    if (jb) {
        jp_key(p, "b64");
        if (!json_is_string(jb)) return wrong_type(c, p, "a base64 string", jb);
        size_t body = 0;
        if ((rc = check_b64(c, json_string_value(jb), json_string_length(jb), nbytes, &body, p))) return rc;
        gd_tensor *t = gd_tensor_new(c->a, &s, (gd_dtype)dt, 0);
        if (!t) return oom(c);
        if ((rc = decode_b64(c, json_string_value(jb), body, t->data, p))) return rc;
        from_le(t, f32);
        *out = t, *f32_out = f32;
        return 0;
    }
    /* binary reference */
    uint64_t off = 0, len = 0;
    if (!jo || !jn)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s, "The binary tensor at %s needs both \"offset\" and "
                         "\"nbytes\".", p->s);
    if ((rc = get_count(c, jo, p, "offset", &off)) || (rc = get_count(c, jn, p, "nbytes", &len))) return rc;
    if (!c->bin)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         "The tensor at %s refers to a binary section, but the request is plain JSON; send it with "
                         "Content-Type application/vnd.gradd.v1+binary and a Gradd-Json-Length header.", p->s);
    if (len != nbytes)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The tensor at %s has nbytes %llu, but shape and dtype need %llu.", p->s,
                         (unsigned long long)len, (unsigned long long)nbytes);
    if (off > c->bin_len || len > c->bin_len - off)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The tensor at %s spans bytes %llu..%llu, past the end of the %zu-byte binary section.",
                         p->s, (unsigned long long)off, (unsigned long long)(off + len), c->bin_len);
    gd_tensor *t = gd_tensor_new(c->a, &s, (gd_dtype)dt, 0);
    if (!t) return oom(c);
    if (len) memcpy(t->data, c->bin + off, (size_t)len);
    from_le(t, f32);
    if ((rc = add_ref(c, off, len, p))) return rc;
    *out = t, *f32_out = f32;
    return 0;
}

/* Any tensor form of the contract at path p. *f32_out: the value came as
 * float32 (declared or explicit). The tensor is allocated in the arena. */
static int decode_tensor(dctx *c, json_t *j, jpath *p, want w, gd_tensor **out, int *f32_out) {
    gd_dtype dt = w.dtype < 0 ? GD_F64 : (gd_dtype)w.dtype;
    *f32_out = w.decl_f32;
    size_t mark = p->n;
    int rc;
    if (json_is_number(j) || json_is_string(j)) {
        gd_shape s = gd_shape_scalar();
        gd_tensor *t = gd_tensor_new(c->a, &s, dt, 0);
        if (!t) return oom(c);
        rc = put_elem(c, j, p, t, w.decl_f32, 0);
        if (rc) return rc;
        *out = t;
        return 0;
    }
    if (json_is_array(j)) rc = decode_nested(c, j, p, dt, w.decl_f32, out);
    else if (json_is_object(j)) rc = decode_object(c, j, p, w, out, f32_out);
    else return wrong_type(c, p, "a tensor (a number, nested lists or a tensor object)", j);
    if (!rc) jp_pop(p, mark); /* on success the path is the tensor's again */
    return rc;
}

/* ---- attributes ------------------------------------------------------------- */

static int bad_attr(dctx *c, const jpath *p, const gd_node *n, const char *key, const char *what) {
    return gd_errorf(c->err, GD_E_INVALID_ATTRIBUTE, p->s, "Node '%s' (%s): '%s' must be %s.", n->name,
                     n->op->name, key, what);
}

/* An integer list (or, for AXIS, a bare integer) into a gd_ints slot. */
static int read_ints(dctx *c, const json_t *v, const jpath *p, const gd_node *n, const char *key, int allow_scalar,
                     gd_ints *dst) {
    const char *what = allow_scalar ? "an integer or a list of at most 8 integers" : "a list of at most 8 integers";
    gd_ints r = {.given = 1};
    if (json_is_number(v) && allow_scalar) {
        if (!exact_int(v, &r.v[0])) return bad_attr(c, p, n, key, what);
        r.n = 1;
    } else if (json_is_array(v)) {
        if (json_array_size(v) > GD_MAX_RANK) return bad_attr(c, p, n, key, what);
        r.is_list = 1;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (!exact_int(e, &r.v[r.n])) return bad_attr(c, p, n, key, what);
            r.n++;
        }
    } else {
        return bad_attr(c, p, n, key, what);
    }
    *dst = r;
    return 0;
}

/* One attribute, generically from its spec row: the value goes to the
 * gd_ints / gd_num slot at spec->offset in node->attrs. Leaf `shape` and
 * `dtype` are also the node's declarations. JSON null means "not given". */
static int decode_attr(dctx *c, gd_node *n, const gd_attr_spec *spec, const json_t *v, const jpath *p) {
    if (json_is_null(v)) return 0;
    void *slot = (char *)&n->attrs + spec->offset;
    gd_num *num = slot;
    int leaf = (n->op->flags & GD_OPF_LEAF) != 0;
    switch (spec->kind) {
    case GD_ATTR_INT: {
        int64_t iv;
        if (!exact_int(v, &iv)) return bad_attr(c, p, n, spec->name, "an integer");
        num->given = 1, num->v = (double)iv;
        return 0;
    }
    case GD_ATTR_AXIS: return read_ints(c, v, p, n, spec->name, 1, slot);
    case GD_ATTR_INTS: {
        int rc = read_ints(c, v, p, n, spec->name, 0, slot);
        if (rc) return rc;
        if (leaf && !strcmp(spec->name, "shape")) {
            const gd_ints *s = slot;
            for (int i = 0; i < s->n; i++)
                if (s->v[i] < 0) return bad_attr(c, p, n, "shape", "a list of at most 8 non-negative integers");
            n->has_shape_decl = 1;
            n->shape_decl = gd_shape_make(s->n, s->v);
        }
        return 0;
    }
    case GD_ATTR_BOOL:
        if (!json_is_boolean(v)) return bad_attr(c, p, n, spec->name, "true or false");
        num->given = 1, num->v = json_is_true(v) ? 1 : 0;
        return 0;
    case GD_ATTR_NUMBER:
        if (json_is_number(v)) num->v = json_number_value(v);
        else if (json_is_string(v) && !strcmp(json_string_value(v), "NaN")) num->v = NAN;
        else if (json_is_string(v) && !strcmp(json_string_value(v), "Infinity")) num->v = INFINITY;
        else if (json_is_string(v) && !strcmp(json_string_value(v), "-Infinity")) num->v = -INFINITY;
        else return bad_attr(c, p, n, spec->name, "a number");
        num->given = 1;
        return 0;
    case GD_ATTR_DTYPE: {
        static const char *const leaf_dtypes[] = {"float64", "int64", "float32", NULL};
        const char *what = leaf ? "\"float64\", \"int64\" or \"float32\"" : "\"float64\" or \"int64\"";
        if (!json_is_string(v)) return bad_attr(c, p, n, spec->name, what);
        const char *s = json_string_value(v);
        gd_dtype dt;
        int f32 = 0;
        if (!strcmp(s, "float64")) dt = GD_F64;
        else if (!strcmp(s, "int64")) dt = GD_I64;
        else if (leaf && !strcmp(s, "float32")) dt = GD_F64, f32 = 1;
        else {
            if (!strcmp(s, "float32"))
                return gd_errorf(c->err, GD_E_INVALID_ATTRIBUTE, p->s,
                                 "Node '%s' (%s): float32 is a transport encoding only; computation is float64 or "
                                 "int64.", n->name, n->op->name);
            bad_attr(c, p, n, spec->name, what);
            gd_error_suggest(c->err, gd_closest(s, leaf_dtypes, leaf ? 3 : 2));
            return GD_E_INVALID_ATTRIBUTE;
        }
        num->given = 1, num->v = dt;
        if (leaf) {
            n->has_dtype_decl = 1, n->dtype_decl = dt;
            if (f32) n->transport_f32 = 1;
        }
        return 0;
    }
    }
    return gd_errorf(c->err, GD_E_INTERNAL, p->s, "Attribute kind %d is not known to the decoder.", (int)spec->kind);
}

/* ---- nodes ------------------------------------------------------------------ */

/* The valid keys of a node of `op`, for "did you mean". Arena-allocated. */
static const char **node_keys(dctx *c, const gd_op_def *op, int *n) {
    const char **k = gd_arena_alloc(c->a, sizeof *k * (size_t)(op->n_attrs + 5));
    if (!k) return NULL;
    int m = 0;
    k[m++] = "name", k[m++] = "op", k[m++] = "inputs";
    if (!strcmp(op->name, "constant")) k[m++] = "value";
    for (int i = 0; i < op->n_attrs; i++) k[m++] = op->attrs[i].name;
    *n = m;
    return k;
}

static int decode_node(dctx *c, json_t *nj, size_t i) {
    jpath p;
    char base[64];
    snprintf(base, sizeof base, "$.graph.nodes[%zu]", i);
    jp_set(&p, base);
    if (!json_is_object(nj)) return wrong_type(c, &p, "a node object", nj);
    json_t *jname = json_object_get(nj, "name"), *jop = json_object_get(nj, "op"),
           *jin = json_object_get(nj, "inputs");
    jp_key(&p, "name");
    if (!jname) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "Node %zu has no \"name\".", i);
    if (!json_is_string(jname)) return wrong_type(c, &p, "a string", jname);
    jp_set(&p, base);
    jp_key(&p, "op");
    if (!jop)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "Node '%.256s' (%s) has no \"op\".",
                         json_string_value(jname), base + 2);
    if (!json_is_string(jop)) return wrong_type(c, &p, "a string", jop);
    jp_set(&p, base);
    size_t n_in = 0;
    const char **ins = NULL;
    if (jin && !json_is_null(jin)) {
        jp_key(&p, "inputs");
        if (!json_is_array(jin)) return wrong_type(c, &p, "a list of node names", jin);
        n_in = json_array_size(jin);
        if (n_in > (size_t)INT32_MAX / 2) return oom(c);
        if (!(ins = gd_arena_alloc(c->a, sizeof *ins * (n_in + 1)))) return oom(c);
        size_t mark = p.n;
        for (size_t k = 0; k < n_in; k++) {
            json_t *e = json_array_get(jin, k);
            jp_index(&p, k);
            if (!json_is_string(e)) return wrong_type(c, &p, "a node name (a string)", e);
            ins[k] = json_string_value(e);
            jp_pop(&p, mark);
        }
        jp_set(&p, base);
    }
    gd_node *n = gd_graph_add(c->g, json_string_value(jname), json_string_value(jop), ins, (int)n_in, c->err);
    if (!n) return c->err->code;
    int is_const = !strcmp(n->op->name, "constant");
    const char *key;
    json_t *v;
    json_object_foreach(nj, key, v) {
        if (!strcmp(key, "name") || !strcmp(key, "op") || !strcmp(key, "inputs")) continue;
        if (!strcmp(key, "value") && is_const) continue;
        jp_set(&p, base);
        jp_key(&p, key);
        const gd_attr_spec *spec = gd_op_attr(n->op, key);
        if (spec) {
            int rc = decode_attr(c, n, spec, v, &p);
            if (rc) return rc;
            continue;
        }
        if (!strcmp(key, "value") && (n->op->flags & GD_OPF_LEAF)) {
            gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s,
                      "Node '%s' (%s) cannot hold a \"value\": only a constant's value sits in the node; a %s's "
                      "value goes in the request's \"values\".", n->name, n->op->name, n->op->name);
            return GD_E_UNKNOWN_KEY;
        }
        int nk = 0;
        const char **keys = node_keys(c, n->op, &nk);
        if (!keys) return oom(c);
        gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s, "Node '%s' (%s) has an unknown key \"%s\".", n->name, n->op->name,
                  key);
        gd_error_suggest(c->err, gd_closest(key, keys, nk));
        return GD_E_UNKNOWN_KEY;
    }
    if (is_const) {
        json_t *jv = json_object_get(nj, "value");
        jp_set(&p, base);
        if (!jv || json_is_null(jv))
            return gd_errorf(c->err, GD_E_MISSING_VALUE, p.s, "Constant '%s' has no \"value\".", n->name);
        jp_key(&p, "value");
        want w = {n->has_dtype_decl ? (int)n->dtype_decl : -1, n->transport_f32};
        gd_tensor *t;
        int f32;
        int rc = decode_tensor(c, jv, &p, w, &t, &f32);
        if (rc) return rc;
        gd_node_set_value(n, t, -1);
        if (f32) n->transport_f32 = 1;
    }
    return 0;
}

/* ---- names: targets, wrt, fetch, values ------------------------------------- */

/* Closest name among the nodes that pass `filter` (NULL: all), for "did you
 * mean". The candidate array lives in the arena. */
static const char *closest_node(dctx *c, const char *word, int (*filter)(const gd_node *)) {
    const char **cands = gd_arena_alloc(c->a, sizeof *cands * (size_t)(c->g->n + 1));
    if (!cands) return NULL;
    int k = 0;
    for (int i = 0; i < c->g->n; i++)
        if (!filter || filter(&c->g->nodes[i])) cands[k++] = c->g->nodes[i].name;
    return k ? gd_closest(word, cands, k) : NULL;
}

static int takes_values(const gd_node *n) {
    return !strcmp(n->op->name, "variable") || !strcmp(n->op->name, "input");
}

/* Node index of the name in j at path p, or an error: wrong type
 * (invalid_request) or no such node (unknown_node with a suggestion). */
static int resolve(dctx *c, const json_t *j, const jpath *p, const char *what, int *idx) {
    if (!json_is_string(j)) return wrong_type(c, p, "a node name (a string)", j);
    const char *name = json_string_value(j);
    int k = gd_graph_find(c->g, name);
    if (k < 0) {
        gd_errorf(c->err, GD_E_UNKNOWN_NODE, p->s, "%s '%s' names no node of the graph.", what, name);
        gd_error_suggest(c->err, closest_node(c, name, NULL));
        return GD_E_UNKNOWN_NODE;
    }
    *idx = k;
    return 0;
}

/* A list of node names (wrt, fetch, a target list) into an arena array;
 * a name listed twice is refused, since each one keys a response object. */
static int resolve_list(dctx *c, const json_t *j, const char *key, const char *what, int **idx, int *n) {
    jpath p;
    jp_set(&p, "$");
    jp_key(&p, key);
    if (!json_is_array(j)) return wrong_type(c, &p, "a list of node names", j);
    size_t m = json_array_size(j);
    if (m > (size_t)INT32_MAX / 4) return oom(c);
    int *r = gd_arena_alloc(c->a, sizeof *r * (m + 1));
    unsigned char *seen = gd_arena_alloc(c->a, (size_t)c->g->n + 1);
    if (!r || !seen) return oom(c);
    size_t mark = p.n;
    for (size_t i = 0; i < m; i++) {
        jp_index(&p, i);
        int rc = resolve(c, json_array_get(j, i), &p, what, &r[i]);
        if (rc) return rc;
        if (seen[r[i]]++)
            return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "'%s' is listed twice in \"%s\" (%s).",
                             c->g->nodes[r[i]].name, key, p.s);
        jp_pop(&p, mark);
    }
    *idx = r;
    *n = (int)m;
    return 0;
}

static int decode_values(dctx *c, json_t *jv) {
    jpath p;
    jp_set(&p, "$.values");
    if (!json_is_object(jv)) return wrong_type(c, &p, "an object mapping node names to tensors", jv);
    const char *key;
    json_t *v;
    int ordinal = 0;
    json_object_foreach(jv, key, v) {
        jp_set(&p, "$.values");
        jp_key(&p, key);
        int k = gd_graph_find(c->g, key);
        if (k < 0 || !takes_values(&c->g->nodes[k])) {
            if (k < 0)
                gd_errorf(c->err, GD_E_UNKNOWN_NODE, p.s, "\"values\" names '%s', which is no node of the graph.", key);
            else
                gd_errorf(c->err, GD_E_UNKNOWN_NODE, p.s,
                          "\"values\" names '%s', a %s node; only variable and input nodes take values%s.", key,
                          c->g->nodes[k].op->name,
                          strcmp(c->g->nodes[k].op->name, "constant") ? "" : " (a constant's sits in its \"value\")");
            gd_error_suggest(c->err, closest_node(c, key, takes_values));
            return GD_E_UNKNOWN_NODE;
        }
        gd_node *n = &c->g->nodes[k];
        want w = {n->has_dtype_decl ? (int)n->dtype_decl : -1, n->transport_f32};
        gd_tensor *t;
        int f32;
        int rc = decode_tensor(c, v, &p, w, &t, &f32);
        if (rc) return rc;
        gd_node_set_value(n, t, ordinal++);
        if (f32) n->transport_f32 = 1;
    }
    return 0;
}

/* One cotangent: any tensor form, float64 (or float32) only, since a
 * gradient is never int64 (PyTorch refuses an integer grad_output too). */
static int decode_cotangent(dctx *c, json_t *j, jpath *p, gd_tensor **out) {
    want w = {-1, 0};
    int f32;
    int rc = decode_tensor(c, j, p, w, out, &f32);
    if (rc) return rc;
    if ((*out)->dtype != GD_F64)
        return gd_errorf(c->err, GD_E_DTYPE_MISMATCH, p->s,
                         "%s is int64; a cotangent is float64 (or float32), since gradients are never int64.", p->s);
    return 0;
}

/* target_grad: one tensor for a single target, an object target -> tensor
 * for a list. Entries stay NULL for targets without one. */
static int decode_target_grad(dctx *c, json_t *j, gd_request *r, gd_tensor **tg) {
    jpath p;
    jp_set(&p, "$.target_grad");
    if (!r->spec.targets_is_list) return decode_cotangent(c, j, &p, &tg[0]);
    if (!json_is_object(j))
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s,
                         "\"target\" is a list, so \"target_grad\" must be an object mapping target names to "
                         "tensors, not %s.", json_kind(j));
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        jp_set(&p, "$.target_grad");
        jp_key(&p, key);
        int found = -1;
        for (int k = 0; k < r->spec.n_targets && found < 0; k++)
            if (!strcmp(r->target_names[k], key)) found = k;
        if (found < 0) {
            gd_errorf(c->err, GD_E_UNKNOWN_NODE, p.s, "\"target_grad\" names '%s', which is not one of the targets.",
                      key);
            gd_error_suggest(c->err, gd_closest(key, r->target_names, r->spec.n_targets));
            return GD_E_UNKNOWN_NODE;
        }
        if (json_is_null(v)) continue;
        int rc = decode_cotangent(c, v, &p, &tg[found]);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the request ------------------------------------------------------------ */

static const char *const grad_keys[] = {"graph", "values", "target", "wrt", "target_grad", "unconnected",
                                        "fetch", "check_numerics", "deadline_ms", "tensor_format", NULL};
static const char *const eval_keys[] = {"graph",          "values",      "target",        "fetch",
                                        "check_numerics", "deadline_ms", "tensor_format", NULL};

/* A field that may be absent; JSON null counts as absent. */
static json_t *opt(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

/* One of a small set of strings (unconnected, tensor_format). */
static int read_choice(dctx *c, json_t *j, const char *key, const char *const *choices, int *out) {
    jpath p;
    jp_set(&p, "$");
    jp_key(&p, key);
    char list[128] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", choices[i]);
    if (!json_is_string(j)) return wrong_type(c, &p, list, j);
    for (int i = 0; choices[i]; i++)
        if (!strcmp(json_string_value(j), choices[i])) {
            *out = i;
            return 0;
        }
    gd_errorf(c->err, GD_E_INVALID_VALUE, p.s, "\"%s\" is \"%.64s\"; use one of %s.", key, json_string_value(j),
              list);
    gd_error_suggest(c->err, gd_closest(json_string_value(j), choices, -1));
    return GD_E_INVALID_VALUE;
}

/* The request's own scalar fields, before the graph is built. */
static int decode_options(dctx *c, json_t *root, int endpoint, gd_request *r) {
    json_t *j;
    jpath p;
    r->spec.check_numerics = 1;
    r->deadline_ms = -1;
    if ((j = opt(root, "check_numerics"))) {
        jp_set(&p, "$.check_numerics");
        if (!json_is_boolean(j)) return wrong_type(c, &p, "true or false", j);
        r->spec.check_numerics = json_is_true(j);
    }
    if ((j = opt(root, "deadline_ms"))) {
        jp_set(&p, "$.deadline_ms");
        if (!json_is_number(j)) return wrong_type(c, &p, "a positive integer (milliseconds)", j);
        int64_t d;
        if (!exact_int(j, &d) || d < 1)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p.s,
                             "\"deadline_ms\" must be a positive integer number of milliseconds, got %.17g.",
                             json_number_value(j));
        r->deadline_ms = d;
    }
    if ((j = opt(root, "tensor_format"))) {
        static const char *const formats[] = {"nested", "flat", "b64", "binary", NULL};
        int f;
        int rc = read_choice(c, j, "tensor_format", formats, &f);
        if (rc) return rc;
        r->tensor_format = (gd_tensor_format)f;
    }
    if (endpoint == GD_EP_GRAD && (j = opt(root, "unconnected"))) {
        static const char *const modes[] = {"none", "zero", NULL};
        int m;
        int rc = read_choice(c, j, "unconnected", modes, &m);
        if (rc) return rc;
        r->spec.unconnected_zero = m == 1;
    }
    return 0;
}

static int check_top_keys(dctx *c, json_t *root, int endpoint) {
    const char *const *keys = endpoint == GD_EP_GRAD ? grad_keys : eval_keys;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int known = 0;
        for (int i = 0; keys[i]; i++) known |= !strcmp(key, keys[i]);
        if (known) continue;
        jpath p;
        jp_set(&p, "$");
        jp_key(&p, key);
        int grad_only = endpoint == GD_EP_EVAL &&
                        (!strcmp(key, "wrt") || !strcmp(key, "target_grad") || !strcmp(key, "unconnected"));
        if (grad_only)
            gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s,
                      "\"%s\" is a /v1/grad key; /v1/eval computes no gradients.", key);
        else
            gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s, "Unknown key \"%s\" in the request.", key);
        gd_error_suggest(c->err, gd_closest(key, keys, -1));
        return GD_E_UNKNOWN_KEY;
    }
    return 0;
}

/* The graph: "nodes" only; the node count is checked before anything is
 * built. */
static int decode_graph(dctx *c, json_t *jg, const gd_decode_limits *lim) {
    jpath p;
    jp_set(&p, "$.graph");
    if (!json_is_object(jg)) return wrong_type(c, &p, "an object with \"nodes\"", jg);
    const char *key;
    json_t *v;
    json_object_foreach(jg, key, v) {
        if (!strcmp(key, "nodes")) continue;
        static const char *const gkeys[] = {"nodes", NULL};
        jp_key(&p, key);
        gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s, "Unknown key \"%s\" in the graph; a graph has only \"nodes\".", key);
        gd_error_suggest(c->err, gd_closest(key, gkeys, -1));
        return GD_E_UNKNOWN_KEY;
    }
    json_t *jn = json_object_get(jg, "nodes");
    jp_key(&p, "nodes");
    if (!jn) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "The graph has no \"nodes\".");
    if (!json_is_array(jn)) return wrong_type(c, &p, "a list of node objects", jn);
    size_t n = json_array_size(jn);
    if (lim && lim->max_nodes > 0 && n > (size_t)lim->max_nodes)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p.s, "The graph has %zu nodes; the limit is %d.", n,
                         lim->max_nodes);
    if (n > (size_t)INT32_MAX / 4) return oom(c);
    if (!(c->g = gd_graph_new(c->a, (int)n))) return oom(c);
    for (size_t i = 0; i < n; i++) {
        int rc = decode_node(c, json_array_get(jn, i), i);
        if (rc) return rc;
    }
    return 0;
}

/* target: a name, or a non-empty list of names. */
static int decode_targets(dctx *c, json_t *jt, gd_request *r) {
    jpath p;
    jp_set(&p, "$.target");
    if (!jt) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "The request has no \"target\".");
    int *t = NULL, n = 0, rc;
    if (json_is_array(jt)) {
        if (json_array_size(jt) == 0)
            return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "\"target\" is an empty list; name at least one node.");
        if ((rc = resolve_list(c, jt, "target", "The target", &t, &n))) return rc;
        r->spec.targets_is_list = 1;
    } else if (json_is_string(jt)) {
        if (!(t = gd_arena_alloc(c->a, sizeof *t))) return oom(c);
        if ((rc = resolve(c, jt, &p, "The target", &t[0]))) return rc;
        n = 1;
    } else {
        return wrong_type(c, &p, "a node name or a list of node names", jt);
    }
    r->spec.targets = t;
    r->spec.n_targets = n;
    return 0;
}

static const char **names_of(dctx *c, const int *idx, int n) {
    const char **s = gd_arena_alloc(c->a, sizeof *s * (size_t)(n + 1));
    if (!s) return NULL;
    for (int i = 0; i < n; i++) s[i] = c->g->nodes[idx[i]].name;
    return s;
}

/* Everything after parsing; root is borrowed. */
static int decode_root(dctx *c, json_t *root, int endpoint, const gd_decode_limits *lim, gd_request *r) {
    int rc;
    if (!json_is_object(root))
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$", "The request must be a JSON object, not %s.",
                         json_kind(root));
    if ((rc = check_top_keys(c, root, endpoint)) || (rc = decode_options(c, root, endpoint, r))) return rc;
    json_t *jg = json_object_get(root, "graph");
    if (!jg) return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$.graph", "The request has no \"graph\".");
    if ((rc = decode_graph(c, jg, lim))) return rc;
    r->graph = c->g;
    /* Names resolve from here on; gd_graph_check indexes again, cheaply. */
    if ((rc = gd_graph_index(c->g, c->err))) return rc;
    json_t *j;
    if ((j = opt(root, "values")) && (rc = decode_values(c, j))) return rc;
    if ((rc = decode_targets(c, json_object_get(root, "target"), r))) return rc;
    if (!(r->target_names = names_of(c, r->spec.targets, r->spec.n_targets))) return oom(c);

    if (endpoint == GD_EP_GRAD) {
        r->spec.grad = 1;
        gd_tensor **tg = gd_arena_alloc(c->a, sizeof *tg * (size_t)(r->spec.n_targets + 1));
        if (!tg) return oom(c);
        if ((j = opt(root, "target_grad")) && (rc = decode_target_grad(c, j, r, tg))) return rc;
        r->spec.target_grad = tg;
        int *w, nw = 0;
        if ((j = opt(root, "wrt"))) {
            if ((rc = resolve_list(c, j, "wrt", "The wrt entry", &w, &nw))) return rc;
        } else {
            if (!(w = gd_arena_alloc(c->a, sizeof *w * (size_t)(c->g->n + 1)))) return oom(c);
            for (int i = 0; i < c->g->n; i++)
                if (!strcmp(c->g->nodes[i].op->name, "variable")) w[nw++] = i;
        }
        r->spec.wrt = w, r->spec.n_wrt = nw;
        if (!(r->wrt_names = names_of(c, w, nw))) return oom(c);
    }
    int *f = NULL, nf = 0;
    if ((j = opt(root, "fetch"))) {
        if ((rc = resolve_list(c, j, "fetch", "The fetch entry", &f, &nf))) return rc;
        r->fetch_given = 1;
    } else if (endpoint == GD_EP_EVAL) {
        f = (int *)r->spec.targets, nf = r->spec.n_targets;
        r->fetch_given = 1;
    }
    r->spec.fetch = f, r->spec.n_fetch = nf;
    if (!(r->fetch_names = names_of(c, f, nf))) return oom(c);

    if ((rc = check_overlaps(c))) return rc;
    gd_limits gl = {.max_elements = lim && lim->max_elements > 0 ? lim->max_elements : 0};
    return gd_graph_check(c->g, &gl, c->err);
}

int gd_decode_request(gd_arena *a, const char *body, size_t json_len, const unsigned char *bin, size_t bin_len,
                      int endpoint, const gd_decode_limits *lim, gd_request *req, gd_error *err) {
    gd_error local;
    if (!err) err = &local; /* the decoder reads back codes it set */
    memset(req, 0, sizeof *req);
    req->endpoint = endpoint == GD_EP_EVAL ? GD_EP_EVAL : GD_EP_GRAD;
    req->deadline_ms = -1;
    req->spec.check_numerics = 1;
    gd_error_clear(err);
    json_error_t je;
    /* Integers are kept as integers first, so that an int64 element is read
     * exactly (9007199254740993 is not silently 2^53); every float consumer
     * reads json_number_value, so 1 and 1.0 stay the same number. Only when an
     * integer does not fit json_int_t is the body read again with integers as
     * reals (such a value is never a valid int64 element anyway). */
    json_t *root = json_loadb(body, json_len, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow)
        root = json_loadb(body, json_len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_duplicate_key) {
            jpath p;
            path_of_offset(body, (size_t)je.position <= json_len ? (size_t)je.position : json_len, &p);
            return gd_errorf(err, GD_E_INVALID_REQUEST, p.s, "Duplicate key %s (line %d, column %d): each key may "
                             "appear once in an object.", p.s[0] ? p.s : "", je.line, je.column);
        }
        return gd_errorf(err, GD_E_INVALID_JSON, NULL, "The body is not valid JSON: %s (line %d, column %d).", je.text,
                         je.line, je.column);
    }
    dctx c = {.a = a, .bin = bin, .bin_len = bin ? bin_len : 0, .err = err,
              .max_elements = lim && lim->max_elements > 0 ? lim->max_elements : 0};
    int rc = decode_root(&c, root, req->endpoint, lim, req);
    json_decref(root);
    if (rc) {
        if (err && err->code == GD_OK) err->code = (gd_err)rc;
        return rc;
    }
    return 0;
}
