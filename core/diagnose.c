/* diagnose.c - the contract's diagnostics, from the graph and what the engine
 * observed (gd_trace). Decides the no-gradient code by its precedence rule
 * (integer_dtype, disconnected, then the reason at the stopping points nearest
 * the target), gathers the evidence, and writes a message that names nodes as
 * the request named them and a hint with a concrete fix. Each analysis is a
 * constant number of linear passes over the graph; nothing enumerates paths. */
#include "core/diagnose.h"

#include <stdio.h>
#include <string.h>


const char *gd_diag_code_name(gd_diag_code c) {
    static const char *const names[] = {
#define GD__DIAG_NAME(name, wire) wire,
        GD_DIAG_CODES(GD__DIAG_NAME)
#undef GD__DIAG_NAME
    };
    _Static_assert(sizeof names / sizeof names[0] == GD_DIAG__COUNT, "one name per diagnostic code");
    return names[c];
}

static int edge_carries(const gd_graph *g, const gd_trace *t, int n, int i) {
    return gd_flow_carries(g, t->taken, n, i);
}

/* ---- small tools ----------------------------------------------------------- */

static int push(gd_graph *g, gd_diag_list *out, gd_diag **d) {
    if (out->n == out->cap) {
        int cap = out->cap ? 2 * out->cap : 8;
        gd_diag *items = gd_arena_alloc(g->arena, sizeof(gd_diag) * (size_t)cap);
        if (!items) return -1;
        if (out->n) memcpy(items, out->items, sizeof(gd_diag) * (size_t)out->n);
        out->items = items, out->cap = cap;
    }
    *d = &out->items[out->n++];
    memset(*d, 0, sizeof **d);
    (*d)->wrt = (*d)->node = (*d)->made_by = -1;
    (*d)->origin.node = -1;
    (*d)->same_input = (*d)->same_node = -1;
    return 0;
}

/* A bounded text buffer for messages; overflow truncates, never overruns. */
typedef struct sbuf {
    char s[1024];
    int n;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->n >= (int)sizeof b->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - (size_t)b->n, fmt, ap);
    va_end(ap);
    if (k > 0) b->n = b->n + k < (int)sizeof b->s ? b->n + k : (int)sizeof b->s - 1;
}

static const char *name(const gd_graph *g, int v) { return g->nodes[v].name; }
static const char *opname(const gd_graph *g, int v) { return g->nodes[v].op->name; }

static void sb_targets(sbuf *b, const gd_graph *g, const int *targets, int nt) {
    if (nt == 1) { sb_add(b, "'%s'", name(g, targets[0])); return; }
    sb_add(b, "the targets");
    for (int k = 0; k < nt && k < 4; k++) sb_add(b, "%s '%s'", k ? "," : "", name(g, targets[k]));
    if (nt > 4) sb_add(b, " and %d more", nt - 4);
}

int gd_descendants(const gd_graph *g, int w, unsigned char *in_d, int *parent, int *queue) {
    int head = 0, tail = 0;
    in_d[w] = 1, parent[w] = -1, queue[tail++] = w;
    while (head < tail) {
        int v = queue[head++];
        for (int k = g->cons_start[v]; k < g->cons_start[v + 1]; k++) {
            int c = g->cons[k];
            if (!in_d[c]) in_d[c] = 1, parent[c] = v, queue[tail++] = c;
        }
    }
    return tail;
}

/* ---- hints ------------------------------------------------------------------- */

/* Append template `tmpl` from an op row's hints, with {node} and {op} as
 * node v's name and op, {in} as the name of v's first input, and {wrt} as
 * node w's name (w < 0, or v without inputs for {in}: left as is). */
static void sb_template(sbuf *b, const gd_graph *g, const char *tmpl, int v, int w) {
    static const char *const keys[] = {"{node}", "{op}", "{wrt}", "{in}"};
    enum { NKEYS = sizeof keys / sizeof keys[0] };
    for (const char *p = tmpl; *p;) {
        int k = 0;
        while (k < NKEYS && strncmp(p, keys[k], strlen(keys[k])) != 0) k++;
        if (k == NKEYS || (k == 2 && w < 0) || (k == 3 && g->nodes[v].n_in == 0)) {
            sb_add(b, "%c", *p++);
            continue;
        }
        sb_add(b, "%s", k == 0 ? name(g, v) : k == 1 ? opname(g, v) : k == 2 ? name(g, w) : name(g, g->nodes[v].in[0]));
        p += strlen(keys[k]);
    }
}

/* The row's hint, or the generic one (same template rules). */
static void sb_hint(sbuf *b, const gd_graph *g, const char *row_hint, const char *generic, int v, int w) {
    sb_template(b, g, row_hint ? row_hint : generic, v, w);
}

static void hint_block(sbuf *h, const gd_graph *g, const gd_block *b, int w) {
    int v = b->node;
    switch (b->reason) {
    case GD_BLOCK_STOP_GRADIENT:
        sb_add(h, "Remove '%s' (stop_gradient) if '%s' should receive a gradient.", name(g, v), name(g, w));
        return;
    case GD_BLOCK_UNTAKEN_BRANCH:
        sb_add(h, "'%s' gets a gradient only on runs where predicate '%s' selects its branch of '%s'; to train both branches at once, blend them: where(p, a, b) or p*a + (1-p)*b.",
               name(g, w), name(g, b->predicate), name(g, v));
        return;
    default:
        sb_hint(h, g, g->nodes[v].op->hints.no_gradient,
                "'{node}' ({op}) is not differentiable; replace it with a differentiable op on the path to the target.",
                v, w);
    }
}

/* ---- no gradient ------------------------------------------------------------- */

typedef struct stop {
    gd_block b;
    int at;   /* the open node whose input is blocked */
    int from; /* that input's node */
} stop;

static int diag_integer(gd_graph *g, int w, const int *targets, int nt, gd_diag_list *out) {
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_INTEGER_DTYPE, d->is_error = 1, d->wrt = w, d->dtype = GD_I64;
    d->made_by = gd_flow_made_int(g, w, NULL);
    sbuf m = {0}, h = {0};
    sb_add(&m, "No gradient for '%s': it is int64", name(g, w));
    if (d->made_by != w) sb_add(&m, " (made int64 by '%s' (%s))", name(g, d->made_by), opname(g, d->made_by));
    sb_add(&m, ", and gradients never flow into integer tensors, so nothing from ");
    sb_targets(&m, g, targets, nt);
    sb_add(&m, " reaches it.");
    if (d->made_by == w)
        sb_add(&h, "Declare '%s' as float64 (or send its value as floats) if it should receive a gradient.", name(g, w));
    else
        sb_add(&h, "Ask for the gradient of a float64 node instead, such as the input of '%s' (%s).", name(g, d->made_by),
               opname(g, d->made_by));
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

static int diag_disconnected(gd_graph *g, int w, const int *targets, int nt, gd_diag_list *out) {
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_DISCONNECTED, d->is_error = 1, d->wrt = w;
    int nc = g->cons_start[w + 1] - g->cons_start[w];
    d->consumers = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(nc + 1));
    if (!d->consumers) return -1;
    for (int k = g->cons_start[w]; k < g->cons_start[w + 1]; k++) {
        int c = g->cons[k], dup = 0;
        for (int j = 0; j < d->n_consumers; j++) dup |= d->consumers[j] == c;
        if (!dup) d->consumers[d->n_consumers++] = c;
    }
    sbuf m = {0}, h = {0};
    sb_add(&m, "No gradient for '%s': no path leads from it to ", name(g, w));
    sb_targets(&m, g, targets, nt);
    if (d->n_consumers == 0) {
        sb_add(&m, "; no node uses it.");
        sb_add(&h, "Use '%s' in the graph on the way to the target. If you computed something from '%s' outside the graph and sent it back in as data (an input), express that computation with graph ops instead so the gradient can flow back to '%s'.",
               name(g, w), name(g, w), name(g, w));
    } else {
        sb_add(&m, "; it is used by");
        for (int j = 0; j < d->n_consumers && j < 4; j++)
            sb_add(&m, "%s '%s' (%s)", j ? "," : "", name(g, d->consumers[j]), opname(g, d->consumers[j]));
        if (d->n_consumers > 4) sb_add(&m, " and %d more", d->n_consumers - 4);
        sb_add(&m, ", but nothing %s feeds reaches the target.", d->n_consumers == 1 ? "that node" : "those nodes");
        sb_add(&h, "Connect what '%s' feeds to the target with graph ops. If a value derived from '%s' was computed outside the graph and sent back in as data (an input), gradient cannot flow through it: express that computation with graph ops instead.",
               name(g, w), name(g, w));
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

static void sb_block(sbuf *m, const gd_graph *g, const gd_block *b) {
    switch (b->reason) {
    case GD_BLOCK_STOP_GRADIENT: sb_add(m, "stop_gradient node '%s'", name(g, b->node)); break;
    case GD_BLOCK_UNTAKEN_BRANCH:
        sb_add(m, "the untaken branch of cond '%s' (predicate '%s' chose the other branch)", name(g, b->node),
               name(g, b->predicate));
        break;
    default:
        sb_hint(m, g, g->nodes[b->node].op->hints.blocked, "'{node}' ({op}), which is not differentiable", b->node, -1);
    }
}

/* Twice the room for a full stop list (the old one stays in the arena: the
 * lists together are at most twice the last). */
static int grow_stops(gd_graph *g, stop **stops, int **prev_same, int *cap) {
    stop *ns = gd_arena_alloc(g->arena, sizeof(stop) * 2 * (size_t)*cap);
    int *np = gd_arena_alloc(g->arena, sizeof(int) * 2 * (size_t)*cap);
    if (!ns || !np) return -1;
    memcpy(ns, *stops, sizeof(stop) * (size_t)*cap);
    memcpy(np, *prev_same, sizeof(int) * (size_t)*cap);
    *stops = ns, *prev_same = np, *cap *= 2;
    return 0;
}

static int diag_blocked(gd_graph *g, const gd_trace *t, int w, const int *targets, int nt, const unsigned char *in_d,
                        const int *parent, int *queue, gd_diag_list *out) {
    int n = g->n;
    /* Shortest carrying path from each open node to a target: BFS from the
     * targets backwards along carrying edges, remembering the consumer. */
    /* A stop is one (node, input) pair: a node may block several inputs
     * (greater(w, w) blocks both), so there may be more stops than nodes;
     * the list grows by doubling. last_stop/prev_same chain the stops of
     * each node for the duplicate check, a handful per node. */
    int cap = n + 1;
    int *dist = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    int *succ = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    int *last_stop = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    int *prev_same = gd_arena_alloc(g->arena, sizeof(int) * (size_t)cap);
    stop *stops = gd_arena_alloc(g->arena, sizeof(stop) * (size_t)cap);
    if (!dist || !succ || !last_stop || !prev_same || !stops) return -1;
    for (int v = 0; v < n; v++) dist[v] = -1, last_stop[v] = -1;
    int head = 0, tail = 0, ns = 0;
    for (int k = 0; k < nt; k++)
        if (dist[targets[k]] < 0 && t->open[targets[k]]) dist[targets[k]] = 0, succ[targets[k]] = -1, queue[tail++] = targets[k];
    while (head < tail) {
        int v = queue[head++];
        const gd_node *nd = &g->nodes[v];
        for (int i = 0; i < nd->n_in; i++) {
            int u = nd->in[i];
            if (in_d[u] && !edge_carries(g, t, v, i)) {
                /* A stopping point: open node v, input i reachable from w. */
                gd_block b = {.node = v, .input = i, .predicate = -1, .reason = gd_flow_edge_block(g, t->taken, v, i)};
                if (b.reason != GD_BLOCK_UNTAKEN_BRANCH && g->st[u].meta.dtype == GD_I64) {
                    /* An int64 input: name the node that made it int64 (the
                     * argmax, the cast), so that the fix aims at the cause. */
                    b.node = gd_flow_made_int(g, u, in_d);
                    b.reason = GD_BLOCK_NON_DIFFERENTIABLE;
                    b.input = -1;
                    const gd_node *mk = &g->nodes[b.node];
                    for (int j = 0; j < mk->n_in && b.input < 0; j++)
                        if (in_d[mk->in[j]]) b.input = j;
                } else if (g->nodes[v].op->flags & GD_OPF_COND) {
                    b.predicate = nd->in[0];
                }
                int dup = 0;
                for (int s = last_stop[b.node]; s >= 0 && !dup; s = prev_same[s]) dup = stops[s].b.input == b.input;
                if (!dup && ns == cap && grow_stops(g, &stops, &prev_same, &cap)) return -1;
                if (!dup) prev_same[ns] = last_stop[b.node], last_stop[b.node] = ns, stops[ns++] = (stop){b, v, u};
            }
            if (dist[u] < 0 && edge_carries(g, t, v, i)) dist[u] = dist[v] + 1, succ[u] = v, queue[tail++] = u;
        }
    }
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->is_error = 1, d->wrt = w;
    if (ns == 0) {
        /* Cannot happen for a wrt outside the open region with a path to a
         * target; report it rather than assert. */
        d->code = GD_DIAG_DISCONNECTED;
        d->message = gd_arena_printf(g->arena, "No gradient for '%s'.", name(g, w));
        d->hint = gd_arena_strdup(g->arena, "This is unexpected; please report the request.");
        return d->message && d->hint ? 0 : -1;
    }
    /* BFS discovers stops in order of their distance to the target: the
     * first is the nearest. */
    d->blocked = gd_arena_alloc(g->arena, sizeof(gd_block) * (size_t)ns);
    if (!d->blocked) return -1;
    d->n_blocked = ns;
    gd_block_reason common = stops[0].b.reason;
    for (int s = 0; s < ns; s++) {
        d->blocked[s] = stops[s].b;
        if (stops[s].b.reason != common) common = GD_BLOCK_NONE;
    }
    d->code = common == GD_BLOCK_STOP_GRADIENT       ? GD_DIAG_STOP_GRADIENT
              : common == GD_BLOCK_NON_DIFFERENTIABLE ? GD_DIAG_NON_DIFFERENTIABLE
              : common == GD_BLOCK_UNTAKEN_BRANCH     ? GD_DIAG_UNTAKEN_BRANCH
                                                      : GD_DIAG_MIXED;
    /* Path: w ... from (BFS parents, reversed), then at ... target (succ). */
    int len = 0;
    for (int v = stops[0].from; v >= 0; v = parent[v]) len++;
    for (int v = stops[0].at; v >= 0; v = succ[v]) len++;
    d->path = gd_arena_alloc(g->arena, sizeof(int) * (size_t)len);
    if (!d->path) return -1;
    int k = 0;
    for (int v = stops[0].from; v >= 0; v = parent[v]) k++;
    int back = k;
    for (int v = stops[0].from; v >= 0; v = parent[v]) d->path[--back] = v;
    for (int v = stops[0].at; v >= 0; v = succ[v]) d->path[k++] = v;
    d->n_path = len;

    sbuf m = {0}, h = {0};
    sb_add(&m, "No gradient for '%s': ", name(g, w));
    if (ns == 1) {
        sb_add(&m, "its only path%s to ", "");
        sb_targets(&m, g, targets, nt);
        sb_add(&m, " passes through ");
        sb_block(&m, g, &d->blocked[0]);
        sb_add(&m, ".");
    } else {
        sb_add(&m, "every path to ");
        sb_targets(&m, g, targets, nt);
        sb_add(&m, " is blocked: at ");
        for (int s = 0; s < ns && s < 4; s++) {
            if (s) sb_add(&m, s == ns - 1 ? " and at " : ", at ");
            sb_block(&m, g, &d->blocked[s]);
        }
        if (ns > 4) sb_add(&m, ", and %d more", ns - 4);
        sb_add(&m, ".");
    }
    hint_block(&h, g, &d->blocked[0], w);
    for (int s = 1; s < ns && s < 3; s++) {
        int same = 0;
        for (int j = 0; j < s; j++)
            same |= d->blocked[j].node == d->blocked[s].node ||
                    (d->blocked[j].reason == d->blocked[s].reason && d->blocked[s].reason == GD_BLOCK_STOP_GRADIENT);
        if (same) continue;
        /* "... gradient. For 'rounded' (round): use a straight-through ..." */
        sb_add(&h, " For '%s' (%s): ", name(g, d->blocked[s].node), opname(g, d->blocked[s].node));
        int at = h.n;
        hint_block(&h, g, &d->blocked[s], w);
        if (at < h.n && h.s[at] >= 'A' && h.s[at] <= 'Z' && h.s[at + 1] >= 'a' && h.s[at + 1] <= 'z')
            h.s[at] = (char)(h.s[at] - 'A' + 'a');
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

/* ---- warnings on present gradients -------------------------------------------- */

static const char *cause_text(gd_zero_cause c) {
    return c == GD_ZERO_MASK ? "masked it out" : c == GD_ZERO_VALUE ? "multiplied it by zero values" : "contributions cancel";
}

/* d->zeroed: the births of a zero cotangent (zero events) whose zeroed node
 * is marked in `below` (the descendants of the wrt, or of the node whose
 * rule met the zero), each node and cause once, in backward order. */
static int gather_zeroed(gd_graph *g, const gd_trace *t, const unsigned char *below, gd_diag *d) {
    _Static_assert(GD_ZERO__COUNT <= 8, "a byte of cause bits per node");
    d->zeroed = gd_arena_alloc(g->arena, sizeof(gd_zeroed) * (size_t)(t->n_zero + 1));
    unsigned char *had = gd_arena_alloc(g->arena, (size_t)g->n); /* causes gathered per node */
    if (!d->zeroed || !had) return -1;
    for (int e = 0; e < t->n_zero; e++) {
        const gd_zero_event *z = &t->zero[e];
        int u = z->input < 0 ? z->node : g->nodes[z->node].in[z->input];
        unsigned bit = 1u << z->cause;
        if (!below[u] || (had[z->node] & bit)) continue;
        had[z->node] |= (unsigned char)bit;
        d->zeroed[d->n_zeroed++] = (gd_zeroed){z->node, z->cause};
    }
    return 0;
}

/* ": 'h' (relu) masked it out; ...", or the target's cotangent when no
 * zero was born on the way; ends the sentence. */
static void sb_zeroed(sbuf *m, const gd_graph *g, const gd_diag *d, const int *targets, int nt) {
    if (d->n_zeroed == 0) {
        sb_add(m, ": the cotangent given for ");
        sb_targets(m, g, targets, nt);
        sb_add(m, " is zero.");
        return;
    }
    for (int j = 0; j < d->n_zeroed && j < 4; j++)
        sb_add(m, "%s '%s' (%s) %s", j ? ";" : ":", name(g, d->zeroed[j].node), opname(g, d->zeroed[j].node),
               cause_text(d->zeroed[j].cause));
    sb_add(m, ".");
}

static int diag_zero(gd_graph *g, const gd_trace *t, int w, const int *targets, int nt, const unsigned char *in_d,
                     gd_diag_list *out) {
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_ZERO_GRADIENT, d->is_error = 0, d->wrt = w;
    if (gather_zeroed(g, t, in_d, d)) return -1;
    sbuf m = {0}, h = {0};
    sb_add(&m, "The gradient of '%s' is all zero", name(g, w));
    sb_zeroed(&m, g, d, targets, nt);
    if (d->n_zeroed == 0) {
        sb_add(&h, "Check target_grad: a zero cotangent gives zero gradients.");
    } else {
        const gd_zeroed *z = &d->zeroed[0];
        if (z->cause == GD_ZERO_CANCELLATION)
            sb_add(&h, "The contributions reaching '%s' along different paths sum to zero (as in x - x); check that the graph computes what you intend.", name(g, z->node));
        else
            sb_hint(&h, g, g->nodes[z->node].op->hints.zero_gradient,
                    z->cause == GD_ZERO_MASK
                        ? "'{node}' ({op}) selects other elements everywhere; check its inputs."
                        : "An input of '{node}' ({op}) is all zero; check the zero-valued input (an initialisation of zeros is a common cause).",
                    z->node, w);
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

static void sb_index(sbuf *b, const gd_origin *o) {
    sb_add(b, "[");
    for (int i = 0; i < o->shape.rank; i++) sb_add(b, i ? ", %lld" : "%lld", (long long)o->index[i]);
    sb_add(b, "]");
}

static void hint_nonfinite(sbuf *h, const gd_graph *g, int v, int grad) {
    const gd_op_hints *hints = &g->nodes[v].op->hints;
    sb_hint(h, g, grad ? hints->nonfinite_grad : hints->nonfinite_value, "Check the inputs of '{node}' ({op}) at that index.",
            v, -1);
}

/* non_finite_gradient for w: the first birth in backward order on a path
 * from w; when that rule multiplied an all-zero cotangent, also where the
 * zero was born (zeroed_at), so that the user sees the zero meet an
 * infinity. `parent` and `queue` are scratch of g->n ints. */
static int diag_nonfinite_grad(gd_graph *g, const gd_trace *t, int w, const int *targets, int nt,
                               const unsigned char *in_d, int *parent, int *queue, gd_diag_list *out) {
    gd_diag *d;
    const gd_nonfinite_event *born = NULL;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_NON_FINITE_GRADIENT, d->is_error = 0, d->wrt = w;
    for (int e = 0; e < t->n_nonfinite_born && !born; e++) {
        const gd_nonfinite_event *nf = &t->nonfinite_born[e];
        if (in_d[g->nodes[nf->node].in[nf->input]]) born = nf, d->origin = nf->origin;
    }
    if (born && born->zero_cotangent) {
        unsigned char *below = gd_arena_alloc(g->arena, (size_t)g->n);
        if (!below) return -1;
        gd_descendants(g, born->node, below, parent, queue);
        if (gather_zeroed(g, t, below, d)) return -1;
        d->has_zeroed = 1;
    }
    sbuf m = {0}, h = {0};
    sb_add(&m, "The gradient of '%s' contains NaN or Infinity", name(g, w));
    if (d->origin.node >= 0) {
        sb_add(&m, ", born in the backward rule of '%s' (%s) at index ", name(g, d->origin.node), opname(g, d->origin.node));
        sb_index(&m, &d->origin);
        if (d->has_zeroed) {
            sb_add(&m, ", where an all-zero cotangent met a NaN or infinite derivative (0 x Infinity is NaN)");
            sb_zeroed(&m, g, d, targets, nt);
        } else {
            sb_add(&m, ".");
        }
        hint_nonfinite(&h, g, d->origin.node, 1);
    } else {
        sb_add(&m, ": a forward value on its path is already not finite.");
        sb_add(&h, "See the non_finite_value diagnostics for where it was born.");
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

int gd_diagnose_wrt(gd_graph *g, const gd_trace *t, const int *targets, int n_targets, int wrt, int has_grad,
                    int grad_zero, int grad_nonfinite, gd_diag_list *out) {
    int n = g->n;
    if (!has_grad && g->st[wrt].meta.dtype == GD_I64) return diag_integer(g, wrt, targets, n_targets, out);
    unsigned char *in_d = gd_arena_alloc(g->arena, (size_t)n);
    int *parent = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    int *queue = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    if (!in_d || !parent || !queue) return -1;
    gd_descendants(g, wrt, in_d, parent, queue);
    if (!has_grad) {
        int reaches = 0;
        for (int k = 0; k < n_targets; k++) reaches |= in_d[targets[k]];
        if (!reaches) return diag_disconnected(g, wrt, targets, n_targets, out);
        return diag_blocked(g, t, wrt, targets, n_targets, in_d, parent, queue, out);
    }
    if (grad_zero && diag_zero(g, t, wrt, targets, n_targets, in_d, out)) return -1;
    if (grad_nonfinite && diag_nonfinite_grad(g, t, wrt, targets, n_targets, in_d, parent, queue, out)) return -1;
    return 0;
}

int gd_diagnose_no_variables(gd_graph *g, const gd_trace *t, const int *targets, int nt, gd_diag_list *out) {
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_NO_VARIABLES, d->is_error = 1;
    if (!(d->candidates = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(g->n + 1)))) return -1;
    for (int v = 0; v < g->n; v++)
        if ((g->nodes[v].op->flags & GD_OPF_DATA) && t->open[v]) d->candidates[d->n_candidates++] = v;
    sbuf m = {0}, h = {0};
    sb_add(&m, "No gradients: the graph declares no variable and the request names no wrt, so nothing receives a gradient from ");
    sb_targets(&m, g, targets, nt);
    sb_add(&m, ".");
    if (d->n_candidates == 0) {
        sb_add(&h, "No input reaches ");
        sb_targets(&h, g, targets, nt);
        sb_add(&h, " through gradient-carrying edges: declare the leaves to train with \"op\": \"variable\" and connect them to the target with differentiable ops.");
    } else {
        sb_add(&h, "Declare");
        for (int j = 0; j < d->n_candidates && j < 4; j++)
            sb_add(&h, "%s '%s'", j == 0 ? "" : j == d->n_candidates - 1 ? " and" : ",", name(g, d->candidates[j]));
        if (d->n_candidates > 4) sb_add(&h, " (and %d more inputs)", d->n_candidates - 4);
        sb_add(&h, " with \"op\": \"variable\" instead of \"input\" if %s should be trained, or name %s in \"wrt\".",
               d->n_candidates == 1 ? "it" : "they", d->n_candidates == 1 ? "it" : "them");
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

int gd_diagnose_value(gd_graph *g, const gd_trace *t, int v, gd_diag_list *out) {
    /* The first birth, in forward order, among v's evaluated ancestors. */
    int n = g->n;
    unsigned char *anc = gd_arena_alloc(g->arena, (size_t)n);
    int *queue = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    if (!anc || !queue) return -1;
    int head = 0, tail = 0, best = -1, best_pos = 0;
    anc[v] = 1, queue[tail++] = v;
    while (head < tail) {
        int u = queue[head++];
        if (t->birth[u] >= 0 && (best < 0 || t->pos[u] < best_pos)) best = u, best_pos = t->pos[u];
        const gd_node *nd = &g->nodes[u];
        for (int i = 0; i < nd->n_in; i++) {
            int x = nd->in[i];
            if (!anc[x] && t->evaluated[x]) anc[x] = 1, queue[tail++] = x;
        }
    }
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_NON_FINITE_VALUE, d->is_error = 0, d->node = v;
    sbuf m = {0}, h = {0};
    sb_add(&m, "The value of '%s' contains NaN or Infinity", name(g, v));
    if (best >= 0) {
        d->origin = t->births[t->birth[best]];
        sb_add(&m, ", born at '%s' (%s) at index ", name(g, best), opname(g, best));
        sb_index(&m, &d->origin);
        sb_add(&m, ".");
        hint_nonfinite(&h, g, best, 0);
    } else {
        sb_add(&m, ".");
        sb_add(&h, "Check the values sent for the graph's leaves.");
    }
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

int gd_diagnose_unfetched(gd_graph *g, const gd_trace *t, int v, gd_diag_list *out) {
    /* Walk forward from v through unevaluated nodes to an evaluated cond that
     * it reaches through its untaken input. */
    int n = g->n;
    unsigned char *seen = gd_arena_alloc(g->arena, (size_t)n);
    int *queue = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    if (!seen || !queue) return -1;
    int head = 0, tail = 0, found = -1, found_in = -1;
    seen[v] = 1, queue[tail++] = v;
    while (head < tail && found < 0) {
        int u = queue[head++];
        for (int k = g->cons_start[u]; k < g->cons_start[u + 1] && found < 0; k++) {
            int c = g->cons[k];
            const gd_node *cn = &g->nodes[c];
            if (t->evaluated[c] && (cn->op->flags & GD_OPF_COND) && t->taken[c]) {
                int other = 3 - t->taken[c];
                if (cn->in[other] == u) found = c, found_in = other;
            }
            if (!t->evaluated[c] && !seen[c]) seen[c] = 1, queue[tail++] = c;
        }
    }
    gd_diag *d;
    if (push(g, out, &d)) return -1;
    d->code = GD_DIAG_UNTAKEN_BRANCH, d->is_error = 1, d->node = v;
    sbuf m = {0}, h = {0};
    if (found >= 0) {
        d->blocked = gd_arena_alloc(g->arena, sizeof(gd_block));
        if (!d->blocked) return -1;
        d->blocked[0] = (gd_block){.node = found, .reason = GD_BLOCK_UNTAKEN_BRANCH, .input = found_in,
                                   .predicate = g->nodes[found].in[0]};
        d->n_blocked = 1;
        sb_add(&m, "'%s' was not computed: it feeds only the untaken branch of cond '%s' (predicate '%s' chose the other branch).",
               name(g, v), name(g, found), name(g, g->nodes[found].in[0]));
    } else {
        sb_add(&m, "'%s' was not computed: it lies behind a branch of a cond that was not taken.", name(g, v));
    }
    sb_add(&h, "Values on an untaken branch are never computed; fetch a node the taken branch needs, or change the predicate.");
    d->message = gd_arena_strdup(g->arena, m.s);
    d->hint = gd_arena_strdup(g->arena, h.s);
    return d->message && d->hint ? 0 : -1;
}

int gd_diagnose_run(gd_graph *g, const gd_run_spec *s, const gd_trace *t, gd_run_result *res, gd_error *err) {
    gd_diag_list dl = {0};
    unsigned char *seen = gd_arena_alloc(g->arena, (size_t)g->n + 1);
    if (!seen) return gd_error_oom(err);
    if (s->grad && s->n_wrt == 0 && gd_diagnose_no_variables(g, t, s->targets, s->n_targets, &dl))
        return gd_error_oom(err);
    if (s->grad) {
        for (int k = 0; k < s->n_wrt; k++) {
            int w = s->wrt[k];
            if (seen[w]) continue;
            seen[w] = 1;
            if (gd_cancel_check(s->cancel, err)) return err->code; /* each search is linear: poll between them */
            gd_tensor *gr = res->grads[k];
            int has = t->open[w];
            int zero = has && gr ? gd_all_zero_polled(gr, s->cancel, err) : 0;
            int finite = has && gr && s->check_numerics ? gd_all_finite_polled(gr, NULL, s->cancel, err) : 1;
            if (zero < 0 || finite < 0) return err->code;
            int nonfinite = !finite;
            if ((!has || zero || nonfinite) &&
                gd_diagnose_wrt(g, t, s->targets, s->n_targets, w, has, zero, nonfinite, &dl))
                return gd_error_oom(err);
        }
    }
    memset(seen, 0, (size_t)g->n);
    if (s->check_numerics) {
        for (int k = 0; k < s->n_targets + s->n_fetch; k++) {
            int v = k < s->n_targets ? s->targets[k] : s->fetch[k - s->n_targets];
            if (seen[v] || !t->evaluated[v] || !t->nonfinite[v]) continue;
            seen[v] = 1;
            if (gd_cancel_check(s->cancel, err)) return err->code;
            if (gd_diagnose_value(g, t, v, &dl)) return gd_error_oom(err);
        }
    }
    for (int k = 0; k < s->n_fetch; k++) {
        int v = s->fetch[k];
        if (t->evaluated[v] || seen[v] == 2) continue;
        seen[v] = 2;
        if (gd_cancel_check(s->cancel, err)) return err->code;
        if (gd_diagnose_unfetched(g, t, v, &dl)) return gd_error_oom(err);
    }
    res->diags = dl.items;
    res->n_diags = dl.n;
    return 0;
}
