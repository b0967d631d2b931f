/* numscan.h - the numeric arrays (and a graph's plain nodes) of a request
 * body, read ahead of jansson.
 *
 * jansson would make a tree node and call strtod for every number; a
 * tensor of a million elements spends most of its decode there. This scan
 * finds the tensor literals at the positions where the decoder reads
 * tensors ($.values.NAME, $.values.NAME.data, $.graph.nodes[i].value and
 * .value.data), reads rectangular lists of plain JSON numbers with
 * core/numparse.h into a side table, and hands jansson a copy of the body in
 * which each such list is a placeholder string, "\u0000<index>" (never
 * longer than the list). If that copy does not parse, the caller parses the
 * body itself, so errors and their positions are the body's. No user text can make a
 * placeholder: a body that holds the text \u0000 anywhere is not scanned
 * (jansson refuses a NUL in a string without JSON_ALLOW_NUL, which the
 * placeholder parse needs). Lists it cannot take stay in the text for the
 * ordinary path: ragged or empty lists, strings (NaN...), integers of
 * magnitude 2^53 and more, numbers jansson would refuse (a real that
 * overflows), lists over the element limit or too short for a placeholder.
 * Values are what jansson would give (an integer literal -0 is +0).
 *
 * It knows JSON text and core/numparse; not jansson's tree, tensors or
 * requests. The side table and the copy live in the request's arena, so
 * they count against its memory limit. */
#ifndef GD_NUMSCAN_H
#define GD_NUMSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/cancel.h"
#include "core/tensor.h"

/* One list taken: n elements (row-major) at v[off], of shape `shape`
 * (rank >= 1, no dimension 0). */
typedef struct gd_numarr {
    int64_t off, n;
    gd_shape shape;
} gd_numarr;

/* A node of "graph"."nodes" read ahead: name, op, input names (offsets
 * of NUL-terminated strings in the table's pool) and the "shape" list. */
typedef struct gd_numnode {
    int64_t name, op;
    int64_t in_first; /* input k's name: pool + ins[in_first + k] */
    int n_in;
    int shape_rank;   /* -1: no "shape" key */
    int64_t shape[GD_MAX_RANK];
} gd_numnode;

typedef struct gd_numtab {
    double *v;      /* every element of every list taken (arena buffer) */
    gd_numarr *arr; /* the lists, in body order (arena buffer) */
    int n_arr;
    char *text;     /* the body with placeholders, text_len bytes + NUL (arena buffer) */
    size_t text_len, text_cap;
    int64_t n_v, cap_v;
    int cap_arr;
    /* "graph"."nodes" when every node in it is plain (below): the list is
     * then the placeholder "\u0000n" in the text (arena buffers). */
    int nodes_taken;
    gd_numnode *nodes;
    int64_t n_nodes, cap_nodes;
    int64_t *ins, n_ins, cap_ins;
    char *pool;
    int64_t n_pool, cap_pool;
} gd_numtab;

/* The graph's nodes are read ahead too when every one is plain: an object
 * whose keys are "name" and "op" (both required) and optionally "inputs"
 * (a list of strings) and "shape" (a list of at most GD_MAX_RANK integers
 * without sign, fraction or exponent, below 10^15), each once, every
 * string of printable ASCII without escapes. jansson then builds a few
 * objects instead of one per node (half of a 10k-node request). Any other
 * node (attributes, a constant's value, escapes, non-ASCII) leaves the
 * whole list to jansson, as does an empty one. The decoder builds the same
 * graph from either (proto/decode.c, decode_graph).
 *
 * Scans body (len bytes). Returns 1 with *t filled when some list (or the
 * nodes) was taken (parse t->text, t->text_len bytes, instead of the body, with
 * JSON_ALLOW_NUL); 0 when none was
 * (nothing held: parse the body as usual); -1 when the cancel record fired.
 * max_elements (0: none) bounds each list. Release with gd_numtab_free. */
int gd_numscan(gd_arena *a, const char *body, size_t len, int64_t max_elements, const gd_cancel *cancel,
               gd_numtab *t);

/* Hands t's buffers back to the arena (text first may go alone:
 * gd_numtab_free_text). */
void gd_numtab_free_text(gd_arena *a, gd_numtab *t);
void gd_numtab_free(gd_arena *a, gd_numtab *t);

/* The list a string value stands for: s (n bytes, as jansson holds it) is a
 * placeholder of t, or NULL when it is not (any ordinary string). */
const gd_numarr *gd_numtab_find(const gd_numtab *t, const char *s, size_t n);

/* Whether a string value (n bytes, as jansson holds it) is the placeholder
 * of the nodes t read ahead. */
int gd_numtab_is_nodes(const gd_numtab *t, const char *s, size_t n);

#endif
