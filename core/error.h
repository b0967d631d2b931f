/* error.h - gradd's closed list of error codes and the error record every
 * layer fills in.
 *
 * The X-macro GD_ERRORS is the single table of codes: it yields the enum, the
 * wire `code` string, the HTTP status and the default message together (in the
 * manner of libuv's UV_ERRNO_MAP). The core never speaks HTTP; the status is
 * plain data that the server reads from here. Nothing in this file allocates. */
#ifndef GD_ERROR_H
#define GD_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*        enum suffix        wire code             HTTP  default message */
#define GD_ERRORS(X)                                                                    \
    X(INVALID_JSON,        "invalid_json",        400, "The body is not valid JSON.")   \
    X(INVALID_REQUEST,     "invalid_request",     400, "The request has a wrong type or structure.") \
    X(UNKNOWN_KEY,         "unknown_key",         400, "Unknown key.")                  \
    X(UNKNOWN_OP,          "unknown_op",          400, "Unknown op.")                   \
    X(UNKNOWN_NODE,        "unknown_node",        400, "Unknown node.")                 \
    X(DUPLICATE_NODE,      "duplicate_node",      400, "Duplicate node name.")          \
    X(CYCLE,               "cycle",               400, "The graph has a cycle.")        \
    X(SHAPE_MISMATCH,      "shape_mismatch",      400, "Shapes do not match.")          \
    X(DTYPE_MISMATCH,      "dtype_mismatch",      400, "Dtypes do not match.")          \
    X(MISSING_VALUE,       "missing_value",       400, "A value is missing.")           \
    X(INVALID_ATTRIBUTE,   "invalid_attribute",   400, "Invalid attribute.")            \
    X(INVALID_VALUE,       "invalid_value",       400, "Invalid value.")                \
    X(INDEX_OUT_OF_RANGE,  "index_out_of_range",  400, "Index out of range.")           \
    X(TARGET_NOT_SCALAR,   "target_not_scalar",   400, "The target is not a scalar and no target_grad was given.") \
    X(UNAUTHORIZED,        "unauthorized",        401, "A valid bearer token is required.") \
    X(NOT_FOUND,           "not_found",           404, "No such route.")                \
    X(UNKNOWN_GRAPH,       "unknown_graph",       404, "No graph of this id is registered here.") \
    X(METHOD_NOT_ALLOWED,  "method_not_allowed",  405, "Method not allowed on this route.") \
    X(TOO_LARGE,           "too_large",           413, "Over the configured limits.")   \
    X(UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415, "Unsupported Content-Type or Content-Encoding.") \
    X(NO_GRADIENTS,        "no_gradients",        422, "No gradients provided for any variable.") \
    X(INTERNAL,            "internal",            500, "Internal error.")               \
    X(OVERLOADED,          "overloaded",          503, "The server is overloaded; retry later.") \
    X(DEADLINE_EXCEEDED,   "deadline_exceeded",   504, "The compute deadline was exceeded.")

typedef enum gd_err {
    GD_OK = 0,
#define GD__ENUM(name, code, status, msg) GD_E_##name,
    GD_ERRORS(GD__ENUM)
#undef GD__ENUM
    GD_E__COUNT
} gd_err;

#define GD_ERR_MSG_MAX 512
#define GD_ERR_AT_MAX 256
#define GD_ERR_SUGGEST_MAX 272

/* What went wrong, where (a JSON path such as "$.graph.nodes[3].inputs[1]",
 * empty when it does not apply) and the closest valid spelling when the
 * culprit is a misspelt name. Fixed-size so that filling it never allocates. */
typedef struct gd_error {
    gd_err code;
    char message[GD_ERR_MSG_MAX];
    char at[GD_ERR_AT_MAX];
    char suggestion[GD_ERR_SUGGEST_MAX];
} gd_error;

const char *gd_err_code(gd_err e);     /* wire code, e.g. "shape_mismatch" */
int gd_err_status(gd_err e);           /* HTTP status, e.g. 400 */
const char *gd_err_default(gd_err e);  /* default message */
gd_err gd_err_from_code(const char *code); /* GD_E__COUNT when unknown */

void gd_error_clear(gd_error *err);
/* Set err (when non-NULL) and return code, so callers can `return gd_errorf(...)`.
 * `at` may be NULL. The message is printf-formatted and truncated to fit. */
int gd_errorf(gd_error *err, gd_err code, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int gd_verrorf(gd_error *err, gd_err code, const char *at, const char *fmt, va_list ap);
void gd_error_suggest(gd_error *err, const char *suggestion);
/* too_large for a request that outgrew its memory limit (the arena said no);
 * returns the code. Kernels use gd_kernel_oom, which names the node. */
int gd_error_oom(gd_error *err);

/* Closest candidate to `word` by edit distance, or NULL when none is close
 * enough to be a plausible misspelling (the first of equally close ones).
 * `cands` is NULL-terminated when n < 0. The search is bounded: it stops
 * after GD_CLOSEST_BUDGET units of work (a unit: one candidate, or one cell
 * of a distance table), so a "did you mean" over a huge graph costs at most
 * a few milliseconds; candidates past the budget are not considered. */
const char *gd_closest(const char *word, const char *const *cands, int n);

#define GD_CLOSEST_BUDGET ((int64_t)1 << 21)

/* The same search, fed one candidate at a time (no array needed): init,
 * then add while it returns 1 (0: budget spent, stop), then read best. */
typedef struct gd_closest_search {
    const char *word;
    size_t len;
    int allowed;          /* largest distance that still counts as a misspelling */
    const char *best;     /* NULL until a candidate within `allowed` is found */
    int bestd;
    int64_t budget;
} gd_closest_search;
void gd_closest_init(gd_closest_search *s, const char *word, int64_t budget);
int gd_closest_add(gd_closest_search *s, const char *cand);

#endif
