/* graph.c - storing a graph: nodes in the request's arena, the name index
 * (with "did you mean"), duplicate and cycle detection, consumers and the
 * topological order. It treats a node's op as opaque: everything that needs
 * the op table (arity, input resolution, inference) is in validate.c. */
#include "core/graph.h"

#include <stdio.h>
#include <string.h>

const gd_attrs gd_no_attrs;

/* The node and state arrays are not zeroed (gd_graph_add_node writes every
 * entry it hands out): a 100k-node graph's would be megabytes of memset. */
gd_graph *gd_graph_new(gd_arena *a, int capacity_hint) {
    gd_graph *g = gd_arena_alloc(a, sizeof *g);
    if (!g) return NULL;
    g->arena = a;
    g->cap = capacity_hint > 4 ? capacity_hint : 4;
    g->nodes = gd_arena_alloc_raw(a, sizeof(gd_node) * (size_t)g->cap);
    g->st = gd_arena_alloc_raw(a, sizeof(gd_nstate) * (size_t)g->cap);
    return g->nodes && g->st ? g : NULL;
}

gd_graph *gd_graph_instance(gd_arena *a, const gd_graph *held) {
    gd_graph *g = gd_arena_alloc(a, sizeof *g);
    if (!g) return NULL;
    *g = *held;
    g->arena = a;
    g->cap = held->n;
    /* Copied whole, so not zeroed first: a tensor buffer (from the worker's
     * warm cache when it has one), freed with the arena. */
    g->st = gd_arena_buf(a, sizeof(gd_nstate) * (size_t)(held->n + 1), 0);
    if (!g->st) return NULL;
    memcpy(g->st, held->st, sizeof(gd_nstate) * (size_t)held->n);
    return g;
}

gd_node *gd_graph_add_node(gd_graph *g, const char *name, const struct gd_op_def *op, const char *const *inputs,
                           int n_inputs, int has_attrs, gd_error *err) {
    if (g->n == g->cap) {
        gd_node *bigger = gd_arena_alloc_raw(g->arena, sizeof(gd_node) * (size_t)g->cap * 2);
        gd_nstate *st = gd_arena_alloc_raw(g->arena, sizeof(gd_nstate) * (size_t)g->cap * 2);
        if (!bigger || !st) { gd_error_oom(err); return NULL; }
        memcpy(bigger, g->nodes, sizeof(gd_node) * (size_t)g->n);
        memcpy(st, g->st, sizeof(gd_nstate) * (size_t)g->n);
        g->nodes = bigger, g->st = st;
        g->cap *= 2;
    }
    gd_node *n = &g->nodes[g->n];
    *n = (gd_node){.index = g->n, .op = op, .n_in = n_inputs};
    n->name = gd_arena_strdup(g->arena, name);
    n->in = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(n_inputs + 1));
    n->in_names = gd_arena_alloc_raw(g->arena, sizeof(char *) * (size_t)(n_inputs + 1));
    n->attrs = has_attrs ? gd_arena_alloc(g->arena, sizeof(gd_attrs)) : (gd_attrs *)&gd_no_attrs;
    g->st[g->n] = (gd_nstate){.value_index = -1};
    if (!n->name || !n->in || !n->in_names || !n->attrs) { gd_error_oom(err); return NULL; }
    for (int i = 0; i < n_inputs; i++)
        if (!(n->in_names[i] = gd_arena_strdup(g->arena, inputs[i]))) { gd_error_oom(err); return NULL; }
    g->n++;
    g->checked = g->indexed = 0;
    g->topo = NULL; /* ordered again at the next check */
    return n;
}

void gd_graph_set_value(gd_graph *g, int v, gd_tensor *value, int value_index) {
    g->st[v].value = value;
    g->st[v].value_index = value_index;
}

int gd_node_errorf(gd_error *err, const gd_node *n, gd_err code, const char *suffix, const char *fmt, ...) {
    char at[GD_ERR_AT_MAX];
    snprintf(at, sizeof at, "$.graph.nodes[%d]%s", n->index, suffix ? suffix : "");
    va_list ap;
    va_start(ap, fmt);
    gd_verrorf(err, code, at, fmt, ap);
    va_end(ap);
    return code;
}

/* FNV-1a; the name table is open addressing over node indices. */
static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int find_slot(const gd_graph *g, const char *name) {
    unsigned mask = (unsigned)g->name_cap - 1;
    for (unsigned h = (unsigned)hash_name(name) & mask;; h = (h + 1) & mask) {
        int v = g->name_slot[h];
        if (v == 0 || strcmp(g->nodes[v - 1].name, name) == 0) return (int)h;
    }
}

int gd_graph_find(const gd_graph *g, const char *name) {
    if (!g->name_slot) return -1;
    return g->name_slot[find_slot(g, name)] - 1;
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 256) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return 0;
    return 1;
}

/* Closest node name to `word`, for "did you mean" on an unknown input: the
 * nodes in order, one at a time, until the search's budget is spent. */
const char *gd_graph_closest_name(const gd_graph *g, const char *word) {
    gd_closest_search s;
    gd_closest_init(&s, word, GD_CLOSEST_BUDGET);
    for (int i = 0; i < g->n; i++)
        if (!gd_closest_add(&s, g->nodes[i].name)) break;
    return s.best;
}

int gd_graph_index_names(gd_graph *g, gd_error *err) {
    int cap = 16;
    while (cap < 2 * g->n) cap *= 2;
    g->name_cap = cap;
    g->name_slot = gd_arena_alloc(g->arena, sizeof(int) * (size_t)cap);
    if (!g->name_slot) return gd_error_oom(err);
    for (int i = 0; i < g->n; i++) {
        gd_node *n = &g->nodes[i];
        if (!valid_name(n->name))
            return gd_node_errorf(err, n, GD_E_INVALID_REQUEST, ".name",
                                  "Node %d: a name must be 1 to 256 printable characters without spaces.", i);
        int h = find_slot(g, n->name);
        if (g->name_slot[h])
            return gd_node_errorf(err, n, GD_E_DUPLICATE_NODE, ".name",
                                  "Node name '%s' is used twice: by nodes %d and %d.", n->name,
                                  g->name_slot[h] - 1, i);
        g->name_slot[h] = i + 1;
    }
    return 0;
}

/* Consumers as CSR, then Kahn's algorithm for the order. Nodes left over lie
 * on or behind a cycle: walk inputs among them until a node repeats and name
 * that loop. */
int gd_graph_order(gd_graph *g, gd_error *err) {
    int n = g->n;
    int *deg = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    g->cons_start = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    g->topo = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    int edges = 0;
    for (int i = 0; i < n; i++) edges += g->nodes[i].n_in;
    g->cons = gd_arena_alloc(g->arena, sizeof(int) * (size_t)(edges + 1));
    if (!deg || !g->cons_start || !g->topo || !g->cons) return gd_error_oom(err);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) g->cons_start[g->nodes[i].in[j] + 1]++;
    for (int i = 0; i < n; i++) g->cons_start[i + 1] += g->cons_start[i];
    int *fill = deg; /* reuse as a cursor, then reset for the degrees */
    for (int i = 0; i < n; i++) fill[i] = g->cons_start[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) g->cons[fill[g->nodes[i].in[j]]++] = i;
    for (int i = 0; i < n; i++) deg[i] = g->nodes[i].n_in;
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (deg[i] == 0) g->topo[tail++] = i;
    while (head < tail) {
        int v = g->topo[head++];
        for (int k = g->cons_start[v]; k < g->cons_start[v + 1]; k++)
            if (--deg[g->cons[k]] == 0) g->topo[tail++] = g->cons[k];
    }
    if (tail == n) return 0;
    /* Every remaining node has an input among the remaining ones. */
    int start = -1;
    for (int i = 0; i < n && start < 0; i++)
        if (deg[i] > 0) start = i;
    int *seen = gd_arena_alloc(g->arena, sizeof(int) * (size_t)n);
    if (!seen) return gd_error_oom(err);
    int v = start, step = 1;
    while (!seen[v]) {
        seen[v] = step++;
        const gd_node *nd = &g->nodes[v];
        int next = -1;
        for (int j = 0; j < nd->n_in && next < 0; j++)
            if (deg[nd->in[j]] > 0) next = nd->in[j];
        v = next;
    }
    /* v lies on the loop: walk it once more by the same rule. The walk goes
     * from consumer to input, so print it backwards to show data flow. */
    int loop[64], len = 0, u = v;
    do {
        if (len < 64) loop[len++] = u;
        const gd_node *nd = &g->nodes[u];
        int next = -1;
        for (int j = 0; j < nd->n_in && next < 0; j++)
            if (deg[nd->in[j]] > 0) next = nd->in[j];
        u = next;
    } while (u != v);
    char msg[GD_ERR_MSG_MAX];
    int o = snprintf(msg, sizeof msg, "The graph has a cycle: '%s'", g->nodes[v].name);
    for (int k = len - 1; k >= 0 && o < (int)sizeof msg; k--)
        o += snprintf(msg + o, sizeof msg - (size_t)o, " -> '%s'", g->nodes[loop[k]].name);
    if (o < (int)sizeof msg) snprintf(msg + o, sizeof msg - (size_t)o, ".");
    gd_node_errorf(err, &g->nodes[v], GD_E_CYCLE, ".inputs", "%s", msg);
    return GD_E_CYCLE;
}
