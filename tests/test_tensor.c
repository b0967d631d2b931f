/* test_tensor.c - arena accounting and limits, shape arithmetic with overflow
 * checks, broadcasting, the strided loop against a naive loop, sum-down,
 * reduction geometry, the error table and "did you mean". */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "tests.h"

START_TEST(arena_limit_and_release) {
    gd_arena *a = gd_arena_new(1 << 20);
    void *p = gd_arena_buf(a, 512 * 1024, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(gd_arena_buf(a, 600 * 1024, 0)); /* over the limit: refused, not aborted */
    size_t live = gd_arena_live(a);
    gd_arena_release(a, p);
    ck_assert_uint_lt(gd_arena_live(a), live);
    ck_assert_ptr_nonnull(gd_arena_buf(a, 600 * 1024, 1));
    ck_assert_uint_ge(gd_arena_peak(a), 600 * 1024);
    ck_assert_uint_eq((uintptr_t)gd_arena_buf(a, 8, 0) % 64, 0);
    ck_assert_ptr_null(gd_arena_buf(a, SIZE_MAX - 10, 0));
    gd_arena_free(a);
}
END_TEST

/* Released big buffers are reused by the next allocation of about their size
 * (not by a much smaller one), and waiting ones never let an arena pass its
 * limit. A gd_bufcache hands one arena's big buffers to the next arena, keeps
 * at most its maximum, and a buffer taken from it is charged to the arena. */
START_TEST(arena_recycles_big_buffers) {
    gd_arena *a = gd_arena_new(1 << 20);
    unsigned char *p = gd_arena_buf(a, 256 * 1024, 0);
    ck_assert_ptr_nonnull(p);
    gd_arena_release(a, p);
    ck_assert_uint_eq(gd_arena_live(a), 0);
    ck_assert_ptr_eq(gd_arena_buf(a, 250 * 1024, 0), p); /* about the same size: the same block */
    gd_arena_release(a, p);
    unsigned char *q = gd_arena_buf(a, 100 * 1024, 0); /* much smaller: a new block */
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_ne(q, p);
    /* q + 900 KB fit the 1 MB limit only once p's waiting 256 KB are dropped. */
    ck_assert_ptr_nonnull(gd_arena_buf(a, 900 * 1024, 0));
    ck_assert_uint_le(gd_arena_live(a), 1 << 20);
    gd_arena_free(a);

    gd_bufcache *c = gd_bufcache_new(1 << 20);
    gd_arena *a1 = gd_arena_new_cached(0, c);
    uintptr_t x = (uintptr_t)gd_arena_buf(a1, 512 * 1024, 0), y = (uintptr_t)gd_arena_buf(a1, 512 * 1024, 0);
    ck_assert(x && y && gd_arena_buf(a1, 1024, 0));
    gd_arena_free(a1); /* two blocks of 512 KB + header: only one fits the cache */
    ck_assert_uint_gt(gd_bufcache_bytes(c), 512 * 1024);
    ck_assert_uint_le(gd_bufcache_bytes(c), 1 << 20);
    gd_arena *small = gd_arena_new_cached(256 * 1024, c);
    ck_assert_ptr_null(gd_arena_buf(small, 500 * 1024, 0)); /* past this arena's limit, cached or not */
    gd_arena_free(small);
    ck_assert_uint_gt(gd_bufcache_bytes(c), 512 * 1024); /* still cached */
    gd_arena *a2 = gd_arena_new_cached(1 << 20, c);
    unsigned char *z = gd_arena_buf(a2, 500 * 1024, 1);
    ck_assert((uintptr_t)z == x || (uintptr_t)z == y);
    ck_assert_uint_lt(gd_bufcache_bytes(c), 64 * 1024); /* the big block taken; a1's 1 KiB one waits in its class */
    ck_assert_uint_ge(gd_arena_live(a2), 500 * 1024);
    ck_assert_uint_eq(z[0] | z[500 * 1024 - 1], 0); /* zeroed on request */
    gd_arena_free(a2);
    gd_bufcache_free(c);
    gd_bufcache_free(NULL);
}
END_TEST

/* Small buffers (a scalar's) are recycled by exact size, within an arena
 * and through a cache; waiting ones never let an arena pass its limit. A
 * cache also keeps an arena's chunks, and gd_arena_alloc still zeroes
 * what a recycled chunk hands out; gd_bufcache_clear hands everything back. */
START_TEST(arena_recycles_small_buffers_and_chunks) {
    gd_arena *a = gd_arena_new(64 * 1024);
    void *p = gd_arena_buf(a, 8, 0);
    ck_assert_ptr_nonnull(p);
    size_t live = gd_arena_live(a);
    gd_arena_release(a, p);
    ck_assert_uint_lt(gd_arena_live(a), live);
    ck_assert_ptr_eq(gd_arena_buf(a, 8, 0), p);   /* same size class: the same block */
    void *q = gd_arena_buf(a, 200, 0);             /* another class: another block */
    ck_assert_ptr_ne(q, p);
    gd_arena_release(a, p);
    gd_arena_release(a, q);
    void *many[400];
    for (int i = 0; i < 400; i++) ck_assert_ptr_nonnull(many[i] = gd_arena_buf(a, 64, 0)); /* 51 KB live */
    for (int i = 0; i < 400; i++) gd_arena_release(a, many[i]);
    ck_assert_uint_eq(gd_arena_live(a), 0);
    /* 51 KB wait in the small lists: a 40 KB buffer fits the limit only once they are dropped. */
    ck_assert_ptr_nonnull(gd_arena_buf(a, 40 * 1024, 1));
    ck_assert_uint_le(gd_arena_live(a), 64 * 1024);
    gd_arena_free(a);

    gd_bufcache *c = gd_bufcache_new(1 << 20);
    gd_arena *a1 = gd_arena_new_cached(0, c);
    unsigned char *o = gd_arena_alloc(a1, 100);
    void *s1 = gd_arena_buf(a1, 8, 0);
    ck_assert(o && s1);
    memset(o, 0xab, 100);
    gd_arena_free(a1); /* its chunk (64 KB) and its scalar go to the cache */
    ck_assert_uint_gt(gd_bufcache_bytes(c), 64 * 1024);
    gd_arena *a2 = gd_arena_new_cached(0, c);
    unsigned char *o2 = gd_arena_alloc(a2, 100);
    ck_assert_ptr_eq(o2, o);                       /* the same chunk, warm */
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(o2[i], 0);
    ck_assert_ptr_eq(gd_arena_buf(a2, 8, 0), s1);  /* the same scalar block */
    ck_assert_uint_eq(gd_bufcache_bytes(c), 0);
    gd_arena_free(a2);
    ck_assert_uint_gt(gd_bufcache_bytes(c), 0);
    gd_bufcache_clear(c);
    ck_assert_uint_eq(gd_bufcache_bytes(c), 0);
    gd_bufcache_free(c);
}
END_TEST

/* Buffers between 1 KiB and 64 KiB (a 1k-element vector's) are recycled
 * too, by size class (eight per power of two, the size rounded up to its
 * class, which gd_arena_buf_cost counts), within an arena and through a
 * cache: a chain of 1k-element nodes otherwise pays a malloc and a free
 * per value and gradient. */
START_TEST(arena_recycles_medium_buffers) {
    ck_assert_uint_eq(gd_arena_buf_cost(8000), 8192);  /* 64 + 8000 -> 8064 -> its class, 8192 */
    ck_assert_uint_eq(gd_arena_buf_cost(960), 1024);   /* exact classes up to 1 KiB */
    ck_assert_uint_eq(gd_arena_buf_cost(1000), 1152);
    gd_arena *a = gd_arena_new(1 << 20);
    void *p = gd_arena_buf(a, 8000, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(gd_arena_live(a), 8192);
    gd_arena_release(a, p);
    ck_assert_uint_eq(gd_arena_live(a), 0);
    ck_assert_ptr_eq(gd_arena_buf(a, 7800, 0), p);     /* same class (8192): the same block */
    void *q = gd_arena_buf(a, 8000, 0);                /* p is taken: another block */
    ck_assert_ptr_ne(q, p);
    void *r = gd_arena_buf(a, 20000, 0);               /* another class */
    ck_assert(r && r != p && r != q);
    gd_arena_release(a, r);
    ck_assert_ptr_ne(gd_arena_buf(a, 8000, 0), r);
    gd_arena_free(a);

    gd_bufcache *c = gd_bufcache_new(1 << 20);
    gd_arena *a1 = gd_arena_new_cached(0, c);
    void *m = gd_arena_buf(a1, 8000, 0);
    ck_assert_ptr_nonnull(m);
    gd_arena_free(a1);
    gd_arena *a2 = gd_arena_new_cached(0, c);
    ck_assert_ptr_eq(gd_arena_buf(a2, 8000, 1), m);    /* warm from the cache */
    gd_arena_free(a2);
    gd_bufcache_free(c);
}
END_TEST

/* A one-element tensor keeps its element in its header: no arena buffer
 * (the live bytes do not move), zeroed on request, released by letting go;
 * a two-element one still takes a buffer. */
START_TEST(one_element_in_header) {
    gd_arena *a = gd_arena_new(0);
    gd_shape sc = gd_shape_scalar(), one = gd_shape_make(1, (int64_t[]){1}), two = gd_shape_make(1, (int64_t[]){2});
    gd_tensor *t = gd_tensor_new(a, &sc, GD_F64, 1);
    ck_assert_ptr_nonnull(t);
    size_t live = gd_arena_live(a);
    gd_tensor *u = gd_tensor_new(a, &one, GD_I64, 1), *w = gd_tensor_new(a, &sc, GD_F64, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert_ptr_nonnull(w);
    ck_assert(gd_tensor_owns_word(t) && gd_tensor_owns_word(u) && gd_tensor_owns_word(w));
    ck_assert_double_eq(gd_f64(t)[0], 0.0);
    ck_assert_int_eq(gd_i64(u)[0], 0);
    gd_f64(w)[0] = -2.5;
    ck_assert_double_eq(gd_f64(w)[0], -2.5);
    ck_assert_double_eq(gd_f64(t)[0], 0.0);
    gd_tensor_release(a, w);
    ck_assert_ptr_null(w->data);
    ck_assert_uint_le(gd_arena_live(a), live + 2 * 128); /* two headers' worth at most: no buffer */
    gd_tensor *v = gd_tensor_new(a, &two, GD_F64, 1);
    ck_assert_ptr_nonnull(v);
    ck_assert(!gd_tensor_owns_word(v));
    size_t with_buf = gd_arena_live(a);
    gd_tensor_release(a, v);
    ck_assert_uint_lt(gd_arena_live(a), with_buf); /* its buffer went back */
    gd_arena_free(a);
}
END_TEST

START_TEST(numel_overflow) {
    gd_shape s = {.rank = 3, .dim = {1LL << 30, 1LL << 30, 1LL << 30}};
    int64_t n;
    ck_assert_int_eq(gd_shape_numel(&s, &n), -1);
    s.dim[2] = 0;
    ck_assert_int_eq(gd_shape_numel(&s, &n), 0);
    ck_assert_int_eq(n, 0);
    s = gc_shape("2,3,4");
    ck_assert_int_eq(gd_shape_numel(&s, &n), 0);
    ck_assert_int_eq(n, 24);
    s.rank = -1;
    ck_assert_int_eq(gd_shape_numel(&s, &n), -1);
}
END_TEST

START_TEST(broadcasting_rules) {
    gd_shape a = gc_shape("4,1,3"), b = gc_shape("2,1"), o;
    ck_assert_int_eq(gd_broadcast_shapes(&a, &b, &o), 0);
    gd_shape want = gc_shape("4,2,3");
    ck_assert(gd_shape_eq(&o, &want));
    gd_shape c = gc_shape("2,3"), d = gc_shape("4");
    ck_assert_int_eq(gd_broadcast_shapes(&c, &d, &o), -1);
    gd_shape e = gc_shape("");
    ck_assert_int_eq(gd_broadcast_shapes(&e, &c, &o), 0);
    ck_assert(gd_shape_eq(&o, &c));
    gd_shape z = gc_shape("0,3"), one = gc_shape("1,3");
    ck_assert_int_eq(gd_broadcast_shapes(&z, &one, &o), 0);
    ck_assert(gd_shape_eq(&o, &z));
}
END_TEST

typedef struct {
    double *out;
    const double *a, *b;
} addctx;

static void add_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    addctx *c = vc;
    for (int64_t k = 0; k < len; k++) c->out[o + k] = c->a[off[0] + k * inner[0]] + c->b[off[1] + k * inner[1]];
}

/* gd_for_runs merges and squeezes axes; compare with index arithmetic. */
START_TEST(for_runs_matches_naive) {
    const char *pairs[][2] = {{"2,3,4", "4"}, {"2,3,4", "3,1"}, {"4,1,3", "2,1"}, {"1,5", "5,1"},
                              {"", "3,2"},    {"2,1,1,3", "1,4,1,3"}};
    gc_rng r = {7};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        gd_arena *ar = gd_arena_new(0);
        gd_tensor *a = gc_rand(ar, &r, pairs[p][0], -1, 1), *b = gc_rand(ar, &r, pairs[p][1], -1, 1);
        gd_shape os;
        ck_assert_int_eq(gd_broadcast_shapes(&a->shape, &b->shape, &os), 0);
        gd_tensor *out = gd_tensor_new(ar, &os, GD_F64, 0);
        addctx c = {gd_f64(out), gd_f64(a), gd_f64(b)};
        const gd_shape *ops[2] = {&a->shape, &b->shape};
        gd_for_runs(&os, 2, ops, add_run, &c);
        int64_t sa[GD_MAX_RANK], sb[GD_MAX_RANK], idx[GD_MAX_RANK];
        gd_bcast_strides(&a->shape, &os, sa);
        gd_bcast_strides(&b->shape, &os, sb);
        for (int64_t i = 0; i < out->n; i++) {
            gd_unravel(&os, i, idx);
            int64_t ia = 0, ib = 0;
            for (int k = 0; k < os.rank; k++) ia += idx[k] * sa[k], ib += idx[k] * sb[k];
            ck_assert_double_eq(gd_f64(out)[i], gd_f64(a)[ia] + gd_f64(b)[ib]);
        }
        gd_arena_free(ar);
    }
}
END_TEST

START_TEST(sum_to_undoes_broadcast) {
    gd_arena *a = gd_arena_new(0);
    const double src[] = {1, 2, 3, 4, 5, 6};
    gd_shape from = gc_shape("2,3"), to1 = gc_shape("3"), to2 = gc_shape("2,1"), to3 = gc_shape("");
    double d[3];
    gd_sum_to(d, &to1, src, &from, NULL, NULL);
    ck_assert_double_eq(d[0], 5);
    ck_assert_double_eq(d[2], 9);
    gd_sum_to(d, &to2, src, &from, NULL, NULL);
    ck_assert_double_eq(d[0], 6);
    ck_assert_double_eq(d[1], 15);
    gd_sum_to(d, &to3, src, &from, NULL, NULL);
    ck_assert_double_eq(d[0], 21);
    gd_arena_free(a);
}
END_TEST

START_TEST(reduce_geometry) {
    gd_shape in = gc_shape("2,3,4");
    gd_reduce r;
    int64_t ax[] = {0, -1};
    ck_assert_int_eq(gd_reduce_init(&r, &in, ax, 2, 0), 0);
    gd_shape want = gc_shape("3");
    ck_assert(gd_shape_eq(&r.out, &want));
    ck_assert_int_eq(r.count, 8);
    ck_assert_int_eq(gd_reduce_init(&r, &in, ax, 2, 1), 0);
    want = gc_shape("1,3,1");
    ck_assert(gd_shape_eq(&r.out, &want));
    int64_t dup[] = {1, -2};
    ck_assert_int_eq(gd_reduce_init(&r, &in, dup, 2, 0), -1);
    int64_t bad[] = {3};
    ck_assert_int_eq(gd_reduce_init(&r, &in, bad, 1, 0), -1);
    ck_assert_int_eq(gd_reduce_init(&r, &in, NULL, -1, 0), 0);
    ck_assert_int_eq(r.out.rank, 0);
    ck_assert_int_eq(r.count, 24);
}
END_TEST

START_TEST(error_table_is_complete) {
    for (int e = 1; e < GD_E__COUNT; e++) {
        const char *code = gd_err_code((gd_err)e);
        ck_assert_int_eq(gd_err_from_code(code), e);
        ck_assert_int_ge(gd_err_status((gd_err)e), 400);
        ck_assert_int_gt((int)strlen(gd_err_default((gd_err)e)), 5);
    }
    ck_assert_int_eq(gd_err_status(GD_E_NO_GRADIENTS), 422);
    ck_assert_int_eq(gd_err_status(GD_E_TOO_LARGE), 413);
    ck_assert_int_eq(gd_err_status(GD_E_OVERLOADED), 503);
    ck_assert_str_eq(gd_err_code(GD_E_TARGET_NOT_SCALAR), "target_not_scalar");
    gd_error err;
    ck_assert_int_eq(gd_errorf(&err, GD_E_CYCLE, "$.graph", "x=%d", 3), GD_E_CYCLE);
    ck_assert_str_eq(err.message, "x=3");
    ck_assert_str_eq(err.at, "$.graph");
}
END_TEST

START_TEST(closest_names) {
    const char *ops[] = {"matmul", "softmax", "log_softmax", "sum", "mean", NULL};
    ck_assert_str_eq(gd_closest("mutmul", ops, -1), "matmul");
    ck_assert_str_eq(gd_closest("sofmtax", ops, -1), "softmax");
    ck_assert_str_eq(gd_closest("summ", ops, -1), "sum");
    ck_assert_ptr_null(gd_closest("convolution", ops, -1));
}
END_TEST

/* The blocked scans of check_numerics and zero detection find the first
 * non-finite element wherever it sits relative to their blocks (256 elements),
 * and treat -0.0 as zero but the smallest subnormal as nonzero. */
START_TEST(finite_and_zero_scans) {
    gd_arena *a = gd_arena_new(0);
    gd_shape sh = {.rank = 1, .dim = {3000}};
    gd_tensor *t = gd_tensor_new(a, &sh, GD_F64, 1);
    double *d = t->data;
    int64_t first = -1;
    ck_assert(gd_all_finite(t, &first));
    ck_assert(gd_all_zero(t));
    d[1500] = -0.0;
    ck_assert(gd_all_zero(t));
    d[2999] = 5e-324;
    ck_assert(!gd_all_zero(t));
    ck_assert(gd_all_finite(t, NULL));
    const int64_t at[] = {0, 255, 256, 1023, 1024, 2047, 2999};
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 7; k++)
        for (int j = 0; j < 3; j++) {
            double keep = d[at[k]];
            d[at[k]] = bad[j];
            d[2500] = k == 6 ? NAN : 0.0; /* a later one must not win */
            first = -1;
            ck_assert(!gd_all_finite(t, &first));
            ck_assert_int_eq(first, k == 6 ? 2500 : at[k]);
            d[at[k]] = keep;
            d[2500] = 0.0;
        }
    gd_tensor *i = gd_tensor_new(a, &sh, GD_I64, 1);
    ck_assert(gd_all_zero(i));
    ((int64_t *)i->data)[1025] = INT64_MIN; /* only the sign bit: still nonzero for int64 */
    ck_assert(!gd_all_zero(i));
    ck_assert(gd_all_finite(i, NULL));
    gd_arena_free(a);
}
END_TEST

/* The whole-tensor passes of the engine and kernels (int64 -> float64,
 * zeroing, copying, the finite/zero scans, sum-down) poll the cancel record
 * between pieces of GD_POLL_ELEMS: a cancelled one stops after its first
 * piece with deadline_exceeded (issue 9: each ran 16M elements, 50-150 ms,
 * without a poll); without a record they run to the end. */
START_TEST(polled_passes_stop) {
    gd_arena *a = gd_arena_new(0);
    gd_cancel cancel = {0};
    atomic_store(&cancel.cancelled, 1);
    gd_error err;
    const int64_t n = 3 * GD_POLL_ELEMS, P = GD_POLL_ELEMS;
    gd_shape sh = {.rank = 1, .dim = {n}};
    gd_tensor *f = gd_tensor_new(a, &sh, GD_F64, 0), *i = gd_tensor_new(a, &sh, GD_I64, 0);
    for (int64_t k = 0; k < n; k++) gd_f64(f)[k] = 7.0, gd_i64(i)[k] = k;
    /* stopped after the first piece: the rest untouched */
    gd_error_clear(&err);
    ck_assert_int_eq(gd_fill_zero(f->data, n, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(err.code, GD_E_DEADLINE_EXCEEDED);
    ck_assert(gd_f64(f)[P - 1] == 0.0 && gd_f64(f)[P] == 7.0);
    ck_assert_int_eq(gd_i64_to_f64(gd_f64(f), gd_i64(i), n, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert(gd_f64(f)[P - 1] == (double)(P - 1) && gd_f64(f)[P] == 7.0);
    ck_assert_int_eq(gd_copy_words(f->data, i->data, n, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert(gd_i64(f)[P - 1] == P - 1 && gd_f64(f)[P] == 7.0);
    for (int64_t k = 0; k < n; k++) gd_f64(f)[k] = 0.0;
    ck_assert_int_eq(gd_all_zero_polled(f, &cancel, &err), -1);
    ck_assert_int_eq(gd_all_finite_polled(f, NULL, &cancel, &err), -1);
    gd_f64(f)[5] = INFINITY; /* an answer found in the first piece is still given */
    int64_t first = -1;
    ck_assert_int_eq(gd_all_finite_polled(f, &first, &cancel, &err), 0);
    ck_assert_int_eq(first, 5);
    ck_assert_int_eq(gd_all_zero_polled(f, &cancel, &err), 0);
    gd_f64(f)[5] = 0.0;
    double one = 0;
    gd_shape sc = gd_shape_scalar();
    ck_assert_int_eq(gd_sum_to(&one, &sc, gd_f64(f), &sh, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    /* new tensors: nothing is left held when stopped */
    size_t live = gd_arena_live(a);
    gd_tensor *t = f;
    ck_assert_int_eq(gd_tensor_copy_polled(a, f, &t, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(gd_tensor_to_f64_polled(a, i, &t, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert_int_eq(gd_tensor_zeros_polled(a, &sh, GD_F64, &t, &cancel, &err), GD_E_DEADLINE_EXCEEDED);
    ck_assert_uint_eq(gd_arena_live(a), live);
    /* below one piece nothing polls; without a record everything finishes */
    gd_shape small = {.rank = 1, .dim = {P}};
    ck_assert_int_eq(gd_tensor_zeros_polled(a, &small, GD_I64, &t, &cancel, &err), 0);
    ck_assert_int_eq(gd_tensor_zeros_polled(a, &sh, GD_F64, &t, NULL, NULL), 0);
    ck_assert_int_eq(gd_all_zero_polled(t, NULL, NULL), 1);
    ck_assert_int_eq(gd_tensor_to_f64_polled(a, i, &t, NULL, NULL), 0);
    ck_assert(gd_f64(t)[n - 1] == (double)(n - 1));
    gd_tensor *u;
    ck_assert_int_eq(gd_tensor_copy_polled(a, t, &u, NULL, NULL), 0);
    ck_assert(gd_f64(u)[n - 1] == (double)(n - 1) && u->dtype == GD_F64);
    ck_assert_int_eq(gd_tensor_to_f64_polled(a, u, &t, &cancel, &err), 0); /* float64 already: itself */
    ck_assert_ptr_eq(t, u);
    ck_assert_int_eq(gd_sum_to(&one, &sc, gd_f64(u), &sh, NULL, NULL), 0);
    ck_assert(one == (double)n * (double)(n - 1) / 2);
    /* the blocked scans inside the polled pieces: a non-finite or nonzero
     * element at either edge of a piece, or in the last partial block, is
     * found at its own index; -0.0 everywhere is still zero */
    gd_shape odd = {.rank = 1, .dim = {n + 100}};
    gd_tensor *z = gd_tensor_new(a, &odd, GD_F64, 0);
    const int64_t edges[] = {P - 1, P, P + 255, P + 256, 2 * P - 1, n + 99};
    for (int k = 0; k < 6; k++) {
        for (int64_t j = 0; j < n + 100; j++) gd_f64(z)[j] = -0.0;
        ck_assert_int_eq(gd_all_zero_polled(z, NULL, NULL), 1);
        gd_f64(z)[edges[k]] = k % 2 ? NAN : INFINITY;
        first = -1;
        ck_assert_int_eq(gd_all_finite_polled(z, &first, NULL, NULL), 0);
        ck_assert_int_eq(first, edges[k]);
        ck_assert_int_eq(gd_all_zero_polled(z, NULL, NULL), 0);
        gd_f64(z)[edges[k]] = 5e-324;
        ck_assert_int_eq(gd_all_finite_polled(z, &first, NULL, NULL), 1);
        ck_assert_int_eq(gd_all_zero_polled(z, NULL, NULL), 0);
    }
    /* at the memory limit: -1, err untouched */
    gd_arena *tiny = gd_arena_new(4096);
    gd_error_clear(&err);
    ck_assert_int_eq(gd_tensor_copy_polled(tiny, u, &t, &cancel, &err), -1);
    ck_assert_int_eq(err.code, GD_OK);
    gd_arena_free(tiny);
    gd_arena_free(a);
}
END_TEST

Suite *suite_tensor(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, arena_limit_and_release);
    tcase_add_test(tc, one_element_in_header);
    tcase_add_test(tc, arena_recycles_big_buffers);
    tcase_add_test(tc, arena_recycles_small_buffers_and_chunks);
    tcase_add_test(tc, arena_recycles_medium_buffers);
    tcase_add_test(tc, numel_overflow);
    tcase_add_test(tc, broadcasting_rules);
    tcase_add_test(tc, for_runs_matches_naive);
    tcase_add_test(tc, sum_to_undoes_broadcast);
    tcase_add_test(tc, reduce_geometry);
    tcase_add_test(tc, error_table_is_complete);
    tcase_add_test(tc, closest_names);
    tcase_add_test(tc, finite_and_zero_scans);
    tcase_add_test(tc, polled_passes_stop);
    suite_add_tcase(s, tc);
    return s;
}
