/* tensor.h - dtypes, shapes and dense tensors of the core, with the shape
 * arithmetic (overflow-checked sizes, NumPy broadcasting, axis lists) and the
 * strided loops that the kernels share.
 *
 * Tensors are contiguous and row-major, rank 0..GD_MAX_RANK, float64 or int64
 * (both 8 bytes per element, so data-movement kernels treat them alike).
 * float32 is a transport encoding only and never appears here. Buffers come
 * from the request's arena (arena.h). No I/O. */
#ifndef GD_TENSOR_H
#define GD_TENSOR_H

#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/cancel.h"
#include "core/error.h"

#define GD_MAX_RANK 8

typedef enum gd_dtype { GD_F64 = 0, GD_I64 = 1 } gd_dtype;

const char *gd_dtype_name(gd_dtype t); /* "float64" / "int64" */

/* rank < 0 means "not known yet" (shape inference over partial information). */
typedef struct gd_shape {
    int rank;
    int64_t dim[GD_MAX_RANK];
} gd_shape;

typedef struct gd_tensor {
    gd_dtype dtype;
    gd_shape shape;
    int64_t n;  /* number of elements */
    void *data; /* n * 8 bytes; arena buffer (or &word, below); NULL only when n == 0 */
    int borrowed; /* data is not the arena's but the caller's (a binary request body): never written, never
                     released (a leaf value; the engine never writes over leaves) */
    /* A one-element tensor from gd_tensor_new keeps its element here (data
     * points at it): no arena buffer, so nothing to release. Fits in the
     * padding the arena gives a header anyway. Its data never moves to
     * another tensor (see gd_tensor_owns_word). */
    int64_t word;
} gd_tensor;

/* t's element lives in its own header (gd_tensor.word). */
static inline int gd_tensor_owns_word(const gd_tensor *t) { return t->data == (const void *)&t->word; }

static inline double *gd_f64(const gd_tensor *t) { return (double *)t->data; }
static inline int64_t *gd_i64(const gd_tensor *t) { return (int64_t *)t->data; }

gd_shape gd_shape_make(int rank, const int64_t *dims);
gd_shape gd_shape_scalar(void);
int gd_shape_eq(const gd_shape *a, const gd_shape *b);
/* Element count with overflow check: 0 and *n set, or -1 on overflow or an
 * unknown shape. */
int gd_shape_numel(const gd_shape *s, int64_t *n);
/* "[2, 3]" into buf; returns buf. */
char *gd_shape_str(const gd_shape *s, char *buf, int size);
#define GD_SHAPE_STR_MAX 192

/* NumPy broadcast of a and b into out; -1 when incompatible. */
int gd_broadcast_shapes(const gd_shape *a, const gd_shape *b, gd_shape *out);

/* Normalise a possibly negative axis for `rank`; -1 when out of range. */
int gd_norm_axis(int64_t axis, int rank);

/* A new tensor of `shape` and `dtype` in the arena, zeroed when `zero`.
 * NULL when the arena's limit is hit or the shape is unknown/overflows. */
gd_tensor *gd_tensor_new(gd_arena *a, const gd_shape *shape, gd_dtype dtype, int zero);
/* Tensor struct only, pointing at no data yet (n set from the shape). */
gd_tensor *gd_tensor_header(gd_arena *a, const gd_shape *shape, gd_dtype dtype);
gd_tensor *gd_tensor_scalar(gd_arena *a, double v);
gd_tensor *gd_tensor_copy(gd_arena *a, const gd_tensor *t);
/* A float64 copy of an int64 tensor (or t itself when already float64). */
gd_tensor *gd_tensor_to_f64(gd_arena *a, const gd_tensor *t);

/* The whole-tensor passes of the engine and the kernels, polling `cancel`
 * (may be NULL) between pieces of GD_POLL_ELEMS elements, so that none of
 * them holds a cancelled request for long (16M elements take 50-150 ms).
 * gd_fill_zero, gd_copy_words and gd_i64_to_f64 work on n 8-byte words and
 * return 0, or deadline_exceeded with err set and the pass unfinished. */
int gd_fill_zero(void *dst, int64_t n, const gd_cancel *cancel, gd_error *err);
int gd_copy_words(void *dst, const void *src, int64_t n, const gd_cancel *cancel, gd_error *err);
int gd_i64_to_f64(double *dst, const int64_t *src, int64_t n, const gd_cancel *cancel, gd_error *err);
/* Tensors made by polled passes: *out is a copy of t, t as float64 (t itself
 * when it is float64 already), or zeros of shape and dtype. Each returns 0
 * with *out set; -1 when the arena's limit is hit (err untouched: the caller
 * names what needed the memory); or deadline_exceeded with err set (then
 * nothing is left allocated). */
int gd_tensor_copy_polled(gd_arena *a, const gd_tensor *t, gd_tensor **out, const gd_cancel *cancel, gd_error *err);
int gd_tensor_to_f64_polled(gd_arena *a, const gd_tensor *t, gd_tensor **out, const gd_cancel *cancel,
                            gd_error *err);
int gd_tensor_zeros_polled(gd_arena *a, const gd_shape *shape, gd_dtype dtype, gd_tensor **out,
                           const gd_cancel *cancel, gd_error *err);
/* Release t's buffer (and only the buffer) back to the arena; a borrowed
 * buffer is only let go of (t->data NULL), never freed. */
void gd_tensor_release(gd_arena *a, gd_tensor *t);

/* Row-major strides (in elements) of `s`, with 0 for the axes where `s`
 * is broadcast into `out` (s right-aligned against out). */
void gd_bcast_strides(const gd_shape *s, const gd_shape *out, int64_t *strides);

/* Elementwise loop over `out` with up to 3 broadcast operands:
 * calls fn(ctx, out_offset, off[0..nops-1], len, inner_strides[0..nops-1]) for
 * every run of the innermost axis. Kernels use it so that broadcasting is one
 * loop, not one per op. */
typedef void (*gd_run_fn)(void *ctx, int64_t o, const int64_t *off, int64_t len, const int64_t *inner);
void gd_for_runs(const gd_shape *out, int nops, const gd_shape *const *ops, gd_run_fn fn, void *ctx);
/* The same for an fn that treats each element on its own (so that a run may
 * be cut anywhere): runs are cut into pieces of at most GD_POLL_ELEMS and the
 * cancel record is polled between them. Returns 0, or deadline_exceeded
 * (err set) with the rest of the loop skipped. */
int gd_for_runs_polled(const gd_shape *out, int nops, const gd_shape *const *ops, gd_run_fn fn, void *ctx,
                       const gd_cancel *cancel, gd_error *err);

/* Sum `src` (float64, shape `from`) down to `to`, where `from` is `to`
 * broadcast (NumPy rules): the central "undo broadcasting" of the backward
 * sweep. dst has to's element count. Polls `cancel` (may be NULL) every
 * GD_POLL_ELEMS elements: 0, or deadline_exceeded with err set and dst
 * incomplete. The summation order does not depend on the polls. */
int gd_sum_to(double *dst, const gd_shape *to, const double *src, const gd_shape *from, const gd_cancel *cancel,
              gd_error *err);

/* Reduction geometry: the input viewed as [outer, red, inner] is impossible
 * for arbitrary axis sets, so reductions use a mask of reduced axes and the
 * shape of the result with keepdims. */
typedef struct gd_reduce {
    gd_shape in;      /* input shape */
    gd_shape kept;    /* result shape with reduced axes kept as 1 */
    gd_shape out;     /* result shape as the op returns it (keepdims or not) */
    unsigned mask;    /* bit i set: axis i is reduced */
    int64_t count;    /* elements folded into each result */
} gd_reduce;
/* Build from an axis list (n_axes < 0: all axes). -1 on a bad or repeated axis. */
int gd_reduce_init(gd_reduce *r, const gd_shape *in, const int64_t *axes, int n_axes, int keepdims);

/* Bit 11 set when x is Inf or NaN (its exponent all ones), else 0: integer
 * operations only, so that a kernel may OR it over every value it writes
 * and still vectorise (a floating-point compare would not at -O2). */
static inline uint64_t gd_nonfinite_bit(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return ((u << 1 >> 53) + 1) & 0x800;
}

/* True when every element is finite; sets *first to the first non-finite
 * element's flat index otherwise. */
int gd_all_finite(const gd_tensor *t, int64_t *first);
int gd_all_zero(const gd_tensor *t);
/* The same scans polling `cancel` (may be NULL) between pieces of
 * GD_POLL_ELEMS elements: 1 (true), 0 (false), or -1 when cancelled, with err
 * set to deadline_exceeded. */
int gd_all_finite_polled(const gd_tensor *t, int64_t *first, const gd_cancel *cancel, gd_error *err);
int gd_all_zero_polled(const gd_tensor *t, const gd_cancel *cancel, gd_error *err);
/* Flat index -> multi-index for `s`. */
void gd_unravel(const gd_shape *s, int64_t flat, int64_t *idx);

#endif
