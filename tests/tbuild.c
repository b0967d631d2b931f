/* tbuild.c - see tbuild.h. */
#include "tbuild.h"

#include <check.h>
#include <string.h>

#include "gradcheck.h"

void tb_init(tb *t) {
    memset(t, 0, sizeof *t);
    t->a = gd_arena_new(0);
    t->g = gd_graph_new(t->a, 8);
}

void tb_free(tb *t) { gd_arena_free(t->a); }

static int split(char *buf, const char *csv, const char **out, int max) {
    int n = 0;
    if (!csv || !*csv) return 0;
    strcpy(buf, csv);
    for (char *p = strtok(buf, ","); p && n < max; p = strtok(NULL, ",")) {
        while (*p == ' ') p++;
        out[n++] = p;
    }
    return n;
}

gd_attrs *tb_node(tb *t, const char *name, const char *op, const char *inputs) {
    char buf[512];
    const char *ins[64];
    ck_assert_msg(!inputs || strlen(inputs) < sizeof buf, "tb_node %s: inputs too long", name);
    int n = split(buf, inputs, ins, 64);
    int commas = 0;
    for (const char *p = inputs; p && *p; p++) commas += *p == ',';
    ck_assert_msg(n == 0 || n == commas + 1, "tb_node %s: more than 64 inputs", name);
    gd_node *nd = gd_graph_add(t->g, name, op, ins, n, &t->err);
    ck_assert_msg(nd != NULL, "tb_node %s: %s", name, t->err.message);
    return nd->attrs;
}

int tb_idx(tb *t, const char *name) {
    for (int i = 0; i < t->g->n; i++)
        if (!strcmp(t->g->nodes[i].name, name)) return i;
    ck_abort_msg("no node %s", name);
    return -1;
}

const char *tb_name(tb *t, int idx) { return t->g->nodes[idx].name; }

void tb_f64(tb *t, const char *name, const char *shape, const double *v) {
    int i = tb_idx(t, name);
    gd_graph_set_value(t->g, i, gc_f64(t->a, shape, v), i);
}

void tb_i64(tb *t, const char *name, const char *shape, const int64_t *v) {
    int i = tb_idx(t, name);
    gd_graph_set_value(t->g, i, gc_i64(t->a, shape, v), i);
}

int tb_check(tb *t) {
    gd_limits lim = {0};
    return gd_graph_check(t->g, &lim, &t->err);
}

static int names(tb *t, const char *csv, int *out, int max) {
    char buf[512];
    const char *s[32];
    int n = split(buf, csv, s, max);
    for (int k = 0; k < n; k++) out[k] = tb_idx(t, s[k]);
    return n;
}

static int run(tb *t, const char *targets, const char *wrt, const char *fetch, int grad) {
    int rc = tb_check(t);
    if (rc) return rc;
    gd_run_spec *s = &t->spec;
    s->grad = grad;
    s->check_numerics = 1;
    s->targets = t->targets;
    s->n_targets = names(t, targets, t->targets, 16);
    s->targets_is_list = s->n_targets > 1;
    s->wrt = t->wrt;
    if (wrt) {
        s->n_wrt = names(t, wrt, t->wrt, 32);
    } else {
        s->n_wrt = 0;
        for (int i = 0; i < t->g->n && s->n_wrt < 32; i++)
            if (!strcmp(t->g->nodes[i].op->name, "variable")) t->wrt[s->n_wrt++] = i;
    }
    s->fetch = t->fetch;
    s->n_fetch = names(t, fetch, t->fetch, 16);
    return gd_run(t->g, s, &t->res, &t->err);
}

int tb_run(tb *t, const char *targets, const char *wrt, const char *fetch) { return run(t, targets, wrt, fetch, 1); }
int tb_eval(tb *t, const char *targets, const char *fetch) { return run(t, targets, NULL, fetch, 0); }

gd_tensor *tb_grad(tb *t, const char *name) {
    int v = tb_idx(t, name);
    for (int k = 0; k < t->spec.n_wrt; k++)
        if (t->wrt[k] == v) return t->res.grads[k];
    ck_abort_msg("%s is not a wrt", name);
    return NULL;
}

const gd_diag *tb_diag(tb *t, const char *name, int is_error) {
    int v = tb_idx(t, name);
    for (int k = 0; k < t->res.n_diags; k++) {
        const gd_diag *d = &t->res.diags[k];
        if ((d->wrt == v || d->node == v) && d->is_error == is_error) return d;
    }
    return NULL;
}
