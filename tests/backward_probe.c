/* backward_probe.c - prints the op table as compiled, for
 * tests/check_backward_coverage.sh: one line per row of gd_op_all(),
 *   <op> <differentiable 0/1> <leaf 0/1> <backward offset from main, hex, or none>
 * The offset is the backward function's address minus main's, so that `nm` on
 * this very binary names the function, PIE or not. Built by `make check`,
 * never installed; it runs nothing but the table lookup. */
#include <stdint.h>
#include <stdio.h>

#include "core/op.h"

int main(void) {
    int n;
    const gd_op_def *const *ops = gd_op_all(&n);
    for (int i = 0; i < n; i++) {
        const gd_op_def *d = ops[i];
        printf("%s %d %d ", d->name, d->differentiable != 0, (d->flags & GD_OPF_LEAF) != 0);
        if (d->backward) {
            intptr_t off = (intptr_t)(uintptr_t)d->backward - (intptr_t)(uintptr_t)main;
            printf("%s%jx\n", off < 0 ? "-0x" : "0x", (uintmax_t)(off < 0 ? -off : off));
        } else {
            printf("none\n");
        }
    }
    return n > 0 ? 0 : 1;
}
