/* wire.c - the tensor forms of the contract, read and written (see wire.h).
 *
 * Reading walks the jansson value: a number, nested lists (shape from the
 * first elements, then a rectangular fill), or a tensor object whose
 * "data", "b64" or "offset"+"nbytes" fills a buffer allocated only after
 * the size is checked. Writing streams elements straight from the tensor's
 * buffer; no JSON tree is built. Little-endian on the wire both ways. */
#include "proto/wire.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/jread.h"
#include "core/numfmt.h"
#include "proto/numscan.h"

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

/* ---- reading ---------------------------------------------------------------- */

struct gd_wire_ref {
    uint64_t off, len;   /* byte range in the binary section */
    int ordinal;         /* order of appearance in the request */
    const char *path;    /* arena copy, for the error */
};

/* Element count of `s` with the configured limit; too_large on overflow or
 * over the limit. Dimensions of size zero do not excuse the others: a
 * [10^12, 0] tensor is refused as well, since printing it nested would not be
 * cheap. */
static int check_numel(gd_wire_in *c, const gd_shape *s, const gd_jpath *p, int64_t *n) {
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
static int parse_special(gd_wire_in *c, const char *s, const gd_jpath *p, double *v) {
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
static int read_elem(gd_wire_in *c, const json_t *j, const gd_jpath *p, gd_tensor *t, int f32, int64_t k) {
    double v;
    if (json_is_number(j)) v = json_number_value(j);
    else if (json_is_string(j)) {
        int rc = parse_special(c, json_string_value(j), p, &v);
        if (rc) return rc;
        if (t->dtype == GD_I64)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s is \"%s\", but the tensor is int64, which has no "
                             "NaN or Infinity.", p->s, json_string_value(j));
    } else {
        return gd_json_wrong_type(c->err, p, "a number", j);
    }
    if (t->dtype == GD_I64) {
        int64_t iv;
        if (!gd_json_exact_int(j, &iv))
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
static int fill_nested(gd_wire_in *c, const json_t *j, gd_jpath *p, const gd_shape *s, int depth, gd_tensor *t, int f32,
                       int64_t *k) {
    if (depth == s->rank) {
        char buf[GD_SHAPE_STR_MAX];
        if (json_is_array(j))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "The nested lists are ragged: %s is a list where a number was expected (shape %s "
                             "inferred from the first elements).", p->s, gd_shape_str(s, buf, sizeof buf));
        return read_elem(c, j, p, t, f32, (*k)++);
    }
    if (!json_is_array(j)) {
        if (json_is_number(j) || json_is_string(j))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                             "The nested lists are ragged: %s is a number where a list of %lld was expected.", p->s,
                             (long long)s->dim[depth]);
        return gd_json_wrong_type(c->err, p, "a list or a number", j);
    }
    size_t n = json_array_size(j);
    if ((int64_t)n != s->dim[depth])
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The nested lists are ragged: %s has %zu elements where %lld were expected.", p->s, n,
                         (long long)s->dim[depth]);
    size_t mark = p->n;
    for (size_t i = 0; i < n; i++) {
        gd_jp_index(p, i);
        int rc = fill_nested(c, json_array_get(j, i), p, s, depth + 1, t, f32, k);
        if (rc) return rc;
        gd_jp_pop(p, mark);
    }
    return 0;
}

static int decode_nested(gd_wire_in *c, const json_t *j, gd_jpath *p, gd_dtype dt, int f32, gd_tensor **out) {
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
    if (!t) return gd_error_oom(c->err);
    k = 0;
    if ((rc = fill_nested(c, j, p, &s, 0, t, f32, &k))) return rc;
    *out = t;
    return 0;
}

/* A list read ahead (numscan.h), as decode_nested and from_data would read
 * it: the same element checks in the same order, the same messages and
 * paths (the list is rectangular and all numbers, so only an int64
 * tensor's non-integers can fail; an integer literal of 2^53 or more never
 * comes this way, so every |v| >= 2^53 here was written as a real). */
static int fast_elems_ok(gd_wire_in *c, const gd_numarr *fa, gd_jpath *p, gd_dtype dt) {
    if (dt != GD_I64) return 0;
    const double *v = c->fast->v + fa->off;
    for (int64_t k = 0; k < fa->n; k++) {
        if (v[k] == floor(v[k]) && fabs(v[k]) < 9007199254740992.0) continue;
        int64_t idx[GD_MAX_RANK], r = k;
        for (int d = fa->shape.rank - 1; d >= 0; d--) idx[d] = r % fa->shape.dim[d], r /= fa->shape.dim[d];
        for (int d = 0; d < fa->shape.rank; d++) gd_jp_index(p, (size_t)idx[d]);
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "%s is %.17g, but the tensor is int64: elements must be integers with |v| <= 2^53.", p->s,
                         v[k]);
    }
    return 0;
}

static void fast_fill(gd_wire_in *c, const gd_numarr *fa, gd_tensor *t, int f32) {
    const double *v = c->fast->v + fa->off;
    if (t->dtype == GD_I64) {
        for (int64_t k = 0; k < fa->n; k++) gd_i64(t)[k] = (int64_t)v[k];
    } else if (f32) {
        for (int64_t k = 0; k < fa->n; k++) gd_f64(t)[k] = (double)gd_to_f32(v[k]);
    } else {
        memcpy(t->data, v, (size_t)fa->n * sizeof *v);
    }
}

static int decode_fast(gd_wire_in *c, const gd_numarr *fa, gd_jpath *p, gd_dtype dt, int f32, gd_tensor **out) {
    int64_t numel;
    int rc = check_numel(c, &fa->shape, p, &numel);
    if (rc || (rc = fast_elems_ok(c, fa, p, dt))) return rc;
    gd_tensor *t = gd_tensor_new(c->a, &fa->shape, dt, 0);
    if (!t) return gd_error_oom(c->err);
    fast_fill(c, fa, t, f32);
    *out = t;
    return 0;
}

/* The list read ahead that j stands for, or NULL. */
static const gd_numarr *fast_list(const gd_wire_in *c, const json_t *j) {
    if (!c->fast || !json_is_string(j)) return NULL;
    return gd_numtab_find(c->fast, json_string_value(j), json_string_length(j));
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
static int check_b64(gd_wire_in *c, const char *s, size_t len, uint64_t want, size_t *body_out, const gd_jpath *p) {
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
static int decode_b64(gd_wire_in *c, const char *s, size_t body, unsigned char *dst, const gd_jpath *p) {
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

static int add_ref(gd_wire_in *c, uint64_t off, uint64_t len, const gd_jpath *p) {
    if (c->n_refs == c->cap_refs) {
        int cap = c->cap_refs ? 2 * c->cap_refs : 16;
        gd_wire_ref *r = gd_arena_alloc(c->a, sizeof *r * (size_t)cap);
        if (!r) return gd_error_oom(c->err);
        if (c->n_refs) memcpy(r, c->refs, sizeof *r * (size_t)c->n_refs);
        c->refs = r, c->cap_refs = cap;
    }
    const char *path = gd_arena_strdup(c->a, p->s);
    if (!path) return gd_error_oom(c->err);
    c->refs[c->n_refs] = (gd_wire_ref){off, len, c->n_refs, path};
    c->n_refs++;
    return 0;
}

static int cmp_ref(const void *x, const void *y) {
    const gd_wire_ref *a = x, *b = y;
    if (a->off != b->off) return a->off < b->off ? -1 : 1;
    return a->ordinal - b->ordinal;
}

/* No two binary references may share a byte. Sorted by offset, an overlap
 * always shows between neighbours (counting the furthest end so far); the
 * error names the later of the two in request order. */
int gd_wire_check_overlaps(gd_wire_in *c) {
    if (c->n_refs < 2) return 0;
    qsort(c->refs, (size_t)c->n_refs, sizeof *c->refs, cmp_ref);
    int far = -1; /* reference reaching furthest so far */
    for (int i = 0; i < c->n_refs; i++) {
        const gd_wire_ref *r = &c->refs[i];
        if (r->len == 0) continue;
        if (far >= 0 && c->refs[far].off + c->refs[far].len > r->off) {
            const gd_wire_ref *a = &c->refs[far], *b = r;
            if (a->ordinal > b->ordinal) { const gd_wire_ref *t = a; a = b; b = t; }
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

/* j, at path p, as a non-negative integer (a dimension, an offset, a byte
 * count): invalid_request for another type, invalid_value for a negative or
 * inexact number. */
static int count_at(gd_wire_in *c, const json_t *j, const gd_jpath *p, int64_t *v) {
    if (!json_is_number(j)) return gd_json_wrong_type(c->err, p, "a non-negative integer", j);
    if (!gd_json_exact_int(j, v) || *v < 0)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s must be a non-negative integer, got %.17g.", p->s,
                         json_number_value(j));
    return 0;
}

/* A non-negative integer field of a tensor object (offset, nbytes). */
static int get_count(gd_wire_in *c, const json_t *j, gd_jpath *p, const char *key, uint64_t *v) {
    size_t mark = p->n;
    gd_jp_key(p, key);
    int64_t d;
    int rc = count_at(c, j, p, &d);
    if (rc) return rc;
    *v = (uint64_t)d;
    gd_jp_pop(p, mark);
    return 0;
}

/* Unknown keys of a tensor object are refused with the closest valid one. */
static int check_object_keys(gd_wire_in *c, json_t *j, gd_jpath *p) {
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        int known = 0;
        for (int i = 0; tensor_keys[i]; i++) known |= !strcmp(key, tensor_keys[i]);
        if (!known) {
            gd_jp_key(p, key);
            gd_errorf(c->err, GD_E_UNKNOWN_KEY, p->s,
                      "Unknown key \"%s\" in the tensor at %.200s; a tensor object has \"shape\" and one of "
                      "\"data\", \"b64\" or \"offset\"+\"nbytes\" (and \"dtype\").", key, p->s);
            gd_error_suggest(c->err, gd_closest(key, tensor_keys, -1));
            return GD_E_UNKNOWN_KEY;
        }
    }
    return 0;
}

/* "shape" (js, NULL when absent) of the tensor object at p: a list of at
 * most GD_MAX_RANK non-negative integers. p is restored on success. */
static int read_shape(gd_wire_in *c, const json_t *js, gd_jpath *p, gd_shape *s) {
    size_t mark = p->n;
    gd_jp_key(p, "shape");
    if (!js) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s, "The tensor object has no \"shape\" (%s).", p->s);
    if (!json_is_array(js)) return gd_json_wrong_type(c->err, p, "a list of dimensions", js);
    if (json_array_size(js) > GD_MAX_RANK)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s has %zu dimensions; at most %d are supported.", p->s,
                         json_array_size(js), GD_MAX_RANK);
    for (size_t i = 0; i < json_array_size(js); i++) {
        json_t *d = json_array_get(js, i);
        size_t m2 = p->n;
        gd_jp_index(p, i);
        int64_t x;
        int rc = count_at(c, d, p, &x);
        if (rc) return rc;
        s->dim[s->rank++] = x;
        gd_jp_pop(p, m2);
    }
    gd_jp_pop(p, mark);
    return 0;
}

/* "dtype" (jt) of the tensor object at p into *dt and *f32; a leaf's
 * declared dtype (w) must match. p is restored on success. */
static int read_dtype(gd_wire_in *c, const json_t *jt, gd_jpath *p, gd_wire_want w, int *dt, int *f32) {
    static const char *const dtypes[] = {"float64", "float32", "int64", NULL};
    size_t mark = p->n;
    gd_jp_key(p, "dtype");
    if (!json_is_string(jt)) return gd_json_wrong_type(c->err, p, "\"float64\", \"float32\" or \"int64\"", jt);
    const char *name = json_string_value(jt);
    if (!strcmp(name, "float64")) *dt = GD_F64, *f32 = 0;
    else if (!strcmp(name, "float32")) *dt = GD_F64, *f32 = 1;
    else if (!strcmp(name, "int64")) *dt = GD_I64, *f32 = 0;
    else {
        gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "Unknown dtype \"%.40s\" at %s; use \"float64\", "
                  "\"float32\" or \"int64\".", name, p->s);
        gd_error_suggest(c->err, gd_closest(name, dtypes, -1));
        return GD_E_INVALID_VALUE;
    }
    /* A leaf's "dtype" is a declaration the value must match; float32
     * counts as its own transport dtype here. */
    if (w.dtype >= 0 && (*dt != w.dtype || *f32 != w.decl_f32))
        return gd_errorf(c->err, GD_E_DTYPE_MISMATCH, p->s, "%s is \"%s\", but the node declares dtype %s.",
                         p->s, name, w.decl_f32 ? "float32" : gd_dtype_name((gd_dtype)w.dtype));
    gd_jp_pop(p, mark);
    return 0;
}

/* What a tensor object's payload must fill, known before it is read. */
typedef struct obj_head {
    gd_shape s;
    gd_dtype dt;
    int f32;         /* float32 on the wire */
    int64_t numel;
    uint64_t nbytes; /* raw bytes on the wire: numel * (4 or 8) */
} obj_head;

/* {"data": [...]}: a flat list of numel elements. */
static int from_data(gd_wire_in *c, const json_t *jd, gd_jpath *p, const obj_head *h, gd_tensor **out) {
    gd_jp_key(p, "data");
    const gd_numarr *fa = fast_list(c, jd);
    if (fa) {
        char buf[GD_SHAPE_STR_MAX];
        if (fa->n != h->numel)
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s has %zu elements, but shape %s needs %lld.",
                             p->s, (size_t)fa->n, gd_shape_str(&h->s, buf, sizeof buf), (long long)h->numel);
        gd_tensor *t = gd_tensor_new(c->a, &h->s, h->dt, 0); /* allocated first, as below */
        if (!t) return gd_error_oom(c->err);
        int rc = fast_elems_ok(c, fa, p, h->dt);
        if (rc) return rc;
        fast_fill(c, fa, t, h->f32);
        *out = t;
        return 0;
    }
    if (!json_is_array(jd)) return gd_json_wrong_type(c->err, p, "a flat list of numbers", jd);
    if ((int64_t)json_array_size(jd) != h->numel) {
        char buf[GD_SHAPE_STR_MAX];
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s, "%s has %zu elements, but shape %s needs %lld.",
                         p->s, json_array_size(jd), gd_shape_str(&h->s, buf, sizeof buf), (long long)h->numel);
    }
    gd_tensor *t = gd_tensor_new(c->a, &h->s, h->dt, 0);
    if (!t) return gd_error_oom(c->err);
    size_t m2 = p->n;
    for (int64_t i = 0; i < h->numel; i++) {
        gd_jp_index(p, (size_t)i);
        int rc = read_elem(c, json_array_get(jd, (size_t)i), p, t, h->f32, i);
        if (rc) return rc;
        gd_jp_pop(p, m2);
    }
    *out = t;
    return 0;
}

/* {"b64": "..."}: the raw little-endian bytes in base64. */
static int from_b64(gd_wire_in *c, const json_t *jb, gd_jpath *p, const obj_head *h, gd_tensor **out) {
    gd_jp_key(p, "b64");
    if (!json_is_string(jb)) return gd_json_wrong_type(c->err, p, "a base64 string", jb);
    size_t body = 0;
    int rc = check_b64(c, json_string_value(jb), json_string_length(jb), h->nbytes, &body, p);
    if (rc) return rc;
    gd_tensor *t = gd_tensor_new(c->a, &h->s, h->dt, 0);
    if (!t) return gd_error_oom(c->err);
    if ((rc = decode_b64(c, json_string_value(jb), body, t->data, p))) return rc;
    from_le(t, h->f32);
    *out = t;
    return 0;
}

/* A tensor whose data is the binary section's bytes at off, not a copy:
 * float64 and int64 on a little-endian host whose bytes sit 8-aligned in
 * memory (the server aligns the section; a client's offsets are its own).
 * The section must then outlive the request (wire.h). NULL when the tensor
 * needs a copy (float32 is widened, a misaligned range is copied alone)
 * or out of memory (the copy's allocation then reports it). */
static gd_tensor *borrow(gd_wire_in *c, const obj_head *h, uint64_t off) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char *p = c->bin + off;
    if (h->f32 || !h->numel || ((uintptr_t)p & 7)) return NULL;
    gd_tensor *t = gd_tensor_header(c->a, &h->s, h->dt);
    if (!t) return NULL;
    t->data = (void *)p; /* read only: the engine never writes a leaf value */
    t->borrowed = 1;
    return t;
#else
    (void)c, (void)h, (void)off;
    return NULL;
#endif
}

/* {"offset", "nbytes"}: a byte range of the binary section, borrowed or
 * copied out, and remembered for the overlap check. */
static int from_binary(gd_wire_in *c, const json_t *jo, const json_t *jn, gd_jpath *p, const obj_head *h,
                       gd_tensor **out) {
    uint64_t off = 0, len = 0;
    int rc;
    if (!jo || !jn)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s, "The binary tensor at %s needs both \"offset\" and "
                         "\"nbytes\".", p->s);
    if ((rc = get_count(c, jo, p, "offset", &off)) || (rc = get_count(c, jn, p, "nbytes", &len))) return rc;
    if (!c->bin)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         "The tensor at %s refers to a binary section, but the request is plain JSON; send it with "
                         "Content-Type application/vnd.gradd.v1+binary and a Gradd-Json-Length header.", p->s);
    if (len != h->nbytes)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The tensor at %s has nbytes %llu, but shape and dtype need %llu.", p->s,
                         (unsigned long long)len, (unsigned long long)h->nbytes);
    if (off > c->bin_len || len > c->bin_len - off)
        return gd_errorf(c->err, GD_E_INVALID_VALUE, p->s,
                         "The tensor at %s spans bytes %llu..%llu, past the end of the %zu-byte binary section.",
                         p->s, (unsigned long long)off, (unsigned long long)(off + len), c->bin_len);
    gd_tensor *t = borrow(c, h, off);
    if (!t && !(t = gd_tensor_new(c->a, &h->s, h->dt, 0))) return gd_error_oom(c->err);
    if (!t->borrowed) {
        if (len) memcpy(t->data, c->bin + off, (size_t)len);
        from_le(t, h->f32);
    }
    if ((rc = add_ref(c, off, len, p))) return rc;
    *out = t;
    return 0;
}

/* The object forms: {"shape", "data"[, "dtype"]}, {"shape", "dtype", "b64"}
 * and {"shape", "dtype", "offset", "nbytes"}. Checked in this order: keys,
 * exactly one payload, shape, dtype, size; then the payload. */
static int decode_object(gd_wire_in *c, json_t *j, gd_jpath *p, gd_wire_want w, gd_tensor **out, int *f32_out) {
    int rc = check_object_keys(c, j, p);
    if (rc) return rc;
    json_t *js = json_object_get(j, "shape"), *jt = json_object_get(j, "dtype"), *jd = json_object_get(j, "data"),
           *jb = json_object_get(j, "b64"), *jo = json_object_get(j, "offset"), *jn = json_object_get(j, "nbytes");
    int forms = !!jd + !!jb + !!(jo || jn);
    if (forms != 1)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         forms ? "The tensor at %s has more than one of \"data\", \"b64\" and \"offset\"/\"nbytes\"; "
                                 "give exactly one."
                               : "The tensor at %s has none of \"data\", \"b64\" or \"offset\"+\"nbytes\".",
                         p->s);
    obj_head h = {.s = {.rank = 0}};
    if ((rc = read_shape(c, js, p, &h.s))) return rc;
    int dt = w.dtype, f32 = w.decl_f32;
    if (jt) {
        if ((rc = read_dtype(c, jt, p, w, &dt, &f32))) return rc;
    } else if (!jd) {
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p->s,
                         "The tensor at %s carries raw bytes, so it needs a \"dtype\" (\"float64\", \"float32\" or "
                         "\"int64\").", p->s);
    }
    h.dt = dt < 0 ? GD_F64 : (gd_dtype)dt, h.f32 = f32;
    if ((rc = check_numel(c, &h.s, p, &h.numel))) return rc;
    h.nbytes = (uint64_t)h.numel * (f32 ? 4u : 8u);
    if (jd) rc = from_data(c, jd, p, &h, out);
    else if (jb) rc = from_b64(c, jb, p, &h, out);
    else rc = from_binary(c, jo, jn, p, &h, out);
    if (!rc) *f32_out = f32;
    return rc;
}

/* Any tensor form of the contract at path p. *f32_out: the value came as
 * float32 (declared or explicit). The tensor is allocated in the arena. */
int gd_wire_decode(gd_wire_in *c, json_t *j, gd_jpath *p, gd_wire_want w, gd_tensor **out, int *f32_out) {
    gd_dtype dt = w.dtype < 0 ? GD_F64 : (gd_dtype)w.dtype;
    *f32_out = w.decl_f32;
    size_t mark = p->n;
    int rc;
    const gd_numarr *fa = fast_list(c, j);
    if (fa) {
        rc = decode_fast(c, fa, p, dt, w.decl_f32, out);
        if (!rc) gd_jp_pop(p, mark);
        return rc;
    }
    if (json_is_number(j) || json_is_string(j)) {
        gd_shape s = gd_shape_scalar();
        gd_tensor *t = gd_tensor_new(c->a, &s, dt, 0);
        if (!t) return gd_error_oom(c->err);
        rc = read_elem(c, j, p, t, w.decl_f32, 0);
        if (rc) return rc;
        *out = t;
        return 0;
    }
    if (json_is_array(j)) rc = decode_nested(c, j, p, dt, w.decl_f32, out);
    else if (json_is_object(j)) rc = decode_object(c, j, p, w, out, f32_out);
    else return gd_json_wrong_type(c->err, p, "a tensor (a number, nested lists or a tensor object)", j);
    if (!rc) gd_jp_pop(p, mark); /* on success the path is the tensor's again */
    return rc;
}

/* ---- writing ---------------------------------------------------------------- */

/* v's decimal digits at o (no terminator); returns the length. */
static int put_i64(char *o, int64_t v) {
    char tmp[20];
    int n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) o[len++] = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) o[len++] = tmp[--n];
    return len;
}

/* Element k as JSON, printed straight into b after the separator sep (0:
 * none): int64 as an integer, float64 (or float32 when narrowed) as its
 * shortest repr, non-finite as a quoted string. */
static void put_elem(gd_buf *b, const gd_tensor *t, int f32, int64_t k, char sep) {
    if (gd_buf_reserve(b, 48)) return;
    char *o = b->data + b->len;
    int n = 0;
    if (sep) o[n++] = sep;
    if (t->dtype == GD_I64) {
        n += put_i64(o + n, gd_i64(t)[k]);
    } else {
        double v = gd_f64(t)[k];
        float f = f32 ? gd_to_f32(v) : 0;
        if (f32 ? isfinite(f) : isfinite(v)) {
            n += f32 ? gd_fmt_float(o + n, f) : gd_fmt_double(o + n, v);
        } else {
            o[n++] = '"';
            n += f32 ? gd_fmt_float(o + n, f) : gd_fmt_double(o + n, v);
            o[n++] = '"';
        }
    }
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

/* Count m more elements written; poll once GD_POLL_ELEMS have been.
 * Returns nonzero once stopped. */
static int wire_tick(gd_wire_poll *p, int64_t m) {
    if (!p || p->stopped) return p ? p->stopped : 0;
    if ((p->since += m) < GD_POLL_ELEMS) return 0;
    p->since = 0;
    return p->stopped = gd_cancel_check(p->cancel, p->err) != 0;
}

static int wire_stopped(const gd_wire_poll *p) { return p && p->stopped; }

/* Elements [from, from + count), in pieces with a poll between them. */
static void put_elems(gd_buf *b, const gd_tensor *t, int f32, int64_t from, int64_t count, gd_wire_poll *poll) {
    for (int64_t s = 0; s < count && !b->failed && !wire_stopped(poll); s += GD_POLL_ELEMS) {
        int64_t e = count - s < GD_POLL_ELEMS ? count : s + GD_POLL_ELEMS;
        for (int64_t i = s; i < e; i++) put_elem(b, t, f32, from + i, i ? ',' : 0);
        wire_tick(poll, e - s);
    }
}

/* Nested lists, one level per dimension (depth <= GD_MAX_RANK). */
static void put_level(gd_buf *b, const gd_tensor *t, int f32, int depth, int64_t *k, gd_wire_poll *poll) {
    gd_buf_putc(b, '[');
    int64_t n = t->shape.dim[depth];
    if (depth == t->shape.rank - 1) {
        put_elems(b, t, f32, *k, n, poll);
        *k += n;
    } else {
        for (int64_t i = 0; i < n && !b->failed && !wire_stopped(poll); i++) {
            if (i) gd_buf_putc(b, ',');
            put_level(b, t, f32, depth + 1, k, poll);
        }
    }
    gd_buf_putc(b, ']');
}

static void put_shape(gd_buf *b, const gd_shape *s) {
    gd_buf_putc(b, '[');
    for (int i = 0; i < s->rank; i++) gd_buf_printf(b, i ? ",%" PRId64 : "%" PRId64, s->dim[i]);
    gd_buf_putc(b, ']');
}

/* Raw little-endian bytes of element i into dst; returns their count. */
static int raw_elem(const gd_tensor *t, int f32, int64_t i, unsigned char *dst) {
    uint64_t u;
    if (f32) {
        float f = gd_to_f32(gd_f64(t)[i]);
        uint32_t w;
        memcpy(&w, &f, 4);
        for (int k = 0; k < 4; k++) dst[k] = (unsigned char)(w >> (8 * k));
        return 4;
    }
    memcpy(&u, (const char *)t->data + 8 * i, 8);
    for (int k = 0; k < 8; k++) dst[k] = (unsigned char)(u >> (8 * k));
    return 8;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of the tensor's raw bytes, streamed through a small chunk so a big
 * tensor needs no second copy. */
static void put_b64(gd_buf *b, const gd_tensor *t, int f32, gd_wire_poll *poll) {
    unsigned char chunk[768 + 8];
    size_t have = 0;
    gd_buf_putc(b, '"');
    for (int64_t i = 0; i <= t->n && !b->failed; i++) {
        if (i && !(i & (GD_POLL_ELEMS - 1)) && wire_tick(poll, GD_POLL_ELEMS)) return;
        if (i < t->n) have += (size_t)raw_elem(t, f32, i, chunk + have);
        int last = i == t->n;
        if (have >= 768 || last) {
            size_t full = last ? have : have / 3 * 3;
            if (gd_buf_reserve(b, (full + 2) / 3 * 4)) return;
            char *o = b->data + b->len;
            size_t j = 0;
            for (; j + 3 <= full; j += 3) {
                uint32_t v = (uint32_t)chunk[j] << 16 | (uint32_t)chunk[j + 1] << 8 | chunk[j + 2];
                *o++ = b64_alphabet[v >> 18], *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = b64_alphabet[(v >> 6) & 63], *o++ = b64_alphabet[v & 63];
            }
            if (j < full) { /* last, 1 or 2 bytes left */
                uint32_t v = (uint32_t)chunk[j] << 16 | (j + 1 < full ? (uint32_t)chunk[j + 1] << 8 : 0);
                *o++ = b64_alphabet[v >> 18], *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = j + 1 < full ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = '=';
                j = full;
            }
            b->len = (size_t)(o - b->data);
            b->data[b->len] = '\0';
            memmove(chunk, chunk + j, have - j);
            have -= j;
        }
    }
    gd_buf_putc(b, '"');
}

void gd_binsec_init(gd_binsec *s) {
    memset(s, 0, sizeof *s);
    gd_buf_init(&s->bytes);
}

void gd_binsec_free(gd_binsec *s) {
    gd_buf_free(&s->bytes);
    free(s->seg);
    size_t min = s->borrow_min;
    gd_binsec_init(s);
    s->borrow_min = min;
}

size_t gd_binsec_len(const gd_binsec *s) { return s->bytes.len + s->ext; }

int gd_binsec_flatten(const gd_binsec *s, gd_buf *out) {
    const char *b = s->bytes.data ? s->bytes.data : "";
    size_t from = 0;
    for (int k = 0; k < s->n_seg; k++) {
        gd_buf_append(out, b + from, s->seg[k].at - from);
        gd_buf_append(out, s->seg[k].p, s->seg[k].len);
        from = s->seg[k].at;
    }
    gd_buf_append(out, b + from, s->bytes.len - from);
    return out->failed ? -1 : 0;
}

/* t's n bytes as a piece of s (its buffer, not a copy). 0, or -1 (with
 * bytes.failed set) when out of memory. */
static int add_piece(gd_binsec *s, const gd_tensor *t, size_t n) {
    if (s->n_seg == s->cap_seg) {
        int cap = s->cap_seg ? 2 * s->cap_seg : 8;
        gd_binseg *g = realloc(s->seg, sizeof *g * (size_t)cap);
        if (!g) return s->bytes.failed = 1, -1;
        s->seg = g, s->cap_seg = cap;
    }
    s->seg[s->n_seg++] = (gd_binseg){s->bytes.len, t->data, n};
    s->ext += n;
    return 0;
}

/* The raw bytes into the binary section at the next 64-byte boundary. */
static void put_binary(gd_binsec *sec, const gd_tensor *t, int f32, uint64_t *off, uint64_t *nbytes,
                       gd_wire_poll *poll) {
    static const unsigned char zeros[64];
    gd_buf *bin = &sec->bytes;
    gd_buf_append(bin, zeros, (64 - gd_binsec_len(sec) % 64) % 64);
    *off = gd_binsec_len(sec);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!f32 && sec->borrow_min && (size_t)t->n * 8 >= sec->borrow_min) { /* its own buffer goes out */
        if (add_piece(sec, t, (size_t)t->n * 8)) return;
        wire_tick(poll, t->n); /* as if written: the deadline still stops the response */
        *nbytes = (uint64_t)t->n * 8;
        return;
    }
    if (!f32) { /* float64/int64 on a little-endian host: the wire bytes are the memory bytes */
        for (int64_t s = 0; s < t->n; s += GD_POLL_ELEMS) { /* pieces with a poll between */
            if (s && wire_tick(poll, GD_POLL_ELEMS)) return;
            int64_t m = t->n - s < GD_POLL_ELEMS ? t->n - s : GD_POLL_ELEMS;
            gd_buf_append(bin, (const char *)t->data + s * 8, (size_t)m * 8);
        }
        *nbytes = gd_binsec_len(sec) - *off;
        return;
    }
#endif
    if (gd_buf_reserve(bin, (size_t)t->n * (f32 ? 4 : 8))) return; /* one growth, not log2(n) */
    unsigned char chunk[1024];
    size_t have = 0;
    for (int64_t i = 0; i < t->n; i++) {
        if (i && !(i & (GD_POLL_ELEMS - 1)) && wire_tick(poll, GD_POLL_ELEMS)) return;
        have += (size_t)raw_elem(t, f32, i, chunk + have);
        if (have > sizeof chunk - 8) gd_buf_append(bin, chunk, have), have = 0;
    }
    gd_buf_append(bin, chunk, have);
    *nbytes = gd_binsec_len(sec) - *off;
}

/* Values and gradients of a float32 transport node are narrowed to float32
 * on the way out. */
size_t gd_wire_put_bound(gd_tensor_format fmt, const gd_tensor *t, int transport_f32) {
    if (!t) return 4;
    int f32 = transport_f32 && t->dtype == GD_F64;
    size_t n = (size_t)t->n, head = 96 + 21 * (size_t)t->shape.rank; /* keys, dtype, shape, offsets */
    /* The longest element with its comma: a float64 of 17 digits with an
     * exponent or 4 leading zeros and a sign (24), a float32 in fixed
     * notation up to 10^16 (20), an int64 (20). */
    size_t per = t->dtype == GD_I64 ? 21 : f32 ? 21 : 25;
    switch (fmt) {
    case GD_TF_NESTED: {
        size_t lists = 0, above = 1; /* the nested lists: '[', ']' and a comma each */
        for (int d = 0; d < t->shape.rank; d++) lists += above, above *= (size_t)t->shape.dim[d];
        return n * per + 3 * lists + 1;
    }
    case GD_TF_FLAT: return head + n * per;
    case GD_TF_B64: return head + (n * (f32 ? 4 : 8) + 2) / 3 * 4;
    case GD_TF_BINARY: return head;
    }
    return head;
}

void gd_wire_put(gd_buf *b, gd_binsec *bin, gd_tensor_format fmt, const gd_tensor *t, int transport_f32,
                 gd_wire_poll *poll) {
    if (!t) { gd_buf_puts(b, "null"); return; }
    int f32 = transport_f32 && t->dtype == GD_F64;
    const char *dtype = t->dtype == GD_I64 ? "int64" : f32 ? "float32" : "float64";
    switch (fmt) {
    case GD_TF_NESTED:
        if (t->shape.rank == 0) put_elem(b, t, f32, 0, 0);
        else {
            int64_t k = 0;
            put_level(b, t, f32, 0, &k, poll);
        }
        return;
    case GD_TF_FLAT:
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        if (strcmp(dtype, "float64")) gd_buf_printf(b, ",\"dtype\":\"%s\"", dtype);
        gd_buf_puts(b, ",\"data\":[");
        put_elems(b, t, f32, 0, t->n, poll);
        gd_buf_puts(b, "]}");
        return;
    case GD_TF_B64:
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"b64\":", dtype);
        put_b64(b, t, f32, poll);
        gd_buf_putc(b, '}');
        return;
    case GD_TF_BINARY: {
        uint64_t off, nbytes;
        put_binary(bin, t, f32, &off, &nbytes, poll);
        gd_buf_puts(b, "{\"shape\":");
        put_shape(b, &t->shape);
        gd_buf_printf(b, ",\"dtype\":\"%s\",\"offset\":%" PRIu64 ",\"nbytes\":%" PRIu64 "}", dtype, off, nbytes);
        return;
    }
    }
}
