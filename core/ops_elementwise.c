/* ops_elementwise.c - the elementwise op family: unary maps (neg exp log ...
 * relu leaky_relu clip), NumPy-broadcasting binary ops (add sub mul div pow
 * maximum minimum), the non-differentiable maps (round floor ceil sign and the
 * comparisons) and cast.
 *
 * Each op is a scalar formula plugged into one of two shared loops: a flat
 * loop over contiguous doubles for the unary ops, and one broadcasting loop
 * (gd_for_runs, with inner-stride 1/0 fast paths) for the binary ones. Values
 * follow NumPy, gradients follow PyTorch (ties and kinks as documented per
 * row). Backward rules of binary ops return contributions in the broadcast
 * output shape; the engine sums them down. No I/O, no JSON. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernel.h"
#include "core/numfmt.h"

/* ---------------------------------------------------------------------------
 * Scalar helpers */

/* NumPy's sign: 0 for ±0, NaN for NaN. */
static inline double sign_of(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }

/* The slope of |x| as PyTorch's sgn: -1, 0 at 0 and 0 at NaN, so that abs's
 * gradient g * slope is 0 at a NaN x (and NaN where g is NaN/Inf at 0). */
static inline double abs_slope(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }

/* max(x, 0) that propagates NaN and never returns -0. Branch-free: x is
 * kept under an all-ones mask when !(x <= 0) (x > 0 or NaN), else zeroed;
 * the sign of a pre-activation is a coin toss, and the branchy form's
 * mispredictions made relu ~10% of the MLP benchmark's forward. */
static inline double relu_of(double x) {
    uint64_t u, keep = -(uint64_t)!(x <= 0.0);
    memcpy(&u, &x, sizeof u);
    u &= keep;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* 1 / (1 + e^-x) without overflow for large |x|. */
static inline double sigmoid_of(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|), exact for large |x|; NaN stays NaN. */
static inline double softplus_of(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }

/* np.clip: minimum(maximum(x, lo), hi); lo > hi gives hi, NaN stays NaN. */
static inline double clip_of(double x, double lo, double hi) {
    double v = x < lo ? lo : x;
    return v > hi ? hi : v;
}

static double leaky_alpha(const gd_node *n) { return n->attrs->alpha.given ? n->attrs->alpha.v : 0.01; }
static double clip_lo(const gd_node *n) { return n->attrs->min.given ? n->attrs->min.v : -INFINITY; }
static double clip_hi(const gd_node *n) { return n->attrs->max.given ? n->attrs->max.v : INFINITY; }
/* Where clip passes the gradient: inside [lo, hi], bounds included (as
 * torch.clamp; NaN is outside). Without bounds clip is the identity, whose
 * gradient passes everywhere, NaN included. */
static int clip_passes(double x, double lo, double hi) {
    return (x >= lo && x <= hi) || (lo == -INFINITY && hi == INFINITY);
}

/* ---------------------------------------------------------------------------
 * Unary ops: one forward and one backward loop per op, generated from the
 * formula table below. SETUP declares per-call parameters read from the
 * node's attributes; forward sees `x`, backward sees `g` (dout), `x` (input)
 * and `y` (the forward output, reused where it saves work). */

#define NOSETUP (void)0
#define LEAKY_SETUP const double alpha = leaky_alpha(c->node)
#define CLIP_SETUP                                 \
    const double lo = clip_lo(c->node);            \
    const double hi = clip_hi(c->node)

/* The derivatives are PyTorch's formulas, grouped as PyTorch groups them
 * (sqrt g / (2y), square g * (2x)) so that no intermediate overflows or
 * underflows where the result does not: reciprocal's (-g * y) * y is finite
 * for x = 1e-160, g = 1e-100, where -g * (y * y) is -Infinity. Masks select
 * as PyTorch does: relu passes g unless y <= 0 (so relu'(NaN) = 1), clip
 * passes it inside [min, max], and a non-selected element gets exactly 0
 * whatever g is; abs multiplies g by its slope (0 at 0 and at NaN). */
/*  name        setup        forward y(x)              backward dx(g, x, y) */
#define UNARY_DIFF_OPS(X)                                                       \
    X(neg,        NOSETUP,     -x,                       -g)                    \
    X(exp,        NOSETUP,     exp(x),                   g * y)                 \
    X(log,        NOSETUP,     log(x),                   g / x)                 \
    X(log1p,      NOSETUP,     log1p(x),                 g / (1.0 + x))         \
    X(expm1,      NOSETUP,     expm1(x),                 g * (y + 1.0))         \
    X(sqrt,       NOSETUP,     sqrt(x),                  g / (2.0 * y))         \
    X(square,     NOSETUP,     x * x,                    2.0 * (g * x))         \
    X(abs,        NOSETUP,     fabs(x),                  g * abs_slope(x))      \
    X(sin,        NOSETUP,     sin(x),                   g * cos(x))            \
    X(cos,        NOSETUP,     cos(x),                   -g * sin(x))           \
    X(tanh,       NOSETUP,     tanh(x),                  g * (1.0 - y * y))     \
    X(sigmoid,    NOSETUP,     sigmoid_of(x),            g * y * (1.0 - y))     \
    X(relu,       NOSETUP,     relu_of(x),               y <= 0 ? 0.0 : g)      \
    X(softplus,   NOSETUP,     softplus_of(x),           g * sigmoid_of(x))     \
    X(reciprocal, NOSETUP,     1.0 / x,                  -g * y * y)            \
    X(leaky_relu, LEAKY_SETUP, x > 0 ? x : alpha * x,    x > 0 ? g : alpha * g) \
    X(clip,       CLIP_SETUP,  clip_of(x, lo, hi),       clip_passes(x, lo, hi) ? g : 0.0)

/*  name   forward y(x) */
#define UNARY_NODIFF_OPS(X)  \
    X(round, nearbyint(x))   \
    X(floor, floor(x))       \
    X(ceil,  ceil(x))        \
    X(sign,  sign_of(x))

/* Elements per inner block of the elementwise loops: a length the compiler
 * knows, so that the block's loop vectorises at -O2 (whose cheapest cost
 * model takes no loop needing a scalar epilogue); the tail runs scalar. */
#define EW_BLOCK 256

/* ys[i] = F(xs[i]) for i in [s, e), ORing every result's nonfinite bit into
 * *bad (the check_numerics scan, done while the value is in a register). */
#define UNARY_SPAN(F, xs, ys, s, e, bad)                                            \
    do {                                                                            \
        int64_t i_ = (s);                                                           \
        for (; i_ + EW_BLOCK <= (e); i_ += EW_BLOCK)                                \
            for (int k_ = 0; k_ < EW_BLOCK; k_++) {                                 \
                const double x = (xs)[i_ + k_], y_ = (F);                           \
                (ys)[i_ + k_] = y_;                                                 \
                (bad) |= gd_nonfinite_bit(y_);                                      \
            }                                                                       \
        for (; i_ < (e); i_++) {                                                    \
            const double x = (xs)[i_], y_ = (F);                                    \
            (ys)[i_] = y_;                                                          \
            (bad) |= gd_nonfinite_bit(y_);                                          \
        }                                                                           \
    } while (0)

/* ys[i] = F(xs[i]) over [s, e), and the same in place (ys holding x): the
 * loops live in functions of their own because GCC trusts restrict on
 * parameters, not on locals; there they vectorise. Each returns the OR of
 * the results' nonfinite bits. */
#define UNARY_SPANS(nm, SETUP, F)                                                                          \
    static uint64_t nm##_span(const gd_kctx *c, double *restrict ys, const double *restrict xs, int64_t s,  \
                              int64_t e) {                                                                 \
        SETUP;                                                                                             \
        (void)c;                                                                                           \
        uint64_t bad = 0;                                                                                  \
        UNARY_SPAN(F, xs, ys, s, e, bad);                                                                  \
        return bad;                                                                                        \
    }                                                                                                      \
    static uint64_t nm##_span_inplace(const gd_kctx *c, double *restrict ys, int64_t s, int64_t e) {       \
        SETUP;                                                                                             \
        (void)c;                                                                                           \
        uint64_t bad = 0;                                                                                  \
        UNARY_SPAN(F, ys, ys, s, e, bad);                                                                  \
        return bad;                                                                                        \
    }

/* y = F(x) over the whole tensor, polling the cancel flag between chunks.
 * The engine may hand the kernel its input's own buffer as the output
 * (GD_OPF_INPLACE: the input is read by nothing else): a chain of maps over a
 * big tensor then streams through one buffer instead of faulting in and
 * evicting a second one per op. That case has a loop of its own, so that
 * the other one may keep its restrict pointers. */
#define UNARY_FORWARD(nm, SETUP, F)                                                     \
    UNARY_SPANS(nm, SETUP, F)                                                           \
    static int nm##_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {   \
        const int inplace = out->data == in[0]->data;                                   \
        uint64_t bad = 0;                                                               \
        for (int64_t s = 0; s < out->n; s += GD_POLL_ELEMS) {                           \
            int rc;                                                                     \
            if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;              \
            int64_t e = out->n - s < GD_POLL_ELEMS ? out->n : s + GD_POLL_ELEMS;        \
            bad |= inplace ? nm##_span_inplace(c, gd_f64(out), s, e)                    \
                           : nm##_span(c, gd_f64(out), gd_f64(in[0]), s, e);            \
        }                                                                               \
        c->out_finite = !bad;                                                           \
        return 0;                                                                       \
    }

/* dx = DF(g, x, y) into a new tensor of the input's shape. */
#define UNARY_BACKWARD(nm, SETUP, DF)                                                              \
    static int nm##_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,         \
                             const gd_tensor *dout, const int *want, gd_tensor **din) {            \
        if (!want[0]) return 0;                                                                    \
        SETUP;                                                                                     \
        gd_tensor *dx = gd_tensor_new(c->arena, &in[0]->shape, GD_F64, 0);                         \
        if (!dx) return gd_kernel_oom(c);                                                                    \
        const double *restrict xs = gd_f64(in[0]);  /* [N] */                                      \
        const double *restrict ys = gd_f64(out);    /* [N] */                                      \
        const double *restrict gs = gd_f64(dout);   /* [N] */                                      \
        double *restrict dxs = gd_f64(dx);          /* [N] */                                      \
        for (int64_t s = 0; s < dx->n; s += GD_POLL_ELEMS) {                                            \
            int rc;                                                                                \
            if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;                         \
            int64_t e = dx->n - s < GD_POLL_ELEMS ? dx->n : s + GD_POLL_ELEMS;                               \
            for (int64_t i = s; i < e; i++) {                                                      \
                const double g = gs[i], x = xs[i], y = ys[i];                                      \
                (void)x, (void)y;                                                                  \
                dxs[i] = (DF);                                                                     \
            }                                                                                      \
        }                                                                                          \
        din[0] = dx;                                                                               \
        return 0;                                                                                  \
    }

#define UNARY_DIFF_KERNELS(nm, SETUP, F, DF) UNARY_FORWARD(nm, SETUP, F) UNARY_BACKWARD(nm, SETUP, DF)
#define UNARY_NODIFF_KERNELS(nm, F) UNARY_FORWARD(nm, NOSETUP, F)
UNARY_DIFF_OPS(UNARY_DIFF_KERNELS)
UNARY_NODIFF_OPS(UNARY_NODIFF_KERNELS)

static int infer_unary(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    return gd_infer_elementwise(n, in, 1, lim, out, err);
}

/* leaky_relu: alpha, when given, must be a finite number. */
static int infer_leaky_relu(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out,
                            gd_error *err) {
    if (n->attrs->alpha.given && !isfinite(n->attrs->alpha.v))
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".alpha",
                              "Node '%s' (leaky_relu): alpha must be a finite number.", n->name);
    return infer_unary(n, in, lim, out, err);
}

/* clip: each bound is optional (absent: unbounded on that side) but may not be
 * NaN. min > max is allowed and gives max everywhere, as np.clip does. */
static int infer_clip(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    if (n->attrs->min.given && isnan(n->attrs->min.v))
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".min", "Node '%s' (clip): min must not be NaN.",
                              n->name);
    if (n->attrs->max.given && isnan(n->attrs->max.v))
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".max", "Node '%s' (clip): max must not be NaN.",
                              n->name);
    return infer_unary(n, in, lim, out, err);
}

/* ---------------------------------------------------------------------------
 * Binary ops with NumPy broadcasting. The forward formula sees `a` and `b`.
 * maximum/minimum propagate NaN as NumPy does (the NaN operand is selected;
 * the first when both are NaN). */

/*  name           forward(a, b) */
#define BINARY_OPS(X)                                         \
    X(add,           a + b)                                   \
    X(sub,           a - b)                                   \
    X(mul,           a * b)                                   \
    X(div,           a / b)                                   \
    X(pow,           pow(a, b))                               \
    X(maximum,       (a > b || isnan(a)) ? a : b)             \
    X(minimum,       (a < b || isnan(a)) ? a : b)             \
    X(greater,       (double)(a > b))                         \
    X(greater_equal, (double)(a >= b))                        \
    X(less,          (double)(a < b))                         \
    X(less_equal,    (double)(a <= b))                        \
    X(equal,         (double)(a == b))                        \
    X(not_equal,     (double)(a != b))

enum binary_kind {
#define BIN_ENUM(nm, F) BIN_##nm,
    BINARY_OPS(BIN_ENUM)
#undef BIN_ENUM
};

/* Run the body (the macro's arguments) with the inner strides sa/sb fixed to
 * constants in the common cases (both contiguous, one broadcast along the
 * run), so that the compiler emits straight contiguous loops there. */
#define STRIDE_DISPATCH(...)                                                           \
    do {                                                                               \
        if (ia == 1 && ib == 1) { const int64_t sa = 1, sb = 1; __VA_ARGS__ }          \
        else if (ia == 1 && ib == 0) { const int64_t sa = 1, sb = 0; __VA_ARGS__ }     \
        else if (ia == 0 && ib == 1) { const int64_t sa = 0, sb = 1; __VA_ARGS__ }     \
        else { const int64_t sa = ia, sb = ib; __VA_ARGS__ }                           \
    } while (0)

/* out[i] = F(a[i*ia], b[i*ib]) for i < len, in EW_BLOCK blocks (see
 * there). Returns the OR of the results' nonfinite bits. */
static uint64_t binary_forward_span(enum binary_kind kind, double *restrict out, const double *restrict av,
                                    const double *restrict bv, int64_t len, int64_t ia, int64_t ib) {
    uint64_t bad = 0;
    switch (kind) {
#define BIN_ELEM(F, i)                                                 \
    do {                                                               \
        const double a = av[(i) * sa], b = bv[(i) * sb], y_ = (F);     \
        out[i] = y_;                                                   \
        bad |= gd_nonfinite_bit(y_);                                   \
    } while (0)
#define BIN_CASE(nm, F)                                                \
    case BIN_##nm:                                                     \
        STRIDE_DISPATCH(int64_t i = 0;                                 \
                        for (; i + EW_BLOCK <= len; i += EW_BLOCK)     \
                            for (int k = 0; k < EW_BLOCK; k++)         \
                                BIN_ELEM(F, i + k);                    \
                        for (; i < len; i++) BIN_ELEM(F, i););         \
        break;
        BINARY_OPS(BIN_CASE)
#undef BIN_CASE
#undef BIN_ELEM
    }
    return bad;
}

/* Gradient formulas for the differentiable binary ops, contributions per
 * output element: `g` is dout, `y` the forward output. They are PyTorch's,
 * grouped as PyTorch groups them so that no intermediate overflows or
 * underflows needlessly:
 *   mul: da = g b, db = g a;   div: da = g / b, db = (-g (a / b)) / b, the
 *   contract's -g*(a/b)/b read left to right (never a / (b b), which
 *   underflows to 0 for |b| < 1e-154, nor g ((a / b) / b), where a / b / b
 *   overflows even when g is small or zero);
 *   pow: da = g (b a^(b-1)), selected 0 where b == 0 (see pow_da); db = g (y log a), the
 *   factor masked to 0 where a == 0 and b >= 0 and still multiplied by g
 *   (an infinite g gives NaN there, as PyTorch);
 *   maximum/minimum: the selected operand gets g, a tie gives g/2 to each,
 *   the other exactly 0; a NaN operand counts as selected, and two NaNs
 *   share g evenly (NaN wins the selection, as NumPy's forward).
 * add and sub need no inputs and are handled without this loop. */
/* pow's gradient to the base, g (b a^(b-1)) as PyTorch, exactly 0 where
 * b == 0. Where a^(b-1) alone leaves the normal range but a^b = y does not
 * (a = 1e-150, b = -2: a^-3 = 1e450), the same product is regrouped as
 * ((g b) y) / a, which stays in range whenever the result does. */
static inline double pow_da(double g, double a, double b, double y) {
    if (b == 0) return 0.0;
    double t = pow(a, b - 1.0);
    if (!isnormal(t) && a != 0 && isfinite(a) && isnormal(y)) return ((g * b) * y) / a;
    return g * (b * t);
}

#define DA_mul (g * b)
#define DB_mul (g * a)
#define DA_div (g / b)
#define DB_div ((-g * (a / b)) / b)
#define DA_pow pow_da(g, a, b, y)
#define DB_pow (g * ((a == 0 && b >= 0) ? 0.0 : y * log(a)))
#define PICK_maximum(p, q) ((p) > (q) || (isnan(p) && !isnan(q)))
#define PICK_minimum(p, q) ((p) < (q) || (isnan(p) && !isnan(q)))
#define TIE(p, q) ((p) == (q) || (isnan(p) && isnan(q)))
#define DA_maximum (PICK_maximum(a, b) ? g : TIE(a, b) ? 0.5 * g : 0.0)
#define DB_maximum (PICK_maximum(b, a) ? g : TIE(a, b) ? 0.5 * g : 0.0)
#define DA_minimum (PICK_minimum(a, b) ? g : TIE(a, b) ? 0.5 * g : 0.0)
#define DB_minimum (PICK_minimum(b, a) ? g : TIE(a, b) ? 0.5 * g : 0.0)

#define BWD_DIFF_OPS(X) X(mul) X(div) X(pow) X(maximum) X(minimum)

/* da[i], db[i] (each only when non-NULL) from g[i], y[i], a[i*ia], b[i*ib]. */
static void binary_backward_span(enum binary_kind kind, double *restrict da, double *restrict db,
                                 const double *restrict gv, const double *restrict yv, const double *restrict av,
                                 const double *restrict bv, int64_t len, int64_t ia, int64_t ib) {
    switch (kind) {
#define BWD_CASE(nm)                                                                     \
    case BIN_##nm:                                                                       \
        STRIDE_DISPATCH(for (int64_t i = 0; i < len; i++) {                              \
            const double a = av[i * sa], b = bv[i * sb], g = gv[i], y = yv[i];           \
            (void)y;                                                                     \
            if (da) da[i] = DA_##nm;                                                     \
            if (db) db[i] = DB_##nm;                                                     \
        });                                                                              \
        break;
        BWD_DIFF_OPS(BWD_CASE)
#undef BWD_CASE
    default:
        break;
    }
}

/* State shared by the gd_for_runs callbacks of one binary forward/backward. */
typedef struct bin_ctx {
    enum binary_kind kind;
    const double *a, *b;   /* inputs, broadcast against out */
    double *out;           /* forward: [out] */
    const double *g, *y;   /* backward: dout, forward output, [out] */
    double *da, *db;       /* backward: contributions [out], NULL when not wanted */
    const gd_cancel *cancel;
    gd_error *err;
    uint64_t bad;          /* forward: OR of the outputs' nonfinite bits */
    int64_t since;         /* elements since the last cancel poll */
    int stopped;           /* error code once cancelled; later runs are skipped */
} bin_ctx;

/* Count m processed elements, polling the cancel flag every GD_POLL_ELEMS. */
static int bin_tick(bin_ctx *k, int64_t m) {
    k->since += m;
    if (k->since >= GD_POLL_ELEMS) {
        k->since = 0;
        k->stopped = gd_cancel_check(k->cancel, k->err);
    }
    return k->stopped;
}

static void binary_forward_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    bin_ctx *k = vc;
    for (int64_t s = 0; s < len && !k->stopped; s += GD_POLL_ELEMS) {
        int64_t m = len - s < GD_POLL_ELEMS ? len - s : GD_POLL_ELEMS;
        k->bad |= binary_forward_span(k->kind, k->out + o + s, k->a + off[0] + s * inner[0],
                                      k->b + off[1] + s * inner[1], m, inner[0], inner[1]);
        bin_tick(k, m);
    }
}

static void binary_backward_run(void *vc, int64_t o, const int64_t *off, int64_t len, const int64_t *inner) {
    bin_ctx *k = vc;
    for (int64_t s = 0; s < len && !k->stopped; s += GD_POLL_ELEMS) {
        int64_t m = len - s < GD_POLL_ELEMS ? len - s : GD_POLL_ELEMS;
        binary_backward_span(k->kind, k->da ? k->da + o + s : NULL, k->db ? k->db + o + s : NULL, k->g + o + s,
                             k->y + o + s, k->a + off[0] + s * inner[0], k->b + off[1] + s * inner[1], m, inner[0],
                             inner[1]);
        bin_tick(k, m);
    }
}

/* out = F(a, b) with NumPy broadcasting: one strided loop for every binary op. */
static int binary_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out, enum binary_kind kind) {
    bin_ctx k = {.kind = kind, .a = gd_f64(in[0]), .b = gd_f64(in[1]), .out = gd_f64(out),
                 .cancel = c->cancel, .err = c->err};
    const gd_shape *ops[2] = {&in[0]->shape, &in[1]->shape};
    gd_for_runs(&out->shape, 2, ops, binary_forward_run, &k);
    c->out_finite = !k.bad;
    return k.stopped;
}

/* The VJP of a differentiable binary op, in out's (broadcast) shape. add and
 * sub pass dout through (negated for sub's b) without touching the inputs. */
static int binary_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                           const int *want, gd_tensor **din, enum binary_kind kind) {
    gd_tensor *da = NULL, *db = NULL;
    if (want[0] && !(da = gd_tensor_new(c->arena, &out->shape, GD_F64, 0))) return gd_kernel_oom(c);
    if (want[1] && !(db = gd_tensor_new(c->arena, &out->shape, GD_F64, 0))) return gd_kernel_oom(c);
    const double *g = gd_f64(dout); /* [out] */
    if (kind == BIN_add || kind == BIN_sub) {
        int rc = da ? gd_copy_words(da->data, g, dout->n, c->cancel, c->err) : 0;
        if (!rc && db && kind == BIN_add) rc = gd_copy_words(db->data, g, dout->n, c->cancel, c->err);
        for (int64_t s = 0; !rc && db && kind == BIN_sub && s < dout->n; s += GD_POLL_ELEMS) {
            double *d = gd_f64(db);
            int64_t e = dout->n - s < GD_POLL_ELEMS ? dout->n : s + GD_POLL_ELEMS;
            for (int64_t i = s; i < e; i++) d[i] = -g[i];
            if (e < dout->n) rc = gd_cancel_check(c->cancel, c->err);
        }
        if (rc) return rc;
    } else if (da || db) {
        bin_ctx k = {.kind = kind, .a = gd_f64(in[0]), .b = gd_f64(in[1]), .g = g, .y = gd_f64(out),
                     .da = da ? gd_f64(da) : NULL, .db = db ? gd_f64(db) : NULL, .cancel = c->cancel, .err = c->err};
        const gd_shape *ops[2] = {&in[0]->shape, &in[1]->shape};
        gd_for_runs(&out->shape, 2, ops, binary_backward_run, &k);
        if (k.stopped) return k.stopped;
    }
    din[0] = da;
    din[1] = db;
    return 0;
}

#define BIN_FWD_WRAPPER(nm, F)                                                          \
    static int nm##_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {   \
        return binary_forward(c, in, out, BIN_##nm);                                    \
    }
BINARY_OPS(BIN_FWD_WRAPPER)

#define BIN_BWD_WRAPPER(nm)                                                                           \
    static int nm##_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,            \
                             const gd_tensor *dout, const int *want, gd_tensor **din) {               \
        return binary_backward(c, in, out, dout, want, din, BIN_##nm);                                \
    }
BIN_BWD_WRAPPER(add)
BIN_BWD_WRAPPER(sub)
BWD_DIFF_OPS(BIN_BWD_WRAPPER)

/* NumPy broadcast of the two inputs; the error names both inputs and shapes. */
static int infer_binary(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    out->dtype = GD_F64;
    if (in[0].shape.rank < 0 || in[1].shape.rank < 0) {
        out->shape.rank = -1;
        return 0;
    }
    if (gd_broadcast_shapes(&in[0].shape, &in[1].shape, &out->shape)) {
        char sa[GD_SHAPE_STR_MAX], sb[GD_SHAPE_STR_MAX];
        return gd_node_errorf(err, n, GD_E_SHAPE_MISMATCH, ".inputs",
                              "Node '%s' (%s): shapes do not broadcast: '%s' has shape %s, '%s' has shape %s.",
                              n->name, n->op->name, n->in_names[0], gd_shape_str(&in[0].shape, sa, sizeof sa),
                              n->in_names[1], gd_shape_str(&in[1].shape, sb, sizeof sb));
    }
    return gd_check_size(n, &out->shape, lim, err);
}

/* ---------------------------------------------------------------------------
 * cast{dtype}: float64 <-> int64. */

static int infer_cast(const gd_node *n, const gd_meta *in, const gd_limits *lim, gd_meta *out, gd_error *err) {
    if (!n->attrs->dtype.given)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".dtype",
                              "Node '%s' (cast) needs a dtype: \"float64\" or \"int64\".", n->name);
    if (n->attrs->dtype.v != GD_F64 && n->attrs->dtype.v != GD_I64)
        return gd_node_errorf(err, n, GD_E_INVALID_ATTRIBUTE, ".dtype",
                              "Node '%s' (cast): dtype must be \"float64\" or \"int64\".", n->name);
    out->dtype = (gd_dtype)n->attrs->dtype.v;
    out->shape = in[0].shape;
    return gd_check_size(n, &out->shape, lim, err);
}

/* float64 -> int64 truncates toward zero; NaN, ±Infinity and values whose
 * truncation is outside int64's range are invalid_value (first offender,
 * by flat index). The other three directions convert or copy. */
static int cast_forward(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out) {
    const gd_tensor *x = in[0];
    if (x->dtype == out->dtype || x->dtype == GD_I64) {
        const int64_t *xs = gd_i64(x); /* [N] */
        double *ys = gd_f64(out);      /* [N] */
        for (int64_t s = 0; s < out->n; s += GD_POLL_ELEMS) {
            int rc;
            if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;
            int64_t e = out->n - s < GD_POLL_ELEMS ? out->n : s + GD_POLL_ELEMS;
            if (x->dtype == out->dtype) memcpy((char *)out->data + s * 8, (const char *)x->data + s * 8, (size_t)(e - s) * 8);
            else for (int64_t i = s; i < e; i++) ys[i] = (double)xs[i];
        }
        return 0;
    }
    const double *xs = gd_f64(x); /* [N] */
    int64_t *ys = gd_i64(out);    /* [N] */
    for (int64_t s = 0; s < out->n; s += GD_POLL_ELEMS) {
        int rc;
        if (s && (rc = gd_cancel_check(c->cancel, c->err))) return rc;
        int64_t e = out->n - s < GD_POLL_ELEMS ? out->n : s + GD_POLL_ELEMS;
        for (int64_t i = s; i < e; i++) {
            double t = trunc(xs[i]);
            if (!(t >= -0x1p63 && t < 0x1p63)) {
                char buf[40];
                gd_fmt_double(buf, xs[i]);
                const char *why = isfinite(xs[i]) ? "is outside int64's range" : "has no int64 value";
                return gd_node_errorf(c->err, c->node, GD_E_INVALID_VALUE, "",
                                      "Node '%s' (cast): element %lld of '%s' is %s, which %s.", c->node->name,
                                      (long long)i, c->node->in_names[0], buf, why);
            }
            ys[i] = (int64_t)t;
        }
    }
    return 0;
}

/* Only float64 -> float64 (the identity) ever reaches here: the engine never
 * asks for a gradient into or through an int64 tensor. */
static int cast_backward(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out, const gd_tensor *dout,
                         const int *want, gd_tensor **din) {
    (void)in, (void)out;
    if (!want[0]) return 0;
    return gd_kernel_copy(c, dout, &din[0]);
}

/* ---------------------------------------------------------------------------
 * The table. */

static const gd_attr_spec leaky_relu_attrs[] = {GD_ATTR("alpha", GD_ATTR_NUMBER, alpha, "0.01")};
static const gd_attr_spec clip_attrs[] = {GD_ATTR("min", GD_ATTR_NUMBER, min, "null"),
                                          GD_ATTR("max", GD_ATTR_NUMBER, max, "null")};
static const gd_attr_spec cast_attrs[] = {GD_ATTR("dtype", GD_ATTR_DTYPE, dtype, NULL)};

/* Row makers; what follows the doc string is the row's hints. */
#define UNARY(nm, zc, dc, ...)                                                                                \
    {.name = #nm, .min_in = 1, .max_in = 1, .inputs_doc = "x", .differentiable = 1, .flags = GD_OPF_INPLACE,  \
     .zero_cause = GD_ZERO_##zc,                                                                              \
     .doc = dc, .infer = infer_unary, .forward = nm##_forward, .backward = nm##_backward, .hints = {__VA_ARGS__}}
#define BINARY(nm, zc, dc, ...)                                                                            \
    {.name = #nm, .min_in = 2, .max_in = 2, .inputs_doc = "a, b", .differentiable = 1,                    \
     .zero_cause = GD_ZERO_##zc, .doc = dc, .infer = infer_binary, .forward = nm##_forward,                  \
     .backward = nm##_backward, .hints = {__VA_ARGS__}}
#define NODIFF_UNARY(nm, dc, ...)                                                                     \
    {.name = #nm, .min_in = 1, .max_in = 1, .inputs_doc = "x", .differentiable = 0, .flags = GD_OPF_INPLACE, \
     .doc = dc, .infer = infer_unary, .forward = nm##_forward, .hints = {__VA_ARGS__}}
#define COMPARE(nm, dc)                                                                                 \
    {.name = #nm, .min_in = 2, .max_in = 2, .inputs_doc = "a, b", .differentiable = 0, .doc = dc,       \
     .infer = infer_binary, .forward = nm##_forward, .hints = {.no_gradient = STEP_HINT}}

/* Shared hints. */
#define STEP_HINT \
    "'{node}' ({op}) is a step with zero derivative; replace it with a smooth step such as sigmoid((a - b) / temperature)."
#define ROUNDING_HINT \
    "Use a straight-through estimator: {in} + stop_gradient({op}({in}) - {in}) in place of '{node}' keeps the {op} value " \
    "and passes the gradient of the identity."
#define DIV_HINT "'{node}' ({op}) divides by zero: add a small eps to the denominator or mask the zero entries."
#define EXP_HINT \
    "'{node}' ({op}) overflows for large inputs: work in log space (logsumexp, log_softmax, softmax_cross_entropy)."
#define POW_HINT "'{node}' (pow) with a zero or negative base is not finite here: clip the base or use a smooth alternative."

const gd_op_def gd_ops_elementwise[] = {
    UNARY(neg, VALUE, "Elementwise negation, -x."),
    UNARY(exp, VALUE, "Elementwise e^x.",
          .nonfinite_value = EXP_HINT, .nonfinite_grad = EXP_HINT),
    UNARY(log, VALUE, "Elementwise natural logarithm; log(0) is -Infinity and a negative x gives NaN (no error).",
          .nonfinite_value = "log of a negative number is NaN and of 0 is -Infinity: clip the input of '{node}' to a "
                             "small positive value, or use log1p/log_softmax.",
          .nonfinite_grad = "log has an infinite derivative at 0: use log(x + eps), or log1p/softplus, in '{node}'."),
    UNARY(log1p, VALUE, "Elementwise log(1 + x), accurate near x = 0; x < -1 gives NaN."),
    UNARY(expm1, VALUE, "Elementwise e^x - 1, accurate near x = 0.",
          .nonfinite_value = EXP_HINT, .nonfinite_grad = EXP_HINT),
    UNARY(sqrt, VALUE, "Elementwise square root; a negative x gives NaN, and the gradient at 0 is +Infinity.",
          .nonfinite_value = "sqrt of a negative number is NaN: clip the input of '{node}' to be >= 0, or square/abs "
                             "it first.",
          .nonfinite_grad = "sqrt has an infinite derivative at 0: use sqrt({in} + eps) with a small eps in place of "
                            "'{node}', or clip '{in}' away from 0."),
    UNARY(square, VALUE, "Elementwise x^2."),
    UNARY(abs, MASK, "Elementwise |x|; the gradient is dout * sign(x), with sign 0 at x = 0 and at NaN (as PyTorch)."),
    UNARY(sin, VALUE, "Elementwise sine (radians)."),
    UNARY(cos, VALUE, "Elementwise cosine (radians)."),
    UNARY(tanh, VALUE, "Elementwise hyperbolic tangent."),
    UNARY(sigmoid, VALUE, "Elementwise logistic function 1 / (1 + e^-x), computed without overflow for large |x|."),
    UNARY(relu, MASK, "Elementwise max(x, 0); NaN stays NaN; the gradient passes where x > 0 or x is NaN and is "
                     "exactly 0 elsewhere, x = 0 included (as PyTorch).",
          .zero_gradient = "'{node}' is a dead relu: every element of '{in}' is <= 0. Use leaky_relu({in}) in place of "
                           "'{node}', a different initialisation or bias, or a smaller learning rate."),
    UNARY(softplus, VALUE,
          "Elementwise log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|); its gradient is sigmoid(x)."),
    UNARY(reciprocal, VALUE, "Elementwise 1 / x; 1 / 0 is Infinity (no error).",
          .nonfinite_value = DIV_HINT, .nonfinite_grad = DIV_HINT),
    {.name = "leaky_relu", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = leaky_relu_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INPLACE, .zero_cause = GD_ZERO_VALUE,
     .doc = "Elementwise x for x > 0, else alpha * x (alpha defaults to 0.01); the gradient at x = 0 is alpha "
            "(as PyTorch).",
     .infer = infer_leaky_relu, .forward = leaky_relu_forward, .backward = leaky_relu_backward},
    {.name = "clip", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = clip_attrs, .n_attrs = 2,
     .differentiable = 1, .flags = GD_OPF_INPLACE, .zero_cause = GD_ZERO_MASK,
     .doc = "Elementwise minimum(maximum(x, min), max) as numpy.clip; either bound may be omitted (neither: the "
            "identity), min > max gives max, and the gradient passes where min <= x <= max, bounds included "
            "(as torch.clamp).",
     .infer = infer_clip, .forward = clip_forward, .backward = clip_backward,
     .hints = {.zero_gradient = "'{node}' (clip) is saturated: every input is outside [min, max]. Widen the bounds or "
                                "rescale its input."}},

    BINARY(add, VALUE, "a + b, with NumPy broadcasting."),
    BINARY(sub, VALUE, "a - b, with NumPy broadcasting."),
    BINARY(mul, VALUE, "a * b, with NumPy broadcasting."),
    BINARY(div, VALUE, "a / b, with NumPy broadcasting; division by zero gives ±Infinity or NaN (no error).",
          .nonfinite_value = DIV_HINT, .nonfinite_grad = DIV_HINT),
    BINARY(pow, VALUE,
           "a ** b, with NumPy broadcasting; a negative a with a non-integer b gives NaN. The gradient for a is 0 "
           "where b == 0, the gradient for b is dout * 0 where a == 0 and b >= 0 (NaN for an infinite dout, as "
           "PyTorch).",
          .nonfinite_value = POW_HINT, .nonfinite_grad = POW_HINT),
    BINARY(maximum, MASK,
           "Elementwise larger of a and b, with NumPy broadcasting; NaN propagates (maximum(NaN, 1) is NaN). The "
           "gradient goes to the selected operand (a NaN one), ties and two NaNs share it evenly (0.5 each), "
           "and the other operand gets exactly 0."),
    BINARY(minimum, MASK,
           "Elementwise smaller of a and b, with NumPy broadcasting; NaN propagates (minimum(NaN, 1) is NaN). The "
           "gradient goes to the selected operand (a NaN one), ties and two NaNs share it evenly (0.5 each), "
           "and the other operand gets exactly 0."),

    NODIFF_UNARY(round, "Elementwise rounding to the nearest integer, halves to even as NumPy (0.5 -> 0, 1.5 -> 2); "
                        "not differentiable.",
          .no_gradient = ROUNDING_HINT),
    NODIFF_UNARY(floor, "Elementwise largest integer <= x; not differentiable.",
          .no_gradient = ROUNDING_HINT),
    NODIFF_UNARY(ceil, "Elementwise smallest integer >= x; not differentiable.",
          .no_gradient = ROUNDING_HINT),
    NODIFF_UNARY(sign, "Elementwise -1, 0 or 1 by the sign of x (0 for ±0, NaN for NaN); not differentiable.",
          .no_gradient = STEP_HINT),
    COMPARE(greater, "a > b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable."),
    COMPARE(greater_equal, "a >= b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable."),
    COMPARE(less, "a < b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable."),
    COMPARE(less_equal, "a <= b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable."),
    COMPARE(equal, "a == b as float64 0/1, with NumPy broadcasting; NaN equals nothing; not differentiable."),
    COMPARE(not_equal, "a != b as float64 0/1, with NumPy broadcasting; NaN differs from everything (1); not "
                       "differentiable."),

    {.name = "cast", .min_in = 1, .max_in = 1, .inputs_doc = "x", .attrs = cast_attrs, .n_attrs = 1,
     .differentiable = 1, .flags = GD_OPF_INT_OK | GD_OPF_MAKES_INT, .zero_cause = GD_ZERO_VALUE,
     .doc = "Converts x to dtype (\"float64\" or \"int64\", required). float64 -> int64 truncates toward zero, and "
            "NaN, ±Infinity or a value outside int64's range is invalid_value; float64 -> float64 is the identity "
            "and passes the gradient through; no gradient flows into int64.",
     .infer = infer_cast, .forward = cast_forward, .backward = cast_backward,
     .hints = {.blocked = "'{node}' (cast to int64; gradients never flow into integer tensors)",
               /* casting back to float64 does not bring the gradient back: offer the
                * straight-through form, as the rounding ops' hint does */
               .no_gradient = "'{node}' casts '{in}' to int64, and no gradient flows through an integer tensor, not "
                              "even after a cast back to float64. To keep the integer value and still train through "
                              "it, stay in float64 with a straight-through estimator: {in} + stop_gradient(round({in}) "
                              "- {in}) in place of the casts (floor or ceil for the rounding you need; the cast "
                              "truncates toward zero). Otherwise remove the cast."}},
    {0},
};
