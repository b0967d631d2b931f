/* ops_linalg.c - matmul with NumPy's semantics (1-D operands promoted and
 * demoted, batched with broadcasting of the leading dims), forward and
 * backward through OpenBLAS's cblas_dgemm.
 *
 * No transposed copies are ever made: the backward products use CblasTrans.
 * Every gemm goes through one helper that splits large products along the
 * rows or columns of the result so that cancellation is polled about every
 * 5e8 flops; a result's non-finite elements are then recomputed in long
 * double (overflowing products must not decide them).
 * Not here: elementwise arithmetic, reductions, I/O. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/kernel.h"

/* Flops between two cancellation polls: ~10 ms for OpenBLAS's dgemm on one
 * core of the benchmark machine (~50 GFLOP/s), 50 ms on a core five times
 * slower. Finer is not free: every split repacks the operand that is not
 * split, and 1e8 cost the MLP benchmark's step about 10%. */
#define GEMM_POLL_FLOPS 5e8

/* The product seen as batch[...] x ([M, K] @ [K, N]).
 * A 1-D a is [1, K] (M = 1, dropped from the output); a 1-D b is [K, 1]
 * (N = 1, dropped). Batch dims broadcast NumPy-style. */
typedef struct {
    int64_t M, K, N;
    gd_shape abatch, bbatch; /* a's and b's own leading dims */
    gd_shape batch;          /* their broadcast: the output's leading dims */
    int64_t nbatch;          /* product of batch */
} mm_geom;

/* Fill g from the operands' shapes (both of rank >= 1). Returns 0, 1 when
 * the inner dimensions differ, 2 when the batch dims do not broadcast. */
static int mm_geometry(const gd_shape *a, const gd_shape *b, mm_geom *g) {
    memset(g, 0, sizeof *g);
    g->M = a->rank >= 2 ? a->dim[a->rank - 2] : 1;
    g->K = a->dim[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dim[b->rank - 2] : b->dim[0];
    g->N = b->rank >= 2 ? b->dim[b->rank - 1] : 1;
    if (kb != g->K) return 1;
    g->abatch.rank = a->rank >= 2 ? a->rank - 2 : 0;
    for (int i = 0; i < g->abatch.rank; i++) g->abatch.dim[i] = a->dim[i];
    g->bbatch.rank = b->rank >= 2 ? b->rank - 2 : 0;
    for (int i = 0; i < g->bbatch.rank; i++) g->bbatch.dim[i] = b->dim[i];
    if (gd_broadcast_shapes(&g->abatch, &g->bbatch, &g->batch)) return 2;
    g->nbatch = 1;
    for (int i = 0; i < g->batch.rank; i++) g->nbatch *= g->batch.dim[i]; /* fits: output size checked */
    return 0;
}

static int64_t numel_of(const gd_shape *s) {
    int64_t n = 0;
    gd_shape_numel(s, &n);
    return n;
}

/* Output shape: batch + [M if a is 2-D+] + [N if b is 2-D+]; float64. The
 * size limit is checked here, before any memory is spent, and the matrix
 * dims must fit BLAS's 32-bit integers. */
static int infer_matmul(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    char sa[GD_SHAPE_STR_MAX], sb[GD_SHAPE_STR_MAX];
    const gd_shape *a = &in[0].shape, *b = &in[1].shape;
    out->dtype = GD_F64;
    for (int i = 0; i < 2; i++)
        if (in[i].shape.rank == 0)
            return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, i ? ".inputs[1]" : ".inputs[0]",
                                  "Node '%s' (matmul): input '%s' is a scalar; matmul needs operands of rank >= 1.",
                                  n->name, n->in_names[i]);
    if (a->rank < 0 || b->rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    mm_geom g;
    int bad = mm_geometry(a, b, &g);
    if (bad)
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                              "Node '%s' (matmul): %s: '%s' has shape %s, '%s' has shape %s.",
                              n->name, bad == 1 ? "inner dimensions differ" : "batch dimensions do not broadcast",
                              n->in_names[0], gd_shape_str(a, sa, sizeof sa), n->in_names[1],
                              gd_shape_str(b, sb, sizeof sb));
    gd_shape s = g.batch;
    if (a->rank >= 2) s.dim[s.rank++] = g.M;
    if (b->rank >= 2) s.dim[s.rank++] = g.N;
    int rc = gd_check_size(n, &s, lim, err);
    if (rc) return rc;
    if (g.M > INT_MAX || g.K > INT_MAX || g.N > INT_MAX)
        return gd_node_errorf(err, n, GD_E_TOO_LARGE, "",
                              "Node '%s' (matmul): a matrix dimension of %s @ %s exceeds %d, BLAS's limit.", n->name,
                              gd_shape_str(a, sa, sizeof sa), gd_shape_str(b, sb, sizeof sb), INT_MAX);
    out->shape = s;
    return 0;
}

/* Flops done since the last cancellation poll, across the gemms of one call. */
typedef struct {
    gd_kctx *c;
    double flops;
} gemm_budget;

/* C[m, n] = A'[m, k] @ B'[k, n] + beta * C, row-major, A' = A or A^T per ta
 * (likewise B'), split into calls of about GEMM_POLL_FLOPS each with a
 * cancellation poll in between. The split runs along the rows of C when
 * m >= n, else along its columns: each call repacks the operand that is not
 * split (B' for row chunks, A' for column chunks), so splitting the longer
 * side repacks the smaller operand; with the MLP's [256, 784] x [784, 1024],
 * row chunks would repack the 6 MB weight five times and cost ~1.5x.
 * Any zero size is a no-op (BLAS is never called with a zero size or a
 * leading dimension < 1): the caller provides zeroed C when k == 0 and
 * beta == 0. Returns 0 or deadline_exceeded. */
static int gemm(gemm_budget *bu, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k,
                const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    if (m == 0 || n == 0 || k == 0) return 0;
    int by_rows = m >= n;
    int64_t len = by_rows ? m : n, other = by_rows ? n : m;
    double per_line = 2.0 * (double)other * (double)k; /* flops per row (or column) of C */
    int64_t step = per_line >= GEMM_POLL_FLOPS ? 1 : (int64_t)(GEMM_POLL_FLOPS / per_line);
    if (step > INT_MAX) step = INT_MAX;
    int64_t chunks = (len + step - 1) / step;
    step = (len + chunks - 1) / chunks; /* even chunks rather than a ragged last one */
    for (int64_t i0 = 0; i0 < len; i0 += step) {
        int64_t w = len - i0 < step ? len - i0 : step;
        if (i0 > 0 || bu->flops >= GEMM_POLL_FLOPS) { /* between chunks, and after many small gemms */
            bu->flops = 0;
            if (gd_cancel_check(bu->c->cancel, bu->c->err)) return GD_E_DEADLINE_EXCEEDED;
        }
        if (by_rows) /* rows i0.. of C: rows of A, or columns of a transposed A */
            cblas_dgemm(CblasRowMajor, ta, tb, (int)w, (int)n, (int)k, 1.0, ta == CblasNoTrans ? A + i0 * lda : A + i0,
                        (int)lda, B, (int)ldb, beta, C + i0 * ldc, (int)ldc);
        else /* columns i0.. of C: columns of B, or rows of a transposed B */
            cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)w, (int)k, 1.0, A, (int)lda,
                        tb == CblasNoTrans ? B + i0 : B + i0 * ldb, (int)ldb, beta, C + i0, (int)ldc);
        bu->flops += per_line * (double)w;
    }
    return 0;
}

/* Offsets (in matrices) of a's and b's blocks for output batch t. */
static void batch_offsets(const mm_geom *g, const int64_t *ast, const int64_t *bst, int64_t t, int64_t *ao,
                          int64_t *bo) {
    int64_t idx[GD_MAX_RANK];
    gd_unravel(&g->batch, t, idx);
    *ao = *bo = 0;
    for (int i = 0; i < g->batch.rank; i++) *ao += idx[i] * ast[i], *bo += idx[i] * bst[i];
}

/* When b has no batch dims and a has rank >= 2, a's rows of every batch are
 * one [M', K] matrix and the whole product is a single gemm (M' = batch * M).
 * M' must fit BLAS's int as an inner dimension of the backward db. */
static int mm_fold(const gd_shape *a, const gd_shape *b, const mm_geom *g, int64_t *Mf) {
    if (b->rank > 2 || a->rank < 2) return 0;
    *Mf = g->nbatch * g->M;
    return *Mf <= INT_MAX;
}

/* ---------------------------------------------------------------------------
 * Non-finite results, recomputed
 *
 * A gemm in float64 overflows in its products: 5e307 * 5e307 is +inf, and a
 * sum whose true value is finite (1e200 * 1e200 - 1e200 * 1e200 + 1) or an
 * infinity of one sign comes out NaN, or, with fused multiply-adds, an
 * infinity of whichever sign came first (seed 1201 case 120954: true
 * +2.5e615, BLAS -inf). Every non-finite element of a result is recomputed
 * from scratch in long double, whose exponent range holds any product of two
 * doubles, and rounded once (A8: no needless overflow). Elements that are
 * finite are BLAS's; a NaN operand ends its element's recomputation at once.
 * Where long double is double, the recomputation changes nothing. */

typedef enum { MM_OUT, MM_DA, MM_DB } mm_kind;

/* The operands of one product and where each batch reads them. */
typedef struct {
    const mm_geom *g;
    const double *A, *B, *G; /* a [abatch, M, K], b [bbatch, K, N], dout [batch, M, N] */
    const int64_t *ao, *bo;  /* [nbatch]: a's and b's block of each output batch */
} mm_ops;

/* One element of a result, in long double: out[t, i, j], da[blk, i, k] or
 * db[blk, k, j] (x, y = the last two indices) summed over every batch that
 * reads (or writes) that block. */
static double mm_element(const mm_ops *o, mm_kind kind, int64_t blk, int64_t x, int64_t y) {
    const mm_geom *g = o->g;
    const int64_t M = g->M, K = g->K, N = g->N;
    long double s = 0;
    for (int64_t t = kind == MM_OUT ? blk : 0; t < (kind == MM_OUT ? blk + 1 : g->nbatch); t++) {
        if ((kind == MM_DA && o->ao[t] != blk) || (kind == MM_DB && o->bo[t] != blk)) continue;
        /* A kind reads two of the three: the third may be NULL, and no offset
         * may be applied to a null pointer (fuzzer finding, UBSan). */
        const double *a = o->A ? o->A + o->ao[t] * M * K : NULL, *b = o->B ? o->B + o->bo[t] * K * N : NULL,
                     *d = o->G ? o->G + t * M * N : NULL;
        int64_t len = kind == MM_OUT ? K : kind == MM_DA ? N : M;
        for (int64_t r = 0; r < len; r++) {
            long double p = kind == MM_OUT ? (long double)a[x * K + r] * b[r * N + y]
                            : kind == MM_DA ? (long double)d[x * N + r] * b[y * N + r]
                                            : (long double)a[r * K + x] * d[r * N + y];
            if (isnan(p)) return NAN;
            s += p;
        }
    }
    return (double)s;
}

/* Recompute the non-finite elements of C [nblk, X, Y] (a result of kind
 * `kind`). Returns 0 or deadline_exceeded. */
static int mm_fix_nonfinite(gd_kctx *c, const mm_ops *o, mm_kind kind, double *C, int64_t nblk, int64_t X,
                            int64_t Y) {
    const mm_geom *g = o->g;
    int64_t per = kind == MM_OUT ? g->K : (kind == MM_DA ? g->N : g->M) * g->nbatch, since = 0;
    for (int64_t e = 0; e < nblk * X * Y; e++) {
        if (isfinite(C[e])) continue;
        C[e] = mm_element(o, kind, e / (X * Y), e / Y % X, e % Y);
        int rc = gd_kernel_tick(c, &since, per);
        if (rc) return rc;
    }
    return 0;
}

/* Whether any element of n is not finite: the fast path of every product. */
static int any_nonfinite(const double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 1;
    return 0;
}

/* The blocks of a and b that each output batch reads, from the arena; NULL
 * when out of memory. */
static int mm_offsets(gd_kctx *c, const mm_geom *g, int64_t **ao, int64_t **bo) {
    int64_t ast[GD_MAX_RANK], bst[GD_MAX_RANK];
    gd_bcast_strides(&g->abatch, &g->batch, ast);
    gd_bcast_strides(&g->bbatch, &g->batch, bst);
    *ao = gd_arena_buf(c->arena, (size_t)g->nbatch * 16, 0);
    if (!*ao) return gd_kernel_oom(c);
    *bo = *ao + g->nbatch;
    for (int64_t t = 0; t < g->nbatch; t++) batch_offsets(g, ast, bst, t, *ao + t, *bo + t);
    return 0;
}

/* After a product of kind `kind` into C [nblk, X, Y]: recompute its non-finite
 * elements, if any. */
static int mm_recheck(gd_kctx *c, const mm_geom *g, mm_kind kind, const double *A, const double *B, const double *G,
                      double *C, int64_t nblk, int64_t X, int64_t Y) {
    if (!any_nonfinite(C, nblk * X * Y)) return 0;
    mm_ops o = {.g = g, .A = A, .B = B, .G = G};
    int64_t *ao = NULL, *bo = NULL;
    int rc = mm_offsets(c, g, &ao, &bo);
    if (rc) return rc;
    o.ao = ao, o.bo = bo;
    rc = mm_fix_nonfinite(c, &o, kind, C, nblk, X, Y);
    gd_arena_release(c->arena, ao);
    return rc;
}

/* out = a @ b: out [batch..., M, N] (1-D operands' unit dims dropped),
 * a [abatch..., M, K], b [bbatch..., K, N]. */
static int forward_matmul(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *a = in[0], *b = in[1];
    mm_geom g;
    mm_geometry(&a->shape, &b->shape, &g);
    if (out->n == 0) return 0;
    if (g.K == 0) return gd_fill_zero(out->data, out->n, c->cancel, c->err);
    gemm_budget bu = {c, 0};
    const double *A = gd_f64(a), *B = gd_f64(b);
    double *C = gd_f64(out);
    int64_t Mf;
    int rc = 0;
    if (mm_fold(&a->shape, &b->shape, &g, &Mf)) {
        rc = gemm(&bu, CblasNoTrans, CblasNoTrans, Mf, g.N, g.K, A, g.K, B, g.N, 0.0, C, g.N);
    } else {
        int64_t ast[GD_MAX_RANK], bst[GD_MAX_RANK];
        gd_bcast_strides(&g.abatch, &g.batch, ast);
        gd_bcast_strides(&g.bbatch, &g.batch, bst);
        for (int64_t t = 0; t < g.nbatch && !rc; t++) {
            int64_t ao, bo;
            batch_offsets(&g, ast, bst, t, &ao, &bo);
            rc = gemm(&bu, CblasNoTrans, CblasNoTrans, g.M, g.N, g.K, A + ao * g.M * g.K, g.K, B + bo * g.K * g.N,
                      g.N, 0.0, C + t * g.M * g.N, g.N);
        }
    }
    return rc ? rc : mm_recheck(c, &g, MM_OUT, A, B, NULL, C, g.nbatch, g.M, g.N);
}

/* da = dout @ b^T and db = a^T @ dout, per batch.
 *
 * Broadcast batch dims are summed here, not by the engine: each gradient is
 * accumulated straight into its input's own shape (beta = 1 into a zeroed
 * buffer when several output batches share one input block; beta = 0 when
 * each block is written once). That costs no [batch, M, K] temporary and no
 * separate sum, and din always has exactly the input's shape, which also
 * covers the 1-D cases (da of a 1-D a is [K]). */
static int backward_matmul(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                           const int *want, gd_tensor **din) {
    (void)out;
    const gd_tensor *a = in[0], *b = in[1];
    mm_geom g;
    mm_geometry(&a->shape, &b->shape, &g);
    gemm_budget bu = {c, 0};
    const double *A = gd_f64(a), *B = gd_f64(b), *G = gd_f64(dout); /* G: [batch, M, N] */
    int64_t Mf;
    int fold = mm_fold(&a->shape, &b->shape, &g, &Mf);
    int a_once = numel_of(&g.abatch) == g.nbatch, b_once = numel_of(&g.bbatch) == g.nbatch;
    int64_t ast[GD_MAX_RANK], bst[GD_MAX_RANK];
    gd_bcast_strides(&g.abatch, &g.batch, ast);
    gd_bcast_strides(&g.bbatch, &g.batch, bst);
    int rc = 0;
    if (want[0]) {
        /* da [abatch, M, K]; zero where nothing (N == 0) or several batches land. */
        int once = fold || a_once;
        gd_tensor *da = gd_tensor_new(c->arena, &a->shape, GD_F64, !once || g.N == 0);
        if (!da) return gd_kernel_oom(c);
        double *dA = gd_f64(da);
        if (fold) {
            rc = gemm(&bu, CblasNoTrans, CblasTrans, Mf, g.K, g.N, G, g.N, B, g.N, 0.0, dA, g.K);
        } else {
            for (int64_t t = 0; t < g.nbatch && !rc; t++) {
                int64_t ao, bo;
                batch_offsets(&g, ast, bst, t, &ao, &bo);
                rc = gemm(&bu, CblasNoTrans, CblasTrans, g.M, g.K, g.N, G + t * g.M * g.N, g.N, B + bo * g.K * g.N,
                          g.N, once ? 0.0 : 1.0, dA + ao * g.M * g.K, g.K);
            }
        }
        if (!rc) rc = mm_recheck(c, &g, MM_DA, A, B, G, dA, numel_of(&g.abatch), g.M, g.K);
        if (rc) return rc;
        din[0] = da;
    }
    if (want[1]) {
        /* db [bbatch, K, N]: in the fold, one product over all M' rows. */
        int once = fold || b_once;
        int64_t inner = fold ? Mf : g.M;
        gd_tensor *db = gd_tensor_new(c->arena, &b->shape, GD_F64, !once || inner == 0);
        if (!db) return gd_kernel_oom(c);
        double *dB = gd_f64(db);
        if (fold) {
            rc = gemm(&bu, CblasTrans, CblasNoTrans, g.K, g.N, Mf, A, g.K, G, g.N, 0.0, dB, g.N);
        } else {
            for (int64_t t = 0; t < g.nbatch && !rc; t++) {
                int64_t ao, bo;
                batch_offsets(&g, ast, bst, t, &ao, &bo);
                rc = gemm(&bu, CblasTrans, CblasNoTrans, g.K, g.N, g.M, A + ao * g.M * g.K, g.K, G + t * g.M * g.N,
                          g.N, once ? 0.0 : 1.0, dB + bo * g.K * g.N, g.N);
            }
        }
        if (!rc) rc = mm_recheck(c, &g, MM_DB, A, B, G, dB, numel_of(&g.bbatch), g.K, g.N);
        if (rc) return rc;
        din[1] = db;
    }
    return 0;
}

const gd_op_def gd_ops_linalg[] = {
    {.name = "matmul", .min_in = 2, .max_in = 2, .inputs_doc = "a, b", .attrs = NULL, .n_attrs = 0,
     .differentiable = 1, .flags = GD_OPF_CONTRACTS, .zero_cause = GD_ZERO_VALUE,
     .doc = "Matrix product with numpy.matmul semantics: a 1-D a is a row and a 1-D b a column (their unit dim "
            "dropped), leading dims broadcast as batches; scalars are rejected. Computed with BLAS in float64; an "
            "element that comes out NaN or infinite is recomputed with a wider exponent range, so products that "
            "overflow float64 do not decide it (1e200 * 1e200 - 1e200 * 1e200 + 1 is 1).",
     .infer = infer_matmul, .forward = forward_matmul, .backward = backward_matmul},
    {0},
};
