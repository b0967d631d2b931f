/* jpath.h - a JSON path ("$.graph.nodes[2].inputs[0]") built in place while
 * a decoder walks a request, so that an error can name its culprit.
 *
 * Fixed size (the error's `at`): appends truncate, never overrun, and
 * gd_jp_pop returns to an earlier length. It only builds text; it neither
 * parses JSON nor knows requests or tensors. */
#ifndef GD_JPATH_H
#define GD_JPATH_H

#include <stddef.h>

#include "core/error.h"

typedef struct gd_jpath {
    char s[GD_ERR_AT_MAX];
    size_t n; /* strlen(s) */
} gd_jpath;

void gd_jp_set(gd_jpath *p, const char *s);         /* the path is s */
void gd_jp_addf(gd_jpath *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gd_jp_index(gd_jpath *p, size_t i);            /* [i] */
/* ".key" when the key reads unambiguously after a dot, else ["key"] with the
 * key as a JSON string (names may hold dots, brackets and quotes). */
void gd_jp_key(gd_jpath *p, const char *key);
void gd_jp_pop(gd_jpath *p, size_t n);              /* back to length n (an earlier p->n) */

#endif
