/* numscan.c - the numeric arrays and a graph's plain nodes of a body read
 * ahead of jansson (see numscan.h). A small recursive walk over the top
 * object, the "values" object and "graph"."nodes"; everything else is
 * skipped bracket by bracket (strings honoured). The walk trusts nothing: on any surprise it stops
 * and the body goes to jansson as it is, which then reports what is wrong. */
#include "proto/numscan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/numparse.h"

#define PLACEHOLDER_HEAD "\"\\u0000" /* then the index in decimal, then '"' */
#define POLL_BYTES ((size_t)1 << 16)   /* the cancel record is polled this often */

typedef struct scan {
    const char *p, *end, *body;
    const char *polled; /* where the cancel record was last polled */
    gd_arena *a;
    int64_t max_elements;
    const gd_cancel *cancel;
    gd_numtab *t;
    size_t copied; /* the body is in the text up to here */
    int stopped;   /* the cancel record fired */
    int bad;       /* the body is no JSON this walk understands: give up */
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int poll_cancel(scan *s) {
    if ((size_t)(s->p - s->polled) < POLL_BYTES) return 0;
    s->polled = s->p;
    if (gd_cancel_check(s->cancel, NULL)) s->stopped = 1;
    return s->stopped;
}

/* Past a string at s->p ('"'); the raw text between the quotes in *k, *kn.
 * Returns 0, or -1 (bad) when it does not end. */
static int skip_string(scan *s, const char **k, size_t *kn) {
    const char *q = s->p + 1;
    for (;;) {
        const char *hit = memchr(q, '"', (size_t)(s->end - q));
        if (!hit) return s->bad = 1, -1;
        size_t bs = 0;
        while (hit - bs > q && hit[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) {
            if (k) *k = s->p + 1, *kn = (size_t)(hit - s->p - 1);
            s->p = hit + 1;
            return 0;
        }
        q = hit + 1;
    }
}

/* Past any value: a literal to the next delimiter; a list or object by
 * counting brackets, strings skipped. The contents are jansson's to judge. */
static int skip_value(scan *s) {
    ws(s);
    if (s->p >= s->end) return s->bad = 1, -1;
    if (*s->p == '"') return skip_string(s, NULL, NULL);
    if (*s->p != '[' && *s->p != '{') {
        while (s->p < s->end && !strchr(",:]}[{\" \t\r\n", *s->p)) s->p++;
        return 0;
    }
    int depth = 0;
    do {
        if (poll_cancel(s)) return -1;
        if (s->p >= s->end) return s->bad = 1, -1;
        char ch = *s->p;
        if (ch == '"') {
            if (skip_string(s, NULL, NULL)) return -1;
            continue;
        }
        if (ch == '[' || ch == '{') depth++;
        else if (ch == ']' || ch == '}') depth--;
        s->p++;
    } while (depth > 0);
    return 0;
}

static int grow(scan *s, void **buf, size_t elem, int64_t *cap, int64_t need) {
    if (need <= *cap) return 0;
    int64_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *nb = gd_arena_buf(s->a, (size_t)nc * elem, 0);
    if (!nb) return -1;
    if (*buf) memcpy(nb, *buf, (size_t)*cap * elem), gd_arena_release(s->a, *buf);
    *buf = nb, *cap = nc;
    return 0;
}

/* One number of a list, appended to the table. Returns 0, or -1 when the
 * text is no number this path takes. */
static int take_number(scan *s) {
    const char *p = s->p;
    if (p < s->end && *p == '-') p++;
    if (p + 1 < s->end && p[0] == '0' && p[1] >= '0' && p[1] <= '9') return -1; /* JSON: no leading zero */
    double v;
    unsigned fl;
    const char *e = gd_parse_double(s->p, s->end, &v, &fl);
    if (!e || (fl & GD_NUM_BIG) || isinf(v)) return -1; /* jansson: a too big integer, a real overflow */
    if (fl & GD_NUM_INT) v = v == 0 ? 0.0 : v;        /* jansson's integer -0 is 0 */
    gd_numtab *t = s->t;
    if (t->n_v == t->cap_v && grow(s, (void **)&t->v, sizeof *t->v, &t->cap_v, t->n_v + 1)) return -1;
    t->v[t->n_v++] = v;
    s->p = e;
    return 0;
}

/* A list of lists of numbers at s->p, rectangular, at most max_rank deep,
 * appended to the table; *shape gets its shape (dims of the first list at
 * each depth). Returns 0, or -1 (the table's length to be reset). */
static int take_level(scan *s, gd_shape *shape, int depth, int64_t first) {
    s->p++; /* '[' */
    int64_t count = 0;
    ws(s);
    if (s->p < s->end && *s->p == ']') return -1; /* empty: the ordinary path */
    for (;;) {
        ws(s);
        if (poll_cancel(s)) return -1;
        if (depth + 1 < shape->rank) {
            if (s->p >= s->end || *s->p != '[' || take_level(s, shape, depth + 1, first)) return -1;
        } else {
            if (take_number(s)) return -1;
            if (s->max_elements > 0 && s->t->n_v - first > s->max_elements) return -1;
        }
        count++;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            break;
        }
        return -1;
    }
    if (shape->dim[depth] == 0) shape->dim[depth] = count; /* the first list at this depth */
    return shape->dim[depth] == count ? 0 : -1;
}

/* Room for n more bytes of text (and its NUL): the text grows by doubling,
 * so a body that is mostly lists does not cost a second body. */
static int text_room(scan *s, size_t n) {
    gd_numtab *t = s->t;
    int64_t cap = (int64_t)t->text_cap;
    if (grow(s, (void **)&t->text, 1, &cap, (int64_t)(t->text_len + n + 1))) return -1;
    t->text_cap = (size_t)cap;
    return 0;
}

/* Appends the body up to `from` and the placeholder of list `index` to
 * the text, which then continues at `to`. The placeholder must not be
 * longer than the list it stands for, so the text never outgrows the body. */
static int put_placeholder(scan *s, size_t from, size_t to, int index) {
    gd_numtab *t = s->t;
    char ph[32];
    size_t n = (size_t)snprintf(ph, sizeof ph, PLACEHOLDER_HEAD "%d\"", index);
    if (n > to - from || text_room(s, from - s->copied + n)) return -1;
    memcpy(t->text + t->text_len, s->body + s->copied, from - s->copied);
    t->text_len += from - s->copied;
    memcpy(t->text + t->text_len, ph, n);
    t->text_len += n;
    s->copied = to;
    return 0;
}

/* A tensor literal at s->p: a list is taken if it can be, else skipped. */
static int tensor_list(scan *s, int max_rank) {
    const char *start = s->p;
    gd_numtab *t = s->t;
    int64_t first = t->n_v;
    gd_shape shape = {.rank = 0};
    /* the rank: '[' after '[' down the first elements */
    for (const char *q = start; q < s->end && *q == '[';) {
        if (shape.rank == max_rank) goto ordinary;
        shape.dim[shape.rank++] = 0;
        q++;
        while (q < s->end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
    }
    if (take_level(s, &shape, 0, first)) goto ordinary;
    if (t->n_arr == t->cap_arr) {
        int64_t cap = t->cap_arr;
        if (grow(s, (void **)&t->arr, sizeof *t->arr, &cap, (int64_t)t->n_arr + 1)) goto ordinary;
        t->cap_arr = (int)cap;
    }
    if (put_placeholder(s, (size_t)(start - s->body), (size_t)(s->p - s->body), t->n_arr)) goto ordinary;
    t->arr[t->n_arr++] = (gd_numarr){.off = first, .n = t->n_v - first, .shape = shape};
    return 0;
ordinary:
    t->n_v = first;
    s->p = start;
    if (s->stopped) return -1;
    return skip_value(s);
}

/* The members of an object at s->p, each handed to `member` with its raw
 * key (NULL for a key with escapes, which matches nothing here). */
static int object(scan *s, int (*member)(scan *, const char *, size_t, void *), void *arg) {
    ws(s);
    if (s->p >= s->end || *s->p != '{') return skip_value(s);
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') return s->p++, 0;
    for (;;) {
        ws(s);
        const char *k;
        size_t kn;
        if (s->p >= s->end || *s->p != '"' || skip_string(s, &k, &kn)) return s->bad = 1, -1;
        if (memchr(k, '\\', kn)) k = NULL;
        ws(s);
        if (s->p >= s->end || *s->p != ':') return s->bad = 1, -1;
        s->p++;
        ws(s);
        if (member(s, k, kn, arg)) return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') return s->p++, 0;
        return s->bad = 1, -1;
    }
}

static int is_key(const char *k, size_t kn, const char *want) { return k && kn == strlen(want) && !memcmp(k, want, kn); }

/* {"shape": ..., "data": [...]}: only "data" is a list of numbers, flat. */
static int tensor_object_member(scan *s, const char *k, size_t kn, void *arg) {
    (void)arg;
    if (is_key(k, kn, "data") && s->p < s->end && *s->p == '[') return tensor_list(s, 1);
    return skip_value(s);
}

/* A tensor position: a list, an object with "data", or anything else. */
static int tensor_at(scan *s) {
    if (s->p < s->end && *s->p == '[') return tensor_list(s, GD_MAX_RANK);
    if (s->p < s->end && *s->p == '{') return object(s, tensor_object_member, NULL);
    return skip_value(s);
}

static int values_member(scan *s, const char *k, size_t kn, void *arg) {
    (void)k, (void)kn, (void)arg;
    return tensor_at(s);
}

static int node_member(scan *s, const char *k, size_t kn, void *arg) {
    (void)arg;
    return is_key(k, kn, "value") ? tensor_at(s) : skip_value(s);
}

/* ---- plain nodes (numscan.h) ---- */

#define NODES_PLACEHOLDER "\"\\u0000n\""

/* A plain string at s->p (printable ASCII, no escapes) appended with its
 * NUL to the pool; *off is where. Returns 0, or -1 when it is not one. */
static int plain_string(scan *s, int64_t *off) {
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *q = s->p + 1, *e = q;
    while (e < s->end && *e != '"') {
        unsigned char ch = (unsigned char)*e++;
        if (ch < 0x20 || ch > 0x7e || ch == '\\') return -1;
    }
    if (e >= s->end) return -1;
    gd_numtab *t = s->t;
    int64_t n = (int64_t)(e - q);
    if (grow(s, (void **)&t->pool, 1, &t->cap_pool, t->n_pool + n + 1)) return -1;
    memcpy(t->pool + t->n_pool, q, (size_t)n);
    t->pool[t->n_pool + n] = '\0';
    *off = t->n_pool;
    t->n_pool += n + 1;
    s->p = e + 1;
    return 0;
}

/* '[' then items read by `item` separated by ',' then ']', at s->p.
 * Returns the count, or -1. */
static int64_t plain_list(scan *s, int (*item)(scan *, void *), void *arg) {
    if (s->p >= s->end || *s->p != '[') return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == ']') return s->p++, 0;
    for (int64_t count = 1;; count++) {
        ws(s);
        if (item(s, arg)) return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') return s->p++, count;
        return -1;
    }
}

static int input_item(scan *s, void *arg) {
    (void)arg;
    gd_numtab *t = s->t;
    int64_t off;
    if (plain_string(s, &off) || grow(s, (void **)&t->ins, sizeof *t->ins, &t->cap_ins, t->n_ins + 1)) return -1;
    t->ins[t->n_ins++] = off;
    return 0;
}

/* A shape entry: 0, or 1-9 then up to 14 digits (jansson's integer, exact). */
static int dim_item(scan *s, void *arg) {
    gd_numnode *nd = arg;
    const char *q = s->p;
    int64_t v = 0;
    while (q < s->end && *q >= '0' && *q <= '9' && q - s->p < 15) v = v * 10 + (*q++ - '0');
    if (q == s->p || (*s->p == '0' && q - s->p > 1) || (q < s->end && ((*q >= '0' && *q <= '9') || *q == '.' ||
                                                                      *q == 'e' || *q == 'E')))
        return -1;
    if (nd->shape_rank == GD_MAX_RANK) return -1;
    nd->shape[nd->shape_rank++] = v;
    s->p = q;
    return 0;
}

/* One plain node object at s->p ('{') appended to the table; -1 when it
 * is not plain. */
static int plain_node(scan *s) {
    gd_numtab *t = s->t;
    gd_numnode nd = {.name = -1, .op = -1, .in_first = t->n_ins, .shape_rank = -1};
    unsigned seen = 0;
    s->p++;
    for (;;) {
        ws(s);
        const char *k;
        size_t kn;
        if (s->p >= s->end || *s->p != '"' || skip_string(s, &k, &kn)) return -1;
        unsigned bit = is_key(k, kn, "name") ? 1u : is_key(k, kn, "op") ? 2u : is_key(k, kn, "inputs") ? 4u
                     : is_key(k, kn, "shape") ? 8u : 0u;
        if (!bit || (seen & bit)) return -1;
        seen |= bit;
        ws(s);
        if (s->p >= s->end || *s->p != ':') return -1;
        s->p++;
        ws(s);
        int rc;
        if (bit == 1) rc = plain_string(s, &nd.name);
        else if (bit == 2) rc = plain_string(s, &nd.op);
        else if (bit == 4) {
            int64_t n = plain_list(s, input_item, NULL);
            rc = n < 0 || n > INT32_MAX / 2 ? -1 : 0;
            nd.n_in = (int)n;
        } else {
            nd.shape_rank = 0;
            rc = plain_list(s, dim_item, &nd) < 0 ? -1 : 0;
        }
        if (rc) return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        return -1;
    }
    if ((seen & 3u) != 3u ||
        (t->n_nodes == t->cap_nodes && grow(s, (void **)&t->nodes, sizeof *t->nodes, &t->cap_nodes, t->n_nodes + 1)))
        return -1;
    t->nodes[t->n_nodes++] = nd;
    return 0;
}

static int node_item(scan *s, void *arg) {
    (void)arg;
    if (poll_cancel(s)) return -1;
    return s->p < s->end && *s->p == '{' ? plain_node(s) : -1;
}

/* The nodes list at s->p ('[') taken whole, or -1 with nothing taken
 * (s->p back at the list). */
static int take_nodes(scan *s) {
    const char *start = s->p;
    gd_numtab *t = s->t;
    int64_t n = plain_list(s, node_item, NULL);
    if (n > 0 && !s->stopped) {
        size_t from = (size_t)(start - s->body), to = (size_t)(s->p - s->body), k = sizeof NODES_PLACEHOLDER - 1;
        if (k <= to - from && !text_room(s, from - s->copied + k)) {
            memcpy(t->text + t->text_len, s->body + s->copied, from - s->copied);
            t->text_len += from - s->copied;
            memcpy(t->text + t->text_len, NODES_PLACEHOLDER, k);
            t->text_len += k;
            s->copied = to;
            t->nodes_taken = 1;
            return 0;
        }
    }
    t->n_nodes = t->n_ins = t->n_pool = 0;
    s->p = start;
    return -1;
}

int gd_numtab_is_nodes(const gd_numtab *t, const char *s, size_t n) {
    return t && t->nodes_taken && n == 2 && s[0] == '\0' && s[1] == 'n';
}

/* "nodes": [{...}, ...]: taken whole when every node is plain, else each
 * node's "value" looked at. */
static int nodes_list(scan *s) {
    if (s->p >= s->end || *s->p != '[') return skip_value(s);
    if (!s->t->nodes_taken && !take_nodes(s)) return 0;
    if (s->stopped) return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == ']') return s->p++, 0;
    for (;;) {
        ws(s);
        if (s->p < s->end && *s->p == '{') {
            if (object(s, node_member, NULL)) return -1;
        } else if (skip_value(s)) {
            return -1;
        }
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') return s->p++, 0;
        return s->bad = 1, -1;
    }
}

static int graph_member(scan *s, const char *k, size_t kn, void *arg) {
    (void)arg;
    return is_key(k, kn, "nodes") ? nodes_list(s) : skip_value(s);
}

static int root_member(scan *s, const char *k, size_t kn, void *arg) {
    (void)arg;
    if (is_key(k, kn, "values")) return object(s, values_member, NULL);
    if (is_key(k, kn, "graph")) return object(s, graph_member, NULL);
    return skip_value(s);
}

void gd_numtab_free_text(gd_arena *a, gd_numtab *t) {
    gd_arena_release(a, t->text);
    t->text = NULL;
}

void gd_numtab_free(gd_arena *a, gd_numtab *t) {
    gd_numtab_free_text(a, t);
    gd_arena_release(a, t->v);
    gd_arena_release(a, t->arr);
    gd_arena_release(a, t->nodes);
    gd_arena_release(a, t->ins);
    gd_arena_release(a, t->pool);
    memset(t, 0, sizeof *t);
}

int gd_numscan(gd_arena *a, const char *body, size_t len, int64_t max_elements, const gd_cancel *cancel,
               gd_numtab *t) {
    memset(t, 0, sizeof *t);
    /* Placeholders must be the only strings holding a NUL (see numscan.h). */
    if (memmem(body, len, "\\u0000", 6)) return 0;
    scan s = {.p = body, .end = body + len, .body = body, .polled = body, .a = a, .max_elements = max_elements,
              .cancel = cancel, .t = t};
    ws(&s);
    int rc = object(&s, root_member, NULL);
    if (s.stopped) {
        gd_numtab_free(a, t);
        return -1;
    }
    if (rc || s.bad || (t->n_arr == 0 && !t->nodes_taken)) {
        gd_numtab_free(a, t);
        return 0;
    }
    if (text_room(&s, len - s.copied)) {
        gd_numtab_free(a, t);
        return 0;
    }
    memcpy(t->text + t->text_len, body + s.copied, len - s.copied);
    t->text_len += len - s.copied;
    t->text[t->text_len] = '\0';
    return 1;
}

const gd_numarr *gd_numtab_find(const gd_numtab *t, const char *s, size_t n) {
    if (!t || n < 2 || s[0] != '\0') return NULL;
    int index = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || index > t->n_arr) return NULL;
        index = index * 10 + (s[i] - '0');
    }
    return index < t->n_arr ? &t->arr[index] : NULL;
}
