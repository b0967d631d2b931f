/* tbuild.h - a terse graph builder for engine and diagnostics tests:
 * nodes by name with comma-separated inputs, values from literal arrays,
 * runs by name lists. Aborts the test (ck_assert) on misuse, never silently. */
#ifndef GD_TBUILD_H
#define GD_TBUILD_H

#include "core/run.h"

typedef struct tb {
    gd_arena *a;
    gd_graph *g;
    gd_run_spec spec;
    gd_run_result res;
    gd_error err;
    int targets[16], wrt[32], fetch[16];
} tb;

void tb_init(tb *t);
void tb_free(tb *t);
/* Add node `name` = op(inputs...), inputs comma-separated ("" for none); returns its attrs. */
gd_attrs *tb_node(tb *t, const char *name, const char *op, const char *inputs);
/* Leaf value from a shape spec ("2,3", "" for scalar) and values. */
void tb_f64(tb *t, const char *name, const char *shape, const double *v);
void tb_i64(tb *t, const char *name, const char *shape, const int64_t *v);
/* gd_graph_check: returns its code (err in t->err). */
int tb_check(tb *t);
/* Check, then run with comma-separated names; wrt NULL means "every variable",
 * fetch may be NULL. Returns gd_run's code. */
int tb_run(tb *t, const char *targets, const char *wrt, const char *fetch);
int tb_eval(tb *t, const char *targets, const char *fetch);
/* The gradient for wrt `name` (NULL: none); the error/warning diagnostic about `name`. */
gd_tensor *tb_grad(tb *t, const char *name);
const gd_diag *tb_diag(tb *t, const char *name, int is_error);
int tb_idx(tb *t, const char *name);
const char *tb_name(tb *t, int idx);

#endif
