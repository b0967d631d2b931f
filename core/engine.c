/* engine.c - the forward sweep (lazy through cond, releasing intermediates
 * as soon as nothing will read them) and the reverse sweep (one loop in
 * reverse evaluation order, cotangents indexed by node, add-or-set, formed
 * only where a `wrt` needs them, broadcasting undone centrally). What the
 * sweeps observe goes into a gd_trace, which diagnose.c reads; this file
 * does not know the diagnostics. */
#include "core/engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/flow.h"
#include "core/memplan.h"

enum { ST_NEW = 0, ST_ACTIVE = 1, ST_DONE = 2 };

/* A cotangent set from one contribution is as zero as that contribution,
 * which was scanned already; one that sums several is scanned again. */
enum { COT_UNKNOWN = 0, COT_ZERO = 1, COT_NONZERO = 2 };

typedef struct run {
    gd_graph *g;
    gd_arena *a;
    const gd_run_spec *spec;
    gd_error *err;
    int n;
    gd_tensor **val;             /* [n] forward values */
    unsigned char *state;        /* [n] ST_* */
    unsigned char *evaluated;    /* [n] */
    signed char *taken;          /* [n] cond: 1 or 2 */
    int *order, n_order;         /* evaluation order */
    int *pos;                    /* [n] position in order, -1 */
    int *refc;                   /* [n] consumers that may still read the value */
    unsigned char *keep;         /* [n] value must survive the forward sweep */
    const unsigned char *plan_needs, *plan_open; /* the plan's regions (memplan.h), or NULL */
    int plan_order;              /* the length of the order they were found on */
    unsigned char *returned;     /* [n] target or fetched: never released */
    unsigned char *nonfinite;    /* [n] value holds NaN/Inf */
    unsigned char *is_wrt;       /* [n] */
    unsigned char *open, *needs; /* [n] */
    gd_tensor **cot;             /* [n] cotangents */
    unsigned char *had_nonzero;  /* [n] some contribution to cot was nonzero */
    unsigned char *cot_zero;     /* [n] what a scan found of cot: COT_UNKNOWN, COT_ZERO, COT_NONZERO */
    int *birth;                  /* [n] index into births, -1 */
    unsigned char *scanned;      /* [n] searched by branch_deferred; NULL: no node has a deferred error */
    int *sstack, *sphase;        /* branch_deferred's stack */
    int64_t vjp_inputs;
    /* event logs, grown by push_event */
    gd_zero_event *zero;
    int n_zero, cap_zero;
    gd_nonfinite_event *nf;
    int n_nf, cap_nf;
    gd_origin *births;           /* where non-finite values were born (trace.h) */
    int n_births, cap_births;
    unsigned since_clock;        /* polls so far: the clock is read at every POLL_CLOCK_NODES-th */
} run;

static int oom(run *r) { return gd_error_oom(r->err); }

/* A polled pass's outcome (tensor.h: 0, -1 at the memory limit, or
 * deadline_exceeded with err set) as the run's return code. */
static int pass_rc(run *r, int rc) { return rc < 0 ? oom(r) : rc; }

/* gd_all_finite / gd_all_zero polling the request's cancel record: 1, 0, or
 * -1 when cancelled (err set; the caller returns r->err->code). */
static int all_finite(run *r, const gd_tensor *t, int64_t *first) {
    return gd_all_finite_polled(t, first, r->spec->cancel, r->err);
}
static int all_zero(run *r, const gd_tensor *t) { return gd_all_zero_polled(t, r->spec->cancel, r->err); }

/* A contribution d's scans: 1 finite (or check_numerics off), 0 not
 * (*first set), -1 when cancelled; *zero: d is all zero. The finite scan
 * reads every element; the zero scan stops at the first nonzero block (one
 * pass for both cost more: it cannot stop early). */
static int scan_contribution(run *r, const gd_tensor *d, int64_t *first, int *zero) {
    if (d->n == 1 && d->dtype == GD_F64) { /* a scalar: the scans' own tests on its bits, without the calls */
        uint64_t u;
        memcpy(&u, d->data, sizeof u);
        *zero = (u << 1) == 0; /* -0.0 is zero */
        if (!r->spec->check_numerics || (u & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL) return 1;
        *first = 0;
        return 0;
    }
    int fin = r->spec->check_numerics ? all_finite(r, d, first) : 1;
    if (fin < 0) return -1;
    int z = all_zero(r, d);
    if (z < 0) return -1;
    *zero = z;
    return fin;
}

#define ALLOC(r, ptr, count) (((ptr) = gd_arena_alloc((r)->a, sizeof(*(ptr)) * (size_t)((count) + 1))) != NULL)

static const char *target_at(const run *r, int k, char *buf, size_t size) {
    if (r->spec->targets_is_list) snprintf(buf, size, "$.target[%d]", k);
    else snprintf(buf, size, "$.target");
    return buf;
}

static void release_inputs(run *r, const gd_node *nd, const gd_tensor **in) {
    for (int i = 0; i < nd->n_in; i++)
        if (in[i] && in[i] != r->val[nd->in[i]]) gd_tensor_release(r->a, (gd_tensor *)in[i]);
}

/* Node nd's input values as its kernels take them: int64 converted to
 * float64 unless the row takes int64 (GD_OPF_INT_OK). Conversions are new
 * tensors, *converted counts them; release_inputs frees exactly those (no
 * call needed when there are none, the common case). */
static int kernel_inputs(run *r, const gd_node *nd, const gd_tensor **in, int *converted) {
    *converted = 0;
    for (int i = 0; i < nd->n_in; i++) {
        gd_tensor *x = r->val[nd->in[i]];
        int rc;
        if (x && x->dtype == GD_I64 && !(nd->op->flags & GD_OPF_INT_OK)) {
            if ((rc = gd_tensor_to_f64_polled(r->a, x, &x, r->spec->cancel, r->err))) {
                for (int j = i; j < nd->n_in; j++) in[j] = NULL;
                release_inputs(r, nd, in); /* the conversions made so far */
                return pass_rc(r, rc);
            }
            ++*converted;
        }
        in[i] = x;
    }
    return 0;
}

/* Room for one more element in the arena array *items (elements of `size`
 * bytes, *n used of *cap), doubling as needed. Returns the new slot, or NULL
 * with oom set. */
static void *push_event(run *r, void **items, size_t size, int *n, int *cap) {
    if (*n == *cap) {
        int ncap = *cap ? 2 * *cap : 16;
        void *bigger = gd_arena_alloc(r->a, size * (size_t)ncap);
        if (!bigger) { oom(r); return NULL; }
        if (*n) memcpy(bigger, *items, size * (size_t)*n);
        *items = bigger, *cap = ncap;
    }
    return (char *)*items + size * (size_t)(*n)++;
}

/* ---- forward ---------------------------------------------------------- */

/* Plan the run's memory from the shapes before anything runs (memplan.h)
 * and take its structure: how many consumers will read each value, which
 * values the backward sweep keeps. A request whose plan cannot fit the
 * arena's limit is too_large now rather than after its kernels ran. */
static int follow_plan(run *r, gd_run_result *res) {
    gd_memplan p;
    gd_arena_reset_peak(r->a);
    int rc = gd_memplan_make(r->g, r->spec, &p, r->err);
    if (rc) return rc;
    r->refc = p.refc, r->keep = p.keep;
    r->plan_needs = p.needs, r->plan_open = p.open, r->plan_order = p.n_order;
    res->planned_bytes = p.bounded ? p.peak : 0;
    size_t limit = gd_arena_limit(r->a);
    if (p.bounded && limit && p.peak > limit)
        return gd_errorf(r->err, GD_E_TOO_LARGE, NULL,
                         "The request needs up to %.1f MiB at once (planned from its shapes before running), more "
                         "than the %.1f MiB this server allows for one request; send smaller tensors or split the "
                         "work.", (double)p.peak / 1048576.0, (double)limit / 1048576.0);
    return 0;
}

/* check_numerics: mark v's value non-finite, and where it was born. A
 * kernel that watched its output (out_finite) spares the scan; the scan
 * polls the cancel record (nonzero: the run stops). */
static int note_birth(run *r, int v, int any_input_nonfinite, int out_finite) {
    int64_t first;
    gd_tensor *t = r->val[v];
    if (out_finite) return 0;
    int fin = all_finite(r, t, &first);
    if (fin) return fin < 0 ? r->err->code : 0;
    r->nonfinite[v] = 1;
    if (any_input_nonfinite) return 0;
    gd_origin *o = push_event(r, (void **)&r->births, sizeof *o, &r->n_births, &r->cap_births);
    if (!o) return GD_E_TOO_LARGE;
    r->birth[v] = r->n_births - 1;
    o->node = v;
    o->shape = t->shape;
    gd_unravel(&t->shape, first, o->index);
    return 0;
}

/* The cancel poll between two nodes: the flag every time, the clock only
 * every POLL_CLOCK_NODES nodes. A clock read is a vDSO call, 7 % of a
 * registered 10k-node scalar gradient when made for every node; kernels
 * poll inside every GD_POLL_ELEMS elements, so the deadline is still seen
 * within 16 small nodes (a millisecond or so); the first poll reads it. */
#define POLL_CLOCK_NODES 16

static int poll(run *r) {
    const gd_cancel *c = r->spec->cancel;
    if (!c) return 0;
    if ((r->since_clock++ & (POLL_CLOCK_NODES - 1)) && !atomic_load_explicit(&c->cancelled, memory_order_relaxed))
        return 0;
    return gd_cancel_check(c, r->err);
}

/* The value of nd's input 0 when nd may write its output over it: the row
 * allows it (GD_OPF_INPLACE), shape and dtype match, and nothing will read
 * the input after nd: nd is its last consumer, it is no leaf (the request's
 * values; a borrowed buffer, the request body, is a leaf's and is never
 * written either), not returned, not kept for the backward sweep. The engine would
 * release it right after nd anyway; taking its buffer instead spares a
 * fresh one (on a 16M-element chain of maps, page faults were half the
 * forward time). NULL otherwise. */
static gd_tensor *inplace_donor(run *r, const gd_node *nd, const gd_meta *m, const gd_tensor **in) {
    if (!(nd->op->flags & GD_OPF_INPLACE) || nd->n_in != 1) return NULL;
    int u = nd->in[0];
    gd_tensor *x = r->val[u];
    if (!x || in[0] != x || !x->data || x->borrowed || gd_tensor_owns_word(x) || x->dtype != m->dtype ||
        !gd_shape_eq(&x->shape, &m->shape))
        return NULL;
    if (r->refc[u] != 1 || r->keep[u] || r->returned[u] || (r->g->nodes[u].op->flags & GD_OPF_LEAF)) return NULL;
    return x;
}

/* Run node v's kernel; its inputs (the taken one, for cond) are done. */
static int compute(run *r, int v) {
    gd_graph *g = r->g;
    const gd_node *nd = &g->nodes[v];
    const gd_nstate *st = &g->st[v];
    int rc = poll(r), out_finite = 0;
    if (rc) return rc;
    if (st->deferred) { /* a shape error held back by gd_graph_check_request: its branch is taken */
        *r->err = *st->deferred;
        return st->deferred->code;
    }
    if (nd->op->flags & GD_OPF_LEAF) {
        if (!st->value)
            return gd_errorf(r->err, GD_E_MISSING_VALUE, "$.values",
                             "No value for %s '%s': the target needs it. Add \"%s\" to \"values\".",
                             nd->op->name, nd->name, nd->name);
        r->val[v] = st->value;
    } else {
        if (st->meta.shape.rank < 0)
            return gd_errorf(r->err, GD_E_INTERNAL, NULL, "Node '%s': shape unknown at evaluation.", nd->name);
        const gd_tensor *stack_in[16], **in = stack_in;
        if (nd->n_in > 16 && !(in = gd_arena_alloc(r->a, sizeof(*in) * (size_t)nd->n_in))) return oom(r);
        int converted;
        if ((rc = kernel_inputs(r, nd, in, &converted))) return rc;
        gd_tensor *donor = inplace_donor(r, nd, &st->meta, in);
        gd_tensor *out = donor ? gd_tensor_header(r->a, &st->meta.shape, st->meta.dtype)
                               : gd_tensor_new(r->a, &st->meta.shape, st->meta.dtype, 0);
        if (!out) return oom(r);
        if (donor) out->data = donor->data;
        gd_kctx c = {.arena = r->a, .cancel = r->spec->cancel, .err = r->err, .node = nd};
        rc = nd->op->forward(&c, in, out);
        if (donor) donor->data = NULL; /* the buffer is out's now; the release below skips it */
        if (converted) release_inputs(r, nd, in);
        if (rc) return rc;
        r->val[v] = out;
        out_finite = c.out_finite;
    }
    r->state[v] = ST_DONE;
    r->evaluated[v] = 1;
    r->pos[v] = r->n_order;
    r->order[r->n_order++] = v;
    if (r->spec->check_numerics) {
        int any = 0;
        for (int i = 0; i < nd->n_in; i++) any |= r->evaluated[nd->in[i]] && r->nonfinite[nd->in[i]];
        if ((rc = note_birth(r, v, any, out_finite))) return rc;
    }
    /* Release inputs nobody will read again. Leaf values belong to the request. */
    for (int i = 0; i < nd->n_in; i++) {
        int u = nd->in[i];
        if (--r->refc[u] == 0 && !r->keep[u] && !r->returned[u] && !(g->nodes[u].op->flags & GD_OPF_LEAF) &&
            r->val[u]) {
            gd_tensor_release(r->a, r->val[u]);
        }
    }
    return 0;
}

/* A cond has picked branch b: before any of b's values is computed, raise
 * the first error gd_graph_check_request deferred in what b needs (nested
 * conds: their predicates only), in the order evaluation would meet them.
 * So a taken branch's static errors come before its missing values, as the
 * graph's other static errors do. Each node is searched at most once. */
static int branch_deferred(run *r, int b) {
    gd_graph *g = r->g;
    if (!r->scanned || r->state[b] == ST_DONE || r->scanned[b]) return 0;
    int sp = 0;
    r->sstack[sp] = b, r->sphase[sp++] = 0, r->scanned[b] = 1;
    while (sp > 0) {
        int v = r->sstack[sp - 1];
        const gd_node *nd = &g->nodes[v];
        int i = r->sphase[sp - 1]++;
        int n_in = (nd->op->flags & GD_OPF_COND) ? 1 : nd->n_in;
        if (i < n_in) {
            int u = nd->in[i];
            if (r->state[u] != ST_DONE && !r->scanned[u]) r->scanned[u] = 1, r->sstack[sp] = u, r->sphase[sp++] = 0;
            continue;
        }
        if (g->st[v].deferred) {
            *r->err = *g->st[v].deferred;
            return g->st[v].deferred->code;
        }
        sp--;
    }
    return 0;
}

/* Evaluate `root` and what it needs, depth first with an explicit stack (no
 * recursion: graphs may be deep). A cond evaluates its predicate, then only
 * the branch the predicate picks. */
static int eval_root(run *r, int root, int *stack, int *phase) {
    gd_graph *g = r->g;
    int sp = 0;
    if (r->state[root] == ST_DONE) return 0;
    stack[sp] = root, phase[sp++] = 0;
    while (sp > 0) {
        int v = stack[sp - 1];
        const gd_node *nd = &g->nodes[v];
        if (r->state[v] == ST_DONE) { sp--; continue; }
        r->state[v] = ST_ACTIVE;
        int ph = phase[sp - 1]++;
        if (nd->op->flags & GD_OPF_COND) {
            if (ph == 0) {
                if (r->state[nd->in[0]] != ST_DONE) stack[sp] = nd->in[0], phase[sp++] = 0;
            } else if (ph == 1) {
                const gd_tensor *p = r->val[nd->in[0]];
                double pv = p->dtype == GD_F64 ? gd_f64(p)[0] : (double)gd_i64(p)[0];
                r->taken[v] = pv != 0.0 ? 1 : 2;
                int b = nd->in[r->taken[v]], rc = branch_deferred(r, b);
                if (rc) return rc;
                if (r->state[b] != ST_DONE) stack[sp] = b, phase[sp++] = 0;
            } else {
                int rc = compute(r, v);
                if (rc) return rc;
                sp--;
            }
        } else if (ph == 0) {
            for (int i = nd->n_in - 1; i >= 0; i--)
                if (r->state[nd->in[i]] != ST_DONE) stack[sp] = nd->in[i], phase[sp++] = 0;
        } else {
            int rc = compute(r, v);
            if (rc) return rc;
            sp--;
        }
    }
    return 0;
}

/* Evaluate the targets, then the fetches that the targets' evaluation did
 * not skip on purpose. */
static int forward(run *r, gd_run_result *res) {
    gd_graph *g = r->g;
    const gd_run_spec *s = r->spec;
    int edges = g->memo ? g->memo->edges : 0; /* a held graph counted them once */
    for (int i = 0; !g->memo && i < r->n; i++) edges += g->nodes[i].n_in;
    int *stack, *phase;
    /* written before read: not zeroed */
    if (!(stack = gd_arena_alloc_raw(r->a, sizeof *stack * (size_t)(edges + r->n + 2))) ||
        !(phase = gd_arena_alloc_raw(r->a, sizeof *phase * (size_t)(edges + r->n + 2))))
        return oom(r);
    for (int v = 0; !g->memo_infer && v < r->n && !r->scanned; v++) /* metas from a memo: nothing deferred */
        if (g->st[v].deferred &&
            (!ALLOC(r, r->scanned, r->n) || !ALLOC(r, r->sstack, r->n) || !ALLOC(r, r->sphase, r->n)))
            return oom(r);
    int rc;
    for (int k = 0; k < s->n_targets; k++)
        if ((rc = eval_root(r, s->targets[k], stack, phase))) return rc;
    /* A fetch that the targets' evaluation skipped because it lies behind an
     * untaken branch stays unevaluated; any other fetch is evaluated. */
    if (s->n_fetch) {
        unsigned char *anc;
        if (!ALLOC(r, anc, r->n)) return oom(r);
        for (int k = 0; k < s->n_targets; k++) anc[s->targets[k]] = 1;
        for (int k = r->n - 1; k >= 0; k--) {
            int v = g->topo[k];
            if (anc[v])
                for (int i = 0; i < g->nodes[v].n_in; i++) anc[g->nodes[v].in[i]] = 1;
        }
        for (int k = 0; k < s->n_fetch; k++) {
            int f = s->fetch[k];
            if (r->state[f] == ST_DONE || anc[f]) continue;
            if ((rc = eval_root(r, f, stack, phase))) return rc;
        }
    }
    for (int k = 0; k < s->n_targets; k++) res->targets[k] = r->val[s->targets[k]];
    for (int k = 0; k < s->n_fetch; k++) res->fetched[k] = r->evaluated[s->fetch[k]] ? r->val[s->fetch[k]] : NULL;
    return 0;
}

/* ---- backward --------------------------------------------------------- */

static int log_zero(run *r, int v, int input, gd_zero_cause cause) {
    gd_zero_event *e = push_event(r, (void **)&r->zero, sizeof *e, &r->n_zero, &r->cap_zero);
    if (!e) return GD_E_TOO_LARGE;
    *e = (gd_zero_event){.node = v, .input = input, .cause = cause};
    return 0;
}

static int log_nonfinite(run *r, int v, int input, const gd_tensor *d, int64_t first, int zero_cotangent) {
    gd_nonfinite_event *e = push_event(r, (void **)&r->nf, sizeof *e, &r->n_nf, &r->cap_nf);
    if (!e) return GD_E_TOO_LARGE;
    e->node = v, e->input = input, e->zero_cotangent = zero_cotangent;
    e->origin.node = v;
    e->origin.shape = d->shape;
    gd_unravel(&d->shape, first, e->origin.index);
    return 0;
}

/* Add contribution d (input u's shape) into u's cotangent: set when there is
 * none yet (d is handed over), add otherwise (d is released), polling the
 * cancel record between pieces. Returns 0 or deadline_exceeded. */
static int accumulate(run *r, int u, gd_tensor *d, int d_zero) {
    if (!r->cot[u]) {
        r->cot[u] = d;
        r->cot_zero[u] = d_zero ? COT_ZERO : COT_NONZERO;
        return 0;
    }
    r->cot_zero[u] = COT_UNKNOWN;
    double *c = gd_f64(r->cot[u]);
    const double *x = gd_f64(d);
    int rc = 0;
    for (int64_t s = 0; s < d->n && !rc; s += GD_POLL_ELEMS) {
        int64_t e = d->n - s < GD_POLL_ELEMS ? d->n : s + GD_POLL_ELEMS;
        for (int64_t k = s; k < e; k++) c[k] += x[k];
        if (e < d->n) rc = gd_cancel_check(r->spec->cancel, r->err);
    }
    gd_tensor_release(r->a, d);
    return rc;
}

/* The open region: nodes the targets' cotangent reaches through edges that
 * carry gradient, given the cond choices this run made. And `needs`: nodes
 * from which a wrt is reachable through such edges. */
static void regions(run *r) {
    gd_graph *g = r->g;
    if (r->plan_needs && r->plan_order == r->n_order) { /* the plan's replay found them on the same order */
        memcpy(r->needs, r->plan_needs, (size_t)r->n);
        memcpy(r->open, r->plan_open, (size_t)r->n);
        return;
    }
    gd_flow_needs(g, r->taken, r->order, r->n_order, r->is_wrt, r->needs);
    for (int k = 0; k < r->spec->n_targets; k++)
        if (g->st[r->spec->targets[k]].meta.dtype == GD_F64) r->open[r->spec->targets[k]] = 1;
    gd_flow_open(g, r->taken, r->order, r->n_order, NULL, r->open);
}

static int seed(run *r) {
    const gd_run_spec *s = r->spec;
    for (int k = 0; k < s->n_targets; k++) {
        int t = s->targets[k];
        if (!r->needs[t]) continue;
        gd_tensor *d, *tg = s->target_grad ? s->target_grad[k] : NULL;
        int rc;
        if (tg) { /* a float64 copy: the cotangent is the run's to add into and release */
            rc = tg->dtype == GD_F64 ? gd_tensor_copy_polled(r->a, tg, &d, s->cancel, r->err)
                                     : gd_tensor_to_f64_polled(r->a, tg, &d, s->cancel, r->err);
            if (rc) return pass_rc(r, rc);
        } else {
            gd_shape sc = gd_shape_scalar();
            if (!(d = gd_tensor_new(r->a, &sc, GD_F64, 0))) return oom(r);
            gd_f64(d)[0] = 1.0;
        }
        int zero = all_zero(r, d);
        if (zero < 0) return r->err->code;
        if (!zero) r->had_nonzero[t] = 1;
        if ((rc = accumulate(r, t, d, zero))) return rc;
    }
    return 0;
}

static int backward(run *r) {
    gd_graph *g = r->g;
    int rc = seed(r);
    if (rc) return rc;
    for (int k = r->n_order - 1; k >= 0; k--) {
        int v = r->order[k];
        const gd_node *nd = &g->nodes[v];
        if ((rc = poll(r))) return rc;
        gd_tensor *dv = r->cot[v];
        int want[16], *wants = want, any = 0; /* set below for every input whenever read */
        /* An all-zero cotangent goes through the rule like any other (0 x Inf
         * is NaN, as in PyTorch): only where it turned zero is logged. */
        int dv_zero = !dv ? 0 : r->cot_zero[v] ? r->cot_zero[v] == COT_ZERO : all_zero(r, dv);
        if (dv_zero < 0) return r->err->code;
        if (dv_zero && r->had_nonzero[v] && (rc = log_zero(r, v, -1, GD_ZERO_CANCELLATION))) return rc;
        if (dv && nd->n_in > 0) {
            if (nd->n_in > 16 && !ALLOC(r, wants, nd->n_in)) return oom(r);
            for (int i = 0; i < nd->n_in; i++)
                any |= wants[i] = gd_flow_carries(g, r->taken, v, i) && r->needs[nd->in[i]];
        }
        if (any) {
            const gd_tensor *stack_in[16], **in = stack_in;
            gd_tensor *stack_d[16], **din = stack_d;
            if (nd->n_in > 16 && (!(in = gd_arena_alloc(r->a, sizeof(*in) * (size_t)nd->n_in)) ||
                                  !(din = gd_arena_alloc(r->a, sizeof(*din) * (size_t)nd->n_in))))
                return oom(r);
            for (int i = 0; i < nd->n_in; i++) din[i] = NULL;
            int converted;
            if ((rc = kernel_inputs(r, nd, in, &converted))) return rc;
            gd_kctx c = {.arena = r->a, .cancel = r->spec->cancel, .err = r->err, .node = nd};
            rc = nd->op->backward(&c, in, r->val[v], dv, wants, din);
            for (int i = 0; i < nd->n_in; i++) r->vjp_inputs += wants[i];
            if (converted) release_inputs(r, nd, in);
            if (rc) return rc;
            /* Whether dv is finite matters only once a contribution is not:
             * scanned then, at most once. */
            int dv_scanned = 0, dv_finite = 1;
            for (int i = 0; i < nd->n_in; i++) {
                if (!wants[i]) continue;
                int u = nd->in[i];
                gd_tensor *d = din[i];
                if (d && !gd_shape_eq(&d->shape, &g->st[u].meta.shape)) {
                    gd_tensor *s = gd_tensor_new(r->a, &g->st[u].meta.shape, GD_F64, 0);
                    if (!s) return oom(r);
                    if ((rc = gd_sum_to(gd_f64(s), &s->shape, gd_f64(d), &d->shape, r->spec->cancel, r->err)))
                        return rc;
                    gd_tensor_release(r->a, d);
                    d = s;
                }
                int64_t first;
                int d_zero = 1, d_finite = d ? scan_contribution(r, d, &first, &d_zero) : 1;
                if (d_finite < 0) return r->err->code;
                if (!d_finite && !dv_scanned) {
                    dv_scanned = 1;
                    if ((dv_finite = all_finite(r, dv, NULL)) < 0) return r->err->code;
                }
                if (!d_finite && dv_finite && (rc = log_nonfinite(r, v, i, d, first, dv_zero))) return rc;
                if (d_zero) {
                    /* A zero is born here only from a cotangent that was not all zero. */
                    if (!dv_zero && (rc = log_zero(r, v, i, nd->op->zero_cause))) return rc;
                    if (!d) continue;
                } else {
                    r->had_nonzero[u] = 1;
                }
                if ((rc = accumulate(r, u, d, d_zero))) return rc;
            }
        }
        /* Done with v: its cotangent (unless it is a wrt) and its value
         * (unless returned) are not read again. */
        if (!r->is_wrt[v] && r->cot[v]) {
            gd_tensor_release(r->a, r->cot[v]);
            r->cot[v] = NULL;
        }
        if (!r->returned[v] && !(nd->op->flags & GD_OPF_LEAF) && r->val[v]) gd_tensor_release(r->a, r->val[v]);
    }
    return 0;
}

/* ---- checks and results ------------------------------------------------ */

static int check_targets(run *r, int after_forward) {
    const gd_run_spec *s = r->spec;
    char at[64], a[GD_SHAPE_STR_MAX], b[GD_SHAPE_STR_MAX];
    for (int k = 0; k < s->n_targets; k++) {
        const gd_node *t = &r->g->nodes[s->targets[k]];
        const gd_meta *tm = &r->g->st[s->targets[k]].meta;
        const gd_shape *sh = after_forward ? &r->val[s->targets[k]]->shape : &tm->shape;
        if (!s->grad) continue;
        if (tm->dtype != GD_F64)
            return gd_errorf(r->err, GD_E_DTYPE_MISMATCH, target_at(r, k, at, sizeof at),
                             "The target '%s' is int64; a target must be float64 to be differentiated.", t->name);
        if (sh->rank < 0) continue;
        gd_tensor *tg = s->target_grad ? s->target_grad[k] : NULL;
        if (!tg && sh->rank > 0)
            return gd_errorf(r->err, GD_E_TARGET_NOT_SCALAR, target_at(r, k, at, sizeof at),
                             "The target '%s' has shape %s; give \"target_grad\" (its cotangent) or reduce it to a scalar, e.g. with sum or mean.",
                             t->name, gd_shape_str(sh, a, sizeof a));
        if (tg && !gd_shape_eq(&tg->shape, sh)) {
            if (s->targets_is_list) snprintf(at, sizeof at, "$.target_grad.%s", t->name);
            else snprintf(at, sizeof at, "$.target_grad");
            return gd_errorf(r->err, GD_E_SHAPE_MISMATCH, at,
                             "target_grad for '%s' has shape %s, but the target has shape %s.", t->name,
                             gd_shape_str(&tg->shape, a, sizeof a), gd_shape_str(sh, b, sizeof b));
        }
    }
    return 0;
}

/* *z = zeros of node w's shape and dtype (int64 zeros for an int64 wrt),
 * from the arena, or NULL when the shape is unknown. Returns 0, or too_large
 * / deadline_exceeded. */
static int zeros_like_node(run *r, int w, gd_tensor **z) {
    const gd_meta *m = &r->g->st[w].meta;
    const gd_shape *sh = r->val[w] ? &r->val[w]->shape : &m->shape;
    gd_dtype dt = r->val[w] ? r->val[w]->dtype : m->dtype;
    *z = NULL;
    if (sh->rank < 0) return 0;
    return pass_rc(r, gd_tensor_zeros_polled(r->a, sh, dt, z, r->spec->cancel, r->err));
}

int gd_engine_run(gd_graph *g, const gd_run_spec *spec, gd_run_result *res, gd_trace *tr, gd_error *err) {
    run R = {.g = g, .a = g->arena, .spec = spec, .err = err, .n = g->n}, *r = &R;
    int n = g->n, rc;
    memset(res, 0, sizeof *res);
    gd_error_clear(err);
    if (!g->checked) return gd_errorf(err, GD_E_INTERNAL, NULL, "gd_run on an unchecked graph.");
    if (!ALLOC(r, r->val, n) || !ALLOC(r, r->state, n) || !ALLOC(r, r->evaluated, n) || !ALLOC(r, r->taken, n) ||
        !ALLOC(r, r->order, n) || !ALLOC(r, r->pos, n) || !ALLOC(r, r->returned, n) || !ALLOC(r, r->nonfinite, n) || !ALLOC(r, r->is_wrt, n) ||
        !ALLOC(r, r->open, n) || !ALLOC(r, r->needs, n) || !ALLOC(r, r->cot, n) || !ALLOC(r, r->had_nonzero, n) || !ALLOC(r, r->cot_zero, n) ||
        !ALLOC(r, r->birth, n) || !ALLOC(r, res->targets, spec->n_targets) ||
        !ALLOC(r, res->grads, spec->n_wrt) || !ALLOC(r, res->fetched, spec->n_fetch))
        return oom(r);
    for (int i = 0; i < n; i++) r->pos[i] = -1, r->birth[i] = -1;
    for (int k = 0; k < spec->n_targets; k++) r->returned[spec->targets[k]] = 1;
    for (int k = 0; k < spec->n_fetch; k++) r->returned[spec->fetch[k]] = 1;
    if (spec->grad)
        for (int k = 0; k < spec->n_wrt; k++) r->is_wrt[spec->wrt[k]] = 1;
    if ((rc = check_targets(r, 0)) || (rc = follow_plan(r, res))) return rc;

    int64_t t0 = gd_now_ns();
    if ((rc = forward(r, res))) return rc;
    int64_t t1 = gd_now_ns();
    res->forward_us = (t1 - t0) / 1000;
    if ((rc = check_targets(r, 1))) return rc;

    *tr = (gd_trace){.evaluated = r->evaluated, .pos = r->pos, .taken = r->taken, .open = r->open,
                     .nonfinite = r->nonfinite, .birth = r->birth, .births = r->births};
    if (spec->grad) {
        regions(r);
        if ((rc = backward(r))) return rc;
        for (int k = 0; k < spec->n_wrt; k++) {
            int w = spec->wrt[k];
            gd_tensor *gr = r->open[w] ? r->cot[w] : NULL;
            /* connected with every contribution exactly zero, or unconnected under "zero" */
            if (!gr && (r->open[w] || spec->unconnected_zero) && (rc = zeros_like_node(r, w, &gr))) return rc;
            if (r->open[w] && !gr) return oom(r);
            res->grads[k] = gr;
        }
    }
    res->backward_us = (gd_now_ns() - t1) / 1000;
    tr->zero = r->zero, tr->n_zero = r->n_zero;
    tr->nonfinite_born = r->nf, tr->n_nonfinite_born = r->n_nf;
    res->peak_bytes = gd_arena_peak(r->a);
    res->vjp_inputs = r->vjp_inputs;
    return 0;
}
