/* decode.c - JSON request -> checked gd_graph + gd_run_spec (see decode.h):
 * the request's assembly.
 *
 * The body is parsed once by jansson (integers as reals, duplicate keys
 * rejected; a duplicate is located by dupkey.c); this file then walks the
 * tree: request keys, nodes (op, inputs, attributes decoded generically from
 * the op table's attribute specs), leaf values (each tensor read by wire.c),
 * targets, wrt, fetch. Sizes are checked before allocation. It does not run
 * anything and never speaks HTTP. */
#include "proto/decode.h"

#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proto/canon.h"
#include "proto/dupkey.h"
#include "proto/jpath.h"
#include "proto/jfast.h"
#include "proto/jread.h"
#include "proto/numscan.h"
#include "core/op.h"
#include "proto/wire.h"

/* "tensor_format" values in gd_tensor_format order; read by decode_options. */
static const char *const tensor_formats[] = {"nested", "flat", "b64", "binary", NULL};

const char *gd_tensor_format_name(gd_tensor_format f) {
    return (f >= GD_TF_NESTED && f <= GD_TF_BINARY) ? tensor_formats[f] : "nested";
}

/* ---- the parsed JSON's memory ------------------------------------------------ */

/* jansson's tree can be 80 times the body ({"pad":[{},{},...]}), so it counts
 * against the request's memory limit (A7): jansson allocates through these
 * hooks, and while a request is decoded on a thread (json_arena set) every
 * block is charged to that request's arena as malloc would hold it (its
 * usable size and chunk header); the decoder frees the tree before it
 * returns, so what is charged is uncharged on the same thread.
 * json_set_alloc_funcs is process-wide, hence thread-local state, and hooks
 * installed before main, before jansson allocates anything.
 *
 * While a window is open (json_window_open), blocks of up to JSON_BUMP_MAX
 * bytes come from 1 MiB pages of the decoding thread instead of malloc: a tree
 * is tens of thousands of small blocks (a 10k-node graph spent a third of
 * its CPU in malloc and free). Each carries an 8-byte header (JSON_TAG and
 * its size class); a freed one waits on its class's list for the next
 * block of that size. When the outermost window closes the pages go to a
 * process-wide pool (warm for the next request: faulting a 10k-node tree's
 * pages in afresh cost half its decode) that gd_decode_trim empties when
 * the server has been idle. The charge is what malloc would have held, so limits and
 * their 413s are as before. Pages are mapped aligned to their size and the
 * thread notes every page it bumps from in a small hash set (json_owned), so
 * json_free tells our blocks from malloc's by the block's page alone, never
 * reading memory it does not own; outside windows blocks come from malloc
 * with no header of ours, so what json_dumps returns there may still be
 * handed to free(). Under AddressSanitizer every block is malloc's, so that
 * a use after free or an overrun is still caught (the plain build's fuzz
 * replay in make check runs the pool). */
static _Thread_local gd_arena *json_arena;
static _Thread_local int json_refused; /* a block was refused since json_arena was set */

#define JSON_BUMP_MAX 2048
#define JSON_CLASSES (JSON_BUMP_MAX / 8 + 1) /* class k: 8k bytes of payload */
#define JSON_MAP ((size_t)1 << 20)          /* a page, mapped: a thread's malloc heap would not give
                                             * a big tree's pages back to the system */
#define JSON_POOL_MAX 256                   /* pages the pool keeps */
#define JSON_TAG 0x4a534f4e00000000ull      /* "JSON" in the header's upper half */
#define JSON_TAG_MASK 0xffffffff00000000ull

typedef struct json_page {
    struct json_page *next;
    size_t used;
    _Alignas(16) unsigned char data[];
} json_page;
#define JSON_PAGE_DATA (JSON_MAP - sizeof(json_page))

static _Thread_local int json_depth;     /* windows open on this thread */
static _Thread_local json_page *json_pages;
static _Thread_local uintptr_t *json_owned; /* open addressing: the pages of json_pages, 0 = free slot */
static _Thread_local size_t json_owned_cap, json_owned_n;

static pthread_mutex_t json_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static json_page *json_pool;
static int json_pool_n;

/* A page from the pool, else a new mapping; NULL when out of memory. */
static json_page *page_get(void) {
    pthread_mutex_lock(&json_pool_mu);
    json_page *pg = json_pool;
    if (pg) json_pool = pg->next, json_pool_n--;
    pthread_mutex_unlock(&json_pool_mu);
    if (!pg) { /* twice the size, then the unaligned head and tail given back */
        unsigned char *m = mmap(NULL, 2 * JSON_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        size_t head = (JSON_MAP - ((uintptr_t)m & (JSON_MAP - 1))) & (JSON_MAP - 1);
        if (head) munmap(m, head);
        munmap(m + head + JSON_MAP, JSON_MAP - head);
        pg = (json_page *)(void *)(m + head);
    }
    return pg;
}

/* The pages of list back to the pool, those past its maximum unmapped. */
static void pages_put(json_page *list) {
    json_page *drop = NULL;
    pthread_mutex_lock(&json_pool_mu);
    for (json_page *pg = list, *n; pg; pg = n) {
        n = pg->next;
        if (json_pool_n < JSON_POOL_MAX) pg->next = json_pool, json_pool = pg, json_pool_n++;
        else pg->next = drop, drop = pg;
    }
    pthread_mutex_unlock(&json_pool_mu);
    for (json_page *pg = drop, *n; pg; pg = n) n = pg->next, munmap(pg, JSON_MAP);
}

void gd_decode_trim(void) {
    pthread_mutex_lock(&json_pool_mu);
    json_page *list = json_pool;
    json_pool = NULL, json_pool_n = 0;
    pthread_mutex_unlock(&json_pool_mu);
    for (json_page *pg = list, *n; pg; pg = n) n = pg->next, munmap(pg, JSON_MAP);
}
static _Thread_local uint64_t *json_spare[JSON_CLASSES]; /* freed blocks by class, linked through the payload */

static size_t json_cost(void *p) { return malloc_usable_size(p) + sizeof(size_t); }

/* What malloc holds for an n-byte block (json_cost of it): a chunk of
 * n + 8 bytes rounded to 16, at least 32. */
static size_t json_malloc_cost(size_t n) {
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

/* GCC says __SANITIZE_ADDRESS__; clang (the fuzzing build) says it with
 * __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define GD_JSON_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GD_JSON_ASAN 1
#endif
#endif

/* The owned-page set: page bases hashed by their page number. */
static size_t owned_slot(uintptr_t page) { return (size_t)((page / JSON_MAP) * 0x9e3779b97f4a7c15ull >> 7); }

static int owned_add(uintptr_t page) {
    if (2 * (json_owned_n + 1) > json_owned_cap) { /* at most half full: rehash into twice the room */
        size_t cap = json_owned_cap ? 2 * json_owned_cap : 64;
        uintptr_t *t = calloc(cap, sizeof *t);
        if (!t) return -1;
        for (size_t i = 0; i < json_owned_cap; i++) {
            if (!json_owned[i]) continue;
            size_t j = owned_slot(json_owned[i]) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = json_owned[i];
        }
        free(json_owned);
        json_owned = t, json_owned_cap = cap;
    }
    size_t j = owned_slot(page) & (json_owned_cap - 1);
    while (json_owned[j]) j = (j + 1) & (json_owned_cap - 1);
    json_owned[j] = page, json_owned_n++;
    return 0;
}

static int owned_has(uintptr_t page) {
    if (!json_owned_n) return 0;
    for (size_t j = owned_slot(page) & (json_owned_cap - 1); json_owned[j]; j = (j + 1) & (json_owned_cap - 1))
        if (json_owned[j] == page) return 1;
    return 0;
}

/* A block of class (n + 7) / 8 from the spare list or the current page;
 * NULL (and the caller falls back to malloc) when it is bigger than
 * JSON_BUMP_MAX or no window is open. */
static void *json_bump(size_t n) {
#if defined(GD_JSON_ASAN)
    (void)n;
    return NULL;
#endif
    if (!json_depth || n > JSON_BUMP_MAX) return NULL;
    size_t k = n ? (n + 7) / 8 : 1; /* a spare block holds a pointer */
    uint64_t *h = json_spare[k];
    if (h) {
        json_spare[k] = *(uint64_t **)(h + 1);
    } else {
        size_t size = 8 + 8 * k;
        json_page *pg = json_pages;
        if (!pg || JSON_PAGE_DATA - pg->used < size) {
            if (!(pg = page_get())) return NULL;
            if (owned_add((uintptr_t)pg)) {
                pages_put((pg->next = NULL, pg));
                return NULL;
            }
            pg->next = json_pages, pg->used = 0;
            json_pages = pg;
        }
        h = (uint64_t *)(pg->data + pg->used);
        pg->used += size;
    }
    *h = JSON_TAG | k;
    return h + 1;
}

/* Ours: a window is open, the block lies in one of this thread's pages
 * and its header is live (a freed one's is 0: a second free goes to
 * free(), whose check catches it). */
static int json_bumped(void *p) {
    return json_depth && owned_has((uintptr_t)p & ~(uintptr_t)(JSON_MAP - 1)) &&
           (((uint64_t *)p)[-1] & JSON_TAG_MASK) == JSON_TAG;
}

/* A free block onto its class's list, linked through its payload. */
static void spare_put(uint64_t *h, size_t k) { *(uint64_t **)(h + 1) = json_spare[k], json_spare[k] = h; }

static void *json_malloc(size_t n) {
    void *p = json_bump(n);
    if (p) {
        uint64_t *h = (uint64_t *)p - 1;
        if (json_arena && gd_arena_charge(json_arena, json_malloc_cost(8 * (size_t)(*h & 0xffff)))) {
            spare_put(h, (size_t)(*h & 0xffff));
            json_refused = 1;
            return NULL;
        }
        return p;
    }
    p = malloc(n);
    if (p && json_arena && gd_arena_charge(json_arena, json_cost(p))) {
        free(p);
        json_refused = 1;
        return NULL;
    }
    return p;
}

static void json_free(void *p) {
    if (!p) return;
    if (json_bumped(p)) {
        uint64_t *h = (uint64_t *)p - 1;
        size_t k = (size_t)(*h & 0xffff);
        if (json_arena) gd_arena_uncharge(json_arena, json_malloc_cost(8 * k));
        *h = 0; /* no longer ours: a second free is malloc's to catch */
        spare_put(h, k);
        return;
    }
    if (json_arena) gd_arena_uncharge(json_arena, json_cost(p));
    free(p);
}

/* A decoding window on this thread: the tree's blocks are charged to a
 * (the previous window's arena and refusal are kept in *saved) and small
 * ones come from the thread's pages. Every tree parsed inside is freed
 * before json_window_close. */
typedef struct json_window {
    gd_arena *arena;
    int refused;
} json_window;

static void json_window_open(gd_arena *a, json_window *saved) {
    saved->arena = json_arena, saved->refused = json_refused;
    json_arena = a, json_refused = 0;
    json_depth++;
}

static void json_window_close(const json_window *saved) {
    json_arena = saved->arena, json_refused = saved->refused;
    if (--json_depth) return;
    pages_put(json_pages);
    json_pages = NULL;
    memset(json_spare, 0, sizeof json_spare);
    if (json_owned_n) memset(json_owned, 0, json_owned_cap * sizeof *json_owned), json_owned_n = 0;
}

__attribute__((constructor)) static void json_hooks_install(void) { json_set_alloc_funcs(json_malloc, json_free); }

/* ---- decoding context ------------------------------------------------------- */

/* The decoder's state for one request: the arena and error (also the
 * tensor reader's), the graph being built, and the tensor reader. */
typedef struct dctx {
    gd_arena *a;
    gd_error *err;
    gd_graph *g;
    gd_wire_in wire;
    const gd_decode_limits *lim;
    int64_t edges;     /* inputs of the nodes decoded so far */
} dctx;

/* ---- errors every reader raises -------------------------------------------- */

static int oom(dctx *c) { return gd_error_oom(c->err); }

static int wrong_type(dctx *c, const gd_jpath *p, const char *what, const json_t *j) {
    return gd_json_wrong_type(c->err, p, what, j);
}

/* ---- attributes ------------------------------------------------------------- */

static int bad_attr(dctx *c, const gd_jpath *p, const gd_node *n, const char *key, const char *what) {
    return gd_errorf(c->err, GD_E_INVALID_ATTRIBUTE, p->s, "Node '%s' (%s): '%s' must be %s.", n->name,
                     n->op->name, key, what);
}

/* An integral number that is no exact int64 (gd_json_int64's `why`): outside
 * the int64 range, or a double beyond 2^53. p names the entry. */
static int inexact_int(dctx *c, const gd_jpath *p, const gd_node *n, const char *key, const json_t *v, int why) {
    if (why == GD_JINT_RANGE)
        return gd_errorf(c->err, GD_E_INVALID_ATTRIBUTE, p->s,
                         "Node '%s' (%s): '%s' holds %.17g, outside the int64 range (-9223372036854775808 to "
                         "9223372036854775807).", n->name, n->op->name, key, json_number_value(v));
    return gd_errorf(c->err, GD_E_INVALID_ATTRIBUTE, p->s,
                     "Node '%s' (%s): '%s' holds %.17g as a double (written with a fraction or an exponent, or "
                     "beyond int64), which is not exact beyond 2^53; write an integer within int64, without a "
                     "fraction or an exponent.", n->name, n->op->name, key, json_number_value(v));
}

/* One integer of an attribute, any int64 exactly (A8); p names it. */
static int read_int(dctx *c, const json_t *v, const gd_jpath *p, const gd_node *n, const char *key,
                    const char *what, int64_t *out) {
    int why = gd_json_int64(v, out);
    if (why == GD_JINT_OK) return 0;
    if (why == GD_JINT_NOT_INT) return bad_attr(c, p, n, key, what);
    return inexact_int(c, p, n, key, v, why);
}

/* An integer list (or, for AXIS, a bare integer) into a gd_ints slot. */
static int read_ints(dctx *c, const json_t *v, const gd_jpath *p, const gd_node *n, const char *key, int allow_scalar,
                     gd_ints *dst) {
    const char *what = allow_scalar ? "an integer or a list of at most 8 integers" : "a list of at most 8 integers";
    gd_ints r = {.given = 1};
    if (json_is_number(v) && allow_scalar) {
        int rc = read_int(c, v, p, n, key, what, &r.v[0]);
        if (rc) return rc;
        r.n = 1;
    } else if (json_is_array(v)) {
        if (json_array_size(v) > GD_MAX_RANK) return bad_attr(c, p, n, key, what);
        r.is_list = 1;
        gd_jpath pe = *p;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_number(e)) return bad_attr(c, p, n, key, what);
            gd_jp_pop(&pe, p->n);
            gd_jp_index(&pe, i);
            int why = gd_json_int64(e, &r.v[r.n]);
            if (why == GD_JINT_NOT_INT) return bad_attr(c, p, n, key, what);
            if (why != GD_JINT_OK) return inexact_int(c, &pe, n, key, e, why);
            r.n++;
        }
    } else {
        return bad_attr(c, p, n, key, what);
    }
    *dst = r;
    return 0;
}

/* A dtype attribute: float64 or int64; a leaf also takes float32 (its
 * transport encoding), and its dtype is the node's declaration. */
static int decode_dtype_attr(dctx *c, gd_node *n, const gd_attr_spec *spec, const json_t *v, const gd_jpath *p) {
    gd_num *num = (gd_num *)((char *)n->attrs + spec->offset);
    int leaf = (n->op->flags & GD_OPF_LEAF) != 0;
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
        if (f32) c->g->st[n->index].transport_f32 = 1;
    }
    return 0;
}

/* One attribute, generically from its spec row: the value goes to the
 * gd_ints / gd_num slot at spec->offset in *node->attrs. Leaf `shape` and
 * `dtype` are also the node's declarations. JSON null means "not given". */
static int decode_attr(dctx *c, gd_node *n, const gd_attr_spec *spec, const json_t *v, const gd_jpath *p) {
    if (json_is_null(v)) return 0;
    void *slot = (char *)n->attrs + spec->offset;
    gd_num *num = slot;
    int leaf = (n->op->flags & GD_OPF_LEAF) != 0;
    switch (spec->kind) {
    case GD_ATTR_INT: {
        gd_ints *iv = slot;
        int rc = json_is_number(v) ? read_int(c, v, p, n, spec->name, "an integer", &iv->v[0])
                                   : bad_attr(c, p, n, spec->name, "an integer");
        if (rc) return rc;
        iv->given = 1, iv->n = 1;
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
    case GD_ATTR_DTYPE: return decode_dtype_attr(c, n, spec, v, p);
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
    if (gd_op_is_constant(op)) k[m++] = "value";
    for (int i = 0; i < op->n_attrs; i++) k[m++] = op->attrs[i].name;
    *n = m;
    return k;
}

/* "name" and "op" of the node object at base: both must be strings. */
static int read_name_op(dctx *c, json_t *nj, const char *base, size_t i, const char **name, const char **op) {
    json_t *jname = json_object_get(nj, "name"), *jop = json_object_get(nj, "op");
    if (json_is_string(jname) && json_is_string(jop)) { /* the paths below are for errors only */
        *name = json_string_value(jname), *op = json_string_value(jop);
        return 0;
    }
    gd_jpath p;
    gd_jp_set(&p, base);
    gd_jp_key(&p, "name");
    if (!jname) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "Node %zu has no \"name\".", i);
    if (!json_is_string(jname)) return wrong_type(c, &p, "a string", jname);
    gd_jp_set(&p, base);
    gd_jp_key(&p, "op");
    if (!jop)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "Node '%.256s' (%s) has no \"op\".",
                         json_string_value(jname), base + 2);
    return wrong_type(c, &p, "a string", jop);
}

/* A node's n inputs against the limits; base is the node's path, its
 * "inputs" named only in an error. Issue 9 row 13: edges are capped like
 * nodes, before the node's arrays. */
static int count_inputs(dctx *c, const char *base, size_t n) {
    const gd_decode_limits *lim = c->lim;
    int over_node = lim && lim->max_inputs > 0 && n > (size_t)lim->max_inputs;
    if (!over_node) c->edges += (int64_t)n;
    int over_graph = !over_node && lim && lim->max_edges > 0 && c->edges > lim->max_edges;
    if (!over_node && !over_graph) return n > (size_t)INT32_MAX / 2 ? oom(c) : 0;
    gd_jpath p;
    gd_jp_set(&p, base);
    gd_jp_key(&p, "inputs");
    if (over_node)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p.s, "The node has %zu inputs; the limit is %d.", n,
                         lim->max_inputs);
    return gd_errorf(c->err, GD_E_TOO_LARGE, p.s,
                     "The graph has more than %d inputs over all its nodes (the limit) by this node.",
                     lim->max_edges);
}

/* "inputs" of the node at base (absent or null: none) as an arena array of
 * the names; the strings stay jansson's. */
static int read_inputs(dctx *c, json_t *jin, const char *base, const char ***ins, size_t *n_in) {
    *ins = NULL, *n_in = 0;
    if (!jin || json_is_null(jin)) return 0;
    gd_jpath p;
    gd_jp_set(&p, base);
    gd_jp_key(&p, "inputs");
    if (!json_is_array(jin)) return wrong_type(c, &p, "a list of node names", jin);
    size_t n = json_array_size(jin);
    int rc = count_inputs(c, base, n);
    if (rc) return rc;
    const char **r = gd_arena_alloc(c->a, sizeof *r * (n + 1));
    if (!r) return oom(c);
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(jin, k);
        if (!json_is_string(e)) {
            gd_jp_index(&p, k);
            return wrong_type(c, &p, "a node name (a string)", e);
        }
        r[k] = json_string_value(e);
    }
    *ins = r, *n_in = n;
    return 0;
}

/* A node key at p that is no attribute of its op: a leaf's misplaced
 * "value", or a misspelling answered with the closest valid key. */
static int unknown_node_key(dctx *c, const gd_node *n, const char *key, const gd_jpath *p) {
    if (!strcmp(key, "value") && (n->op->flags & GD_OPF_LEAF)) {
        gd_errorf(c->err, GD_E_UNKNOWN_KEY, p->s,
                  "Node '%s' (%s) cannot hold a \"value\": only a constant's value sits in the node; a %s's "
                  "value goes in the request's \"values\".", n->name, n->op->name, n->op->name);
        return GD_E_UNKNOWN_KEY;
    }
    int nk = 0;
    const char **keys = node_keys(c, n->op, &nk);
    if (!keys) return oom(c);
    gd_errorf(c->err, GD_E_UNKNOWN_KEY, p->s, "Node '%s' (%s) has an unknown key \"%s\".", n->name, n->op->name,
              key);
    gd_error_suggest(c->err, gd_closest(key, keys, nk));
    return GD_E_UNKNOWN_KEY;
}

/* Every key of the node object besides name, op, inputs (and a constant's
 * value), in the object's order: an attribute of the op, or an error. */
static int decode_node_attrs(dctx *c, json_t *nj, const char *base, gd_node *n, int is_const) {
    gd_jpath p;
    const char *key;
    json_t *v;
    json_object_foreach(nj, key, v) {
        if (!strcmp(key, "name") || !strcmp(key, "op") || !strcmp(key, "inputs")) continue;
        if (!strcmp(key, "value") && is_const) continue;
        gd_jp_set(&p, base);
        gd_jp_key(&p, key);
        const gd_attr_spec *spec = gd_op_attr(n->op, key);
        int rc = spec ? decode_attr(c, n, spec, v, &p) : unknown_node_key(c, n, key, &p);
        if (rc) return rc;
    }
    return 0;
}

/* A constant's "value" jv (NULL: absent): required, in any tensor form, of
 * its declared dtype. */
static int decode_const_value(dctx *c, json_t *jv, const char *base, gd_node *n) {
    gd_jpath p;
    gd_jp_set(&p, base);
    if (!jv || json_is_null(jv))
        return gd_errorf(c->err, GD_E_MISSING_VALUE, p.s, "Constant '%s' has no \"value\".", n->name);
    gd_jp_key(&p, "value");
    gd_nstate *st = &c->g->st[n->index];
    gd_wire_want w = {n->has_dtype_decl ? (int)n->dtype_decl : -1, st->transport_f32};
    gd_tensor *t;
    int f32;
    int rc = gd_wire_decode(&c->wire, jv, &p, w, &t, &f32);
    if (rc) return rc;
    gd_graph_set_value(c->g, n->index, t, -1);
    if (f32) st->transport_f32 = 1;
    return 0;
}

/* "$.graph.nodes[i]" into base (64 bytes), without printf: every node of
 * every request needs it, a 100k-node graph spent 7 % of its time in
 * vfprintf here. */
static void node_base(char *base, size_t i) {
    static const char pre[] = "$.graph.nodes[";
    char digits[24];
    int k = 0;
    do digits[k++] = (char)('0' + i % 10); while ((i /= 10) > 0);
    memcpy(base, pre, sizeof pre - 1);
    char *o = base + sizeof pre - 1;
    while (k > 0) *o++ = digits[--k];
    *o++ = ']';
    *o = 0;
}

/* Node i of "nodes": name, op and inputs first (the graph adds the node and
 * checks the op), then its attributes, then a constant's value. */
static int decode_node(dctx *c, json_t *nj, size_t i) {
    char base[64];
    node_base(base, i);
    if (!json_is_object(nj)) {
        gd_jpath p;
        gd_jp_set(&p, base);
        return wrong_type(c, &p, "a node object", nj);
    }
    const char *name = NULL, *op = NULL, **ins = NULL;
    size_t n_in = 0;
    int rc = read_name_op(c, nj, base, i, &name, &op);
    if (rc || (rc = read_inputs(c, json_object_get(nj, "inputs"), base, &ins, &n_in))) return rc;
    gd_node *n = gd_graph_add(c->g, name, op, ins, (int)n_in, c->err);
    if (!n) return c->err->code;
    int is_const = gd_op_is_constant(n->op);
    if ((rc = decode_node_attrs(c, nj, base, n, is_const))) return rc;
    return is_const ? decode_const_value(c, json_object_get(nj, "value"), base, n) : 0;
}

/* Node i read ahead of jansson (numscan.h: name, op, inputs and shape
 * only), decoded as decode_node decodes the same node from jansson's tree:
 * the same checks in the same order, the same graph, the same errors. */
static int decode_plain_node(dctx *c, const gd_numtab *t, int64_t i) {
    const gd_numnode *nn = &t->nodes[i];
    char base[64];
    node_base(base, (size_t)i);
    int rc = count_inputs(c, base, (size_t)nn->n_in);
    if (rc) return rc;
    const char **ins = gd_arena_alloc_raw(c->a, sizeof *ins * (size_t)(nn->n_in + 1));
    if (!ins) return oom(c);
    for (int k = 0; k < nn->n_in; k++) ins[k] = t->pool + t->ins[nn->in_first + k];
    gd_node *n = gd_graph_add(c->g, t->pool + nn->name, t->pool + nn->op, ins, nn->n_in, c->err);
    if (!n) return c->err->code;
    if (nn->shape_rank >= 0) {
        gd_jpath p;
        gd_jp_set(&p, base);
        gd_jp_key(&p, "shape");
        const gd_attr_spec *spec = gd_op_attr(n->op, "shape");
        if (!spec) return unknown_node_key(c, n, "shape", &p);
        json_t *v = json_array();
        for (int k = 0; v && k < nn->shape_rank; k++)
            if (json_array_append_new(v, json_integer((json_int_t)nn->shape[k]))) json_decref(v), v = NULL;
        if (!v) return oom(c);
        rc = decode_attr(c, n, spec, v, &p);
        json_decref(v);
        if (rc) return rc;
    }
    return gd_op_is_constant(n->op) ? decode_const_value(c, NULL, base, n) : 0;
}

/* ---- names: targets, wrt, fetch, values ------------------------------------- */

/* Closest name among the nodes that pass `filter` (NULL: all), for "did you
 * mean"; bounded like every such search (gd_closest_init). */
static const char *closest_node(dctx *c, const char *word, int (*filter)(const gd_node *)) {
    gd_closest_search s;
    gd_closest_init(&s, word, GD_CLOSEST_BUDGET);
    for (int i = 0; i < c->g->n; i++)
        if ((!filter || filter(&c->g->nodes[i])) && !gd_closest_add(&s, c->g->nodes[i].name)) break;
    return s.best;
}

static int takes_values(const gd_node *n) {
    return gd_op_takes_value(n->op);
}

/* Node index of the name in j at path p, or an error: wrong type
 * (invalid_request) or no such node (unknown_node with a suggestion). */
static int resolve(dctx *c, const json_t *j, const gd_jpath *p, const char *what, int *idx) {
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
    gd_jpath p;
    gd_jp_set(&p, "$");
    gd_jp_key(&p, key);
    if (!json_is_array(j)) return wrong_type(c, &p, "a list of node names", j);
    size_t m = json_array_size(j);
    if (m > (size_t)INT32_MAX / 4) return oom(c);
    int *r = gd_arena_alloc(c->a, sizeof *r * (m + 1));
    unsigned char *seen = gd_arena_alloc(c->a, (size_t)c->g->n + 1);
    if (!r || !seen) return oom(c);
    size_t mark = p.n;
    for (size_t i = 0; i < m; i++) {
        gd_jp_index(&p, i);
        int rc = resolve(c, json_array_get(j, i), &p, what, &r[i]);
        if (rc) return rc;
        if (seen[r[i]]++)
            return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "'%s' is listed twice in \"%s\" (%s).",
                             c->g->nodes[r[i]].name, key, p.s);
        gd_jp_pop(&p, mark);
    }
    *idx = r;
    *n = (int)m;
    return 0;
}

static int decode_values(dctx *c, json_t *jv) {
    gd_jpath p;
    gd_jp_set(&p, "$.values");
    if (!json_is_object(jv)) return wrong_type(c, &p, "an object mapping node names to tensors", jv);
    const char *key;
    json_t *v;
    int ordinal = 0;
    json_object_foreach(jv, key, v) {
        gd_jp_set(&p, "$.values");
        gd_jp_key(&p, key);
        int k = gd_graph_find(c->g, key);
        if (k < 0 || !takes_values(&c->g->nodes[k])) {
            if (k < 0)
                gd_errorf(c->err, GD_E_UNKNOWN_NODE, p.s, "\"values\" names '%s', which is no node of the graph.", key);
            else
                gd_errorf(c->err, GD_E_UNKNOWN_NODE, p.s,
                          "\"values\" names '%s', a %s node; only variable and input nodes take values%s.", key,
                          c->g->nodes[k].op->name,
                          gd_op_is_constant(c->g->nodes[k].op) ? " (a constant's sits in its \"value\")" : "");
            gd_error_suggest(c->err, closest_node(c, key, takes_values));
            return GD_E_UNKNOWN_NODE;
        }
        const gd_node *n = &c->g->nodes[k];
        gd_nstate *st = &c->g->st[k];
        gd_wire_want w = {n->has_dtype_decl ? (int)n->dtype_decl : -1, st->transport_f32};
        gd_tensor *t;
        int f32;
        int rc = gd_cancel_check(c->lim ? c->lim->cancel : NULL, c->err);
        if (rc || (rc = gd_wire_decode(&c->wire, v, &p, w, &t, &f32))) return rc;
        gd_graph_set_value(c->g, k, t, ordinal++);
        if (f32) st->transport_f32 = 1;
    }
    return 0;
}

/* One cotangent: any tensor form, float64 (or float32) only, since a
 * gradient is never int64 (PyTorch refuses an integer grad_output too). */
static int decode_cotangent(dctx *c, json_t *j, gd_jpath *p, gd_tensor **out) {
    gd_wire_want w = {-1, 0};
    int f32;
    int rc = gd_wire_decode(&c->wire, j, p, w, out, &f32);
    if (rc) return rc;
    if ((*out)->dtype != GD_F64)
        return gd_errorf(c->err, GD_E_DTYPE_MISMATCH, p->s,
                         "%s is int64; a cotangent is float64 (or float32), since gradients are never int64.", p->s);
    return 0;
}

/* target_grad: one tensor for a single target, an object target -> tensor
 * for a list. Entries stay NULL for targets without one. */
static int decode_target_grad(dctx *c, json_t *j, gd_request *r, gd_tensor **tg) {
    gd_jpath p;
    gd_jp_set(&p, "$.target_grad");
    if (!r->spec.targets_is_list) return decode_cotangent(c, j, &p, &tg[0]);
    if (!json_is_object(j))
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s,
                         "\"target\" is a list, so \"target_grad\" must be an object mapping target names to "
                         "tensors, not %s.", gd_json_kind(j));
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        gd_jp_set(&p, "$.target_grad");
        gd_jp_key(&p, key);
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
                                        "fetch", "check_numerics", "deadline_ms", "tensor_format", "graph_id", NULL};
static const char *const eval_keys[] = {"graph",       "values",        "target",   "fetch", "check_numerics",
                                        "deadline_ms", "tensor_format", "graph_id", NULL};

/* A field that may be absent; JSON null counts as absent. */
static json_t *opt(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

/* One of a small set of strings (unconnected, tensor_format). */
static int read_choice(dctx *c, json_t *j, const char *key, const char *const *choices, int *out) {
    gd_jpath p;
    gd_jp_set(&p, "$");
    gd_jp_key(&p, key);
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
    gd_jpath p;
    r->spec.check_numerics = 1;
    r->deadline_ms = -1;
    if ((j = opt(root, "check_numerics"))) {
        gd_jp_set(&p, "$.check_numerics");
        if (!json_is_boolean(j)) return wrong_type(c, &p, "true or false", j);
        r->spec.check_numerics = json_is_true(j);
    }
    if ((j = opt(root, "deadline_ms"))) {
        gd_jp_set(&p, "$.deadline_ms");
        if (!json_is_number(j)) return wrong_type(c, &p, "a positive integer (milliseconds)", j);
        /* A7: the range first (no arithmetic on what is outside it), then exactness. */
        double v = json_number_value(j);
        if (!(v >= 1 && v <= GD_DEADLINE_MS_MAX))
            return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s,
                             "\"deadline_ms\" must be from 1 to %lld milliseconds (one day), got %.17g.",
                             (long long)GD_DEADLINE_MS_MAX, v);
        int64_t d;
        if (!gd_json_exact_int(j, &d))
            return gd_errorf(c->err, GD_E_INVALID_VALUE, p.s,
                             "\"deadline_ms\" must be a positive integer number of milliseconds, got %.17g.", v);
        r->deadline_ms = d;
    }
    if ((j = opt(root, "tensor_format"))) {
        int f;
        int rc = read_choice(c, j, "tensor_format", tensor_formats, &f);
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
        gd_jpath p;
        gd_jp_set(&p, "$");
        gd_jp_key(&p, key);
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
    gd_jpath p;
    gd_jp_set(&p, "$.graph");
    if (!json_is_object(jg)) return wrong_type(c, &p, "an object with \"nodes\"", jg);
    const char *key;
    json_t *v;
    json_object_foreach(jg, key, v) {
        if (!strcmp(key, "nodes")) continue;
        static const char *const gkeys[] = {"nodes", NULL};
        gd_jp_key(&p, key);
        gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s, "Unknown key \"%s\" in the graph; a graph has only \"nodes\".", key);
        gd_error_suggest(c->err, gd_closest(key, gkeys, -1));
        return GD_E_UNKNOWN_KEY;
    }
    json_t *jn = json_object_get(jg, "nodes");
    gd_jp_key(&p, "nodes");
    if (!jn) return gd_errorf(c->err, GD_E_INVALID_REQUEST, p.s, "The graph has no \"nodes\".");
    /* the nodes read ahead of jansson (numscan.h), or jansson's list */
    const gd_numtab *plain = json_is_string(jn) && gd_numtab_is_nodes(c->wire.fast, json_string_value(jn),
                                                                       json_string_length(jn))
                                 ? c->wire.fast
                                 : NULL;
    if (!plain && !json_is_array(jn)) return wrong_type(c, &p, "a list of node objects", jn);
    size_t n = plain ? (size_t)plain->n_nodes : json_array_size(jn);
    if (lim && lim->max_nodes > 0 && n > (size_t)lim->max_nodes)
        return gd_errorf(c->err, GD_E_TOO_LARGE, p.s, "The graph has %zu nodes; the limit is %d.", n,
                         lim->max_nodes);
    if (n > (size_t)INT32_MAX / 4) return oom(c);
    if (!(c->g = gd_graph_new(c->a, (int)n))) return oom(c);
    for (size_t i = 0; i < n; i++) {
        int rc = (i & 255) == 255 ? gd_cancel_check(c->lim ? c->lim->cancel : NULL, c->err) : 0;
        if (rc || (rc = plain ? decode_plain_node(c, plain, (int64_t)i) : decode_node(c, json_array_get(jn, i), i)))
            return rc;
    }
    return 0;
}

/* "graph_id": a request's view of the held graph of that id (A3), with
 * nothing parsed, resolved, ordered or decoded again; unknown_graph (404)
 * when this replica does not hold it. */
static int use_registered(dctx *c, json_t *jid) {
    gd_jpath p;
    gd_jp_set(&p, "$.graph_id");
    if (!json_is_string(jid)) return wrong_type(c, &p, "a graph id (\"sha256:...\", from POST /v1/graphs)", jid);
    const char *id = json_string_value(jid);
    const gd_graph *held = c->lim && c->lim->lookup ? c->lim->lookup(c->lim->lookup_arg, id) : NULL;
    if (!held)
        return gd_errorf(c->err, GD_E_UNKNOWN_GRAPH, p.s,
                         "No graph '%.80s' is registered here; register it with POST /v1/graphs and retry.", id);
    return (c->g = gd_graph_instance(c->a, held)) ? 0 : oom(c);
}

/* target: a name, or a non-empty list of names. */
static int decode_targets(dctx *c, json_t *jt, gd_request *r) {
    gd_jpath p;
    gd_jp_set(&p, "$.target");
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

/* The /v1/grad fields, once the targets are known: target_grad (a slot per
 * target, NULL where none is given) and wrt (absent: every variable). */
static int decode_grad_fields(dctx *c, json_t *root, gd_request *r) {
    json_t *j;
    int rc;
    r->spec.grad = 1;
    gd_tensor **tg = gd_arena_alloc(c->a, sizeof *tg * (size_t)(r->spec.n_targets + 1));
    if (!tg) return oom(c);
    if ((j = opt(root, "target_grad")) && (rc = decode_target_grad(c, j, r, tg))) return rc;
    r->spec.target_grad = tg;
    int *w, nw = 0;
    if ((j = opt(root, "wrt"))) {
        if ((rc = resolve_list(c, j, "wrt", "The wrt entry", &w, &nw))) return rc;
        if (nw == 0) /* A1: an empty wrt asks for no gradient at all */
            return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$.wrt",
                             "\"wrt\" is empty, so no gradient is asked for; name the nodes to differentiate, "
                             "or use /v1/eval for values only.");
    } else {
        if (!(w = gd_arena_alloc(c->a, sizeof *w * (size_t)(c->g->n + 1)))) return oom(c);
        for (int i = 0; i < c->g->n; i++)
            if (c->g->nodes[i].op->flags & GD_OPF_VARIABLE) w[nw++] = i;
    }
    r->spec.wrt = w, r->spec.n_wrt = nw;
    if (!(r->wrt_names = names_of(c, w, nw))) return oom(c);
    return 0;
}

/* fetch: the listed nodes; on /v1/eval without it, the targets. */
static int decode_fetch(dctx *c, json_t *root, int endpoint, gd_request *r) {
    json_t *j;
    int *f = NULL, nf = 0;
    if ((j = opt(root, "fetch"))) {
        int rc = resolve_list(c, j, "fetch", "The fetch entry", &f, &nf);
        if (rc) return rc;
        r->fetch_given = 1;
    } else if (endpoint == GD_EP_EVAL) {
        f = (int *)r->spec.targets, nf = r->spec.n_targets;
        r->fetch_given = 1;
    }
    r->spec.fetch = f, r->spec.n_fetch = nf;
    if (!(r->fetch_names = names_of(c, f, nf))) return oom(c);
    return 0;
}

/* Everything after parsing, in the order that decides which error a bad
 * request gets: keys and options, graph, values, targets, the grad fields,
 * fetch, binary overlaps, then the graph check. root is borrowed. */
static int decode_root(dctx *c, json_t *root, int endpoint, const gd_decode_limits *lim, gd_request *r) {
    int rc;
    if (!json_is_object(root))
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$", "The request must be a JSON object, not %s.",
                         gd_json_kind(root));
    if ((rc = check_top_keys(c, root, endpoint)) || (rc = decode_options(c, root, endpoint, r))) return rc;
    json_t *jg = json_object_get(root, "graph"), *jid = json_object_get(root, "graph_id");
    if (jg && jid)
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$.graph_id",
                         "The request has both \"graph\" and \"graph_id\"; send one of them.");
    if (jid) rc = use_registered(c, jid);
    else if (!jg) return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$.graph", "The request has no \"graph\".");
    else if (lim && lim->graph_given) rc = (c->g = gd_graph_instance(c->a, lim->graph_given)) ? 0 : oom(c);
    else rc = decode_graph(c, jg, lim);
    if (rc) return rc;
    r->graph = c->g;
    /* Names resolve from here on; gd_graph_check indexes again, cheaply. */
    if ((rc = gd_graph_index(c->g, c->err))) return rc;
    json_t *j;
    if ((j = opt(root, "values")) && (rc = decode_values(c, j))) return rc;
    if ((rc = decode_targets(c, json_object_get(root, "target"), r))) return rc;
    if (!(r->target_names = names_of(c, r->spec.targets, r->spec.n_targets))) return oom(c);
    if (endpoint == GD_EP_GRAD && (rc = decode_grad_fields(c, root, r))) return rc;
    if ((rc = decode_fetch(c, root, endpoint, r))) return rc;
    if ((rc = gd_wire_check_overlaps(&c->wire))) return rc;
    gd_limits gl = {.max_elements = lim && lim->max_elements > 0 ? lim->max_elements : 0,
                    .cancel = lim ? lim->cancel : NULL};
    return gd_graph_check_request(c->g, r->spec.targets, r->spec.n_targets, r->spec.fetch, r->spec.n_fetch, &gl,
                                  c->err);
}

/* An integer literal of len bytes (optional '-', then digits) that json_int_t
 * cannot hold. */
static int int_overflows(const char *lit, size_t len) {
    int neg = lit[0] == '-';
    const char *d = lit + neg;
    size_t n = len - (size_t)neg;
    while (n > 1 && *d == '0') d++, n--; /* not valid JSON, but never an overflow */
    if (n != 19) return n > 19;
    return memcmp(d, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

static int parse_too_large(gd_error *err) {
    return gd_errorf(err, GD_E_TOO_LARGE, NULL,
                     "The parsed body needs more memory than this server allows for one request (a JSON tree "
                     "takes many times the text); send large tensors in the \"b64\" or binary form.");
}

/* body with every integer literal beyond int64 written as a real ("...0.0"),
 * so that jansson keeps every other integer exact (an int64 attribute such as
 * "ends": [9223372036854775807] stays exact beside a float64 value written as
 * 1000000000000000000000). Strings are copied untouched. Returns the copy, a
 * gd_arena_buf block the caller releases (NULL when out of memory), and its
 * length in *out_len. */
static char *big_ints_as_reals(gd_arena *a, const char *body, size_t len, size_t *out_len) {
    size_t big = 0;
    int in_str = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *out = pass ? gd_arena_buf(a, len + 2 * big + 1, 0) : NULL;
        if (pass && !out) return NULL;
        size_t o = 0;
        in_str = 0;
        for (size_t i = 0; i < len;) {
            char ch = body[i];
            if (in_str || ch == '"' || !(ch == '-' || (ch >= '0' && ch <= '9'))) {
                if (in_str && ch == '\\' && i + 1 < len) {
                    if (out) out[o] = ch, out[o + 1] = body[i + 1];
                    o += 2, i += 2;
                    continue;
                }
                if (ch == '"') in_str = !in_str;
                if (out) out[o] = ch;
                o++, i++;
                continue;
            }
            size_t j = i + (ch == '-');
            while (j < len && body[j] >= '0' && body[j] <= '9') j++;
            int is_int = j > i + (ch == '-') && !(j < len && (body[j] == '.' || body[j] == 'e' || body[j] == 'E'));
            while (j < len && ((body[j] >= '0' && body[j] <= '9') || (body[j] && strchr(".eE+-", body[j])))) j++;
            if (out) memcpy(out + o, body + i, j - i);
            o += j - i;
            if (is_int && int_overflows(body + i, j - i)) {
                if (out) memcpy(out + o, ".0", 2);
                o += 2, big++;
            }
            i = j;
        }
        if (pass) {
            out[o] = '\0';
            *out_len = o;
            return out;
        }
    }
    return NULL;
}

/* jansson reads the body through this, a slice at a time, so that a parse
 * of a large body stops at the deadline (A7): after each slice the cancel
 * record is polled, and a stop ends the parse as a read error. */
#define PARSE_SLICE ((size_t)1 << 16)

typedef struct parse_src {
    const char *p;
    size_t left;
    const gd_cancel *cancel;
    int stopped;
} parse_src;

static size_t parse_read(void *buf, size_t size, void *arg) {
    parse_src *s = arg;
    if (s->left && gd_cancel_check(s->cancel, NULL)) {
        s->stopped = 1;
        return (size_t)-1;
    }
    size_t n = s->left < size ? s->left : size;
    if (n > PARSE_SLICE) n = PARSE_SLICE;
    memcpy(buf, s->p, n);
    s->p += n, s->left -= n;
    return n;
}

/* json_loadb, stoppable: *stopped is set when the cancel record fired. */
static json_t *parse(const char *text, size_t len, size_t flags, const gd_cancel *cancel, json_error_t *je,
                     int *stopped) {
    /* Well-formed text the quick way (jfast.h); anything else, and every
     * error message, from jansson. */
    if (!(flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)) && (flags & JSON_REJECT_DUPLICATES)) {
        json_t *root = gd_json_fast(text, len, (flags & JSON_ALLOW_NUL) != 0, cancel, stopped);
        if (root || *stopped) return root;
    }
    if (!cancel) return json_loadb(text, len, flags, je);
    parse_src src = {text, len, cancel, 0};
    json_t *root = json_load_callback(parse_read, &src, flags, je);
    if (src.stopped) *stopped = 1;
    return root;
}

/* The body's JSON tree into *out (the caller json_decref's it), or an
 * error: deadline, too_large, duplicate key, invalid JSON. With fast, the
 * numeric lists at tensor positions are read ahead into *fast (numscan.h)
 * and *nfast is their count (the caller gd_numtab_free's them when > 0);
 * without, every number goes through jansson. */
static int parse_body(gd_arena *a, const char *body, size_t json_len, const gd_decode_limits *lim, json_t **out,
                      gd_numtab *fast, int *nfast, gd_error *err) {
    json_error_t je;
    /* Integers are kept as integers, so that an int64 element or attribute is
     * read exactly (9007199254740993 is not silently 2^53); every float
     * consumer reads json_number_value, so 1 and 1.0 stay the same number.
     * When an integer does not fit json_int_t (never a valid int64 anyway),
     * the body is read again with such integers written as reals, the others
     * still exact; if that copy fails to parse, the error is reported from the
     * body itself (positions as sent) read with every integer as a real. */
    const gd_cancel *cancel = lim ? lim->cancel : NULL;
    int stopped = 0;
    json_t *root = NULL;
    /* Numeric lists read ahead (numscan.h) and stood in by placeholders; if
     * that text fails to parse for any reason, the body is parsed as it is,
     * so that every error is the one the body itself gives. */
    if (nfast) *nfast = 0;
    if (fast) {
        *nfast = gd_numscan(a, body, json_len, lim && lim->max_elements > 0 ? lim->max_elements : 0, cancel, fast);
        if (*nfast < 0) stopped = 1, *nfast = 0;
    }
    if (fast && *nfast > 0) {
        root = parse(fast->text, fast->text_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, cancel, &je, &stopped);
        gd_numtab_free_text(a, fast);
        if (!root) {
            gd_numtab_free(a, fast);
            *nfast = 0;
            json_refused = 0;
        }
    }
    if (!root && !stopped) root = parse(body, json_len, JSON_REJECT_DUPLICATES, cancel, &je, &stopped);
    if (!root && !stopped && json_error_code(&je) == json_error_numeric_overflow) {
        size_t len2 = 0;
        char *body2 = big_ints_as_reals(a, body, json_len, &len2);
        if (!body2) return gd_error_oom(err);
        root = parse(body2, len2, JSON_REJECT_DUPLICATES, cancel, &je, &stopped);
        gd_arena_release(a, body2);
        if (!root && !stopped)
            root = parse(body, json_len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, cancel, &je, &stopped);
    }
    if (stopped) return gd_errorf(err, GD_E_DEADLINE_EXCEEDED, NULL, "%s", GD_DEADLINE_MESSAGE);
    if (!root) {
        if (json_refused) return parse_too_large(err);
        if (json_error_code(&je) == json_error_duplicate_key) {
            gd_jpath p;
            gd_dupkey_path(body, (size_t)je.position <= json_len ? (size_t)je.position : json_len, &p);
            return gd_errorf(err, GD_E_INVALID_REQUEST, p.s, "Duplicate key %s (line %d, column %d): each key may "
                             "appear once in an object.", p.s[0] ? p.s : "", je.line, je.column);
        }
        return gd_errorf(err, GD_E_INVALID_JSON, NULL, "The body is not valid JSON: %s (line %d, column %d).", je.text,
                         je.line, je.column);
    }
    *out = root;
    return 0;
}

static int decode_request(gd_arena *a, const char *body, size_t json_len, const unsigned char *bin, size_t bin_len,
                          int endpoint, const gd_decode_limits *lim, gd_request *req, gd_error *err) {
    memset(req, 0, sizeof *req);
    req->endpoint = endpoint == GD_EP_EVAL ? GD_EP_EVAL : GD_EP_GRAD;
    req->deadline_ms = -1;
    req->spec.check_numerics = 1;
    gd_error_clear(err);
    json_t *root;
    gd_numtab fast;
    int nfast = 0;
    int prc = parse_body(a, body, json_len, lim, &root, &fast, &nfast, err);
    if (prc) return prc;
    dctx c = {.a = a, .err = err, .lim = lim,
              .wire = {.a = a, .bin = bin, .bin_len = bin ? bin_len : 0, .err = err,
                       .max_elements = lim && lim->max_elements > 0 ? lim->max_elements : 0,
                       .fast = nfast > 0 ? &fast : NULL}};
    int rc = decode_root(&c, root, req->endpoint, lim, req);
    json_decref(root);
    if (nfast > 0) gd_numtab_free(a, &fast);
    if (rc && json_refused) return parse_too_large(err);
    if (rc) {
        if (err && err->code == GD_OK) err->code = (gd_err)rc;
        return rc;
    }
    return 0;
}

/* The parse is charged to the request's arena for as long as it lasts (see
 * json_malloc); one that outgrows the limit is too_large whatever else the
 * body holds. */
int gd_decode_request(gd_arena *a, const char *body, size_t json_len, const unsigned char *bin, size_t bin_len,
                      int endpoint, const gd_decode_limits *lim, gd_request *req, gd_error *err) {
    gd_error local;
    if (!err) err = &local; /* the decoder reads back codes it set */
    json_window w;
    json_window_open(a, &w);
    int rc = decode_request(a, body, json_len, bin, bin_len, endpoint, lim, req, err);
    json_window_close(&w);
    return rc;
}

/* {"graph": ...} only; the graph as decode_graph builds it for a request,
 * in the held arena, then its canonical text and the check without values. */
static int decode_graph_root(dctx *c, json_t *root, gd_buf *canon) {
    if (!json_is_object(root))
        return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$", "The body must be a JSON object {\"graph\": ...}, not %s.",
                         gd_json_kind(root));
    static const char *const keys[] = {"graph", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "graph")) continue;
        gd_jpath p;
        gd_jp_set(&p, "$");
        gd_jp_key(&p, key);
        gd_errorf(c->err, GD_E_UNKNOWN_KEY, p.s, "Unknown key \"%s\"; a registration is {\"graph\": ...}.", key);
        gd_error_suggest(c->err, gd_closest(key, keys, -1));
        return GD_E_UNKNOWN_KEY;
    }
    json_t *jg = json_object_get(root, "graph");
    if (!jg) return gd_errorf(c->err, GD_E_INVALID_REQUEST, "$.graph", "The request has no \"graph\".");
    int rc = decode_graph(c, jg, c->lim);
    if (rc) return rc;
    if (gd_canon_json(canon, jg)) return oom(c);
    gd_limits gl = {.max_elements = c->lim && c->lim->max_elements > 0 ? c->lim->max_elements : 0,
                    .cancel = c->lim ? c->lim->cancel : NULL};
    if ((rc = gd_graph_check(c->g, &gl, c->err))) return rc;
    return gd_graph_hold(c->g) ? oom(c) : 0; /* held from now on: its memo's slots, counted with it */
}

int gd_decode_graph(gd_arena *a, gd_arena *held, const char *body, size_t json_len, const gd_decode_limits *lim,
                    gd_graph **g, gd_buf *canon, gd_error *err) {
    gd_error local;
    if (!err) err = &local;
    gd_error_clear(err);
    *g = NULL;
    json_window w;
    json_window_open(a, &w);
    json_t *root;
    int rc = parse_body(a, body, json_len, lim, &root, NULL, NULL, err);
    if (!rc) {
        dctx c = {.a = held, .err = err, .lim = lim,
                  .wire = {.a = held, .err = err, .max_elements = lim && lim->max_elements > 0 ? lim->max_elements : 0}};
        rc = decode_graph_root(&c, root, canon);
        json_decref(root);
        if (rc && json_refused) rc = parse_too_large(err);
        else if (!rc) *g = c.g;
        if (rc && err->code == GD_OK) err->code = (gd_err)rc;
    }
    json_window_close(&w);
    return rc;
}
