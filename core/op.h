/* op.h - the op table: one row per op with its name, arity, attributes,
 * shape/dtype inference, forward kernel, backward (VJP) rule and gradient
 * facts. The table is the single source for validation, evaluation,
 * differentiation, diagnostics and `GET /v1/ops`.
 *
 * Rows live beside their kernels, one file per family (ops_elementwise.c,
 * ops_reduce.c, ops_shape.c, ops_linalg.c, ops_nn.c, ops_flow.c); op.c joins
 * them. A row says everything about its op: arity, attributes, kernels,
 * which inputs pass gradient, and the hints the diagnostics give about it,
 * so that adding an op touches one family file and one test list. */
#ifndef GD_OP_H
#define GD_OP_H

#include "core/cancel.h"
#include "core/graph.h"

/* Static limits that inference enforces (a known size over the limit is
 * too_large before any memory is spent). */
typedef struct gd_limits {
    int64_t max_elements; /* per tensor, input or inferred; 0: no limit */
    const gd_cancel *cancel; /* polled by gd_graph_check between nodes (A7: checking stops at the deadline); may be NULL */
} gd_limits;

/* Attribute kinds, as a decoder must read them. */
typedef enum gd_attr_kind {
    GD_ATTR_INT,      /* integer -> gd_ints (one entry) */
    GD_ATTR_AXIS,     /* integer or list of integers -> gd_ints */
    GD_ATTR_INTS,     /* list of integers -> gd_ints */
    GD_ATTR_BOOL,     /* true/false -> gd_num 0/1 */
    GD_ATTR_NUMBER,   /* number -> gd_num */
    GD_ATTR_DTYPE,    /* "float64" / "int64" -> gd_num */
} gd_attr_kind;

typedef struct gd_attr_spec {
    const char *name;      /* key in the node object */
    gd_attr_kind kind;
    size_t offset;         /* of the gd_ints / gd_num slot in gd_attrs */
    const char *dflt;      /* default as JSON text for docs ("false", "-1"), NULL: required, "null": optional */
} gd_attr_spec;

#define GD_ATTR(name, kind, slot, dflt) {name, kind, offsetof(gd_attrs, slot), dflt}

/* What a kernel gets: the request's arena, the cancel flag, the error record
 * and the node (for messages). */
typedef struct gd_kctx {
    gd_arena *arena;
    const gd_cancel *cancel;
    gd_error *err;
    const gd_node *node;
    /* Set by a forward kernel that watched every value it wrote: 1 when all
     * were finite, so that check_numerics need not scan the output again
     * (the engine scans when it is left 0). */
    int out_finite;
} gd_kctx;

/* Shape/dtype inference. in[i] are the inputs' metas (shape rank < 0 when
 * unknown); fills *out. Must propagate "unknown" rather than fail on it, and
 * fail (gd_node_errorf, naming the node and the mismatch) only on facts that
 * are known to be wrong: attribute errors, known shape or dtype mismatches, a
 * known size over lim->max_elements (too_large) or overflowing. */
typedef int (*gd_infer_fn)(const gd_node *n, const gd_meta *in, const gd_limits *lim,
                           gd_meta *out, gd_error *err);

/* Forward: out is allocated by the engine with the inferred shape and dtype
 * (data uninitialised). Inputs arrive as float64 unless the row has
 * GD_OPF_INT_OK, in which case int64 inputs arrive as they are. Returns 0 or an
 * error code (runtime errors such as index_out_of_range). */
typedef int (*gd_forward_fn)(gd_kctx *c, const gd_tensor *const *in, gd_tensor *out);

/* Backward (VJP): given the inputs, the forward output and the cotangent dout
 * (float64, out's shape), set din[i] for every i with want[i] != 0 to a new
 * float64 tensor (gd_tensor_new in c->arena) holding the contribution to input
 * i. The contribution may have either input i's shape or, for broadcasting
 * ops, the broadcast shape: the engine sums it down (op rules never undo
 * broadcasting themselves). Leaving din[i] NULL means "exactly zero". */
typedef int (*gd_backward_fn)(gd_kctx *c, const gd_tensor *const *in, const gd_tensor *out,
                              const gd_tensor *dout, const int *want, gd_tensor **din);

/* Scratch: the most arena bytes (gd_arena_buf_cost of each buffer) the
 * forward kernel (backward = 0) allocates besides its output, or the
 * backward rule besides its din, for inputs and output of these metas
 * (shapes known). For the memory plan (memplan.h); NULL: none. */
typedef size_t (*gd_scratch_fn)(const gd_node *n, const gd_meta *in, const gd_meta *out, int backward);

enum {
    GD_OPF_LEAF = 1 << 0,      /* variable / input / constant */
    GD_OPF_INT_OK = 1 << 1,    /* int64 inputs reach the kernel unconverted */
    GD_OPF_STOP = 1 << 2,      /* stop_gradient */
    GD_OPF_COND = 1 << 3,      /* lazy cond: inputs pred, then, else */
    GD_OPF_MAKES_INT = 1 << 4, /* output may be int64 made here (argmax, cast, int64 leaf) */
    GD_OPF_VARIABLE = 1 << 5,  /* trainable leaf: a default `wrt`, its value from `values` */
    GD_OPF_DATA = 1 << 6,      /* data leaf: its value from `values`, a gradient only when named in `wrt` */
    GD_OPF_INPLACE = 1 << 7,   /* forward may write its output over input 0 (same shape and dtype): each
                                  out[i] depends on in[0][i] alone, read before out[i] is written */
    GD_OPF_CONTRACTS = 1 << 8, /* work grows as output x input 0's last dim (matmul): for gd_graph_work */
};

/* Why a nonzero cotangent became all zero (the wire `cause` of a
 * zero_gradient diagnostic). A row names the cause its backward rule gives
 * (value: multiplied by zero values; mask: selected other elements); the
 * engine adds cancellation, when contributions sum to zero. */
#define GD_ZERO_CAUSES(X)  \
    X(VALUE, "value")      \
    X(MASK, "mask")        \
    X(CANCELLATION, "cancellation")

typedef enum gd_zero_cause {
#define GD__ZERO_ENUM(name, wire) GD_ZERO_##name,
    GD_ZERO_CAUSES(GD__ZERO_ENUM)
#undef GD__ZERO_ENUM
} gd_zero_cause;

/* How many there are (not a member, so that switches need not name it). */
#define GD__ONE(name, wire) +1
enum { GD_ZERO__COUNT = 0 GD_ZERO_CAUSES(GD__ONE) };
#undef GD__ONE

const char *gd_zero_cause_name(gd_zero_cause c); /* wire name */

/* What the diagnostics tell a user about this op. Templates: `{node}` and
 * `{op}` become the node's name and op, `{in}` its first input's name,
 * `{wrt}` the variable's name. NULL
 * takes the generic text in diagnose.c. */
typedef struct gd_op_hints {
    const char *blocked;        /* message: the edge it stops, "'{node}' (cast to int64; ...)" */
    const char *no_gradient;    /* hint: a gradient stops here (not differentiable, or a no-gradient input) */
    const char *zero_gradient;  /* hint: a nonzero cotangent became all zero here */
    const char *nonfinite_value;/* hint: NaN/Inf born in the forward value */
    const char *nonfinite_grad; /* hint: NaN/Inf born in the backward rule */
} gd_op_hints;

typedef struct gd_op_def {
    const char *name;
    int min_in, max_in;          /* max_in < 0: unbounded */
    const char *inputs_doc;      /* "x", "a, b", "logits, labels", "x..." */
    const gd_attr_spec *attrs;
    int n_attrs;
    int differentiable;          /* 0: no input ever passes gradient */
    unsigned nograd_inputs;      /* bit i: input i passes no gradient (where's cond, gather's indices);
                                  * read through gd_flow_input_block only (inputs past 31 are never named) */
    unsigned flags;              /* GD_OPF_* */
    gd_zero_cause zero_cause;    /* GD_ZERO_VALUE or GD_ZERO_MASK */
    const char *doc;
    gd_op_hints hints;
    gd_infer_fn infer;
    gd_forward_fn forward;
    gd_backward_fn backward;     /* NULL iff !differentiable (and for leaves) */
    gd_scratch_fn scratch;       /* NULL: the kernels allocate nothing on the side */
} gd_op_def;

/* A leaf whose value comes from the request's `values` (variable, input),
 * and one whose value sits inline in the node (constant). */
static inline int gd_op_takes_value(const gd_op_def *op) {
    return (op->flags & (GD_OPF_VARIABLE | GD_OPF_DATA)) != 0;
}
static inline int gd_op_is_constant(const gd_op_def *op) {
    return (op->flags & GD_OPF_LEAF) && !gd_op_takes_value(op);
}

/* Family tables, each terminated by a row with name == NULL. */
extern const gd_op_def gd_ops_leaf[];
extern const gd_op_def gd_ops_elementwise[];
extern const gd_op_def gd_ops_reduce[];
extern const gd_op_def gd_ops_shape[];
extern const gd_op_def gd_ops_linalg[];
extern const gd_op_def gd_ops_nn[];
extern const gd_op_def gd_ops_flow[];

/* Lookup by name across all families; NULL when unknown. */
const gd_op_def *gd_op_find(const char *name);
/* All ops in table order: *n set; the array is static. */
const gd_op_def *const *gd_op_all(int *n);
/* Attribute spec of op by key, NULL when the op has no such attribute. */
const gd_attr_spec *gd_op_attr(const gd_op_def *op, const char *key);

/* Helpers shared by the family files. */
int gd_infer_elementwise(const gd_node *n, const gd_meta *in, int n_in, const gd_limits *lim,
                         gd_meta *out, gd_error *err); /* NumPy broadcast of all inputs, float64 out */
int gd_check_size(const gd_node *n, const gd_shape *s, const gd_limits *lim, gd_error *err);
/* A leaf's output from its value in st (declared dtype and shape checked),
 * or from its declarations when st or its value is NULL. The leaf rows'
 * `infer` is this without a state. */
int gd_infer_leaf(const gd_node *n, const gd_nstate *st, const gd_limits *lim, gd_meta *out, gd_error *err);

#endif
