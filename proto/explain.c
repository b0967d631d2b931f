/* explain.c - a run drawn as DOT text (see explain.h).
 *
 * Two passes: the marks (which nodes are targets, wrt, on an error
 * diagnostic's path, where a zero or a NaN/Inf was born; which edges lie on
 * a path), gathered from the request and its diagnostics; then one
 * statement per node and per edge, styled by those marks and by the flow
 * rule (core/flow.h) in this run's cond choices. Node names go into the text
 * only inside quoted strings, escaped for DOT and for Graphviz's label
 * escapes, so that no name can add a statement or an attribute. */
#include "proto/explain.h"

#include <inttypes.h>
#include <string.h>

#include "core/arena.h"
#include "core/flow.h"

/* What a node is in the picture (bits of pic.mark). */
enum {
    MK_TARGET = 1 << 0,
    MK_WRT = 1 << 1,
    MK_NOGRAD = 1 << 2,    /* a wrt without a gradient */
    MK_PATH = 1 << 3,      /* on an error diagnostic's path, or its subject when it has none */
    MK_ZERO = 1 << 4,      /* a gradient became all zero here */
    MK_NF_GRAD = 1 << 5,   /* NaN/Inf born in this node's backward rule */
    MK_NF_VALUE = 1 << 6,  /* NaN/Inf born in this node's value */
};

typedef struct pic {
    const gd_graph *g;
    const gd_trace *t;
    unsigned char *mark;    /* [n] MK_* */
    signed char *zero;      /* [n] the gd_zero_cause of a zero birth, -1 none */
    int *e_start;           /* [n + 1]: node v's input i is edge e_start[v] + i */
    unsigned char *e_path;  /* [edges] on an error diagnostic's path */
    signed char *e_block;   /* [edges] the gd_block_reason a diagnostic's blocked_at names, -1 none */
} pic;

/* ---- text ------------------------------------------------------------------------ */

/* s inside a DOT quoted string: `"` and `\` escaped. `label`: also as
 * Graphviz reads an escString label (a backslash stays a backslash once
 * doubled) and an HTML entity (`&` written as `&amp;`, so that "&lt;" in a
 * name is shown as typed). */
static void put_escaped(gd_buf *b, const char *s, int label) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') gd_buf_putc(b, '\\');
        if (label && *s == '&') gd_buf_puts(b, "&amp;");
        else gd_buf_putc(b, *s);
    }
}

static void put_id(gd_buf *b, const gd_graph *g, int v) {
    gd_buf_putc(b, '"');
    put_escaped(b, g->nodes[v].name, 0);
    gd_buf_putc(b, '"');
}

static void put_shape(gd_buf *b, const gd_meta *m) {
    if (m->shape.rank < 0) {
        gd_buf_puts(b, "[?]");
    } else {
        gd_buf_putc(b, '[');
        for (int i = 0; i < m->shape.rank; i++) gd_buf_printf(b, i ? ", %" PRId64 : "%" PRId64, m->shape.dim[i]);
        gd_buf_putc(b, ']');
    }
    if (m->dtype == GD_I64) gd_buf_puts(b, " int64");
}

/* ---- marks ---------------------------------------------------------------------- */

/* The edges from path[k] into path[k+1] (every input slot that names it). */
static void mark_path(pic *p, const gd_diag *d) {
    const gd_graph *g = p->g;
    for (int k = 0; k < d->n_path; k++) {
        p->mark[d->path[k]] |= MK_PATH;
        if (k + 1 == d->n_path) break;
        const gd_node *c = &g->nodes[d->path[k + 1]];
        for (int i = 0; i < c->n_in; i++)
            if (c->in[i] == d->path[k]) p->e_path[p->e_start[d->path[k + 1]] + i] = 1;
    }
}

static void mark_diag(pic *p, const gd_diag *d) {
    /* A stopping point as the diagnostic names it: for an int64 input the
     * node that made it int64 (argmax, cast), which no cotangent reaches. */
    for (int j = 0; j < d->n_blocked; j++)
        if (d->blocked[j].input >= 0 && d->blocked[j].input < p->g->nodes[d->blocked[j].node].n_in)
            p->e_block[p->e_start[d->blocked[j].node] + d->blocked[j].input] = (signed char)d->blocked[j].reason;
    int subject = d->wrt >= 0 ? d->wrt : d->node; /* -1: about no node in particular */
    if (d->is_error && d->n_path > 0) mark_path(p, d);
    else if (d->is_error && subject >= 0) p->mark[subject] |= MK_PATH;
    if (d->code == GD_DIAG_ZERO_GRADIENT || d->has_zeroed)
        for (int j = 0; j < d->n_zeroed; j++) {
            p->mark[d->zeroed[j].node] |= MK_ZERO;
            if (p->zero[d->zeroed[j].node] < 0) p->zero[d->zeroed[j].node] = (signed char)d->zeroed[j].cause;
        }
    if (d->origin.node >= 0)
        p->mark[d->origin.node] |= d->code == GD_DIAG_NON_FINITE_VALUE ? MK_NF_VALUE : MK_NF_GRAD;
}

static int marks(pic *p, const gd_request *req, const gd_run_result *res) {
    const gd_graph *g = req->graph;
    int n = g->n;
    p->mark = gd_arena_alloc(g->arena, (size_t)n);
    p->zero = gd_arena_alloc(g->arena, (size_t)n);
    p->e_start = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    if (!p->mark || !p->zero || !p->e_start) return -1;
    memset(p->mark, 0, (size_t)n);
    memset(p->zero, -1, (size_t)n);
    p->e_start[0] = 0;
    for (int v = 0; v < n; v++) p->e_start[v + 1] = p->e_start[v] + g->nodes[v].n_in;
    p->e_path = gd_arena_alloc(g->arena, (size_t)p->e_start[n] + 1);
    p->e_block = gd_arena_alloc(g->arena, (size_t)p->e_start[n] + 1);
    if (!p->e_path || !p->e_block) return -1;
    memset(p->e_path, 0, (size_t)p->e_start[n] + 1);
    memset(p->e_block, -1, (size_t)p->e_start[n] + 1);
    for (int k = 0; k < req->spec.n_targets; k++) p->mark[req->spec.targets[k]] |= MK_TARGET;
    for (int k = 0; k < req->spec.n_wrt; k++)
        p->mark[req->spec.wrt[k]] |= MK_WRT | (res->grads && res->grads[k] ? 0 : MK_NOGRAD);
    for (int k = 0; k < res->n_diags; k++) mark_diag(p, &res->diags[k]);
    return 0;
}

/* ---- statements ------------------------------------------------------------------ */

/* The extra label lines and the class words of node v. */
static void node_notes(gd_buf *label, gd_buf *cls, const pic *p, int v) {
    unsigned m = p->mark[v];
    const gd_op_def *op = p->g->nodes[v].op;
    gd_buf_puts(cls, op->flags & GD_OPF_LEAF ? "leaf" : "op");
    if (!p->t->evaluated[v]) gd_buf_puts(cls, " unevaluated"), gd_buf_puts(label, "\\nnot evaluated");
    if (m & MK_TARGET) gd_buf_puts(cls, " target"), gd_buf_puts(label, "\\ntarget");
    if (m & MK_WRT) {
        gd_buf_puts(cls, m & MK_NOGRAD ? " wrt nograd" : " wrt");
        gd_buf_puts(label, m & MK_NOGRAD ? "\\nwrt: no gradient" : "\\nwrt");
    }
    if (m & MK_PATH) gd_buf_puts(cls, " path");
    if (m & MK_ZERO)
        gd_buf_puts(cls, " zero"), gd_buf_printf(label, "\\ngradient zeroed: %s", gd_zero_cause_name(p->zero[v]));
    if (m & MK_NF_GRAD) gd_buf_puts(cls, " nonfinite"), gd_buf_puts(label, "\\nNaN/Inf born (backward)");
    if (m & MK_NF_VALUE) gd_buf_puts(cls, " nonfinite"), gd_buf_puts(label, "\\nNaN/Inf born (value)");
}

static void put_node(gd_buf *b, gd_buf *label, gd_buf *cls, const pic *p, int v) {
    const gd_graph *g = p->g;
    const gd_node *nd = &g->nodes[v];
    unsigned m = p->mark[v];
    gd_buf_reset(label);
    gd_buf_reset(cls);
    put_escaped(label, nd->name, 1);
    gd_buf_printf(label, "\\n%s ", nd->op->name);
    put_shape(label, &g->st[v].meta);
    node_notes(label, cls, p, v);
    gd_buf_puts(b, "  ");
    put_id(b, g, v);
    gd_buf_printf(b, " [id=\"n%d\", class=\"%s\", label=\"%s\"", v, cls->data, label->data);
    if (nd->op->flags & GD_OPF_LEAF) gd_buf_puts(b, ", shape=ellipse");
    if (m & MK_TARGET) gd_buf_puts(b, ", peripheries=2");
    const char *fill = m & (MK_NF_GRAD | MK_NF_VALUE) ? GD_EXPLAIN_NONFINITE : m & MK_ZERO ? GD_EXPLAIN_ZERO : NULL;
    if (fill) gd_buf_printf(b, ", fillcolor=\"%s\"", fill);
    if (m & MK_PATH) gd_buf_printf(b, ", color=\"%s\", penwidth=3", m & MK_NOGRAD ? GD_EXPLAIN_BLOCKED : GD_EXPLAIN_PATH);
    else if (m & MK_WRT) gd_buf_printf(b, ", color=\"%s\", penwidth=2", m & MK_NOGRAD ? GD_EXPLAIN_BLOCKED : GD_EXPLAIN_PATH);
    if (!p->t->evaluated[v])
        gd_buf_printf(b, ", style=\"rounded,dashed,filled\", fontcolor=\"#868e96\"%s",
                      m & (MK_PATH | MK_WRT) ? "" : ", color=\"#adb5bd\"");
    gd_buf_puts(b, "];\n");
}

/* Why no gradient passes from node v into its input i in this run: the
 * reason a diagnostic gives for it, else (where the target's cotangent
 * reached v) the flow rule's, or "int64" for an integer input; NULL when it
 * passes or no cotangent came. */
static const char *edge_block(const pic *p, int v, int i) {
    signed char named = p->e_block[p->e_start[v] + i];
    if (named >= 0) return gd_block_reason_name((gd_block_reason)named);
    if (!p->t->open[v]) return NULL;
    gd_block_reason r = gd_flow_edge_block(p->g, p->t->taken, v, i);
    if (r != GD_BLOCK_NONE) return gd_block_reason_name(r);
    return gd_flow_carries(p->g, p->t->taken, v, i) ? NULL : "int64";
}

/* Edge u -> v (v's input i): red and dashed with the reason when blocked
 * (edge_block); solid where the target's cotangent reached v and passes on;
 * grey where no cotangent comes (dotted when v never ran). */
static void put_edge(gd_buf *b, const pic *p, int v, int i) {
    const gd_graph *g = p->g;
    int u = g->nodes[v].in[i], on_path = p->e_path[p->e_start[v] + i];
    const char *why = edge_block(p, v, i);
    gd_buf_puts(b, "  ");
    put_id(b, g, u);
    gd_buf_puts(b, " -> ");
    put_id(b, g, v);
    gd_buf_printf(b, " [id=\"e%d_%d\", class=\"", v, i);
    if (why) gd_buf_printf(b, "blocked %s", why);
    else if (p->t->open[v]) gd_buf_puts(b, "grad");
    else gd_buf_puts(b, p->t->evaluated[v] ? "idle" : "unevaluated");
    gd_buf_printf(b, "%s\"", on_path ? " path" : "");
    if (why)
        gd_buf_printf(b, ", color=\"%s\", fontcolor=\"%s\", style=dashed, label=\"%s\", tooltip=\"no gradient: %s\"",
                      GD_EXPLAIN_BLOCKED, GD_EXPLAIN_BLOCKED, why, why);
    else if (on_path) gd_buf_printf(b, ", color=\"%s\"", GD_EXPLAIN_PATH);
    else if (!p->t->open[v]) gd_buf_printf(b, ", color=\"#adb5bd\"%s", p->t->evaluated[v] ? "" : ", style=dotted");
    if (on_path) gd_buf_puts(b, ", penwidth=3");
    gd_buf_puts(b, "];\n");
}

int gd_explain_dot(gd_buf *out, const gd_request *req, const gd_run_result *res) {
    pic p = {.g = req->graph, .t = &res->trace};
    if (marks(&p, req, res)) return -1;
    const gd_graph *g = req->graph;
    gd_buf label, cls;
    gd_buf_init(&label);
    gd_buf_init(&cls);
    gd_buf_puts(out, "digraph gradd {\n"
                     "  graph [id=\"gradd\", fontname=\"Helvetica\", nodesep=0.3, ranksep=0.45];\n"
                     "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", "
                     "fontsize=11, margin=\"0.2,0.06\"];\n"
                     "  edge [fontname=\"Helvetica\", fontsize=9, arrowsize=0.7];\n");
    /* margin: Graphviz measures text with Helvetica's metrics (no font is
     * loaded), and a browser's fallback sans-serif is wider. */
    for (int v = 0; v < g->n; v++) put_node(out, &label, &cls, &p, v);
    for (int v = 0; v < g->n; v++)
        for (int i = 0; i < g->nodes[v].n_in; i++) put_edge(out, &p, v, i);
    gd_buf_puts(out, "}\n");
    int failed = label.failed || cls.failed;
    gd_buf_free(&label);
    gd_buf_free(&cls);
    return failed || out->failed ? -1 : 0;
}
